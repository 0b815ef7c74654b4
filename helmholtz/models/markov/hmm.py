"""Hidden Markov models: a thin model class over :mod:`.hmm_inference`.

Data are one sequence (num_steps, obs_dim) or a batch (num_sequences, num_steps, obs_dim)
sharing the parameters, in the ``data`` plate. The states are summed out by the forward
algorithm inside the likelihood, so ``nuts`` and ``svi`` sample the parameters only; the
model's methods then give the states given the parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from helmholtz._serialization import serializable
from helmholtz.models.base import OBSERVED_SITE, Model
from helmholtz.models.markov import hmm_inference
from helmholtz.models.markov._sequences import (
    check_count,
    check_counts,
    check_positive,
    check_sequences,
    check_stochastic,
    num_sequences,
    sequence_plate,
)
from helmholtz.models.markov.distributions import HiddenMarkovEmissions

EMISSIONS = ("gaussian", "poisson", "bernoulli")


@serializable
@dataclass(frozen=True)
class HiddenMarkovModel(Model):
    """A K-state hidden Markov model with Gaussian, Poisson or Bernoulli emissions.

    Priors: ``initial_probs`` ~ Dirichlet(1); each row of ``transition_matrix`` ~
    Dirichlet(``transition_concentration`` + ``stickiness`` on the diagonal); emissions per
    state and observed coordinate: Gaussian ``means`` ~ N(0, ``mean_scale``) and ``scales`` ~
    HalfNormal(``noise_scale``); Poisson ``rates`` ~ Gamma(``rate_shape``, ``rate_shape`` /
    ``rate_mean``); Bernoulli ``probs`` ~ Beta(1, 1). ``num_steps`` is the length of
    simulated sequences (data set it when fitting).

    Data are one sequence, shape ``(num_steps, obs_dim)``, or a batch, shape
    ``(num_sequences, num_steps, obs_dim)``.

    Args:
        num_states: K, the number of hidden states.
        obs_dim: the number of observed coordinates per time step.
        emission: ``"gaussian"``, ``"poisson"`` or ``"bernoulli"``.
        num_steps: the length of simulated sequences.
        transition_concentration: the Dirichlet concentration of each row of the transition matrix.
        stickiness: added to the concentration on the diagonal (>= 0).
        mean_scale: the prior scale of the Gaussian emission means.
        noise_scale: the HalfNormal prior scale of the Gaussian emission scales.
        rate_shape: the Gamma prior shape of the Poisson rates.
        rate_mean: the Gamma prior mean of the Poisson rates.

    Raises:
        ValueError: a setting is out of its range, or ``emission`` is unknown.
    """

    num_states: int
    obs_dim: int = 1
    emission: str = "gaussian"
    num_steps: int = 100
    transition_concentration: float = 1.0
    stickiness: float = 0.0
    mean_scale: float = 10.0
    noise_scale: float = 1.0
    rate_shape: float = 1.0
    rate_mean: float = 10.0

    has_local_latents = True

    def __post_init__(self):
        check_count(self.name, num_states=self.num_states, obs_dim=self.obs_dim, num_steps=self.num_steps)
        if self.emission not in EMISSIONS:
            raise ValueError(f"{self.name}: emission must be one of {EMISSIONS}, got {self.emission!r}")
        check_positive(
            self.name,
            transition_concentration=self.transition_concentration,
            mean_scale=self.mean_scale,
            noise_scale=self.noise_scale,
            rate_shape=self.rate_shape,
            rate_mean=self.rate_mean,
        )
        if not (math.isfinite(self.stickiness) and self.stickiness >= 0):
            raise ValueError(f"{self.name}: stickiness must be a finite number >= 0, got {self.stickiness!r}")

    def validate_data(self, x):
        x = check_sequences(x, self.name, 2, self.obs_dim)
        if self.emission == "poisson":
            check_counts(x, self.name)
        if self.emission == "bernoulli" and not np.all((x == 0) | (x == 1)):
            raise ValueError(f"{self.name}: Bernoulli emissions need binary data (0 or 1)")
        return x

    def num_points_of(self, x):
        return num_sequences(x, 2)

    # -- the program ---------------------------------------------------------------------
    def sample_parameters(self) -> dict:
        k, d = self.num_states, self.obs_dim
        concentration = self.transition_concentration + self.stickiness * jnp.eye(k)
        params = {
            "initial_probs": numpyro.sample("initial_probs", dist.Dirichlet(jnp.ones(k))),
            "transition_matrix": numpyro.sample("transition_matrix", dist.Dirichlet(concentration).to_event(1)),
        }
        if self.emission == "gaussian":
            params["means"] = numpyro.sample("means", dist.Normal(0.0, self.mean_scale).expand([k, d]).to_event(2))
            params["scales"] = numpyro.sample("scales", dist.HalfNormal(self.noise_scale).expand([k, d]).to_event(2))
        elif self.emission == "poisson":
            rate_prior = dist.Gamma(self.rate_shape, self.rate_shape / self.rate_mean)
            params["rates"] = numpyro.sample("rates", rate_prior.expand([k, d]).to_event(2))
        else:
            params["probs"] = numpyro.sample("probs", dist.Beta(1.0, 1.0).expand([k, d]).to_event(2))
        return params

    def emission_distribution(self, params) -> dist.Distribution:
        """p(y_t | z_t = k) for every state k.

        Args:
            params: the emission parameters by site name (``means`` and ``scales``, ``rates`` or
                ``probs``), each shape ``(num_states, obs_dim)``.

        Returns:
            A distribution with batch shape ``(num_states,)`` and event shape ``(obs_dim,)``.
        """
        if self.emission == "gaussian":
            return dist.Normal(params["means"], params["scales"]).to_event(1)
        if self.emission == "poisson":
            return dist.Poisson(params["rates"]).to_event(1)
        return dist.Bernoulli(probs=params["probs"]).to_event(1)

    def sequence_distribution(self, params, num_steps: int) -> HiddenMarkovEmissions:
        """The distribution of one sequence, the states summed out.

        Args:
            params: one draw of the parameters, by site name.
            num_steps: the length of the sequence.

        Returns:
            A :class:`HiddenMarkovEmissions` with event shape ``(num_steps, obs_dim)``.
        """
        return HiddenMarkovEmissions(
            params["initial_probs"], params["transition_matrix"], self.emission_distribution(params), num_steps
        )

    def program(self, x=None, *, num_points=None):
        params = self.sample_parameters()
        num_steps = x.shape[-2] if x is not None else self.num_steps
        with sequence_plate(x, num_points, 2):
            numpyro.sample(OBSERVED_SITE, self.sequence_distribution(params, num_steps), obs=x)

    def identifiable_parameters(self, params):
        """States can be relabelled freely; order them by their mean emission (the first
        observed coordinate's mean, rate or probability) and permute every parameter.

        Args:
            params: draws of the parameters by site name (any leading batch axes).

        Returns:
            The parameters with the states relabelled in that order, by site name.
        """
        location = {"gaussian": "means", "poisson": "rates", "bernoulli": "probs"}[self.emission]
        order = jnp.argsort(params[location][..., 0], axis=-1)
        take_rows = lambda a: jnp.take_along_axis(a, order[..., :, None], axis=-2)  # noqa: E731
        relabelled = {
            "initial_probs": jnp.take_along_axis(params["initial_probs"], order, axis=-1),
            "transition_matrix": jnp.take_along_axis(
                take_rows(params["transition_matrix"]), order[..., None, :], axis=-1
            ),
        }
        for name in ("means", "scales", "rates", "probs"):
            if name in params:
                relabelled[name] = take_rows(params[name])
        return relabelled

    # -- the states given the parameters (one sequence, one parameter draw) --------------
    def _inputs(self, params, x):
        x = jnp.asarray(x)
        if x.ndim != 2:
            raise ValueError(
                f"{self.name}: state inference takes one sequence (num_steps, obs_dim), got shape {x.shape}"
            )
        for name in ("initial_probs", "transition_matrix"):
            if not isinstance(params[name], jax.core.Tracer):
                check_stochastic(f"{self.name}: {name}", params[name])
        params = {name: jnp.asarray(value) for name, value in params.items()}
        log_likelihoods = self.emission_distribution(params).log_prob(x[:, None, :])
        return params["initial_probs"], params["transition_matrix"], log_likelihoods

    def filter(self, params, x) -> hmm_inference.HMMFilterResult:
        """p(z_t | y_1:t) and log p(y_1:T) given the parameters.

        Args:
            params: one draw of the parameters, by site name.
            x: one sequence, shape ``(num_steps, obs_dim)``.

        Returns:
            An :class:`HMMFilterResult`.

        Raises:
            ValueError: ``x`` is not one sequence, or the chain's probabilities are not stochastic.
        """
        return hmm_inference.hmm_filter(*self._inputs(params, x))

    def smoother(self, params, x) -> hmm_inference.HMMSmootherResult:
        """p(z_t | y_1:T) given the parameters.

        Args:
            params: one draw of the parameters, by site name.
            x: one sequence, shape ``(num_steps, obs_dim)``.

        Returns:
            An :class:`HMMSmootherResult`.

        Raises:
            ValueError: ``x`` is not one sequence, or the chain's probabilities are not stochastic.
        """
        return hmm_inference.hmm_smoother(*self._inputs(params, x))

    def most_likely_states(self, params, x) -> jnp.ndarray:
        """The Viterbi path given the parameters.

        Args:
            params: one draw of the parameters, by site name.
            x: one sequence, shape ``(num_steps, obs_dim)``.

        Returns:
            The most likely states, integers of shape ``(num_steps,)``.

        Raises:
            ValueError: ``x`` is not one sequence, or the chain's probabilities are not stochastic.
        """
        return hmm_inference.hmm_posterior_mode(*self._inputs(params, x))

    def sample_states(self, key, params, x) -> jnp.ndarray:
        """One path from p(z_1:T | y_1:T) given the parameters.

        Args:
            key: a JAX PRNG key.
            params: one draw of the parameters, by site name.
            x: one sequence, shape ``(num_steps, obs_dim)``.

        Returns:
            The states, integers of shape ``(num_steps,)``.

        Raises:
            ValueError: ``x`` is not one sequence, or the chain's probabilities are not stochastic.
        """
        return hmm_inference.hmm_posterior_sample(key, *self._inputs(params, x))
