"""Expected coverage of an amortised posterior (Hermans et al. 2022, "A trust crisis in
simulation-based inference?").

For parameters drawn from the prior and data simulated from them, a calibrated posterior
contains the true parameters in its highest-density region of credibility level a for a
fraction a of the simulations, at every level a. A posterior that conditions on new data
without retraining (the capability
:class:`~helmholtz.inference.posterior.ConditionsOnNewObservation`: single-round ``npe``)
makes this cost simulations and density evaluations only, not fits. A fraction below the
level means overconfident posteriors.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
from tqdm.auto import tqdm

from helmholtz.inference.posterior import ConditionsOnNewObservation, require
from helmholtz.utils import as_key


@dataclass(frozen=True)
class CoverageResult:
    """``levels`` and the fraction of simulations whose truth lies in each HPD region.

    Args:
        levels: the credibility levels, shape ``(num_levels,)``.
        coverage: the fraction of simulations whose truth lies in the HPD region of each
            level, shape ``(num_levels,)``.
        ranks: per simulation: the fraction of posterior draws denser than the truth, shape
            ``(num_simulations,)`` (simulations whose summaries are not finite left out).
    """

    levels: np.ndarray
    coverage: np.ndarray
    ranks: np.ndarray  # per simulation: fraction of posterior draws denser than the truth

    def plot(self, axis=None):
        """The empirical coverage at every level, against a calibrated posterior's 99% band.

        Args:
            axis: the matplotlib axis to draw on (default: a new figure's).

        Returns:
            The axis.
        """
        import matplotlib.pyplot as plt

        axis = axis or plt.subplots(figsize=(3.5, 3.5))[1]
        grid = np.linspace(0, 1, 101)
        empirical = [(self.ranks < level).mean() for level in grid]
        band = 2.58 * np.sqrt(grid * (1 - grid) / len(self.ranks))
        axis.fill_between(grid, grid - band, grid + band, color="0.85", label="99% band of a calibrated posterior")
        axis.plot(grid, empirical, color="C0", label="empirical")
        axis.plot([0, 1], [0, 1], color="0.4", lw=0.8)
        axis.set(xlabel="credibility level", ylabel="expected coverage")
        return axis


def expected_coverage(
    fit, *, key=0, num_simulations: int = 200, num_draws: int = 1000, levels=(0.5, 0.9), progress_bar: bool = False
) -> CoverageResult:
    """Expected coverage of the amortised posterior of ``fit`` (a single-round NPE fit).

    Args:
        fit: a :class:`~helmholtz.Fit` whose posterior conditions on new observations.
        key: a JAX PRNG key or an int seed.
        num_simulations: parameter draws from the prior, one simulation each.
        num_draws: posterior draws per simulation.
        levels: the credibility levels to report.
        progress_bar: whether to show a progress bar.

    Returns:
        A :class:`CoverageResult`.

    Raises:
        MissingCapability: (a TypeError) the posterior does not condition on new
            observations (:class:`~helmholtz.inference.posterior.ConditionsOnNewObservation`).
    """
    posterior = require(fit.posterior, ConditionsOnNewObservation, what="expected_coverage", method=fit.method)
    model = fit.model
    key_prior, key_simulate, key_draws = jax.random.split(as_key(key), 3)
    theta = np.asarray(model.theta_of(model.sample_prior(key_prior, num_simulations)))
    summaries = model.simulate_summaries(key_simulate, theta)
    valid = np.isfinite(summaries).all(axis=1)
    ranks = []
    for i in tqdm(np.flatnonzero(valid), desc="coverage", disable=not progress_bar):
        draws = np.asarray(
            model.theta_of(posterior.sample_at(jax.random.fold_in(key_draws, i), num_draws, summaries[i]))
        )
        log_q = posterior.log_prob_at(np.concatenate([theta[i : i + 1], draws]), summaries[i])
        ranks.append(float((log_q[1:] > log_q[0]).mean()))
    ranks = np.asarray(ranks)
    levels = np.asarray(levels, dtype=float)
    return CoverageResult(levels, np.asarray([(ranks < level).mean() for level in levels]), ranks)
