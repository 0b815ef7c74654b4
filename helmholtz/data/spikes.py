"""Spike trains: a real recording (grasshopper auditory receptors, shipped by nitime) and
synthetic population spiking driven by a Lorenz attractor (as the LFADS papers make it).

``load_grasshopper`` reads nitime's files: spike times in microseconds, one per line after
a ``#`` header, and a stimulus table (time in microseconds, sound pressure in pascals)
sampled at 20 kHz; Rokem et al. (2006) recorded it intracellularly from a receptor of
*Locusta migratoria* while playing a 200 Hz (file 1) or 800 Hz (file 2) cut-off
amplitude-modulated tone.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

REFERENCE_PRESSURE_PA = 2.0e-5  # 0 dB SPL


@dataclass(frozen=True)
class SpikeRecording:
    """One spike train with the stimulus that evoked it. Times in seconds; ``stimulus``
    sampled every ``stimulus_dt`` seconds from 0, in ``stimulus_units``.

    Args:
        spike_times: the spike times (s), increasing, shape ``(num_spikes,)``.
        stimulus: the stimulus, shape ``(num_samples,)``.
        stimulus_dt: the stimulus's sampling interval (s).
        stimulus_units: the stimulus's units (e.g. ``"dB SPL"``).
        duration: the length of the recording (s).
        metadata: anything else known about the recording, by name.
    """

    spike_times: np.ndarray
    stimulus: np.ndarray
    stimulus_dt: float
    stimulus_units: str
    duration: float
    metadata: dict

    def binned(self, bin_width: float) -> tuple[np.ndarray, np.ndarray]:
        """Spike counts per bin and the stimulus averaged over each bin.

        Args:
            bin_width: the bin width (s), a multiple of ``stimulus_dt``.

        Returns:
            ``(counts, stimulus)``, each shape ``(num_bins,)`` with ``num_bins = floor(duration / bin_width)``.

        Raises:
            ValueError: ``bin_width`` is not a multiple of the stimulus step.
        """
        num_bins = int(np.floor(self.duration / bin_width + 1e-9))
        edges = np.arange(num_bins + 1) * bin_width
        counts = np.histogram(self.spike_times, edges)[0]
        samples_per_bin = int(round(bin_width / self.stimulus_dt))
        if abs(samples_per_bin * self.stimulus_dt - bin_width) > 1e-9 or samples_per_bin < 1:
            raise ValueError(f"bin_width {bin_width} s must be a multiple of the stimulus step {self.stimulus_dt} s")
        stimulus = self.stimulus[: num_bins * samples_per_bin].reshape(num_bins, samples_per_bin).mean(1)
        return counts, stimulus


def _nitime_data_dir() -> Path:
    spec = importlib.util.find_spec("nitime")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the grasshopper recordings ship with nitime: `pip install nitime`")
    return Path(spec.origin).parent / "data"


def _read_header(path: Path) -> dict:
    """The ``# key: value`` lines at the top of a nitime grasshopper file."""
    header = {}
    with open(path) as lines:
        for line in lines:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
    return header


def _read_columns(path: Path, num_columns: int) -> np.ndarray:
    try:
        values = np.loadtxt(path, comments="#", ndmin=2)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except ValueError as error:
        raise ValueError(f"{path}: not a numeric table ({error})") from None
    if values.shape[1] != num_columns or values.shape[0] == 0:
        raise ValueError(f"{path}: expected {num_columns} numeric column(s), got shape {values.shape}")
    return values


def load_grasshopper(recording: int = 1, data_dir: str | os.PathLike | None = None) -> SpikeRecording:
    """Recording 1 or 2 of nitime's grasshopper receptor (10 s), stimulus in dB SPL;
    ``metadata`` holds the spike file's header (carrier frequency, cut-off, ...).

    ``data_dir`` overrides where ``grasshopper_spike_times{n}.txt`` and
    ``grasshopper_stimulus{n}.txt`` are read from (default: nitime's data folder).

    Args:
        recording: 1 or 2.
        data_dir: the folder of the files (default: nitime's data folder).

    Returns:
        The :class:`SpikeRecording`.

    Raises:
        ValueError: ``recording`` is not 1 or 2, or the files are not as expected.
        FileNotFoundError: a file is missing, or nitime is not installed (without ``data_dir``).
    """
    if recording not in (1, 2):
        raise ValueError(f"recording must be 1 or 2, got {recording!r}")
    folder = Path(data_dir) if data_dir is not None else _nitime_data_dir()
    spikes_us = _read_columns(folder / f"grasshopper_spike_times{recording}.txt", 1)[:, 0]
    stimulus = _read_columns(folder / f"grasshopper_stimulus{recording}.txt", 2)
    steps = np.diff(stimulus[:, 0])
    if not np.allclose(steps, steps[0]) or steps[0] <= 0:
        raise ValueError(f"{folder}: the stimulus must be sampled at a constant step")
    if np.any(stimulus[:, 1] <= 0):
        raise ValueError(f"{folder}: sound pressures must be positive to be expressed in dB SPL")
    if np.any(np.diff(spikes_us) <= 0):
        raise ValueError(f"{folder}: spike times must increase")
    dt = steps[0] * 1e-6
    return SpikeRecording(
        spike_times=spikes_us * 1e-6,
        stimulus=20.0 * np.log10(stimulus[:, 1] / REFERENCE_PRESSURE_PA),
        stimulus_dt=dt,
        stimulus_units="dB SPL",
        duration=len(stimulus) * dt,
        metadata=_read_header(folder / f"grasshopper_spike_times{recording}.txt"),
    )


