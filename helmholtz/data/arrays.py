"""Reading a data matrix from a file: NumPy (.npy, .npz), CSV or JSON."""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
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

    Args:
        path: the file: ``.npy``, ``.npz``, ``.csv`` or ``.json``.
        key: the array to take from an ``.npz`` or a JSON object.

    Returns:
        The array.

    Raises:
        FileNotFoundError: there is no such file.
        ValueError: the file cannot be read as numbers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            # Our own handle: np.load leaks its own when the zip directory is corrupt.
            with open(path, "rb") as handle:
                archive = np.load(handle, allow_pickle=False)
                if not isinstance(archive, np.lib.npyio.NpzFile):
                    raise ValueError(f"{path} holds a single array, not named arrays; save it as .npy")
                names = list(archive.keys())
                if key is None and len(names) != 1:
                    raise ValueError(f"{path} holds arrays {names}; say which with key=")
                if key is not None and key not in names:
                    raise ValueError(f"{path} holds no array {key!r}; it holds {names}")
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
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        json.JSONDecodeError,
        UnicodeDecodeError,
        NotImplementedError,
        RuntimeError,
    ) as error:
        raise ValueError(f"{path} is not a readable {suffix} file: {error}") from None
    except RecursionError:
        raise ValueError(f"{path} is not a readable {suffix} file: nested too deeply") from None
    except (TypeError, ValueError) as error:
        if str(error).startswith(str(path)):
            raise
        raise ValueError(f"{path} does not hold a numeric array: {error}") from None
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{path} holds {array.dtype} values, expected numbers")
    return array


_NUMBER_START = re.compile(r"\s*[+-]?(\d|\.\d)")


def _is_header(cells: list[str]) -> bool:
    """A header row is text: no cell is a number or starts like one (``2.O`` is a mistyped
    number, not a column name), and some cell is not empty."""
    if not any(cell.strip() for cell in cells):
        return False
    return not any(_parses(cell) or _NUMBER_START.match(cell) for cell in cells)


def _read_csv(path: Path) -> np.ndarray:
    """Numbers separated by commas, with an optional header row of column names.

    Every row is read or the file is refused: a row that does not parse is an error naming
    its line (``load_array`` adds the file), the first row included (it is a header only
    when it is text). A UTF-8
    byte-order mark (as Excel writes) is ignored; blank lines are skipped.
    """
    lines = enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1)
    numbered = [(number, line) for number, line in lines if line.strip()]
    if not numbered:
        raise ValueError(f"{path}: the CSV file is empty")
    if _is_header(numbered[0][1].split(",")):
        numbered = numbered[1:]
        if not numbered:
            raise ValueError(f"{path}: the CSV file has a header and no rows")
    rows = []
    for number, line in numbered:
        cells = line.split(",")
        try:
            rows.append([float(cell) for cell in cells])
        except ValueError:
            bad = next(cell for cell in cells if not _parses(cell))
            shown = line.strip()[:80]
            raise ValueError(f"line {number} holds {bad.strip()!r}, not a number ({shown!r})") from None
        if len(cells) != len(rows[0]):
            raise ValueError(
                f"rows have different numbers of columns: line {number} has {len(cells)}, "
                f"line {numbered[0][0]} has {len(rows[0])}"
            )
    return np.asarray(rows, dtype=float)


def _parses(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
