"""The prior library of the latent-variable models.

Each prior is a small frozen dataclass that declares its dimension and parameters, checks
them once at construction, and hands out the NumPyro distribution of one latent vector
``z`` of length ``dim``. Models never hard-code a prior: they take one of these.

Discrete priors (:class:`Bernoulli`, :class:`Categorical`) also enumerate their support,
which lets a model sum its local latents out exactly instead of sampling them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpyro.distributions as dist

from helmholtz._serialization import serializable

# 2**16 joint states is the most we enumerate: beyond it the collapsed likelihood's
# (points x states x obs_dim) intermediate no longer fits comfortably in memory.
MAX_ENUMERATED_STATES = 2**16


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_dim(name: str, dim: int) -> None:
    _require(isinstance(dim, int) and dim >= 1, f"{name}: dim must be a positive integer, got {dim!r}")


def _check_positive(prior: str, field: str, value: float) -> None:
    _require(
        math.isfinite(value) and value > 0,
        f"{prior}: {field} must be a finite number > 0, got {value!r}",
    )


class Prior:
    """What every prior provides: ``dim``, ``distribution()`` and whether it is discrete."""

    dim: int
    is_discrete: bool = False

    def distribution(self) -> dist.Distribution:
        """The distribution of one latent vector, event shape ``(dim,)``."""
        raise NotImplementedError

    def enumerate_support(self) -> tuple[jnp.ndarray, jnp.ndarray]:
        """All latent vectors ``(num_states, dim)`` and their log prior probabilities."""
        raise TypeError(f"{type(self).__name__} is continuous: its support cannot be enumerated")


@serializable
@dataclass(frozen=True)
class Gaussian(Prior):
    """Independent normal latents, N(loc, scale^2) in each of ``dim`` coordinates."""

    dim: int
    loc: float = 0.0
    scale: float = 1.0

    def __post_init__(self):
        _check_dim("Gaussian", self.dim)
        _require(math.isfinite(self.loc), f"Gaussian: loc must be finite, got {self.loc!r}")
        _check_positive("Gaussian", "scale", self.scale)

    def distribution(self):
        return dist.Normal(self.loc, self.scale).expand([self.dim]).to_event(1)


@serializable
@dataclass(frozen=True)
class Laplace(Prior):
    """Independent Laplace latents: the sparse-coding prior (Olshausen & Field, 1996)."""

    dim: int
    loc: float = 0.0
    scale: float = 1.0

    def __post_init__(self):
        _check_dim("Laplace", self.dim)
        _require(math.isfinite(self.loc), f"Laplace: loc must be finite, got {self.loc!r}")
        _check_positive("Laplace", "scale", self.scale)

    def distribution(self):
        return dist.Laplace(self.loc, self.scale).expand([self.dim]).to_event(1)


@serializable
@dataclass(frozen=True)
class VonMises(Prior):
    """Independent angles on the circle, for latents with rotation symmetry."""

    dim: int
    loc: float = 0.0
    concentration: float = 1.0

    def __post_init__(self):
        _check_dim("VonMises", self.dim)
        _require(math.isfinite(self.loc), f"VonMises: loc must be finite, got {self.loc!r}")
        _check_positive("VonMises", "concentration", self.concentration)

    def distribution(self):
        return dist.VonMises(self.loc, self.concentration).expand([self.dim]).to_event(1)


@serializable
@dataclass(frozen=True)
class Bernoulli(Prior):
    """Independent binary latents (on/off factors), each on with probability ``probs``."""

    dim: int
    probs: float = 0.5
    is_discrete = True

    def __post_init__(self):
        _check_dim("Bernoulli", self.dim)
        _require(0 < self.probs < 1, f"Bernoulli: probs must lie in (0, 1), got {self.probs!r}")

    def distribution(self):
        return dist.Bernoulli(probs=self.probs).expand([self.dim]).to_event(1)

    def enumerate_support(self):
        _require(
            2**self.dim <= MAX_ENUMERATED_STATES,
            f"Bernoulli: 2**{self.dim} joint states are too many to enumerate "
            f"(at most {MAX_ENUMERATED_STATES}); use dim <= 16",
        )
        states = jnp.asarray(list(itertools.product((0.0, 1.0), repeat=self.dim)))
        log_prior = self.distribution().log_prob(states)
        return states, log_prior


@serializable
@dataclass(frozen=True)
class Categorical(Prior):
    """One of ``dim`` discrete states, as a one-hot vector of length ``dim``.

    ``probs`` defaults to uniform; pass a tuple of ``dim`` probabilities summing to one.
    """

    dim: int
    probs: tuple[float, ...] | None = None
    is_discrete = True

    def __post_init__(self):
        _check_dim("Categorical", self.dim)
        if self.probs is not None:
            probs = tuple(float(p) for p in self.probs)
            object.__setattr__(self, "probs", probs)
            _require(
                len(probs) == self.dim,
                f"Categorical: probs needs {self.dim} entries (one per state), got {len(probs)}",
            )
            _require(all(p > 0 for p in probs), f"Categorical: probs must all be > 0, got {probs}")
            _require(
                abs(sum(probs) - 1) < 1e-6,
                f"Categorical: probs must sum to 1, they sum to {sum(probs):.6g}",
            )

    def _probs(self):
        if self.probs is None:
            return jnp.full(self.dim, 1.0 / self.dim)
        return jnp.asarray(self.probs)

    def distribution(self):
        # A one-draw multinomial is the one-hot categorical (NumPyro has no separate class).
        return dist.Multinomial(total_count=1, probs=self._probs())

    def enumerate_support(self):
        return jnp.eye(self.dim), jnp.log(self._probs())


__all__ = ["Prior", "Gaussian", "Laplace", "VonMises", "Bernoulli", "Categorical"]
