"""A simulation bank on disk, so an interrupted simulation-based fit resumes.

Simulations are the expensive part of simulation-based inference, and training is cheap
to redo. A bank is a folder: a manifest (``bank.json``) recording what made the
simulations, then per round the parameters drawn (written before any simulation runs) and
the summary statistics of each finished chunk. Every file is written atomically, so a crash
loses at most the chunk in flight; a rerun with the same bank reuses everything written.

What the manifest records, and a rerun must match (else it is refused, naming what
differs): the model's declaration, its prior, the key, the budget (simulations and rounds),
for several rounds how the proposals were made (the method and its training options), and
the helmholtz release. The chunking is recorded too, by index range: each chunk's rows
``[start, stop)`` of the round, its shape, dtype and SHA-256. A rerun with another chunk
size reuses every recorded range and simulates only what is missing (a simulation is seeded
by the chunk that made it, so such a bank holds the same parameters and equally valid
simulations, though not bit-identical to a run with one chunk size throughout). Each chunk
is checked against its record before use; one that is missing, truncated or altered is
named in a warning and simulated again. One process reads and writes a bank at a time: it
holds ``bank.lock`` (made with O_EXCL, holding its pid) while it checks the record, draws
a round's parameters and simulates them; a second writer meanwhile is refused, and a lock
whose process is gone is taken over. (Between those steps, while the network trains, the
lock is free: a second run with the same record may then use the bank, which is safe, as
the record makes its simulations the same.)

The scale-out store (zarr, a status per chunk) may supersede this folder; it should keep
the same records.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from helmholtz import _serialization
from helmholtz._serialization import write_bytes_atomically

BANK_FORMAT = 2
# An unreadable lock (its writer died between creating and filling it) is stale after this.
_UNREADABLE_LOCK_SECONDS = 30.0


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _model_fingerprint(model) -> str:
    """The model's declaration as saved by the serializer: equal declarations, equal banks."""
    return _fingerprint(model)


def _fingerprint(content) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = _serialization.write(Path(folder) / "content.zip", "model", content)
        return _serialization.file_digest(path)


def _prior_fingerprint(model) -> str:
    """The declared priors (names, distributions, units) of a simulator."""
    try:
        return _fingerprint(tuple(model.parameters))
    except TypeError:  # a prior the serializer cannot save: its description instead
        return _digest(repr(tuple(model.parameters)).encode())


