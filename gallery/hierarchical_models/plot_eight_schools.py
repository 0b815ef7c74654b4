"""
Eight schools: NUTS against the posteriordb reference
=====================================================

Eight schools ran the same coaching programme and report its estimated effect y_j with a
known standard error sigma_j. How much do the schools really differ? The hierarchical
model lets the data decide: each school's true effect theta_j is drawn around a common
mean mu with spread tau, and the posterior of tau says how much to pool the schools
together. Small tau makes the posterior funnel-shaped, which NUTS handles well only in the
non-centred parameterisation theta_j = mu + tau theta_trans_j
(:class:`helmholtz.models.EightSchools`). Here we fit it with NumPyro's No-U-Turn
sampler (``method="nuts"``) and check the draws against the 10,000 Stan reference draws
of posteriordb, parameter by parameter, with
:func:`helmholtz.diagnostics.compare_to_reference`.
"""

import os

import jax
import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.models.posteriordb import load_posterior, reference_draws

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# The model, the data and the reference
# -------------------------------------
# :func:`~helmholtz.models.posteriordb.load_posterior` returns the model (the standard
# errors sigma_j are part of its design) and the observed effects;
# :func:`~helmholtz.models.posteriordb.reference_draws` the Stan draws, one array per site.

name = "eight_schools_noncentered"
model, y = load_posterior(name)
reference = reference_draws(name)
print("observed effects y:", np.asarray(y))
print("standard errors sigma:", model.sigma)
print("reference sites:", {site: draws.shape for site, draws in reference.items()})

# %%
# Sampling with NUTS
# ------------------
# Several chains give the split R-hat and the effective sample size (ESS) of each site,
# stored in ``fit.diagnostics``. A slightly higher target acceptance rate than the default
# keeps the step size small enough for the neck of the funnel.

nuts_options = (
    dict(num_chains=2, num_warmup=300, num_samples=300)
    if QUICK
    else dict(num_chains=4, num_warmup=1000, num_samples=2500)
)
fit = hz.fit(model, y, method="nuts", key=0, target_accept_prob=0.9, progress_bar=False, **nuts_options)
print(f"divergent transitions: {fit.diagnostics['num_divergent']}")
print(f"max R-hat: {max(float(np.max(r)) for r in fit.diagnostics['r_hat'].values()):.3f}")
print(f"min ESS of tau: {float(fit.diagnostics['ess']['tau']):.0f}")

# %%
# Parameter-by-parameter comparison
# ---------------------------------
# For every scalar parameter, :func:`~helmholtz.diagnostics.compare_to_reference` gives
# the error of our posterior mean and the ratio of our posterior sd, both in units of the
# reference sd. With S effective draws, the Monte Carlo error of a mean is about
# 1 / sqrt(S) reference sds, so errors within a few times that are what a correct sampler
# produces.

num_chains, num_samples = nuts_options["num_chains"], nuts_options["num_samples"]
draws = fit.sample(jax.random.PRNGKey(1), num_chains * num_samples)
comparison = hz.diagnostics.compare_to_reference(draws, reference)
labels = list(comparison)
mean_errors = np.array([comparison[label]["mean_error"] for label in labels])
sd_ratios = np.array([comparison[label]["sd_ratio"] for label in labels])
for label in ("mu", "tau", "theta[0]"):
    print(
        f"{label:>9}: mean error {comparison[label]['mean_error']:+.3f} sd, sd ratio {comparison[label]['sd_ratio']:.3f}"
    )
print(f"largest |mean error| over all parameters: {np.abs(mean_errors).max():.3f} reference sd")

# %%
# Marginals of tau and theta[0] over the reference, and the per-parameter errors. The
# Monte Carlo band uses the ESS of tau, the slowest-mixing parameter.

fig, (ax_tau, ax_theta, ax_error) = plt.subplots(1, 3, figsize=(12, 3.8))
for ax, ours, theirs, label in (
    (ax_tau, draws["tau"], reference["tau"], "tau"),
    (ax_theta, draws["theta"][:, 0], reference["theta"][:, 0], "theta[0]"),
):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    bins = np.linspace(*np.percentile(theirs, [0.5, 99.5]), 40)
    ax.hist(theirs, bins=bins, density=True, color="0.7", label="Stan reference")
    ax.hist(ours, bins=bins, density=True, histtype="step", lw=2, color="C0", label="helmholtz nuts")
    ax.set_xlabel(label)
    ax.set_yticks([])
    ax.set_title(f"posterior of {label}")
    ax.legend(fontsize=8)

band = 2 / np.sqrt(float(fit.diagnostics["ess"]["tau"]))
positions = np.arange(len(labels))
ax_error.axvspan(-band, band, color="0.88", label="±2 / sqrt(ESS of tau)")
ax_error.axvline(0, color="0.4", lw=1)
ax_error.plot(mean_errors, positions, "o", color="C0", label="mean error")
ax_error.set_yticks(positions, labels, fontsize=8)
ax_error.invert_yaxis()
ax_error.set_xlabel("(mean - reference mean) / reference sd")
ax_error.set_title("per-parameter mean error")
ax_error.legend(fontsize=7, loc="lower right")
fig.tight_layout()

plt.show()
