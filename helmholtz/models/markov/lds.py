"""Linear dynamical systems: Gaussian observations (states integrated out by the Kalman
filter, a thin class over :mod:`.lds_inference`) and Poisson observations for spike counts
(states sampled).

Both share the latent dynamics z_1 ~ N(0, I), z_t = A z_t-1 + w_t, w_t ~ N(0,
``state_noise``^2 I), and a linear read-out C z_t + d. Priors: A ~ N(``decay`` I,
``dynamics_scale``) element-wise (sampled as ``dynamics_deviation`` ~ N(0, 1), with
A = ``decay`` I + ``dynamics_scale`` x deviation the deterministic site
``dynamics_matrix``); d ~ N(0, ``bias_scale``); C as below.

The state is only defined up to an invertible linear map. Fixing the state noise (with
the initial covariance) leaves rotations and reflections (A -> R A R^T, C -> C R^T), which
would make the posterior a ring that NUTS crawls around; they are removed as in factor
analysis (Geweke & Zhou, 1996): the top state_dim x state_dim block of C is lower
triangular with a positive diagonal (``emission_diagonal`` ~ HalfNormal(1);
``emission_lower`` and the rows below, ``emission_rest``, ~ N(0, 1)). The first state_dim
observed channels should therefore carry signal. C itself is recorded as the
deterministic site ``emission_matrix``.
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
from helmholtz.models.markov import lds_inference
from helmholtz.models.markov._sequences import (
    check_count,
    check_counts,
    check_positive,
    check_sequences,
    num_sequences,
    sequence_plate,
)
from helmholtz.models.markov.distributions import LinearGaussianStateSpace


@dataclass(frozen=True)
class _LinearDynamics(Model):
    """The latent dynamics and read-out that both observation models share.

    Args:
        state_dim: the size of the latent state.
        obs_dim: the number of observed channels (at least ``state_dim``).
        num_steps: the length of simulated sequences.
        decay: the prior mean of the dynamics matrix is ``decay`` times the identity.
        dynamics_scale: the prior scale of the dynamics matrix about that mean.
        state_noise: the standard deviation of the state noise.
        bias_scale: the prior scale of the read-out bias d.

    Raises:
        ValueError: a count is not a positive integer, ``obs_dim`` is below ``state_dim``, a scale is
            not a finite number > 0, or ``decay`` is not finite.
    """

    state_dim: int
    obs_dim: int
    num_steps: int = 100
    decay: float = 0.9
    dynamics_scale: float = 0.1
    state_noise: float = 1.0
    bias_scale: float = 10.0

    has_local_latents = True

    def __post_init__(self):
        check_count(self.name, state_dim=self.state_dim, obs_dim=self.obs_dim, num_steps=self.num_steps)
        if self.obs_dim < self.state_dim:
            raise ValueError(f"{self.name}: obs_dim ({self.obs_dim}) must be at least state_dim ({self.state_dim})")
        check_positive(
            self.name, dynamics_scale=self.dynamics_scale, state_noise=self.state_noise, bias_scale=self.bias_scale
        )
        if not math.isfinite(self.decay):
            raise ValueError(f"{self.name}: decay must be finite, got {self.decay!r}")

    def num_points_of(self, x):
        return num_sequences(x, 2)

    def sample_dynamics_and_readout(self) -> dict:
        s, d = self.state_dim, self.obs_dim
        # A = decay I + dynamics_scale x deviation, deviation ~ N(0, 1): the same prior as
        # A ~ N(decay I, dynamics_scale), but initialisations in (-2, 2) on the sampled
        # site stay near decay I instead of making the states explode over a long sequence.
        deviation = numpyro.sample("dynamics_deviation", dist.Normal(0.0, 1.0).expand([s, s]).to_event(2))
        params = {
            "dynamics_deviation": deviation,
            "dynamics_matrix": numpyro.deterministic(
                "dynamics_matrix", self.decay * jnp.eye(s) + self.dynamics_scale * deviation
            ),
            "emission_diagonal": numpyro.sample("emission_diagonal", dist.HalfNormal(1.0).expand([s]).to_event(1)),
            "emission_rest": numpyro.sample("emission_rest", dist.Normal(0.0, 1.0).expand([d - s, s]).to_event(2)),
            "emission_bias": numpyro.sample("emission_bias", dist.Normal(0.0, self.bias_scale).expand([d]).to_event(1)),
        }
        if s > 1:  # a zero-size site would trip NumPyro's guides
            params["emission_lower"] = numpyro.sample(
                "emission_lower", dist.Normal(0.0, 1.0).expand([s * (s - 1) // 2]).to_event(1)
            )
        params["emission_matrix"] = numpyro.deterministic("emission_matrix", self.emission_matrix(params))
        return params

    def emission_matrix(self, params) -> jnp.ndarray:
        """C: given, or assembled from its triangular block and the rest.

        Args:
            params: one draw of the parameters, by site name.

        Returns:
            The emission matrix, shape ``(obs_dim, state_dim)``.
        """
        if "emission_matrix" in params:
            return jnp.asarray(params["emission_matrix"])
        s = self.state_dim
        rows, cols = np.tril_indices(s, -1)
        top = jnp.diag(params["emission_diagonal"])
        if s > 1:
            top = top.at[rows, cols].set(params["emission_lower"])
        return jnp.concatenate([top, params["emission_rest"]], axis=0)

    def identifiable_parameters(self, params):
        """With C's top block triangular, A, C and d are identified (and the noise, if any).

        Args:
            params: one draw of the parameters, by site name.

        Returns:
            ``emission_matrix``, ``dynamics_matrix``, ``emission_bias`` and ``noise`` (if any), by name.
        """
        names = [name for name in ("dynamics_matrix", "emission_bias", "noise") if name in params]
        return {"emission_matrix": self.emission_matrix(params), **{name: params[name] for name in names}}


@serializable
@dataclass(frozen=True)
class LinearDynamicalSystem(_LinearDynamics):
    """A linear-Gaussian state-space model, fit with the states integrated out (Kalman):
    y_t = C z_t + d + v_t, v_t ~ N(0, diag(``noise``^2)), ``noise`` ~
    HalfNormal(``noise_scale``); the dynamics and read-out as in the module docstring.

    Data are one sequence, shape ``(num_steps, obs_dim)``, or a batch, shape
    ``(num_sequences, num_steps, obs_dim)``.

    Args:
        state_dim: the size of the latent state.
        obs_dim: the number of observed channels (at least ``state_dim``).
        num_steps: the length of simulated sequences.
        decay: the prior mean of the dynamics matrix is ``decay`` times the identity.
        dynamics_scale: the prior scale of the dynamics matrix about that mean.
        state_noise: the standard deviation of the state noise.
        bias_scale: the prior scale of the read-out bias d.
        noise_scale: the HalfNormal prior scale of the observation noise.

    Raises:
        ValueError: a count is not a positive integer, ``obs_dim`` is below ``state_dim``, a scale is
            not a finite number > 0, or ``decay`` is not finite.
    """

    noise_scale: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        check_positive(self.name, noise_scale=self.noise_scale)

    def validate_data(self, x):
        return check_sequences(x, self.name, 2, self.obs_dim)

    def sample_parameters(self) -> dict:
        params = self.sample_dynamics_and_readout()
        params["noise"] = numpyro.sample("noise", dist.HalfNormal(self.noise_scale).expand([self.obs_dim]).to_event(1))
        return params

    def lds_params(self, params) -> lds_inference.LDSParams:
        """The full parameter tuple of the filters, from the model's parameters (C given
        as ``emission_matrix`` or by its parts).

        Args:
            params: one draw of the parameters, by site name.

        Returns:
            The :class:`~helmholtz.models.markov.lds_inference.LDSParams` of the system.
        """
        params = {name: jnp.asarray(value) for name, value in params.items()}
        s = self.state_dim
        return lds_inference.LDSParams(
            initial_mean=jnp.zeros(s),
            initial_covariance=jnp.eye(s),
            dynamics_matrix=params["dynamics_matrix"],
            dynamics_bias=jnp.zeros(s),
            dynamics_covariance=self.state_noise**2 * jnp.eye(s),
            emission_matrix=self.emission_matrix(params),
            emission_bias=params["emission_bias"],
            emission_covariance=jnp.diag(params["noise"] ** 2),
        )

    def program(self, x=None, *, num_points=None):
        params = self.sample_parameters()
        num_steps = x.shape[-2] if x is not None else self.num_steps
        with sequence_plate(x, num_points, 2):
            numpyro.sample(OBSERVED_SITE, LinearGaussianStateSpace(self.lds_params(params), num_steps), obs=x)

    def filter(self, params, x) -> lds_inference.LDSFilterResult:
        """p(z_t | y_1:t) and log p(y_1:T) given the parameters, for one sequence.

        Args:
            params: one draw of the parameters, by site name.
            x: one sequence, shape ``(num_steps, obs_dim)``.

        Returns:
            An :class:`~helmholtz.models.markov.lds_inference.LDSFilterResult`.
        """
        return lds_inference.kalman_filter(self.lds_params(params), jnp.asarray(x))

    def smoother(self, params, x) -> lds_inference.LDSSmootherResult:
        """p(z_t | y_1:T) given the parameters, for one sequence.

        Args:
            params: one draw of the parameters, by site name.
            x: one sequence, shape ``(num_steps, obs_dim)``.

        Returns:
            An :class:`~helmholtz.models.markov.lds_inference.LDSSmootherResult`.
        """
        return lds_inference.kalman_smoother(self.lds_params(params), jnp.asarray(x))


@serializable
@dataclass(frozen=True)
class PoissonLinearDynamicalSystem(_LinearDynamics):
    """Spike counts from a linear dynamical system: y_t,n ~ Poisson(exp(C z_t + d)_n).

    No closed form integrates the states out, so they are sampled, non-centred: the site
    ``innovations`` (num_steps, state_dim) ~ N(0, 1) drives z_1 = e_1,
    z_t = A z_t-1 + ``state_noise`` e_t, recorded as the deterministic site ``states``
    (per sequence, in the ``data`` plate when data are batched). The non-centred form keeps
    the posterior of A and the states from forming a funnel. Defaults suit counts per bin:
    d ~ N(0, 2), i.e. baseline rates between e^-4 and e^4 per bin.

    Data are counts: one sequence, shape ``(num_steps, obs_dim)``, or a batch, shape
    ``(num_sequences, num_steps, obs_dim)``.

    Args:
        state_dim: the size of the latent state.
        obs_dim: the number of observed channels (at least ``state_dim``).
        num_steps: the length of simulated sequences.
        decay: the prior mean of the dynamics matrix is ``decay`` times the identity.
        dynamics_scale: the prior scale of the dynamics matrix about that mean.
        state_noise: the standard deviation of the state noise.
        bias_scale: the prior scale of the log-rate bias d.

    Raises:
        ValueError: a count is not a positive integer, ``obs_dim`` is below ``state_dim``, a scale is
            not a finite number > 0, or ``decay`` is not finite.
    """

    bias_scale: float = 2.0

    def validate_data(self, x):
        x = check_sequences(x, self.name, 2, self.obs_dim)
        check_counts(x, self.name)
        return x

    def states_from_innovations(self, dynamics_matrix, innovations) -> jnp.ndarray:
        """The states driven by the innovations: z_1 = e_1, z_t = A z_t-1 + ``state_noise`` e_t.

        Args:
            dynamics_matrix: A, shape ``(state_dim, state_dim)``.
            innovations: e, shape ``(num_steps, state_dim)``.

        Returns:
            The states, shape ``(num_steps, state_dim)``.
        """

        def step(state, innovation):
            following = dynamics_matrix @ state + self.state_noise * innovation
            return following, following

        _, rest = jax.lax.scan(step, innovations[0], innovations[1:])
        return jnp.concatenate([innovations[:1], rest])

    def log_rates(self, params, states) -> jnp.ndarray:
        """log E[y_t] = C z_t + d.

        Args:
            params: one draw of the parameters, by site name.
            states: the states, shape ``(..., num_steps, state_dim)``.

        Returns:
            The log rates, shape ``(..., num_steps, obs_dim)``.
        """
        return states @ self.emission_matrix(params).T + params["emission_bias"]

    def program(self, x=None, *, num_points=None):
        params = self.sample_dynamics_and_readout()
        num_steps = x.shape[-2] if x is not None else self.num_steps
        with sequence_plate(x, num_points, 2):
            innovations = numpyro.sample(
                "innovations", dist.Normal(0.0, 1.0).expand([num_steps, self.state_dim]).to_event(2)
            )
            states = numpyro.deterministic(
                "states",
                jnp.vectorize(self.states_from_innovations, signature="(s,s),(t,s)->(t,s)")(
                    params["dynamics_matrix"], innovations
                ),
            )
            numpyro.sample(OBSERVED_SITE, dist.Poisson(jnp.exp(self.log_rates(params, states))).to_event(2), obs=x)
