"""
Sparse coding of handwritten digits
===================================

Olshausen and Field (1996) proposed that sensory neurons represent an image x as a
combination x = G z + noise of a few elements (the columns of a dictionary G), most
coefficients z being near zero and a few large: a heavy-tailed, sparse prior on z. What
dictionary does that assumption learn from real images? We fit
:func:`helmholtz.models.SparseCoding` (a Laplace prior on each coefficient, isotropic
Gaussian noise) to the 8x8 handwritten digits of scikit-learn with stochastic variational
inference (``method="svi"``, mean-field normal guide over the dictionary and every
image's coefficients), look at the learned dictionary elements, and check that the
inferred coefficients are indeed heavier-tailed than a Gaussian.
"""

import os

import jax
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats
from sklearn.datasets import load_digits

import helmholtz as hz

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# Image patches
# -------------
# Each digit is an 8x8 image of grey levels 0 to 16, which we scale to [0, 1] and flatten
# to a vector of 64 pixels. The model's offset ``mean`` absorbs the average digit.

num_images = 300 if QUICK else 1797
num_elements = 16 if QUICK else 36
num_steps = 1500 if QUICK else 10_000

digits = load_digits()
order = np.random.default_rng(0).permutation(len(digits.data))[:num_images]
x = digits.data[order] / 16.0
print(f"data: {x.shape[0]} images of {x.shape[1]} pixels")

# %%
# Fitting with SVI
# ----------------
# The Laplace prior has no closed-form marginal, so the coefficients z of every image are
# latent variables of the fit, next to the dictionary G, the offset and the noise level.
# The normal guide approximates each of them by an independent Gaussian. With thousands of
# latents the one-sample ELBO estimate is noisy while it still creeps down slowly, so we
# switch the plateau test off (``patience=0``) and run a fixed number of steps.

model = hz.models.SparseCoding(64, num_elements, sparsity=1.0)
fit = hz.fit(
    model,
    x,
    method="svi",
    key=0,
    guide="normal",
    num_steps=num_steps,
    learning_rate=2e-2,
    patience=0,
    progress_bar=False,
)
loss = np.asarray(fit.history["loss"])
print(f"svi: {fit.diagnostics['num_steps']} steps, final loss per image {loss[-100:].mean() / num_images:.2f}")

draws = fit.sample(jax.random.PRNGKey(1), 50)
dictionary = np.asarray(draws["loadings"].mean(0))  # (64, num_elements)
coefficients = np.asarray(draws["z"].mean(0))  # (num_images, num_elements)
noise = float(np.asarray(draws["noise"]).mean())
print(f"posterior mean noise sd: {noise:.3f} (pixel values lie in [0, 1])")

# %%
# The learned dictionary
# ----------------------
# Each column of G, shown as an 8x8 image (red positive, blue negative), sorted by how
# much it is used (most used at the top left). The most used elements look like parts of
# digits (strokes, loops, a bar and their negatives) that the code adds and subtracts to
# build each image from a few of them; the rarely used ones at the bottom, which few images
# constrain, stay noisier (more so in the short quick-mode fit).

usage = np.abs(coefficients).mean(0) * np.linalg.norm(dictionary, axis=0)
columns = int(np.ceil(np.sqrt(num_elements)))
rows = int(np.ceil(num_elements / columns))
fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows))
for ax, element in zip(axes.ravel(), np.argsort(-usage)):
    image = dictionary[:, element].reshape(8, 8)
    limit = np.abs(image).max()
    ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
for ax in axes.ravel():
    ax.set_axis_off()
fig.suptitle("dictionary elements (columns of G)")
fig.tight_layout()

# %%
# Reconstructions
# ---------------
# The posterior means of G, z and the offset reconstruct each image as G z + mean.

reconstruction = coefficients @ dictionary.T + np.asarray(draws["mean"].mean(0))
error = np.sqrt(np.mean((reconstruction - x) ** 2))
print(f"reconstruction rms error: {error:.3f}")
fig, axes = plt.subplots(2, 6, figsize=(7.5, 2.8))
for column in range(6):
    axes[0, column].imshow(x[column].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    axes[1, column].imshow(reconstruction[column].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
for ax in axes.ravel():
    ax.set_axis_off()
axes[0, 0].set_title("data", fontsize=9, loc="left")
axes[1, 0].set_title("G z + mean", fontsize=9, loc="left")
fig.tight_layout()

# %%
# Heavy-tailed coefficients
# -------------------------
# Pooling the inferred coefficients of all images and elements (each element scaled to
# unit sd, since G and z trade scale), their histogram has a sharp peak at zero and long
# tails: far more mass near zero and far out than a Gaussian of the same variance, as the
# Laplace prior assumes. The excess kurtosis is 0 for a Gaussian and 3 for a Laplace.

pooled = (coefficients / coefficients.std(0)).ravel()
kurtosis = stats.kurtosis(pooled)
print(f"excess kurtosis of the coefficients: {kurtosis:.2f} (Gaussian 0, Laplace 3)")

fig, ax = plt.subplots(figsize=(5.5, 3.6))
grid = np.linspace(-6, 6, 400)
ax.hist(pooled, bins=np.linspace(-6, 6, 61), density=True, color="C0", alpha=0.6, label="inferred coefficients")
ax.plot(grid, stats.norm.pdf(grid), "k--", label="Gaussian, same sd")
ax.plot(grid, stats.laplace.pdf(grid, scale=1 / np.sqrt(2)), color="C3", label="Laplace, same sd")
ax.set_yscale("log")
ax.set_ylim(1e-4, 2)
ax.set_xlabel("coefficient / its sd")
ax.set_ylabel("density (log scale)")
ax.set_title(f"coefficients are heavy-tailed (excess kurtosis {kurtosis:.1f})", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()

plt.show()
