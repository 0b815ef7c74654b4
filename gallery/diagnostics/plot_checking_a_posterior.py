"""
Checking a posterior: convergence, predictive checks and calibration
====================================================================

Every back end returns draws, whether or not they are the posterior. How do we know they
are? Three checks, each stronger than the last, on a factor analysis
(:func:`helmholtz.models.FactorAnalysis`: x = G z + mean + noise, one Gaussian factor
behind two measured coordinates) fit with NumPyro's No-U-Turn sampler
(``method="nuts"``). First, do independent chains agree (split R-hat near 1)? Second,
does data replicated from the posterior look like the data (a posterior predictive
check, drawn by ArviZ)? Third, the only one of the three that catches a posterior that
is confidently wrong: simulation-based calibration (:func:`helmholtz.diagnostics.sbc`;
Talts et al., 2018) draws parameters from the prior, simulates a data set, refits it and
ranks each true value among the posterior draws, which are uniform for an exact
posterior. We run it for NUTS and for a point estimate that only pretends to be a
posterior, the MAP (``method="svi"`` with ``guide="delta"``).
"""

import os

import arviz as az
import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
NUTS = (
    dict(num_chains=2, num_warmup=100, num_samples=100)
    if QUICK
    else dict(num_chains=4, num_warmup=500, num_samples=500)
)
NUM_SBC_FITS = 1 if QUICK else 50  # quick: runs the code only; full: 10 bins of 5 expected ranks

# %%
# A data set from known parameters
# --------------------------------
model = hz.models.FactorAnalysis(obs_dim=2, latent_dim=1)
truth = {name: value[0] for name, value in model.sample_prior(0, 1).items()}
x = model.simulate(1, truth, num_points=40)

# %%
# 1. Do the chains agree?
# -----------------------
# ``fit.diagnostics`` holds NumPyro's split R-hat per site. The sign of a single factor is
# not identified: G and -G fit equally well, and chains that settle on different signs
# disagree about G while agreeing about everything the data can tell, here G G^T. So
# R-hat is read on identifiable quantities. ArviZ's rank plots show each chain's share
# of every rank bin: flat bars mean the chains mix.
fit = hz.fit(model, x, method="nuts", key=2, progress_bar=False, **NUTS)
print(
    {site: round(float(np.max(r_hat)), 2) for site, r_hat in fit.diagnostics["r_hat"].items()},
    "(largest R-hat per site)",
)
print("divergent transitions:", fit.diagnostics["num_divergent"])

idata = fit.to_arviz(key=3)
loadings = idata.posterior["loadings"].values[..., 0]  # (chain, draw, coordinate)
covariance = np.stack([loadings[..., 0] ** 2, loadings[..., 0] * loadings[..., 1], loadings[..., 1] ** 2], axis=-1)
checked = az.convert_to_dataset({"G": loadings, "G G^T": covariance})
print(az.rhat(checked).max().to_pandas().round(2).to_string())
figure, axes = plt.subplots(1, 5, figsize=(12, 3), layout="constrained")
az.plot_rank(checked, ax=axes)

# %%
# 2. Does replicated data look like the data?
# -------------------------------------------
# Each posterior draw simulates a data set the size of the observed one; ArviZ overlays
# their densities on that of the observed values. A model that cannot reproduce its data
# shows here, however well its chains mixed.
az.plot_ppc(idata, num_pp_samples=50, figsize=(6, 3.2))

# %%
# 3. Are the posteriors calibrated?
# ---------------------------------
# Each simulation is a fresh prior draw, data set and fit. The rank of each identifiable
# parameter (mean, noise and G G^T) among 19 posterior draws should be uniform on 0..19;
# the grey band is where 99% of the counts of a uniform would fall. The MAP has no
# spread, so its ranks pile up at 0 and 19, and the chi-square test rejects it. (One chain
# per fit keeps the 50 fits affordable.)
options = dict(num_simulations=NUM_SBC_FITS, num_posterior_draws=19, num_points=40, progress_bar=False)
results = {
    "nuts": hz.diagnostics.sbc(model, "nuts", key=4, **options, **dict(NUTS, num_chains=1)),
    "MAP": hz.diagnostics.sbc(model, "svi", key=4, **options, guide="delta", num_steps=500),
}
statistics = len(results["nuts"].names)
figure, axes = plt.subplots(2, statistics, figsize=(1.6 * statistics, 3.6), sharex=True)
for row, (label, result) in zip(axes, results.items()):
    result.plot(row)
    row[0].set_ylabel(label)
    for axis in row:
        axis.set_title(axis.get_title().replace("loadings_covariance", "G G^T"), fontsize=9)
    print(f"{label}: passes the uniformity test: {result.passes()}; p-values {np.round(result.p_values, 3)}")
figure.suptitle("SBC rank histograms of the identifiable parameters")
plt.tight_layout()
plt.show()
