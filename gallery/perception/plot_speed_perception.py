"""
Speed perception: the prior people hold about how fast things move
===================================================================

Why does a grating look slower at low contrast than at high contrast (Thompson, 1982)?
Stocker & Simoncelli (2006) explained it as Bayesian inference: the brain measures speed
with noise that grows as contrast falls, and combines the measurement with a prior that
favours slow speeds, so a noisier measurement is pulled further towards slow. They
inferred both the noise and the prior from a person's choices in a two-interval speed
comparison. Here we do the same with real trials of their experiment (subject 1: 5,760
trials, read from ``../shared/reference/stocker_simoncelli_2006/``): the observer
:func:`helmholtz.perception.speed_experiment` (heavy-tailed prior, one noise width per
contrast, percept = posterior mean; the prior is a power law restricted to favour slow
speeds, ``prior="slow"``), fit by maximum a posteriori estimation (``method="svi"`` with a
delta guide), against the same observer with a Gaussian prior and with no prior at all;
then :func:`helmholtz.diagnostics.compare` ranks five priors by how well each predicts
trials it was not fit to.
"""

import os

import jax
import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.perception import speed_experiment
from helmholtz.perception.speed import contrast_levels

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
trials = hz.data.stocker_simoncelli_subject(1)
if QUICK:  # two reference speeds at contrast 0.5, three test contrasts: a fourteenth of the trials
    quick = (
        trials["ref_speed_deg_s"].isin([1.0, 4.0])
        & (trials["ref_contrast"] == 0.5)
        & trials["test_contrast"].isin([0.05, 0.2, 0.8])
    )
    trials = trials[quick].reset_index(drop=True)
responses = trials["test_seen_faster"].to_numpy(float)
SVI = dict(
    method="svi",
    guide="delta",
    num_steps=250 if QUICK else 2000,
    learning_rate=0.04 if QUICK else 0.02,
    progress_bar=False,
)

fits, params = {}, {}
for prior in ("slow", "gaussian", None):
    experiment = speed_experiment(trials, prior=prior, grid_size=128 if QUICK else 256)
    fits[prior] = hz.fit(experiment, responses, key=0, **SVI)
    params[prior] = jax.tree.map(lambda draws: np.asarray(draws[0]), fits[prior].sample(0, 1))
    p = np.asarray(experiment.response_probability(params[prior]))
    log_likelihood = (responses * np.log(p) + (1 - responses) * np.log1p(-p)).sum()
    print(f"prior {str(prior):8s}: log-likelihood {log_likelihood:9.1f} on {len(trials)} trials")

# %%
# The noise and the prior
# -----------------------
# Left: the fitted likelihood width (in log speed) falls as contrast rises. Right: the
# fitted priors over speed, each normalised over 0.3 to 30 deg/s, on log-log axes: the
# power-law tail of the heavy-tailed prior is a straight line, the Gaussian falls off a cliff.
# Comparisons pin down relative biases: the bias of a percept is about its noise variance
# times the prior's local log-log slope, so the data fix how that slope and the noise
# trade off, not the prior's absolute scale; a steep prior with small noise and a shallower
# one with more noise predict similar choices.
contrasts = contrast_levels(trials)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for prior, marker in (("slow", "o"), ("gaussian", "s"), (None, "^")):
    axes[0].plot(contrasts, params[prior]["noise"], marker + "-", label=f"prior: {prior}")
axes[0].set(xscale="log", xlabel="contrast", ylabel="likelihood width (log speed)", title="noise falls with contrast")
axes[0].set_xticks(contrasts, [f"{c:g}" for c in contrasts], minor=False)
axes[0].minorticks_off()
axes[0].legend(fontsize=8)
speeds = np.geomspace(0.3, 30, 300)
for prior in ("slow", "gaussian"):
    observer = fits[prior].model.observer
    log_density = np.asarray(observer.prior.log_density(speeds, params[prior]))
    density = np.exp(log_density - log_density.max())
    density /= np.trapezoid(density, speeds)
    axes[1].plot(speeds, density, label=f"{prior} prior")
axes[1].set(
    xscale="log",
    yscale="log",
    xlabel="speed (deg/s)",
    ylabel="prior density",
    title="the fitted speed priors",
    ylim=(1e-6, None),
)
axes[1].legend(fontsize=8)
fig.tight_layout()

