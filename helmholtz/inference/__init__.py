"""Inference back ends behind one registry, and the Fit they all return."""

from helmholtz.inference import nuts, simulation_based, svi, vae, wake_sleep  # noqa: F401  (registers the back ends)
from helmholtz.inference.fit import DrawsPosterior, Fit, GuidePosterior, load
from helmholtz.inference.registry import Backend, backends, fit, methods_for, register_backend

__all__ = [
    "Backend",
    "DrawsPosterior",
    "Fit",
    "GuidePosterior",
    "backends",
    "fit",
    "load",
    "methods_for",
    "register_backend",
]
