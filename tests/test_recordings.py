"""Current-clamp loaders: real Allen sweeps, round trips through each file library, bad input.

Round-trip files are written with pynwb, pyabf, h5py and NumPy themselves, so the expected
values come from arrays built here, not from the loader under test.
"""

import datetime
import json
import re

import h5py
import numpy as np
import pytest

from helmholtz.data import (
    Recording,
    allen_recordings,
    detect_step,
    fetch_allen_sweep,
    load_recording,
)


def _allen_files():
    try:
        return allen_recordings()
    except FileNotFoundError:
        return []


ALLEN_FILES = _allen_files()


def _readme_table(folder):
    """{file stem: (step pA, V min, V max)} from the reference README's table."""
    rows = re.findall(
        r"^\| (cell_\w+) \| (\d+) \| (-?[\d.]+) \.\. (-?[\d.]+) \|$",
        (folder / "README.md").read_text(),
        flags=re.MULTILINE,
    )
    return {name: (float(step), float(low), float(high)) for name, step, low, high in rows}


def test_all_ten_allen_sweeps_are_found():
    if not ALLEN_FILES:
        pytest.skip("shared/reference/allen_cell_types is not available")
    assert len(ALLEN_FILES) == 10
    assert ALLEN_FILES == sorted(ALLEN_FILES)


@pytest.mark.parametrize("path", ALLEN_FILES or [None], ids=lambda p: p.stem if p is not None else "missing")
def test_allen_sweep_matches_its_readme_row(path):
    if path is None:
        pytest.skip("shared/reference/allen_cell_types is not available")
    step_pA, v_min, v_max = _readme_table(path.parent)[path.stem]
    recording = load_recording(path)
    assert recording.num_samples == 72_500
    assert recording.dt == pytest.approx(0.02)
    # Within half a sample: cell_569469018_sweep_44 stores stim_off_ms 1204.99, although its
    # current (like the README) ends the step at 1204.98.
    assert (recording.stim_on, recording.stim_off) == pytest.approx((205.0, 1204.98), abs=0.01)
    assert recording.duration == pytest.approx(1450.0)
    assert recording.stimulus_amplitude * 1000 == pytest.approx(step_pA, abs=10)
    assert recording.voltage.min() == pytest.approx(v_min, abs=0.1)
    assert recording.voltage.max() == pytest.approx(v_max, abs=0.1)
    # The stored window agrees with the one found from the current alone.
    assert detect_step(recording.current, recording.dt) == pytest.approx((205.0, 1204.98))


# --- synthetic sweeps ---------------------------------------------------------------


def _sweep(n=2000, first=400, last=1599, step_nA=0.15, seed=0):
    """A noisy resting trace with a step-driven depolarisation, and its current in nA."""
    rng = np.random.default_rng(seed)
    current = np.zeros(n)
    current[first : last + 1] = step_nA
    voltage = -65.0 + 80.0 * current + rng.normal(0.0, 0.5, n)
    return voltage, current


