"""One registry from method names to back ends, and :func:`fit`, which dispatches on it."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from helmholtz.models.base import Model, _as_key


@dataclass(frozen=True)
class Backend:
    """A registered inference back end.

    Args:
        name: the name ``hz.fit(..., method=name)`` selects it by.
        summary: one line for ``helmholtz backends`` and the docs.
        requirement: ``requirement(model)`` returns None when the back end can fit
            ``model``, else a short reason it cannot.
        run: ``run(model, x, key, **options)`` returns a :class:`Fit`.
        options: the names of the options ``run`` accepts; None reads them from its
            signature (its keyword parameters after ``(model, x, key)``). Give them when
            ``run`` takes ``**options``.
    """

    name: str
    summary: str
    requirement: Callable[[Model], str | None]
    run: Callable
    options: frozenset[str] | None = None

    def __post_init__(self):
        object.__setattr__(self, "options", option_names(self.name, self.run, self.options))

    def check_options(self, options: Iterable[str]) -> None:
        """Refuse option names the back end does not take.

        Args:
            options: the option names a user gave.

        Raises:
            ValueError: naming each unknown option, the closest valid name, and every valid one.
        """
        unknown = set(options) - self.options
        if unknown:
            raise ValueError(unknown_options_message(self.name, unknown, self.options))


def unknown_options_message(method: str, unknown: Iterable[str], valid: Iterable[str]) -> str:
    """``method: unknown option 'x' (did you mean 'y'?); valid options: ...`` for the names
    ``unknown``, none of which is among ``valid``."""
    valid = sorted(valid)
    described = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, valid, n=1)
        described.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "option" if len(described) == 1 else "options"
    return f"{method}: unknown {noun} {', '.join(described)}; valid options: {', '.join(valid)}"


def option_names(name: str, run: Callable, declared: Iterable[str] | None = None) -> frozenset[str]:
    """The options ``run(model, x, key, **options)`` accepts: its keyword parameters after
    the first three, and the names ``declared`` (required when it takes ``**options``)."""
    parameters = list(inspect.signature(run).parameters.values())[3:]
    keywords = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if any(p.kind is p.VAR_KEYWORD for p in parameters) and declared is None:
        raise TypeError(f"back end {name!r}: its run function takes **options; declare their names (options=...)")
    return frozenset(keywords | set(declared or ()))


_BACKENDS: dict[str, Backend] = {}


def register_backend(
    name: str, summary: str, requirement: Callable[[Model], str | None], options: Iterable[str] | None = None
):
    """Decorator registering ``run`` as the back end called ``name``.

    Args:
        name: the method name :func:`fit` takes.
        summary: one line on what the back end does.
        requirement: ``requirement(model)``: None when the back end can fit ``model``, else why not.
        options: the names of the options ``run`` takes through ``**options``, if it does;
            its keyword parameters are read from its signature. :func:`fit` refuses any
            other name before the back end runs.
    """

    def decorate(run):
        _BACKENDS[name] = Backend(name, summary, requirement, run, None if options is None else frozenset(options))
        return run

    return decorate


def backends() -> dict[str, Backend]:
    """Every registered back end, by name."""
    return dict(_BACKENDS)


def methods_for(model: Model) -> list[str]:
    """The back ends that can fit a model.

    Args:
        model: any helmholtz model.

    Returns:
        The names of the registered back ends whose requirement ``model`` meets, in
        registration order.
    """
    reasons = {}  # back ends share requirements (vae, wake-sleep and rws); each is checked once
    for backend in _BACKENDS.values():
        if backend.requirement not in reasons:
            reasons[backend.requirement] = _reason(backend.requirement, model)
    return [name for name, backend in _BACKENDS.items() if reasons[backend.requirement] is None]


def _reason(requirement: Callable[[Model], str | None], model: Model) -> str | None:
    """``requirement(model)``, remembered for a frozen (immutable, hashable) model: most
    requirements trace the model's program, and SBC or a benchmark fits one model many times."""
    if dataclasses.is_dataclass(model) and model.__dataclass_params__.frozen:
        try:
            return _remembered_reason(requirement, model)
        except TypeError:  # a field that cannot be hashed (an array)
            pass
    return requirement(model)


@functools.lru_cache(maxsize=256)
def _remembered_reason(requirement, model):
    return requirement(model)


def fit(model: Model, data, *, method: str, key=0, **options):
    """Fit ``model`` to ``data`` with the back end ``method``; returns a :class:`Fit`.

    Args:
        model: a helmholtz model.
        data: the observations, in the form the model documents (validated first).
        method: a registered back end name (see :func:`backends`).
        key: an int seed or a JAX PRNG key; the same key gives the same result.
        **options: the back end's options (see its documentation, and the user guide's
            "Options" for those the gradient-trained back ends share); an unknown or
            misspelled one is refused before anything runs, with the closest name and
            the valid ones.
    """
    if not isinstance(model, Model):
        raise TypeError(f"fit: model must be a helmholtz model, got {type(model).__name__}")
    if method not in _BACKENDS:
        raise ValueError(f"unknown method {method!r}; registered methods: {', '.join(sorted(_BACKENDS))}")
    backend = _BACKENDS[method]
    reason = _reason(backend.requirement, model)
    if reason is not None:
        fitting = methods_for(model)
        raise ValueError(
            f"method {method!r} cannot fit {model.name}: {reason}. "
            f"Methods that can: {', '.join(fitting) if fitting else 'none registered'}"
        )
    backend.check_options(options)
    x = model.validate_data(data)
    model.check_declaration(x)
    return backend.run(model, x, _as_key(key), **options)


def requires_likelihood(model: Model) -> str | None:
    if not model.has_likelihood:
        return "it needs a model with a likelihood (this one is a simulator)"
    return None


def requires_continuous_likelihood(model: Model) -> str | None:
    if (reason := requires_likelihood(model)) is not None:
        return reason
    if not model.continuous_latents:
        return "it needs every sampled latent to be continuous (discrete ones must be summed out)"
    return None


def requires_sampling_without_params(model: Model) -> str | None:
    """For samplers: every quantity must be a latent with a prior. A ``param`` site (a
    decoder's weights) has no prior to sample from and would stay at its initial value."""
    if (reason := requires_continuous_likelihood(model)) is not None:
        return reason
    params = [name for name, site in model._trace().items() if site["type"] == "param"]
    if params:
        return f"it samples latents with priors, and this model has point-estimated params ({', '.join(params)})"
    return None
