"""Inference back ends behind one registry, and the Fit they all return."""

from helmholtz.inference import nuts, simulation_based, svi, vae, wake_sleep  # noqa: F401  (registers the back ends)
from helmholtz.inference.fit import DrawsPosterior, Fit, GuidePosterior, load
from helmholtz.inference.posterior import (
    Amortised,
    BindsProgram,
    Capability,
    ConditionsOnNewObservation,
    LogDensity,
    LogMarginal,
    MissingCapability,
    Posterior,
    PosteriorKind,
    posterior_kinds,
    providers,
    register_posterior_kind,
    require,
)
from helmholtz.inference.registry import Backend, backends, fit, methods_for, register_backend
from helmholtz.inference.training import AmortisedOptions, TrainingOptions

__all__ = [
    "Amortised",
    "AmortisedOptions",
    "Backend",
    "BindsProgram",
    "Capability",
    "ConditionsOnNewObservation",
    "DrawsPosterior",
    "Fit",
    "GuidePosterior",
    "LogDensity",
    "LogMarginal",
    "MissingCapability",
    "Posterior",
    "PosteriorKind",
    "backends",
    "fit",
    "load",
    "methods_for",
    "posterior_kinds",
    "providers",
    "register_backend",
    "register_posterior_kind",
    "TrainingOptions",
    "require",
]
