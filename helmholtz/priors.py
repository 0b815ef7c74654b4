"""The one prior vocabulary: any NumPyro distribution, named.

A prior is a NumPyro distribution wherever one is declared:

* a **parameter** of a simulator or an observer is a :class:`Parameter`: a name, any
  NumPyro distribution (scalar or joint, bounded or transformed: ``dist.LogUniform``,
  ``dist.HalfNormal``, ``dist.Gamma``, ``dist.MultivariateNormal(loc,
  precision_matrix=P)`` over a vector) and a unit. :func:`Uniform` and :func:`Normal` are
  shorthands for the two commonest;
* the **latent vector** z of a latent-variable model (``LinearLVM(prior=...)``) is a
  NumPyro distribution with event shape ``(dim,)``, or one of the named priors below
  (:class:`Gaussian`, :class:`Laplace`, :class:`VonMises`, :class:`Bernoulli`,
  :class:`Categorical`), which check their arguments and, for the discrete ones, enumerate
  their support so that a model can sum its local latents out exactly.

Every prior saves with the model that declares it (:mod:`helmholtz._serialization` stores
a NumPyro distribution by its constructor arguments) and converts to what ``sbi`` needs in
one place (:func:`helmholtz.inference.simulation_based.torch_prior`), whatever its family.

    from numpyro import distributions as dist
    hz.priors.Parameter("g_K", dist.LogUniform(0.1, 30.0), unit="mS/cm^2")
    hz.priors.Parameter("w", dist.MultivariateNormal(jnp.zeros(20), precision_matrix=P))
    hz.models.LinearLVM(prior=dist.Laplace(0.0, 1.0).expand([16]).to_event(1), obs_dim=64)
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from helmholtz import _serialization
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


def _describe(value):
    """A hashable, comparable description of a NumPyro distribution: its class and
    constructor arguments, as the file format stores them."""
    if isinstance(value, dist.Distribution | dist.transforms.Transform):
        arguments = _serialization._constructor_arguments(value)
        return (type(value).__name__, tuple((name, _describe(arg)) for name, arg in sorted(arguments.items())))
    if isinstance(value, list | tuple):
        return tuple(_describe(item) for item in value)
    if isinstance(value, jax.core.Tracer):  # declared inside a traced function: no value yet
        return ("traced", id(value))
    array = np.asarray(value)
    return (array.dtype.str, array.shape, array.tobytes())


def support_bounds(distribution: dist.Distribution) -> tuple[np.ndarray, np.ndarray]:
    """The lower and upper bounds of ``distribution``'s support, shaped like one draw;
    -inf and inf where it is unbounded (read from NumPyro's support constraint).

    Args:
        distribution: a NumPyro distribution.

    Returns:
        ``(low, high)``, float64 arrays of the distribution's ``event_shape``.
    """
    support = distribution.support
    while isinstance(support, dist.constraints.independent):
        support = support.base_constraint
    shape = distribution.event_shape
    low = np.broadcast_to(np.asarray(getattr(support, "lower_bound", -np.inf), np.float64), shape)
    high = np.broadcast_to(np.asarray(getattr(support, "upper_bound", np.inf), np.float64), shape)
    return low.copy(), high.copy()


@serializable
@dataclass(frozen=True, eq=False)
class Parameter:
    """A named parameter of a simulator or an observer and its prior.

    Args:
        name: the parameter's name (its NumPyro site).
        prior: any NumPyro distribution of one value of the parameter: ``batch_shape``
            ``()``; its ``event_shape`` is the parameter's shape (``()`` for a scalar,
            ``(k,)`` for a vector with a joint prior such as a MultivariateNormal).
        unit: the parameter's unit, for labels.

    Raises:
        ValueError: the name is not an identifier, or the prior has a batch shape or is discrete.
        TypeError: the prior is not a NumPyro distribution, or cannot be saved.
    """

    name: str
    prior: dist.Distribution
    unit: str = ""

    def __post_init__(self):
        _require(
            isinstance(self.name, str) and self.name.isidentifier(),
            f"a parameter's name must be an identifier, got {self.name!r}",
        )
        if not isinstance(self.prior, dist.Distribution):
            raise TypeError(
                f"parameter {self.name!r}: the prior must be a NumPyro distribution "
                f"(numpyro.distributions), got {type(self.prior).__name__}"
            )
        _require(
            self.prior.batch_shape == (),
            f"parameter {self.name!r}: the prior must describe one value (batch_shape ()), got batch_shape "
            f"{self.prior.batch_shape}; for a vector use a joint distribution or .to_event(1)",
        )
        _require(
            not self.prior.support.is_discrete,
            f"parameter {self.name!r}: the prior must be continuous, {type(self.prior).__name__} is discrete",
        )
        try:
            _describe(self.prior)
        except TypeError as error:
            raise TypeError(f"parameter {self.name!r}: this prior cannot be saved ({error})") from None

    def __eq__(self, other):
        return isinstance(other, Parameter) and self._description() == other._description()

    def __hash__(self):
        return hash(self._description())

    def _description(self):
        return (self.name, self.unit, _describe(self.prior))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.prior.event_shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def distribution(self) -> dist.Distribution:
        """The prior (the NumPyro distribution the program samples the parameter from)."""
        return self.prior

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The support's lower and upper bounds (-inf / inf where unbounded)."""
        return support_bounds(self.prior)

    @property
    def low(self) -> float:
        """The lower bound of a scalar parameter's support (-inf when unbounded)."""
        return float(self.bounds[0])

    @property
    def high(self) -> float:
        """The upper bound of a scalar parameter's support (inf when unbounded)."""
        return float(self.bounds[1])

    def __repr__(self):
        return f"Parameter({self.name!r}, {_format(self.prior)}{f', unit={self.unit!r}' if self.unit else ''})"


