"""Hidden Markov models, linear dynamical systems and AR processes against ground truth we
did not compute with the code under test: brute-force sums over every state path, the
dense joint Gaussian of all time steps, and the AR conditional densities written out."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density
from scipy import stats

from helmholtz.models.markov import (
    AutoRegressive,
    HiddenMarkovModel,
    LDSParams,
    LinearDynamicalSystem,
    hmm_filter,
    hmm_log_likelihood,
    hmm_posterior_mode,
    hmm_posterior_sample,
    hmm_smoother,
    kalman_filter,
    kalman_smoother,
)


@pytest.fixture(autouse=True)
def float64():
    # Brute-force comparisons to 1e-8 need double precision.
    with jax.enable_x64(True):
        yield


def _random_chain(seed, num_states=3, num_steps=6):
    rng = np.random.default_rng(seed)
    initial = rng.dirichlet(np.ones(num_states))
    transition = rng.dirichlet(np.ones(num_states), size=num_states)
    log_likelihoods = 2.0 * rng.normal(size=(num_steps, num_states))
    return initial, transition, log_likelihoods


def _every_path(initial, transition, log_likelihoods):
    """All K^T state paths and their joint log probabilities log p(z_1:T, y_1:T)."""
    num_steps, num_states = log_likelihoods.shape
    paths = np.array(list(itertools.product(range(num_states), repeat=num_steps)))
    steps = np.arange(num_steps)
    log_joint = (
        np.log(initial[paths[:, 0]])
        + np.log(transition[paths[:, :-1], paths[:, 1:]]).sum(1)
        + log_likelihoods[steps, paths].sum(1)
    )
    return paths, log_joint


@pytest.mark.parametrize("seed", [0, 1])
def test_forward_algorithm_equals_the_sum_over_every_path(seed):
    chain = _random_chain(seed)
    _, log_joint = _every_path(*chain)
    assert float(hmm_log_likelihood(*chain)) == pytest.approx(np.logaddexp.reduce(log_joint), abs=1e-10)


def test_filter_smoother_and_viterbi_equal_brute_force():
    chain = _random_chain(2)
    paths, log_joint = _every_path(*chain)
    posterior = np.exp(log_joint - np.logaddexp.reduce(log_joint))
    num_steps, num_states = chain[2].shape
    smoothed = np.array([[posterior[paths[:, t] == k].sum() for k in range(num_states)] for t in range(num_steps)])
    result = hmm_smoother(*chain)
    np.testing.assert_allclose(result.smoothed_probs, smoothed, atol=1e-10)
    # p(z_t, z_t+1 | y) for t = 0, from the same enumeration.
    pairwise = np.array(
        [
            [posterior[(paths[:, 0] == i) & (paths[:, 1] == j)].sum() for j in range(num_states)]
            for i in range(num_states)
        ]
    )
    np.testing.assert_allclose(result.smoothed_transitions[0], pairwise, atol=1e-10)
    # The filter at time t is the smoother of the prefix y_1:t.
    prefix = (chain[0], chain[1], chain[2][:3])
    prefix_paths, prefix_joint = _every_path(*prefix)
    prefix_posterior = np.exp(prefix_joint - np.logaddexp.reduce(prefix_joint))
    filtered_at_2 = [prefix_posterior[prefix_paths[:, 2] == k].sum() for k in range(num_states)]
    np.testing.assert_allclose(hmm_filter(*chain).filtered_probs[2], filtered_at_2, atol=1e-10)
    np.testing.assert_array_equal(hmm_posterior_mode(*chain), paths[np.argmax(log_joint)])


def test_posterior_paths_have_the_smoothed_marginals():
    """20,000 forward-filtering backward-sampling draws: each marginal frequency has a
    binomial standard error of at most 0.0035, so 0.02 is over five standard errors."""
    chain = _random_chain(3)
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    draws = np.asarray(jax.vmap(lambda key: hmm_posterior_sample(key, *chain))(keys))
    frequencies = np.stack([(draws == k).mean(0) for k in range(3)], axis=1)
    np.testing.assert_allclose(frequencies, hmm_smoother(*chain).smoothed_probs, atol=0.02)
    # The joint of consecutive states, not only the marginals, must match.
    pairs = np.mean((draws[:, 0] == 1) & (draws[:, 1] == 2))
    assert pairs == pytest.approx(float(hmm_smoother(*chain).smoothed_transitions[0, 1, 2]), abs=0.02)


def test_long_sequences_do_not_underflow():
    """100,000 steps of log-likelihoods around -50 each: the unscaled forward recursion
    would underflow after a few steps; the scaled one gives the sum of per-step terms."""
    num_steps = 100_000
    log_likelihoods = jnp.full((num_steps, 2), -50.0)
    # Equal likelihoods in every state: log p(y) is exactly the sum of the per-step terms.
    total = hmm_log_likelihood(jnp.array([0.5, 0.5]), jnp.array([[0.9, 0.1], [0.2, 0.8]]), log_likelihoods)
    assert float(total) == pytest.approx(-50.0 * num_steps, rel=1e-12)


@pytest.mark.parametrize(
    "emission, params, data",
    [
        (
            "gaussian",
            {"means": [[0.0, 1.0], [3.0, -1.0]], "scales": [[1.0, 0.5], [2.0, 1.0]]},
            [[0.2, 0.9], [2.5, -1.2], [3.1, 0.0], [-0.4, 1.1]],
        ),
        ("poisson", {"rates": [[1.0, 4.0], [6.0, 0.5]]}, [[0, 5], [7, 1], [5, 0], [1, 3]]),
        ("bernoulli", {"probs": [[0.1, 0.8], [0.7, 0.3]]}, [[0, 1], [1, 0], [1, 1], [0, 1]]),
    ],
)
def test_model_likelihood_matches_brute_force_for_each_emission(emission, params, data):
    """The model's whole-sequence density, with its emission family built by scipy."""
    model = HiddenMarkovModel(2, obs_dim=2, emission=emission)
    params = {
        "initial_probs": np.array([0.6, 0.4]),
        "transition_matrix": np.array([[0.7, 0.3], [0.25, 0.75]]),
        **{k: np.array(v) for k, v in params.items()},
    }
    data = np.array(data, dtype=float)
    if emission == "gaussian":
        per_state = stats.norm(params["means"][None], params["scales"][None]).logpdf(data[:, None, :])
    elif emission == "poisson":
        per_state = stats.poisson(params["rates"][None]).logpmf(data[:, None, :])
    else:
        per_state = stats.bernoulli(params["probs"][None]).logpmf(data[:, None, :])
    _, log_joint = _every_path(params["initial_probs"], params["transition_matrix"], per_state.sum(-1))
    ours = model.sequence_distribution({k: jnp.asarray(v) for k, v in params.items()}, 4).log_prob(jnp.asarray(data))
    assert float(ours) == pytest.approx(np.logaddexp.reduce(log_joint), abs=1e-9)
    assert float(model.filter(params, data).marginal_loglik) == pytest.approx(float(ours), abs=1e-12)


