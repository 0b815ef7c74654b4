"""A simulation bank on disk, so an interrupted simulation-based fit resumes.

Simulations are the expensive part of simulation-based inference, and training is cheap
to redo. A bank is a folder: a manifest naming the model it belongs to, then per round the
parameters drawn (written before any simulation runs) and the summary statistics of each
finished chunk. Every file is written atomically, so a crash loses at most the chunk in
flight; a rerun with the same bank reuses everything that was written.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from helmholtz import _serialization
from helmholtz._serialization import write_bytes_atomically


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _model_fingerprint(model) -> str:
    """The model's declaration as saved by the serializer: equal declarations, equal banks."""
    with tempfile.TemporaryDirectory() as folder:
        path = _serialization.write(Path(folder) / "model.zip", "model", model)
        return _serialization.file_digest(path)


class SimulationBank:
    """The simulations of one model, by round, in ``folder``."""

    def __init__(self, folder: str | os.PathLike, model):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        manifest = self.folder / "bank.json"
        fingerprint = _model_fingerprint(model)
        if manifest.exists():
            try:
                recorded = json.loads(manifest.read_text())
            except json.JSONDecodeError as error:
                raise ValueError(f"{manifest} is not valid JSON ({error}); remove the folder to start afresh") from None
            if recorded.get("model") != fingerprint:
                raise ValueError(
                    f"the simulation bank {self.folder} belongs to another model "
                    f"({recorded.get('model_name')}); use a new folder for {model.name}"
                )
        else:
            write_bytes_atomically(manifest, json.dumps({"model": fingerprint, "model_name": model.name}).encode())

    def _path(self, round_index: int, name: str) -> Path:
        return self.folder / f"round{round_index}_{name}.npy"

    def parameters(self, round_index: int, draw) -> np.ndarray:
        """The round's parameters: those on disk, else ``draw()`` (then saved)."""
        path = self._path(round_index, "theta")
        if path.exists():
            return np.load(path, allow_pickle=False)
        theta = np.asarray(draw(), dtype=np.float32)
        write_bytes_atomically(path, _npy_bytes(theta))
        return theta

    def summaries(self, round_index: int, theta: np.ndarray, chunk_size: int, simulate) -> np.ndarray:
        """Summary statistics of ``theta``, chunk by chunk: chunks on disk are read, the
        rest computed by ``simulate(start, stop)`` and saved as soon as each finishes."""
        chunks = []
        for start in range(0, len(theta), chunk_size):
            stop = min(start + chunk_size, len(theta))
            path = self._path(round_index, f"x_{start}_{stop}")
            if path.exists():
                chunks.append(np.load(path, allow_pickle=False))
            else:
                chunk = np.asarray(simulate(start, stop), dtype=np.float32)
                write_bytes_atomically(path, _npy_bytes(chunk))
                chunks.append(chunk)
        return np.concatenate(chunks)