@dataclass(frozen=True)
class LorenzSpikes:
    """Synthetic population spiking: Poisson spike counts, their true rates and the Lorenz
    latents that drive them.

    Args:
        counts: the spike counts, shape ``(num_trials, num_bins, num_neurons)``.
        rates: the true rates (spikes per bin), shape ``(num_trials, num_bins, num_neurons)``.
        latents: the standardised Lorenz states, shape ``(num_trials, num_bins, 3)``.
        readout: the read-out of the log-rates from the state, shape ``(num_neurons, 3)``.
        baseline: the log-rate of each neuron at the state's mean, shape ``(num_neurons,)``.
        bin_width: the bin width (s).
    """

    counts: np.ndarray
    rates: np.ndarray
    latents: np.ndarray
    readout: np.ndarray
    baseline: np.ndarray
    bin_width: float


def _lorenz(t, state, args):
    sigma, rho, beta = args
    x, y, z = state
    return jnp.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])


def lorenz_trajectory(initial_state, times, params=(10.0, 28.0, 8.0 / 3.0), tolerance: float = 1e-6) -> jnp.ndarray:
    """The Lorenz system's state from ``initial_state`` at times[0] (Diffrax, Tsit5,
    relative and absolute ``tolerance`` per step).

    Args:
        initial_state: the state at ``times[0]``, shape ``(3,)``.
        times: the times to report, increasing, shape ``(num_times,)``.
        params: ``(sigma, rho, beta)``.
        tolerance: the solver's relative and absolute tolerance.

    Returns:
        The states, shape ``(num_times, 3)``.
    """
    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(_lorenz),
        diffrax.Tsit5(),
        times[0],
        times[-1],
        1e-3,
        jnp.asarray(initial_state),
        args=params,
        saveat=diffrax.SaveAt(ts=times),
        stepsize_controller=diffrax.PIDController(rtol=tolerance, atol=tolerance),
        max_steps=1_000_000,
    )
    return solution.ys


def lorenz_spikes(
    key,
    num_trials: int = 100,
    num_neurons: int = 30,
    num_bins: int = 100,
    bin_width: float = 0.001,
    lorenz_time_per_bin: float = 0.006,
    baseline_rate_hz: float = 5.0,
    readout_scale: float = 1.0,
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
) -> LorenzSpikes:
    """Poisson spikes whose log-rates are a random linear read-out of a Lorenz system.

    Following Sussillo et al. (2016) and Pandarinath et al. (2018): each trial is a
    stretch of ``num_bins`` x ``lorenz_time_per_bin`` units of Lorenz time starting at a
    random point of the attractor (windows of one long Diffrax run past a burn-in), the
    state is standardised over all trials, and
    log rate = log(``baseline_rate_hz`` x ``bin_width``) + readout @ state with readout
    entries N(0, ``readout_scale**2 / 3``). Spikes are Poisson per bin.

    Args:
        key: a JAX PRNG key or an int seed.
        num_trials: the number of trials.
        num_neurons: the number of neurons.
        num_bins: the number of time bins per trial.
        bin_width: the bin width (s).
        lorenz_time_per_bin: units of Lorenz time per bin.
        baseline_rate_hz: each neuron's rate (Hz) at the state's mean.
        readout_scale: the scale of the read-out weights.
        sigma: the Lorenz system's sigma.
        rho: the Lorenz system's rho.
        beta: the Lorenz system's beta.

    Returns:
        A :class:`LorenzSpikes`, counts shaped ``(num_trials, num_bins, num_neurons)``.

    Raises:
        ValueError: a count is not a positive integer.
    """
    for name, value in (("num_trials", num_trials), ("num_neurons", num_neurons), ("num_bins", num_bins)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"lorenz_spikes: {name} must be a positive integer, got {value!r}")
    start_key, offset_key, readout_key, spike_key = jax.random.split(
        jax.random.PRNGKey(key) if isinstance(key, int) else key, 4
    )
    # One long run (a single compiled solve) past a burn-in onto the attractor, sampled
    # at the trials' resolution; trials are windows of it at random offsets.
    burn_in, num_points = 50.0, max(num_trials, 20) * num_bins
    times = burn_in + jnp.arange(num_points) * lorenz_time_per_bin
    start = jnp.ones(3) + jax.random.normal(start_key, (3,))
    run = lorenz_trajectory(start, jnp.concatenate([jnp.zeros(1), times]), (sigma, rho, beta))[1:]
    offsets = jax.random.randint(offset_key, (num_trials,), 0, num_points - num_bins + 1)
    latents = jax.vmap(lambda offset: jax.lax.dynamic_slice_in_dim(run, offset, num_bins))(offsets)
    latents = (latents - latents.mean((0, 1))) / latents.std((0, 1))
    readout = readout_scale / np.sqrt(3.0) * jax.random.normal(readout_key, (num_neurons, 3))
    baseline = jnp.full(num_neurons, np.log(baseline_rate_hz * bin_width))
    rates = jnp.exp(latents @ readout.T + baseline)
    counts = jax.random.poisson(spike_key, rates)
    return LorenzSpikes(
        counts=np.asarray(counts, dtype=np.int64),
        rates=np.asarray(rates),
        latents=np.asarray(latents),
        readout=np.asarray(readout),
        baseline=np.asarray(baseline),
        bin_width=bin_width,
    )
