"""
Wilson-Cowan: inferring the circuit behind a rhythm
===================================================

A population of excitatory cells and one of inhibitory cells, coupled, can sit at a steady
rate or oscillate (Wilson & Cowan, 1972): strong enough excitation of the inhibitory cells
closes a negative feedback loop whose delay makes the rhythm. If we observe a rhythm, which
couplings and time constants could have produced it? We declare the rate model as a
simulator (:class:`helmholtz.models.WilsonCowan`; its summary statistics are the mean,
spread, dominant frequency and autocorrelation of the rates), simulate both regimes, then
infer the parameters behind an observed oscillation with neural posterior estimation
(``method="npe"``).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
NUM_SIMULATIONS = 1_000 if QUICK else 10_000

model = hz.models.WilsonCowan()
print("free parameters:", ", ".join(f"{p.name} ~ U({p.low:g}, {p.high:g})" for p in model.parameters))

# %%
# Two regimes
# -----------
# With the classic constants, a weak drive P leaves the populations at a stable fixed
# point; at P = 1.25 the fixed point loses stability and the rates settle on a limit cycle.

steady = {"w_EE": 16.0, "w_EI": 12.0, "w_IE": 15.0, "P": 0.5, "tau_I": 10.0, "sigma": 0.002}
rhythm = dict(steady, P=1.25)
figure, axes = plt.subplots(1, 3, figsize=(12, 3.2))
for regime, params, color in [("P = 0.5: fixed point", steady, "C0"), ("P = 1.25: limit cycle", rhythm, "C3")]:
    x = np.asarray(model.simulate(0, params))
    axes[0 if color == "C0" else 1].plot(model.times, x[:, 0], color=color, label="E")
    axes[0 if color == "C0" else 1].plot(model.times, x[:, 1], color=color, ls="--", label="I")
    axes[0 if color == "C0" else 1].set(title=regime, xlabel="time (ms)", ylabel="rate")
    axes[2].plot(x[:, 0], x[:, 1], color=color, lw=0.8)
axes[0].legend()
axes[2].set(title="phase plane", xlabel="E", ylabel="I")
figure.tight_layout()

# %%
# Inferring the parameters behind a rhythm
# ----------------------------------------
# We simulate an observation in the oscillating regime and ask NPE for the posterior.
# The drive P and the inhibitory time constant tau_I (which sets the period) should be
# pinned down; the couplings trade off against each other.

observed = np.asarray(model.simulate(1, rhythm))
names = model.feature_names
print({name: round(float(value), 3) for name, value in zip(names, np.asarray(model.summarize(observed[None]))[0])})
fit = hz.fit(model, observed, method="npe", key=0, num_simulations=NUM_SIMULATIONS, progress_bar=False)
draws = fit.sample(1, 2000)
print("simulations excluded as invalid:", fit.diagnostics["num_invalid"])

figure, axes = plt.subplots(1, len(model.parameters), figsize=(2.3 * len(model.parameters), 2.4))
for axis, parameter in zip(axes, model.parameters):
    axis.hist(np.asarray(draws[parameter.name]), bins=40, range=(parameter.low, parameter.high), color="C0", alpha=0.7)
    axis.axvline(rhythm[parameter.name], color="k")
    axis.set(title=parameter.name, yticks=[])
figure.suptitle("posterior (histograms) and the true values (lines); the x-range is the prior's", fontsize=9)
figure.tight_layout()
plt.show()