def _write_nwb(path, sweeps, *, only_voltage_clamp=False):
    """sweeps: {sweep_number: (voltage mV, current nA)}, stored in uV and A at 20 kHz."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.icephys import (
        CurrentClampSeries,
        CurrentClampStimulusSeries,
        VoltageClampSeries,
    )

    nwb = NWBFile(
        session_description="test",
        identifier="test",
        session_start_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
    )
    electrode = nwb.create_icephys_electrode(
        name="electrode", description="test", device=nwb.create_device(name="amplifier")
    )
    for number, (voltage, current) in sweeps.items():
        # uint32 sweep numbers: a plain int is cast by hdmf with a DtypeConversionWarning.
        common = dict(electrode=electrode, rate=20_000.0, gain=1.0, sweep_number=np.uint32(number))
        if only_voltage_clamp:
            nwb.add_acquisition(VoltageClampSeries(name=f"vc_{number}", data=current * 1e-9, **common))
            continue
        nwb.add_acquisition(CurrentClampSeries(name=f"cc_{number}", data=voltage * 1e3, conversion=1e-6, **common))
    # Stimuli added in reverse order, so pairing them by position would be caught.
    for number, (_voltage, current) in reversed(sweeps.items()):
        nwb.add_stimulus(
            CurrentClampStimulusSeries(
                name=f"stim_{number}",
                data=current * 1e-9,
                electrode=electrode,
                rate=20_000.0,
                gain=1.0,
                sweep_number=np.uint32(number),
            )
        )
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)


def test_nwb_round_trip_converts_units_and_pairs_stimulus_by_sweep_number(tmp_path):
    sweeps = {3: _sweep(step_nA=0.15, seed=1), 4: _sweep(first=300, last=1399, step_nA=0.3)}
    path = tmp_path / "cell.nwb"
    _write_nwb(path, sweeps)
    first = load_recording(path)
    np.testing.assert_allclose(first.voltage, sweeps[3][0], atol=1e-4)
    np.testing.assert_allclose(first.current, sweeps[3][1], atol=1e-7)
    assert first.dt == pytest.approx(0.05)
    assert (first.stim_on, first.stim_off) == pytest.approx((400 * 0.05, 1599 * 0.05))
    chosen = load_recording(path, sweep=4)
    np.testing.assert_allclose(chosen.voltage, sweeps[4][0], atol=1e-4)
    assert chosen.stimulus_amplitude == pytest.approx(0.3)
    assert (chosen.stim_on, chosen.stim_off) == pytest.approx((300 * 0.05, 1399 * 0.05))
    with pytest.raises(ValueError, match=r"has no sweep 7; sweep numbers: \[3, 4\]"):
        load_recording(path, sweep=7)


def test_nwb_with_only_voltage_clamp_is_refused(tmp_path):
    path = tmp_path / "vc.nwb"
    _write_nwb(path, {0: _sweep()}, only_voltage_clamp=True)
    with pytest.raises(ValueError, match=r"no current-clamp sweep.*VoltageClampSeries"):
        load_recording(path)


def _abf_without_command(path, voltage, units):
    from pyabf.abfWriter import writeABF1

    writeABF1(voltage[np.newaxis, :], str(path), 20_000.0, units=units)


def test_abf_voltage_and_command_are_converted(tmp_path, monkeypatch):
    # writeABF1 leaves the epoch table blank, so the file cannot carry a command waveform
    # (pyabf synthesises NaN). The voltage comes from the real file; the command is put in
    # through pyabf's own sweepC property, as pyabf would synthesise it from an epoch table.
    import pyabf

    voltage, current = _sweep()
    path = tmp_path / "cell.abf"
    _abf_without_command(path, voltage / 1000, units="V")
    monkeypatch.setattr(pyabf.ABF, "sweepC", property(lambda abf: current * 1000))  # pA
    recording = load_recording(path)
    # ABF stores 16-bit integers: one step is 0.03 mV at this range.
    np.testing.assert_allclose(recording.voltage, voltage, atol=0.05)
    np.testing.assert_allclose(recording.current, current, atol=1e-7)
    assert recording.dt == pytest.approx(0.05)
    assert (recording.stim_on, recording.stim_off) == pytest.approx((20.0, 79.95))


def test_abf_without_command_waveform_is_refused(tmp_path):
    path = tmp_path / "cell.abf"
    _abf_without_command(path, _sweep()[0], units="mV")
    with pytest.raises(ValueError, match="has no command waveform"):
        load_recording(path)


def test_abf_voltage_clamp_is_refused(tmp_path):
    path = tmp_path / "vc.abf"
    _abf_without_command(path, _sweep()[1] * 1000, units="pA")
    with pytest.raises(ValueError, match=r"no current-clamp sweep.*pA"):
        load_recording(path)


def _write_csv(path, columns):
    header = ",".join(columns)
    np.savetxt(path, np.column_stack(list(columns.values())), delimiter=",", header=header, comments="", fmt="%.10g")


def test_csv_in_picoamperes_is_converted(tmp_path):
    voltage, current = _sweep()
    path = tmp_path / "cell.csv"
    _write_csv(path, {"time_ms": np.arange(voltage.size) * 0.1, "voltage_mV": voltage, "current_pA": current * 1000})
    recording = load_recording(path)
    np.testing.assert_allclose(recording.voltage, voltage, atol=1e-4)
    np.testing.assert_allclose(recording.current, current, atol=1e-7)
    assert recording.dt == pytest.approx(0.1)
    assert (recording.stim_on, recording.stim_off) == pytest.approx((40.0, 159.9))


def test_csv_with_uneven_time_or_missing_current_is_refused(tmp_path):
    voltage, current = _sweep()
    time = np.arange(voltage.size) * 0.1
    uneven = tmp_path / "uneven.csv"
    _write_csv(uneven, {"time_ms": time**1.01, "voltage_mV": voltage, "current_nA": current})
    with pytest.raises(ValueError, match="uniform steps"):
        load_recording(uneven)
    no_current = tmp_path / "no_current.csv"
    _write_csv(no_current, {"time_ms": time, "voltage_mV": voltage})
    with pytest.raises(ValueError, match=r"missing columns \['current_nA or current_pA"):
        load_recording(no_current)


def test_zero_current_has_no_step(tmp_path):
    voltage, _ = _sweep()
    path = tmp_path / "rest.csv"
    _write_csv(
        path, {"time_ms": np.arange(voltage.size) * 0.1, "voltage_mV": voltage, "current_nA": np.zeros(voltage.size)}
    )
    with pytest.raises(ValueError, match="holds no current step"):
        load_recording(path)


# --- bad input ----------------------------------------------------------------------


def _allen_npz(path, **overrides):
    voltage, current = _sweep()
    arrays = dict(
        voltage_mV=voltage.astype(np.float32),
        current_uA=(current / 1000).astype(np.float32),
        dt_ms=0.02,
        stim_on_ms=8.0,
        stim_off_ms=31.98,
    )
    arrays.update(overrides)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


def test_npz_in_the_allen_layout_converts_microamperes(tmp_path):
    recording = load_recording(_allen_npz(tmp_path / "cell.npz"))
    assert recording.stimulus_amplitude == pytest.approx(0.15)
    assert (recording.stim_on, recording.stim_off) == (8.0, 31.98)


def test_nan_in_voltage_is_reported_with_count_and_index(tmp_path):
    voltage = _sweep()[0]
    voltage[[5, 9]] = np.nan
    with pytest.raises(ValueError, match=r"voltage holds 2 NaN/inf values \(first at index 5\)"):
        load_recording(_allen_npz(tmp_path / "nan.npz", voltage_mV=voltage))


def test_missing_current_key_names_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"missing keys \['current_uA'\].*expected"):
        load_recording(_allen_npz(tmp_path / "partial.npz", current_uA=None))


@pytest.mark.parametrize(
    "scale, message", [(1e-3, "looks like volts.*multiply by 1000"), (1e3, "not a membrane potential in millivolts")]
)
def test_voltage_in_wrong_units_is_refused(tmp_path, scale, message):
    voltage = _sweep()[0] * scale
    with pytest.raises(ValueError, match=message):
        load_recording(_allen_npz(tmp_path / "units.npz", voltage_mV=voltage))


def test_unknown_suffix_and_missing_file(tmp_path):
    odd = tmp_path / "cell.txt"
    odd.write_text("1,2,3")
    with pytest.raises(ValueError, match=r"unknown recording format '\.txt'.*\.npz, \.nwb"):
        load_recording(odd)
    with pytest.raises(FileNotFoundError, match="no such recording file"):
        load_recording(tmp_path / "absent.nwb")


@pytest.mark.parametrize(
    "suffix, message", [(".npz", "cannot read as a NumPy .npz"), (".nwb", "cannot read as an HDF5/NWB")]
)
def test_truncated_and_garbage_files_are_refused(tmp_path, suffix, message):
    whole = tmp_path / f"whole{suffix}"
    if suffix == ".npz":
        _allen_npz(whole)
    else:
        _write_nwb(whole, {0: _sweep()})
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    garbage = tmp_path / f"garbage{suffix}"
    garbage.write_bytes(b"not a recording\n" * 64)
    for broken in (truncated, garbage):
        with pytest.raises(ValueError, match=message):
            load_recording(broken)


def test_hdf5_that_is_not_nwb_is_refused(tmp_path):
    path = tmp_path / "plain.nwb"
    with h5py.File(path, "w") as h5:
        h5["values"] = np.arange(3)
    with pytest.raises(ValueError, match="cannot read as an NWB 2 file"):
        load_recording(path)


# --- Recording itself ---------------------------------------------------------------


def _recording(**overrides):
    voltage, current = _sweep()
    fields = dict(
        voltage=voltage, current=current, dt=0.05, stim_on=20.0, stim_off=79.95, name="synthetic", source="test"
    )
    fields.update(overrides)
    return Recording(**fields)


def test_recording_properties_and_window():
    recording = _recording()
    assert recording.num_samples == 2000
    assert recording.duration == pytest.approx(100.0)
    assert recording.time[-1] == pytest.approx(99.95)
    assert recording.voltage.dtype == np.float32 and not recording.voltage.flags.writeable
    assert recording.stimulus_amplitude == pytest.approx(0.15)
    cut = recording.window(10.0, 50.0)
    assert cut.num_samples == 800
    assert (cut.stim_on, cut.stim_off) == pytest.approx((10.0, 40.0))
    np.testing.assert_array_equal(cut.voltage, recording.voltage[200:1000])
    with pytest.raises(ValueError, match="misses the current step"):
        recording.window(85.0, 95.0)
    with pytest.raises(ValueError, match="outside the sweep"):
        recording.window(50.0, 120.0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(current=np.zeros(5)), "same length"),
        (dict(dt=0.0), "dt must be a positive"),
        (dict(stim_on=80.0, stim_off=20.0), "stim_on < stim_off"),
        (dict(stim_off=150.0), r"duration=100\.0"),
        (dict(current=np.full(2000, np.inf)), r"current holds 2000 NaN/inf"),
    ],
)
def test_recording_rejects_inconsistent_fields(overrides, message):
    with pytest.raises(ValueError, match=message):
        _recording(**overrides)


def test_detect_step_ignores_a_short_test_pulse_before_the_step():
    current = np.zeros(1000)
    current[10:30] = -0.2  # test pulse, larger than half the step
    current[200:700] = 0.3
    assert detect_step(current, 0.1) == pytest.approx((20.0, 69.9))


# --- Allen NWB 1 download and cache -------------------------------------------------


def _write_allen_nwb1(path, sweeps):
    """The Allen NWB 1 layout: volts in 10 uV counts, amperes in pA counts, 50 kHz."""
    with h5py.File(path, "w") as h5:
        h5["nwb_version"] = "NWB-1.0.5"
        for number, (response, stimulus, response_unit) in sweeps.items():
            for part, data, conversion, unit in (
                ("response", response, 1e-5, response_unit),
                ("stimulus", stimulus, 1e-12, "Amps"),
            ):
                # As in Allen files, the epoch links to the series under acquisition/stimulus.
                series = h5.create_group(f"{part}/timeseries/Sweep_{number}")
                data_set = series.create_dataset("data", data=data)
                data_set.attrs.update(conversion=conversion, unit=unit)
                series.create_dataset("starting_time", data=0.0).attrs["rate"] = 50_000.0
                h5[f"epochs/Sweep_{number}/{part}/timeseries"] = h5py.SoftLink(series.name)
    return path


def _allen_file(path):
    voltage, current = _sweep()
    return (
        _write_allen_nwb1(
            path,
            {
                5: (voltage * 100, current * 1000, "Volts"),
                6: (current * 1e5, current * 1000, "Amps"),  # a voltage-clamp sweep
            },
        ),
        voltage,
        current,
    )


def _no_network(url):
    raise AssertionError(f"network used for {url}")


def test_fetch_allen_sweep_reads_the_cache_without_network(tmp_path):
    _, voltage, current = _allen_file(tmp_path / "123.nwb")
    recording = fetch_allen_sweep(123, 5, cache_dir=tmp_path, download=_no_network)
    assert recording.name == "cell_123_sweep_5"
    np.testing.assert_allclose(recording.voltage, voltage, atol=1e-4)
    np.testing.assert_allclose(recording.current, current, atol=1e-7)
    assert recording.dt == pytest.approx(0.02)
    assert (recording.stim_on, recording.stim_off) == pytest.approx((8.0, 31.98))
    with pytest.raises(ValueError, match="sweep 6 holds no current-clamp sweep"):
        fetch_allen_sweep(123, 6, cache_dir=tmp_path, download=_no_network)
    with pytest.raises(ValueError, match=r"has no sweep 9; available: \[5, 6\]"):
        fetch_allen_sweep(123, 9, cache_dir=tmp_path, download=_no_network)


def test_fetch_allen_sweep_downloads_once_and_caches(tmp_path):
    payload_path, voltage, _ = _allen_file(tmp_path / "made.nwb")
    requested = []

    def fake_download(url):
        requested.append(url)
        if "api.brain-map.org" in url:
            assert "id$eq123]" in url
            link = "/api/v2/well_known_file_download/42"
            return json.dumps(
                {"success": True, "msg": [{"id": 123, "ephys_result": {"well_known_files": [{"download_link": link}]}}]}
            ).encode()
        assert url == "https://celltypes.brain-map.org/api/v2/well_known_file_download/42"
        return payload_path.read_bytes()

    cache = tmp_path / "cache"
    recording = fetch_allen_sweep(123, 5, cache_dir=cache, download=fake_download)
    np.testing.assert_allclose(recording.voltage, voltage, atol=1e-4)
    assert len(requested) == 2
    assert sorted(p.name for p in cache.iterdir()) == ["123.nwb"]  # no temp file left
    fetch_allen_sweep(123, 5, cache_dir=cache, download=fake_download)
    assert len(requested) == 2


def test_fetch_allen_sweep_does_not_cache_a_bad_download(tmp_path):
    def html_download(url):
        if "api.brain-map.org" in url:
            return json.dumps({"msg": [{"ephys_result": {"well_known_files": [{"download_link": "/x"}]}}]}).encode()
        return b"<html>Service unavailable</html>"

    with pytest.raises(ValueError, match="not an HDF5/NWB file"):
        fetch_allen_sweep(1, 5, cache_dir=tmp_path, download=html_download)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="lists no NWB file for specimen 2"):
        fetch_allen_sweep(2, 5, cache_dir=tmp_path, download=lambda url: b'{"msg": []}')


# --- units against physiological ranges (issue #20, item 5) ------------------------------


def test_picoamperes_in_a_microampere_field_are_refused_naming_the_unit(tmp_path):
    """The issue's case: a 130 pA step written into current_uA would be 1.3e5 nA."""
    _, current = _sweep(step_nA=0.13)
    path = _allen_npz(tmp_path / "pa.npz", current_uA=(current * 1000).astype(np.float32))
    with pytest.raises(ValueError, match=r"current_uA peaks at 130 uA, which is 1\.3e\+05 nA.*look like pA"):
        load_recording(path)


