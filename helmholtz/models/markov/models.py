"""Markov-chain models of sequences: thin model classes over pure inference functions.

Data are one sequence, shaped (num_steps, obs_dim) (or (num_steps,) for the
autoregressive model), or several of the same length, (num_sequences, num_steps,
obs_dim), which share the parameters and sit in the ``data`` plate. The latent paths are
summed out (HMM) or integrated out (Gaussian LDS) inside the likelihood, so ``nuts`` and
``svi`` sample the parameters only; the model's methods then give the states given the
parameters (filtering, smoothing, Viterbi, posterior paths).
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
from helmholtz.models.base import DATA_PLATE, OBSERVED_SITE, Model, check_finite_array
from helmholtz.models.markov import hmm_inference, lds_inference
from helmholtz.models.markov.distributions import (
    AutoRegressiveProcess,
    HiddenMarkovEmissions,
    LinearGaussianStateSpace,
)

EMISSIONS = ("gaussian", "poisson", "bernoulli")


def _check_positive(owner: str, **values) -> None:
    for field, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}: {field} must be a finite number > 0, got {value!r}")


def _check_count(owner: str, **values) -> None:
    for field, value in values.items():
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"{owner}: {field} must be a positive integer, got {value!r}")


def check_sequences(x, owner: str, event_ndim: int, obs_dim: int | None = None) -> jnp.ndarray:
    """One sequence (event_ndim dimensions) or a batch of them (one more), finite."""
    array = check_finite_array(x, owner)
    single = "(num_steps, obs_dim)" if event_ndim == 2 else "(num_steps,)"
    if array.ndim not in (event_ndim, event_ndim + 1):
        raise ValueError(
            f"{owner}: data must be one sequence {single} or a batch (num_sequences, {single[1:]}, "
            f"got shape {array.shape}"
        )
    if obs_dim is not None and array.shape[-1] != obs_dim:
        raise ValueError(f"{owner}: each time step must have obs_dim = {obs_dim} values, got shape {array.shape}")
    return array


def _sequence_plate(x, num_points, event_ndim: int):
    """The plate over sequences, or a no-op for one unbatched sequence."""
    batched = (x.ndim > event_ndim) if x is not None else num_points is not None
    if not batched:
        return numpyro.handlers.block(hide=[])  # a context that changes nothing
    return numpyro.plate(DATA_PLATE, x.shape[0] if x is not None else num_points)


def _check_stochastic(name: str, matrix) -> None:
    matrix = np.asarray(matrix)
    if np.any(matrix < 0) or not np.allclose(matrix.sum(-1), 1.0, atol=1e-5):
        raise ValueError(f"{name} must have non-negative rows that sum to 1, got row sums {matrix.sum(-1)}")


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
        _check_count(self.name, num_states=self.num_states, obs_dim=self.obs_dim, num_steps=self.num_steps)
        if self.emission not in EMISSIONS:
            raise ValueError(f"{self.name}: emission must be one of {EMISSIONS}, got {self.emission!r}")
        _check_positive(
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
        if self.emission == "poisson" and (np.any(x < 0) or np.any(x != np.round(x))):
            raise ValueError(f"{self.name}: Poisson emissions need non-negative integer counts")
        if self.emission == "bernoulli" and not np.all((x == 0) | (x == 1)):
            raise ValueError(f"{self.name}: Bernoulli emissions need binary data (0 or 1)")
        return x

    def num_points_of(self, x):
        return None if x is None or np.ndim(x) == 2 else int(np.shape(x)[0])

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
        """p(y_t | z_t = k) for every k: batch shape (K,), event shape (obs_dim,)."""
        if self.emission == "gaussian":
            return dist.Normal(params["means"], params["scales"]).to_event(1)
        if self.emission == "poisson":
            return dist.Poisson(params["rates"]).to_event(1)
        return dist.Bernoulli(probs=params["probs"]).to_event(1)

    def sequence_distribution(self, params, num_steps: int) -> HiddenMarkovEmissions:
        return HiddenMarkovEmissions(
            params["initial_probs"], params["transition_matrix"], self.emission_distribution(params), num_steps
        )

    def program(self, x=None, *, num_points=None):
        params = self.sample_parameters()
        num_steps = x.shape[-2] if x is not None else self.num_steps
        with _sequence_plate(x, num_points, 2):
            numpyro.sample(OBSERVED_SITE, self.sequence_distribution(params, num_steps), obs=x)

    def identifiable_parameters(self, params):
        """States can be relabelled freely; order them by their mean emission (the first
        observed coordinate's mean, rate or probability) and permute every parameter."""
        location = {"gaussian": "means", "poisson": "rates", "bernoulli": "probs"}[self.emission]
        order = jnp.argsort(params[location][..., 0], axis=-1)
        take_rows = lambda a: jnp.take_along_axis(a, order[..., :, None], axis=-2)  # noqa: E731
        relabelled = {
            "initial_probs": jnp.take_along_axis(params["initial_probs"], order, axis=-1),
            "transition_matrix": jnp.take_along_axis(take_rows(params["transition_matrix"]), order[..., None, :], axis=-1),
        }
        for name in ("means", "scales", "rates", "probs"):
            if name in params:
                relabelled[name] = take_rows(params[name])
        return relabelled

    # -- the states given the parameters (one sequence, one parameter draw) --------------
    def _inputs(self, params, x):
        x = jnp.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"{self.name}: state inference takes one sequence (num_steps, obs_dim), got shape {x.shape}")
        for name in ("initial_probs", "transition_matrix"):
            if not isinstance(params[name], jax.core.Tracer):
                _check_stochastic(f"{self.name}: {name}", params[name])
        params = {name: jnp.asarray(value) for name, value in params.items()}
        log_likelihoods = self.emission_distribution(params).log_prob(x[:, None, :])
        return params["initial_probs"], params["transition_matrix"], log_likelihoods

    def filter(self, params, x) -> hmm_inference.HMMFilterResult:
        """p(z_t | y_1:t) and log p(y_1:T) given the parameters."""
        return hmm_inference.hmm_filter(*self._inputs(params, x))

    def smoother(self, params, x) -> hmm_inference.HMMSmootherResult:
        """p(z_t | y_1:T) given the parameters."""
        return hmm_inference.hmm_smoother(*self._inputs(params, x))

    def most_likely_states(self, params, x) -> jnp.ndarray:
        """The Viterbi path given the parameters."""
        return hmm_inference.hmm_posterior_mode(*self._inputs(params, x))

    def sample_states(self, key, params, x) -> jnp.ndarray:
        """One path from p(z_1:T | y_1:T) given the parameters."""
        return hmm_inference.hmm_posterior_sample(key, *self._inputs(params, x))


