"""
LFADS: latent dynamics behind population spiking
================================================

Can the dynamics that drive a population be inferred from single trials of spikes? In
LFADS (Pandarinath et al., 2018) a recurrent "generator" network, started from an
initial condition inferred per trial, produces low-dimensional factors whose read-out is
every neuron's firing rate. We fit :class:`helmholtz.models.markov.LFADS` with the
``vae`` back end to spikes driven by a Lorenz attractor (``helmholtz.data.lorenz_spikes``),
the benchmark of the LFADS papers, with the encoder reading 24 of the 30 neurons. The
other 6 are held out: their rates must be predicted from the population's dynamics
(co-smoothing, scored in bits per spike as the Neural Latents Benchmark does), and we
compare against the benchmark's spike-smoothing baseline.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.diagnostics import bits_per_spike, rate_r_squared, smoothing_baseline
from helmholtz.models.markov import LFADS

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# Lorenz-driven spikes
# --------------------
# 100 bins of 10 ms per trial, 30 neurons; training, validation (for early stopping)
# and test trials.
num_trials = 150 if QUICK else 1000
spikes = hz.data.lorenz_spikes(
    0,
    num_trials=num_trials,
    num_neurons=30,
    num_bins=100,
    bin_width=0.01,
    lorenz_time_per_bin=0.01,
    baseline_rate_hz=15.0,
)
train, validation, test = np.split(spikes.counts, [int(0.7 * num_trials), int(0.8 * num_trials)])
test_rates = spikes.rates[int(0.8 * num_trials) :]
held_in, held_out = list(range(24)), list(range(24, 30))

# %%
# Fit LFADS
# ---------
model = LFADS(
    30,
    100,
    generator_dim=16 if QUICK else 64,
    factor_dim=3,
    encoder_dim=16 if QUICK else 64,
    encoded_neurons=tuple(held_in),
)
fit = hz.fit(
    model,
    train,
    method="vae",
    key=0,
    num_steps=100 if QUICK else 20_000,
    batch_size=64,
    learning_rate=5e-3,
    check_every=100 if QUICK else 500,
    patience=6,
    validation=validation,
    progress_bar=False,
)
initial = fit.encode(test)["initial_condition"].mean
lfads_rates = np.asarray(model.rates(fit.posterior.model_params, initial))
factors = np.asarray(model.factors(fit.posterior.model_params, initial))
baseline = smoothing_baseline(train, test, held_in, held_out, width=4)
rates = {"LFADS": lfads_rates, "smoothing + GLM": baseline, "true rates": test_rates}
for name, estimate in rates.items():
    print(
        f"{name:>16}: co-bps {bits_per_spike(estimate[..., held_out], test[..., held_out]):.3f}, "
        f"R^2 held-out {rate_r_squared(estimate[..., held_out], test_rates[..., held_out]):.2f}"
    )

# %%
# Held-out neurons on one test trial
# ----------------------------------
# The encoder never saw these neurons; their rates come from the inferred dynamics.
fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
time_ms = np.arange(100) * 10
for ax, neuron in zip(axes, held_out[:3]):
    ax.plot(time_ms, test_rates[0, :, neuron] * 100, "k", label="true")
    ax.plot(time_ms, baseline[0, :, neuron] * 100, color="0.6", label="smoothing + GLM")
    ax.plot(time_ms, lfads_rates[0, :, neuron] * 100, "C3", label="LFADS")
    ax.set_ylabel(f"neuron {neuron}\nspikes/s")
axes[0].legend(loc="upper right", fontsize=8)
axes[-1].set_xlabel("time in trial (ms)")
fig.tight_layout()

# %%
# The factors and the Lorenz state
# --------------------------------
# LFADS's three factors, mapped linearly onto the true (standardised) Lorenz state by
# least squares over the test trials: the attractor comes back, smoothly, trial by trial.
latents = spikes.latents[int(0.8 * num_trials) :]
design = np.column_stack([factors.reshape(-1, 3), np.ones(factors.shape[0] * 100)])
mapping, *_ = np.linalg.lstsq(design, latents.reshape(-1, 3), rcond=None)
aligned = (design @ mapping).reshape(latents.shape)
fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharex=True, sharey=True)
for trial in range(3):
    axes[0].plot(latents[trial, :, 0], latents[trial, :, 2])
    axes[1].plot(aligned[trial, :, 0], aligned[trial, :, 2])
axes[0].set(title="true Lorenz state (x, z), three test trials", xlabel="x", ylabel="z")
axes[1].set(title="LFADS factors, linearly aligned", xlabel="x")
fig.tight_layout()
plt.show()
