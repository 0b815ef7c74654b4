"""Data: reading arrays from files, and where the shared reference data lives."""

from helmholtz.data.arrays import load_array
from helmholtz.data.reference import reference_dir

__all__ = ["load_array", "reference_dir"]
