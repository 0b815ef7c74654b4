"""hz.load on crafted files, and saving that loses nothing (issue #20, items 2, 7 and 8).

Every crafted file is built here, small, from a fit saved by helmholtz 0.1.0
(``tests/data/legacy_fits``): a zip whose manifest or members are edited the way a
corrupted or hostile file would be. Ground truth is what each edit means: a member the
manifest does not name is never read; an array whose header declares more bytes than the
limit is refused before its data are decompressed; a model whose declared size was edited
no longer matches the data saved with it.
"""

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import helmholtz as hz
from helmholtz import _serialization
from helmholtz.perception import GaussianPrior, Observer

LEGACY = Path(__file__).parent / "data" / "legacy_fits"


def _members(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _manifest(path):
    return json.loads(_members(path)["helmholtz.json"])


def _write_zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload if isinstance(payload, bytes) else json.dumps(payload))
    return path


def _edited(tmp_path, source, edit_manifest=None, **members):
    """A copy of ``source`` with its manifest edited and members replaced (None: removed)."""
    content = _members(LEGACY / source)
    manifest = json.loads(content["helmholtz.json"])
    if edit_manifest is not None:
        manifest = edit_manifest(manifest) or manifest
    content["helmholtz.json"] = json.dumps(manifest).encode()
    for name, payload in members.items():
        name = name.replace("__", "/") + ".npy"
        if payload is None:
            content.pop(name)
        else:
            content[name] = payload
    return _write_zip(tmp_path / f"edited_{source}", content)


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_members_the_manifest_does_not_name_are_never_read(tmp_path):
    path = _edited(tmp_path, "svi.hz", arrays__a99=b"not an array at all")
    assert hz.load(path).method == "svi"


def test_an_array_declared_over_the_limit_is_refused_before_decompressing(tmp_path):
    # 16 MB of zeros compress to a few kB: what a zip bomb is made of.
    path = _edited(tmp_path, "svi.hz", arrays__a0=_npy(np.zeros(2 * 2**20)))
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"arrays/a0\.npy.*over the 1,048,576 bytes left to load.*max_array_bytes"):
        hz.load(path, max_array_bytes=2**20)


def test_a_header_declaring_terabytes_fails_fast(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    path = _edited(tmp_path, "svi.hz", arrays__a0=header.getvalue() + b"\0" * 64)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"declares \(1000000, 1000000\) float64"):
        hz.load(path)
    assert time.perf_counter() - start < 5


def test_the_limit_has_an_override_and_an_environment_variable(monkeypatch):
    monkeypatch.setenv("HELMHOLTZ_MAX_LOAD_BYTES", "100")
    with pytest.raises(ValueError, match="over the 100 bytes left to load"):
        hz.load(LEGACY / "nuts.hz")
    assert hz.load(LEGACY / "nuts.hz", max_array_bytes=10**6).method == "nuts"  # the argument wins
    monkeypatch.setenv("HELMHOLTZ_MAX_LOAD_BYTES", "lots")
    with pytest.raises(ValueError, match="HELMHOLTZ_MAX_LOAD_BYTES must be a number of bytes"):
        hz.load(LEGACY / "svi.hz")
    monkeypatch.delenv("HELMHOLTZ_MAX_LOAD_BYTES")
    with pytest.raises(ValueError, match="max_array_bytes must be a positive number of bytes"):
        hz.load(LEGACY / "svi.hz", max_array_bytes=0)


def test_an_edited_model_size_fails_before_anything_of_that_size_is_built(tmp_path):
    def grow(manifest):
        manifest["content"]["__dict__"]["model"]["fields"]["obs_dim"] = 20_000

    path = _edited(tmp_path, "nuts.hz", grow)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"does not accept the data saved with it.*20000 values, got shape \(\d+, 4\)"):
        hz.load(path).sample(0, 10)
    assert time.perf_counter() - start < 10


def test_a_manifest_that_is_a_list_is_a_clear_error(tmp_path):
    path = _write_zip(tmp_path / "list.hz", {"helmholtz.json": [1, 2, 3]})
    with pytest.raises(ValueError, match="holds a JSON list, not the object that .save"):
        hz.load(path)


def test_a_corrupted_member_is_a_clear_error(tmp_path):
    path = tmp_path / "corrupt.hz"
    path.write_bytes((LEGACY / "nuts.hz").read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("arrays/a1.npy")
    data = bytearray(path.read_bytes())
    # Overwrite the middle of the member's deflated data (after its local header).
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    data[start : start + 400] = bytes(range(256)) + bytes(range(144))
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"the array member arrays/a1\.npy is unreadable or corrupt"):
        hz.load(path)


def test_a_missing_member_is_a_clear_error(tmp_path):
    path = _edited(tmp_path, "svi.hz", arrays__a1=None)
    with pytest.raises(ValueError, match=r"names the array 'a1', but the file has no member arrays/a1\.npy"):
        hz.load(path)


