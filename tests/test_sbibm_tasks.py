"""The sbibm tasks against the benchmark's own data (``shared/reference/sbibm``), which we
did not make: its observations, the parameters that generated them and its reference
posterior draws.

Tolerances come from standard errors: a statistic of n independent draws is compared
with its exact value in units of its standard error (4 of them unless said otherwise),
and tests of the ten observations together use a Kolmogorov-Smirnov test at p > 0.01.
Seeds are fixed, so each check is deterministic; each would fail for a simulator that
got a scale, a sign, a fold or an ordering of the definition wrong.
"""

import math

import jax
import numpy as np
import pytest
from scipy import stats
from scipy.spatial import cKDTree

from helmholtz.models.simulators import SLCP, TASKS, GaussianLinear, TwoMoons, load_task

NUM_SIMULATIONS = 10_000


def _simulate_at_each(model, thetas, num, key):
    """``num`` simulations at each parameter vector of ``thetas (k, d)``: ``(k, num, dim_x)``,
    in one batch (one compilation)."""
    thetas = np.asarray(thetas)
    x = model.simulate_batch(key, np.repeat(thetas, num, axis=0), chunk_size=len(thetas) * num)
    return x.reshape(len(thetas), num, -1)


def test_load_task_reads_the_benchmark_arrays():
    for name, cls in TASKS.items():
        model, observations, true_parameters, draws = load_task(name)
        assert isinstance(model, cls)
        d, dim_x = len(model.parameters), model.observation_shape[0]
        assert observations.shape == (10, dim_x) and true_parameters.shape == (10, d)
        assert draws.shape == (10, 10_000, d)
        assert model.parameter_names == tuple(f"theta_{i}" for i in range(1, d + 1))


def test_gaussian_linear_closed_form_matches_the_reference_draws():
    """The benchmark's reference draws for each observation against our closed form
    N(x / 2, 0.05 I): means within 4 standard errors (sd / sqrt(10,000) = 0.0022, 100
    coordinates, so a false alarm has probability 0.6%), variances within 6% (the
    relative standard error of a variance is sqrt(2 / n) = 1.4%: 4.2 of them) and
    correlations within 0.05 (5 standard errors of 1 / sqrt(n))."""
    model, observations, _, draws = load_task("gaussian_linear")
    posterior = jax.jit(model.true_posterior)(observations)  # compiled: eager NumPyro is slow
    mean, covariance = np.asarray(posterior.mean), np.asarray(posterior.covariance_matrix)
    np.testing.assert_allclose(mean, observations / 2, rtol=1e-6)
    np.testing.assert_allclose(covariance[0], 0.05 * np.eye(10), atol=1e-7)
    n = draws.shape[1]
    for x_draws, mu, sigma in zip(draws.astype(np.float64), mean, covariance):
        sd = np.sqrt(np.diag(sigma))
        z = (x_draws.mean(0) - mu) / (sd / math.sqrt(n))
        assert np.abs(z).max() < 4, z
        relative_variance = x_draws.var(0, ddof=1) / sd**2
        assert np.abs(relative_variance - 1).max() < 0.06, relative_variance
        correlation = np.corrcoef(x_draws.T)
        assert np.abs(correlation - np.eye(10)).max() < 0.05


def test_gaussian_linear_reproduces_the_benchmark_observations():
    """At each true theta, our simulations have mean theta and variance 0.1 per coordinate
    (4 standard errors: sqrt(0.1 / n) for the mean, sqrt(2 / n) relative for the
    variance, 100 coordinates), and the benchmark's observation is a typical draw of
    them: its squared Mahalanobis distance under the simulations' mean and covariance
    is chi2(10) distributed, tested over the ten observations with Kolmogorov-Smirnov."""
    model, observations, true_parameters, _ = load_task("gaussian_linear")
    simulations = _simulate_at_each(model, true_parameters, NUM_SIMULATIONS, key=1).astype(np.float64)
    distances = []
    for x_obs, theta, x in zip(observations, true_parameters, simulations):
        assert np.abs((x.mean(0) - theta) / math.sqrt(0.1 / NUM_SIMULATIONS)).max() < 4
        assert np.abs(x.var(0, ddof=1) / 0.1 - 1).max() < 4 * math.sqrt(2 / NUM_SIMULATIONS)
        residual = x_obs - x.mean(0)
        distances.append(residual @ np.linalg.solve(np.cov(x.T), residual))
    assert stats.kstest(distances, stats.chi2(10).cdf).pvalue > 0.01, distances


def _two_moons_mapping(theta):
    z0 = (theta[..., 0] + theta[..., 1]) / math.sqrt(2)
    z1 = (-theta[..., 0] + theta[..., 1]) / math.sqrt(2)
    return np.stack([-np.abs(z0), z1], -1)


def test_two_moons_reproduces_the_benchmark_observations():
    """The benchmark's observation lies within the cloud of our simulations at its true
    theta: its distance to the nearest of 10,000 simulations is compared with that of
    1,000 further simulations (exchangeable with it if the simulator is right), so its
    rank is uniform: it must not exceed all 1,000 (chance 1 in 1,001 each), and the ten
    ranks together must pass a Kolmogorov-Smirnov test for uniformity."""
    model, observations, true_parameters, _ = load_task("two_moons")
    simulations = _simulate_at_each(model, true_parameters, NUM_SIMULATIONS + 1000, key=2)
    ranks = []
    for i, (x_obs, x) in enumerate(zip(observations, simulations)):
        cloud, held_out = cKDTree(x[:NUM_SIMULATIONS]), x[NUM_SIMULATIONS:]
        distance_obs = cloud.query(x_obs)[0]
        distances = cloud.query(held_out)[0]
        rank = (1 + np.sum(distances >= distance_obs)) / (1 + len(distances))
        assert rank > 1 / 1001 + 1e-9, (i, distance_obs, distances.max())
        ranks.append(rank)
    assert stats.kstest(ranks, "uniform").pvalue > 0.01, ranks


