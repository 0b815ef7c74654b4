"""
Factor analysis: recovering loadings up to rotation
===================================================

Factor analysis explains correlated measurements x (say, the responses of a handful of
neurons) by a few shared Gaussian factors z: x = G z + mean + noise, with one noise
variance per measured coordinate. Can we recover the loadings G from data alone? Not
entirely: for any rotation R, the loadings G R fit the data exactly as well as G, so only
the loadings covariance G G^T is pinned down. This example simulates data from known
loadings, fits :func:`helmholtz.models.FactorAnalysis` with two back ends, NumPyro's
No-U-Turn sampler (``method="nuts"``) and stochastic variational inference
(``method="svi"``, mean-field normal guide), and checks that both recover G G^T.
Probabilistic PCA (:func:`helmholtz.models.ProbabilisticPCA`) is the same model with one
noise variance shared by all coordinates; everything below applies to it unchanged.
"""

import os

import jax
import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# Simulated data from known loadings
# ----------------------------------
# We pick the true parameters ourselves: two factors load on eight measured coordinates
# (six in quick mode), and every coordinate has its own noise level (the hallmark of factor analysis).
# :meth:`~helmholtz.models.LinearLVM.simulate` draws the factors z and the noise, and
# returns the data, one row per data point.

obs_dim, latent_dim = (6, 2) if QUICK else (8, 2)
num_points = 150 if QUICK else 500

rng = np.random.default_rng(0)
truth = {
    "loadings": rng.normal(size=(obs_dim, latent_dim)),
    "mean": rng.normal(scale=2.0, size=obs_dim),
    "noise": rng.permutation(np.linspace(0.2, 1.2, obs_dim)),
}
model = hz.models.FactorAnalysis(obs_dim, latent_dim)
x = np.asarray(model.simulate(jax.random.PRNGKey(1), truth, num_points=num_points))
print(f"data: {x.shape[0]} points of dimension {x.shape[1]}")

# %%
# Two back ends, one call
# -----------------------
# The factors are integrated out of the likelihood in closed form, so the posterior is
# over the global parameters only and NUTS can sample it. SVI fits a mean-field normal
# approximation to the same posterior by maximising the ELBO.

nuts_options = (
    dict(num_chains=1, num_warmup=150, num_samples=150, max_tree_depth=6)
    if QUICK
    else dict(num_chains=2, num_warmup=500, num_samples=500)
)
nuts_fit = hz.fit(model, x, method="nuts", key=0, progress_bar=False, **nuts_options)
# A fixed number of SVI steps: ``patience=0`` switches the plateau test off.
svi_options = dict(num_steps=2000 if QUICK else 10_000, learning_rate=2e-2, patience=0, progress_bar=False)
svi_fit = hz.fit(model, x, method="svi", key=0, guide="normal", **svi_options)
print(f"nuts: {nuts_fit.diagnostics['num_divergent']} divergent transitions")
print(f"svi: {svi_fit.diagnostics['num_steps']} steps")

# %%
# The loadings themselves are not identified
# ------------------------------------------
# Rotating the two factors leaves the likelihood (and the rotation-invariant prior)
# unchanged, so the posterior of one row of G is smeared along a circle around the origin
# rather than concentrated at the true row: comparing G entry by entry with the truth
# would be meaningless.

nuts_draws = nuts_fit.sample(jax.random.PRNGKey(2), 300)
svi_draws = svi_fit.sample(jax.random.PRNGKey(2), 300)

fig, ax = plt.subplots(figsize=(4.2, 4.2))
for row in range(3):
    draws = np.asarray(nuts_draws["loadings"][:, row, :])
    ax.scatter(draws[:, 0], draws[:, 1], s=4, alpha=0.4, color=f"C{row}", label=f"row {row} (nuts draws)")
    radius = np.linalg.norm(truth["loadings"][row])
    ax.add_patch(plt.Circle((0, 0), radius, fill=False, color=f"C{row}", ls="--", lw=1))
    ax.plot(*truth["loadings"][row], "k*", ms=10)
