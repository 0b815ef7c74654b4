"""helmholtz: declarative generative models for neuroscience and perception, with
interchangeable inference back ends, on JAX.

    import helmholtz as hz
    model = hz.models.FactorAnalysis(obs_dim=10, latent_dim=2)
    fit = hz.fit(model, data, method="nuts", key=0)     # or "svi"
    fit.to_arviz(); fit.save("fa.hz"); hz.load("fa.hz")
"""

import os

# torch (for sbi) may share a GPU with JAX: JAX must then not take most of its memory at
# start-up, which it does by default. Must be set before JAX initialises.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

from helmholtz import data, diagnostics, models, perception, priors
from helmholtz._serialization import serializable
from helmholtz.app.recording_fit import fit_recording
from helmholtz.inference import Fit, backends, fit, load, methods_for

__version__ = "0.1.0"
__all__ = [
    "Fit",
    "backends",
    "data",
    "diagnostics",
    "fit",
    "fit_recording",
    "load",
    "methods_for",
    "models",
    "perception",
    "priors",
    "serializable",
]
