"""Exact inference in hidden Markov models, as pure functions of arrays.

Every function takes the chain's ``initial_probs`` ``(num_states,)``, its ``transition_matrix``
``(num_states, num_states)`` (row i is p(z_t | z_{t-1} = i)) and the emission log-likelihoods
``log_likelihoods`` ``(num_steps, num_states)`` (entry t, k is log p(y_t | z_t = k)), so one
set of functions serves every emission family. All are jitted and batch with ``jax.vmap``;
time runs in a ``lax.scan``. Probabilities are renormalised at each step (the scaled
forward algorithm), so long sequences do not underflow.

Written by hand rather than taken from Dynamax because Dynamax pins its own JAX range;
the recursions are those of Rabiner (1989) and Murphy (2012, ch. 17).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax


class HMMFilterResult(NamedTuple):
    """The forward algorithm's results.

    Args:
        marginal_loglik: log p(y_1:T), a scalar.
        filtered_probs: p(z_t | y_1:t), shape ``(num_steps, num_states)``.
        predicted_probs: p(z_t | y_1:t-1), shape ``(num_steps, num_states)``.
    """

    marginal_loglik: jnp.ndarray
    filtered_probs: jnp.ndarray
    predicted_probs: jnp.ndarray


class HMMSmootherResult(NamedTuple):
    """The forward-backward algorithm's results.

    Args:
        marginal_loglik: log p(y_1:T), a scalar.
        filtered_probs: p(z_t | y_1:t), shape ``(num_steps, num_states)``.
        predicted_probs: p(z_t | y_1:t-1), shape ``(num_steps, num_states)``.
        smoothed_probs: p(z_t | y_1:T), shape ``(num_steps, num_states)``.
        smoothed_transitions: p(z_t = i, z_t+1 = j | y_1:T), shape ``(num_steps - 1, num_states, num_states)``.
    """

    marginal_loglik: jnp.ndarray
    filtered_probs: jnp.ndarray
    predicted_probs: jnp.ndarray
    smoothed_probs: jnp.ndarray
    smoothed_transitions: jnp.ndarray


def _as_arrays(*arrays):
    return tuple(jnp.asarray(array) for array in arrays)


def _condition_on(probs, log_likelihoods):
    """Bayes' rule for one step: (normalised posterior, log normaliser)."""
    shift = jnp.max(log_likelihoods)
    unnormalised = probs * jnp.exp(log_likelihoods - shift)
    total = unnormalised.sum()
    return unnormalised / total, jnp.log(total) + shift


@jax.jit
def hmm_filter(initial_probs, transition_matrix, log_likelihoods) -> HMMFilterResult:
    """The forward algorithm: log p(y_1:T) with the states summed out, and the filter.

    Args:
        initial_probs: p(z_1), shape ``(num_states,)``.
        transition_matrix: row i is p(z_t | z_t-1 = i), shape ``(num_states, num_states)``.
        log_likelihoods: log p(y_t | z_t = k), shape ``(num_steps, num_states)``.

    Returns:
        An :class:`HMMFilterResult`.
    """
    initial_probs, transition_matrix, log_likelihoods = _as_arrays(initial_probs, transition_matrix, log_likelihoods)

    def step(carry, log_likelihood_t):
        loglik, predicted = carry
        filtered, log_normaliser = _condition_on(predicted, log_likelihood_t)
        # A^T p rather than p A: the same product, but XLA's CPU matrix-vector kernel
        # runs it 1.8x faster (benchmarks/hmm_forward.py).
        return (loglik + log_normaliser, transition_matrix.T @ filtered), (filtered, predicted)

    (loglik, _), (filtered, predicted) = lax.scan(step, (0.0, initial_probs), log_likelihoods)
    return HMMFilterResult(loglik, filtered, predicted)


def hmm_log_likelihood(initial_probs, transition_matrix, log_likelihoods) -> jnp.ndarray:
    """log p(y_1:T), the states summed out.

    Args:
        initial_probs: p(z_1), shape ``(num_states,)``.
        transition_matrix: row i is p(z_t | z_t-1 = i), shape ``(num_states, num_states)``.
        log_likelihoods: log p(y_t | z_t = k), shape ``(num_steps, num_states)``.

    Returns:
        The log marginal likelihood, a scalar.
    """
    return hmm_filter(initial_probs, transition_matrix, log_likelihoods).marginal_loglik


