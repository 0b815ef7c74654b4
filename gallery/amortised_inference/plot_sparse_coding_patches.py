"""
Amortised sparse coding of image patches
========================================

Can a network learn to infer a sparse code of an image patch in one pass, and does the
code it learns look like the receptive fields of simple cells? Olshausen and Field
(1996) explained those receptive fields as the dictionary of a sparse code: each image patch x is a combination x = G z + noise of a
few dictionary elements, under a heavy-tailed prior on the coefficients z. Inferring z
for each patch is an optimisation of its own, which a brain could not afford at every
glance; an encoder network that maps a patch to its code in one pass (Gregor & LeCun's
"learned ISTA", 2010) could. Here the model is :class:`helmholtz.models.SparseCoding`
(a Laplace prior on 24 coefficients, a linear dictionary, isotropic Gaussian noise) on
6x6 patches of real MNIST digits (``helmholtz.data.image_patches``), fitted with an
encoder by ``rws`` (reweighted wake-sleep: the encoder follows the importance-weighted
posterior, which for a Laplace prior is far from Gaussian) and, for contrast, the same
linear model with a Gaussian prior (probabilistic PCA, ``vae``).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import helmholtz as hz

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# Patches
# -------
# Random 6x6 windows of the training digits, each with its mean removed, scaled to unit
# variance overall; windows that are (almost) blank are dropped.
mnist = hz.data.load_mnist()
patches = hz.data.image_patches(mnist.train, mnist.image_shape, size=6, num_patches=30_000, seed=0)
patches = patches[patches.std(axis=1) > 0.1]
patches = patches / patches.std()
num_train = 2000 if QUICK else 15_000
train, test = patches[:num_train], patches[-(500 if QUICK else 2000) :]

# %%
# Fit both priors
# ---------------
options = dict(
    num_steps=500 if QUICK else 20_000,
    batch_size=256,
    learning_rate=3e-3,
    encoder_hidden=(128,),
    check_every=250 if QUICK else 500,
    patience=5,
    progress_bar=False,
)
sparse = hz.fit(
    hz.models.SparseCoding(36, 24, collapse_local=False), train, method="rws", key=0, num_particles=5, **options
)
gaussian = hz.fit(hz.models.ProbabilisticPCA(36, 24, collapse_local=False), train, method="vae", key=0, **options)
particles = 50 if QUICK else 1000
held_out = {
    name: float(fit.log_marginal(test, num_particles=particles, key=1).mean())
    for name, fit in (("Laplace prior (rws)", sparse), ("Gaussian prior (vae)", gaussian))
}
for name, value in held_out.items():
    print(f"{name}: held-out log p(x) = {value:.2f} nats per patch")


# %%
# The dictionaries
# ----------------
# Each column of the fitted loadings G, shown as a 6x6 image. Under the sparse prior the
# elements are localised strokes and edges at several orientations; under the Gaussian
# prior they are defined only up to a rotation and come out as smooth, global
# patterns, as principal components do.
def dictionary_image(loadings):
    tiles = [column.reshape(6, 6) / np.abs(column).max() for column in loadings.T]
    rows = [np.hstack([np.pad(tile, 1, constant_values=np.nan) for tile in tiles[i : i + 8]]) for i in range(0, 24, 8)]
    return np.vstack(rows)


fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, (name, fit) in zip(axes, (("Laplace prior, rws", sparse), ("Gaussian prior, vae", gaussian))):
    loadings = np.asarray(fit.sample(0, 1)["loadings"][0])
    ax.imshow(dictionary_image(loadings), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set(xticks=[], yticks=[], title=f"dictionary, {name}")
fig.tight_layout()

# %%
# Are the inferred codes sparse?
# ------------------------------
# The encoder's means for the test patches, pooled over coefficients and standardised:
# under the Laplace prior they are heavy-tailed (excess kurtosis far above the Gaussian
# prior's), most patches using few elements strongly. The held-out likelihood says which
# prior describes the patches better.
fig, (histogram, bars) = plt.subplots(1, 2, figsize=(10, 4))
for name, fit in (("Laplace prior, rws", sparse), ("Gaussian prior, vae", gaussian)):
    codes = np.asarray(fit.encode(test)["z"].mean)
    codes = (codes / codes.std(axis=0)).ravel()
    histogram.hist(
        codes,
        bins=np.linspace(-6, 6, 81),
        density=True,
        histtype="step",
        lw=1.5,
        label=f"{name}: excess kurtosis {stats.kurtosis(codes):.1f}",
    )
histogram.set(yscale="log", xlabel="standardised code", ylabel="density", title="encoder means on test patches")
histogram.legend(fontsize=8)
bars.bar(list(held_out), list(held_out.values()), color=["C0", "C1"])
bars.set(
    ylabel="held-out log p(x) per patch (nats)",
    title=f"k = {particles}",
    ylim=(min(held_out.values()) - 2, max(held_out.values()) + 1),
)
fig.tight_layout()
plt.show()