def test_two_moons_structure_follows_the_definition():
    """At theta = 0 the data are p itself: a half circle around (0.25, 0) on the right
    (x_0 >= 0.25) whose radius is N(0.1, 0.01) (mean within 4 standard errors,
    0.01 / sqrt(n), and sd within 4 of 0.01 / sqrt(2n)) and whose angle is uniform on
    (-pi/2, pi/2). Any other theta shifts the same draws by (-|z0|, z1), so theta and its
    reflection -theta along theta_1 = theta_2 (z0 -> -z0) give identical data: the fold
    that makes the posterior bimodal."""
    model = TwoMoons()
    x = _simulate_at_each(model, np.zeros((1, 2)), NUM_SIMULATIONS, key=4)[0].astype(np.float64)
    offset = x - np.array([0.25, 0.0])
    radius, angle = np.hypot(offset[:, 0], offset[:, 1]), np.arctan2(offset[:, 1], offset[:, 0])
    assert abs(radius.mean() - 0.1) < 4 * 0.01 / math.sqrt(NUM_SIMULATIONS)
    assert abs(radius.std(ddof=1) - 0.01) < 4 * 0.01 / math.sqrt(2 * NUM_SIMULATIONS)
    assert (x[:, 0] >= 0.25).all()
    assert stats.kstest(angle, stats.uniform(-math.pi / 2, math.pi).cdf).pvalue > 0.01

    # Batches of NUM_SIMULATIONS in one chunk: the shape compiled above, no recompilation.
    theta = np.random.default_rng(5).uniform(-1, 1, (NUM_SIMULATIONS, 2)).astype(np.float32)
    base = model.simulate_batch(5, np.zeros_like(theta), chunk_size=NUM_SIMULATIONS)
    shifted = model.simulate_batch(5, theta, chunk_size=NUM_SIMULATIONS)
    np.testing.assert_allclose(shifted - base, _two_moons_mapping(theta), atol=1e-6)
    diagonal = np.stack([theta[:, 0], theta[:, 0]], -1)
    folded = model.simulate_batch(6, -diagonal, chunk_size=NUM_SIMULATIONS)
    np.testing.assert_array_equal(model.simulate_batch(6, diagonal, chunk_size=NUM_SIMULATIONS), folded)
    assert not np.allclose(model.simulate_batch(6, diagonal * [1, -1], chunk_size=NUM_SIMULATIONS), folded)


def _slcp_log_likelihood(x, theta):
    """log p(x | theta) of the README's definition, written independently in float64."""
    theta = np.asarray(theta, np.float64)
    s1, s2, rho = theta[2] ** 2, theta[3] ** 2, np.tanh(theta[4])
    covariance = np.array([[s1**2 + 1e-6, rho * s1 * s2], [rho * s1 * s2, s2**2 + 1e-6]])
    pairs = np.asarray(x, np.float64).reshape(x.shape[:-1] + (4, 2))
    return stats.multivariate_normal(theta[:2], covariance).logpdf(pairs).sum(-1)


def test_slcp_reproduces_the_benchmark_observations():
    """Under its true theta, the benchmark's observation has a log-likelihood (the exact
    Gaussian, computed independently) like that of our simulations at the same theta:
    its rank among 10,000 is within (0.001, 0.999) for each observation and uniform over
    the ten (Kolmogorov-Smirnov). Pairing the eight numbers differently (draw order)
    or mis-scaling the covariance makes the observation extreme."""
    model, observations, true_parameters, _ = load_task("slcp")
    simulations = _simulate_at_each(model, true_parameters, NUM_SIMULATIONS, key=3)
    ranks = []
    for i, (x_obs, theta, x) in enumerate(zip(observations, true_parameters, simulations)):
        simulated = _slcp_log_likelihood(x, theta)
        rank = np.mean(simulated <= _slcp_log_likelihood(x_obs, theta))
        assert 0.001 < rank < 0.999, (i, rank)
        ranks.append(rank)
    assert stats.kstest(ranks, "uniform").pvalue > 0.01, ranks
    # The model's own log-likelihood (float32, its Cholesky factor) agrees with scipy's.
    ours = np.asarray(jax.jit(model.log_likelihood)(observations, true_parameters))
    theirs = np.array([_slcp_log_likelihood(x, t) for x, t in zip(observations, true_parameters)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-2)


def test_slcp_covariance_factor_stays_real_at_the_prior_edge():
    """At theta_5 = 3 (rho = 0.995) with large scales, float32 roundoff exceeds the 1e-6
    jitter; the factor must still be real and reproduce the covariance."""
    theta = np.array([0.0, 0.0, 3.0, 3.0, 3.0], np.float32)
    factor = np.asarray(SLCP().covariance_cholesky(theta), np.float64)
    assert np.isfinite(factor).all()
    s, rho = 9.0, np.tanh(3.0)
    np.testing.assert_allclose(factor @ factor.T, [[s**2, rho * s * s], [rho * s * s, s**2]], rtol=1e-5)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"theta must have shape \(num_simulations, 2\)"):
        TwoMoons().simulate_batch(0, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="theta must have shape"):
        GaussianLinear().simulate_batch(0, np.zeros(10))
    with pytest.raises(ValueError, match="known tasks.*gaussian_linear.*slcp.*two_moons"):
        load_task("nope")
    with pytest.raises(ValueError, match="x must have shape"):
        GaussianLinear().true_posterior(np.zeros(3))
    with pytest.raises(ValueError, match="noise_variance"):
        GaussianLinear(noise_variance=0.0)