def test_nanoamperes_in_a_picoampere_column_are_refused_naming_the_unit(tmp_path):
    voltage, current = _sweep()
    path = tmp_path / "cell.csv"
    _write_csv(path, {"time_ms": np.arange(voltage.size) * 0.1, "voltage_mV": voltage, "current_pA": current})
    with pytest.raises(ValueError, match=r"column current_pA peaks at 0\.15 pA.*1 pA to 100 nA.*look like nA"):
        load_recording(path)


@pytest.mark.parametrize("scale, unit", [(1e3, "pA"), (1e-9, "A")])
def test_a_recording_in_the_wrong_current_unit_is_refused(scale, unit):
    _, current = _sweep()
    with pytest.raises(ValueError, match=rf"current peaks at .* nA.*The numbers look like {unit}:"):
        _recording(current=current * scale)


def test_microvolts_are_named_as_the_likely_unit(tmp_path):
    voltage = _sweep()[0] * 1e3
    with pytest.raises(ValueError, match="not a membrane potential in millivolts.*look like uV"):
        load_recording(_allen_npz(tmp_path / "units.npz", voltage_mV=voltage))


def test_a_csv_recording_with_a_byte_order_mark_loads(tmp_path):
    voltage, current = _sweep()
    path = tmp_path / "cell.csv"
    _write_csv(path, {"time_ms": np.arange(voltage.size) * 0.1, "voltage_mV": voltage, "current_nA": current})
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load_recording(path).num_samples == voltage.size


