"""The posterior protocol: what every posterior does, the capabilities some have, and the
registry of posterior kinds.

Every posterior a back end returns is a :class:`Posterior`: it draws (``sample``,
``grouped``) and gives its ``state()`` for saving, under its ``kind``. Some posteriors can
do more; each such capability is a small declared base class, and a posterior class has it
by subclassing it:

- :class:`BindsProgram`: puts fitted network weights into the model's program;
- :class:`LogMarginal`: estimates log p(x) of new data;
- :class:`Amortised`: encodes new data into q(z | x) and decodes latents;
- :class:`LogDensity`: a normalised density log q(theta | observed) of draws;
- :class:`ConditionsOnNewObservation`: samples and evaluates the posterior at another
  observation without retraining.

Code that needs a capability asks for it: ``posterior.has(LogMarginal)``, or
:func:`require`, which raises :class:`MissingCapability` naming the back ends whose
posteriors have it. A class may declare a capability that some of its instances lack (a
neural posterior conditions on new observations only when trained in one round); the
instance says why in :meth:`Posterior.unavailable`.

A posterior kind registers how it is rebuilt from its saved state
(:func:`register_posterior_kind`), so :func:`helmholtz.load` needs no back end's import:
the back end that defines a kind registers it when it is imported.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import jax.numpy as jnp
import numpy as np


# -- every posterior --------------------------------------------------------------------
class Posterior(abc.ABC):
    """What every posterior does. Subclasses set ``kind`` and implement ``sample`` and ``state``.

    Attributes:
        kind: the name the posterior is saved under; :func:`register_posterior_kind` maps
            it back to the class and to the function that rebuilds it.
    """

    kind: ClassVar[str]

    @abc.abstractmethod
    def sample(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        """Draws of every site the posterior holds.

        Args:
            key: a JAX PRNG key; the same key gives the same draws.
            num_draws: how many.

        Returns:
            Arrays by site name, each with a leading axis of ``num_draws``.
        """

    def grouped(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        """Draws grouped in chains; by default ``num_draws`` draws in one chain. A posterior
        held as chains returns them as they are.

        Args:
            key: a JAX PRNG key.
            num_draws: how many draws in all (a posterior held as chains may ignore it).

        Returns:
            Arrays by site name, each shape ``(num_chains, num_draws_per_chain, *site_shape)``.
        """
        return {name: value[None] for name, value in self.sample(key, num_draws).items()}

    @abc.abstractmethod
    def state(self) -> dict:
        """Everything needed to rebuild the posterior: arrays, numbers, strings, lists and
        dicts of them (saved without pickle, under the key ``"kind"`` beside them)."""

    def unavailable(self, capability: type[Capability]) -> str | None:
        """Why this posterior lacks ``capability`` although its class declares it, else None.

        The hook for a capability that depends on how a posterior was trained; by default
        a posterior has every capability its class declares.

        Args:
            capability: a :class:`Capability` subclass.

        Returns:
            The reason, or None.
        """
        return None

    def has(self, capability: type[Capability]) -> bool:
        """Whether this posterior has ``capability``: its class declares it and it is not unavailable.

        Args:
            capability: a :class:`Capability` subclass.

        Returns:
            True or False.
        """
        return isinstance(self, capability) and self.unavailable(capability) is None


# -- the capabilities some posteriors have ------------------------------------------------
class Capability(abc.ABC):
    """A capability some posteriors have; a posterior class has it by subclassing it.

    Attributes:
        needs: what an error says is needed, as in "encode needs <needs>".
    """

    needs: ClassVar[str]


class BindsProgram(Capability):
    """Fitted values of the model's own params (a decoder's weights, noise scales)."""

    needs = "a fit that fitted the model's own params"

    @abc.abstractmethod
    def bind(self, program) -> Callable:
        """``program`` with the fitted params in place (a NumPyro ``substitute``).

        Args:
            program: the model's NumPyro program.

        Returns:
            The program with the params substituted.
        """


class LogMarginal(Capability):
    """An estimate of log p(x_i) for new data points, at the fitted parameters."""

    needs = "a posterior that estimates log p(x) of new data"

    @abc.abstractmethod
    def log_marginal(self, x, *, key, num_particles: int) -> jnp.ndarray:
        """log p(x_i) for each row x_i of ``x`` (validated data).

        Args:
            x: new data, one row per point.
            key: a JAX PRNG key.
            num_particles: Monte Carlo draws per point.

        Returns:
            One value per row.
        """


class Amortised(Capability):
    """An encoder q(z_i | x_i) of the local latents of any data point, and its decoder."""

    needs = "an amortised fit (an encoder q(z | x))"

    @abc.abstractmethod
    def encode(self, x) -> dict:
        """q(z_i | x_i) of each local latent site, batched over the rows of ``x``.

        Args:
            x: validated data, one row per point.

        Returns:
            NumPyro distributions by site name.
        """

    @abc.abstractmethod
    def decode(self, z, y=None) -> jnp.ndarray:
        """The mean of p(x | z) (of p(x | z, y) with covariates ``y``) at the fitted parameters.

        Args:
            z: latent vectors along the last axis (a dict by site for several local latents).
            y: the covariates of a conditional model, one row per latent vector.

        Returns:
            One mean per latent vector.
        """


class LogDensity(Capability):
    """A normalised posterior density at the observation the fit conditions on."""

    needs = "a posterior with a normalised density"

    @abc.abstractmethod
    def log_prob(self, draws: dict) -> np.ndarray:
        """log q(theta | observed) of each draw.

        Args:
            draws: parameter draws by site name, as :meth:`Posterior.sample` gives them.

        Returns:
            One value per draw.
        """


class ConditionsOnNewObservation(Capability):
    """The posterior at any other observation, without retraining (amortised in the data)."""

    needs = "a posterior that conditions on a new observation without retraining"

    @abc.abstractmethod
    def sample_at(self, key, num_draws: int, x_summary) -> dict[str, jnp.ndarray]:
        """Draws of the posterior given the summary statistics ``x_summary``.

        Args:
            key: a JAX PRNG key or an int seed.
            num_draws: how many.
            x_summary: the observation's summary statistics, shape ``(num_features,)``.

        Returns:
            Arrays by site name, each with a leading axis of ``num_draws``.
        """

    @abc.abstractmethod
    def log_prob_at(self, theta, x_summary) -> np.ndarray:
        """log q(theta | x_summary), normalised, for parameter vectors ``theta``.

        Args:
            theta: parameter vectors, in the model's parameter order, shape ``(num_draws, num_theta)``.
            x_summary: the observation's summary statistics, shape ``(num_features,)``.

        Returns:
            One value per vector, shape ``(num_draws,)``.
        """


# -- the registry of posterior kinds -----------------------------------------------------
Rebuild = Callable[[Any, Any, dict, dict], Posterior]


@dataclass(frozen=True)
class PosteriorKind:
    """A registered posterior kind.

    Args:
        kind: the name saved with the posterior's state.
        cls: the posterior class.
        rebuild: ``rebuild(model, observed, state, options) -> Posterior``, the inverse of
            ``state()``: ``state`` is what it returned, ``options`` the Fit's options.
        methods: the back ends that return this kind.
        only: for capabilities of ``cls`` that only some of ``methods`` give, those methods.
    """

    kind: str
    cls: type[Posterior]
    rebuild: Rebuild
    methods: tuple[str, ...]
    only: Mapping[type[Capability], tuple[str, ...]]

    def providers(self, capability: type[Capability]) -> tuple[str, ...]:
        """The back ends whose posteriors of this kind have ``capability``.

        Args:
            capability: a :class:`Capability` subclass.

        Returns:
            Their names; empty if the class does not declare the capability.
        """
        if not issubclass(self.cls, capability):
            return ()
        return self.only.get(capability, self.methods)


_KINDS: dict[str, PosteriorKind] = {}


def register_posterior_kind(
    cls: type[Posterior],
    *,
    rebuild: Rebuild,
    methods: tuple[str, ...] | list[str],
    only: Mapping[type[Capability], tuple[str, ...] | list[str]] | None = None,
) -> type[Posterior]:
    """Register the posterior class ``cls`` under its ``kind``, for :func:`helmholtz.load`.

    A back end calls this when it is imported. Several back ends may return the same
    kind: a second registration of the same class and rebuild adds its ``methods``.

    Args:
        cls: a :class:`Posterior` subclass with a ``kind``.
        rebuild: ``rebuild(model, observed, state, options) -> cls``, from what ``state()``
            returned (without ``"kind"``) and the saved Fit's options.
        methods: the names of the back ends that return this kind.
        only: capabilities of ``cls`` that only some of ``methods`` give, mapped to those
            methods (the error of a missing capability names them).

    Returns:
        ``cls``.

    Raises:
        TypeError: ``cls`` is not a Posterior with a kind.
        ValueError: the kind is registered already, to another class or rebuild function.
    """
    if not (isinstance(cls, type) and issubclass(cls, Posterior) and isinstance(getattr(cls, "kind", None), str)):
        raise TypeError(f"register_posterior_kind: {cls!r} must be a Posterior subclass with a kind (a string)")
    only = {capability: tuple(names) for capability, names in (only or {}).items()}
    for capability, names in only.items():
        if not issubclass(cls, capability) or not set(names) <= set(methods):
            raise ValueError(
                f"register_posterior_kind: {cls.__name__} must declare {capability.__name__} "
                f"and {list(names)} must be among its methods {list(methods)}"
            )
    previous = _KINDS.get(cls.kind)
    if previous is not None:
        if previous.cls is not cls or previous.rebuild is not rebuild:
            raise ValueError(f"posterior kind {cls.kind!r} is registered already, by {previous.cls.__qualname__}")
        methods = previous.methods + tuple(name for name in methods if name not in previous.methods)
        only = {**previous.only, **only}
    _KINDS[cls.kind] = PosteriorKind(cls.kind, cls, rebuild, tuple(methods), only)
    return cls


def posterior_kinds() -> dict[str, PosteriorKind]:
    """Every registered posterior kind, by name."""
    return dict(_KINDS)


def providers(capability: type[Capability]) -> tuple[str, ...]:
    """The back ends whose posteriors have ``capability``, in the order they registered.

    Args:
        capability: a :class:`Capability` subclass.

    Returns:
        Their names, each once.
    """
    names = []
    for registered in _KINDS.values():
        names += [name for name in registered.providers(capability) if name not in names]
    return tuple(names)


class MissingCapability(TypeError):
    """A posterior lacks a capability that was asked for; the message names the back ends that give it."""


C = TypeVar("C", bound=Capability)


def require(posterior: Posterior, capability: type[C], *, what: str, method: str | None = None) -> C:
    """``posterior``, after checking it has ``capability``.

    Args:
        posterior: any posterior.
        capability: a :class:`Capability` subclass.
        what: what needs it, for the error ("encode", "expected_coverage").
        method: the back end that made the posterior, for the error.

    Returns:
        ``posterior`` itself.

    Raises:
        MissingCapability: (a TypeError) it lacks the capability; the message names the
            back ends whose posteriors have it, and why this one does not.
    """
    reason = posterior.unavailable(capability) if isinstance(posterior, capability) else None
    if isinstance(posterior, capability) and reason is None:
        return posterior
    names = ", ".join(providers(capability)) or "none registered"
    this = f"fit is {method!r}" if method is not None else f"posterior is of kind {posterior.kind!r}"
    if reason is not None:
        this = f"{method!r} fit" if method is not None else f"{posterior.kind!r} posterior"
        this += f" has none: {reason}"
    raise MissingCapability(f"{what} needs {capability.needs}; back ends that give one: {names}; this {this}")
