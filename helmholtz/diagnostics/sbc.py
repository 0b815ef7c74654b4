"""Simulation-based calibration (Talts et al., 2018) of any (model, back end) pair.

Draw parameters from the prior, simulate a data set, fit it, and rank the true value among
posterior draws. If the back end returns the exact posterior, every rank is uniform on
{0, ..., L}; a chi-square test per statistic, Bonferroni-corrected across statistics,
says whether the observed ranks are compatible with that.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from helmholtz.diagnostics.compare import flatten_draws
from helmholtz.inference.registry import fit
from helmholtz.utils import as_key


@dataclass(frozen=True)
class SBCResult:
    """Ranks of the true parameters among ``num_posterior_draws`` posterior draws.

    Args:
        names: one per statistic (scalar component of a parameter).
        ranks: the ranks, each in {0, ..., num_posterior_draws}, shape ``(num_simulations, num_statistics)``.
        num_posterior_draws: L, so that ranks take L + 1 values.
        p_values: the chi-square uniformity test's p-value per statistic, shape ``(num_statistics,)``.
    """

    names: tuple[str, ...]
    ranks: np.ndarray
    num_posterior_draws: int
    p_values: np.ndarray

    def passes(self, alpha: float = 0.01) -> bool:
        """True when no statistic rejects uniformity at level alpha / num_statistics.

        Args:
            alpha: the family-wise level (Bonferroni-corrected across statistics).

        Returns:
            Whether every p-value exceeds ``alpha / num_statistics``.
        """
        return bool(np.all(self.p_values > alpha / len(self.names)))

    def plot(self, axes=None, num_bins: int | None = None):
        """Rank histograms, one panel per statistic, with the 99% band of a uniform.

        Args:
            axes: matplotlib axes, one per statistic (default: a new figure's grid).
            num_bins: histogram bins (default: about one per five simulations, 2 to 20).

        Returns:
            The axes, flattened.
        """
        import matplotlib.pyplot as plt

        num_bins = num_bins or _num_bins(len(self.ranks))
        count = len(self.names)
        if axes is None:
            columns = min(count, 4)
            _, axes = plt.subplots(
                -(-count // columns), columns, figsize=(3 * columns, 2.4 * -(-count // columns)), squeeze=False
            )
        axes = np.ravel(axes)
        expected = len(self.ranks) / num_bins
        low, high = stats.binom.ppf([0.005, 0.995], len(self.ranks), 1 / num_bins)
        for axis, name, ranks in zip(axes, self.names, self.ranks.T):
            axis.axhspan(low, high, color="0.85")
            axis.axhline(expected, color="0.5", lw=1)
            axis.hist(ranks, bins=np.linspace(0, self.num_posterior_draws + 1, num_bins + 1), color="C0")
            axis.set_title(name, fontsize=9)
            axis.set_yticks([])
        for axis in axes[count:]:
            axis.set_visible(False)
        return axes


def _num_bins(num_simulations: int) -> int:
    # At least five expected ranks per bin keeps the chi-square approximation honest.
    return int(np.clip(num_simulations // 5, 2, 20))


def rank_uniformity_p_values(ranks: np.ndarray, num_posterior_draws: int) -> np.ndarray:
    """Chi-square p-value per column of ``ranks`` against the discrete uniform on {0..L}.

    Args:
        ranks: the ranks, shape ``(num_simulations, num_statistics)``.
        num_posterior_draws: L, so that ranks take L + 1 values.

    Returns:
        The p-values, shape ``(num_statistics,)``.
    """
    num_bins = _num_bins(len(ranks))
    values = np.arange(num_posterior_draws + 1)
    bin_of_value = values * num_bins // (num_posterior_draws + 1)
    expected = np.bincount(bin_of_value, minlength=num_bins) / (num_posterior_draws + 1) * len(ranks)
    p_values = []
    for column in np.asarray(ranks).T:
        observed = np.bincount(bin_of_value[column.astype(int)], minlength=num_bins)
        p_values.append(stats.chisquare(observed, expected).pvalue)
    return np.asarray(p_values)


def sbc(
    model,
    method: str,
    *,
    key=0,
    num_simulations: int = 100,
    num_posterior_draws: int = 99,
    num_points: int | None = None,
    statistics=None,
    progress_bar: bool = True,
    **fit_options,
) -> SBCResult:
    """Run simulation-based calibration of ``method`` on ``model``.

    Args:
        model: a model that can simulate (``model.can_simulate``).
        method: any registered back end; ``fit_options`` are passed to it.
        key: a JAX PRNG key or an int seed.
        num_simulations: how many (prior draw, data set, fit) triples.
        num_posterior_draws: L, the posterior draws each truth is ranked among.
        num_points: data points per simulated data set (for models with i.i.d. points).
        statistics: a function from a parameter dict to a dict of arrays, the quantities
            to rank (default: the model's ``identifiable_parameters``, which for models
            with a symmetry, such as the rotation of factor loadings, are invariant to it).
        progress_bar: whether to show a progress bar over the simulations.
        **fit_options: passed to :func:`helmholtz.fit`.

    Returns:
        An :class:`SBCResult`.

    Raises:
        ValueError: the model cannot simulate from its prior.
    """
    if not model.can_simulate:
        raise ValueError(f"sbc: {model.name} cannot simulate from its prior, which calibration needs")
    statistics = statistics or model.identifiable_parameters
    global_sites = model.sites().global_latents
    names, all_ranks = None, []
    keys = jax.random.split(as_key(key), num_simulations)
    for simulation_key in tqdm(keys, desc=f"sbc {method}", disable=not progress_bar):
        key_prior, key_data, key_fit, key_draws = jax.random.split(simulation_key, 4)
        truth = {name: value[0] for name, value in model.sample_prior(key_prior, 1).items() if name in global_sites}
        x = model.simulate(key_data, truth, num_points=num_points)
        posterior = fit(model, x, method=method, key=key_fit, progress_bar=False, **fit_options)
        draws = posterior.sample(key_draws, num_posterior_draws)
        truth_stats = {k: np.asarray(v)[None] for k, v in statistics(truth).items()}
        names, truth_matrix = flatten_draws(truth_stats)
        _, draw_matrix = flatten_draws({k: np.asarray(v) for k, v in jax.vmap(statistics)(draws).items()})
        all_ranks.append((draw_matrix < truth_matrix).sum(0))
    ranks = np.asarray(all_ranks)
    return SBCResult(tuple(names), ranks, num_posterior_draws, rank_uniformity_p_values(ranks, num_posterior_draws))
