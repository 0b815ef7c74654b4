"""
A Poisson VAE on population spike counts
========================================

Can a generative network recover the low-dimensional state that drives a population of
neurons from their spike counts alone? We simulate 30 neurons whose log firing rates
are a random linear read-out of a Lorenz attractor, as in the LFADS papers
(``helmholtz.data.lorenz_spikes``, Sussillo et al., 2016), count spikes in 10 ms bins,
and fit :class:`helmholtz.models.NonlinearLVM` with a three-dimensional Gaussian prior,
a one-hidden-layer decoder and a Poisson likelihood (rate = softplus of the decoder's
output) with the ``vae`` back end. Each bin is one data point: the model knows nothing
of time, so any smoothness in its inferred rates comes from the population, not from a
temporal prior.

The inferred rate of each neuron in each bin is the decoder's output at the encoder's
mean; we score it against the true rates (R^2) next to a smoothed peri-stimulus
baseline that has time but no population: each neuron's counts smoothed in time
(with the width that serves it best on the training trials).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import gaussian_filter1d

import helmholtz as hz

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# Spikes from a Lorenz attractor
# ------------------------------
# 1 ms bins are summed to 10 ms; baseline rate 15 spikes/s.
spikes = hz.data.lorenz_spikes(
    0,
    num_trials=40 if QUICK else 200,
    num_neurons=30,
    num_bins=1000,
    bin_width=0.001,
    lorenz_time_per_bin=0.0006,
    baseline_rate_hz=15.0,
)
bin_factor = 10
trials, bins, neurons = spikes.counts.shape
counts = spikes.counts.reshape(trials, bins // bin_factor, bin_factor, neurons).sum(2)
true_rates = spikes.rates.reshape(trials, bins // bin_factor, bin_factor, neurons).sum(2)
latents = spikes.latents[:, ::bin_factor]
train_trials = int(0.8 * trials)
train = counts[:train_trials].reshape(-1, neurons).astype(float)
test = counts[train_trials:].reshape(-1, neurons).astype(float)
print(f"{train.shape[0]} training bins, {test.shape[0]} test bins, {counts.mean() * 100:.1f} spikes/s per neuron")

# %%
# Fit
# ---
model = hz.models.NonlinearLVM(hz.priors.Gaussian(3), neurons, likelihood="poisson", hidden=(64,))
fit = hz.fit(
    model,
    train,
    method="vae",
    key=0,
    num_steps=1000 if QUICK else 20_000,
    batch_size=256,
    learning_rate=3e-3,
    encoder_hidden=(64,),
    check_every=500,
    patience=5,
    progress_bar=False,
)

inferred = np.asarray(fit.decode(fit.encode(test)["z"].mean)).reshape(counts[train_trials:].shape)
truth = true_rates[train_trials:]


r_squared = hz.diagnostics.rate_r_squared


# The baseline gets its best smoothing width, chosen on the training trials.
widths = [1, 2, 4, 8, 16]
train_scores = [
    r_squared(gaussian_filter1d(counts[:train_trials].astype(float), w, axis=1), true_rates[:train_trials])
    for w in widths
]
width = widths[int(np.argmax(train_scores))]
smoothed = gaussian_filter1d(counts[train_trials:].astype(float), width, axis=1)
baseline_name = f"smoothed counts ({width * bin_factor} ms Gaussian)"
scores = {"Poisson VAE": r_squared(inferred, truth), baseline_name: r_squared(smoothed, truth)}
for name, score in scores.items():
    print(f"R^2 of the true rates, {name}: {score:.2f}")

# %%
# Rates of three neurons on a held-out trial
# ------------------------------------------
fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
time_ms = np.arange(truth.shape[1]) * bin_factor
for ax, neuron in zip(axes, np.argsort(-truth.var((0, 1)))[:3]):
    ax.plot(time_ms, truth[0, :, neuron], "k", label="true rate")
    ax.plot(time_ms, smoothed[0, :, neuron], color="0.6", label="smoothed counts")
    ax.plot(time_ms, inferred[0, :, neuron], "C3", label="Poisson VAE")
    ax.set_ylabel(f"neuron {neuron}\nspikes per bin")
axes[0].legend(loc="upper right", fontsize=8)
axes[-1].set_xlabel("time in trial (ms)")
fig.suptitle(f"R$^2$: VAE {scores['Poisson VAE']:.2f}, {baseline_name} {scores[baseline_name]:.2f}")
fig.tight_layout()

# %%
# The latent state
# ----------------
# The encoder's means, mapped linearly onto the true Lorenz state (least squares on the
# training bins), along two held-out trials. The path follows the attractor's wings but
# jitters from bin to bin: a 10 ms bin holds only a few spikes of the whole population,
# and the model has no prior that ties one bin to the next. A sequential model (an
# LFADS-style latent dynamical system) is what removes that jitter.
train_means = np.asarray(fit.encode(train)["z"].mean)
train_latents = latents[:train_trials].reshape(-1, 3)
design = np.column_stack([train_means, np.ones(len(train_means))])
mapping, *_ = np.linalg.lstsq(design, train_latents, rcond=None)
test_means = np.asarray(fit.encode(test)["z"].mean)
aligned = np.column_stack([test_means, np.ones(len(test_means))]) @ mapping
aligned = aligned.reshape(latents[train_trials:].shape)
fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharex=True, sharey=True)
for trial in range(2):
    axes[0].plot(latents[train_trials + trial, :, 0], latents[train_trials + trial, :, 2], lw=1)
    axes[1].plot(aligned[trial, :, 0], aligned[trial, :, 2], lw=0.8)
axes[0].set(title="true Lorenz state (x, z), two test trials", xlabel="x", ylabel="z")
axes[1].set(title="encoder means, linearly aligned", xlabel="x")
fig.tight_layout()
plt.show()
