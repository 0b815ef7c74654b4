"""Exact inference in linear-Gaussian state-space models, as pure functions of arrays.

    z_1 ~ N(initial_mean, initial_covariance)
    z_t = dynamics_matrix z_t-1 + dynamics_bias + w_t,      w_t ~ N(0, dynamics_covariance)
    y_t = emission_matrix z_t + emission_bias + v_t,       v_t ~ N(0, emission_covariance)

The Kalman filter gives log p(y_1:T) exactly; the Rauch-Tung-Striebel smoother gives
p(z_t | y_1:T). Jittable, batched with ``jax.vmap``, time in a ``lax.scan``. Covariance
updates use the Joseph form and innovations are solved through a Cholesky factor, so
covariances stay symmetric and positive definite in float32. Written by hand rather than
taken from Dynamax for the reason given in :mod:`.hmm_inference`.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax import lax


class LDSParams(NamedTuple):
    """Parameters of a linear-Gaussian state-space model.

    Args:
        initial_mean: the mean of z_1, shape ``(state_dim,)``.
        initial_covariance: the covariance of z_1, shape ``(state_dim, state_dim)``.
        dynamics_matrix: shape ``(state_dim, state_dim)``.
        dynamics_bias: shape ``(state_dim,)``.
        dynamics_covariance: the covariance of the state noise, shape ``(state_dim, state_dim)``.
        emission_matrix: shape ``(obs_dim, state_dim)``.
        emission_bias: shape ``(obs_dim,)``.
        emission_covariance: the covariance of the observation noise, shape ``(obs_dim, obs_dim)``.
    """

    initial_mean: jnp.ndarray
    initial_covariance: jnp.ndarray
    dynamics_matrix: jnp.ndarray
    dynamics_bias: jnp.ndarray
    dynamics_covariance: jnp.ndarray
    emission_matrix: jnp.ndarray
    emission_bias: jnp.ndarray
    emission_covariance: jnp.ndarray


class LDSFilterResult(NamedTuple):
    """The Kalman filter's results.

    Args:
        marginal_loglik: log p(y_1:T), a scalar.
        filtered_means: the means of p(z_t | y_1:t), shape ``(num_steps, state_dim)``.
        filtered_covariances: its covariances, shape ``(num_steps, state_dim, state_dim)``.
        predicted_means: the means of p(z_t | y_1:t-1), shape ``(num_steps, state_dim)``.
        predicted_covariances: its covariances, shape ``(num_steps, state_dim, state_dim)``.
    """

    marginal_loglik: jnp.ndarray
    filtered_means: jnp.ndarray
    filtered_covariances: jnp.ndarray
    predicted_means: jnp.ndarray
    predicted_covariances: jnp.ndarray


class LDSSmootherResult(NamedTuple):
    """The Rauch-Tung-Striebel smoother's results.

    Args:
        marginal_loglik: log p(y_1:T), a scalar.
        filtered_means: the means of p(z_t | y_1:t), shape ``(num_steps, state_dim)``.
        filtered_covariances: its covariances, shape ``(num_steps, state_dim, state_dim)``.
        predicted_means: the means of p(z_t | y_1:t-1), shape ``(num_steps, state_dim)``.
        predicted_covariances: its covariances, shape ``(num_steps, state_dim, state_dim)``.
        smoothed_means: the means of p(z_t | y_1:T), shape ``(num_steps, state_dim)``.
        smoothed_covariances: its covariances, shape ``(num_steps, state_dim, state_dim)``.
    """

    marginal_loglik: jnp.ndarray
    filtered_means: jnp.ndarray
    filtered_covariances: jnp.ndarray
    predicted_means: jnp.ndarray
    predicted_covariances: jnp.ndarray
    smoothed_means: jnp.ndarray
    smoothed_covariances: jnp.ndarray


def _symmetrise(matrix):
    return 0.5 * (matrix + matrix.T)


def _condition_on(mean, covariance, params: LDSParams, y):
    """Update p(z_t | y_1:t-1) with y_t: (mean, covariance, log p(y_t | y_1:t-1))."""
    emission = params.emission_matrix
    innovation = y - emission @ mean - params.emission_bias
    innovation_covariance = _symmetrise(emission @ covariance @ emission.T + params.emission_covariance)
    cholesky = jnp.linalg.cholesky(innovation_covariance)
    # Kalman gain K = P C^T S^-1, through the Cholesky factor of S.
    gain = jsl.cho_solve((cholesky, True), emission @ covariance).T
    whitened = jsl.solve_triangular(cholesky, innovation, lower=True)
    log_normaliser = -0.5 * (
        whitened @ whitened + 2.0 * jnp.log(jnp.diag(cholesky)).sum() + y.shape[-1] * jnp.log(2.0 * jnp.pi)
    )
    residual_map = jnp.eye(mean.shape[-1]) - gain @ emission
    updated_covariance = residual_map @ covariance @ residual_map.T + gain @ params.emission_covariance @ gain.T
    return mean + gain @ innovation, _symmetrise(updated_covariance), log_normaliser


def _predict(mean, covariance, params: LDSParams):
    dynamics = params.dynamics_matrix
    return (
        dynamics @ mean + params.dynamics_bias,
        _symmetrise(dynamics @ covariance @ dynamics.T + params.dynamics_covariance),
    )


@jax.jit
def kalman_filter(params: LDSParams, emissions) -> LDSFilterResult:
    """The Kalman filter: log p(y_1:T) and p(z_t | y_1:t).

    Args:
        params: the system's parameters.
        emissions: one sequence, shape ``(num_steps, obs_dim)``.

    Returns:
        An :class:`LDSFilterResult`.
    """
    params = LDSParams(*(jnp.asarray(value) for value in params))
    emissions = jnp.asarray(emissions)

    def step(carry, y_t):
        loglik, predicted_mean, predicted_covariance = carry
        mean, covariance, log_normaliser = _condition_on(predicted_mean, predicted_covariance, params, y_t)
        next_mean, next_covariance = _predict(mean, covariance, params)
        outputs = (mean, covariance, predicted_mean, predicted_covariance)
        return (loglik + log_normaliser, next_mean, next_covariance), outputs

    initial = (jnp.zeros((), emissions.dtype), params.initial_mean, params.initial_covariance)
    (loglik, _, _), outputs = lax.scan(step, initial, emissions)
    return LDSFilterResult(loglik, *outputs)


def lds_log_likelihood(params: LDSParams, emissions) -> jnp.ndarray:
    """log p(y_1:T) with the continuous states integrated out.

    Args:
        params: the system's parameters.
        emissions: one sequence, shape ``(num_steps, obs_dim)``.

    Returns:
        The log marginal likelihood, a scalar.
    """
    return kalman_filter(params, emissions).marginal_loglik


@jax.jit
def kalman_smoother(params: LDSParams, emissions) -> LDSSmootherResult:
    """The Rauch-Tung-Striebel smoother: p(z_t | y_1:T) for every t.

    Args:
        params: the system's parameters.
        emissions: one sequence, shape ``(num_steps, obs_dim)``.

    Returns:
        An :class:`LDSSmootherResult`.
    """
    params = LDSParams(*(jnp.asarray(value) for value in params))
    filtered = kalman_filter(params, emissions)

    def step(carry, inputs):
        smoothed_mean_next, smoothed_covariance_next = carry
        mean, covariance, predicted_mean_next, predicted_covariance_next = inputs
        # J = P_t|t A^T P_t+1|t^-1, solved rather than inverted.
        gain = jnp.linalg.solve(predicted_covariance_next, params.dynamics_matrix @ covariance).T
        smoothed_mean = mean + gain @ (smoothed_mean_next - predicted_mean_next)
        smoothed_covariance = covariance + gain @ (smoothed_covariance_next - predicted_covariance_next) @ gain.T
        result = (smoothed_mean, _symmetrise(smoothed_covariance))
        return result, result

    last = (filtered.filtered_means[-1], filtered.filtered_covariances[-1])
    _, (means, covariances) = lax.scan(
        step,
        last,
        (
            filtered.filtered_means[:-1],
            filtered.filtered_covariances[:-1],
            filtered.predicted_means[1:],
            filtered.predicted_covariances[1:],
        ),
        reverse=True,
    )
    return LDSSmootherResult(
        *filtered,
        jnp.concatenate([means, last[0][None]]),
        jnp.concatenate([covariances, last[1][None]]),
    )


@partial(jax.jit, static_argnames="num_steps")
def lds_sample(key, params: LDSParams, num_steps: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """States and emissions drawn from the model.

    Args:
        key: a JAX PRNG key.
        params: the system's parameters.
        num_steps: the length of the sequence.

    Returns:
        ``(states, emissions)``, shapes ``(num_steps, state_dim)`` and ``(num_steps, obs_dim)``.
    """
    params = LDSParams(*(jnp.asarray(value) for value in params))
    state_key, emission_key = jax.random.split(key)
    state_noise = jax.random.multivariate_normal(
        state_key, jnp.zeros_like(params.dynamics_bias), params.dynamics_covariance, (num_steps,)
    )
    first = jax.random.multivariate_normal(
        jax.random.fold_in(state_key, 1), params.initial_mean, params.initial_covariance
    )

    def step(state, noise_t):
        following = params.dynamics_matrix @ state + params.dynamics_bias + noise_t
        return following, following

    _, rest = lax.scan(step, first, state_noise[1:])
    states = jnp.concatenate([first[None], rest])
    emission_noise = jax.random.multivariate_normal(
        emission_key, jnp.zeros_like(params.emission_bias), params.emission_covariance, (num_steps,)
    )
    return states, states @ params.emission_matrix.T + params.emission_bias + emission_noise
