"""
Handwritten digits: a VAE, wake-sleep and reweighted wake-sleep side by side
============================================================================

How much of the variety of handwritten digits can a two-dimensional latent cause
explain, and do the three classic ways of learning a generative network with an
inference network agree? We declare one model,
:class:`helmholtz.models.NonlinearLVM` with a two-dimensional Gaussian prior, a
one-hidden-layer decoder and a Bernoulli likelihood of the binarised 8x8 digits of
scikit-learn (``helmholtz.data.load_digits``), and fit it with three back ends:

* ``vae``: the variational autoencoder (Kingma & Welling, 2014), encoder and decoder
  trained together on the evidence lower bound;
* ``wake-sleep``: the Helmholtz machine (Hinton et al., 1995), whose encoder learns from
  the decoder's dreams;
* ``rws``: reweighted wake-sleep (Bornschein & Bengio, 2015) with five importance
  samples per image.

Each is scored on held-out digits by ``fit.log_marginal``: importance sampling with the
fitted encoder proposing, a lower bound of log p(x) in expectation.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# Data and model
# --------------
# 1,438 training and 359 test digits with a fixed split; pixels binarised at 0.5. The
# last 200 training digits are held out to stop each fit when it starts to overfit.
digits = hz.data.load_digits().binarised()
train, validation = digits.train[:-200], digits.train[-200:]
model = hz.models.NonlinearLVM(hz.priors.Gaussian(2), 64, likelihood="bernoulli", hidden=(128,))

options = dict(
    num_steps=600 if QUICK else 30_000,
    batch_size=128,
    learning_rate=3e-3,
    encoder_hidden=(128,),
    check_every=300 if QUICK else 500,
    patience=5,
    validation=validation,
    progress_bar=False,
)
methods = {"vae": {}, "wake-sleep": {}, "rws": dict(num_particles=5)}
fits = {name: hz.fit(model, train, method=name, key=0, **options, **extra) for name, extra in methods.items()}
particles = 50 if QUICK else 1000
scores = {name: np.asarray(fit.log_marginal(digits.test, num_particles=particles, key=1)) for name, fit in fits.items()}
for name, score in scores.items():
    print(f"{name:>10}: test log p(x) = {score.mean():.2f} nats per digit (k = {particles})")

# %%
# The latent space
# ----------------
# The VAE's encoder places each test digit at the mean of q(z | x). Digits of one class
# gather without the model ever seeing a label; 0, 6 and 2 take distinct regions.
loc = np.asarray(fits["vae"].encode(digits.test)["z"].mean)
fig, ax = plt.subplots(figsize=(5.5, 5))
points = ax.scatter(loc[:, 0], loc[:, 1], c=digits.test_labels, cmap="tab10", s=12)
for label in range(10):
    centre = np.median(loc[digits.test_labels == label], axis=0)
    ax.text(*centre, str(label), fontsize=16, weight="bold", ha="center", va="center")
ax.set(xlabel="$z_1$", ylabel="$z_2$", title="test digits at the VAE encoder's mean")
fig.colorbar(points, ax=ax, label="digit")
fig.tight_layout()

# %%
# What the decoder has learnt
# ---------------------------
# Decoding a grid of latent points (at the prior's quantiles) shows the manifold of
# digits the model generates: one image per point, the Bernoulli probabilities.
quantiles = np.linspace(0.05, 0.95, 10)
from scipy.stats import norm  # noqa: E402

grid = np.stack(np.meshgrid(norm.ppf(quantiles), norm.ppf(quantiles)[::-1]), axis=-1)
decoded = digits.as_images(np.asarray(fits["vae"].decode(grid)))
fig, ax = plt.subplots(figsize=(6, 6))
ax.imshow(np.block([[image for image in row] for row in decoded]), cmap="gray_r")
ax.set(xticks=[], yticks=[], title="VAE decoder over the latent plane")
fig.tight_layout()

# %%
# Three back ends, one model
# --------------------------
# Left: each fit's training objective, the negative bound per digit on each step's batch
# (the ELBO for ``vae`` and ``wake-sleep``, the 5-sample bound for ``rws``). Right: the
# held-out log-likelihood with its standard error. Samples from each fitted model below.
fig, (curves, bars) = plt.subplots(1, 2, figsize=(10, 4))
for name, fit in fits.items():
    loss = fit.history["loss"] / len(train)
    window = 50
    curves.plot(np.convolve(loss, np.ones(window) / window, mode="valid"), label=name)
curves.set(xlabel="step", ylabel="negative bound per digit (nats)", title="training", yscale="log")
curves.legend()
means = [scores[name].mean() for name in fits]
errors = [scores[name].std() / np.sqrt(len(scores[name])) for name in fits]
bars.bar(list(fits), means, yerr=errors, color=["C0", "C1", "C2"])
bars.set(
    ylabel="test log p(x) per digit (nats)", title=f"held out (k = {particles})", ylim=(min(means) - 5, max(means) + 2)
)
fig.tight_layout()

fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for ax, (name, fit) in zip(axes, fits.items()):
    z = np.random.default_rng(2).normal(size=(6, 6, 2))
    samples = digits.as_images(np.asarray(fit.decode(z)))
    ax.imshow(np.block([[image for image in row] for row in samples]), cmap="gray_r")
    ax.set(xticks=[], yticks=[], title=f"{name}: p(x | z), z from the prior")
fig.tight_layout()
plt.show()
