"""A sequential VAE in the manner of LFADS (Pandarinath et al., 2018, Nature Methods).

Each trial's spike counts x (num_steps, num_neurons) come from a latent dynamical system:

    g_0 ~ Normal(0, I),   g_t = GRU(g_{t-1}),   f_t = W_f g_t,
    x_{t,n} ~ Poisson(exp(W_r f_t + b)_n)

an autonomous recurrent "generator" started from an initial condition g_0 inferred per
trial, low-dimensional "factors" f_t, and Poisson counts. The encoder that infers
q(g_0 | x) is a bidirectional GRU over the trial (LFADS's initial-condition encoder);
it may read only some neurons (``encoded_neurons``), so that the rates of the others
are predicted from the population, the Neural Latents Benchmark's co-smoothing test.

This is LFADS without its controller (no inferred inputs): the Lorenz data it is
built for are autonomous. The generator's, read-out's and encoder's weights are
params; fit it with ``method="vae"`` (``batch_size`` trials per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from helmholtz._serialization import serializable
from helmholtz.models.base import DATA_PLATE, OBSERVED_SITE, Model, check_finite_array
from helmholtz.models.markov._sequences import check_count

GENERATOR_PARAM = "generator"
INITIAL_SITE = "initial_condition"
# exp of a log-rate above this overflows float32 gradients within a few early steps;
# no spike count in a bin comes near e^10.
MAX_LOG_RATE = 10.0


class Generator(eqx.Module):
    """The autonomous GRU with its factor and rate read-outs."""

    cell: eqx.nn.GRUCell
    factors: eqx.nn.Linear
    log_rates: eqx.nn.Linear
    num_steps: int = eqx.field(static=True)

    def __init__(self, generator_dim, factor_dim, num_neurons, num_steps, *, key):
        keys = jax.random.split(key, 3)
        self.cell = eqx.nn.GRUCell(1, generator_dim, key=keys[0])
        self.factors = eqx.nn.Linear(generator_dim, factor_dim, use_bias=False, key=keys[1])
        self.log_rates = eqx.nn.Linear(factor_dim, num_neurons, key=keys[2])
        self.num_steps = num_steps

    def __call__(self, initial_condition):
        """The factors (num_steps, factor_dim) and log-rates (num_steps, num_neurons) of one trial."""
        no_input = jnp.zeros(1)

        def step(state, _):
            state = self.cell(no_input, state)
            return state, state

        _, states = jax.lax.scan(step, initial_condition, None, length=self.num_steps)
        factors = jax.vmap(self.factors)(states)
        return factors, jnp.minimum(jax.vmap(self.log_rates)(factors), MAX_LOG_RATE)


class TrialEncoder(eqx.Module):
    """A bidirectional GRU over one trial's counts (the ``neurons`` it may read); its two
    final states give the parameters of q(g_0 | x)."""

    forward: eqx.nn.GRUCell
    backward: eqx.nn.GRUCell
    output: eqx.nn.Linear
    neurons: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, neurons, encoder_dim, num_outputs, *, key):
        keys = jax.random.split(key, 3)
        self.forward = eqx.nn.GRUCell(len(neurons), encoder_dim, key=keys[0])
        self.backward = eqx.nn.GRUCell(len(neurons), encoder_dim, key=keys[1])
        self.output = eqx.nn.Linear(2 * encoder_dim, num_outputs, key=keys[2])
        self.neurons = tuple(neurons)

    def __call__(self, counts):
        # log1p tames the heavy right tail of counts before the recurrent cells.
        inputs = jnp.log1p(counts[:, jnp.asarray(self.neurons)])

        def run(cell, sequence):
            return jax.lax.scan(lambda state, x_t: (cell(x_t, state), None), jnp.zeros(cell.hidden_size), sequence)[0]

        return self.output(jnp.concatenate([run(self.forward, inputs), run(self.backward, inputs[::-1])]))


@serializable
@dataclass(frozen=True)
class LFADS(Model):
    """LFADS-style sequential VAE of spike counts, data shaped ``(num_trials, num_steps, num_neurons)``.

    Args:
        num_neurons: the number of neurons of one trial.
        num_steps: the number of time bins of one trial.
        generator_dim: units of the generator GRU (and the size of g_0).
        factor_dim: the number of latent factors.
        encoder_dim: units of each direction of the encoder GRU.
        encoded_neurons: the neurons the encoder reads (default: all). Held-out neurons
            are still modelled and their rates predicted (co-smoothing).

    Raises:
        ValueError: a size is not a positive integer, or ``encoded_neurons`` are not distinct
            indices below ``num_neurons``.
    """

    num_neurons: int
    num_steps: int
    generator_dim: int = 64
    factor_dim: int = 8
    encoder_dim: int = 64
    encoded_neurons: tuple[int, ...] | None = None

    has_local_latents = True

    def __post_init__(self):
        check_count(
            "LFADS",
            num_neurons=self.num_neurons,
            num_steps=self.num_steps,
            generator_dim=self.generator_dim,
            factor_dim=self.factor_dim,
            encoder_dim=self.encoder_dim,
        )
        if self.encoded_neurons is not None:
            neurons = tuple(int(n) for n in self.encoded_neurons)
            if not neurons or len(set(neurons)) != len(neurons) or not all(0 <= n < self.num_neurons for n in neurons):
                raise ValueError(
                    f"LFADS: encoded_neurons must be distinct indices in [0, {self.num_neurons}), got {self.encoded_neurons!r}"
                )
            object.__setattr__(self, "encoded_neurons", neurons)

    @property
    def encoder_neurons(self) -> tuple[int, ...]:
        return tuple(range(self.num_neurons)) if self.encoded_neurons is None else self.encoded_neurons

    def validate_data(self, x):
        shape = np.shape(x)
        if len(shape) != 3 or shape[1:] != (self.num_steps, self.num_neurons):
            raise ValueError(
                f"LFADS: data must be spike counts shaped (trials, {self.num_steps}, {self.num_neurons}) "
                f"(trials, time bins, neurons), got shape {shape}"
            )
        array = check_finite_array(x, "LFADS")
        values = np.asarray(array)
        bad = values[(values < 0) | (values != np.round(values))]
        if bad.size:
            raise ValueError(
                f"LFADS: spike counts must be non-negative integers, but {bad.size} values are not, e.g. {bad[:3].tolist()}"
            )
        return array

    def make_generator(self, key) -> Generator:
        """A new generator with random initial weights.

        Args:
            key: a JAX PRNG key for its weights.

        Returns:
            A :class:`Generator`.
        """
        return Generator(self.generator_dim, self.factor_dim, self.num_neurons, self.num_steps, key=key)

    def make_encoder(self, num_outputs: int, key) -> TrialEncoder:
        """The encoder the amortised back ends train with this model.

        Args:
            num_outputs: the size of the encoder's output for one trial.
            key: a JAX PRNG key for its initial weights.

        Returns:
            A :class:`TrialEncoder` from one trial, shape ``(num_steps, num_neurons)``, to
            ``num_outputs`` values.
        """
        return TrialEncoder(self.encoder_neurons, self.encoder_dim, num_outputs, key=key)

    def generator(self, weights) -> Generator:
        """The generator with the given weights (the param ``"generator"``).

        Args:
            weights: the generator's array leaves, as the param ``"generator"`` holds them.

        Returns:
            A :class:`Generator`.
        """
        with jax.ensure_compile_time_eval():
            skeleton = eqx.partition(self.make_generator(jax.random.PRNGKey(0)), eqx.is_inexact_array)[1]
        return eqx.combine(weights, skeleton)

    def program(self, x=None, *, num_points: int | None = None):
        weights = numpyro.param(GENERATOR_PARAM, lambda key: eqx.filter(self.make_generator(key), eqx.is_inexact_array))
        generator = self.generator(weights)
        num_points = x.shape[0] if x is not None else (num_points or 1)
        with numpyro.plate(DATA_PLATE, num_points):
            initial = numpyro.sample(INITIAL_SITE, dist.Normal(0.0, 1.0).expand([self.generator_dim]).to_event(1))
            _, log_rates = jax.vmap(generator)(initial)
            numpyro.sample(OBSERVED_SITE, dist.Poisson(jnp.exp(log_rates)).to_event(2), obs=x)

    def rates(self, params: dict, initial_condition) -> jnp.ndarray:
        """Firing rates (spikes per bin) from g_0.

        Args:
            params: the fitted params, holding ``"generator"``.
            initial_condition: g_0, shape ``(..., generator_dim)``.

        Returns:
            The rates, shape ``(..., num_steps, num_neurons)``.
        """
        initial_condition = jnp.asarray(initial_condition)
        flat = initial_condition.reshape((-1, self.generator_dim))
        _, log_rates = jax.vmap(self.generator(params[GENERATOR_PARAM]))(flat)
        return jnp.exp(log_rates).reshape(initial_condition.shape[:-1] + log_rates.shape[1:])

    def factors(self, params: dict, initial_condition) -> jnp.ndarray:
        """The latent factors from g_0.

        Args:
            params: the fitted params, holding ``"generator"``.
            initial_condition: g_0, shape ``(..., generator_dim)``.

        Returns:
            The factors, shape ``(..., num_steps, factor_dim)``.
        """
        initial_condition = jnp.asarray(initial_condition)
        flat = initial_condition.reshape((-1, self.generator_dim))
        factors, _ = jax.vmap(self.generator(params[GENERATOR_PARAM]))(flat)
        return factors.reshape(initial_condition.shape[:-1] + factors.shape[1:])