def _normalised(value):
    """``value`` as it reads back from JSON, so records compare equal after a round trip."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


class SimulationBank:
    """The simulations of one model, by round, in ``folder``.

    Args:
        folder: the bank's folder (made if missing).
        model: the simulator.
        record: what else made the simulations, compared with the bank's record: ``key``
            (the key's data as a list of ints), ``num_simulations``, ``num_rounds`` and
            ``proposal`` (for several rounds, the method and the options that shape the
            proposals; None for one round).

    Raises:
        ValueError: ``folder`` is a file; the bank was made by another model, prior, key,
            budget, proposal or release (naming which); or another process writes it.
    """

    def __init__(self, folder: str | os.PathLike, model, record: dict | None = None):
        if not isinstance(folder, (str, os.PathLike)):
            raise TypeError(f"simulation_bank must be a folder path, got {type(folder).__name__}")
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(
                f"simulation_bank {self.folder} is a file, not a folder; give a folder (it is made if missing)"
            )
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(f"simulation_bank {self.folder}: cannot make the folder ({error})") from None
        self._manifest_path = self.folder / "bank.json"
        self._lock_path = self.folder / "bank.lock"
        self._token = None
        self._model_name = model.name
        self._fingerprint = _model_fingerprint(model)
        record = record or {}
        self._wanted = _normalised(
            {
                "prior": _prior_fingerprint(model),
                **{name: record.get(name) for name in ("key", "num_simulations", "num_rounds", "proposal")},
                "helmholtz_version": _serialization.library_version(),
            }
        )
        with self._locked():
            pass

    @contextlib.contextmanager
    def _locked(self):
        """Hold the lock, with the manifest read and checked, for one step of a run."""
        self._acquire()
        try:
            self._open()
            yield
        finally:
            self._release()

    # -- the lock ------------------------------------------------------------------------
    def _acquire(self) -> None:
        token = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "nonce": os.urandom(8).hex()}
        for _ in range(2):
            try:
                handle = os.open(self._lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._lock_is_stale():
                    self._lock_path.unlink(missing_ok=True)
                    continue
                raise ValueError(self._busy_message()) from None
            with os.fdopen(handle, "w") as stream:
                json.dump(token, stream)
            self._token = token
            return
        raise ValueError(self._busy_message())

    def _held_by(self) -> dict | None:
        try:
            holder = json.loads(self._lock_path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def _lock_is_stale(self) -> bool:
        holder = self._held_by()
        if holder is None:
            try:
                return time.time() - self._lock_path.stat().st_mtime > _UNREADABLE_LOCK_SECONDS
            except OSError:
                return True  # gone meanwhile
        if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
            return False  # another machine's process: no way to tell from here
        return not _serialization._pid_alive(holder["pid"])

    def _busy_message(self) -> str:
        holder = self._held_by() or {}
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["since"])) if "since" in holder else "?"
        return (
            f"the simulation bank {self.folder} is in use by process {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')} (since {since}): one run writes a bank at a time. Wait for it to "
            f"finish or use another folder; if that process is gone, remove {self._lock_path}"
        )

    def _release(self) -> None:
        if self._token is not None and self._held_by() == self._token:
            self._lock_path.unlink(missing_ok=True)
        self._token = None

    # -- the record ----------------------------------------------------------------------
    def _open(self) -> None:
        """Read the manifest (made if missing) and check that it records this run."""
        fingerprint, wanted = self._fingerprint, self._wanted
        if not self._manifest_path.exists():
            self._manifest = {
                "bank_format": BANK_FORMAT,
                "model": fingerprint,
                "model_name": self._model_name,
                **wanted,
                "rounds": {},
            }
            self._save_manifest()
            return
        try:
            recorded = json.loads(self._manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"{self._manifest_path} is not valid JSON ({error}); remove the folder to start afresh"
            ) from None
        if not isinstance(recorded, dict):
            raise ValueError(f"{self._manifest_path} is not a bank manifest; remove the folder to start afresh")
        if recorded.get("model") != fingerprint:
            raise ValueError(
                f"the simulation bank {self.folder} belongs to another model "
                f"({recorded.get('model_name')}); use a new folder for {self._model_name}"
            )
        if recorded.get("bank_format") != BANK_FORMAT or not isinstance(recorded.get("rounds"), dict):
            raise ValueError(
                f"the simulation bank {self.folder} was written by an earlier helmholtz that did not record the "
                "key, budget and chunking of its simulations, so they cannot be checked; use a new folder"
            )
        for name, value in wanted.items():
            if recorded.get(name) != value:
                raise ValueError(
                    f"the simulation bank {self.folder} was made with another {name}: "
                    f"{_shown(recorded.get(name))} there, {_shown(value)} in this run; its simulations do not "
                    "belong to this run. Use a new folder, or rerun with what made the bank"
                )
        self._manifest = recorded

    def _save_manifest(self) -> None:
        write_bytes_atomically(self._manifest_path, json.dumps(self._manifest, indent=1).encode())

    def _round(self, round_index: int) -> dict:
        return self._manifest["rounds"].setdefault(str(round_index), {"theta": None, "chunks": []})

    def _path(self, round_index: int, name: str) -> Path:
        return self.folder / f"round{round_index}_{name}.npy"

    def _write(self, path: Path, array: np.ndarray) -> dict:
        payload = _npy_bytes(array)
        write_bytes_atomically(path, payload)
        return {"file": path.name, "shape": list(array.shape), "dtype": str(array.dtype), "sha256": _digest(payload)}

    def _read(self, entry: dict) -> tuple[np.ndarray | None, str]:
        """The array an entry records, or None and why it cannot be used."""
        path = self.folder / entry["file"]
        try:
            payload = path.read_bytes()
        except OSError as error:
            return None, f"{path} cannot be read ({error.strerror or error})"
        if _digest(payload) != entry["sha256"]:
            return None, f"{path} does not match its checksum (altered, zeroed or truncated since it was written)"
        try:
            array = np.load(io.BytesIO(payload), allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            return None, f"{path} is not a readable .npy file ({error})"
        if list(array.shape) != entry["shape"] or str(array.dtype) != entry["dtype"]:
            recorded = f"{tuple(entry['shape'])} {entry['dtype']}"
            return None, f"{path} holds {array.shape} {array.dtype}, not the recorded {recorded}"
        return array, ""

    # -- simulations ---------------------------------------------------------------------
    def parameters(self, round_index: int, draw) -> np.ndarray:
        """The round's parameters: those on disk, else ``draw()`` (then saved).

        A recorded file that fails its check is drawn again (the draw is seeded); if the new
        draw differs from the record, the bank's simulations no longer match and it is refused.
        """
        with self._locked():
            return self._parameters(round_index, draw)

    def _parameters(self, round_index: int, draw) -> np.ndarray:
        entry = self._round(round_index)["theta"]
        if entry is not None:
            theta, problem = self._read(entry)
            if theta is not None:
                return theta
        theta = np.asarray(draw(), dtype=np.float32)
        if entry is not None:
            if _digest(_npy_bytes(theta)) != entry["sha256"]:
                raise ValueError(
                    f"simulation bank: {problem}, and drawing the parameters again does not reproduce them; "
                    f"the simulations of round {round_index} cannot be checked: use a new folder"
                )
            warnings.warn(f"simulation bank: {problem}; drew the same parameters again and rewrote it", stacklevel=2)
        self._round(round_index)["theta"] = self._write(self._path(round_index, "theta"), theta)
        self._save_manifest()
        return theta

    def summaries(self, round_index: int, theta: np.ndarray, chunk_size: int, simulate) -> np.ndarray:
        """Summary statistics of ``theta``: recorded index ranges that pass their check are
        read, the rest computed by ``simulate(start, stop)`` in chunks of at most
        ``chunk_size`` and recorded as soon as each finishes."""
        with self._locked():
            return self._summaries(round_index, theta, chunk_size, simulate)

    def _summaries(self, round_index: int, theta: np.ndarray, chunk_size: int, simulate) -> np.ndarray:
        round_record = self._round(round_index)
        recorded = {}
        for entry in round_record["chunks"]:
            if 0 <= entry["start"] < entry["stop"] <= len(theta):
                recorded.setdefault(entry["start"], []).append(entry)
        chunks, start = [], 0
        while start < len(theta):
            reused = None
            for entry in sorted(recorded.get(start, []), key=lambda e: -e["stop"]):
                array, problem = self._read(entry)
                if array is not None and array.shape[0] == entry["stop"] - start:
                    reused = (entry["stop"], array)
                    break
                rows = f"{start}..{entry['stop']}"
                warnings.warn(f"simulation bank: {problem}; simulating its rows {rows} again", stacklevel=3)
                round_record["chunks"].remove(entry)
            if reused is not None:
                start, array = reused
                chunks.append(array)
                continue
            later = [s for s, entries in recorded.items() if s > start and _kept(entries, round_record)]
            stop = min([start + chunk_size, len(theta), *later])
            chunk = np.asarray(simulate(start, stop), dtype=np.float32)
            entry = {"start": start, "stop": stop, **self._write(self._path(round_index, f"x_{start}_{stop}"), chunk)}
            round_record["chunks"] = [e for e in round_record["chunks"] if e["file"] != entry["file"]] + [entry]
            self._save_manifest()
            chunks.append(chunk)
            start = stop
        return np.concatenate(chunks)


def _kept(entries: list, round_record: dict) -> bool:
    return any(entry in round_record["chunks"] for entry in entries)


def key_record(key) -> list[int]:
    """A JAX key as the bank records it: its data, as a list of ints."""
    import jax

    data = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return np.asarray(data).ravel().tolist()


def _shown(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."