def test_a_renamed_field_names_the_field_and_the_release_that_wrote_the_file(tmp_path):
    def rename(manifest):
        fields = manifest["content"]["__dict__"]["model"]["fields"]
        fields["center"] = fields.pop("centered")

    with pytest.raises(
        ValueError,
        match=r"field 'center' that EightSchools no longer has.*lacks the field 'centered'"
        r".*written by helmholtz 0\.1\.0 or earlier",
    ):
        hz.load(_edited(tmp_path, "svi.hz", rename))


def test_a_missing_field_is_an_error_not_its_default(tmp_path):
    """An isotropic PPCA must not reload as the default (diagonal) noise."""

    def drop(manifest):
        del manifest["content"]["__dict__"]["model"]["fields"]["noise"]

    with pytest.raises(ValueError, match=r"saved LinearLVM does not match this release's: it lacks the field 'noise'"):
        hz.load(_edited(tmp_path, "nuts.hz", drop))


def test_saved_files_record_the_release_that_wrote_them(tmp_path):
    path = hz.load(LEGACY / "svi.hz").save(tmp_path / "again.hz")
    manifest = _manifest(path)
    assert manifest["helmholtz_version"] == hz.__version__ and manifest["version"] == _serialization.FORMAT_VERSION
    manifest["content"]["__dict__"]["model"]["fields"]["extra"] = 1
    members = _members(path)
    members["helmholtz.json"] = json.dumps(manifest).encode()
    with pytest.raises(ValueError, match=rf"field 'extra'.*written by helmholtz {hz.__version__}, this is"):
        hz.load(_write_zip(tmp_path / "edited.hz", members))


def test_a_field_declared_as_added_later_may_be_missing(tmp_path):
    """Observer gained ``priors`` (default ``()``) after 0.1.0; files of earlier releases
    without it still load, but another missing field is an error."""
    observer = Observer(GaussianPrior(0.0, 1.0), num_noise_levels=2)
    path = _serialization.write(tmp_path / "observer.hz", "model", observer)
    manifest = _manifest(path)
    del manifest["content"]["fields"]["priors"]
    old = _write_zip(tmp_path / "old.hz", {"helmholtz.json": manifest})
    assert _serialization.read(old, "model") == observer
    manifest["helmholtz_version"] = "0.2.0"  # a release that has the field must have saved it
    with pytest.raises(ValueError, match="it lacks the field 'priors'.*written by helmholtz 0.2.0"):
        _serialization.read(_write_zip(tmp_path / "newer.hz", {"helmholtz.json": manifest}), "model")
    del manifest["helmholtz_version"]
    del manifest["content"]["fields"]["lapse"]
    with pytest.raises(ValueError, match="it lacks the field 'lapse'"):
        _serialization.read(_write_zip(tmp_path / "older.hz", {"helmholtz.json": manifest}), "model")


# -- saving: nothing half-written, nothing left behind ---------------------------------------


def test_an_interrupted_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    fit = hz.load(LEGACY / "svi.hz")
    path = fit.save(tmp_path / "fit.hz")
    before = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.hz"]


def test_a_save_reaches_the_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda *a: (events.append("replace"), real_replace(*a))[1])
    hz.load(LEGACY / "svi.hz").save(tmp_path / "fit.hz")
    assert events[:2] == ["fsync", "replace"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_save(tmp_path):
    """kill -9 cannot be caught; the next save to the same path removes what it left."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    leftover = tmp_path / f".fit.hz.{dead_pid}.abc123.tmp"
    leftover.write_bytes(b"\0" * 1000)
    old = time.time() - 3600
    os.utime(leftover, (old, old))
    alive = tmp_path / f".fit.hz.{os.getppid()}.def456.tmp"  # a live process's: left alone
    alive.write_bytes(b"")
    os.utime(alive, (old, old))
    hz.load(LEGACY / "svi.hz").save(tmp_path / "fit.hz")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["fit.hz", alive.name])


def test_garbage_and_non_helmholtz_zips_are_value_errors(tmp_path):
    garbage = tmp_path / "garbage.hz"
    garbage.write_bytes(b"PK\x03\x04" + bytes(200))
    with pytest.raises(ValueError):
        hz.load(garbage)
    bomb = _write_zip(tmp_path / "bomb.hz", {"helmholtz.json": b"[" * 100_000})
    with pytest.raises(ValueError, match="helmholtz.json"):
        hz.load(bomb)
    stored = _write_zip(tmp_path / "stored.hz", {"helmholtz.json": b"\x00" * 10}, zipfile.ZIP_STORED)
    with pytest.raises(ValueError, match="its helmholtz.json is"):
        hz.load(stored)
