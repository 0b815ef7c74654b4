"""Current-clamp recordings, whatever file they come in, as one checked ``Recording``.

Fitting a neuron model to data goes wrong quietly when a trace is in volts instead of
millivolts, a current in pA instead of nA, or the step window is off by a factor of a
thousand: the simulator runs, the posterior is just nonsense. So every loader converts to
one set of units (mV, nA, ms) and ``Recording`` refuses data that do not look like it: a
membrane potential peaks between 1 and 1000 mV, an injected current between 1 pA and
100 nA (:data:`CURRENT_RANGE_NA`), and values outside are refused with the unit they look
like (checked in the file's own unit by each loader, so the message names the file's field).
Formats: the shared Allen ``.npz`` excerpts, NWB 2 (pynwb), Allen's NWB 1 (h5py), Axon
``.abf`` (pyabf) and CSV; ``fetch_allen_sweep`` downloads Allen NWB files over https from
the Allen Institute's hosts only and caches them once they are checked.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np

from helmholtz._serialization import write_bytes_atomically
from helmholtz.utils import reference_dir

SUFFIXES = (".npz", ".nwb", ".abf", ".csv")
NPZ_KEYS = ("voltage_mV", "current_uA", "dt_ms", "stim_on_ms", "stim_off_ms")
ALLEN_QUERY = (
    "https://api.brain-map.org/api/v2/data/query.json?criteria=model::Specimen,"
    "rma::criteria,[id$eq{specimen_id}],rma::include,"
    "ephys_result(well_known_files(well_known_file_type[name$eqNWBDownload]))"
)
ALLEN_HOST = "https://celltypes.brain-map.org"
# The only hosts the fetcher talks to (https only); download links are paths on ALLEN_HOST.
ALLEN_HOSTS = frozenset({"api.brain-map.org", "celltypes.brain-map.org"})
# Factors to mV and nA, keyed by the lower-cased unit names the file formats use.
TO_MILLIVOLTS = {"mv": 1.0, "millivolts": 1.0, "v": 1e3, "volt": 1e3, "volts": 1e3}
TO_NANOAMPERES = {"na": 1.0, "pa": 1e-3, "ua": 1e3, "a": 1e9, "amp": 1e9, "amps": 1e9, "ampere": 1e9, "amperes": 1e9}


# The peak |I| of a current-clamp sweep's injected current: from a picoampere (the smallest
# steps) to tens of nanoamperes (large cells). Outside, the numbers are in another unit.
CURRENT_RANGE_NA = (1e-3, 100.0)
_CURRENT_UNITS = {"fA": 1e-6, "pA": 1e-3, "nA": 1.0, "uA": 1e3, "mA": 1e6, "A": 1e9}
_VOLTAGE_UNITS = {"uV": 1e-3, "mV": 1.0, "V": 1e3}


def _likely_unit(peak: float, units: dict, typical: float) -> str:
    """The unit in which ``peak`` is nearest ``typical`` (in nA or mV), on a log scale."""
    return min(units, key=lambda unit: abs(np.log10(peak * units[unit] / typical)))


def check_current_range(values, unit: str, where: str) -> None:
    """Refuse an injected current whose peak lies outside :data:`CURRENT_RANGE_NA`.

    Args:
        values: the current as stored, in ``unit``.
        unit: its unit (a key of ``TO_NANOAMPERES``, any case).
        where: what the current is, for the message (a file's field).

    Raises:
        ValueError: naming the peak, the range and the unit the numbers look like.
    """
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    peak = float(magnitude[np.isfinite(magnitude)].max(initial=0.0))
    if peak == 0.0:  # no step at all: detect_step says so
        return
    in_nanoamperes = peak * TO_NANOAMPERES[_unit_key(unit)]
    low, high = CURRENT_RANGE_NA
    if low <= in_nanoamperes <= high:
        return
    likely = _likely_unit(peak, _CURRENT_UNITS, typical=0.2)
    raise ValueError(
        f"{where} peaks at {peak:.4g} {unit}, which is {in_nanoamperes:.4g} nA: outside the range of injected "
        f"currents ({low * 1000:g} pA to {high:g} nA). The numbers look like {likely}: convert them or label them so"
    )


def _require_finite(array: np.ndarray, what: str) -> None:
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"{what} holds {bad.size} NaN/inf values (first at index {bad[0]}); expected finite numbers throughout"
        )


@dataclass(frozen=True, eq=False)  # eq on arrays would be ambiguous, so identity it is
class Recording:
    """One current-clamp sweep: voltage (mV) and injected current (nA) sampled every ``dt`` ms.

    ``stim_on``/``stim_off`` bound the current step in ms from the sweep start; ``stim_off``
    is the time of the step's last sample, the convention of the Allen reference files.

    Args:
        voltage: the membrane potential (mV), shape ``(num_samples,)``.
        current: the injected current (nA), shape ``(num_samples,)``.
        dt: the sampling interval (ms), > 0.
        stim_on: the start of the current step (ms from the sweep start).
        stim_off: the time of the step's last sample (ms).
        name: a name for the sweep (the file's stem when loaded).
        source: where the sweep comes from (the file's path when loaded).

    Raises:
        ValueError: the arrays are not 1-D of one length >= 2 or not finite, ``dt`` is not
            > 0, the voltage or current is not in mV or nA by its range, or the step times
            are invalid.
    """

    voltage: np.ndarray
    current: np.ndarray
    dt: float
    stim_on: float
    stim_off: float
    name: str
    source: str

    def __post_init__(self):
        where = f"recording {self.name!r}"
        # Copied and read-only, so a frozen Recording cannot change under its user.
        voltage = np.array(self.voltage, dtype=np.float32)
        current = np.array(self.current, dtype=np.float32)
        if voltage.ndim != 1 or voltage.shape != current.shape or voltage.size < 2:
            raise ValueError(
                f"{where}: voltage and current must be 1-D of the same length "
                f">= 2; got shapes {voltage.shape} and {current.shape}"
            )
        _require_finite(voltage, f"{where}: voltage")
        _require_finite(current, f"{where}: current")
        dt = float(self.dt)
        if not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"{where}: dt must be a positive number of ms; got {dt}")
        peak = float(np.abs(voltage).max())
        if peak < 1.0:
            raise ValueError(
                f"{where}: voltage looks like volts (max |V| = {peak:.3g}); expected millivolts, multiply by 1000"
            )
        if peak > 1000.0:
            likely = _likely_unit(peak, _VOLTAGE_UNITS, typical=60.0)
            raise ValueError(
                f"{where}: voltage reaches |V| = {peak:.4g}, not a membrane "
                f"potential in millivolts (expected within +-1000 mV); the numbers "
                f"look like {likely}"
            )
        check_current_range(current, "nA", f"{where}: current")
        duration = voltage.size * dt
        if not 0.0 <= self.stim_on < self.stim_off <= duration:
            raise ValueError(
                f"{where}: need 0 <= stim_on < stim_off <= duration; got "
                f"stim_on={self.stim_on}, stim_off={self.stim_off}, "
                f"duration={duration} ms"
            )
        for array in (voltage, current):
            array.setflags(write=False)
        for field, value in (
            ("voltage", voltage),
            ("current", current),
            ("dt", dt),
            ("stim_on", float(self.stim_on)),
            ("stim_off", float(self.stim_off)),
        ):
            object.__setattr__(self, field, value)

    @property
    def num_samples(self) -> int:
        return int(self.voltage.size)

    @property
    def duration(self) -> float:
        """Length of the sweep in ms (samples times dt)."""
        return self.num_samples * self.dt

    @property
    def time(self) -> np.ndarray:
        """Sample times in ms from the start of the sweep."""
        return np.arange(self.num_samples) * self.dt

    @property
    def stimulus_amplitude(self) -> float:
        """Median injected current (nA) over [stim_on, stim_off); robust to edge samples."""
        first = int(round(self.stim_on / self.dt))
        stop = max(int(round(self.stim_off / self.dt)), first + 1)
        return float(np.median(self.current[first:stop]))

    def window(self, start_ms: float, stop_ms: float) -> Recording:
        """A copy cropped to [start_ms, stop_ms), with the step times shifted to match.

        Args:
            start_ms: the start of the window (ms from the sweep start).
            stop_ms: the end of the window (ms, excluded).

        Returns:
            The cropped :class:`Recording`.

        Raises:
            ValueError: the window is empty, outside the sweep, or misses the current step.
        """
        first, stop = int(round(start_ms / self.dt)), int(round(stop_ms / self.dt))
        if not 0 <= first < stop <= self.num_samples:
            raise ValueError(f"window [{start_ms}, {stop_ms}) ms is empty or outside the sweep [0, {self.duration}) ms")
        offset, length = first * self.dt, (stop - first) * self.dt
        stim_on = min(max(self.stim_on - offset, 0.0), length)
        stim_off = min(max(self.stim_off - offset, 0.0), length)
        if stim_on >= stim_off:
            raise ValueError(
                f"window [{start_ms}, {stop_ms}) ms misses the current step [{self.stim_on}, {self.stim_off}] ms"
            )
        return replace(
            self, voltage=self.voltage[first:stop], current=self.current[first:stop], stim_on=stim_on, stim_off=stim_off
        )


def detect_step(current: np.ndarray, dt: float) -> tuple[float, float]:
    """(stim_on, stim_off) in ms: the longest run of samples where ``|I|`` > half its peak.

    The longest run, rather than first-to-last, so a short test pulse before the step
    (Allen sweeps have one) does not stretch the window. stim_off is the time of the
    run's last sample, matching the Allen reference files (205.0 .. 1204.98 ms).

    Args:
        current: the injected current, shape ``(num_samples,)``.
        dt: the sampling interval (ms).

    Returns:
        ``(stim_on, stim_off)`` in ms.

    Raises:
        ValueError: the current is not finite, is zero throughout, or its largest value lasts one sample.
    """
    magnitude = np.abs(np.asarray(current, dtype=np.float64))
    _require_finite(magnitude, "current")
    peak = magnitude.max(initial=0.0)
    if peak == 0.0:
        raise ValueError("holds no current step: the injected current is zero throughout")
    above = np.concatenate(([0], (magnitude > peak / 2).astype(np.int8), [0]))
    edges = np.flatnonzero(np.diff(above))
    starts, stops = edges[::2], edges[1::2]
    longest = int(np.argmax(stops - starts))
    first, last = int(starts[longest]), int(stops[longest]) - 1
    if first == last:
        raise ValueError("holds no current step: the largest current lasts one sample")
    return first * dt, last * dt


def load_recording(path: str | os.PathLike, *, sweep: int | None = None) -> Recording:
    """Read one current-clamp sweep from ``path`` (.npz, .nwb, .abf or .csv), in mV/nA/ms.

    Args:
        path: the file: ``.npz``, ``.nwb``, ``.abf`` or ``.csv``.
        sweep: the sweep of a multi-sweep format (NWB: sweep_number, ABF: index); by
            default the first. Must be None for ``.npz`` and ``.csv``.

    Returns:
        The :class:`Recording`, named after the file.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: an unknown suffix, an unreadable file, or one without a current-clamp sweep.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such recording file: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown recording format {suffix!r}; supported: {', '.join(SUFFIXES)}")
    if sweep is not None and suffix in (".npz", ".csv"):
        raise ValueError(f"{path}: a {suffix} file holds a single sweep; leave sweep=None")
    loader = {".npz": _load_npz, ".nwb": _load_nwb, ".abf": _load_abf, ".csv": _load_csv}
    voltage, current, dt, window = loader[suffix](path, sweep)
    try:
        stim_on, stim_off = window if window is not None else detect_step(current, dt)
        return Recording(voltage, current, dt, stim_on, stim_off, path.stem, str(path))
    except ValueError as error:  # say which file the problem is in
        raise ValueError(f"{path}: {error}") from None


def _unit_key(unit) -> str:
    return (unit.decode() if isinstance(unit, bytes) else str(unit)).strip("\x00 ").lower()


def _unit_factor(unit, table: dict, what: str, path: Path) -> float:
    if _unit_key(unit) not in table:
        raise ValueError(f"{path}: {what} unit {_unit_key(unit)!r} not understood; expected one of {sorted(table)}")
    return table[_unit_key(unit)]


def _load_npz(path: Path, sweep):
    # Our own file handle: np.load leaks its handle when the zip directory is corrupt.
    with open(path, "rb") as handle:
        try:
            archive = np.load(handle, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not named arrays")
            values = {key: archive[key] for key in NPZ_KEYS if key in archive}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: cannot read as a NumPy .npz archive ({exc})") from exc
    missing = [key for key in NPZ_KEYS if key not in values]
    if missing:
        raise ValueError(
            f"{path}: missing keys {missing}; expected the Allen layout "
            f"{', '.join(NPZ_KEYS)} (see shared/reference/allen_cell_types)"
        )
    check_current_range(values["current_uA"], "uA", f"{path}: current_uA")
    current = values["current_uA"].astype(np.float64) * TO_NANOAMPERES["ua"]
    window = (float(values["stim_on_ms"]), float(values["stim_off_ms"]))
    return values["voltage_mV"], current, float(values["dt_ms"]), window


def _load_csv(path: Path, sweep):
    try:
        lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: cannot read as CSV text ({exc})") from exc
    columns = [name.strip() for name in (lines[0].split(",") if lines else [])]
    wanted = {
        "time": {"time_ms": 1.0},
        "voltage": {f"voltage_{u}": TO_MILLIVOLTS[u.lower()] for u in ("mV", "V")},
        "current": {f"current_{u}": TO_NANOAMPERES[u.lower()] for u in ("nA", "pA", "A")},
    }
    found = {what: next(((c, f) for c, f in options.items() if c in columns), None) for what, options in wanted.items()}
    missing = [" or ".join(wanted[what]) for what, hit in found.items() if hit is None]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; header has {columns}")
    if len(lines) < 3:  # checked first: loadtxt warns rather than fails on no rows
        raise ValueError(f"{path}: expected a header and >= 2 rows; got {len(lines)} lines")
    try:
        table = np.loadtxt(lines[1:], delimiter=",", ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: rows below the header are not all numbers ({exc})") from exc
    if table.shape[1] != len(columns):
        raise ValueError(f"{path}: header names {len(columns)} columns, rows hold {table.shape[1]}")
    current_column = found["current"][0]
    check_current_range(
        table[:, columns.index(current_column)], current_column.split("_")[1], f"{path}: column {current_column}"
    )
    time, voltage, current = (table[:, columns.index(c)] * f for c, f in found.values())
    steps = np.diff(time)
    dt = (time[-1] - time[0]) / (time.size - 1)
    if not dt > 0 or np.max(np.abs(steps - dt)) > 1e-6 * dt:
        raise ValueError(
            f"{path}: time_ms must increase in uniform steps (within 1e-6 "
            f"relative); steps range {steps.min()} .. {steps.max()} ms"
        )
    return voltage, current, dt, None


def _load_abf(path: Path, sweep):
    import pyabf  # imported here: only .abf users need it

    try:
        abf = pyabf.ABF(str(path))
    except Exception as exc:  # pyabf signals a bad file with assorted exception types
        raise ValueError(f"{path}: cannot read as an Axon .abf file ({exc})") from exc
    index = 0 if sweep is None else sweep
    if index not in abf.sweepList:
        raise ValueError(f"{path}: has no sweep {sweep}; available: {list(abf.sweepList)}")
    abf.setSweep(index)
    if _unit_key(abf.sweepUnitsY) in TO_NANOAMPERES:
        raise ValueError(
            f"{path}: holds no current-clamp sweep (recorded channel is in "
            f"{abf.sweepUnitsY}, a voltage-clamp recording)"
        )
    voltage = abf.sweepY * _unit_factor(abf.sweepUnitsY, TO_MILLIVOLTS, "voltage", path)
    command = np.asarray(abf.sweepC, dtype=np.float64)
    if np.all(np.isnan(command)):
        raise ValueError(f"{path}: has no command waveform (empty epoch table), so the injected current is unknown")
    # Blank DAC units are common in ABF1; Clampex commands current clamp in pA.
    command_unit = _unit_key(abf.sweepUnitsC) or "pa"
    current = command * _unit_factor(command_unit, TO_NANOAMPERES, "command", path)
    check_current_range(command, command_unit, f"{path}: the command waveform")
    return voltage, current, 1000.0 / abf.dataRate, None


def _load_nwb(path: Path, sweep):
    try:
        with h5py.File(path, "r") as h5:
            is_nwb1 = "nwb_version" in h5  # NWB 1 keeps it as a dataset, NWB 2 as an attribute
    except OSError as exc:
        raise ValueError(f"{path}: cannot read as an HDF5/NWB file ({exc})") from exc
    if is_nwb1:
        recording = _read_allen_nwb1(path, sweep)
        return (recording.voltage, recording.current, recording.dt, (recording.stim_on, recording.stim_off))
    from pynwb import NWBHDF5IO  # imported here: pynwb is slow to import
    from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

    with ExitStack() as stack:
        try:
            nwb = stack.enter_context(NWBHDF5IO(str(path), "r")).read()
        except Exception as exc:  # hdmf reports malformed files with many exception types
            raise ValueError(f"{path}: cannot read as an NWB 2 file ({exc})") from exc
        clamps = [s for s in nwb.acquisition.values() if isinstance(s, CurrentClampSeries)]
        if not clamps:
            found = sorted({type(s).__name__ for s in nwb.acquisition.values()})
            raise ValueError(
                f"{path}: holds no current-clamp sweep (no CurrentClampSeries "
                f"in acquisition; found {found or 'nothing'})"
            )
        numbers = [None if s.sweep_number is None else int(s.sweep_number) for s in clamps]
        if sweep is None:
            series = clamps[0]
        elif sweep in numbers:
            series = clamps[numbers.index(sweep)]
        elif all(n is None for n in numbers) and 0 <= sweep < len(clamps):
            series = clamps[sweep]  # unnumbered sweeps: sweep is a position
        else:
            raise ValueError(f"{path}: has no sweep {sweep}; sweep numbers: {numbers}")
        stimuli = [s for s in nwb.stimulus.values() if isinstance(s, CurrentClampStimulusSeries)]
        if not stimuli:
            raise ValueError(f"{path}: has no CurrentClampStimulusSeries, so the injected current is unknown")
        matching = [s for s in stimuli if s.sweep_number is not None and s.sweep_number == series.sweep_number]
        stimulus = (matching or stimuli)[0]
        voltage = _nwb2_values(series, TO_MILLIVOLTS, "voltage", path)
        current = _nwb2_values(stimulus, TO_NANOAMPERES, "stimulus", path)
        if series.rate is not None:
            dt = 1000.0 / series.rate
        else:
            dt = 1000.0 * float(np.median(np.diff(np.asarray(series.timestamps[:]))))
    return voltage, current, dt, None


def _nwb2_values(series, table: dict, what: str, path: Path) -> np.ndarray:
    stored = np.asarray(series.data[:], dtype=np.float64)
    in_unit = stored * series.conversion + (getattr(series, "offset", 0.0) or 0.0)
    factor = _unit_factor(series.unit, table, what, path)
    if table is TO_NANOAMPERES:
        check_current_range(in_unit, _unit_key(series.unit), f"{path}: the {what} ({series.name})")
    return in_unit * factor


def _read_allen_nwb1(path: str | os.PathLike, sweep_number: int | None) -> Recording:
    """One sweep of an Allen NWB 1 file (``epochs/Sweep_<n>/{response,stimulus}``), via h5py."""
    path = Path(path)
    with h5py.File(path, "r") as h5:
        epochs = h5.get("epochs", {})
        available = sorted(int(name[6:]) for name in epochs if re.fullmatch(r"Sweep_\d+", name))
        if not available:
            raise ValueError(f"{path}: holds no current-clamp sweep (no epochs/Sweep_<n>)")
        number = available[0] if sweep_number is None else sweep_number
        if number not in available:
            raise ValueError(f"{path}: has no sweep {number}; available: {available}")
        group = epochs[f"Sweep_{number}"]
        try:
            traces = {part: group[f"{part}/timeseries/data"] for part in ("response", "stimulus")}
            rate = float(group["response/timeseries/starting_time"].attrs["rate"])
        except KeyError as exc:
            raise ValueError(f"{path}: Sweep_{number} is not in the Allen NWB 1 layout (missing {exc})") from exc
        units = {
            part: traces[part].attrs.get("unit", default)
            for part, default in (("response", "volts"), ("stimulus", "amperes"))
        }
        if _unit_key(units["response"]) in TO_NANOAMPERES:
            raise ValueError(
                f"{path}: sweep {number} holds no current-clamp sweep (response is a current: voltage clamp)"
            )
        values = {
            part: np.asarray(traces[part][()], dtype=np.float64) * float(traces[part].attrs.get("conversion", 1.0))
            for part in traces
        }
    voltage = values["response"] * _unit_factor(units["response"], TO_MILLIVOLTS, "voltage", path)
    current = values["stimulus"] * _unit_factor(units["stimulus"], TO_NANOAMPERES, "stimulus", path)
    check_current_range(values["stimulus"], _unit_key(units["stimulus"]), f"{path}: sweep {number}'s stimulus")
    dt = 1000.0 / rate
    stim_on, stim_off = detect_step(current, dt)
    return Recording(voltage, current, dt, stim_on, stim_off, f"{path.stem}_sweep_{number}", str(path))


def allen_recordings() -> list[Path]:
    """The Allen Cell Types ``.npz`` sweeps in the shared reference data, sorted by name."""
    folder = reference_dir() / "allen_cell_types"
    if not folder.is_dir():
        raise FileNotFoundError(f"no Allen recordings folder at {folder}")
    return sorted(folder.glob("*.npz"))


def _require_allen_url(url: str) -> str:
    """``url`` if it is https on one of :data:`ALLEN_HOSTS` (no user, no port), else ValueError."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or parts.netloc not in ALLEN_HOSTS:
        raise ValueError(f"refusing to fetch {url!r}: only https from {', '.join(sorted(ALLEN_HOSTS))}")
    return url


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme != "https":
            raise ValueError(f"refusing a redirect from {req.full_url} to {newurl!r}: not https")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _http_get(url: str) -> bytes:
    _require_allen_url(url)
    opener = urllib.request.build_opener(_HttpsOnlyRedirects)
    with opener.open(url, timeout=120) as response:
        return response.read()


def _allen_download_url(link, specimen_id: int) -> str:
    """The download URL of a link from the Allen API's reply: a path on :data:`ALLEN_HOST`
    (never host + text, which ``@other.host/x`` would turn into another host)."""
    parts = urllib.parse.urlsplit(link) if isinstance(link, str) else None
    if parts is None or parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.fragment:
        raise ValueError(
            f"the Allen API's download link for specimen {specimen_id} is {link!r}, not a path on "
            f"{ALLEN_HOST}; refusing it"
        )
    host = urllib.parse.urlsplit(ALLEN_HOST).netloc
    return _require_allen_url(urllib.parse.urlunsplit(("https", host, parts.path, parts.query, "")))


def _natural_number(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"fetch_allen_sweep: {name} must be an integer, got {type(value).__name__} {value!r:.40}")
    if value < 0:
        raise ValueError(f"fetch_allen_sweep: {name} must be >= 0, got {value}")
    return int(value)


def _is_nwb(path: Path) -> bool:
    """Whether ``path`` opens as an HDF5 file in an NWB layout (1 or 2)."""
    try:
        with h5py.File(path, "r") as h5:
            return "nwb_version" in h5 or "nwb_version" in h5.attrs
    except (OSError, ValueError):
        return False


def fetch_allen_sweep(
    specimen_id: int, sweep_number: int, *, cache_dir=None, download: Callable[[str], bytes] | None = None
) -> Recording:
    """Sweep ``sweep_number`` of Allen Cell Types specimen ``specimen_id``, downloading its NWB.

    The file is cached as ``cache_dir/<specimen_id>.nwb`` (default
    ``~/.cache/helmholtz/allen``); a cached file is read without touching the network. It
    is downloaded over https from the Allen Institute's hosts only (:data:`ALLEN_HOSTS`),
    and cached only once it opens as NWB and holds the sweep (through a temporary file
    renamed into place); a cached file that no longer opens as NWB is downloaded again.

    Args:
        specimen_id: the specimen, a non-negative integer.
        sweep_number: the sweep, a non-negative integer.
        cache_dir: the cache folder.
        download: ``download(url) -> bytes`` replaces the HTTP client (tests inject a fake one).

    Returns:
        The sweep, named ``cell_<specimen_id>_sweep_<sweep_number>``.
    """
    specimen_id = _natural_number(specimen_id, "specimen_id")
    sweep_number = _natural_number(sweep_number, "sweep_number")
    cache = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache/helmholtz/allen"
    path = cache / f"{specimen_id}.nwb"
    name = f"cell_{specimen_id}_sweep_{sweep_number}"
    if path.is_file():
        if _is_nwb(path):  # then a missing sweep is the recording's, not the cache's, fault
            return replace(load_recording(path, sweep=sweep_number), name=name)
        warnings.warn(f"the cached {path} does not open as an NWB file; downloading it again", stacklevel=2)
    download = download or _http_get
    reply = download(_require_allen_url(ALLEN_QUERY.format(specimen_id=specimen_id)))
    try:
        listing = json.loads(reply)
        link = listing["msg"][0]["ephys_result"]["well_known_files"][0]["download_link"]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(
            f"the Allen API lists no NWB file for specimen {specimen_id} "
            "(is it a Cell Types specimen with electrophysiology?)"
        ) from exc
    payload = download(_allen_download_url(link, specimen_id))
    # An HTML error page must not be cached as if it were the recording.
    if not isinstance(payload, bytes) or not payload.startswith(b"\x89HDF\r\n\x1a\n"):
        raise ValueError(f"download for specimen {specimen_id} is not an HDF5/NWB file")
    # Checked under a temporary name, then renamed: the cache only ever holds checked files.
    staging = cache / f".{specimen_id}.{os.getpid()}.download.nwb"
    try:
        write_bytes_atomically(staging, payload)
        try:
            recording = load_recording(staging, sweep=sweep_number)
        except ValueError as error:
            raise ValueError(
                f"download for specimen {specimen_id} is not a usable NWB file with sweep {sweep_number}: {error}"
            ) from None
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return replace(recording, name=name, source=str(path))
