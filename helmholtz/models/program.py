"""A model from a plain NumPyro program: :class:`Program`.

A user's NumPyro program becomes a :class:`~helmholtz.models.Model` with every derived
method (prior draws, simulation, its sites by role, every back end that applies, ArviZ
export, saving) without writing a class::

    @hz.serializable                       # only needed to save fits: registers the name
    def kidscore_momiq(mom_iq, kid_score=None):
        beta = numpyro.sample("beta", dist.ImproperUniform(dist.constraints.real, (), (2,)))
        sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
        with numpyro.plate("data", len(mom_iq)):
            numpyro.sample("kid_score", dist.Normal(beta[0] + beta[1] * mom_iq, sigma), obs=kid_score)

    model = hz.models.Program(kidscore_momiq, observed="kid_score", data={"mom_iq": mom_iq})
    fit = hz.fit(model, kid_score, method="nuts", key=0)

Conventions, each checked with an error that names it:

* **the observed site.** ``observed`` names the sample site of the observations
  (default ``"x"``, the zoo's name). The data given to :func:`helmholtz.fit` are
  conditioned on that site by name, and passed to the program as the argument of that
  name when it has one (``kid_score=...`` above); to simulate, the program is called
  with it None, so it must take the site's shape from its other arguments (or from
  ``num_points``). Inside helmholtz the site is called ``"x"`` (a NumPyro handler renames
  it), which is its name in ``fit.to_arviz()``'s observed, predictive and likelihood
  groups; no other site of the program may be called ``"x"``.
* **fixed data.** Covariates and constants (``mom_iq``, dosing times) are given once, as
  ``data={name: array or number}``, and passed to the program as keyword arguments. They
  are saved with the model, as arrays.
* **num_points.** A program that takes an argument ``num_points`` gets the number of
  rows of the data, or of the points to simulate; others need not take it.
* **local latents.** Per-data-point latents sampled inside a plate named ``"data"`` are
  local (what the amortised back ends encode); every other latent is a global parameter.
* **a likelihood.** The observations must be a sample site with a distribution: a
  likelihood written only with ``numpyro.factor`` cannot be simulated or exported and is
  refused. ``numpyro.factor`` may still add prior terms.
* **saving.** The program is saved by its registered name (``module.qualname``): decorate
  it with :func:`helmholtz.serializable` and import its module before
  :func:`helmholtz.load`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.primitives import Messenger

from helmholtz._serialization import serializable
from helmholtz.models.base import (
    OBSERVED_SITE,
    Conditioned,
    Model,
    SiteInfo,
    _innermost,
    check_finite_array,
)

_SCALARS = (bool, int, float, str, type(None))


class _RenameSite(Messenger):
    """Calls the site ``old`` of the wrapped program ``new``, and refuses another site
    already called ``new`` (it would clash with it)."""

    def __init__(self, fn, old: str, new: str):
        self.old, self.new = old, new
        super().__init__(fn)

    def process_message(self, msg):
        if msg.get("type") not in ("sample", "deterministic", "param"):
            return
        if msg["name"] == self.new:
            raise ValueError(
                f"the program has a site named {self.new!r} besides its observed site {self.old!r}: helmholtz "
                f"calls the observed site {self.new!r} inside, so rename the other site"
            )
        if msg["name"] == self.old:
            msg["name"] = self.new


def _constant(name: str, value):
    """A value of ``data``, as it is kept and saved: a Python scalar or a NumPy array."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, np.generic):
        return value.item()
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001  (whatever NumPy refuses is refused with one message)
        array = np.asarray(None)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"data[{name!r}] must be a number or a numeric array (it is saved with the model), "
            f"got {type(value).__name__}"
        )
    return array


def _describe(value):
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    return (type(value).__name__, value)


