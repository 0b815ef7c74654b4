"""One registry from method names to back ends, and :func:`fit`, which dispatches on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from helmholtz.models.base import Model, _as_key


@dataclass(frozen=True)
class Backend:
    """A registered inference back end.

    ``requirement(model)`` returns None when the back end can fit ``model``, else a short
    reason it cannot; ``run(model, x, key, **options)`` returns a :class:`Fit`.
    """

    name: str
    summary: str
    requirement: Callable[[Model], str | None]
    run: Callable


_BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, summary: str, requirement: Callable[[Model], str | None]):
    """Decorator registering ``run`` as the back end called ``name``."""

    def decorate(run):
        _BACKENDS[name] = Backend(name, summary, requirement, run)
        return run

    return decorate


def backends() -> dict[str, Backend]:
    """Every registered back end, by name."""
    return dict(_BACKENDS)


def methods_for(model: Model) -> list[str]:
    """The names of the back ends that can fit ``model``."""
    reasons = {}  # back ends share requirements (vae, wake-sleep and rws); each is checked once
    for backend in _BACKENDS.values():
        if backend.requirement not in reasons:
            reasons[backend.requirement] = backend.requirement(model)
    return [name for name, backend in _BACKENDS.items() if reasons[backend.requirement] is None]


def fit(model: Model, data, *, method: str, key=0, **options):
    """Fit ``model`` to ``data`` with the back end ``method``; returns a :class:`Fit`.

    Args:
        model: a helmholtz model.
        data: the observations, in the form the model documents (validated first).
        method: a registered back end name (see :func:`backends`).
        key: an int seed or a JAX PRNG key; the same key gives the same result.
        **options: the back end's own options (see its documentation).
    """
    if not isinstance(model, Model):
        raise TypeError(f"fit: model must be a helmholtz model, got {type(model).__name__}")
    if method not in _BACKENDS:
        raise ValueError(f"unknown method {method!r}; registered methods: {', '.join(sorted(_BACKENDS))}")
    backend = _BACKENDS[method]
    reason = backend.requirement(model)
    if reason is not None:
        fitting = methods_for(model)
        raise ValueError(
            f"method {method!r} cannot fit {model.name}: {reason}. "
            f"Methods that can: {', '.join(fitting) if fitting else 'none registered'}"
        )
    x = model.validate_data(data)
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
