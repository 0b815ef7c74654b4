"""
A regression from a NumPyro function: children's test scores
=============================================================

Does a mother's IQ predict her child's test score, and how precisely? posteriordb's
``kidiq-kidscore_momiq`` is a linear regression of 434 children's scores on their
mothers' IQ, with flat priors on the coefficients. It is not a zoo model: we write it as a
plain NumPyro function, wrap it in :class:`helmholtz.models.Program` (naming the observed
site and giving the covariate once, as fixed data), sample it with NUTS
(``method="nuts"``), check the draws against Stan's 10,000 reference draws, and save and
reload the fit.
"""

import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import numpyro
import numpyro.distributions as dist

import helmholtz as hz
from helmholtz.models.posteriordb import read_data, read_draws

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# The model: a NumPyro function
# -----------------------------
# kid_score_n ~ N(beta_1 + beta_2 mom_iq_n, sigma), beta flat (Stan's default for an
# unbounded parameter without a prior: an improper uniform), sigma ~ HalfCauchy(2.5).
# ``@hz.serializable`` registers the function by name, so that fits of it can be saved.


@hz.serializable
def kidscore_momiq(mom_iq, kid_score=None):
    beta = numpyro.sample("beta", dist.ImproperUniform(dist.constraints.real_vector, (), (2,)))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    with numpyro.plate("data", len(mom_iq)):
        numpyro.sample("kid_score", dist.Normal(beta[0] + beta[1] * mom_iq, sigma), obs=kid_score)


data = read_data("kidiq")
model = hz.models.Program(kidscore_momiq, observed="kid_score", data={"mom_iq": data["mom_iq"]})
print(model)
print("sites:", model.sites())
print("back ends that can fit it:", hz.methods_for(model))

# %%
# Sampling with NUTS
# ------------------
# mom_iq is not centred (its mean is 100), so the intercept and the slope are correlated
# at -0.99: a dense mass matrix lets NUTS take steps along that ridge.

sizes = (
    dict(num_chains=2, num_warmup=300, num_samples=300)
    if QUICK
    else dict(num_chains=4, num_warmup=1000, num_samples=2500)
)
fit = hz.fit(model, data["kid_score"], method="nuts", key=0, dense_mass=True, progress_bar=False, **sizes)
print(fit.summary())

reference = read_draws("kidiq-kidscore_momiq")
draws = fit.sample(1, sizes["num_chains"] * sizes["num_samples"])
for label, comparison in hz.diagnostics.compare_to_reference(draws, reference).items():
    print(f"{label:>8}: mean error {comparison['mean_error']:+.3f} sd, sd ratio {comparison['sd_ratio']:.3f}")

# %%
# Saving and loading
# ------------------
# The file stores the function's registered name and the covariate as an array, never
# code; loading needs the function's module imported (here it is this script).

with tempfile.TemporaryDirectory() as folder:
    loaded = hz.load(fit.save(os.path.join(folder, "kidiq.hz")))
print("reloaded draws identical:", np.array_equal(loaded.sample(2, 100)["beta"], fit.sample(2, 100)["beta"]))

# %%
# The joint posterior of the coefficients over the reference, and sigma's marginal.

fig, (ax_beta, ax_sigma) = plt.subplots(1, 2, figsize=(10, 4))
ax_beta.scatter(*reference["beta"][:2000].T, s=3, color="0.6", alpha=0.5, label="Stan reference")
ax_beta.scatter(*np.asarray(draws["beta"])[:2000].T, s=3, color="C0", alpha=0.5, label="helmholtz nuts")
ax_beta.set(xlabel="intercept beta[0]", ylabel="slope beta[1] (points per IQ point)", title="coefficients")
ax_beta.legend(markerscale=4, fontsize=8)
bins = np.linspace(*np.percentile(reference["sigma"], [0.5, 99.5]), 40)
ax_sigma.hist(reference["sigma"], bins=bins, density=True, color="0.7", label="Stan reference")
ax_sigma.hist(
    np.asarray(draws["sigma"]), bins=bins, density=True, histtype="step", lw=2, color="C0", label="helmholtz nuts"
)
ax_sigma.set(xlabel="sigma", yticks=[], title="residual sd")
ax_sigma.legend(fontsize=8)
fig.tight_layout()
plt.show()
