"""Summary statistics of membrane-potential traces, batched and jittable.

The features of Goncalves et al. (2020) and the sbi Hodgkin-Huxley tutorial: spike count,
resting potential (mean, std), the first four moments of V during the stimulus and its
autocorrelation, to which we add spike timing (first-spike latency, mean and CV of the
inter-spike interval) and spike shape (mean peak, mean time above threshold).

Everything is a masked reduction over the time axis, so a batch of traces of any spike
count is one vectorised computation. A trace without spikes gets finite fallbacks (latency
and interval = the stimulus duration, peak = the highest voltage, width = 0) rather than
NaN, so it stays a valid training example (and an autocorrelation whose lag is not shorter
than the stimulus window is 0); a trace that blew up (NaN or inf anywhere) gives NaN
features, which the simulation-based back ends exclude and count.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

FEATURE_NAMES = (
    "spike_count",
    "first_spike_latency",
    "mean_isi",
    "isi_cv",
    "spike_peak",
    "spike_width",
    "rest_mean",
    "rest_std",
    "stim_mean",
    "stim_std",
    "stim_skewness",
    "stim_kurtosis",
    "autocorrelation_1ms",
    "autocorrelation_10ms",
)


def voltage_features(v, dt: float, stim_on: float, stim_off: float, threshold: float = -10.0):
    """Features of voltage traces sampled every ``dt`` ms; names in :data:`FEATURE_NAMES`.

    Spikes are upward crossings of ``threshold`` (mV) during the stimulus window
    [stim_on, stim_off).

    Args:
        v: the traces (mV), shape ``(num_simulations, num_steps)``.
        dt: the sampling interval (ms).
        stim_on: the start of the stimulus window (ms).
        stim_off: the end of the stimulus window (ms).
        threshold: the spike threshold (mV).

    Returns:
        The features, shape ``(num_simulations, 14)``; NaN for a trace that is not finite.
    """
    v = jnp.asarray(v)
    num_steps = v.shape[-1]
    time = jnp.arange(num_steps) * dt
    first, last = int(round(stim_on / dt)), min(int(round(stim_off / dt)), num_steps)
    duration = (last - first) * dt
    broken = jnp.any(~jnp.isfinite(v), axis=-1)
    v = jnp.where(broken[:, None], 0.0, v)  # keep the reductions finite; NaN is put back at the end

    stim = v[:, first:last]
    stim_time = time[first:last]
    crossing = (stim[:, 1:] >= threshold) & (stim[:, :-1] < threshold)
    crossing_time = stim_time[1:]
    count = crossing.sum(-1)
    has_spike = count > 0
    latency = jnp.where(has_spike, jnp.min(jnp.where(crossing, crossing_time, jnp.inf), -1) - stim_on, duration)

    # Interval to the previous crossing, at each crossing after the first.
    previous = lax.cummax(jnp.where(crossing, crossing_time, -jnp.inf), axis=1)
    previous = jnp.concatenate([jnp.full_like(previous[:, :1], -jnp.inf), previous[:, :-1]], axis=1)
    is_interval = crossing & jnp.isfinite(previous)
    interval = jnp.where(is_interval, crossing_time - jnp.where(is_interval, previous, 0.0), 0.0)
    num_intervals = is_interval.sum(-1)
    safe_intervals = jnp.maximum(num_intervals, 1)
    mean_isi = jnp.where(num_intervals > 0, interval.sum(-1) / safe_intervals, duration)
    isi_var = jnp.where(num_intervals > 0, (interval**2).sum(-1) / safe_intervals - mean_isi**2, 0.0)
    isi_cv = jnp.sqrt(jnp.maximum(isi_var, 0.0)) / mean_isi

    is_peak = (stim[:, 1:-1] > stim[:, :-2]) & (stim[:, 1:-1] >= stim[:, 2:]) & (stim[:, 1:-1] >= threshold)
    num_peaks = is_peak.sum(-1)
    mean_peak = jnp.where(
        num_peaks > 0, jnp.where(is_peak, stim[:, 1:-1], 0.0).sum(-1) / jnp.maximum(num_peaks, 1), stim.max(-1)
    )
    width = jnp.where(has_spike, (stim >= threshold).sum(-1) * dt / jnp.maximum(count, 1), 0.0)

    rest = v[:, : max(first, 2)]
    stim_mean = stim.mean(-1)
    centred = stim - stim_mean[:, None]
    variance = (centred**2).mean(-1)
    std = jnp.sqrt(variance)
    # A flat trace has no shape: its standardised moments are those of a constant (0, 0).
    safe_variance = jnp.where(variance > 1e-12, variance, 1.0)
    skewness = jnp.where(variance > 1e-12, (centred**3).mean(-1) / safe_variance**1.5, 0.0)
    kurtosis = jnp.where(variance > 1e-12, (centred**4).mean(-1) / safe_variance**2 - 3.0, 0.0)

    def autocorrelation(lag_ms):
        lag = max(1, int(round(lag_ms / dt)))
        if lag >= centred.shape[-1]:
            # A window no longer than the lag has no pairs: a constant, not NaN (which would
            # mark every simulation as broken).
            return jnp.zeros_like(variance)
        product = (centred[:, lag:] * centred[:, :-lag]).mean(-1)
        return jnp.where(variance > 1e-12, product / safe_variance, 1.0)

    features = jnp.stack(
        [
            count.astype(v.dtype),
            latency,
            mean_isi,
            isi_cv,
            mean_peak,
            width,
            rest.mean(-1),
            rest.std(-1),
            stim_mean,
            std,
            skewness,
            kurtosis,
            autocorrelation(1.0),
            autocorrelation(10.0),
        ],
        axis=-1,
    ).astype(v.dtype)
    return jnp.where(broken[:, None], jnp.nan, features)
