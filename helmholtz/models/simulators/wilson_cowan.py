"""The Wilson-Cowan model: an excitatory and an inhibitory population, coupled (1972).

E(t) and I(t) are the fractions of the excitatory and inhibitory cells of a local
population that fire per unit time. In Wilson & Cowan's classic form

    tau_E dE/dt = -E + (k_E - r_E E) S_E(w_EE E - w_EI I + P)
    tau_I dI/dt = -I + (k_I - r_I I) S_I(w_IE E - w_II I + Q)

with the sigmoid S(u) = 1 / (1 + exp(-a (u - theta))) - 1 / (1 + exp(a theta)), shifted
so that S(0) = 0 (no input, no response), whose ceiling k = S(inf) bounds the fraction of
cells that can respond. ``r`` is the refractory period: cells that just fired (E of them)
cannot fire again at once. The weights are named post-pre, as in most textbooks:
w_EI is the strength of inhibition onto the excitatory population (W&C's c2), w_IE that of
excitation onto the inhibitory one (c3). Time is in milliseconds.

The regimes (with the classic constants w_EE=16, w_EI=12, w_IE=15, w_II=3, a_E=1.3,
theta_E=4, a_I=2, theta_I=3.7, r=1, tau_E=tau_I): with little drive P the activity
settles to a low stable fixed point; at P=1.25, Wilson & Cowan's example, the only fixed
point is unstable and E and I cycle around it (a limit cycle near 20 Hz with tau = 10 ms,
the model's account of a population rhythm); with strong drive (P=4) they settle to a
high-activity fixed point again. Under the default priors about a quarter of the
noise-free simulations end on a limit cycle and the rest at a fixed point. Noise
(``sigma``) makes fixed points jitter (and, near the transition, ring at the frequency
of the nearby cycle) and limit cycles wander in phase.

Simulation is Euler-Maruyama in a ``lax.scan``; :meth:`WilsonCowan.solve_deterministic`
solves the noise-free ODE with Diffrax's adaptive Tsit5 instead, an independent check
of the integrator.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from helmholtz._serialization import serializable
from helmholtz.models.simulators.base import Parameter, Simulator, Uniform

# Every quantity that may be a free parameter; the rest of the dataclass is fixed design.
PARAMETER_NAMES = ("w_EE", "w_EI", "w_IE", "w_II", "P", "Q", "tau_E", "tau_I", "sigma")

DEFAULT_PRIORS = (
    Uniform("w_EE", 10.0, 20.0),
    Uniform("w_EI", 8.0, 16.0),
    Uniform("w_IE", 10.0, 20.0),
    Uniform("P", 0.0, 3.0),
    Uniform("tau_I", 5.0, 20.0, "ms"),
    Uniform("sigma", 0.0, 0.01),
)

# Variance below which a trace counts as flat (sd 1e-5, far above float32 roundoff of a
# settled trace and far below the fluctuations of any sigma worth inferring): spectra and
# correlations of flat traces are 0 instead of 0 / 0.
_FLAT_VARIANCE = 1e-10


def _sigmoid(u, gain, threshold):
    """Wilson & Cowan's sigmoid, shifted so that it is 0 at u = 0."""
    return jax.nn.sigmoid(gain * (u - threshold)) - jax.nn.sigmoid(-gain * threshold)


