"""Three tasks of the simulation-based inference benchmark (sbibm; Lueckmann et al., 2021).

The simulators are our own, written from the task definitions in
``shared/reference/sbibm/README.md``; the benchmark's observations, the parameters that
generated them and its reference posterior draws are read from ``shared/reference/sbibm``
by :func:`load_task`. They are ground truth a simulation-based back end (``npe``, ``nle``,
``nre``) can be scored against with C2ST, as the benchmark does.

=================  =======  =====  ==========================================
task               theta    x      what makes it hard
=================  =======  =====  ==========================================
two_moons          2        2      bimodal, crescent-shaped posterior
gaussian_linear    10       10     nothing: the posterior is known in closed form
slcp               5        8      a simple likelihood, a four-mode posterior
=================  =======  =====  ==========================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from helmholtz._serialization import serializable
from helmholtz.models.simulators.base import Normal, Simulator, Uniform
from helmholtz.utils import reference_dir


def _theta_names(dim: int) -> tuple[str, ...]:
    # The benchmark numbers its parameters from 1.
    return tuple(f"theta_{i}" for i in range(1, dim + 1))


@serializable
@dataclass(frozen=True)
class TwoMoons(Simulator):
    """Two moons: a noisy half circle, shifted by a folded rotation of theta::

        theta ~ Uniform([-1, 1]^2); a ~ Uniform(-pi/2, pi/2); r ~ Normal(0.1, 0.01);
        p = (r cos a + 0.25, r sin a); z0 = (theta_1 + theta_2) / sqrt(2),
        z1 = (-theta_1 + theta_2) / sqrt(2); x = p + (-|z0|, z1).

    The absolute value folds the plane: theta and its reflection across the line
    theta_1 = -theta_2 give the same data, which makes the posterior bimodal, and the
    half circle bends each mode into a crescent.
    """

    task_name: ClassVar[str] = "two_moons"

    @property
    def parameters(self):
        return tuple(Uniform(name, -1.0, 1.0) for name in _theta_names(2))

    @property
    def observation_shape(self):
        return (2,)

    def simulate_one(self, key, theta):
        angle_key, radius_key = jax.random.split(key)
        angle = jax.random.uniform(angle_key, minval=-math.pi / 2, maxval=math.pi / 2)
        radius = 0.1 + 0.01 * jax.random.normal(radius_key)
        point = jnp.stack([radius * jnp.cos(angle) + 0.25, radius * jnp.sin(angle)])
        z0 = (theta[0] + theta[1]) / math.sqrt(2.0)
        z1 = (-theta[0] + theta[1]) / math.sqrt(2.0)
        return point + jnp.stack([-jnp.abs(z0), z1])


@serializable
@dataclass(frozen=True)
class GaussianLinear(Simulator):
    """Gaussian linear: theta ~ N(0, prior_variance I), x ~ N(theta, noise_variance I).

    The benchmark's task is ``dim=10`` with both variances 0.1. Its posterior is Gaussian
    in closed form (:meth:`true_posterior`), which is why the task checks that a method
    gets an easy posterior exactly right rather than roughly right.

    Args:
        dim: the size of theta and of x.
        prior_variance: the variance of each entry of theta under the prior.
        noise_variance: the variance of the noise added to theta.

    Raises:
        ValueError: ``dim`` is not a positive integer, or a variance is not finite and > 0.
    """

    dim: int = 10
    prior_variance: float = 0.1
    noise_variance: float = 0.1

    task_name: ClassVar[str] = "gaussian_linear"

    def __post_init__(self):
        if not (isinstance(self.dim, (int, np.integer)) and self.dim >= 1):
            raise ValueError(f"GaussianLinear: dim must be a positive integer, got {self.dim!r}")
        for name in ("prior_variance", "noise_variance"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"GaussianLinear: {name} must be finite and > 0, got {value!r}")

    @property
    def parameters(self):
        return tuple(Normal(name, 0.0, math.sqrt(self.prior_variance)) for name in _theta_names(self.dim))

    @property
    def observation_shape(self):
        return (self.dim,)

    def simulate_one(self, key, theta):
        return theta + math.sqrt(self.noise_variance) * jax.random.normal(key, (self.dim,), dtype=theta.dtype)

    def true_posterior(self, x) -> dist.MultivariateNormal:
        """p(theta | x), exact: precisions add, and the mean weighs x by the share of
        precision the likelihood contributes. With the benchmark's variances (0.1 each)
        this is N(x / 2, 0.05 I).

        Args:
            x: observations, shape ``(..., dim)``.

        Returns:
            The posterior, a multivariate Normal with batch shape ``(...)`` and event shape ``(dim,)``.

        Raises:
            ValueError: ``x``'s last dimension is not ``dim``.
        """
        x = jnp.asarray(x, dtype=jnp.float32)
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"GaussianLinear: x must have shape (..., {self.dim}), got {x.shape}")
        variance = 1.0 / (1.0 / self.prior_variance + 1.0 / self.noise_variance)
        mean = variance / self.noise_variance * x
        # Given by its Cholesky factor, which is diagonal here: no factorisation to run.
        return dist.MultivariateNormal(mean, scale_tril=math.sqrt(variance) * jnp.eye(self.dim))


@serializable
@dataclass(frozen=True)
class SLCP(Simulator):
    """Simple likelihood, complex posterior: four draws from a 2-D Gaussian.

    theta ~ Uniform([-3, 3]^5); the mean is (theta_1, theta_2); the standard deviations
    are s1 = theta_3^2 and s2 = theta_4^2 and the correlation rho = tanh(theta_5), so
    the covariance is [[s1^2 + 1e-6, rho s1 s2], [rho s1 s2, s2^2 + 1e-6]]; x is the four
    draws flattened in draw order to (x_1a, x_1b, x_2a, x_2b, ...). The signs of theta_3
    and theta_4 cannot be told apart, hence four posterior modes.
    """

    num_draws: ClassVar[int] = 4
    jitter: ClassVar[float] = 1e-6
    task_name: ClassVar[str] = "slcp"

    @property
    def parameters(self):
        return tuple(Uniform(name, -3.0, 3.0) for name in _theta_names(5))

    @property
    def observation_shape(self):
        return (2 * self.num_draws,)

    def covariance_cholesky(self, theta) -> jnp.ndarray:
        """The lower Cholesky factor of the covariance, written out for 2 x 2 so that it
        stays real in float32 where rho is near +-1 and the jitter is below roundoff.

        Args:
            theta: parameter vectors, shape ``(..., 5)``.

        Returns:
            The Cholesky factors, shape ``(..., 2, 2)``.
        """
        s1, s2 = theta[..., 2] ** 2, theta[..., 3] ** 2
        rho = jnp.tanh(theta[..., 4])
        one_minus_rho2 = 1.0 / jnp.cosh(theta[..., 4]) ** 2  # 1 - tanh^2, without cancellation
        var1 = s1**2 + self.jitter
        l11 = jnp.sqrt(var1)
        l21 = rho * s1 * s2 / l11
        # var2 - l21^2 = s2^2 ((1 - rho^2) s1^2 + jitter) / var1 + jitter > 0
        l22 = jnp.sqrt(s2**2 * (one_minus_rho2 * s1**2 + self.jitter) / var1 + self.jitter)
        zero = jnp.zeros_like(l11)
        return jnp.stack([jnp.stack([l11, zero], -1), jnp.stack([l21, l22], -1)], -2)

    def simulate_one(self, key, theta):
        noise = jax.random.normal(key, (self.num_draws, 2), dtype=theta.dtype)
        draws = theta[:2] + noise @ self.covariance_cholesky(theta).T
        return draws.reshape(-1)

    def log_likelihood(self, x, theta) -> jnp.ndarray:
        """log p(x | theta), exact: the sum of four bivariate Normal log densities.
        Broadcasts over the leading dimensions of ``x`` and ``theta``.

        Args:
            x: observations, shape ``(..., 8)``.
            theta: parameter vectors, shape ``(..., 5)``.

        Returns:
            The log-likelihoods, shape ``(...)``.
        """
        x = jnp.asarray(x)
        theta = jnp.asarray(theta)
        pairs = x.reshape(x.shape[:-1] + (self.num_draws, 2))
        factor = self.covariance_cholesky(theta)[..., None, :, :]  # shared by the four draws
        likelihood = dist.MultivariateNormal(theta[..., None, :2], scale_tril=factor)
        return likelihood.log_prob(pairs).sum(-1)


TASKS: dict[str, type[Simulator]] = {"two_moons": TwoMoons, "gaussian_linear": GaussianLinear, "slcp": SLCP}


def load_task(name: str) -> tuple[Simulator, np.ndarray, np.ndarray, np.ndarray]:
    """The benchmark task ``name``, its observations and reference posteriors.

    The arrays are the benchmark's own (sbibm 1.1.0), read from
    ``reference_dir() / "sbibm" / f"{name}.npz"`` without unpickling.

    Args:
        name: ``"two_moons"``, ``"gaussian_linear"`` or ``"slcp"``.

    Returns:
        ``(model, observations, true_parameters, reference_draws)``: the simulator, and arrays of
        shapes ``(10, obs_dim)``, ``(10, num_theta)`` and ``(10, 10000, num_theta)``.

    Raises:
        ValueError: an unknown task, or a reference file whose shapes do not fit the task.
        FileNotFoundError: the reference file is missing.
    """
    if name not in TASKS:
        raise ValueError(f"unknown sbibm task {name!r}; known tasks: {sorted(TASKS)}")
    path = reference_dir() / "sbibm" / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"the sbibm reference file for {name!r} is missing: {path}")
    with np.load(path, allow_pickle=False) as arrays:
        observations = np.asarray(arrays["observations"])
        true_parameters = np.asarray(arrays["true_parameters"])
        reference_draws = np.asarray(arrays["reference_posterior_samples"])
    model = TASKS[name]()
    dim_theta, dim_x = model.num_theta, int(np.prod(model.observation_shape))
    shapes_fit = (
        observations.shape[1:] == (dim_x,)
        and true_parameters.shape[1:] == (dim_theta,)
        and reference_draws.shape[2:] == (dim_theta,)
    )
    if not shapes_fit:
        raise ValueError(
            f"{path} does not fit the task {name!r} (theta {dim_theta}-d, x {dim_x}-d): observations "
            f"{observations.shape}, true_parameters {true_parameters.shape}, reference draws {reference_draws.shape}"
        )
    return model, observations, true_parameters, reference_draws
