"""Speed perception (Stocker & Simoncelli, 2006): a Bayesian observer of speed, fit to 2AFC
speed discrimination.

The observer measures log(speed + 0.3 deg/s) with Gaussian noise whose width depends on
contrast (one width per contrast level), combines it with a prior over speed that favours
slow speeds, and reports the posterior mean of that internal variable; it says "test faster" when its percept of the test exceeds
that of the reference. Lower contrast widens the likelihood, so the prior pulls the
percept further towards slow speeds: low-contrast stimuli look slower (the Thompson effect).

    trials = hz.data.stocker_simoncelli_subject(1)
    experiment = speed_experiment(trials)                 # prior="slow"
    fit = hz.fit(experiment, trials["test_seen_faster"], method="nuts", key=0)

``cross_validated_log_likelihood`` scores an observer against held-out trials, e.g. against
the unbiased observer (``prior=None``) and the descriptive per-condition baseline
(:func:`psychometric_baseline`). :func:`condition_counts` pools each condition's trials into
psignifit's data matrix, for a :class:`~helmholtz.perception.PsychometricFunction` per condition.
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
from jax.scipy.stats import bernoulli

from helmholtz.perception.experiment import PsychometricPerCondition, TwoAFCExperiment
from helmholtz.perception.observer import GaussianPrior, Observer, PiecewiseLogPrior, PowerLawPrior

SPEED_PRIORS = ("power", "slow", "gaussian", "piecewise", None)
SPEED_OFFSET = 0.3  # deg/s: the internal domain log(v + 0.3) of Stocker & Simoncelli (2006)


def contrast_levels(trials: pd.DataFrame) -> np.ndarray:
    """The distinct contrasts of the reference and test stimuli, ascending.

    Args:
        trials: a speed-discrimination table (:func:`helmholtz.data.load_speed_trials`), one
            row per trial, with columns ``ref_contrast`` and ``test_contrast``.

    Returns:
        The contrasts, shape ``(num_levels,)``.
    """
    return np.unique(np.concatenate([trials["ref_contrast"], trials["test_contrast"]]))


def speed_observer(
    trials: pd.DataFrame, prior: str | None = "slow", percept: str = "mean", grid_size: int = 256
) -> Observer:
    """The observer of :mod:`helmholtz.perception.speed` for the stimuli of ``trials``: one
    noise level per contrast, a log-speed grid reaching 2.5 log units beyond the speeds.

    Args:
        trials: a speed-discrimination table (:func:`helmholtz.data.load_speed_trials`), one
            row per trial, with columns ``ref_speed_deg_s``, ``test_speed_deg_s``,
            ``ref_contrast`` and ``test_contrast``.
        prior: ``"slow"`` (the default: a heavy-tailed power law restricted to favour slow
            speeds over the internal variable; best held out on all five observers of Stocker
            & Simoncelli, and its posterior has one mode), ``"power"`` (the unrestricted power
            law, whose posterior can have a second, mirror mode favouring fast speeds),
            ``"gaussian"`` (centred at 0, Weiss et al.), ``"piecewise"`` (log-log slopes
            between the reference speeds), or None (unbiased).
        percept: ``"mean"``, ``"median"`` or ``"mode"`` of the posterior over the internal
            variable.
        grid_size: the number of points of the log-speed grid.

    Returns:
        The :class:`~helmholtz.perception.Observer`.

    Raises:
        ValueError: ``prior`` is not one of ``SPEED_PRIORS``.
    """
    if prior not in SPEED_PRIORS:
        raise ValueError(f"speed_observer: prior must be one of {SPEED_PRIORS}, got {prior!r}")
    speeds = np.concatenate([trials["ref_speed_deg_s"], trials["test_speed_deg_s"]])
    if prior == "power":
        world_prior = PowerLawPrior()
    elif prior == "slow":
        world_prior = PowerLawPrior(slow_offset=SPEED_OFFSET)
    elif prior == "gaussian":
        world_prior = GaussianPrior(mean=0.0, sd_scale=5.0)
    elif prior == "piecewise":
        world_prior = PiecewiseLogPrior(knots=tuple(np.unique(trials["ref_speed_deg_s"])))
    else:
        world_prior = None
    grid = (float(np.log(SPEED_OFFSET)), float(np.log(speeds.max() + SPEED_OFFSET) + 2.5), grid_size)
    return Observer(
        world_prior, len(contrast_levels(trials)), domain="log", percept=percept, offset=SPEED_OFFSET, grid=grid
    )


def speed_experiment(trials: pd.DataFrame, prior: str | None = "slow", **observer_options) -> TwoAFCExperiment:
    """The trials of a speed-discrimination table (:func:`helmholtz.data.load_speed_trials`)
    as a model whose data are the responses ``trials["test_seen_faster"]``.

    Args:
        trials: the speed-discrimination table, one row per trial.
        prior: the observer's prior over speed, as in :func:`speed_observer`.
        **observer_options: ``percept`` and ``grid_size``, passed to :func:`speed_observer`.

    Returns:
        A :class:`~helmholtz.perception.TwoAFCExperiment` of the trials, whose data are the
        responses, shape ``(num_trials,)``.
    """
    levels = contrast_levels(trials)
    return TwoAFCExperiment(
        speed_observer(trials, prior, **observer_options),
        reference=trials["ref_speed_deg_s"].to_numpy(float),
        reference_level=np.searchsorted(levels, trials["ref_contrast"].to_numpy()),
        test=trials["test_speed_deg_s"].to_numpy(float),
        test_level=np.searchsorted(levels, trials["test_contrast"].to_numpy()),
    )


def psychometric_baseline(trials: pd.DataFrame) -> PsychometricPerCondition:
    """A free cumulative Gaussian per (reference speed, reference contrast, test contrast).

    Args:
        trials: a speed-discrimination table (:func:`helmholtz.data.load_speed_trials`), one
            row per trial.

    Returns:
        A :class:`~helmholtz.perception.PsychometricPerCondition` of the trials, whose data
        are the responses, shape ``(num_trials,)``.
    """
    keys = trials[["ref_speed_deg_s", "ref_contrast", "test_contrast"]].to_numpy()
    _, condition = np.unique(keys, axis=0, return_inverse=True)
    condition = condition.ravel().astype(np.int64)
    return PsychometricPerCondition(
        condition,
        trials["ref_speed_deg_s"].to_numpy(float),
        trials["test_speed_deg_s"].to_numpy(float),
        int(condition.max()) + 1,
    )


def condition_counts(trials: pd.DataFrame, bin_width: float = 0.125) -> dict[tuple[float, float, float], np.ndarray]:
    """Each condition's trials as psignifit's data matrix, one row per block.

    A condition is a (reference speed, reference contrast, test contrast); the intensity is
    log2(test speed / reference speed). The staircases set the test speed to up to 47
    distinct values per condition, most tried a few times, so trials are pooled in bins of
    ``bin_width`` octaves (from the condition's slowest test), each block's intensity the
    mean of its trials' (psignifit's ``pool_blocks`` rule).

    Args:
        trials: a speed-discrimination table (:func:`helmholtz.data.load_speed_trials`), one
            row per trial.
        bin_width: the width of a block, in octaves of test / reference speed.

    Returns:
        ``{(reference speed, reference contrast, test contrast): matrix}``, each matrix of
        shape ``(num_blocks, 3)`` with rows [log2 ratio, number "test faster", number of
        trials], sorted by intensity.

    Raises:
        ValueError: ``bin_width`` is not positive.
    """
    if not bin_width > 0:
        raise ValueError(f"condition_counts: bin_width must be positive, got {bin_width!r}")
    ratio = np.log2(trials["test_speed_deg_s"].to_numpy(float) / trials["ref_speed_deg_s"].to_numpy(float))
    faster = trials["test_seen_faster"].to_numpy(float)
    keys = trials[["ref_speed_deg_s", "ref_contrast", "test_contrast"]].to_numpy(float)
    result = {}
    for key in np.unique(keys, axis=0):
        chosen = (keys == key).all(axis=1)
        x, y = ratio[chosen], faster[chosen]
        _, block = np.unique(np.floor((x - x.min()) / bin_width), return_inverse=True)
        trials_per_block = np.bincount(block).astype(float)
        columns = [np.bincount(block, weights=x) / trials_per_block, np.bincount(block, weights=y), trials_per_block]
        matrix = np.stack(columns, axis=1)
        result[tuple(float(v) for v in key)] = matrix[np.argsort(matrix[:, 0])]
    return result


def cross_validated_log_likelihood(model, responses, *, folds: int = 5, key=0, **svi_options) -> float:
    """Held-out log-likelihood (nats, summed over trials) of ``model`` (a
    :class:`TwoAFCExperiment` or :class:`PsychometricPerCondition`): the trials are split
    into ``folds`` at random, each fold is predicted by the maximum a posteriori parameters
    (``svi`` with a delta guide) fit to the other folds.

    Args:
        model: the model of all the trials, with ``subset(mask)`` and
            ``response_probability(params)``.
        responses: each trial's response, 0 or 1, shape ``(num_trials,)``.
        folds: the number of folds, at least 2.
        key: an int seed, for the folds and the fits.
        **svi_options: options of the ``svi`` back end, over the defaults (a delta guide,
            3000 steps, learning rate 0.02, no progress bar).

    Returns:
        The held-out log-likelihood, in nats summed over all trials.

    Raises:
        ValueError: ``folds`` is less than 2.
    """
    import helmholtz as hz

    responses = np.asarray(responses, dtype=float)
    if folds < 2:
        raise ValueError(f"cross_validated_log_likelihood: folds must be at least 2, got {folds}")
    assignment = np.random.default_rng(np.random.SeedSequence(int(key))).permutation(len(responses)) % folds
    options = {"guide": "delta", "num_steps": 3000, "learning_rate": 0.02, "progress_bar": False, **svi_options}
    total = 0.0
    for fold in range(folds):
        train, test = assignment != fold, assignment == fold
        fit = hz.fit(model.subset(train), responses[train], method="svi", key=key + fold, **options)
        params = jax.tree.map(lambda draws: draws[0], fit.sample(0, 1))
        p = model.subset(test).response_probability(params)
        total += float(bernoulli.logpmf(responses[test], p).sum())
    return total