# %%
# Choices against the observer
# ----------------------------
# One reference (4 deg/s at contrast 0.5) against tests of three contrasts: the proportion
# of "test faster" answers in bins of the speed ratio, and the heavy-tailed observer's
# prediction. The low-contrast test must move faster to be matched: its curve lies to the
# right (the Thompson effect).
experiment = fits["slow"].model
predicted = np.asarray(experiment.response_probability(params["slow"]))
fig, ax = plt.subplots(figsize=(5.5, 3.8))
ratio = np.log2(trials["test_speed_deg_s"] / trials["ref_speed_deg_s"]).to_numpy()
bins = np.linspace(-1.5, 1.5, 13)
for test_contrast, color in zip((0.05, 0.2, 0.8), ("C0", "C1", "C2")):
    chosen = (
        (trials["ref_speed_deg_s"] == 4.0)
        & (trials["ref_contrast"] == 0.5)
        & (trials["test_contrast"] == test_contrast)
    )
    chosen = chosen.to_numpy()
    which = np.digitize(ratio[chosen], bins)
    centres = [ratio[chosen][which == b].mean() for b in np.unique(which)]
    observed = [responses[chosen][which == b].mean() for b in np.unique(which)]
    ax.plot(centres, observed, "o", color=color, ms=4, label=f"test contrast {test_contrast}")
    order = np.argsort(ratio[chosen])
    ax.plot(ratio[chosen][order], predicted[chosen][order], "-", color=color)
ax.axhline(0.5, c="grey", lw=0.5)
ax.set(xlabel="log2(test speed / reference speed)", ylabel='P("test faster")', title="reference 4 deg/s, contrast 0.5")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Which prior do the choices prefer?
# ----------------------------------
# A better fit to the trials it was fit to is not yet a better model: a prior with more
# parameters always fits them better. :func:`helmholtz.diagnostics.compare` scores each
# observer by how well it predicts trials it was not fit to (the expected log predictive
# density, elpd) and ranks them with ArviZ's ``az.compare``. Each observer here is a
# maximum a posteriori fit (a delta guide), which has no posterior draws to reweight, so
# ``compare`` refits it on all but one fold of the trials and scores that fold (K-fold
# cross-validation; it says so in the table); given NUTS fits it would use PSIS-LOO and
# refit exactly the trials whose Pareto k is above 0.7. The full build uses 5 folds, the
# quick one 2. ``benchmarks/speed_loo.py`` ranks the five priors by PSIS-LOO from NUTS
# fits, against the 5-fold table of ``benchmarks/README.md``: the same order for subject 3.
for prior in ("power", "piecewise"):
    experiment = speed_experiment(trials, prior=prior, grid_size=128 if QUICK else 256)
    fits[prior] = hz.fit(experiment, responses, key=0, **SVI)
labels = {"slow": "slow", "gaussian": "gaussian", None: "unbiased", "power": "power", "piecewise": "piecewise"}
comparison = hz.diagnostics.compare({labels[prior]: fit for prior, fit in fits.items()}, folds=2 if QUICK else 5)
print(comparison)
table = comparison.table.iloc[::-1]
fig, ax = plt.subplots(figsize=(6.5, 3.2))
# The differences from the best, with their standard errors: what the ranking rests on.
ax.errorbar(-table["elpd_diff"], np.arange(len(table)), xerr=table["dse"], fmt="o", capsize=3)
ax.axvline(0.0, color="grey", lw=0.5)
ticks = [f"{name}\n({estimate})" for name, estimate in zip(table.index, table["estimate"])]
ax.set_yticks(np.arange(len(table)), ticks, fontsize=8)
ax.set(xlabel=f"held-out log-likelihood minus the best's (nats, {len(trials)} trials; +- se)")
ax.set_title("the five priors, best on top")
fig.tight_layout()

# %%
# The five observers
# ------------------
# The same observer fit to each of the five people of the experiment. Each person's prior falls with speed and
# each person's noise falls with contrast; how steeply differs from person to person.
# (In quick mode, only the second observer, on the subset of trials used above.)
# ``benchmarks/speed_observers.py`` scores these fits on held-out trials.
subjects = (2,) if QUICK else (1, 2, 3, 4, 5)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for subject in subjects:
    table = hz.data.stocker_simoncelli_subject(subject)
    if QUICK:
        table = table[
            table["ref_speed_deg_s"].isin([1.0, 4.0])
            & (table["ref_contrast"] == 0.5)
            & table["test_contrast"].isin([0.05, 0.2, 0.8])
        ].reset_index(drop=True)
    experiment = speed_experiment(table, grid_size=128 if QUICK else 256)
    fit = hz.fit(experiment, table["test_seen_faster"].to_numpy(float), key=0, **SVI)
    fitted = jax.tree.map(lambda draws: np.asarray(draws[0]), fit.sample(0, 1))
    axes[0].plot(contrast_levels(table), fitted["noise"], "o-", label=f"subject {subject}")
    log_density = np.asarray(experiment.observer.prior.log_density(speeds, fitted))
    density = np.exp(log_density - log_density.max())
    axes[1].plot(speeds, density / np.trapezoid(density, speeds), label=f"subject {subject}")
axes[0].set(xscale="log", xlabel="contrast", ylabel="likelihood width (log speed)", title="noise, per observer")
axes[1].set(
    xscale="log",
    yscale="log",
    xlabel="speed (deg/s)",
    ylabel="prior density",
    title="speed prior, per observer",
    ylim=(1e-6, None),
)
for ax in axes:
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
