"""NumPyro distributions over whole sequences, with the latent path summed or integrated out.

NumPyro ships no hidden-Markov or Kalman-filter distribution (Pyro's ``DiscreteHMM`` and
``GaussianHMM`` were not ported), so these wrap the pure functions of
:mod:`.hmm_inference` and :mod:`.lds_inference`. Each has event shape (num_steps, obs_dim);
parameters are unbatched (one chain), while values may carry leading batch dimensions
(several sequences under a plate), handled with ``vmap``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints

from helmholtz.models.markov.hmm_inference import hmm_log_likelihood, hmm_sample
from helmholtz.models.markov.lds_inference import LDSParams, lds_log_likelihood, lds_sample


def _over_leading_dims(function, value, event_ndim: int):
    """Apply ``function`` (one event -> a scalar) to every event in ``value``."""
    batch_shape = value.shape[: value.ndim - event_ndim]
    flat = value.reshape((-1,) + value.shape[value.ndim - event_ndim :])
    return jax.vmap(function)(flat).reshape(batch_shape)


def _sample_many(single_sampler, key, sample_shape, batch_shape):
    shape = tuple(sample_shape) + tuple(batch_shape)
    keys = jax.random.split(key, max(math.prod(shape), 1))[: math.prod(shape)]
    draws = jax.vmap(single_sampler)(keys)
    return draws.reshape(shape + draws.shape[1:])


class HiddenMarkovEmissions(dist.Distribution):
    """y_1:T from a K-state Markov chain z_t with emissions y_t | z_t = k ~ ``emission[k]``.

    ``emission`` is a NumPyro distribution with batch shape (K,) and event shape (D,)
    (e.g. ``Normal(means, scales).to_event(1)`` with means of shape (K, D)).

    Its event shape is ``(num_steps, obs_dim)``; the states are summed out by the forward algorithm.

    Args:
        initial_probs: p(z_1), shape ``(num_states,)``.
        transition_matrix: row i is p(z_t | z_t-1 = i), shape ``(num_states, num_states)``.
        emission: the emission distribution of every state, batch shape ``(num_states,)`` and
            event shape ``(obs_dim,)``.
        num_steps: the length of a sequence.
        validate_args: NumPyro's ``validate_args``.
    """

    arg_constraints = {"initial_probs": constraints.simplex, "transition_matrix": constraints.simplex}
    pytree_data_fields = ("initial_probs", "transition_matrix", "emission")
    pytree_aux_fields = ("num_steps",)

    def __init__(
        self, initial_probs, transition_matrix, emission: dist.Distribution, num_steps: int, *, validate_args=None
    ):
        self.initial_probs = initial_probs
        self.transition_matrix = transition_matrix
        self.emission = emission
        self.num_steps = int(num_steps)
        super().__init__(
            batch_shape=(), event_shape=(self.num_steps,) + emission.event_shape, validate_args=validate_args
        )

    @constraints.dependent_property(event_dim=2)
    def support(self):
        return constraints.independent(self.emission.support, 1)

    def emission_log_likelihoods(self, value):
        """log p(y_t | z_t = k) for every step and state.

        Args:
            value: sequences, shape ``(..., num_steps, obs_dim)``.

        Returns:
            The log-likelihoods, shape ``(..., num_steps, num_states)``.
        """
        return self.emission.log_prob(value[..., None, :])

    def log_prob(self, value):
        """log p(y_1:T), the states summed out, for every sequence in ``value``.

        Args:
            value: sequences, shape ``(..., num_steps, obs_dim)``.

        Returns:
            The log-probabilities, shape ``(...)``.
        """

        def one_sequence(sequence):
            return hmm_log_likelihood(
                self.initial_probs, self.transition_matrix, self.emission_log_likelihoods(sequence)
            )

        return _over_leading_dims(one_sequence, value, len(self.event_shape))

    def sample(self, key, sample_shape=()):
        """Sequences drawn from the chain and its emissions.

        Args:
            key: a JAX PRNG key.
            sample_shape: the leading shape of the draws.

        Returns:
            The draws, shape ``(*sample_shape, num_steps, obs_dim)``.
        """

        def one_sequence(key_one):
            path_key, emission_key = jax.random.split(key_one)
            states = hmm_sample(path_key, self.initial_probs, self.transition_matrix, self.num_steps)
            every_state = self.emission.sample(emission_key, (self.num_steps,))
            return jnp.take_along_axis(every_state, states[:, None, None], axis=1)[:, 0]

        return _sample_many(one_sequence, key, sample_shape, self.batch_shape)


class LinearGaussianStateSpace(dist.Distribution):
    """y_1:T of a linear dynamical system (:class:`LDSParams`), the states integrated out.

    Its event shape is ``(num_steps, obs_dim)``.

    Args:
        params: the system's parameters, unbatched.
        num_steps: the length of a sequence.
        validate_args: NumPyro's ``validate_args``.
    """

    support = constraints.real_matrix
    pytree_data_fields = ("params",)
    pytree_aux_fields = ("num_steps",)

    def __init__(self, params: LDSParams, num_steps: int, *, validate_args=None):
        self.params = LDSParams(*(jnp.asarray(value) for value in params))
        self.num_steps = int(num_steps)
        obs_dim = self.params.emission_matrix.shape[-2]
        super().__init__(batch_shape=(), event_shape=(self.num_steps, obs_dim), validate_args=validate_args)

    def log_prob(self, value):
        """log p(y_1:T) by the Kalman filter, for every sequence in ``value``.

        Args:
            value: sequences, shape ``(..., num_steps, obs_dim)``.

        Returns:
            The log-probabilities, shape ``(...)``.
        """
        return _over_leading_dims(lambda sequence: lds_log_likelihood(self.params, sequence), value, 2)

    def sample(self, key, sample_shape=()):
        """Sequences drawn from the system (the states drawn and dropped).

        Args:
            key: a JAX PRNG key.
            sample_shape: the leading shape of the draws.

        Returns:
            The draws, shape ``(*sample_shape, num_steps, obs_dim)``.
        """
        return _sample_many(
            lambda k: lds_sample(k, self.params, self.num_steps)[1], key, sample_shape, self.batch_shape
        )


class AutoRegressiveProcess(dist.Distribution):
    """y_t = intercept + sum_k coefficients[k] y_t-1-k + noise e_t, e_t ~ N(0, 1), for t > K.

    The first K = len(coefficients) values are N(initial_loc, initial_scale) with fixed
    hyperparameters; that term does not involve the parameters, so a posterior over them
    equals the one conditional on the first K values (as Stan's ``arK`` writes it).

    Its event shape is ``(num_steps,)``.

    Args:
        intercept: the intercept, a scalar.
        coefficients: the coefficients of the lagged values, shape ``(order,)``.
        noise: the standard deviation of the noise, a scalar.
        num_steps: the length of a sequence (must exceed the order K).
        initial_loc: the mean of the first K values.
        initial_scale: the standard deviation of the first K values.
        validate_args: NumPyro's ``validate_args``.

    Raises:
        ValueError: ``num_steps`` does not exceed the order.
    """

    support = constraints.real_vector
    pytree_data_fields = ("intercept", "coefficients", "noise")
    pytree_aux_fields = ("num_steps", "initial_loc", "initial_scale")

    def __init__(
        self, intercept, coefficients, noise, num_steps: int, initial_loc=0.0, initial_scale=1.0, *, validate_args=None
    ):
        self.intercept, self.coefficients, self.noise = intercept, jnp.asarray(coefficients), noise
        self.num_steps, self.initial_loc, self.initial_scale = int(num_steps), float(initial_loc), float(initial_scale)
        self.order = self.coefficients.shape[-1]
        if self.num_steps <= self.order:
            raise ValueError(f"an AR({self.order}) sequence needs more than {self.order} steps, got {self.num_steps}")
        super().__init__(batch_shape=(), event_shape=(self.num_steps,), validate_args=validate_args)

    def lagged_values(self, value):
        """The lagged values of each predicted step: row t holds y_t-1 ... y_t-K.

        Args:
            value: sequences, shape ``(..., num_steps)``.

        Returns:
            The lagged values, shape ``(..., num_steps - order, order)``.
        """
        return jnp.stack([value[..., self.order - 1 - k : value.shape[-1] - 1 - k] for k in range(self.order)], axis=-1)

    def log_prob(self, value):
        """log p(y_1:T), the first K values' fixed term included.

        Args:
            value: sequences, shape ``(..., num_steps)``.

        Returns:
            The log-probabilities, shape ``(...)``.
        """
        predicted = self.intercept + self.lagged_values(value) @ self.coefficients
        initial = dist.Normal(self.initial_loc, self.initial_scale).log_prob(value[..., : self.order]).sum(-1)
        return initial + dist.Normal(predicted, self.noise).log_prob(value[..., self.order :]).sum(-1)

    def sample(self, key, sample_shape=()):
        """Sequences drawn from the process.

        Args:
            key: a JAX PRNG key.
            sample_shape: the leading shape of the draws.

        Returns:
            The draws, shape ``(*sample_shape, num_steps)``.
        """

        def one_sequence(key_one):
            initial_key, noise_key = jax.random.split(key_one)
            initial = self.initial_loc + self.initial_scale * jax.random.normal(initial_key, (self.order,))

            def step(recent, noise_t):
                following = self.intercept + recent @ self.coefficients + self.noise * noise_t
                return jnp.concatenate([following[None], recent[:-1]]), following

            noises = jax.random.normal(noise_key, (self.num_steps - self.order,))
            _, rest = jax.lax.scan(step, initial[::-1], noises)
            return jnp.concatenate([initial, rest])

        return _sample_many(one_sequence, key, sample_shape, self.batch_shape)
