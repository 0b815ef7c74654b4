"""Where the shared reference data lives (``../shared/reference`` beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path


def reference_dir() -> Path:
    """The reference-data folder: ``$HELMHOLTZ_REFERENCE_DIR``, else ``../shared/reference``.

    The relative form is searched from the working directory and from this package's
    repository, so tests and the demo find it from a clone's root.
    """
    if "HELMHOLTZ_REFERENCE_DIR" in os.environ:
        return Path(os.environ["HELMHOLTZ_REFERENCE_DIR"])
    candidates = [Path.cwd(), Path(__file__).resolve().parents[2]]
    for root in candidates:
        path = (root / ".." / "shared" / "reference").resolve()
        if path.is_dir():
            return path
    raise FileNotFoundError(
        "reference data not found: set HELMHOLTZ_REFERENCE_DIR or place shared/reference beside the repository"
    )