# --- the Allen fetcher cannot be sent elsewhere (issue #20, item 3) -----------------------


def _serving(payload_path, link="/api/v2/well_known_file_download/42"):
    requested = []

    def download(url):
        requested.append(url)
        if "api.brain-map.org" in url:
            return json.dumps({"msg": [{"ephys_result": {"well_known_files": [{"download_link": link}]}}]}).encode()
        return payload_path.read_bytes()

    return download, requested


def test_the_fetcher_uses_https_only(tmp_path):
    download, requested = _serving(_allen_file(tmp_path / "made.nwb")[0])
    fetch_allen_sweep(123, 5, cache_dir=tmp_path / "cache", download=download)
    assert len(requested) == 2 and all(url.startswith("https://") for url in requested)


@pytest.mark.parametrize(
    "link",
    [
        "@attacker.example/x.nwb",
        "//attacker.example/x.nwb",
        "https://attacker.example/x.nwb",
        "http://celltypes.brain-map.org/x.nwb",
        "x.nwb",
        None,
    ],
)
def test_a_download_link_cannot_name_another_host(tmp_path, link):
    download, requested = _serving(_allen_file(tmp_path / "made.nwb")[0], link=link)
    with pytest.raises(ValueError, match="not a path on https://celltypes.brain-map.org; refusing it"):
        fetch_allen_sweep(123, 5, cache_dir=tmp_path / "cache", download=download)
    assert len(requested) == 1 and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "specimen_id, sweep_number, error",
    [
        ("../x", 5, TypeError),
        (1.5, 5, TypeError),
        (True, 5, TypeError),
        (-1, 5, ValueError),
        (123, "../5", TypeError),
        (123, -2, ValueError),
    ],
)
def test_specimen_and_sweep_must_be_non_negative_integers(tmp_path, specimen_id, sweep_number, error):
    with pytest.raises(error, match="must be"):
        fetch_allen_sweep(specimen_id, sweep_number, cache_dir=tmp_path / "cache", download=_no_network)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "x.nwb").exists()


def test_a_cached_file_that_is_not_nwb_is_downloaded_again(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "123.nwb").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)  # cut short
    download, requested = _serving(_allen_file(tmp_path / "made.nwb")[0])
    with pytest.warns(UserWarning, match=r"cached .*123\.nwb does not open as an NWB file; downloading it again"):
        recording = fetch_allen_sweep(123, 5, cache_dir=cache, download=download)
    assert recording.name == "cell_123_sweep_5" and len(requested) == 2
    assert sorted(p.name for p in cache.iterdir()) == ["123.nwb"]
    fetch_allen_sweep(123, 5, cache_dir=cache, download=_no_network)


def test_a_download_without_the_sweep_is_not_cached(tmp_path):
    payload = _write_allen_nwb1(tmp_path / "other.nwb", {7: (_sweep()[0] * 100, _sweep()[1] * 1000, "Volts")})
    download, _ = _serving(payload)
    with pytest.raises(ValueError, match=r"not a usable NWB file with sweep 5: .*has no sweep 5; available: \[7\]"):
        fetch_allen_sweep(123, 5, cache_dir=tmp_path / "cache", download=download)
    assert list((tmp_path / "cache").iterdir()) == []
