"""The main job's plumbing: a recording in, a report out, and clear errors for bad input.

The fits here are tiny (a short synthetic sweep, a few hundred simulations): what is
checked is that the report says what the fit says, not the fit's accuracy, which the slow
tests and ``benchmarks/allen_cells.py`` measure.
"""

import json

import numpy as np
import pytest

import helmholtz as hz
from helmholtz.app.cli import main
from helmholtz.app.recording_fit import fit_recording, synthetic_recording
from helmholtz.data import Recording

PARAMETERS = {
    "g_Na": 30.0,
    "g_K": 4.0,
    "g_leak": 0.04,
    "g_M": 0.05,
    "tau_max": 800.0,
    "V_T": -58.0,
    "noise": 0.05,
    "E_leak": -72.0,
}


@pytest.fixture(scope="module")
def short_recording():
    """120 ms at dt = 0.1 ms, step from 20 to 100 ms, simulated from known parameters."""
    dt, stim_on, stim_off = 0.1, 20.0, 100.0
    time = np.arange(1200) * dt
    current = np.where((time >= stim_on) & (time < stim_off), 0.15, 0.0).astype(np.float32)
    draft = Recording(np.full_like(current, -70.0), current, dt, stim_on, stim_off, "short", "test")
    model = hz.models.HodgkinHuxley.cortical(recording=draft)
    voltage = np.asarray(model.simulate(0, PARAMETERS), dtype=np.float32)
    return Recording(voltage, current, dt, stim_on, stim_off, "short", "simulated in the test")


def test_the_report_states_what_the_fit_holds(short_recording, tmp_path):
    # Five epochs keep the test quick; sbi says (rightly) that training has not converged.
    with pytest.warns(UserWarning, match="max_num_epochs"):
        fit, written = fit_recording(
            short_recording, out=tmp_path, num_simulations=400, num_rounds=1, max_num_epochs=5, progress_bar=False
        )
    assert set(written) >= {"posterior", "parameters", "features", "pair", "traces", "feature_plot", "fit", "summary"}
    assert all(path.stat().st_size > 0 for path in written.values())
    summary = json.loads(written["summary"].read_text())
    model = fit.model
    observed = np.asarray(model.summarize(np.asarray(short_recording.voltage)[None]))[0]
    names = list(model.feature_names)
    assert summary["observed_spike_count"] == observed[names.index("spike_count")]
    assert summary["simulations"] == [400]
    # Where the time went: one figure per round, each a positive number of seconds.
    assert len(summary["seconds_simulating"]) == len(summary["seconds_training"]) == 1
    assert summary["seconds_simulating"][0] > 0 and summary["seconds_training"][0] > 0
    assert set(summary["posterior_mode"]) == set(model.parameter_names)
    rows = written["features"].read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == names
    np.testing.assert_allclose([float(row.split(",")[1]) for row in rows[1:]], observed, rtol=1e-5)
    # The mode lies inside the prior box and the saved fit reloads with the same draws.
    for parameter in model.parameters:
        assert parameter.low <= summary["posterior_mode"][parameter.name] <= parameter.high
    loaded = hz.load(written["fit"])
    np.testing.assert_array_equal(loaded.sample(0, 10)["g_Na"], fit.sample(0, 10)["g_Na"])


def test_synthetic_default_has_the_allen_layout():
    recording = synthetic_recording()
    assert recording.num_samples == 72_500 and recording.dt == 0.02
    assert np.isfinite(recording.voltage).all() and recording.voltage.max() > 0  # it spikes


def test_fit_recording_command_reports_bad_files(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    rows = [(0.1 * i, -70.0, 0.1 if 2 <= i < 6 else 0.0) for i in range(8)]
    rows[3] = (0.3, float("nan"), 0.1)
    bad.write_text("time_ms,voltage_mV,current_nA\n" + "".join(f"{t},{v},{c}\n" for t, v, c in rows))
    assert main(["fit-recording", str(bad), "--out", str(tmp_path / "report")]) == 2
    error = capsys.readouterr().err
    assert "bad.csv" in error and "NaN" in error
    assert main(["fit-recording", str(tmp_path / "missing.nwb"), "--out", str(tmp_path / "report")]) == 2
    assert "missing.nwb" in capsys.readouterr().err


def test_an_observation_of_the_wrong_length_is_refused(short_recording):
    model = hz.models.HodgkinHuxley.cortical(recording=short_recording)
    with pytest.raises(ValueError, match=r"must have shape \(1200,\)"):
        hz.fit(model, short_recording.voltage[:-5], method="npe")
