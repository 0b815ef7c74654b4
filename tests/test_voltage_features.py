"""voltage_features on synthetic traces whose features are known by construction.

Each test builds a trace whose answer follows from how it was built (spike times placed by
hand, an i.i.d. Gaussian, an AR(1) process with a known autocorrelation) and compares the
features with that answer, never with a second run of the same code.
"""

import jax
import numpy as np
import pytest

from helmholtz.models.simulators.features import FEATURE_NAMES
from helmholtz.models.simulators.features import voltage_features as _voltage_features

# Jitted: one compilation per trace shape instead of one per operation.
voltage_features = jax.jit(_voltage_features, static_argnums=(1, 2, 3, 4))

DT = 0.1  # ms
NUM_SAMPLES = 2000  # 200 ms
STIM_ON, STIM_OFF = 20.0, 180.0  # samples 200 .. 1799
FIRST, LAST = 200, 1800
THRESHOLD = -10.0
REST = -70.0

# A spike as placed in the traces below: the sample at index i is the first at or above
# the threshold (the crossing); i + 1 is the peak; three samples are at or above -10 mV.
SPIKE_SHAPE = {-1: -40.0, 0: 0.0, 1: 30.0, 2: 5.0, 3: -30.0}
SPIKE_SAMPLES = np.array([350, 520, 800, 1130, 1500])


def features_of(traces):
    traces = np.asarray(traces, dtype=np.float32)
    single = traces.ndim == 1
    out = np.asarray(voltage_features(traces[None] if single else traces, DT, STIM_ON, STIM_OFF, THRESHOLD))
    return dict(zip(FEATURE_NAMES, out[0].astype(float))) if single else out


def flat_trace(level=REST):
    return np.full(NUM_SAMPLES, level, np.float32)


def spiking_trace():
    v = flat_trace()
    for i in SPIKE_SAMPLES:
        for offset, value in SPIKE_SHAPE.items():
            v[i + offset] = value
    return v


