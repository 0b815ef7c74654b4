"""
Cue combination: seeing and feeling the size of a bar
=====================================================

When you look at a bar and hold it, how do you combine what the eye and the hand say about
its height? Ernst & Banks (2002) showed that people weight each sense by its reliability,
as a maximum-likelihood observer would: each cue's weight is proportional to its inverse
variance, and the combined estimate is more precise than either cue. They made the visual
cue less reliable with random-dot noise and watched the weight shift to touch. Here we
simulate their two-interval experiment (a 55 mm standard whose visual and haptic sizes
disagree by up to 6 mm, against a conflict-free comparison) with the observer
:class:`helmholtz.perception.ErnstBanksExperiment`, recover its noise levels with NumPyro's
No-U-Turn sampler (``method="nuts"``), and draw the psychometric functions, the visual
weights and the thresholds. At the end, Bayesian causal inference (Koerding et al., 2007)
shows when the two senses stop being combined: when they disagree too much to share a cause.
"""

import os

import jax
import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.perception import ErnstBanksExperiment, causal_inference, combine_cues_with_prior, ernst_banks_design

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
REPEATS = 5 if QUICK else 20
NUTS_OPTIONS = dict(num_chains=1, num_warmup=150, num_samples=150)
if not QUICK:
    NUTS_OPTIONS = dict(num_chains=4, num_warmup=500, num_samples=1000)

# %%
# The experiment and the observer
# -------------------------------
# Four visual noise levels (the paper's 0, 67, 133 and 200% noise), conflicts of -6 to +6 mm,
# comparisons from 45 to 65 mm. The simulated observer's haptic noise is 5 mm; its visual
# noise grows from 2.5 to 10 mm, so at the lowest noise vision dominates and at the highest
# touch does.
truth = {"sigma_haptic": 5.0, "sigma_visual": np.array([2.5, 5.0, 7.5, 10.0]), "lapse": 0.02}
experiment = ErnstBanksExperiment(**ernst_banks_design(repeats=REPEATS))
choices = np.asarray(experiment.simulate(0, truth))
fit = hz.fit(experiment, choices, method="nuts", key=1, progress_bar=False, **NUTS_OPTIONS)
draws = fit.sample(2, 400)
print(fit.summary())

# %%
# Psychometric functions
# ----------------------
# The proportion of "comparison taller" answers against the comparison's size, at the
# largest conflict (+6 mm: visual 58, haptic 52 mm). The point of subjective equality moves
# from near the visual size (58) to near the haptic size (52) as the visual noise grows.
# (Each section draws its own figure: the page shows a section's figures after its code.)
fig, ax = plt.subplots(figsize=(6, 4))
colors = plt.cm.viridis(np.linspace(0, 0.9, 4))
posterior_mean = {name: np.asarray(value).mean(0) for name, value in draws.items()}
p_fit = np.asarray(experiment.response_probability(posterior_mean))
for level, color in enumerate(colors):
    chosen = (experiment.noise_level == level) & (experiment.conflict == 6.0)
    sizes = np.unique(experiment.comparison[chosen])
    observed = [choices[chosen & (experiment.comparison == s)].mean() for s in sizes]
    ax.plot(sizes, observed, "o", color=color, ms=4)
    fitted_curve = [p_fit[chosen & (experiment.comparison == s)][0] for s in sizes]
    ax.plot(sizes, fitted_curve, "-", color=color, label=f"visual noise level {level}")
ax.axvline(58, ls=":", c="k")
ax.axvline(52, ls=":", c="k")
ax.set(xlabel="comparison size (mm)", ylabel='P("comparison taller")', title="conflict +6 mm: data (dots), fit (lines)")
ax.legend(fontsize=7)
fig.tight_layout()

# %%
# Weights and thresholds
# ----------------------
# The visual weight the observer's fitted noise levels imply, against the truth; and the
# discrimination threshold (the sd of the difference of two estimates, sqrt(2) sigma) of
# each cue alone and combined: the combination beats the better cue at every noise level.
levels = np.arange(4)
fitted = jax.vmap(experiment.psychometrics)(draws)  # per posterior draw: weights, PSEs, thresholds
true = experiment.psychometrics(truth)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
weight_draws = np.asarray(fitted["visual_weight"][:, :, 0])
axes[0].errorbar(levels, weight_draws.mean(0), yerr=weight_draws.std(0), fmt="o", label="fitted (posterior mean +- sd)")
axes[0].plot(levels, true["visual_weight"][:, 0], "k_", ms=20, label="true")
axes[0].set(
    xlabel="visual noise level", ylabel="visual weight", ylim=(0, 1), xticks=levels, title="weights follow reliability"
)
axes[0].legend(fontsize=7)
axes[1].plot(levels, np.sqrt(2) * truth["sigma_visual"], "o-", label="vision alone")
axes[1].plot(levels, np.full(4, np.sqrt(2) * truth["sigma_haptic"]), "s-", label="touch alone")
axes[1].plot(levels, true["threshold"][:, 0], "^-", label="both (maximum likelihood)")
axes[1].set(xlabel="visual noise level", ylabel="threshold (mm)", xticks=levels, title="combined beats either cue")
axes[1].legend(fontsize=7)
fig.tight_layout()

# %%
# Causal inference: when not to combine
# -------------------------------------
# Two cues 2 mm apart surely come from one object and are fused; 30 mm apart they probably
# do not, and each sense keeps its own estimate. Koerding et al. (2007)'s observer weighs
# the two structures by their posterior probability; its estimate of the visual source
# first follows the haptic cue, then lets go.
visual = 0.0
haptic = np.linspace(-40, 40, 401)
result = causal_inference(visual, haptic, sigma_1=3.0, sigma_2=6.0, prior_sigma=20.0, p_common=0.5)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
axes[0].plot(haptic - visual, result["p_common"])
axes[0].set(
    xlabel="haptic - visual measurement (mm)", ylabel="P(one cause)", title="posterior probability of a common cause"
)
axes[1].plot(haptic - visual, result["estimate_1"], label="causal inference")
measurements = np.stack([np.full_like(haptic, visual), haptic], -1)
always_fused, _ = combine_cues_with_prior(measurements, np.broadcast_to([3.0, 6.0], measurements.shape), 0.0, 20.0)
axes[1].plot(haptic - visual, always_fused, ":", label="always fuse")
axes[1].set(
    xlabel="haptic - visual measurement (mm)",
    ylabel="estimate of the visual source (mm)",
    title="fusion, then segregation",
)
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