ax.set_aspect("equal")
ax.set_xlabel("G[i, 0]")
ax.set_ylabel("G[i, 1]")
ax.set_title("posterior of rows of G\n(stars: truth; dashed: its rotations)", fontsize=10)
ax.legend(fontsize=7, loc="lower right")
fig.tight_layout()

# %%
# The loadings covariance is recovered
# ------------------------------------
# :meth:`~helmholtz.models.LinearLVM.identifiable_parameters` maps the parameters to what
# the data can pin down: for factor analysis, the upper triangle of G G^T (besides the
# offset and the noise). We compare its posterior mean with the truth, entry by entry.


identifiable = jax.jit(jax.vmap(model.identifiable_parameters))  # over a batch of draws


def covariance_entries(draws):
    return np.asarray(identifiable(draws)["loadings_covariance"])


true_cov = np.asarray(model.identifiable_parameters(truth)["loadings_covariance"])
fits = {"nuts": covariance_entries(nuts_draws), "svi": covariance_entries(svi_draws)}

fig, ax_cov = plt.subplots(figsize=(4.8, 4.2))
for index, (name, entries) in enumerate(fits.items()):
    mean, sd = entries.mean(0), entries.std(0)
    correlation = np.corrcoef(true_cov, mean)[0, 1]
    print(f"{name}: correlation of fitted and true G G^T entries = {correlation:.3f}")
    ax_cov.errorbar(
        true_cov, mean, yerr=sd, fmt="o", ms=4, color=f"C{index}", alpha=0.8, label=f"{name} (r = {correlation:.3f})"
    )
limits = [true_cov.min() - 0.3, true_cov.max() + 0.3]
ax_cov.plot(limits, limits, "k--", lw=1)
ax_cov.set_xlabel("true entry of G G^T")
ax_cov.set_ylabel("posterior mean (± sd)")
ax_cov.set_title("loadings covariance G G^T")
ax_cov.legend(fontsize=8)
fig.tight_layout()

# %%
# The noise levels are recovered too
# ----------------------------------
# Unlike the loadings, each coordinate's noise level is identified on its own: factor
# analysis separates variance shared through the factors from variance private to each
# coordinate. (Probabilistic PCA would fit one level for all six or eight.)

fig, ax_noise = plt.subplots(figsize=(5, 3.4))
coordinates = np.arange(obs_dim)
ax_noise.plot(coordinates, truth["noise"], "k*", ms=11, label="truth")
for index, (name, draws) in enumerate((("nuts", nuts_draws), ("svi", svi_draws))):
    noise = np.asarray(draws["noise"])
    offset = 0.12 * (index - 0.5)
    ax_noise.errorbar(
        coordinates + offset, noise.mean(0), yerr=noise.std(0), fmt="o", ms=4, color=f"C{index}", label=name
    )
ax_noise.set_xlabel("coordinate")
ax_noise.set_ylabel("noise sd (posterior mean ± sd)")
ax_noise.set_title("per-coordinate noise levels")
ax_noise.legend(fontsize=8)
fig.tight_layout()

# %%
# The SVI loss curve
# ------------------
# ``fit.history["loss"]`` holds the negative ELBO at every optimisation step (on a
# logarithmic step axis). It falls quickly and then fluctuates around its optimum: each
# step uses a one-sample Monte Carlo estimate of the ELBO, hence the noise (shown with its
# running mean).

loss = np.asarray(svi_fit.history["loss"])
window = 50
running = np.convolve(loss, np.ones(window) / window, mode="valid")
fig, ax_loss = plt.subplots(figsize=(5, 3.6))
steps = np.arange(1, loss.size + 1)
ax_loss.plot(steps, loss, color="0.75", lw=0.5, label="per step")
ax_loss.plot(steps[window - 1 :], running, color="C1", label=f"running mean ({window} steps)")
ax_loss.set_xscale("log")
ax_loss.set_ylim(loss.min() - 0.02 * np.ptp(running), np.percentile(loss, 98))
ax_loss.set_xlabel("step")
ax_loss.set_ylabel("negative ELBO")
ax_loss.set_title("svi training")
ax_loss.legend(fontsize=8)
fig.tight_layout()

plt.show()
