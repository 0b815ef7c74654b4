"""Scores of inferred firing rates, as the Neural Latents Benchmark defines them.

Bits per spike (Pei et al., 2021): how much better the predicted rates explain the
spike counts than each neuron's mean rate does, in bits per spike,

    bps = [log L(rates) - log L(mean rates)] / (total spikes * ln 2),

with Poisson log-likelihoods summed over trials, bins and neurons. Computed on neurons
the model did not read (held out), it is co-smoothing's ``co-bps``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def _poisson_log_likelihood(rates, counts):
    rates = np.maximum(np.asarray(rates, dtype=float), 1e-12)  # a zero rate with a spike would be -inf
    return float(np.sum(counts * np.log(rates) - rates - gammaln(counts + 1)))


def bits_per_spike(rates, counts, mean_rates=None) -> float:
    """Bits per spike of ``rates`` (spikes per bin) for ``counts``.

    Args:
        rates: the predicted rates (finite, >= 0), shape ``(num_trials, num_bins, num_neurons)``.
        counts: the spike counts, the same shape.
        mean_rates: the null model's rate per neuron, shape ``(num_neurons,)``; by default the
            counts' own means (NLB uses the evaluation data's mean rate as the null model).

    Returns:
        The bits per spike.

    Raises:
        ValueError: the shapes differ or are not 3-D, a rate is negative or not finite, or
            the counts hold no spike.
    """
    rates, counts = np.asarray(rates, dtype=float), np.asarray(counts, dtype=float)
    if rates.shape != counts.shape or counts.ndim != 3:
        raise ValueError(
            f"bits_per_spike: rates and counts must share a (trials, bins, neurons) shape, got {rates.shape} and {counts.shape}"
        )
    if not np.all(np.isfinite(rates)) or np.any(rates < 0):
        raise ValueError("bits_per_spike: rates must be finite and non-negative")
    if counts.sum() == 0:
        raise ValueError("bits_per_spike: the counts hold no spike")
    mean_rates = counts.mean(axis=(0, 1)) if mean_rates is None else np.asarray(mean_rates, dtype=float)
    null = np.broadcast_to(mean_rates, counts.shape)
    return (_poisson_log_likelihood(rates, counts) - _poisson_log_likelihood(null, counts)) / (counts.sum() * np.log(2))


def rate_r_squared(estimated, true) -> float:
    """The fraction of each neuron's true-rate variance that ``estimated`` explains,
    averaged over neurons.

    Args:
        estimated: the estimated rates, shape ``(num_trials, num_bins, num_neurons)``.
        true: the true rates, the same shape.

    Returns:
        The mean R^2 over neurons.

    Raises:
        ValueError: the shapes differ.
    """
    estimated, true = np.asarray(estimated, dtype=float), np.asarray(true, dtype=float)
    if estimated.shape != true.shape:
        raise ValueError(f"rate_r_squared: shapes differ, {estimated.shape} and {true.shape}")
    residual = ((estimated - true) ** 2).sum(axis=(0, 1))
    total = ((true - true.mean(axis=(0, 1))) ** 2).sum(axis=(0, 1))
    return float(np.mean(1 - residual / total))


def smoothing_baseline(train_counts, eval_counts, held_in, held_out, width: float, alpha: float = 1e-2):
    """The Neural Latents Benchmark's spike-smoothing baseline for co-smoothing.

    Each held-in neuron's counts are smoothed in time (Gaussian kernel, sd ``width`` bins),
    and a Poisson GLM (scikit-learn's ``PoissonRegressor``, L2 penalty ``alpha``) maps the
    smoothed held-in population of a bin to each held-out neuron's count, fitted on
    ``train_counts``.

    Args:
        train_counts: the counts the GLMs are fitted on, shape ``(num_trials, num_bins, num_neurons)``.
        eval_counts: the counts to predict from, shape ``(num_eval_trials, num_bins, num_neurons)``.
        held_in: the indices of the held-in neurons.
        held_out: the indices of the held-out neurons.
        width: the sd of the smoothing kernel (bins).
        alpha: the GLMs' L2 penalty.

    Returns:
        The predicted rates for ``eval_counts``, shape ``(num_eval_trials, num_bins, num_neurons)``:
        the smoothed counts for held-in neurons, the GLM's for held-out ones (0 for the others).
    """
    from scipy.ndimage import gaussian_filter1d
    from sklearn.linear_model import PoissonRegressor

    held_in, held_out = list(held_in), list(held_out)

    def smooth(counts):
        return gaussian_filter1d(np.asarray(counts, dtype=float)[..., held_in], width, axis=1)

    train_inputs = smooth(train_counts).reshape(-1, len(held_in))
    eval_smoothed = smooth(eval_counts)
    rates = np.zeros(np.shape(eval_counts), dtype=float)
    rates[..., held_in] = eval_smoothed
    # log1p features: the GLM's log link then sees log-rates, on which the read-out is linear.
    train_features, eval_features = np.log1p(train_inputs), np.log1p(eval_smoothed.reshape(-1, len(held_in)))
    for neuron in held_out:
        glm = PoissonRegressor(alpha=alpha, max_iter=1000).fit(
            train_features, np.asarray(train_counts)[..., neuron].ravel()
        )
        rates[..., neuron] = glm.predict(eval_features).reshape(rates.shape[:2])
    return rates