def _format(distribution: dist.Distribution) -> str:
    arguments = _serialization._constructor_arguments(distribution)
    shown = ", ".join(
        f"{name}={float(value):g}" if np.ndim(value) == 0 and not isinstance(value, dist.Distribution) else name
        for name, value in arguments.items()
    )
    return f"{type(distribution).__name__}({shown})"


def Uniform(name: str, low: float, high: float, unit: str = "") -> Parameter:  # noqa: N802 (reads as a prior)
    """A parameter with a uniform prior on [low, high]: ``Parameter(name, dist.Uniform(low, high), unit)``.

    Args:
        name: the parameter's name.
        low: the lower bound, finite.
        high: the upper bound, finite and above ``low``.
        unit: the parameter's unit, for labels.

    Returns:
        A scalar :class:`Parameter`.

    Raises:
        ValueError: the bounds are not finite with low < high.
    """
    _require(
        math.isfinite(low) and math.isfinite(high) and low < high,
        f"parameter {name!r}: the prior needs finite low < high, got low={low!r}, high={high!r}",
    )
    return Parameter(name, dist.Uniform(float(low), float(high)), unit)


def Normal(name: str, loc: float, scale: float, unit: str = "") -> Parameter:  # noqa: N802 (reads as a prior)
    """A parameter with a normal prior N(loc, scale^2): ``Parameter(name, dist.Normal(loc, scale), unit)``.

    Args:
        name: the parameter's name.
        loc: the prior mean, finite.
        scale: the prior standard deviation, finite and > 0.
        unit: the parameter's unit, for labels.

    Returns:
        A scalar :class:`Parameter`.

    Raises:
        ValueError: ``loc`` is not finite, or ``scale`` is not finite and > 0.
    """
    _require(
        math.isfinite(loc) and math.isfinite(scale) and scale > 0,
        f"parameter {name!r}: the prior needs a finite loc and scale > 0, got loc={loc!r}, scale={scale!r}",
    )
    return Parameter(name, dist.Normal(float(loc), float(scale)), unit)


# Files saved before the one vocabulary name the two classes that the shorthands replace.
_serialization.register_alias("helmholtz.models.simulators.base.Uniform", Uniform)
_serialization.register_alias("helmholtz.models.simulators.base.Normal", Normal)


class Prior:
    """What every latent prior provides: ``dim``, ``distribution()`` and whether it is discrete."""

    dim: int
    is_discrete: bool = False

    def distribution(self) -> dist.Distribution:
        """The distribution of one latent vector, event shape ``(dim,)``."""
        raise NotImplementedError

    def enumerate_support(self) -> tuple[jnp.ndarray, jnp.ndarray]:
        """All latent vectors and their log prior probabilities.

        Returns:
            ``(states, log_prior)``, shapes ``(num_states, dim)`` and ``(num_states,)``.

        Raises:
            TypeError: the prior is continuous.
        """
        raise TypeError(f"{type(self).__name__} is continuous: its support cannot be enumerated")