@serializable
@dataclass(frozen=True)
class WilsonCowan(Simulator):
    """A noisy Wilson-Cowan E-I population; the data are E(t) and I(t), shape ``(num_records, 2)``.

    Any parameter of the model (the first group below) can be free, given a prior in
    ``priors`` (:class:`~helmholtz.priors.Parameter`); the others take the value of the
    field of the same name. The second group is the fixed design.

    Args:
        priors: the free parameters and their priors (:data:`DEFAULT_PRIORS`: six uniforms).
        w_EE: excitation of the excitatory population by itself (recurrent excitation);
            strong enough, it makes the population bistable or oscillatory.
        w_EI: inhibition of the excitatory population by the inhibitory one.
        w_IE: excitation of the inhibitory population by the excitatory one; with w_EI it
            sets the strength of the negative feedback loop that makes the rhythm.
        w_II: inhibition of the inhibitory population by itself.
        P: external drive to the excitatory population.
        Q: external drive to the inhibitory population.
        tau_E: the excitatory time constant (ms); the loop's delay, so the rhythm's period,
            scales with the time constants.
        tau_I: the inhibitory time constant (ms).
        sigma: noise on both rates. With the leak alone (no coupling) it would give
            fluctuations of sd sigma / sqrt(2) whatever the time constant:
            tau dE = (...) dt + sigma sqrt(tau) dW.
        a_E: gain of the excitatory population's sigmoid.
        theta_E: threshold of the excitatory population's sigmoid.
        a_I: gain of the inhibitory population's sigmoid.
        theta_I: threshold of the inhibitory population's sigmoid.
        r_E: refractory period of the excitatory population (in units of its time constant).
        r_I: refractory period of the inhibitory population (in units of its time constant).
        E0: the excitatory rate at t = 0.
        I0: the inhibitory rate at t = 0.
        dt: the Euler-Maruyama step (ms); keep dt / tau well below 1 (0.02 or less).
        record_every: record the state every this many steps.
        burn_in: time simulated before recording starts (ms), so the data show the
            regime the parameters settle into rather than the approach to it.
        duration: time recorded (ms); ``duration / (dt * record_every)`` records.
        autocorrelation_lags: lags (ms) at which :meth:`summarize` reports E's
            autocorrelation.
        spectrum_segment: length (ms) of the segments of E's Welch spectrum; its
            frequency resolution is 1000 / spectrum_segment Hz.

    Raises:
        ValueError: ``priors`` do not name distinct known parameters, ``dt`` is not > 0,
            ``record_every`` is not a positive integer, ``burn_in`` or ``duration`` is not a
            multiple of the recording interval, fewer than 4 records, or a lag out of range.
    """

    priors: tuple[Parameter, ...] = DEFAULT_PRIORS
    w_EE: float = 16.0
    w_EI: float = 12.0
    w_IE: float = 15.0
    w_II: float = 3.0
    P: float = 1.25
    Q: float = 0.0
    tau_E: float = 10.0
    tau_I: float = 10.0
    sigma: float = 0.0
    a_E: float = 1.3
    theta_E: float = 4.0
    a_I: float = 2.0
    theta_I: float = 3.7
    r_E: float = 1.0
    r_I: float = 1.0
    E0: float = 0.1
    I0: float = 0.05
    dt: float = 0.1
    record_every: int = 10
    burn_in: float = 200.0
    duration: float = 1000.0
    autocorrelation_lags: tuple[float, ...] = (5.0, 20.0)
    spectrum_segment: float = 250.0

    def __post_init__(self):
        object.__setattr__(self, "priors", tuple(self.priors))
        object.__setattr__(self, "autocorrelation_lags", tuple(float(lag) for lag in self.autocorrelation_lags))
        names = [prior.name for prior in self.priors]
        unknown = sorted(set(names) - set(PARAMETER_NAMES))
        if unknown or len(set(names)) != len(names) or not names:
            raise ValueError(
                f"WilsonCowan: priors must name distinct parameters among {list(PARAMETER_NAMES)} "
                f"(at least one), got {names}"
            )
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise ValueError(f"WilsonCowan: dt must be > 0, got {self.dt!r}")
        if not (isinstance(self.record_every, (int, np.integer)) and self.record_every >= 1):
            raise ValueError(f"WilsonCowan: record_every must be a positive integer, got {self.record_every!r}")
        interval = self.sampling_interval
        for name in ("burn_in", "duration"):
            blocks = getattr(self, name) / interval
            if not (blocks >= 0 and abs(blocks - round(blocks)) < 1e-6):
                raise ValueError(
                    f"WilsonCowan: {name}={getattr(self, name)!r} ms must be a non-negative multiple of "
                    f"the recording interval dt * record_every = {interval!r} ms"
                )
        if self.num_records < 4:
            raise ValueError(f"WilsonCowan: duration must span at least 4 records, got {self.num_records}")
        for lag in self.autocorrelation_lags:
            if not (interval <= lag < self.duration):
                raise ValueError(
                    f"WilsonCowan: autocorrelation lags must lie in [{interval}, {self.duration}) ms, got {lag!r}"
                )

    # -- the protocol ------------------------------------------------------------------
    @property
    def parameters(self):
        return self.priors

    @property
    def sampling_interval(self) -> float:
        """Time between records (ms)."""
        return self.dt * self.record_every

    @property
    def num_records(self) -> int:
        return int(round(self.duration / self.sampling_interval))

    @property
    def times(self) -> np.ndarray:
        """The time of each record (ms), counted from the start of the burn-in."""
        return self.burn_in + self.sampling_interval * np.arange(self.num_records)

    @property
    def observation_shape(self):
        return (self.num_records, 2)

    def resolve(self, theta) -> dict[str, jnp.ndarray]:
        """All of ``PARAMETER_NAMES``: the free ones from ``theta``, the rest from the fields.

        Args:
            theta: parameter vectors, shape ``(..., num_theta)``.

        Returns:
            Every parameter by name, shape ``(...)`` for the free ones, scalars for the rest.
        """
        values = {name: jnp.asarray(getattr(self, name), dtype=jnp.result_type(theta)) for name in PARAMETER_NAMES}
        values.update(self.params_of(theta))
        return values

    def vector_field(self, state, p: dict) -> jnp.ndarray:
        """d(E, I)/dt of the noise-free model at ``state = (E, I)``.

        Args:
            state: the rates (E, I), shape ``(..., 2)``.
            p: every parameter by name (as :meth:`resolve` returns them).

        Returns:
            The time derivatives, shape ``(..., 2)``.
        """
        E, I = state[..., 0], state[..., 1]
        k_E = jax.nn.sigmoid(self.a_E * self.theta_E)  # S_E(inf): the sigmoid's ceiling
        k_I = jax.nn.sigmoid(self.a_I * self.theta_I)
        input_E = p["w_EE"] * E - p["w_EI"] * I + p["P"]
        input_I = p["w_IE"] * E - p["w_II"] * I + p["Q"]
        dE = (-E + (k_E - self.r_E * E) * _sigmoid(input_E, self.a_E, self.theta_E)) / p["tau_E"]
        dI = (-I + (k_I - self.r_I * I) * _sigmoid(input_I, self.a_I, self.theta_I)) / p["tau_I"]
        return jnp.stack([dE, dI], axis=-1)

    def simulate_one(self, key, theta):
        """E(t) and I(t) by Euler-Maruyama, recorded after the burn-in.

        Args:
            key: a JAX PRNG key for the noise.
            theta: one parameter vector, shape ``(num_theta,)``.

        Returns:
            The records, shape ``(num_records, 2)``.
        """
        p = self.resolve(theta)
        dtype = jnp.result_type(theta)
        dt = jnp.asarray(self.dt, dtype)
        noise_scale = p["sigma"] * jnp.sqrt(dt / jnp.stack([p["tau_E"], p["tau_I"]]))
        burn_blocks = int(round(self.burn_in / self.sampling_interval))

        def step(state, standard_normal):
            return state + dt * self.vector_field(state, p) + noise_scale * standard_normal, None

        def block(state, index):
            # Noise drawn per recording block: memory O(record_every), not O(steps).
            noise = jax.random.normal(jax.random.fold_in(key, index), (self.record_every, 2), dtype)
            end, _ = jax.lax.scan(step, state, noise)
            return end, state

        start = jnp.asarray([self.E0, self.I0], dtype)
        _, records = jax.lax.scan(block, start, jnp.arange(burn_blocks + self.num_records))
        return records[burn_blocks:]

    def solve_deterministic(self, theta, *, rtol: float = 1e-6, atol: float = 1e-9, max_steps: int = 1_000_000):
        """The noise-free trajectory (sigma ignored) at :attr:`times`, by Diffrax's adaptive
        Tsit5 (5th order), independent of the Euler scan. Enable JAX's 64-bit mode for
        tolerances below float32's resolution (about 1e-7). Compiled once per model and tolerance.

        Args:
            theta: one parameter vector, shape ``(num_theta,)``.
            rtol: the solver's relative tolerance.
            atol: the solver's absolute tolerance.
            max_steps: the most steps the solver may take.

        Returns:
            The trajectory, shape ``(num_records, 2)``.
        """
        theta = jnp.asarray(theta, dtype=jnp.result_type(float))
        return _solve_deterministic(self, theta, float(rtol), float(atol), int(max_steps))

    # -- summary statistics ------------------------------------------------------------
    @property
    def spectrum_segment_records(self) -> int:
        """Records per segment of the Welch spectrum: ``spectrum_segment`` ms, at most the
        whole trace."""
        return max(4, min(self.num_records, int(round(self.spectrum_segment / self.sampling_interval))))

    def _spectral_peak(self, centred):
        """The peak frequency (Hz) of Welch's spectrum of ``centred (n, T)`` and the share of
        the power within one frequency bin of it.

        Welch's estimate (segments half overlapping, each with its linear trend removed
        and a Hann window) rather than one periodogram of the whole trace: noise makes a
        rhythm's phase drift, which smears a fine-grained periodogram's peak over many
        bins; averaging short segments trades that resolution for a stable peak.
        """
        length = self.spectrum_segment_records
        starts = range(0, centred.shape[1] - length + 1, max(1, length // 2))
        segments = jnp.stack([centred[:, s : s + length] for s in starts], axis=1)  # (n, S, L)
        ramp = jnp.arange(length, dtype=centred.dtype) - (length - 1) / 2
        segments = segments - segments.mean(-1, keepdims=True)
        slope = (segments * ramp).sum(-1, keepdims=True) / (ramp**2).sum()
        window = jnp.hanning(length).astype(centred.dtype)
        spectra = jnp.abs(jnp.fft.rfft((segments - slope * ramp) * window, axis=-1)) ** 2
        # Normalised so that the power sums to about the variance (amplitude^2 units).
        power = spectra.mean(1)[:, 1:] / (window**2).sum() / length * 2
        frequencies = jnp.fft.rfftfreq(length, d=self.sampling_interval / 1000.0)[1:]
        peak = jnp.argmax(power, axis=1)
        padded = jnp.pad(power, ((0, 0), (1, 1)))
        band = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]  # each bin and its two neighbours
        peak_band = jnp.take_along_axis(band, peak[:, None], axis=1)[:, 0]
        return frequencies[peak], peak_band / (power.sum(1) + _FLAT_VARIANCE)

    @property
    def feature_names(self):
        lags = tuple(f"autocorr_E_{lag:g}ms" for lag in self.autocorrelation_lags)
        return ("mean_E", "std_E", "mean_I", "std_I", "frequency_E", "relative_power_E", "corr_EI") + lags

    def summarize(self, x):
        """Features of traces:

        - mean and standard deviation of E and of I: the operating point and how much
          the activity moves around it;
        - ``frequency_E`` (Hz): the peak of E's power spectrum (Welch's estimate, each
          segment detrended, the zero frequency left out), and ``relative_power_E``: the
          share of the power within one bin of the peak: near 1 for a limit cycle, small
          for noise around a fixed point, 0 for a flat trace (whose frequency then means
          nothing);
        - ``corr_EI``: the correlation of E and I at lag 0 (near 1 when inhibition tracks
          excitation closely, lower when it lags, as in a rhythm);
        - E's autocorrelation at ``autocorrelation_lags``: how fast fluctuations decay,
          or, for a rhythm, where in the cycle the lag falls.

        Traces with any NaN or inf get NaN features; flat traces get 0 correlations.

        Args:
            x: traces, shape ``(num_simulations, num_records, 2)``.

        Returns:
            The features (:attr:`feature_names`), shape ``(num_simulations, num_features)``.
        """
        x = jnp.asarray(x)
        num_records = x.shape[1]
        E, I = x[..., 0], x[..., 1]
        mean_E, mean_I = E.mean(1), I.mean(1)
        centred_E, centred_I = E - mean_E[:, None], I - mean_I[:, None]
        var_E, var_I = (centred_E**2).mean(1), (centred_I**2).mean(1)

        frequency, relative_power = self._spectral_peak(centred_E)

        floor_E, floor_I = jnp.maximum(var_E, _FLAT_VARIANCE), jnp.maximum(var_I, _FLAT_VARIANCE)
        corr_EI = (centred_E * centred_I).mean(1) / jnp.sqrt(floor_E * floor_I)
        autocorrelations = []
        for lag in self.autocorrelation_lags:
            shift = int(round(lag / self.sampling_interval))
            covariance = (centred_E[:, :-shift] * centred_E[:, shift:]).sum(1) / num_records
            autocorrelations.append(covariance / floor_E)

        features = jnp.stack(
            [mean_E, jnp.sqrt(var_E), mean_I, jnp.sqrt(var_I), frequency, relative_power, corr_EI, *autocorrelations],
            axis=1,
        )
        finite = jnp.isfinite(x).all(axis=(1, 2))
        return jnp.where(finite[:, None], features, jnp.nan)


@functools.partial(jax.jit, static_argnums=(0, 2, 3, 4))
def _solve_deterministic(model: WilsonCowan, theta, rtol: float, atol: float, max_steps: int):
    term = diffrax.ODETerm(lambda t, y, args: model.vector_field(y, args))
    solution = diffrax.diffeqsolve(
        term,
        diffrax.Tsit5(),
        t0=0.0,
        t1=float(model.times[-1]),
        dt0=model.dt,
        y0=jnp.asarray([model.E0, model.I0], theta.dtype),
        args=model.resolve(theta),
        saveat=diffrax.SaveAt(ts=jnp.asarray(model.times, theta.dtype)),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    )
    return solution.ys
