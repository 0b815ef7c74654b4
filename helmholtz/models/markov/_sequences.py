"""What the sequence models share: checks of data and settings, and the sequence plate."""

from __future__ import annotations

import contextlib
import math

import jax.numpy as jnp
import numpy as np
import numpyro

from helmholtz.models.base import DATA_PLATE, check_finite_array


def check_positive(owner: str, **values) -> None:
    for field, value in values.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}: {field} must be a finite number > 0, got {value!r}")


def check_count(owner: str, **values) -> None:
    for field, value in values.items():
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"{owner}: {field} must be a positive integer, got {value!r}")


def check_stochastic(name: str, matrix) -> None:
    matrix = np.asarray(matrix)
    if np.any(matrix < 0) or not np.allclose(matrix.sum(-1), 1.0, atol=1e-5):
        raise ValueError(f"{name} must have non-negative rows that sum to 1, got row sums {matrix.sum(-1)}")


def check_sequences(x, owner: str, event_ndim: int, obs_dim: int | None = None) -> jnp.ndarray:
    """One sequence (event_ndim dimensions) or a batch of them (one more), finite."""
    array = check_finite_array(x, owner)
    single = "(num_steps, obs_dim)" if event_ndim == 2 else "(num_steps,)"
    if array.ndim not in (event_ndim, event_ndim + 1):
        raise ValueError(
            f"{owner}: data must be one sequence {single} or a batch (num_sequences, {single[1:]}, "
            f"got shape {array.shape}"
        )
    if obs_dim is not None and array.shape[-1] != obs_dim:
        raise ValueError(f"{owner}: each time step must have obs_dim = {obs_dim} values, got shape {array.shape}")
    return array


def check_counts(x, owner: str) -> None:
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError(f"{owner}: Poisson emissions need non-negative integer counts")


def num_sequences(x, event_ndim: int) -> int | None:
    """How many sequences a batch holds; None for one unbatched sequence."""
    return None if x is None or np.ndim(x) == event_ndim else int(np.shape(x)[0])


def sequence_plate(x, num_points, event_ndim: int):
    """The plate over sequences, or a context that changes nothing for one sequence."""
    batched = (x.ndim > event_ndim) if x is not None else num_points is not None
    if not batched:
        return contextlib.nullcontext()
    return numpyro.plate(DATA_PLATE, x.shape[0] if x is not None else num_points)