def _dense_gaussian(params, num_steps):
    """Mean and covariance of all states z_1:T and emissions y_1:T, built from the model's
    definition by propagating means and cross-covariances (no filtering)."""
    A, S = params.dynamics_matrix, params.initial_mean.shape[0]
    means, cov = [params.initial_mean], np.zeros((num_steps, num_steps, S, S))
    cov[0, 0] = params.initial_covariance
    for t in range(1, num_steps):
        means.append(A @ means[-1] + params.dynamics_bias)
        for s in range(t):
            cov[t, s] = A @ cov[t - 1, s]
            cov[s, t] = cov[t, s].T
        cov[t, t] = A @ cov[t - 1, t - 1] @ A.T + params.dynamics_covariance
    state_mean = np.concatenate(means)
    state_cov = cov.transpose(0, 2, 1, 3).reshape(num_steps * S, num_steps * S)
    emission = np.kron(np.eye(num_steps), params.emission_matrix)
    y_mean = emission @ state_mean + np.tile(params.emission_bias, num_steps)
    y_cov = emission @ state_cov @ emission.T + np.kron(np.eye(num_steps), params.emission_covariance)
    return state_mean, state_cov, emission, y_mean, y_cov


def _random_lds(seed, state_dim=2, obs_dim=3):
    rng = np.random.default_rng(seed)
    return LDSParams(
        initial_mean=rng.normal(size=state_dim),
        initial_covariance=np.eye(state_dim) * 0.5 + 0.1,
        dynamics_matrix=0.5 * rng.normal(size=(state_dim, state_dim)),
        dynamics_bias=0.1 * rng.normal(size=state_dim),
        dynamics_covariance=np.diag(rng.uniform(0.1, 0.5, state_dim)),
        emission_matrix=rng.normal(size=(obs_dim, state_dim)),
        emission_bias=rng.normal(size=obs_dim),
        emission_covariance=np.diag(rng.uniform(0.2, 1.0, obs_dim)),
    )