@serializable
@dataclass(frozen=True)
class LinearDynamicalSystem(Model):
    """A linear-Gaussian state-space model, fit with the states integrated out (Kalman).

    z_1 ~ N(0, I); z_t = A z_t-1 + w_t, w_t ~ N(0, ``state_noise``^2 I);
    y_t = C z_t + d + v_t, v_t ~ N(0, diag(``noise``^2)). Priors: A ~ N(``decay`` I,
    ``dynamics_scale``) element-wise; d ~ N(0, ``bias_scale``); ``noise`` ~
    HalfNormal(``noise_scale``); C as below.

    The state is only defined up to an invertible linear map. Fixing the state noise
    (with the initial covariance) leaves rotations and reflections (A -> R A R^T,
    C -> C R^T), which would make the posterior a ring that NUTS crawls around; they are
    removed as in factor analysis (Geweke & Zhou, 1996): the top state_dim x state_dim
    block of C is lower triangular with a positive diagonal (``emission_diagonal`` ~
    HalfNormal(1); ``emission_lower`` and the rows below, ``emission_rest``, ~ N(0, 1)).
    The first state_dim observed channels should therefore carry signal. C itself is
    recorded as the deterministic site ``emission_matrix``.
    """

    state_dim: int
    obs_dim: int
    num_steps: int = 100
    decay: float = 0.9
    dynamics_scale: float = 0.1
    state_noise: float = 1.0
    bias_scale: float = 10.0
    noise_scale: float = 1.0

    has_local_latents = True

    def __post_init__(self):
        _check_count(self.name, state_dim=self.state_dim, obs_dim=self.obs_dim, num_steps=self.num_steps)
        if self.obs_dim < self.state_dim:
            raise ValueError(f"{self.name}: obs_dim ({self.obs_dim}) must be at least state_dim ({self.state_dim})")
        _check_positive(
            self.name,
            dynamics_scale=self.dynamics_scale,
            state_noise=self.state_noise,
            bias_scale=self.bias_scale,
            noise_scale=self.noise_scale,
        )
        if not math.isfinite(self.decay):
            raise ValueError(f"{self.name}: decay must be finite, got {self.decay!r}")

    def validate_data(self, x):
        return check_sequences(x, self.name, 2, self.obs_dim)

    def num_points_of(self, x):
        return None if x is None or np.ndim(x) == 2 else int(np.shape(x)[0])

    def sample_parameters(self) -> dict:
        s, d = self.state_dim, self.obs_dim
        params = {
            "dynamics_matrix": numpyro.sample(
                "dynamics_matrix", dist.Normal(self.decay * jnp.eye(s), self.dynamics_scale).to_event(2)
            ),
            "emission_diagonal": numpyro.sample("emission_diagonal", dist.HalfNormal(1.0).expand([s]).to_event(1)),
            "emission_lower": numpyro.sample("emission_lower", dist.Normal(0.0, 1.0).expand([s * (s - 1) // 2]).to_event(1)),
            "emission_rest": numpyro.sample("emission_rest", dist.Normal(0.0, 1.0).expand([d - s, s]).to_event(2)),
            "emission_bias": numpyro.sample("emission_bias", dist.Normal(0.0, self.bias_scale).expand([d]).to_event(1)),
            "noise": numpyro.sample("noise", dist.HalfNormal(self.noise_scale).expand([d]).to_event(1)),
        }
        params["emission_matrix"] = numpyro.deterministic("emission_matrix", self.emission_matrix(params))
        return params

    def emission_matrix(self, params) -> jnp.ndarray:
        """C (obs_dim, state_dim): given, or assembled from its triangular block and the rest."""
        if "emission_matrix" in params:
            return jnp.asarray(params["emission_matrix"])
        s = self.state_dim
        rows, cols = np.tril_indices(s, -1)
        top = jnp.diag(params["emission_diagonal"]).at[rows, cols].set(params["emission_lower"])
        return jnp.concatenate([top, params["emission_rest"]], axis=0)

    def lds_params(self, params) -> lds_inference.LDSParams:
        """The full parameter tuple of the filters, from the model's parameters (C given
        as ``emission_matrix`` or by its parts)."""
        params = {name: jnp.asarray(value) for name, value in params.items()}
        params["emission_matrix"] = self.emission_matrix(params)
        s = self.state_dim
        return lds_inference.LDSParams(
            initial_mean=jnp.zeros(s),
            initial_covariance=jnp.eye(s),
            dynamics_matrix=params["dynamics_matrix"],
            dynamics_bias=jnp.zeros(s),
            dynamics_covariance=self.state_noise**2 * jnp.eye(s),
            emission_matrix=params["emission_matrix"],
            emission_bias=params["emission_bias"],
            emission_covariance=jnp.diag(params["noise"] ** 2),
        )

    def program(self, x=None, *, num_points=None):
        params = self.sample_parameters()
        num_steps = x.shape[-2] if x is not None else self.num_steps
        with _sequence_plate(x, num_points, 2):
            numpyro.sample(OBSERVED_SITE, LinearGaussianStateSpace(self.lds_params(params), num_steps), obs=x)

    def identifiable_parameters(self, params):
        """With C's top block triangular every parameter is identified: A, C, d, noise."""
        names = ("dynamics_matrix", "emission_bias", "noise")
        return {"emission_matrix": self.emission_matrix(params), **{name: params[name] for name in names}}

    def filter(self, params, x) -> lds_inference.LDSFilterResult:
        """p(z_t | y_1:t) and log p(y_1:T) given the parameters, for one sequence."""
        return lds_inference.kalman_filter(self.lds_params(params), jnp.asarray(x))

    def smoother(self, params, x) -> lds_inference.LDSSmootherResult:
        """p(z_t | y_1:T) given the parameters, for one sequence."""
        return lds_inference.kalman_smoother(self.lds_params(params), jnp.asarray(x))


@serializable
@dataclass(frozen=True)
class AutoRegressive(Model):
    """An AR(K) process: y_t = intercept + sum_k coefficients_k y_t-k + sigma e_t.

    Priors as in posteriordb's ``arK``: intercept and coefficients ~ N(0,
    ``coefficient_scale``), ``sigma`` ~ HalfCauchy(``noise_scale``). The first K values of a
    sequence are conditioned on (their N(0, ``initial_scale``) term does not involve the
    parameters); simulated sequences are ``num_steps`` long.
    """

    order: int
    num_steps: int = 200
    coefficient_scale: float = 10.0
    noise_scale: float = 2.5
    initial_scale: float = 1.0

    def __post_init__(self):
        _check_count(self.name, order=self.order, num_steps=self.num_steps)
        _check_positive(
            self.name,
            coefficient_scale=self.coefficient_scale,
            noise_scale=self.noise_scale,
            initial_scale=self.initial_scale,
        )
        if self.num_steps <= self.order:
            raise ValueError(f"{self.name}: num_steps must exceed the order {self.order}, got {self.num_steps}")

    def validate_data(self, x):
        x = check_sequences(x, self.name, 1)
        if x.shape[-1] <= self.order:
            raise ValueError(f"{self.name}: an AR({self.order}) sequence needs more than {self.order} steps, got {x.shape[-1]}")
        return x

    def num_points_of(self, x):
        return None if x is None or np.ndim(x) == 1 else int(np.shape(x)[0])

    def program(self, x=None, *, num_points=None):
        intercept = numpyro.sample("intercept", dist.Normal(0.0, self.coefficient_scale))
        coefficients = numpyro.sample(
            "coefficients", dist.Normal(0.0, self.coefficient_scale).expand([self.order]).to_event(1)
        )
        sigma = numpyro.sample("sigma", dist.HalfCauchy(self.noise_scale))
        num_steps = x.shape[-1] if x is not None else self.num_steps
        process = AutoRegressiveProcess(intercept, coefficients, sigma, num_steps, initial_scale=self.initial_scale)
        with _sequence_plate(x, num_points, 1):
            numpyro.sample(OBSERVED_SITE, process, obs=x)