@jax.jit
def hmm_smoother(initial_probs, transition_matrix, log_likelihoods) -> HMMSmootherResult:
    """Forward filtering, then the backward pass in its filtered form (Murphy, 2012, 17.4.3).

    Args:
        initial_probs: p(z_1), shape ``(num_states,)``.
        transition_matrix: row i is p(z_t | z_t-1 = i), shape ``(num_states, num_states)``.
        log_likelihoods: log p(y_t | z_t = k), shape ``(num_steps, num_states)``.

    Returns:
        An :class:`HMMSmootherResult`.
    """
    initial_probs, transition_matrix, log_likelihoods = _as_arrays(initial_probs, transition_matrix, log_likelihoods)
    filtered = hmm_filter(initial_probs, transition_matrix, log_likelihoods)

    def step(smoothed_next, inputs):
        filtered_t, predicted_next = inputs
        # p(z_t = i, z_t+1 = j | y_1:T) = p(z_t = i | y_1:t) A_ij p(z_t+1 = j | y_1:T) / p(z_t+1 = j | y_1:t)
        ratio = jnp.where(predicted_next > 0, smoothed_next / jnp.where(predicted_next > 0, predicted_next, 1.0), 0.0)
        joint = filtered_t[:, None] * transition_matrix * ratio[None, :]
        return joint.sum(axis=1), (joint.sum(axis=1), joint)

    last = filtered.filtered_probs[-1]
    _, (smoothed, transitions) = lax.scan(
        step, last, (filtered.filtered_probs[:-1], filtered.predicted_probs[1:]), reverse=True
    )
    smoothed = jnp.concatenate([smoothed, last[None]], axis=0)
    return HMMSmootherResult(*filtered, smoothed, transitions)


@jax.jit
def hmm_posterior_mode(initial_probs, transition_matrix, log_likelihoods) -> jnp.ndarray:
    """The Viterbi path: argmax over z_1:T of p(z_1:T | y_1:T).

    Args:
        initial_probs: p(z_1), shape ``(num_states,)``.
        transition_matrix: row i is p(z_t | z_t-1 = i), shape ``(num_states, num_states)``.
        log_likelihoods: log p(y_t | z_t = k), shape ``(num_steps, num_states)``.

    Returns:
        The states, integers of shape ``(num_steps,)``.
    """
    initial_probs, transition_matrix, log_likelihoods = _as_arrays(initial_probs, transition_matrix, log_likelihoods)
    log_transition = jnp.log(transition_matrix)

    def forward(best_so_far, log_likelihood_t):
        scores = best_so_far[:, None] + log_transition
        return scores.max(axis=0) + log_likelihood_t, scores.argmax(axis=0)

    first = jnp.log(initial_probs) + log_likelihoods[0]
    best_last, backpointers = lax.scan(forward, first, log_likelihoods[1:])

    def backward(state, pointers):
        previous = pointers[state]
        return previous, previous

    last_state = jnp.argmax(best_last)
    _, earlier = lax.scan(backward, last_state, backpointers, reverse=True)
    return jnp.concatenate([earlier, last_state[None]])


@jax.jit
def hmm_posterior_sample(key, initial_probs, transition_matrix, log_likelihoods) -> jnp.ndarray:
    """One draw of z_1:T from p(z_1:T | y_1:T): forward filtering, backward sampling.

    Args:
        key: a JAX PRNG key.
        initial_probs: p(z_1), shape ``(num_states,)``.
        transition_matrix: row i is p(z_t | z_t-1 = i), shape ``(num_states, num_states)``.
        log_likelihoods: log p(y_t | z_t = k), shape ``(num_steps, num_states)``.

    Returns:
        The states, integers of shape ``(num_steps,)``.
    """
    initial_probs, transition_matrix, log_likelihoods = _as_arrays(initial_probs, transition_matrix, log_likelihoods)
    filtered = hmm_filter(initial_probs, transition_matrix, log_likelihoods).filtered_probs
    num_steps = log_likelihoods.shape[0]
    keys = jax.random.split(key, num_steps)
    last_state = jax.random.categorical(keys[-1], jnp.log(filtered[-1]))

    def backward(next_state, inputs):
        key_t, filtered_t = inputs
        state = jax.random.categorical(key_t, jnp.log(filtered_t * transition_matrix[:, next_state]))
        return state, state

    _, earlier = lax.scan(backward, last_state, (keys[:-1], filtered[:-1]), reverse=True)
    return jnp.concatenate([earlier, last_state[None]])


@partial(jax.jit, static_argnames="num_steps")
def hmm_sample(key, initial_probs, transition_matrix, num_steps: int) -> jnp.ndarray:
    """A state path z_1:T drawn from the Markov chain prior.

    Args:
        key: a JAX PRNG key.
        initial_probs: p(z_1), shape ``(num_states,)``.
        transition_matrix: row i is p(z_t | z_t-1 = i), shape ``(num_states, num_states)``.
        num_steps: the length of the path.

    Returns:
        The states, integers of shape ``(num_steps,)``.
    """
    initial_probs, transition_matrix = _as_arrays(initial_probs, transition_matrix)
    first_key, rest_key = jax.random.split(key)
    first = jax.random.categorical(first_key, jnp.log(initial_probs))

    def step(state, key_t):
        following = jax.random.categorical(key_t, jnp.log(transition_matrix[state]))
        return following, following

    _, rest = lax.scan(step, first, jax.random.split(rest_key, num_steps - 1))
    return jnp.concatenate([first[None], rest])