def test_kalman_marginal_likelihood_equals_the_dense_gaussian():
    params, num_steps = _random_lds(0), 6
    y = np.random.default_rng(1).normal(size=(num_steps, 3))
    _, _, _, y_mean, y_cov = _dense_gaussian(params, num_steps)
    exact = stats.multivariate_normal(y_mean, y_cov).logpdf(y.ravel())
    assert float(kalman_filter(params, y).marginal_loglik) == pytest.approx(exact, abs=1e-9)


def test_rts_smoother_equals_dense_gaussian_conditioning():
    params, num_steps, state_dim = _random_lds(2), 5, 2
    y = np.random.default_rng(3).normal(size=(num_steps, 3))
    state_mean, state_cov, emission, y_mean, y_cov = _dense_gaussian(params, num_steps)
    gain = state_cov @ emission.T @ np.linalg.inv(y_cov)
    posterior_mean = (state_mean + gain @ (y.ravel() - y_mean)).reshape(num_steps, state_dim)
    posterior_cov = state_cov - gain @ emission @ state_cov
    blocks = np.stack(
        [
            posterior_cov[t * state_dim : (t + 1) * state_dim, t * state_dim : (t + 1) * state_dim]
            for t in range(num_steps)
        ]
    )
    result = kalman_smoother(params, y)
    np.testing.assert_allclose(result.smoothed_means, posterior_mean, atol=1e-9)
    np.testing.assert_allclose(result.smoothed_covariances, blocks, atol=1e-9)


def test_lds_model_density_is_the_kalman_marginal_of_its_parameters():
    model = LinearDynamicalSystem(2, 3)
    params = {
        "dynamics_matrix": np.array([[0.9, 0.1], [-0.2, 0.8]]),
        "emission_matrix": np.arange(6.0).reshape(3, 2) / 5,
        "emission_bias": np.array([1.0, -1.0, 0.5]),
        "noise": np.array([0.5, 1.0, 0.3]),
    }
    y = np.random.default_rng(4).normal(size=(5, 3))
    _, _, _, y_mean, y_cov = _dense_gaussian(model.lds_params(params), 5)
    assert float(model.filter(params, y).marginal_loglik) == pytest.approx(
        stats.multivariate_normal(y_mean, y_cov).logpdf(y.ravel()), abs=1e-9
    )


def test_ar_density_is_the_product_of_its_conditionals():
    model = AutoRegressive(order=2, initial_scale=3.0)
    y = np.random.default_rng(5).normal(size=12)
    intercept, coefficients, sigma = 0.3, np.array([0.5, -0.2]), 0.8
    conditional = sum(
        stats.norm(intercept + coefficients[0] * y[t - 1] + coefficients[1] * y[t - 2], sigma).logpdf(y[t])
        for t in range(2, 12)
    )
    initial = stats.norm(0.0, 3.0).logpdf(y[:2]).sum()
    params = {"intercept": intercept, "coefficients": coefficients, "sigma": sigma}
    _, trace = log_density(model.program, (jnp.asarray(y),), {}, params)
    assert float(trace["x"]["fn"].log_prob(jnp.asarray(y))) == pytest.approx(initial + conditional, abs=1e-9)


def test_simulated_sequences_have_the_stationary_moments():
    """An AR(1) with coefficient 0.8 and sigma 1 has stationary variance 1 / (1 - 0.64) =
    2.78 and lag-one autocorrelation 0.8; 64 sequences of 2,000 steps (after a burn-in of
    100) estimate them to about 2% and 0.01, so 10% and 0.03 are safe bounds."""
    model = AutoRegressive(order=1, num_steps=2_100)
    params = {"intercept": jnp.array(0.0), "coefficients": jnp.array([0.8]), "sigma": jnp.array(1.0)}
    x = np.asarray(model.simulate(0, params, num_points=64))[:, 100:]
    assert x.var() == pytest.approx(1 / 0.36, rel=0.1)
    lag_one = np.mean([np.corrcoef(row[:-1], row[1:])[0, 1] for row in x])
    assert lag_one == pytest.approx(0.8, abs=0.03)


