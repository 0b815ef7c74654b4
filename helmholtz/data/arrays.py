"""Reading a data matrix from a file: NumPy (.npy, .npz), CSV or JSON."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

FORMATS = (".npy", ".npz", ".csv", ".json")


def load_array(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """Read a numeric array from ``path``.

    ``.npy``: the array. ``.npz``: the array named ``key`` (or the only one). ``.csv``:
    numbers separated by commas, with an optional header row. ``.json``: a list (of lists)
    of numbers, or an object from which ``key`` (default ``"x"``, else ``"y"``) is taken.
    Files that cannot be read as numbers raise ValueError saying so; pickled arrays are
    refused.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.keys())
                if key is None and len(names) != 1:
                    raise ValueError(f"{path} holds arrays {names}; say which with key=")
                array = archive[key or names[0]]
        elif suffix == ".csv":
            array = _read_csv(path)
        elif suffix == ".json":
            content = json.loads(path.read_text())
            if isinstance(content, dict):
                chosen = key or next((k for k in ("x", "y") if k in content), None)
                if chosen is None or chosen not in content:
                    raise ValueError(
                        f"{path}: a JSON object needs a {key or 'x or y'!r} entry, it has {sorted(content)}"
                    )
                content = content[chosen]
            array = np.asarray(content, dtype=float)
        else:
            raise ValueError(f"{path}: unsupported file type {suffix!r}; expected one of {FORMATS}")
    except (zipfile.BadZipFile, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a readable {suffix} file: {error}") from None
    except (TypeError, ValueError) as error:
        if str(error).startswith(str(path)):
            raise
        raise ValueError(f"{path} does not hold a numeric array: {error}") from None
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{path} holds {array.dtype} values, expected numbers")
    return array


def _read_csv(path: Path) -> np.ndarray:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path}: the CSV file is empty")
    try:
        [float(cell) for cell in lines[0].split(",")]
    except ValueError:
        lines = lines[1:]  # a header row
    rows = [[float(cell) for cell in line.split(",")] for line in lines]
    if len({len(row) for row in rows}) > 1:
        raise ValueError(f"{path}: rows have different numbers of columns")
    return np.asarray(rows, dtype=float)