@serializable
@dataclass(frozen=True, eq=False)
class Program(Model):
    """A model given by a NumPyro program ``fn``: see the module's conventions.

    Args:
        fn: the program, a function that samples the priors and then the observations at
            the site ``observed``, with ``obs=`` the argument of that name.
        observed: the name of the program's sample site of the observations.
        data: fixed keyword arguments of ``fn`` (covariates, constants): numbers or
            numeric arrays.

    Raises:
        TypeError: ``fn`` is not a function, an argument it needs has no value, or
            ``data`` holds a value that cannot be saved.
        ValueError: ``observed`` is not a name, or is also given in ``data``.
    """

    fn: Callable
    observed: str = field(default=OBSERVED_SITE, kw_only=True)
    data: Mapping[str, Any] = field(default_factory=dict, kw_only=True)

    def __post_init__(self):
        if isinstance(self.fn, Model) or (isinstance(self.fn, type) and issubclass(self.fn, Model)):
            raise TypeError("Program wraps a NumPyro program (a function); a helmholtz model is fit directly")
        if not callable(self.fn) or isinstance(self.fn, type):
            raise TypeError(f"Program needs a NumPyro program (a function), got {type(self.fn).__name__}")
        if not (isinstance(self.observed, str) and self.observed.isidentifier()):
            raise ValueError(
                f"{self.name}: observed must be the name of the observed sample site, got {self.observed!r}"
            )
        if not isinstance(self.data, Mapping):
            raise TypeError(
                f"{self.name}: data must be a dict of the program's keyword arguments, got {type(self.data).__name__}"
            )
        data = {}
        for key, value in self.data.items():
            if not (isinstance(key, str) and key.isidentifier()):
                raise TypeError(f"{self.name}: data's keys must be the program's argument names, got {key!r}")
            data[key] = _constant(key, value)
        object.__setattr__(self, "data", data)
        if self.observed in data:
            raise ValueError(
                f"{self.name}: {self.observed!r} is the observed site; give its values to hz.fit, not in data"
            )
        self._check_arguments()

    def _signature(self) -> inspect.Signature | None:
        try:
            return inspect.signature(self.fn)
        except (TypeError, ValueError):  # a callable without a readable signature
            return None

    def _check_arguments(self) -> None:
        signature = self._signature()
        if signature is None:
            return
        parameters = signature.parameters
        kinds = {p.kind for p in parameters.values()}
        if inspect.Parameter.POSITIONAL_ONLY in kinds:
            raise TypeError(f"{self.name}: the program's arguments must be passable by name (no positional-only ones)")
        if inspect.Parameter.VAR_KEYWORD not in kinds:
            unknown = [key for key in self.data if key not in parameters]
            if unknown:
                raise TypeError(
                    f"{self.name}: the program takes no argument {unknown[0]!r} given in data; "
                    f"its arguments: {list(parameters)}"
                )
        given = set(self.data) | {self.observed, "num_points"}
        missing = [
            p.name
            for p in parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in given
        ]
        if missing:
            raise TypeError(
                f"{self.name}: the program's argument {missing[0]!r} has no value: pass it as "
                f"data={{{missing[0]!r}: ...}} (fixed data), or name it as the observed site with "
                f"observed={missing[0]!r}"
            )

    # -- identity ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return getattr(self.fn, "__name__", "Program")

    def _description(self):
        return (self.fn, self.observed, tuple(sorted((key, _describe(value)) for key, value in self.data.items())))

    def __eq__(self, other):
        return isinstance(other, Program) and self._description() == other._description()

    def __hash__(self):
        return hash(self._description())

    def __repr__(self):
        data = ", ".join(
            f"{key}={f'array{value.shape}' if isinstance(value, np.ndarray) else repr(value)}"
            for key, value in self.data.items()
        )
        return f"Program({self.name}, observed={self.observed!r}, data={{{data}}})"

    # -- the program -------------------------------------------------------------------
    def program(self, x=None, *, num_points=None):
        """The user's program on the fixed data, its observed site called ``"x"`` and
        conditioned on ``x`` (sampled if None).

        Args:
            x: the observations, or None to simulate them.
            num_points: the number of data points to simulate, passed on to a program that
                takes an argument ``num_points`` (and is not given one in ``data``).

        Returns:
            What the user's program returns.
        """
        signature = self._signature()
        arguments = dict(self.data)
        if signature is not None:
            if self.observed in signature.parameters:
                arguments[self.observed] = x
            if "num_points" in signature.parameters and "num_points" not in self.data:
                arguments["num_points"] = num_points if x is None or num_points is not None else self.num_points_of(x)
        program = self.fn if self.observed == OBSERVED_SITE else _RenameSite(self.fn, self.observed, OBSERVED_SITE)
        if x is not None:
            program = handlers.condition(program, data={OBSERVED_SITE: x})
        return program(**arguments)

    def _trace(self, x=None, num_points: int = 2):
        if x is not None:
            return super()._trace(x, num_points)
        try:
            return super()._trace(None, num_points)
        except Exception as error:
            raise ValueError(
                f"{self.name}: the program fails when called with {self.observed}=None, which is how helmholtz "
                f"simulates and reads its sites ({type(error).__name__}: {error}). It must sample the observations "
                f"when they are None: write the likelihood as numpyro.sample({self.observed!r}, distribution, "
                f"obs={self.observed}) rather than numpyro.factor, and take sizes from the data given at declaration "
                "or from an argument num_points"
            ) from error

    # -- what the program supports -----------------------------------------------------
    def _improper_sites(self) -> list[str]:
        return [
            name
            for name, site in self._trace().items()
            if site["type"] == "sample"
            and not site["is_observed"]
            and isinstance(_innermost(site["fn"]), dist.ImproperUniform)
        ]

    @property
    def can_simulate(self) -> bool:
        """False when a latent's prior is improper (``ImproperUniform``: a density without a
        sampler): such a model can be fit, and simulated given its parameters, but not
        sampled from its prior."""
        return not self._improper_sites()

    @property
    def has_local_latents(self) -> bool:
        return bool(self.sites().local_latents)

    def sample_prior(self, key, num_draws: int):
        improper = self._improper_sites()
        if improper:
            raise ValueError(
                f"{self.name}: the prior of {improper} is improper (ImproperUniform, a density without a sampler), "
                "so it cannot be sampled; the model can be fit, and simulated given its parameters"
            )
        return super().sample_prior(key, num_draws)

    # -- data --------------------------------------------------------------------------
    def validate_data(self, x):
        """The observations as a float array, once the program is checked against them:
        its observed site exists and has the data's shape when it simulates.

        Args:
            x: the observations (not a :class:`~helmholtz.models.base.Conditioned`).

        Returns:
            The observations as a float JAX array.

        Raises:
            ValueError: the data are invalid, or the program fails on them, or simulates
                observations of another shape.
        """
        if isinstance(x, Conditioned):
            raise ValueError(
                f"{self.name}: a Program takes the observations alone; give covariates once, at declaration: "
                "Program(fn, observed=..., data={'covariate': array})"
            )
        x = check_finite_array(x, self.name)
        try:
            self.check_declaration(x)
        except (TypeError, ValueError) as error:
            if str(error).startswith(f"{self.name}:"):
                raise
            raise ValueError(
                f"{self.name}: the program fails when run on the data, called with "
                f"{', '.join([*self.data, self.observed])} ({type(error).__name__}: {error})"
            ) from error
        num_points = self.num_points_of(x)
        try:
            simulated = self.site_info(None, num_points=num_points)[OBSERVED_SITE].shape
        except Exception as error:
            raise ValueError(
                f"{self.name}: the program fails when called with {self.observed}=None, which is how it simulates "
                f"({type(error).__name__}: {error}); take the shape of the site {self.observed!r} from the data given "
                "at declaration or from an argument num_points"
            ) from error
        if tuple(simulated) != tuple(x.shape):
            takes = self._signature() is not None and "num_points" in self._signature().parameters
            raise ValueError(
                f"{self.name}: the data have shape {tuple(x.shape)}, but the program simulates its site "
                f"{self.observed!r} with shape {tuple(simulated)} when called with {self.observed}=None"
                f"{f' and num_points={num_points}' if takes else ''}: give data of the shape the program samples "
                "(a scalar site observed once per point needs a plate, numpyro.plate('data', n))"
            )
        return x

    def _check_observed_site(self, sites: dict[str, SiteInfo], x) -> None:
        site = sites.get(OBSERVED_SITE)
        if site is not None and site.type == "sample" and not site.is_factor:
            return super()._check_observed_site(sites, x)
        factors = [name for name, s in sites.items() if s.is_factor]
        message = (
            f"{self.name}: the program has no sample site {self.observed!r}, the observed site this Program "
            f"names (observed={self.observed!r}), so the data would never be conditioned on. Its sites: "
            f"{sorted(sites)}; pass observed='<the site of the observations>'"
        )
        if factors:
            message += (
                f". A likelihood written with numpyro.factor ({', '.join(map(repr, factors))}) cannot be simulated or "
                "exported: write it as numpyro.sample(name, distribution, obs=...) and pass observed=name"
            )
        raise ValueError(message)