def test_simulated_hmm_sequences_follow_the_chain():
    """Transition frequencies in 32 simulated sequences of 500 steps estimate each row of
    the transition matrix from thousands of transitions: within 0.03 (several s.e.)."""
    model = HiddenMarkovModel(2, obs_dim=1, emission="poisson", num_steps=500)
    transition = np.array([[0.95, 0.05], [0.1, 0.9]])
    params = {
        "initial_probs": jnp.array([0.5, 0.5]),
        "transition_matrix": jnp.asarray(transition),
        "rates": jnp.array([[1.0], [30.0]]),
    }
    x = np.asarray(model.simulate(0, params, num_points=32))[..., 0]
    states = (x > 10).astype(int)  # rates 1 and 30 are separated by the threshold almost surely
    counts = np.zeros((2, 2))
    np.add.at(counts, (states[:, :-1], states[:, 1:]), 1)
    np.testing.assert_allclose(counts / counts.sum(1, keepdims=True), transition, atol=0.03)
    viterbi = np.asarray(model.most_likely_states(params, x[0, :, None]))
    assert np.mean(viterbi == states[0]) > 0.99


def test_relabelled_states_give_the_same_identifiable_parameters():
    model = HiddenMarkovModel(3, obs_dim=1)
    rng = np.random.default_rng(0)
    params = {
        "initial_probs": jnp.asarray(rng.dirichlet(np.ones(3))),
        "transition_matrix": jnp.asarray(rng.dirichlet(np.ones(3), size=3)),
        "means": jnp.asarray(rng.normal(size=(3, 1))),
        "scales": jnp.asarray(rng.uniform(0.5, 2.0, size=(3, 1))),
    }
    order = jnp.array([2, 0, 1])
    relabelled = {
        "initial_probs": params["initial_probs"][order],
        "transition_matrix": params["transition_matrix"][order][:, order],
        "means": params["means"][order],
        "scales": params["scales"][order],
    }
    a, b = model.identifiable_parameters(params), model.identifiable_parameters(relabelled)
    for name in a:
        np.testing.assert_allclose(a[name], b[name])
    assert np.all(np.diff(a["means"][:, 0]) >= 0)


@pytest.mark.parametrize(
    "model, data, message",
    [
        (HiddenMarkovModel(2, obs_dim=2), np.zeros((10, 3)), "obs_dim = 2"),
        (HiddenMarkovModel(2, obs_dim=1), np.zeros((2, 3, 4, 1)), "one sequence"),
        (HiddenMarkovModel(2, obs_dim=1), np.array([[0.0], [np.nan]]), "NaN"),
        (HiddenMarkovModel(2, emission="poisson"), np.array([[1.0], [-1.0]]), "non-negative integer"),
        (HiddenMarkovModel(2, emission="bernoulli"), np.array([[1.0], [0.5]]), "binary"),
        (LinearDynamicalSystem(2, 3), np.zeros(10), "one sequence"),
        (AutoRegressive(3), np.zeros(3), "more than 3 steps"),
    ],
)
def test_bad_sequences_are_refused_with_a_reason(model, data, message):
    with pytest.raises(ValueError, match=message):
        model.validate_data(data)


def test_transition_matrices_must_be_stochastic():
    model = HiddenMarkovModel(2, obs_dim=1)
    params = {
        "initial_probs": np.array([0.5, 0.5]),
        "transition_matrix": np.array([[0.9, 0.2], [0.1, 0.9]]),
        "means": np.zeros((2, 1)),
        "scales": np.ones((2, 1)),
    }
    with pytest.raises(ValueError, match="rows that sum to 1"):
        model.smoother(params, np.zeros((5, 1)))
    with pytest.raises(ValueError, match="num_states must be a positive integer"):
        HiddenMarkovModel(0)
    with pytest.raises(ValueError, match="emission must be one of"):
        HiddenMarkovModel(2, emission="gamma")
