"""The classifier two-sample test (C2ST), exactly as the sbibm benchmark defines it."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier


def c2st(samples, reference, *, seed: int = 1, num_folds: int = 5, max_draws: int | None = None) -> float:
    """Cross-validated accuracy of a classifier telling ``samples`` from ``reference``.

    0.5: the two sets cannot be told apart; 1.0: they are fully separable. Following
    Lueckmann et al. (2021): both sets are z-scored with the reference's mean and standard
    deviation; scikit-learn's MLPClassifier (relu, two hidden layers of 10 x dim units,
    adam, max_iter 10,000) is scored by ``num_folds``-fold shuffled, stratified cross
    validation. ``max_draws`` subsamples each set (with ``seed``) to bound the cost.

    Args:
        samples: the draws to test, shape ``(num_draws, dim)`` (a 1-D array is one parameter).
        reference: the reference draws, shape ``(num_reference_draws, dim)``.
        seed: the seed of the subsampling, the folds and the classifier.
        num_folds: the number of cross-validation folds.
        max_draws: the most draws used of each set (None: as many as the smaller set holds).

    Returns:
        The mean cross-validated accuracy, in [0, 1].

    Raises:
        ValueError: the inputs are not two 2-D arrays of the same ``dim``.
    """
    samples, reference = (np.asarray(a, dtype=float) for a in (samples, reference))
    samples, reference = (a[:, None] if a.ndim == 1 else a for a in (samples, reference))
    if samples.ndim != 2 or reference.ndim != 2 or samples.shape[1] != reference.shape[1]:
        raise ValueError(
            f"c2st: need two (draws, dim) arrays of the same dim, got {samples.shape} and {reference.shape}"
        )
    rng = np.random.default_rng(seed)
    size = min(len(samples), len(reference), max_draws or np.inf)
    samples = samples[rng.choice(len(samples), int(size), replace=False)]
    reference = reference[rng.choice(len(reference), int(size), replace=False)]
    mean, std = reference.mean(0), reference.std(0)
    std = np.where(std > 0, std, 1.0)
    features = (np.concatenate([samples, reference]) - mean) / std
    labels = np.concatenate([np.zeros(len(samples)), np.ones(len(reference))])
    dim = features.shape[1]
    classifier = MLPClassifier(
        activation="relu", hidden_layer_sizes=(10 * dim, 10 * dim), max_iter=10_000, solver="adam", random_state=seed
    )
    folds = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(classifier, features, labels, cv=folds, scoring="accuracy")))
