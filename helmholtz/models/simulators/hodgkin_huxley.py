"""Single-compartment Hodgkin-Huxley neurons driven by an injected current.

Two channel sets (see :mod:`helmholtz.models.simulators.channels`): the classic squid axon
(NEURON's ``hh``) and the cortical neuron of Pospischil et al. (2008) that Goncalves et al.
(2020) fit to the Allen Cell Types recordings. Which parameters are free (with their
priors) and which are held at fixed values is part of the declaration, so the same class
serves the 8-parameter Allen fit and a 2-parameter teaching example.

    rec = hz.data.load_recording("cell.npz")
    hh = hz.models.HodgkinHuxley.cortical(recording=rec)
    fit = hz.fit(hh, rec.voltage, method="npe", num_simulations=20_000)

A simulation integrates with exponential Euler at the stimulus's sampling interval in a
``lax.scan``; intrinsic noise (``noise``, in uA/cm^2 sqrt(ms)) enters as white noise in the
current: ``noise / sqrt(dt)`` times a standard normal draw per step.

How it is made fast (measured on a 2-core AMD EPYC, one core, float32, batch 2,000 x
72,500 steps of the cortical model with noise; ``benchmarks/hh_throughput.py`` for more):
``simulate_summaries`` went from 1.2e7 to 4.2e7 simulation steps per second (CPU time), and
later to about 9.6e7 (512-bit vectors, the lagged products per block, lighter steps
outside the stimulus window). On a CPU the base class runs a chunk per core at a time.

* One batched integration: every batched method vmaps :meth:`HodgkinHuxley.simulate_one`,
  which (through ``jax.custom_batching.custom_vmap``) runs :meth:`_simulate_batch` on the
  whole batch with arrays laid out time-major, the batch contiguous. Vmapping the
  per-simulation code put the batch first and made XLA transpose every block.
* The steps run in blocks: an outer ``lax.scan`` over blocks, an inner one (unrolled 4x,
  +7%) over the steps of a block.
* The channel arithmetic shares exponentials and precomputes per-simulation constants
  (:mod:`~helmholtz.models.simulators.channels`; +10%).
* Noise is drawn a block at a time by a counter-based generator: draw ``j`` of a simulation
  is a hash of (the simulation's 64-bit seed, ``j``), made normal by an inverse error
  function (Giles' float32 approximation, written out: XLA's ``erf_inv`` measured 1.5x
  slower). The seed comes from the simulation's key (``jax.random.bits``), so the noise
  depends on the key alone: not on the chunking, the device count or the block size, and
  the traces and the streamed summaries see the same noise. Drawn with ``jax.random.normal``
  (threefry; rbg measured no faster on this CPU) the noise added 57% to a noiseless step.
* :meth:`HodgkinHuxley.simulate_summaries` never stores a trace: the summary statistics are
  accumulated while simulating (:class:`_FeatureStream`), with the definitions of
  :func:`~helmholtz.models.simulators.features.voltage_features`, which summarises stored
  traces; the two agree to float32 rounding. Computing them from a stored (batch, 72,500)
  trace cost twice the simulation.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from helmholtz._serialization import serializable
from helmholtz.models.simulators.base import Parameter, Simulator, Uniform, run_in_chunks
from helmholtz.models.simulators.channels import CHANNEL_SETS
from helmholtz.models.simulators.features import FEATURE_NAMES, voltage_features

# The soma area the sbi tutorial assumes (a 70 um diameter), used to turn a recorded
# current in nA into a current density when the cell's own area is not known.
DEFAULT_AREA_CM2 = math.pi * (70e-4) ** 2
# Steps per block of the traces (noise is drawn a block at a time): 64 to 128 measured
# fastest (256: -5%). The streamed summaries use blocks no longer than the 1 ms lag.
_BLOCK = 128
# Steps per iteration of the inner scan: +7% for the traces (no change for the summaries).
_UNROLL = 4
# The lags (ms) of the autocorrelation features, as voltage_features computes them.
_LAGS_MS = (1.0, 10.0)
_HEAVY_TAILED = ("stim_skewness", "stim_kurtosis")

# Goncalves et al. (2020), Allen section: the prior box of the 8 free parameters.
CORTICAL_PRIORS = (
    Uniform("g_Na", 0.5, 80.0, "mS/cm^2"),
    Uniform("g_K", 1e-4, 15.0, "mS/cm^2"),
    Uniform("g_leak", 1e-4, 0.6, "mS/cm^2"),
    Uniform("g_M", 1e-4, 0.6, "mS/cm^2"),
    Uniform("tau_max", 50.0, 3000.0, "ms"),
    Uniform("V_T", -90.0, -40.0, "mV"),
    Uniform("noise", 1e-4, 0.15, "uA/cm^2 sqrt(ms)"),
    Uniform("E_leak", -130.0, -50.0, "mV"),
)
CLASSIC_PRIORS = (
    Uniform("g_Na", 50.0, 200.0, "mS/cm^2"),
    Uniform("g_K", 10.0, 60.0, "mS/cm^2"),
)


def step_current(amplitude: float, *, duration: float, dt: float, stim_on: float, stim_off: float) -> np.ndarray:
    """A current step of ``amplitude`` (uA/cm^2) between stim_on and stim_off (ms).

    Args:
        amplitude: the current density during the step (uA/cm^2).
        duration: the length of the current (ms).
        dt: the time step (ms).
        stim_on: the start of the step (ms).
        stim_off: the end of the step (ms).

    Returns:
        The current density per time step, float32, shape ``(num_steps,)`` with
        ``num_steps = round(duration / dt)``.

    Raises:
        ValueError: ``dt`` or ``duration`` is not a positive number.
    """
    if not (math.isfinite(dt) and dt > 0 and math.isfinite(duration) and duration > 0):
        raise ValueError(
            f"step_current: dt and duration must be positive numbers of ms, got dt={dt!r}, duration={duration!r}"
        )
    time = np.arange(int(round(duration / dt))) * dt
    return np.where((time >= stim_on) & (time < stim_off), amplitude, 0.0).astype(np.float32)


@serializable
@dataclass(frozen=True, eq=False)
class HodgkinHuxley(Simulator):
    """A Hodgkin-Huxley neuron; the observation is the voltage trace (one sample per step).

    Args:
        channels: ``"classic"`` or ``"cortical"``.
        current: injected current density per time step, uA/cm^2, shape ``(num_steps,)``.
        dt: time step (and sampling interval of the trace), ms.
        stim_on: the start of the stimulus window (ms) that the summary statistics use.
        stim_off: the end of that window (ms).
        priors: the free parameters and their priors (names of the channel set's constants).
        constants: values of non-free constants that differ from the channel set's defaults.
        v_init: membrane potential at t = 0 (gates start at their steady state there).
        precision: ``"float32"`` (fast) or ``"float64"`` (needs ``jax_enable_x64``).
        spike_threshold: the upward crossing that counts as a spike, mV.

    Raises:
        ValueError: an unknown channel set or parameter name, a current that is not a finite
            1-D array of at least 2 steps, a ``dt`` that is not positive, a stimulus window
            outside the trace, or an unknown precision.
    """

    channels: str
    current: np.ndarray
    dt: float
    stim_on: float
    stim_off: float
    priors: tuple = CORTICAL_PRIORS
    constants: dict = field(default_factory=dict)
    v_init: float = -70.0
    precision: str = "float32"
    spike_threshold: float = -10.0

    def __post_init__(self):
        if self.channels not in CHANNEL_SETS:
            raise ValueError(f"HodgkinHuxley: channels must be one of {sorted(CHANNEL_SETS)}, got {self.channels!r}")
        defaults = CHANNEL_SETS[self.channels][0]
        unknown = [name for name in [p.name for p in self.priors] + list(self.constants) if name not in defaults]
        if unknown:
            raise ValueError(f"HodgkinHuxley({self.channels}): unknown parameters {unknown}; known: {sorted(defaults)}")
        current = np.asarray(self.current, dtype=np.float32)
        if current.ndim != 1 or current.size < 2 or not np.isfinite(current).all():
            raise ValueError(
                f"HodgkinHuxley: current must be a finite 1-D array of at least 2 steps, got shape {current.shape}"
            )
        object.__setattr__(self, "current", current)
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"HodgkinHuxley: dt must be a positive number of ms, got {self.dt!r}")
        if not 0 <= self.stim_on < self.stim_off <= current.size * self.dt + 1e-9:
            raise ValueError(
                f"HodgkinHuxley: need 0 <= stim_on < stim_off <= duration ({current.size * self.dt} ms), "
                f"got {self.stim_on}, {self.stim_off}"
            )
        if self.precision not in ("float32", "float64"):
            raise ValueError(f"HodgkinHuxley: precision must be 'float32' or 'float64', got {self.precision!r}")

    # -- constructors ------------------------------------------------------------------
    @classmethod
    def cortical(
        cls, *, recording=None, current=None, dt=None, stim_on=None, stim_off=None, area_cm2=DEFAULT_AREA_CM2, **options
    ):
        """The Goncalves et al. (2020) model: from a :class:`~helmholtz.data.Recording`
        (its current in nA becomes a density over ``area_cm2``), or from a current density
        array with ``dt``, ``stim_on`` and ``stim_off``.

        Args:
            recording: a :class:`~helmholtz.data.Recording` to take the current, ``dt``, the
                stimulus window and (unless given) ``v_init`` from.
            current: the current density per time step (uA/cm^2), without a recording.
            dt: the time step (ms), without a recording.
            stim_on: the start of the stimulus window (ms), without a recording.
            stim_off: the end of the stimulus window (ms), without a recording.
            area_cm2: the membrane area the recording's current is spread over (cm^2).
            **options: further fields of :class:`HodgkinHuxley` (``priors``, ``v_init``...).

        Returns:
            A :class:`HodgkinHuxley` with the ``"cortical"`` channels.

        Raises:
            ValueError: neither a recording nor all of current, dt, stim_on and stim_off.
        """
        if recording is not None:
            current = np.asarray(recording.current) * 1e-3 / area_cm2
            dt, stim_on, stim_off = recording.dt, recording.stim_on, recording.stim_off
            options.setdefault("v_init", float(np.median(recording.voltage[: max(int(stim_on / dt), 1)])))
        if current is None or dt is None or stim_on is None or stim_off is None:
            raise ValueError("HodgkinHuxley.cortical needs a recording, or current, dt, stim_on and stim_off")
        return cls("cortical", current, dt, stim_on, stim_off, **options)

    @classmethod
    def classic(cls, *, amplitude=10.0, duration=50.0, dt=0.01, stim_on=5.0, stim_off=45.0, **options):
        """The squid axon of Hodgkin & Huxley (1952) under a current step (uA/cm^2).

        Args:
            amplitude: the current density during the step (uA/cm^2).
            duration: the length of the trace (ms).
            dt: the time step (ms).
            stim_on: the start of the step (ms).
            stim_off: the end of the step (ms).
            **options: further fields of :class:`HodgkinHuxley` (default ``priors``:
                the classic ones; ``v_init``: -65 mV).

        Returns:
            A :class:`HodgkinHuxley` with the ``"classic"`` channels.
        """
        options.setdefault("priors", CLASSIC_PRIORS)
        options.setdefault("v_init", -65.0)
        current = step_current(amplitude, duration=duration, dt=dt, stim_on=stim_on, stim_off=stim_off)
        return cls("classic", current, dt, stim_on, stim_off, **options)

    # -- the simulator protocol --------------------------------------------------------
    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return tuple(self.priors)

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (self.current.size,)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f"slog_{name}" if name in _HEAVY_TAILED else name for name in FEATURE_NAMES)

    @property
    def time(self) -> np.ndarray:
        return np.arange(self.current.size) * self.dt

    def full_parameters(self, theta) -> dict:
        """Every constant of the channel set, the free ones taken from ``theta``.

        Args:
            theta: parameter vectors, shape ``(num_theta,)``, or ``(num_simulations, num_theta)``
                for arrays over a batch.

        Returns:
            The constants by name, each a scalar or shape ``(num_simulations,)``.
        """
        dtype = jnp.dtype(self.precision)
        values = {**CHANNEL_SETS[self.channels][0], **self.constants}
        values = {name: jnp.asarray(value, dtype) for name, value in values.items()}
        values.update({name: jnp.asarray(theta[..., i], dtype) for i, name in enumerate(self.parameter_names)})
        return values

    def simulate_one(self, key, theta):
        """The voltage trace: ``v_init``, then V after each step (one sample per step).

        Under ``vmap`` (which is how every batched method calls it) this runs one batched
        integration (:func:`_batched`) rather than the per-simulation code vmapped, so
        that the arrays have the layout the CPU wants: time-major, the batch contiguous.

        Args:
            key: a JAX PRNG key (for the current noise, if any).
            theta: one parameter vector, shape ``(num_theta,)``.

        Returns:
            The trace (mV), shape ``(num_steps,)``.
        """
        return _batched(self, True)(key, theta)

    def simulate_summaries(
        self, key, theta, *, chunk_size: int | None = None, progress_bar: bool = False, devices=None
    ) -> np.ndarray:
        """Summary statistics (:data:`FEATURE_NAMES`) of fresh simulations, accumulated while
        simulating: no trace is stored. Equal, to float rounding, to
        ``summarize(simulate_batch(key, theta))`` (same keys, same noise).

        Args:
            key: a JAX PRNG key (or an integer seed); simulation i uses its i-th split.
            theta: parameter vectors, shape ``(num_simulations, num_theta)``.
            chunk_size: simulations per compiled call (None: the default).
            progress_bar: whether to show a progress bar.
            devices: the devices each chunk is spread over (default: every local device).

        Returns:
            The summaries, shape ``(num_simulations, 14)``.
        """
        return run_in_chunks(_streamed(self), "simulate", key, theta, chunk_size, progress_bar, devices)

    def summarize(self, x):
        """The features of :func:`voltage_features`, with the skewness and kurtosis on a signed log
        scale (``slog_``): across the prior they range from ~0 (a quiet trace) to
        hundreds (sparse spikes), and the density estimators z-score their inputs.

        Args:
            x: traces, shape ``(num_simulations, num_steps)``.

        Returns:
            The features, shape ``(num_simulations, 14)``.
        """
        features = voltage_features(x, self.dt, self.stim_on, self.stim_off, self.spike_threshold)
        return _scale_heavy_tailed(features)

    # -- the integration (private) -----------------------------------------------------
    @property
    def _noisy(self) -> bool:
        """Whether noise is drawn: the channel set has a noise term that is free or nonzero."""
        if self.channels not in CHANNEL_SETS or "noise" not in CHANNEL_SETS[self.channels].defaults:
            return False
        if "noise" in self.parameter_names:
            return True
        return float(self.constants.get("noise", CHANNEL_SETS[self.channels].defaults["noise"])) != 0.0

    def _simulate_batch(self, keys, theta, *, record: bool):
        """A batch of simulations (keys ``(n,)``, theta ``(n, d)``): their traces ``(n, T)``
        (``record``) or their streamed features ``(n, 14)``. State arrays are ``(n,)``,
        blocks of steps ``(block, n)``: time-major, the batch contiguous."""
        channel_set = CHANNEL_SETS[self.channels]
        # Not jax.config.jax_enable_x64: from JAX 0.11 it ignores `with jax.enable_x64(True)`.
        if self.precision == "float64" and jax.dtypes.canonicalize_dtype(jnp.float64) != jnp.float64:
            raise ValueError(
                "HodgkinHuxley(precision='float64') needs 64-bit JAX: run it inside "
                "`with jax.enable_x64(True):` or set jax.config.update('jax_enable_x64', True) first"
            )
        dtype = jnp.dtype(self.precision)
        params = self.full_parameters(theta)
        dt = jnp.asarray(self.dt, dtype)
        constants = channel_set.prepare(params, dt)
        step = channel_set.step
        num_samples, batch = self.current.size, theta.shape[0]
        stream = None if record else _FeatureStream(self, dtype)
        block = _BLOCK if record else stream.block
        num_blocks = -(-num_samples // block)
        current = jnp.asarray(
            np.pad(self.current, (0, num_blocks * block - num_samples)).reshape(num_blocks, block, 1), dtype
        )
        noisy = self._noisy
        if noisy:
            seeds = jax.vmap(lambda key: jax.random.bits(key, (2,), jnp.uint32))(keys).T  # (2, n)
            noise_scale = params["noise"] / jnp.sqrt(dt)
        offsets = jnp.arange(block, dtype=jnp.int32)

        def drives(block_index, block_current):
            """The injected current (block, n) of the steps of a block, noise included."""
            if not noisy:
                return jnp.broadcast_to(block_current, (block, batch))
            step_index = (block_index * block + offsets).astype(jnp.uint32)[:, None]
            return block_current + noise_scale * _standard_normal(seeds, step_index).astype(dtype)

        v0 = jnp.full((batch,), self.v_init, dtype)
        state = (v0, channel_set.initial_gates(v0, params))

        if record:

            def advance(state, drive):
                v, gates = state
                # The sample is V at the start of the step: sample k = V after k steps.
                return step(v, gates, drive, constants), v

            def run_block(state, inputs):
                block_index, block_current = inputs
                return lax.scan(advance, state, drives(block_index, block_current), unroll=_UNROLL)

            _, trace = lax.scan(run_block, state, (jnp.arange(num_blocks, dtype=jnp.int32), current))
            return trace.reshape(num_blocks * block, batch)[:num_samples].T

        def advance_streaming(carry, inputs):
            (v, gates), step_acc, shift = carry
            drive, at = inputs
            step_acc = stream.step(step_acc, v, at, shift)
            return ((step(v, gates, drive, constants), step_acc, shift)), v

        def block_streaming(carry, inputs):
            state, step_acc, block_acc = carry
            block_index, block_current = inputs
            shift = state[0]  # the block's first sample
            (state, step_acc, _), block_trace = lax.scan(
                advance_streaming,
                (state, step_acc, shift),
                (drives(block_index, block_current), stream.step_inputs(block_index * block + offsets)),
                unroll=_UNROLL,
            )
            block_acc, step_acc = stream.block_end(block_acc, step_acc, block_trace, block_index, shift)
            return (state, step_acc, block_acc), None

        def advance_checking(carry, inputs):
            (v, gates), non_finite = carry
            drive, in_trace = inputs
            return (
                step(v, gates, drive, constants),
                non_finite + jnp.where(in_trace & ~jnp.isfinite(v), 1.0, 0.0),
            ), None

        def block_checking(carry, inputs):
            block_index, block_current = inputs
            in_trace = block_index * block + offsets < num_samples
            return lax.scan(advance_checking, carry, (drives(block_index, block_current), in_trace), unroll=_UNROLL)[
                0
            ], None

        def advance_resting(carry, drive):
            (v, gates), (y_sum, y2_sum), non_finite, shift = carry
            y = v - shift
            carry = (
                step(v, gates, drive, constants),
                (y_sum + y, y2_sum + y * y),
                non_finite + jnp.where(jnp.isfinite(v), 0.0, 1.0),
                shift,
            )
            return carry, None

        def block_resting(carry, inputs):
            state, rest, non_finite = carry
            block_index, block_current = inputs
            zero = jnp.zeros_like(state[0])
            (state, sums, non_finite, shift), _ = lax.scan(
                advance_resting,
                (state, (zero, zero), non_finite, state[0]),
                drives(block_index, block_current),
                unroll=_UNROLL,
            )
            return (
                state,
                _chan_merge(rest, _central_moments(jnp.asarray(block, dtype), shift, sums)),
                non_finite,
            ), None

        # Before and after the stimulus window the features read only the resting
        # potential's moments (before) and whether V stays finite (both), so the blocks
        # wholly outside it run lighter steps: 31% of an Allen sweep's steps; 1.13x faster
        # in all on the benchmark's protocol.
        resting, streamed = stream.first // block if stream.first >= 2 else 0, -(-stream.last // block)
        block_indices = jnp.arange(num_blocks, dtype=jnp.int32)
        step_acc, block_acc = stream.init_step(v0), stream.init_block(batch)
        if resting:
            (state, rest, non_finite), _ = lax.scan(
                block_resting,
                (state, block_acc["rest"], step_acc["non_finite"]),
                (block_indices[:resting], current[:resting]),
            )
            step_acc, block_acc = {**step_acc, "non_finite": non_finite}, {**block_acc, "rest": rest}
        carry = (state, step_acc, block_acc)
        (state, step_acc, block_acc), _ = lax.scan(
            block_streaming, carry, (block_indices[resting:streamed], current[resting:streamed])
        )
        if streamed < num_blocks:
            (_, non_finite), _ = lax.scan(
                block_checking, (state, step_acc["non_finite"]), (block_indices[streamed:], current[streamed:])
            )
            step_acc = {**step_acc, "non_finite": non_finite}
        return stream.features(step_acc, block_acc)


@functools.lru_cache(maxsize=64)
def _batched(model: HodgkinHuxley, record: bool):
    """``(key, theta) -> trace or features`` of one simulation that, under ``vmap``, runs
    :meth:`HodgkinHuxley._simulate_batch` on the whole batch instead of vmapping the
    per-simulation code (``jax.custom_batching.custom_vmap``). Cached per model, so the
    base class's cache of compiled functions applies."""

    @jax.custom_batching.custom_vmap
    def one(key, theta):
        return model._simulate_batch(key[None], jnp.asarray(theta)[None], record=record)[0]

    @one.def_vmap
    def _rule(axis_size, in_batched, key, theta):
        key_batched, theta_batched = in_batched
        key = key if key_batched else jnp.broadcast_to(key, (axis_size, *jnp.shape(key)))
        theta = theta if theta_batched else jnp.broadcast_to(theta, (axis_size, *jnp.shape(theta)))
        return model._simulate_batch(key, theta, record=record), True

    return one


def _scale_heavy_tailed(features):
    """The skewness and kurtosis of features ``(..., 14)`` on a signed log scale."""
    heavy = jnp.asarray([name in _HEAVY_TAILED for name in FEATURE_NAMES])
    return jnp.where(heavy, jnp.sign(features) * jnp.log1p(jnp.abs(features)), features)


# -- noise: a counter-based generator -------------------------------------------------------
def _hash32(x):
    """A bijective 32-bit integer hash with full avalanche (Wellons' "lowbias32")."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _erfinv(x):
    """erfinv on (-1, 1) in float32: Giles (2010)'s single-precision approximation, written
    out because XLA's ``erf_inv`` measured twice as slow on CPU. Error below 3e-6 absolute."""
    w = -jnp.log((1.0 - x) * (1.0 + x))
    central = w - 2.5
    p = jnp.full_like(x, 2.81022636e-08)
    for c in (
        3.43273939e-07,
        -3.5233877e-06,
        -4.39150654e-06,
        0.00021858087,
        -0.00125372503,
        -0.00417768164,
        0.246640727,
        1.50140941,
    ):
        p = c + p * central
    tail = jnp.sqrt(w) - 3.0
    q = jnp.full_like(x, -0.000200214257)
    for c in (
        0.000100950558,
        0.00134934322,
        -0.00367342844,
        0.00573950773,
        -0.0076224613,
        0.00943887047,
        1.00167406,
        2.83297682,
    ):
        q = c + q * tail
    return jnp.where(w < 5.0, p, q) * x


def _standard_normal(seed, index):
    """Standard normal draws (float32), one per ``index`` (uint32), of the stream ``seed``
    (two uint32 words). Different seeds give different streams for all indices."""
    bits = _hash32(seed[1] ^ _hash32(seed[0] ^ _hash32(index * jnp.uint32(0x9E3779B9))))
    # 23 bits -> an odd multiple of 2^-23 in (-1, 1): exact in float32, symmetric about 0.
    odd = (bits >> 9).astype(jnp.int32) * 2 + (1 - (1 << 23))
    return math.sqrt(2.0) * _erfinv(odd.astype(jnp.float32) * (2.0**-23))


# -- summary statistics, streamed ----------------------------------------------------------
def _chan_merge(a, b):
    """Merge (count, mean, M2[, M3, M4]) of two disjoint sets of samples (Chan et al. 1979;
    Pebay 2008 for the third and fourth central moments). Counts may be zero."""
    na, nb = a[0], b[0]
    n = na + nb
    inv = 1.0 / jnp.maximum(n, 1.0)
    delta = b[1] - a[1]
    mean = a[1] + delta * (nb * inv)
    cross = na * nb * inv
    m2 = a[2] + b[2] + delta * delta * cross
    if len(a) == 3:
        return (n, mean, m2)
    m3 = a[3] + b[3] + delta**3 * cross * (na - nb) * inv + 3.0 * delta * (na * b[2] - nb * a[2]) * inv
    m4 = (
        a[4]
        + b[4]
        + delta**4 * cross * (na * na - na * nb + nb * nb) * inv * inv
        + 6.0 * delta * delta * (na * na * b[2] + nb * nb * a[2]) * inv * inv
        + 4.0 * delta * (na * b[3] - nb * a[3]) * inv
    )
    return (n, mean, m2, m3, m4)


def _central_moments(n, shift, sums):
    """(count, mean, M2[, M3, M4]) of samples from their power sums ``sums`` (S1, S2[, S3,
    S4]) about ``shift``. Exact algebra; the shift is a sample of the same block, so the
    cancellation is that of the block's spread, not of the voltage's offset from zero."""
    safe = jnp.maximum(n, 1.0)
    m = sums[0] / safe
    m2 = sums[1] - n * m * m
    if len(sums) == 2:
        return (n, shift + m, m2)
    m3 = sums[2] - 3.0 * m * sums[1] + 2.0 * n * m**3
    m4 = sums[3] - 4.0 * m * sums[2] + 6.0 * m * m * sums[1] - 3.0 * n * m**4
    return (n, shift + m, m2, m3, m4)


class _FeatureStream:
    """The features of :func:`voltage_features`, accumulated while a simulation runs.

    The trace comes in blocks of ``block`` samples ``k = block_index * block + i`` (the
    sample k is V after k steps), and everything but the lagged products is accumulated
    per step, in the scan's carry: a running sum costs a tenth of a step's arithmetic,
    while a reduction over a stored block (and the transposes XLA adds to reduce over
    time) cost more than the step.

    * Moments: power sums of V about the first sample of the block (so they keep float32
      accuracy), turned into central moments at the end of each block and merged into
      the totals exactly (Chan/Pebay).
    * Lagged products, per block: the block's trace against the samples ``lag`` before it,
      read from a ring buffer of past blocks that the outer scan keeps (blocks are no
      longer than the shortest lag, so those samples are always from earlier blocks; the
      ring is written twice over so that every window of it is contiguous). The sums over
      the block's steps are one matrix-vector product with the pair mask: the steps
      reading the ring's window as scan inputs cost a quarter of the whole simulation.
    * Spikes: counts, first and last crossing, squared intervals and peaks, per step."""

    def __init__(self, model: HodgkinHuxley, dtype):
        dt, num_samples = model.dt, model.current.size
        # The windows and lags exactly as voltage_features derives them.
        self.first = int(round(model.stim_on / dt))
        self.last = min(int(round(model.stim_off / dt)), num_samples)
        self.rest_end = min(max(self.first, 2), num_samples)
        self.lags = tuple(max(1, int(round(lag / dt))) for lag in _LAGS_MS)
        self.block = min(_BLOCK, min(self.lags) // _UNROLL * _UNROLL or min(self.lags))
        self.ring = self.block * -(-max(self.lags) // self.block)  # samples kept, a whole number of blocks
        self.duration = (self.last - self.first) * dt
        self.stim_on = model.stim_on
        self.threshold = model.spike_threshold
        self.num_samples = num_samples
        self.dtype = dtype
        self.dt = jnp.asarray(dt, dtype)

    def _windows(self, k):
        in_stim = (k >= self.first) & (k < self.last)
        return k < self.rest_end, in_stim, [in_stim & (k >= self.first + lag) for lag in self.lags]

    def step_inputs(self, samples):
        """What each step needs to know about its sample (computed per block, outside the
        steps): the windows it is in, and its time as voltage_features computes it."""
        in_rest, in_stim, pairs = self._windows(samples)
        return {
            "time": samples.astype(self.dtype) * self.dt,
            "rest": in_rest,
            "stim": in_stim,
            "crossing": (samples > self.first) & (samples < self.last),
            "peak": (samples - 1 > self.first) & (samples < self.last),  # the peak candidate is the sample before
            "trace": samples < self.num_samples,
        }

    # -- per step ----------------------------------------------------------------------
    def init_step(self, v0):
        zero = jnp.zeros_like(v0)
        return {
            "sums": self._zero_sums(v0.shape),
            "v1": v0,  # V one and two samples back
            "v2": v0,
            "count": zero,
            "above": zero,
            "peak_count": zero,
            "peak_sum": zero,
            "maximum": jnp.full_like(v0, -jnp.inf),
            "non_finite": zero,
            "first_crossing": zero,  # times; meaningful once count > 0
            "last_crossing": zero,
            "squared_intervals": zero,
        }

    def _zero_sums(self, shape):
        zero = jnp.zeros(shape, self.dtype)
        return {"rest": (zero, zero), "stim": (zero, zero, zero, zero)}

    def step(self, acc, v, at, shift):
        """Fold in the sample ``v`` (``at``: its :meth:`step_inputs`); ``shift`` is the first
        sample of the block."""
        thr = self.threshold
        in_rest, in_stim = at["rest"], at["stim"]
        y = v - shift
        y2 = y * y
        sums = acc["sums"]
        r, s = sums["rest"], sums["stim"]
        new_sums = {
            "rest": (r[0] + jnp.where(in_rest, y, 0.0), r[1] + jnp.where(in_rest, y2, 0.0)),
            "stim": (
                s[0] + jnp.where(in_stim, y, 0.0),
                s[1] + jnp.where(in_stim, y2, 0.0),
                s[2] + jnp.where(in_stim, y2 * y, 0.0),
                s[3] + jnp.where(in_stim, y2 * y2, 0.0),
            ),
        }
        v1, v2 = acc["v1"], acc["v2"]
        above = v >= thr
        crossing = above & (v1 < thr) & at["crossing"]
        # Peaks are judged one sample late, when the sample after them is known.
        is_peak = (v1 > v2) & (v1 >= v) & (v1 >= thr) & at["peak"]
        count, last, time = acc["count"], acc["last_crossing"], at["time"]
        interval = time - last
        return {
            "sums": new_sums,
            "v1": v,
            "v2": v1,
            "count": count + jnp.where(crossing, 1.0, 0.0),
            "above": acc["above"] + jnp.where(above & in_stim, 1.0, 0.0),
            "peak_count": acc["peak_count"] + jnp.where(is_peak, 1.0, 0.0),
            "peak_sum": acc["peak_sum"] + jnp.where(is_peak, v1, 0.0),
            "maximum": jnp.maximum(acc["maximum"], jnp.where(in_stim, v, -jnp.inf)),
            # Samples that are NaN or inf (counted: XLA's fast min/max need not propagate NaN).
            "non_finite": acc["non_finite"] + jnp.where(at["trace"] & ~jnp.isfinite(v), 1.0, 0.0),
            "first_crossing": jnp.where(crossing & (count == 0), time, acc["first_crossing"]),
            "last_crossing": jnp.where(crossing, time, last),
            "squared_intervals": acc["squared_intervals"] + jnp.where(crossing & (count > 0), interval * interval, 0.0),
        }

    # -- per block ---------------------------------------------------------------------
    def init_block(self, batch):
        zero = jnp.zeros((batch,), self.dtype)
        return {
            # Samples j of the last ``ring`` at j % ring and again at j % ring + ring.
            "ring": jnp.zeros((2 * self.ring, batch), self.dtype),
            "earlier": tuple(jnp.zeros((self.block, batch), self.dtype) for _ in self.lags),
            "rest": (zero, zero, zero),
            "stim": (zero, zero, zero, zero, zero),
            "lagged": tuple((zero, zero, zero, zero) for _ in self.lags),
        }

    def earlier(self, ring, block_index):
        """For each lag, the samples ``lag`` before those of block ``block_index``."""
        start = block_index * self.block
        return tuple(lax.dynamic_slice_in_dim(ring, (start - lag) % self.ring, self.block) for lag in self.lags)

    def block_end(self, acc, step_acc, x, block_index, shift):
        """Merge the block's sums into the totals and put the block ``x`` in the ring;
        returns the new block accumulators and the step accumulators with sums reset."""
        samples = block_index * self.block + jnp.arange(self.block, dtype=jnp.int32)
        in_rest, in_stim, pairs = self._windows(samples)
        sums = step_acc["sums"]
        counts = [m.sum().astype(self.dtype) for m in (in_rest, in_stim, *pairs)]  # the same for every simulation
        offset = (block_index * self.block) % self.ring
        ring = lax.dynamic_update_slice_in_dim(acc["ring"], x, offset, 0)
        ring = lax.dynamic_update_slice_in_dim(ring, x, offset + self.ring, 0)
        new = {
            "ring": ring,
            # Read now, after the write: reading the ring before writing it would make XLA
            # copy the whole ring every block to keep the old one alive.
            "earlier": self.earlier(ring, block_index + 1),
            "rest": _chan_merge(acc["rest"], _central_moments(counts[0], shift, sums["rest"])),
            "stim": _chan_merge(acc["stim"], _central_moments(counts[1], shift, sums["stim"])),
        }
        lagged = []
        y = x - shift
        for n, pair, earlier, old in zip(counts[2:], pairs, acc["earlier"], acc["lagged"]):
            # The block's pairs (v[k - lag], v[k]): count, means, co-moment; then merged.
            ya = earlier - shift
            # Stacked on axis 1, the product reads the (block, 3, n) array as one matrix;
            # stacked first it measured 1.4x slower in all (XLA transposed it).
            sa, sb, sab = jnp.einsum(
                "t,tsb->sb", pair.astype(x.dtype), jnp.stack([ya, y, ya * y], axis=1), precision=lax.Precision.HIGHEST
            )
            safe = jnp.maximum(n, 1.0)
            mean_a, mean_b, comoment = shift + sa / safe, shift + sb / safe, sab - sa * sb / safe
            total = old[0] + n
            inv = 1.0 / jnp.maximum(total, 1.0)
            delta_a, delta_b = mean_a - old[1], mean_b - old[2]
            lagged.append(
                (
                    total,
                    old[1] + delta_a * n * inv,
                    old[2] + delta_b * n * inv,
                    old[3] + comoment + delta_a * delta_b * old[0] * n * inv,
                )
            )
        new["lagged"] = tuple(lagged)
        return new, {**step_acc, "sums": self._zero_sums(x.shape[1:])}

    def features(self, step_acc, acc):
        """The features (14,) in the order of FEATURE_NAMES, with voltage_features' formulas."""
        dtype = self.dtype
        count = step_acc["count"]
        has_spike = count > 0
        first_crossing, last_crossing = step_acc["first_crossing"], step_acc["last_crossing"]
        latency = jnp.where(has_spike, first_crossing - self.stim_on, self.duration)
        num_intervals = jnp.maximum(count - 1.0, 0.0)
        safe_intervals = jnp.maximum(num_intervals, 1.0)
        interval_sum = last_crossing - first_crossing
        mean_isi = jnp.where(num_intervals > 0, interval_sum / safe_intervals, self.duration)
        isi_var = jnp.where(num_intervals > 0, step_acc["squared_intervals"] / safe_intervals - mean_isi**2, 0.0)
        isi_cv = jnp.sqrt(jnp.maximum(isi_var, 0.0)) / mean_isi
        peak_count = step_acc["peak_count"]
        mean_peak = jnp.where(peak_count > 0, step_acc["peak_sum"] / jnp.maximum(peak_count, 1.0), step_acc["maximum"])
        width = jnp.where(has_spike, step_acc["above"] * self.dt / jnp.maximum(count, 1.0), 0.0)
        rest_n, rest_mean, rest_m2 = acc["rest"]
        n, stim_mean, m2, m3, m4 = acc["stim"]
        variance = m2 / n
        flat = variance <= 1e-12
        safe_variance = jnp.where(flat, 1.0, variance)
        skewness = jnp.where(flat, 0.0, (m3 / n) / safe_variance**1.5)
        kurtosis = jnp.where(flat, 0.0, (m4 / n) / safe_variance**2 - 3.0)
        autocorrelations = []
        for pairs, mean_a, mean_b, comoment in acc["lagged"]:
            # Sum over pairs of (v[k - lag] - mean)(v[k] - mean), from the pairs' own means.
            product = (comoment + pairs * (mean_a - stim_mean) * (mean_b - stim_mean)) / jnp.maximum(pairs, 1.0)
            autocorrelations.append(jnp.where(pairs > 0, jnp.where(flat, 1.0, product / safe_variance), 0.0))
        features = jnp.stack(
            [
                count,
                latency,
                mean_isi,
                isi_cv,
                mean_peak,
                width,
                rest_mean,
                jnp.sqrt(jnp.maximum(rest_m2, 0.0) / rest_n),
                stim_mean,
                jnp.sqrt(jnp.maximum(variance, 0.0)),
                skewness,
                kurtosis,
                *autocorrelations,
            ],
            axis=-1,
        ).astype(dtype)
        broken = step_acc["non_finite"] > 0
        return _scale_heavy_tailed(jnp.where(broken[..., None], jnp.nan, features))


@dataclass(frozen=True, eq=False)
class _StreamedSummaries(Simulator):
    """A view of a HodgkinHuxley whose ``simulate_one`` returns the summary statistics,
    streamed, so the base class's chunked and sharded runner can run it as it is."""

    model: HodgkinHuxley

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def parameters(self):
        return self.model.parameters

    @property
    def observation_shape(self):
        return (len(FEATURE_NAMES),)

    def simulate_one(self, key, theta):
        return _batched(self.model, False)(key, theta)


@functools.lru_cache(maxsize=32)
def _streamed(model: HodgkinHuxley) -> _StreamedSummaries:
    # One view per model, so that the base class's cache of compiled functions applies.
    return _StreamedSummaries(model)
