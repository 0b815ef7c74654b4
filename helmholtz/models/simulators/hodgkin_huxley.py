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
current. The noise is drawn in blocks of steps rather than one step at a time, because
drawing random numbers per step costs more than the channel arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from helmholtz._serialization import serializable
from helmholtz.models.simulators.base import Parameter, Simulator, Uniform
from helmholtz.models.simulators.channels import CHANNEL_SETS
from helmholtz.models.simulators.features import FEATURE_NAMES, voltage_features

# The soma area the sbi tutorial assumes (a 70 um diameter), used to turn a recorded
# current in nA into a current density when the cell's own area is not known.
DEFAULT_AREA_CM2 = math.pi * (70e-4) ** 2
_NOISE_BLOCK = 256

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
    """A current step of ``amplitude`` (uA/cm^2) between stim_on and stim_off (ms)."""
    time = np.arange(int(round(duration / dt))) * dt
    return np.where((time >= stim_on) & (time < stim_off), amplitude, 0.0).astype(np.float32)


@serializable
@dataclass(frozen=True, eq=False)
class HodgkinHuxley(Simulator):
    """A Hodgkin-Huxley neuron; the observation is the voltage trace (one sample per step).

    Attributes:
        channels: ``"classic"`` or ``"cortical"``.
        current: injected current density per time step, uA/cm^2.
        dt: time step (and sampling interval of the trace), ms.
        stim_on, stim_off: the stimulus window (ms) that the summary statistics use.
        priors: the free parameters and their priors (names of the channel set's constants).
        constants: values of non-free constants that differ from the channel set's defaults.
        v_init: membrane potential at t = 0 (gates start at their steady state there).
        precision: ``"float32"`` (fast) or ``"float64"`` (needs ``jax_enable_x64``).
        spike_threshold: the upward crossing that counts as a spike, mV.
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
    def cortical(cls, *, recording=None, current=None, dt=None, stim_on=None, stim_off=None, area_cm2=DEFAULT_AREA_CM2, **options):
        """The Goncalves et al. (2020) model: from a :class:`~helmholtz.data.Recording`
        (its current in nA becomes a density over ``area_cm2``), or from a current density
        array with ``dt``, ``stim_on`` and ``stim_off``."""
        if recording is not None:
            current = np.asarray(recording.current) * 1e-3 / area_cm2
            dt, stim_on, stim_off = recording.dt, recording.stim_on, recording.stim_off
            options.setdefault("v_init", float(np.median(recording.voltage[: max(int(stim_on / dt), 1)])))
        if current is None or dt is None or stim_on is None or stim_off is None:
            raise ValueError("HodgkinHuxley.cortical needs a recording, or current, dt, stim_on and stim_off")
        return cls("cortical", current, dt, stim_on, stim_off, **options)

    @classmethod
    def classic(cls, *, amplitude=10.0, duration=50.0, dt=0.01, stim_on=5.0, stim_off=45.0, **options):
        """The squid axon of Hodgkin & Huxley (1952) under a current step (uA/cm^2)."""
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
        return FEATURE_NAMES

    @property
    def time(self) -> np.ndarray:
        return np.arange(self.current.size) * self.dt

    def full_parameters(self, theta) -> dict:
        """Every constant of the channel set, the free ones taken from ``theta``."""
        dtype = jnp.dtype(self.precision)
        values = {**CHANNEL_SETS[self.channels][0], **self.constants}
        values = {name: jnp.asarray(value, dtype) for name, value in values.items()}
        values.update({name: jnp.asarray(theta[i], dtype) for i, name in enumerate(self.parameter_names)})
        return values

    def simulate_one(self, key, theta):
        _, initial_gates, step = CHANNEL_SETS[self.channels]
        dtype = jnp.dtype(self.precision)
        params = self.full_parameters(theta)
        dt = jnp.asarray(self.dt, dtype)
        num_steps = self.current.size
        num_blocks = -(-num_steps // _NOISE_BLOCK)
        current = np.pad(self.current, (0, num_blocks * _NOISE_BLOCK - num_steps)).reshape(num_blocks, _NOISE_BLOCK)
        noisy = "noise" in params
        noise_scale = params["noise"] / jnp.sqrt(dt) if noisy else 0.0

        def advance(state, drive):
            v, gates = state
            v, gates = step(v, gates, drive, params, dt)
            return (v, gates), v

        def block(state, inputs):
            block_key, block_current = inputs
            drive = jnp.asarray(block_current, dtype)
            if noisy:
                drive = drive + noise_scale * jax.random.normal(block_key, (_NOISE_BLOCK,), dtype)
            return lax.scan(advance, state, drive)

        v0 = jnp.asarray(self.v_init, dtype)
        state = (v0, initial_gates(v0, params))
        # The trace holds V after each step, starting from v_init, one sample per step.
        _, trace = lax.scan(block, state, (jax.random.split(key, num_blocks), jnp.asarray(current, dtype)))
        trace = jnp.concatenate([v0[None], trace.reshape(-1)[: num_steps - 1]])
        return trace

    def summarize(self, x):
        return voltage_features(x, self.dt, self.stim_on, self.stim_off, self.spike_threshold)
