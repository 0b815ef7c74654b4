"""
Fitting a Hodgkin-Huxley neuron to a real recording
===================================================

Which ion-channel densities make a cortical neuron fire the way it does? Goncalves et al.
(2020) answered this for cells of the Allen Cell Types Database with a single-compartment
Hodgkin-Huxley model (Pospischil et al., 2008: sodium, delayed-rectifier potassium, a slow
M-type potassium current, leak; 8 free parameters) and neural posterior estimation on
summary statistics of the voltage trace. Here we repeat that with
:class:`helmholtz.models.HodgkinHuxley` and ``method="npe"``: the model is driven by the
recorded current, the posterior is learned from simulations, and we check it by
simulating from it: do the simulated traces fire like the recorded one?
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.app.recording_fit import default_recording, predictive_check

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
NUM_SIMULATIONS = 500 if QUICK else 20_000
NUM_ROUNDS = 1 if QUICK else 4

# %%
# The recording
# -------------
# One sweep of the Allen Cell Types Database (as excerpted by Goncalves et al.): a mouse
# visual-cortex neuron under a one-second current step, sampled at 50 kHz. Without the
# shared reference data, a recording simulated from known parameters stands in.

recording, what = default_recording()
if QUICK:
    recording = recording.window(100.0, 500.0)  # the first 300 ms of the step
print(
    f"fitting {what}: step of {recording.stimulus_amplitude * 1000:.0f} pA, {recording.duration:.0f} ms at dt = {recording.dt} ms"
)

# %%
# The model and its summary statistics
# ------------------------------------
# :meth:`~helmholtz.models.HodgkinHuxley.cortical` builds the model from the recording:
# its current (as a density over an assumed soma area), its sampling interval and its
# stimulus window. The prior is the box of Goncalves et al.; inference conditions on
# 14 summary statistics of the trace (spike count and timing, spike shape, resting
# potential, moments and autocorrelation of the voltage).

model = hz.models.HodgkinHuxley.cortical(recording=recording)
for parameter in model.parameters:
    print(f"  {parameter.name:>8} ~ Uniform({parameter.low:g}, {parameter.high:g}) {parameter.unit}")
prior_traces = model.simulate_batch(0, model.theta_of(model.sample_prior(1, 3)))

figure, axes = plt.subplots(4, 1, figsize=(9, 6), sharex=True)
axes[0].plot(recording.time, recording.voltage, color="k", lw=0.5)
axes[0].set_title("recorded", loc="left", fontsize=9)
for axis, trace in zip(axes[1:], prior_traces):
    axis.plot(recording.time, trace, color="0.4", lw=0.5)
    axis.set_title("simulated from a prior draw", loc="left", fontsize=9)
axes[-1].set_xlabel("time (ms)")
figure.tight_layout()

# %%
# Neural posterior estimation
# ---------------------------
# Simulations run in batches in JAX (all local devices); sbi's NPE learns the posterior
# from them. With several rounds, each round's simulations are drawn only where the
# first posterior puts its mass (truncated proposals), which saves simulations: with four
# rounds of 5,000, the second to fourth rounds explore the corner of the prior where the
# cell sits depolarised by the step yet fires at its recorded rate.

fit = hz.fit(
    model,
    recording.voltage,
    method="npe",
    key=0,
    num_simulations=NUM_SIMULATIONS,
    num_rounds=NUM_ROUNDS,
    progress_bar=False,
)
print("simulations per round:", fit.diagnostics["num_simulations"], "invalid:", fit.diagnostics["num_invalid"])
print(fit.summary(kind="stats"))

# %%
# Posterior predictive check
# --------------------------
# Traces simulated at the posterior mode and from posterior draws should fire like the
# recording; the recorded summary statistics should sit inside their predictive
# distributions.

check = predictive_check(fit, num_draws=100 if QUICK else 300)
at_mode = model.simulate(2, check["mode"])
draws = fit.posterior_predictive(3, 2)
figure, axes = plt.subplots(3, 1, figsize=(9, 5), sharex=True, sharey=True)
axes[0].plot(recording.time, recording.voltage, color="k", lw=0.5)
axes[0].set_title("recorded", loc="left", fontsize=9)
axes[1].plot(recording.time, at_mode, color="C3", lw=0.5)
axes[1].set_title("simulated at the posterior mode", loc="left", fontsize=9)
axes[2].plot(recording.time, draws[0], color="C0", lw=0.5)
axes[2].set_title("simulated from a posterior draw", loc="left", fontsize=9)
axes[-1].set_xlabel("time (ms)")
figure.tight_layout()

names = check["names"]
figure, axes = plt.subplots(3, 5, figsize=(12, 6))
for axis, name, observed, predicted in zip(axes.ravel(), names, check["observed"], check["predicted"].T):
    axis.hist(predicted[np.isfinite(predicted)], bins=25, color="C0", alpha=0.7)
    axis.axvline(observed, color="k")
    axis.set_title(name, fontsize=8)
    axis.set_yticks([])
axes.ravel()[-1].set_visible(False)
figure.suptitle("posterior predictive summary statistics (histograms) and the recording's (lines)", fontsize=9)
figure.tight_layout()
spikes = names.index("spike_count")
print(
    f"spike count: recorded {check['observed'][spikes]:.0f}, at the posterior mode {np.median(check['at_mode'][:, spikes]):.0f}"
)
plt.show()
