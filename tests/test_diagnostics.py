"""Diagnostics: the C2ST and the SBC uniformity test discriminate, and SBC of NUTS passes."""

import numpy as np
import pytest

import helmholtz as hz
from helmholtz.diagnostics import c2st, rank_uniformity_p_values, sbc


def test_c2st_tells_apart_only_different_distributions():
    """Two samples of one Gaussian score near 0.5; a shift of two sd scores near the Bayes
    accuracy Phi(1) = 0.84 (the optimal classifier's accuracy for means 2 sd apart)."""
    rng = np.random.default_rng(0)
    same = c2st(rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2)))
    shifted = c2st(rng.normal(size=(1000, 2)) + [2.0, 0.0], rng.normal(size=(1000, 2)))
    assert abs(same - 0.5) < 0.05
    assert shifted == pytest.approx(0.84, abs=0.04)


def test_rank_uniformity_test_rejects_miscalibration():
    """Ranks of an over-confident posterior pile up at the ends; a calibrated one's don't."""
    rng = np.random.default_rng(1)
    num_draws = 99
    truth = rng.normal(size=200)
    calibrated = (rng.normal(size=(200, num_draws)) < truth[:, None]).sum(1)
    too_narrow = (0.3 * rng.normal(size=(200, num_draws)) < truth[:, None]).sum(1)
    p = rank_uniformity_p_values(np.stack([calibrated, too_narrow], 1), num_draws)
    assert p[0] > 0.01 and p[1] < 1e-6


@pytest.mark.slow
def test_sbc_of_nuts_on_factor_analysis_is_uniform():
    """NUTS samples the exact posterior, so the ranks of the identifiable parameters
    (G G^T, mean, noise) must pass the Bonferroni-corrected chi-square test at 1%.
    Fixed seed; 50 simulations give 10 bins of 5 expected ranks, each rank among 49 draws.
    (About 2.5 minutes: 50 NUTS fits; the default suite runs the 20-fit version below.)"""
    model = hz.models.FactorAnalysis(2, 1)
    result = sbc(
        model,
        "nuts",
        key=0,
        num_simulations=50,
        num_posterior_draws=49,
        num_points=40,
        progress_bar=False,
        num_chains=1,
        num_warmup=300,
        num_samples=500,
    )
    assert result.ranks.shape == (50, 7)  # 3 entries of G G^T, 2 means, 2 noise scales
    assert result.passes(alpha=0.01), dict(zip(result.names, np.round(result.p_values, 4)))
    result.plot()


def test_sbc_of_nuts_passes_on_a_small_run():
    """The same check with 20 fits (ranks among 19 draws, 5 bins of 4 expected): weaker,
    but a biased or over-confident sampler (see the point-estimate test below, 20 fits too)
    fails it. Fixed seed; Bonferroni-corrected chi-square test at 1%."""
    model = hz.models.FactorAnalysis(2, 1)
    result = sbc(
        model,
        "nuts",
        key=1,
        num_simulations=20,
        num_posterior_draws=19,
        num_points=40,
        progress_bar=False,
        num_chains=1,
        num_warmup=300,
        num_samples=380,
    )
    assert result.passes(alpha=0.01), dict(zip(result.names, np.round(result.p_values, 4)))


def test_sbc_catches_a_point_estimate():
    """A MAP point estimate is not a posterior: every draw equals it, so each truth ranks
    0 or L and the uniformity test must fail."""
    model = hz.models.FactorAnalysis(2, 1)
    result = sbc(
        model, "svi", key=0, num_simulations=20, num_points=30, progress_bar=False, guide="delta", num_steps=500
    )
    assert not result.passes()
    assert np.isin(result.ranks, [0, result.num_posterior_draws]).mean() > 0.9
