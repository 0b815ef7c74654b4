"""Spike-train data: nitime's grasshopper recordings and the Lorenz-driven population."""

import jax
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from helmholtz.data.spikes import load_grasshopper, lorenz_spikes, lorenz_trajectory


@pytest.mark.parametrize("recording", [1, 2])
def test_grasshopper_recordings_match_their_headers(recording):
    """The file header (written by the recording software, not by us) says the stimulus
    level had a standard deviation of 6 dB and the cell was driven near 100 Hz: our
    pascal-to-dB conversion and time units must reproduce both."""
    data = load_grasshopper(recording)
    assert data.metadata["standard deviation (dB)"] == "6"
    assert data.stimulus.std() == pytest.approx(6.0, abs=0.1)
    assert data.duration == pytest.approx(10.0)
    assert 0 < data.spike_times.min() and data.spike_times.max() < data.duration
    assert 80 < len(data.spike_times) / data.duration < 100  # "desired firing rate (Hz): 100"
    assert np.diff(data.spike_times).min() > 1e-3  # a refractory period, not a unit error
    counts, stimulus = data.binned(0.01)
    assert counts.shape == stimulus.shape == (1000,) and counts.sum() == len(data.spike_times)


def test_grasshopper_files_that_are_not_tables_are_refused(tmp_path):
    (tmp_path / "grasshopper_spike_times1.txt").write_text("# header\n100\n50\n")
    (tmp_path / "grasshopper_stimulus1.txt").write_text("0 0.1\n50 0.2\n100 0.3\n")
    with pytest.raises(ValueError, match="spike times must increase"):
        load_grasshopper(1, data_dir=tmp_path)
    (tmp_path / "grasshopper_stimulus1.txt").write_text("0 0.1 4\n50 0.2 5\n")
    with pytest.raises(ValueError, match="expected 2 numeric column"):
        load_grasshopper(1, data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_grasshopper(2, data_dir=tmp_path)
    with pytest.raises(ValueError, match="recording must be 1 or 2"):
        load_grasshopper(3)


def test_lorenz_trajectory_matches_an_independent_integrator():
    """SciPy's DOP853 at tolerance 1e-12 as the reference, in float64. At a per-step
    tolerance of 1e-10 ours must agree to 1e-6 (the equations and parameters are right);
    at the default 1e-6, global error accumulates over ~10^3 steps and chaos amplifies it
    by about e^(0.9 x 2) = 6 over 2 time units: 1e-2 bounds it (states of size 10-40)."""
    times = np.linspace(0.0, 2.0, 201)
    start = np.array([-8.0, 7.0, 27.0])

    def lorenz(t, state):
        x, y, z = state
        return [10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z]

    reference = solve_ivp(lorenz, (0.0, 2.0), start, method="DOP853", t_eval=times, rtol=1e-12, atol=1e-12).y.T
    with jax.enable_x64(True):
        tight = np.asarray(lorenz_trajectory(start, times, tolerance=1e-10))
        default = np.asarray(lorenz_trajectory(start, times))
    np.testing.assert_allclose(tight, reference, atol=1e-6)
    np.testing.assert_allclose(default, reference, atol=1e-2)


def test_lorenz_spikes_are_poisson_around_their_rates():
    data = lorenz_spikes(0, num_trials=20, num_neurons=15, num_bins=50)
    assert data.counts.shape == data.rates.shape == (20, 50, 15) and data.latents.shape == (20, 50, 3)
    np.testing.assert_allclose(data.latents.mean((0, 1)), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.latents.std((0, 1)), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.log(data.rates), data.latents @ data.readout.T + data.baseline, atol=1e-4)
    # A sum of Poisson counts has variance equal to its mean: within 4 sd.
    expected = data.rates.sum()
    assert abs(data.counts.sum() - expected) < 4 * np.sqrt(expected)
    again = lorenz_spikes(0, num_trials=20, num_neurons=15, num_bins=50)
    np.testing.assert_array_equal(again.counts, data.counts)