def gaussian_trace(seed=0, n=100_000, mean=-65.0, std=2.0):
    return (mean + std * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def ar1_trace(phi, n, seed=1, mean=-60.0, std=1.5):
    """x_t = phi x_{t-1} + e_t, started from its stationary distribution: corr at lag k is phi^k."""
    rng = np.random.default_rng(seed)
    innovations = rng.standard_normal(n) * std * np.sqrt(1.0 - phi**2)
    x = np.empty(n)
    x[0] = rng.standard_normal() * std
    for t in range(1, n):
        x[t] = phi * x[t - 1] + innovations[t]
    return (mean + x).astype(np.float32)


def test_flat_trace_has_no_spikes_and_the_documented_fallbacks():
    """Ground truth: a constant trace has no spikes, no spread and no shape; the module
    documents the fallbacks (latency and interval = stimulus duration, CV 0, peak = the
    highest voltage, width 0, standardised moments 0, autocorrelation 1)."""
    f = features_of(flat_trace())
    duration = STIM_OFF - STIM_ON
    expected = {
        "spike_count": 0.0,
        "first_spike_latency": duration,
        "mean_isi": duration,
        "isi_cv": 0.0,
        "spike_peak": REST,
        "spike_width": 0.0,
        "rest_mean": REST,
        "rest_std": 0.0,
        "stim_mean": REST,
        "stim_std": 0.0,
        "stim_skewness": 0.0,
        "stim_kurtosis": 0.0,
        "autocorrelation_1ms": 1.0,
        "autocorrelation_10ms": 1.0,
    }
    assert f == pytest.approx(expected, abs=1e-4)


def test_spikes_at_known_times():
    """Ground truth: five spikes placed at known samples (crossing at sample i, peak 30 mV
    at i + 1, three samples at or above threshold); latency, intervals and their CV follow
    from the placed times with NumPy."""
    f = features_of(spiking_trace())
    times = SPIKE_SAMPLES * DT
    intervals = np.diff(times)
    assert f["spike_count"] == len(SPIKE_SAMPLES)
    assert f["first_spike_latency"] == pytest.approx(times[0] - STIM_ON, abs=1e-4)
    assert f["mean_isi"] == pytest.approx(intervals.mean(), rel=1e-5)
    assert f["isi_cv"] == pytest.approx(intervals.std() / intervals.mean(), rel=1e-4)
    assert f["spike_peak"] == pytest.approx(30.0)
    assert f["spike_width"] == pytest.approx(3 * DT, rel=1e-5)
    assert f["rest_mean"] == pytest.approx(REST) and f["rest_std"] == pytest.approx(0.0, abs=1e-5)
    window = spiking_trace()[FIRST:LAST].astype(float)
    assert f["stim_mean"] == pytest.approx(window.mean(), rel=1e-5)
    assert f["stim_std"] == pytest.approx(window.std(), rel=1e-4)


def test_spikes_outside_the_window_do_not_count():
    """Ground truth: the window is [stim_on, stim_off); a spike placed before it and one
    after it are not counted, one inside is."""
    v = flat_trace()
    for i in (100, 900, 1900):
        for offset, value in SPIKE_SHAPE.items():
            v[i + offset] = value
    f = features_of(v)
    assert f["spike_count"] == 1
    assert f["first_spike_latency"] == pytest.approx(900 * DT - STIM_ON, abs=1e-4)
    assert f["mean_isi"] == pytest.approx(STIM_OFF - STIM_ON)  # one spike: no interval
    assert f["rest_std"] > 1.0  # the early spike is in the resting window


def test_gaussian_noise_has_zero_skewness_and_excess_kurtosis():
    """Ground truth: i.i.d. N(-65, 2^2) samples have skewness 0 and excess kurtosis 0; with
    n = 80,000 samples in the window their standard errors are sqrt(6/n) = 0.009 and
    sqrt(24/n) = 0.017; we allow 4 standard errors. The mean and std are those of the
    distribution within 4 standard errors too."""
    v = gaussian_trace()
    dt = 0.0025  # 100,000 samples in 250 ms; window [20, 220) ms = 80,000 samples
    f = np.asarray(voltage_features(v[None], dt, 20.0, 220.0, THRESHOLD))[0]
    f = dict(zip(FEATURE_NAMES, f.astype(float)))
    n = 80_000
    assert abs(f["stim_skewness"]) < 4 * np.sqrt(6 / n)
    assert abs(f["stim_kurtosis"]) < 4 * np.sqrt(24 / n)
    assert f["stim_mean"] == pytest.approx(-65.0, abs=4 * 2.0 / np.sqrt(n))
    assert f["stim_std"] == pytest.approx(2.0, abs=4 * 2.0 / np.sqrt(2 * n))
    assert f["spike_count"] == 0


def test_ar1_autocorrelation_at_the_feature_lags():
    """Ground truth: an AR(1) process x_t = phi x_{t-1} + e_t has autocorrelation phi^k at
    lag k. At dt = 0.1 ms the lags of 1 ms and 10 ms are 10 and 100 samples; phi = 0.97
    gives 0.737 and 0.048. Bartlett's formula for an AR(1) bounds the standard error of a
    sample autocorrelation by sqrt((1 + phi^2) / (1 - phi^2) / n) = 0.032 here (n = 36,000);
    we allow 4 of them."""
    phi, n = 0.97, 40_000
    v = ar1_trace(phi, n)
    stim_on, stim_off = 200.0, 3800.0  # 36,000 samples
    f = np.asarray(voltage_features(v[None], DT, stim_on, stim_off, THRESHOLD))[0]
    f = dict(zip(FEATURE_NAMES, f.astype(float)))
    se = np.sqrt((1 + phi**2) / (1 - phi**2) / 36_000)
    assert f["autocorrelation_1ms"] == pytest.approx(phi**10, abs=4 * se)
    assert f["autocorrelation_10ms"] == pytest.approx(phi**100, abs=4 * se)


def test_non_finite_trace_gives_a_nan_row_without_error():
    """Ground truth: the module's contract, a trace that blew up (NaN or inf anywhere, even
    outside the stimulus window) gives NaN for every feature, quietly (warnings are
    errors in this suite)."""
    for bad in (np.nan, np.inf, -np.inf):
        v = spiking_trace()
        v[-1] = bad
        f = features_of(v)
        assert all(np.isnan(value) for value in f.values()), bad


def test_short_window_autocorrelation_is_finite():
    """Ground truth: a stimulus window of 5 ms has no pair of samples 10 ms apart, so the
    10 ms autocorrelation is undefined; the documented fallback is 0 (not NaN, which would
    mark every simulation as broken), and the other features are unaffected."""
    v = gaussian_trace(n=NUM_SAMPLES)
    f = np.asarray(voltage_features(v[None], DT, 20.0, 25.0, THRESHOLD))[0]
    assert np.isfinite(f).all()
    assert f[FEATURE_NAMES.index("autocorrelation_10ms")] == 0.0


def test_batch_rows_are_independent():
    """Ground truth: each row's features depend on that row alone, so a batch mixing a flat
    trace, a spiking trace, noise and a broken trace gives, row by row, what each trace
    gives alone."""
    broken = spiking_trace()
    broken[700] = np.nan
    rows = [flat_trace(), spiking_trace(), gaussian_trace(n=NUM_SAMPLES), broken, flat_trace(-50.0)]
    batch = features_of(np.stack(rows))
    for i, row in enumerate(rows):
        alone = np.asarray(voltage_features(row[None], DT, STIM_ON, STIM_OFF, THRESHOLD))[0]
        np.testing.assert_allclose(batch[i], alone, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert np.isnan(batch[3]).all() and np.isfinite(batch[[0, 1, 2, 4]]).all()
