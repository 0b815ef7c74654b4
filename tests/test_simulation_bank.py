"""The simulation bank keeps only simulations that belong to the run (issue #20, item 1).

Ground truth: what made each simulation. A bank records the model, prior, key, budget and
chunking of its simulations; a run that differs in any of them is refused before it
simulates or trains, naming what differs. Chunks are checked against their checksums, so
a chunk altered on disk is found (by file name) and simulated again; the result then
equals the untouched run's. Runs here are small (200 simulations, two training epochs):
what is checked is which simulations are used, not the posterior's accuracy.
"""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import helmholtz as hz
from helmholtz.inference.simulation_bank import SimulationBank
from helmholtz.models.simulators import GaussianLinear, Normal, Simulator

OBSERVATION = np.array([0.3, -0.2], np.float32)
RUN = dict(method="npe", num_simulations=200, chunk_size=50, progress_bar=False, max_num_epochs=2)
pytestmark = pytest.mark.filterwarnings("ignore:Maximum number of epochs:UserWarning")


def _fit(bank, **options):
    return hz.fit(GaussianLinear(dim=2), OBSERVATION, simulation_bank=bank, **{"key": 0, **RUN, **options})


def _draws(fit):
    return np.stack([np.asarray(fit.sample(0, 50)[name]) for name in ("theta_1", "theta_2")], -1)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A bank holding one run's 200 simulations in chunks of 50, and that run's draws."""
    bank = tmp_path_factory.mktemp("bank") / "bank"
    return bank, _draws(_fit(bank))


@pytest.fixture
def bank(filled, tmp_path):
    """A fresh copy of the filled bank, for a test to alter."""
    import shutil

    copy = tmp_path / "bank"
    shutil.copytree(filled[0], copy)
    return copy


def _refuse_simulation(monkeypatch):
    calls = []
    original = Simulator.simulate_summaries

    def counted(self, key, theta, **options):
        calls.append(len(theta))
        return original(self, key, theta, **options)

    monkeypatch.setattr(GaussianLinear, "simulate_summaries", counted)
    return calls


@pytest.mark.parametrize(
    "option, value, named",
    [
        ("key", 1, r"another key: \[0, 0\] there, \[0, 1\] in this run"),
        ("num_simulations", 300, "another num_simulations: 200 there, 300 in this run"),
        ("num_rounds", 2, "another num_rounds: 1 there, 2 in this run"),
    ],
)
def test_a_run_that_differs_from_the_bank_is_refused_naming_what_differs(bank, monkeypatch, option, value, named):
    calls = _refuse_simulation(monkeypatch)
    with pytest.raises(ValueError, match=named):
        _fit(bank, **{option: value})
    assert calls == []


def test_another_model_or_prior_is_refused(bank, monkeypatch):
    with pytest.raises(ValueError, match="belongs to another model"):
        hz.fit(GaussianLinear(dim=2, prior_variance=0.5), OBSERVATION, simulation_bank=bank, key=0, **RUN)
    # The same declaration whose priors changed (as a class's code might between runs).
    wider = property(lambda self: tuple(Normal(f"theta_{i + 1}", 0.0, 1.0) for i in range(self.dim)))
    monkeypatch.setattr(GaussianLinear, "parameters", wider)
    with pytest.raises(ValueError, match="made with another prior"):
        _fit(bank)


def test_the_bank_records_what_made_it(bank):
    record = json.loads((bank / "bank.json").read_text())
    assert record["key"] == [0, 0] and record["num_simulations"] == 200 and record["num_rounds"] == 1
    assert record["helmholtz_version"] == hz.__version__ and record["proposal"] is None
    chunks = record["rounds"]["0"]["chunks"]
    assert [(c["start"], c["stop"]) for c in chunks] == [(0, 50), (50, 100), (100, 150), (150, 200)]
    assert all(
        c["shape"] == [c["stop"] - c["start"], 2] and c["dtype"] == "float32" and len(c["sha256"]) == 64 for c in chunks
    )


def test_another_chunk_size_reuses_every_simulation(bank, filled, monkeypatch):
    calls = _refuse_simulation(monkeypatch)
    fit = _fit(bank, chunk_size=70)
    assert calls == []
    np.testing.assert_array_equal(_draws(fit), filled[1])


@pytest.mark.parametrize("damage", ["zeroed", "truncated", "removed"])
def test_a_damaged_chunk_is_named_and_simulated_again(bank, filled, monkeypatch, damage):
    chunk = bank / "round0_x_50_100.npy"
    if damage == "zeroed":
        np.save(chunk, np.zeros((50, 2), np.float32))
    elif damage == "truncated":
        chunk.write_bytes(chunk.read_bytes()[:100])
    else:
        chunk.unlink()
    calls = _refuse_simulation(monkeypatch)
    with pytest.warns(UserWarning, match=r"round0_x_50_100\.npy.*simulating its rows 50\.\.100 again"):
        fit = _fit(bank)
    assert calls == [50]
    np.testing.assert_array_equal(_draws(fit), filled[1])


def test_altered_parameters_that_cannot_be_drawn_again_are_refused(bank):
    np.save(bank / "round0_theta.npy", np.ones((200, 2), np.float32))
    record = json.loads((bank / "bank.json").read_text())
    record["rounds"]["0"]["theta"]["sha256"] = "0" * 64  # a record that no draw reproduces
    (bank / "bank.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"round0_theta\.npy does not match its checksum.*does not reproduce them"):
        _fit(bank)


def test_a_bank_path_that_is_a_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bank"
    path.write_text("not a folder")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        _fit(path)


def test_a_second_writer_is_refused_and_a_dead_writers_lock_taken_over(bank, monkeypatch):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": other.pid, "host": socket.gethostname(), "since": time.time(), "nonce": "x"}
        (bank / "bank.lock").write_text(json.dumps(lock))
        with pytest.raises(ValueError, match=rf"in use by process {other.pid} on .*one run writes a bank at a time"):
            _fit(bank)
    finally:
        other.kill()
        other.wait()
    calls = _refuse_simulation(monkeypatch)
    _fit(bank)  # that process is gone: its lock is stale
    assert calls == [] and not (bank / "bank.lock").exists()


def test_the_lock_is_held_while_simulating(tmp_path):
    """While a run simulates, the lock file names it; another bank on the folder is refused."""
    folder = tmp_path / "bank"
    model = GaussianLinear(dim=2)
    bank = SimulationBank(folder, model, {"key": [0, 0], "num_simulations": 4, "num_rounds": 1})
    seen = []

    def simulate(start, stop):
        seen.append(json.loads((folder / "bank.lock").read_text())["pid"])
        with pytest.raises(ValueError, match="in use by process"):
            SimulationBank(folder, model, {"key": [0, 0], "num_simulations": 4, "num_rounds": 1})
        return np.zeros((stop - start, 2), np.float32)

    theta = bank.parameters(0, lambda: np.zeros((4, 2), np.float32))
    bank.summaries(0, theta, 2, simulate)
    assert seen == [os.getpid(), os.getpid()] and not (folder / "bank.lock").exists()
