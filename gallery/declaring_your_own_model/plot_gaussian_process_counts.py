"""
A Gaussian-process model of counts, declared as a NumPyro function
==================================================================

How does a count rate vary smoothly along an input, when all we see are Poisson counts?
posteriordb's ``gp_pois_regr`` puts a Gaussian-process prior on the log rate f(x) at 11
inputs, with a squared-exponential kernel whose length scale rho and amplitude alpha are
learnt too. It is not a zoo model: we write it as a NumPyro function, wrap it in
:class:`helmholtz.models.Program`, sample it with NUTS (``method="nuts"``) and check the
draws of rho, alpha and f against Stan's 10,000 reference draws.
"""

import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import numpyro
import numpyro.distributions as dist

import helmholtz as hz
from helmholtz.models.posteriordb import read_data, read_draws

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# The model
# ---------
# rho ~ Gamma(25, 4), alpha ~ HalfNormal(2); f = L f_tilde with f_tilde ~ N(0, I) and
# L L^T = K, K_nm = alpha^2 exp(-(x_n - x_m)^2 / (2 rho^2)) + 1e-10 [n = m] (the
# non-centred form, which NUTS samples well); k_n ~ Poisson(exp f_n). ``f`` is a
# deterministic site, so its draws are kept beside the sampled ones.


@hz.serializable
def gp_pois_regr(x, k=None):
    rho = numpyro.sample("rho", dist.Gamma(25.0, 4.0))
    alpha = numpyro.sample("alpha", dist.HalfNormal(2.0))
    f_tilde = numpyro.sample("f_tilde", dist.Normal(0.0, 1.0).expand([len(x)]).to_event(1))
    kernel = alpha**2 * jnp.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * rho**2)) + 1e-10 * jnp.eye(len(x))
    f = numpyro.deterministic("f", jnp.linalg.cholesky(kernel) @ f_tilde)
    numpyro.sample("k", dist.Poisson(jnp.exp(f)).to_event(1), obs=k)


data = read_data("gp_pois_regr")
x = data["x"].astype(float)
model = hz.models.Program(gp_pois_regr, observed="k", data={"x": x})
print("sites:", model.sites())

# %%
# Sampling with NUTS, in 64-bit
# -----------------------------
# At the posterior's length scales (rho near 6, inputs 2 apart) the kernel matrix's
# smallest eigenvalue is about 1e-8 of its largest, below float32's resolution: its
# Cholesky factor comes out NaN. JAX's 64-bit mode, switched on for this fit only,
# keeps the model exactly as written (with its 1e-10 jitter).

sizes = (
    dict(num_chains=2, num_warmup=300, num_samples=300)
    if QUICK
    else dict(num_chains=4, num_warmup=1000, num_samples=2500)
)
with jax.enable_x64(True):
    fit = hz.fit(model, data["k"], method="nuts", key=0, target_accept_prob=0.9, progress_bar=False, **sizes)
    draws = fit.sample(1, sizes["num_chains"] * sizes["num_samples"])
print(f"divergent transitions: {fit.diagnostics['num_divergent']}")

reference = read_draws("gp_pois_regr-gp_pois_regr")
comparison = hz.diagnostics.compare_to_reference(draws, reference)
print(f"largest |mean error|: {max(abs(c['mean_error']) for c in comparison.values()):.3f} reference sd")
for label in ("rho", "alpha", "f[5]"):
    error, ratio = comparison[label]["mean_error"], comparison[label]["sd_ratio"]
    print(f"{label:>6}: mean error {error:+.3f} sd, sd ratio {ratio:.3f}")

# %%
# The log rate f(x) (median and 90% band) over the reference and the observed counts,
# and the marginal of the length scale.

fig, (ax_f, ax_rho) = plt.subplots(1, 2, figsize=(10, 4))
for values, color, label in (
    (reference["f"], "0.5", "Stan reference"),
    (np.asarray(draws["f"]), "C0", "helmholtz nuts"),
):
    low, middle, high = np.percentile(values, [5, 50, 95], axis=0)
    ax_f.fill_between(x, low, high, color=color, alpha=0.3)
    ax_f.plot(x, middle, color=color, label=f"{label} (median, 90%)")
ax_f.plot(x, np.log(data["k"]), "k.", label="log of the observed counts")
ax_f.set(xlabel="x", ylabel="log rate f", title="latent log rate")
ax_f.legend(fontsize=8)
bins = np.linspace(*np.percentile(reference["rho"], [0.5, 99.5]), 40)
ax_rho.hist(reference["rho"], bins=bins, density=True, color="0.7", label="Stan reference")
ax_rho.hist(
    np.asarray(draws["rho"]), bins=bins, density=True, histtype="step", lw=2, color="C0", label="helmholtz nuts"
)
ax_rho.set(xlabel="rho", yticks=[], title="length scale")
ax_rho.legend(fontsize=8)
fig.tight_layout()
plt.show()