@serializable
@dataclass(frozen=True)
class Gaussian(Prior):
    """Independent normal latents, N(loc, scale^2) in each of ``dim`` coordinates.

    Args:
        dim: the length of a latent vector, ``latent_dim``.
        loc: the mean of each coordinate.
        scale: the standard deviation of each coordinate (> 0).

    Raises:
        ValueError: ``dim`` is not a positive integer, ``loc`` is not finite, or ``scale`` is not > 0.
    """

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
    """Independent Laplace latents: the sparse-coding prior (Olshausen & Field, 1996).

    Args:
        dim: the length of a latent vector, ``latent_dim``.
        loc: the location of each coordinate.
        scale: the scale of each coordinate (> 0).

    Raises:
        ValueError: ``dim`` is not a positive integer, ``loc`` is not finite, or ``scale`` is not > 0.
    """

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
    """Independent angles on the circle, for latents with rotation symmetry.

    Args:
        dim: the length of a latent vector, ``latent_dim``.
        loc: the mean angle of each coordinate (radians).
        concentration: the von Mises concentration of each coordinate (> 0).

    Raises:
        ValueError: ``dim`` is not a positive integer, ``loc`` is not finite, or
            ``concentration`` is not > 0.
    """

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
    """Independent binary latents (on/off factors), each on with probability ``probs``.

    Args:
        dim: the length of a latent vector, ``latent_dim``.
        probs: the probability that each coordinate is on, in (0, 1).

    Raises:
        ValueError: ``dim`` is not a positive integer, or ``probs`` is not in (0, 1).
    """

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

    Args:
        dim: the number of states, the length of the one-hot vector.
        probs: the probability of each state, or None for uniform.

    Raises:
        ValueError: ``dim`` is not a positive integer, or ``probs`` are not ``dim`` positive
            values summing to one.
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


@serializable
@dataclass(frozen=True, eq=False)
class DistributionPrior(Prior):
    """A latent prior given as any NumPyro distribution of one latent vector (event shape
    ``(dim,)``): what a model holds when it is declared with a distribution.

    Args:
        prior: a NumPyro distribution with batch shape ``()`` and event shape ``(latent_dim,)``.

    Raises:
        TypeError: ``prior`` is not a NumPyro distribution, or cannot be saved.
        ValueError: its batch or event shape is not that of one vector.
    """

    prior: dist.Distribution

    def __post_init__(self):
        if not isinstance(self.prior, dist.Distribution):
            raise TypeError(f"a latent prior must be a NumPyro distribution, got {type(self.prior).__name__}")
        _require(
            self.prior.batch_shape == () and len(self.prior.event_shape) == 1,
            "a latent prior must be a distribution of one vector z (batch_shape (), event_shape (dim,)), got "
            f"batch_shape {self.prior.batch_shape} and event_shape {self.prior.event_shape}; "
            "e.g. dist.Laplace(0.0, 1.0).expand([dim]).to_event(1)",
        )
        try:
            _describe(self.prior)
        except TypeError as error:
            raise TypeError(f"this latent prior cannot be saved ({error})") from None

    def __eq__(self, other):
        return isinstance(other, DistributionPrior) and _describe(self.prior) == _describe(other.prior)

    def __hash__(self):
        return hash(_describe(self.prior))

    @property
    def dim(self) -> int:
        return int(self.prior.event_shape[0])

    @property
    def is_discrete(self) -> bool:
        return bool(self.prior.support.is_discrete)

    def distribution(self):
        return self.prior

    def enumerate_support(self):
        raise TypeError(
            f"{type(self.prior).__name__}: declare discrete latents with hz.priors.Bernoulli or "
            "hz.priors.Categorical, whose joint states can be enumerated to sum them out"
        )


def as_latent_prior(prior) -> Prior:
    """``prior`` as a latent prior: a named prior as it is, a NumPyro distribution wrapped.

    Args:
        prior: a :class:`Prior`, or a NumPyro distribution of one latent vector.

    Returns:
        A :class:`Prior` (a :class:`DistributionPrior` for a distribution).

    Raises:
        TypeError: ``prior`` is neither.
    """
    if isinstance(prior, Prior):
        return prior
    if isinstance(prior, dist.Distribution):
        return DistributionPrior(prior)
    raise TypeError(
        "prior must be a NumPyro distribution of one latent vector or a helmholtz prior "
        f"(hz.priors.Gaussian(dim), Laplace, VonMises, Bernoulli, Categorical), got {type(prior).__name__}"
    )


__all__ = [
    "Bernoulli",
    "Categorical",
    "DistributionPrior",
    "Gaussian",
    "Laplace",
    "Normal",
    "Parameter",
    "Prior",
    "Uniform",
    "VonMises",
    "as_latent_prior",
    "support_bounds",
]
