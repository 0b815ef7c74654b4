"""Helpers that every layer of the package uses, under public names in one place.

- :func:`as_key`: the public API takes an int seed or a JAX key wherever it takes ``key``;
- :func:`reference_dir`: where the shared reference data lives (``../shared/reference``
  beside the repository), for the zoo's benchmark models and the data loaders.

This module imports nothing else of the package, so any layer can use it.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np

__all__ = ["as_key", "reference_dir"]


def as_key(key):
    """A JAX PRNG key from ``key``: an int seed (``0``) or a key (returned as it is).

    Args:
        key: an int seed, or a JAX key (``jax.random.key(0)`` or ``jax.random.PRNGKey(0)``).

    Returns:
        A JAX key.

    Raises:
        TypeError: for anything else (a string, a float, a bool, None), saying what it got.
    """
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return jax.random.PRNGKey(int(key))
    if isinstance(key, (jax.Array, np.ndarray)) and (
        jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) or np.issubdtype(key.dtype, np.unsignedinteger)
    ):
        return key
    is_array = isinstance(key, (jax.Array, np.ndarray))
    got = f"an array of {key.dtype}" if is_array else f"{type(key).__name__} {key!r:.40}"
    raise TypeError(f"key must be an int seed (e.g. key=0) or a JAX random key (jax.random.key(0)), got {got}")


def reference_dir() -> Path:
    """The reference-data folder: ``$HELMHOLTZ_REFERENCE_DIR``, else ``../shared/reference``.

    The relative form is searched from the working directory and from this package's
    repository, so tests and the demo find it from a clone's root.
    """
    if "HELMHOLTZ_REFERENCE_DIR" in os.environ:
        return Path(os.environ["HELMHOLTZ_REFERENCE_DIR"])
    candidates = [Path.cwd(), Path(__file__).resolve().parents[1]]
    for root in candidates:
        path = (root / ".." / "shared" / "reference").resolve()
        if path.is_dir():
            return path
    raise FileNotFoundError(
        "reference data not found: set HELMHOLTZ_REFERENCE_DIR or place shared/reference beside the repository"
    )
