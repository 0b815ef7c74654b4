"""Cue combination: maximum-likelihood and Bayesian integration of cues (Ernst & Banks, 2002)
and Bayesian causal inference (Koerding et al., 2007).

Closed forms, vectorised over whatever shapes the inputs broadcast to:

* :func:`combine_cues`: the maximum-likelihood combination of independent Gaussian cues:
  weights proportional to the inverse variances, a combined variance smaller than either;
* :func:`combine_cues_with_prior`: the same with a Gaussian prior (the prior acts as one
  more cue);
* :func:`causal_inference`: the posterior probability that two cues share one cause, and
  the model-averaged (or model-selected) estimates of each.

:class:`ErnstBanksExperiment` is the visual-haptic size experiment as a model: a 2-interval
forced choice between a standard (55 mm, the cues in conflict by ``conflict``) and a
comparison (no conflict), at several visual noise levels, answered by the
maximum-likelihood observer with lapses. Its parameters are the haptic and visual noise
(one per noise level) and the lapse rate; ``helmholtz.fit(..., method="nuts")`` recovers
them from the choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.stats import norm

from helmholtz._serialization import serializable
from helmholtz.perception.experiment import TrialResponses
from helmholtz.perception.observer import lapse_prior, with_lapse

STANDARD_SIZE_MM = 55.0
CONFLICTS_MM = (-6.0, -3.0, 0.0, 3.0, 6.0)  # the paper's visual-haptic conflicts


def combine_cues(estimates, sigmas):
    """Maximum-likelihood combination of independent Gaussian cues (the last axis).

    Weights w_i = (1/sigma_i^2) / sum_j 1/sigma_j^2, estimate sum_i w_i x_i, and
    sigma^2 = 1 / sum_i 1/sigma_i^2.

    Args:
        estimates: each cue's estimate, shape ``(..., num_cues)``.
        sigmas: each cue's noise sd, shape ``(..., num_cues)``.

    Returns:
        ``(estimate, sigma, weights)``, shapes ``(...)``, ``(...)`` and ``(..., num_cues)``.
    """
    estimates, sigmas = jnp.asarray(estimates), jnp.asarray(sigmas)
    precision = 1.0 / sigmas**2
    total = precision.sum(axis=-1, keepdims=True)
    weights = precision / total
    return (weights * estimates).sum(axis=-1), jnp.sqrt(1.0 / total[..., 0]), weights


def combine_cues_with_prior(estimates, sigmas, prior_mean, prior_sigma):
    """The posterior mean and sd of the stimulus given Gaussian cues (the last axis) and a
    Gaussian prior N(prior_mean, prior_sigma^2), which combines as one more cue.

    Args:
        estimates: each cue's estimate, shape ``(..., num_cues)``.
        sigmas: each cue's noise sd, shape ``(..., num_cues)``.
        prior_mean: the prior mean, broadcast to ``(...)``.
        prior_sigma: the prior sd, broadcast to ``(...)``.

    Returns:
        ``(estimate, sigma)``, each shape ``(...)``.
    """
    estimates, sigmas = jnp.asarray(estimates), jnp.asarray(sigmas)
    shape = estimates.shape[:-1] + (1,)
    estimate, sigma, _ = combine_cues(
        jnp.concatenate([estimates, jnp.broadcast_to(prior_mean, shape)], axis=-1),
        jnp.concatenate([sigmas, jnp.broadcast_to(prior_sigma, shape)], axis=-1),
    )
    return estimate, sigma


def causal_inference(x_1, x_2, sigma_1, sigma_2, prior_sigma, p_common, prior_mean=0.0, decision: str = "averaging"):
    """Bayesian causal inference for two cue measurements ``x_1``, ``x_2`` (Koerding et al.,
    2007, PLoS ONE 2:e943, equations 4-12): a common cause (C = 1, prior ``p_common``) or two
    independent causes, each source ~ N(prior_mean, prior_sigma^2).

    Returns a dict: ``p_common`` (the posterior P(C = 1 | x_1, x_2)), ``estimate_1`` and
    ``estimate_2`` (the estimates of each source: posterior-weighted averages of the
    estimates under both structures for ``decision="averaging"``, the more probable
    structure's for ``"selection"``).

    Args:
        x_1: the first cue's measurements, any shape (the arguments broadcast together).
        x_2: the second cue's measurements.
        sigma_1: the first cue's noise sd.
        sigma_2: the second cue's noise sd.
        prior_sigma: the sd of the prior over each source.
        p_common: the prior probability of a common cause.
        prior_mean: the mean of the prior over each source.
        decision: ``"averaging"`` or ``"selection"``.

    Returns:
        Arrays of the broadcast shape by name: ``p_common``, ``estimate_1``, ``estimate_2``.

    Raises:
        ValueError: an unknown ``decision``.
    """
    if decision not in ("averaging", "selection"):
        raise ValueError(f"causal_inference: decision must be 'averaging' or 'selection', got {decision!r}")
    v1, v2, vp = sigma_1**2, sigma_2**2, prior_sigma**2
    joint = v1 * v2 + v1 * vp + v2 * vp
    log_like_common = (
        -jnp.log(2 * jnp.pi)
        - 0.5 * jnp.log(joint)
        - 0.5 * ((x_1 - x_2) ** 2 * vp + (x_1 - prior_mean) ** 2 * v2 + (x_2 - prior_mean) ** 2 * v1) / joint
    )
    log_like_separate = norm.logpdf(x_1, prior_mean, jnp.sqrt(v1 + vp)) + norm.logpdf(
        x_2, prior_mean, jnp.sqrt(v2 + vp)
    )
    log_odds = log_like_common + jnp.log(p_common) - log_like_separate - jnp.log1p(-p_common)
    posterior_common = 1.0 / (1.0 + jnp.exp(-log_odds))
    fused = (x_1 / v1 + x_2 / v2 + prior_mean / vp) / (1 / v1 + 1 / v2 + 1 / vp)
    alone_1 = (x_1 / v1 + prior_mean / vp) / (1 / v1 + 1 / vp)
    alone_2 = (x_2 / v2 + prior_mean / vp) / (1 / v2 + 1 / vp)
    weight = posterior_common if decision == "averaging" else (posterior_common > 0.5).astype(jnp.result_type(float))
    return {
        "p_common": posterior_common,
        "estimate_1": weight * fused + (1 - weight) * alone_1,
        "estimate_2": weight * fused + (1 - weight) * alone_2,
    }


COMPARISONS_MM = tuple(np.arange(45.0, 65.1, 2.0))


def ernst_banks_design(
    noise_levels: int = 4,
    conflicts=CONFLICTS_MM,
    comparisons=COMPARISONS_MM,
    repeats: int = 10,
):
    """The trials of the experiment: every (visual noise level, conflict, comparison size),
    ``repeats`` times. The paper's noise levels were 0, 67, 133 and 200% visual noise, its
    conflicts -6 to +6 mm about a 55 mm standard.

    Args:
        noise_levels: the number of visual noise levels.
        conflicts: the visual-haptic conflicts (mm).
        comparisons: the comparison sizes (mm).
        repeats: the number of trials of each combination.

    Returns:
        ``noise_level`` (integers), ``conflict`` and ``comparison`` (mm) by name, each shape
        ``(num_trials,)`` with ``num_trials = noise_levels * len(conflicts) * len(comparisons) * repeats``.
    """
    level, conflict, comparison = np.meshgrid(
        np.arange(noise_levels), np.asarray(conflicts, float), np.asarray(comparisons, float), indexing="ij"
    )
    return {
        "noise_level": np.repeat(level.ravel(), repeats),
        "conflict": np.repeat(conflict.ravel(), repeats),
        "comparison": np.repeat(comparison.ravel(), repeats),
    }


@serializable
@dataclass(frozen=True, eq=False)
class ErnstBanksExperiment(TrialResponses):
    """The visual-haptic 2IFC size experiment answered by the maximum-likelihood observer.

    On each trial the standard has visual size 55 + conflict/2 and haptic size
    55 - conflict/2 (mm); the comparison has both at ``comparison``. The observer combines
    each stimulus's cues (:func:`combine_cues`) and says "comparison taller" (1) when its
    estimate is larger, or guesses with probability ``lapse``. Parameters: ``sigma_haptic``
    (LogNormal(log 5, 1) mm), ``sigma_visual`` (one per noise level, LogNormal(log 5, 1.5)),
    ``lapse`` (:func:`~helmholtz.perception.observer.lapse_prior`). Design arrays as
    :func:`ernst_banks_design` makes them.

    Args:
        noise_level: each trial's visual noise level (a non-negative integer index), shape ``(num_trials,)``.
        conflict: each trial's visual-haptic conflict (mm), shape ``(num_trials,)``.
        comparison: each trial's comparison size (mm), shape ``(num_trials,)``.

    Raises:
        ValueError: the design arrays are not 1-D of one length, or ``noise_level`` does not
            hold non-negative integers.
    """

    noise_level: np.ndarray
    conflict: np.ndarray
    comparison: np.ndarray

    def __post_init__(self):
        arrays = {name: np.asarray(getattr(self, name)) for name in ("noise_level", "conflict", "comparison")}
        if len({a.shape for a in arrays.values()}) != 1 or arrays["noise_level"].ndim != 1:
            raise ValueError(
                f"ErnstBanksExperiment: the design arrays must be 1-D of one length, got { {k: a.shape for k, a in arrays.items()} }"
            )
        if not np.issubdtype(arrays["noise_level"].dtype, np.integer) or arrays["noise_level"].min() < 0:
            raise ValueError("ErnstBanksExperiment: noise_level must hold non-negative integer indices")
        for name, value in arrays.items():
            object.__setattr__(self, name, value)

    @property
    def num_trials(self) -> int:
        return len(self.noise_level)

    @property
    def num_noise_levels(self) -> int:
        return int(self.noise_level.max()) + 1

    def standard_estimate(self, params):
        """The mean and sd of the observer's estimate of the standard, per trial.

        Args:
            params: ``sigma_haptic``, ``sigma_visual`` (shape ``(num_noise_levels,)``) and ``lapse``, by name.

        Returns:
            ``(mean, sd)``, each shape ``(num_trials,)`` (mm).
        """
        sigma_v = params["sigma_visual"][self.noise_level]
        sigma_h = jnp.broadcast_to(params["sigma_haptic"], sigma_v.shape)
        cues = jnp.stack([STANDARD_SIZE_MM + self.conflict / 2, STANDARD_SIZE_MM - self.conflict / 2], -1)
        mean, sigma, _ = combine_cues(cues, jnp.stack([sigma_v, sigma_h], -1))
        return mean, sigma

    def psychometrics(self, params, conflicts=CONFLICTS_MM) -> dict:
        """What the paper plots, per (noise level, conflict): ``visual_weight``; ``pse``, the
        comparison size seen as tall as the standard, 55 + (2 w_v - 1) conflict / 2 (mm);
        ``threshold``, the 84%-point minus the PSE without lapses, sqrt(2) sigma (mm).

        Args:
            params: ``sigma_haptic``, ``sigma_visual`` (shape ``(num_noise_levels,)``) and ``lapse``, by name.
            conflicts: the conflicts (mm) to evaluate at.

        Returns:
            ``visual_weight``, ``pse`` and ``threshold`` by name, each shape
            ``(num_noise_levels, num_conflicts)``.
        """
        conflicts = jnp.asarray(conflicts, dtype=float)
        sigma_v = jnp.asarray(params["sigma_visual"])
        cues = jnp.stack([STANDARD_SIZE_MM + conflicts / 2, STANDARD_SIZE_MM - conflicts / 2], -1)  # (conflict, cue)
        sigmas = jnp.stack([sigma_v, jnp.broadcast_to(params["sigma_haptic"], sigma_v.shape)], -1)  # (level, cue)
        shape = (len(sigma_v), len(conflicts), 2)
        mean, sigma, weights = combine_cues(jnp.broadcast_to(cues, shape), jnp.broadcast_to(sigmas[:, None], shape))
        return {"visual_weight": weights[..., 0], "pse": mean, "threshold": jnp.sqrt(2.0) * sigma}

    def response_probability(self, params):
        """P("comparison taller") per trial: the comparison's and the standard's estimates
        have the same sd (same cues, same noise), so the difference has sd sqrt(2) sigma.

        Args:
            params: ``sigma_haptic``, ``sigma_visual`` (shape ``(num_noise_levels,)``) and ``lapse``, by name.

        Returns:
            The probabilities, lapses included, shape ``(num_trials,)``.
        """
        mean, sigma = self.standard_estimate(params)
        return with_lapse(norm.cdf((self.comparison - mean) / (jnp.sqrt(2.0) * sigma)), params["lapse"])

    def program(self, x=None, *, num_points=None):
        sigma_haptic = numpyro.sample("sigma_haptic", dist.LogNormal(np.log(5.0), 1.0))
        with numpyro.plate("noise_levels", self.num_noise_levels):
            sigma_visual = numpyro.sample("sigma_visual", dist.LogNormal(np.log(5.0), 1.5))
        lapse = numpyro.sample("lapse", lapse_prior())
        self.observe(
            self.response_probability({"sigma_haptic": sigma_haptic, "sigma_visual": sigma_visual, "lapse": lapse}), x
        )
