"""
Discrete latents: clusters and binary features
==============================================

Some hidden causes are discrete: which of a few categories a stimulus belongs to, or which
of several features are present in it. Two members of the linear latent-variable family
express this, both as x = G z + noise: in :func:`helmholtz.models.GaussianMixture` z
picks exactly one column of G (a cluster mean); in :func:`helmholtz.models.BinaryFactors`
each entry of z switches its column of G on or off, and the active columns add up. Because
z takes finitely many values, helmholtz sums it out of the likelihood exactly, so only
the continuous parameters remain and gradient-based back ends apply. Can they find the
clusters and the features? We fit the mixture with NumPyro's No-U-Turn sampler
(``method="nuts"``) and the binary factors with stochastic variational inference
(``method="svi"``), both on data simulated from known parameters.
"""

import os

import jax
import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import linear_sum_assignment

import helmholtz as hz

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# A mixture of three Gaussian clusters
# ------------------------------------
# The loadings of the mixture are its component means, one column per component; the
# noise is the clusters' common standard deviation. We simulate points in the plane.

true_means = np.array([[-4.0, 0.0], [3.0, 3.0], [2.0, -4.0]])
mixture = hz.models.GaussianMixture(obs_dim=2, num_components=3)
mixture_truth = {"loadings": true_means.T, "noise": np.array([0.9])}
num_points = 150 if QUICK else 600
x_mixture = np.asarray(mixture.simulate(jax.random.PRNGKey(0), mixture_truth, num_points=num_points))

# %%
# NUTS samples the component means and the noise. The likelihood is unchanged when the
# components are relabelled, so the posterior has 3! = 6 symmetric modes; one chain stays
# in one of them, which is all we need to draw the clusters (several chains could each pick
# a different labelling).

mixture_fit = hz.fit(
    mixture,
    x_mixture,
    method="nuts",
    key=0,
    num_chains=1,
    num_warmup=200 if QUICK else 1000,
    num_samples=200 if QUICK else 1000,
    progress_bar=False,
)
mixture_draws = mixture_fit.sample(jax.random.PRNGKey(1), 200)
fitted_means = np.asarray(mixture_draws["loadings"]).transpose(0, 2, 1)  # (draws, component, 2)
fitted_noise = float(np.asarray(mixture_draws["noise"]).mean())
# Match fitted components to true ones (labels are arbitrary) to report the error.
distance = np.linalg.norm(fitted_means.mean(0)[:, None] - true_means[None], axis=-1)
rows, cols = linear_sum_assignment(distance)
print(f"mixture: {mixture_fit.diagnostics['num_divergent']} divergent transitions")
print(f"mixture: largest error of a fitted component mean: {distance[rows, cols].max():.3f}")
print(f"mixture: noise sd {fitted_noise:.3f} (true 0.9)")

fig, ax = plt.subplots(figsize=(5, 5))
ax.scatter(*x_mixture.T, s=6, color="0.6", label="data")
for component in range(3):
    draws = fitted_means[:, component]
    ax.scatter(*draws.T, s=4, alpha=0.3, color=f"C{component}")
    center = draws.mean(0)
    ax.add_patch(plt.Circle(center, 2 * fitted_noise, fill=False, color=f"C{component}", lw=1.5))
ax.plot(*true_means.T, "k*", ms=12, label="true means")
ax.plot([], [], "o", color="C0", alpha=0.5, label="posterior draws of the means")
ax.plot([], [], "-", color="C0", label="2 sd of the fitted noise")
ax.set_aspect("equal")
ax.set_title("Gaussian mixture fitted with nuts")
ax.legend(fontsize=8, loc="upper left")
fig.tight_layout()

# %%
# Additive bars
# -------------
# The classic test of binary feature learning (Foldiak, 1990): each image is a small grid
# in which every horizontal and every vertical bar is independently present with
# probability 1/4; where bars cross, their intensities add. Nothing tells the model that
# the features are bars, or how many images contain each.

side = 3 if QUICK else 4
num_features = 2 * side
true_features = np.zeros((side * side, num_features))
for i in range(side):
    horizontal, vertical = np.zeros((side, side)), np.zeros((side, side))
    horizontal[i, :] = vertical[:, i] = 1.0
    true_features[:, i], true_features[:, side + i] = horizontal.ravel(), vertical.ravel()

# The images are simple enough to simulate directly: on/off switches z, then x = G z + noise.
rng = np.random.default_rng(2)
present = rng.random((200 if QUICK else 1000, num_features)) < 0.25
x_bars = present @ true_features.T + rng.normal(scale=0.25, size=(len(present), side * side))
bars = hz.models.BinaryFactors(side * side, num_features, probs=0.25)

# %%
# The 2^K on/off patterns of the K features are summed out of each image's likelihood, so
# SVI fits a normal guide over the features, the offset and the noise only.

bars_fit = hz.fit(
    bars,
    x_bars,
    method="svi",
    key=0,
    guide="normal",
    num_steps=1500 if QUICK else 5000,
    patience=0,  # a fixed number of steps, no plateau test
    progress_bar=False,
)
fitted_features = np.asarray(bars_fit.sample(jax.random.PRNGKey(3), 100)["loadings"].mean(0))

# Features are recovered up to their order (and, in principle, a sign flip absorbed by
# the offset): match each fitted one to a true bar.
correlation = np.corrcoef(fitted_features.T, true_features.T)[:num_features, num_features:]
rows, cols = linear_sum_assignment(-np.abs(correlation))
matched = np.abs(correlation[rows, cols])
signs = np.sign(correlation[rows, cols])
print(f"bars: correlation of each matched feature with its bar: {np.round(matched, 3)}")
print(f"bars: mean {matched.mean():.3f}")

fig, axes = plt.subplots(3, num_features, figsize=(1.1 * num_features, 3.6))
for column in range(num_features):
    axes[0, column].imshow(x_bars[column].reshape(side, side), cmap="gray_r", vmin=0, vmax=2)
    axes[1, column].imshow(true_features[:, cols[column]].reshape(side, side), cmap="gray_r", vmin=0, vmax=1)
    axes[2, column].imshow(
        signs[column] * fitted_features[:, rows[column]].reshape(side, side), cmap="gray_r", vmin=0, vmax=1
    )
    axes[2, column].set_title(f"r = {matched[column]:.2f}", fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
for ax, label in zip(axes[:, 0], ("data", "true bar", "fitted")):
    ax.set_ylabel(label, fontsize=9)
fig.suptitle("binary factors fitted with svi: recovered features", fontsize=10)
fig.tight_layout()

plt.show()
