"""The main job: fit the cortical Hodgkin-Huxley model to a current-clamp recording.

As Goncalves et al. (2020) did for the Allen Cell Types cells: the 8-parameter model of
Pospischil et al. (2008) driven by the recorded current, summary statistics of the voltage
trace, neural posterior estimation (truncated sequential rounds), and a report a person
can check at a glance: the posterior, traces simulated from it over the recorded one, and
the observed summary statistics against those the posterior predicts.

    rec = hz.data.load_recording("cell.npz")
    fit, written = hz.fit_recording(rec, out="report/")
"""

from __future__ import annotations

import json
from pathlib import Path

import arviz as az
import jax
import matplotlib.pyplot as plt
import numpy as np

from helmholtz.app.report import claim_report_folder, write_netcdf
from helmholtz.data.recordings import Recording, allen_recordings
from helmholtz.inference.fit import Fit
from helmholtz.inference.posterior import LogDensity, require
from helmholtz.inference.registry import fit as fit_model
from helmholtz.models.simulators.hodgkin_huxley import HodgkinHuxley
from helmholtz.utils import as_key

# The recording report's files, by the names write_recording_report returns them under.
RECORDING_REPORT_NAMES = ("posterior", "parameters", "features", "pair", "traces", "feature_plot", "fit", "summary")
RECORDING_REPORT_FILES = (
    "posterior.nc",
    "parameters.csv",
    "features.csv",
    "pair.png",
    "traces.png",
    "features.png",
    "fit.hz",
    "summary.json",
)
# Parameters of a regular-spiking cell, for the fallback recording simulated when no real
# one is available (a made-up cell, said so wherever it is used).
SYNTHETIC_CELL = {
    "g_Na": 30.0,
    "g_K": 4.0,
    "g_leak": 0.04,
    "g_M": 0.05,
    "tau_max": 800.0,
    "V_T": -58.0,
    "noise": 0.05,
    "E_leak": -72.0,
}


def default_recording() -> tuple[Recording, str]:
    """The first Allen cell of the shared reference data, else a simulated recording.

    Returns the recording and a sentence saying which it is.
    """
    try:
        path = allen_recordings()[0]
    except (FileNotFoundError, IndexError):
        return synthetic_recording(), "a recording simulated from known parameters (no Allen data found)"
    from helmholtz.data.recordings import load_recording

    return load_recording(path), f"the Allen Cell Types recording {path.name}"


def synthetic_recording(key: int = 0, parameters: dict = SYNTHETIC_CELL) -> Recording:
    """A 1,450 ms sweep of the cortical model under a 0.15 nA step at 50 kHz, like the Allen ones."""
    dt, stim_on, stim_off = 0.02, 205.0, 1205.0
    time = np.arange(72_500) * dt
    current = np.where((time >= stim_on) & (time < stim_off), 0.15, 0.0).astype(np.float32)
    draft = Recording(np.full_like(current, -70.0), current, dt, stim_on, stim_off, "synthetic", "simulated")
    model = HodgkinHuxley.cortical(recording=draft)
    voltage = np.asarray(model.simulate(key, parameters), dtype=np.float32)
    return Recording(voltage, current, dt, stim_on, stim_off, "synthetic", f"simulated from {parameters}")


def posterior_mode(fit: Fit, *, key=0, num_draws: int = 10_000) -> dict[str, float]:
    """The highest-density draw among ``num_draws`` from the posterior, a Monte Carlo
    estimate of the mode; the posterior needs a normalised density
    (:class:`~helmholtz.inference.posterior.LogDensity`: NPE's)."""
    posterior = require(fit.posterior, LogDensity, what="posterior_mode", method=fit.method)
    draws = fit.sample(key, num_draws)
    best = int(np.argmax(posterior.log_prob(draws)))
    return {name: float(value[best]) for name, value in draws.items()}


def fit_recording(
    recording: Recording,
    *,
    out: str | Path | None = None,
    key=0,
    num_simulations: int = 20_000,
    num_rounds: int = 4,
    **npe_options,
) -> tuple[Fit, dict[str, Path]]:
    """Fit the cortical HH model to ``recording`` by NPE and, with ``out``, write the report."""
    if out is not None:  # before the fit: a folder that cannot take the report is refused first
        claim_report_folder(out, RECORDING_REPORT_FILES)
    model = HodgkinHuxley.cortical(recording=recording)
    fit = fit_model(
        model,
        recording.voltage,
        method="npe",
        key=key,
        num_simulations=num_simulations,
        num_rounds=num_rounds,
        **npe_options,
    )
    written = write_recording_report(fit, recording, out) if out is not None else {}
    return fit, written


def predictive_check(fit: Fit, *, key=0, num_draws: int = 200) -> dict:
    """Observed summary statistics against their posterior predictive distribution and
    against simulations at the posterior mode (``num_draws`` each)."""
    key_mode, key_predict, key_at_mode = jax.random.split(as_key(key), 3)
    model = fit.model
    observed = np.asarray(model.summarize(fit.observed[None]))[0]
    predicted = model.simulate_summaries(key_predict, model.theta_of(fit.sample(key_predict, num_draws)))
    mode = posterior_mode(fit, key=key_mode)
    at_mode = model.simulate_summaries(key_at_mode, np.repeat(np.asarray(model.theta_of(mode))[None], num_draws, 0))
    return {
        "names": model.feature_names,
        "observed": observed,
        "predicted": predicted,
        "at_mode": at_mode,
        "mode": mode,
    }


def write_recording_report(fit: Fit, recording: Recording, out: str | Path) -> dict[str, Path]:
    """Write the report into ``out``: posterior.nc, parameters.csv, features.csv, pair.png,
    traces.png, features.png, fit.hz and summary.json (refused, before anything is written,
    where a file of those names exists that no report wrote)."""
    out = claim_report_folder(out, RECORDING_REPORT_FILES)
    written = {name: out / file for name, file in zip(RECORDING_REPORT_NAMES, RECORDING_REPORT_FILES)}
    idata = fit.to_arviz(num_draws=1000)
    write_netcdf(idata, written["posterior"])
    az.summary(idata, group="posterior", kind="stats").to_csv(written["parameters"])

    check = predictive_check(fit)
    names, observed, predicted, at_mode = check["names"], check["observed"], check["predicted"], check["at_mode"]
    rows = ["feature,observed,predictive_median,predictive_5%,predictive_95%,at_mode_median"]
    for i, name in enumerate(names):
        low, median, high = np.nanpercentile(predicted[:, i], [5, 50, 95])
        rows.append(f"{name},{observed[i]:.6g},{median:.6g},{low:.6g},{high:.6g},{np.nanmedian(at_mode[:, i]):.6g}")
    written["features"].write_text("\n".join(rows) + "\n")

    axes = az.plot_pair(idata, kind="scatter", marginals=True, scatter_kwargs={"alpha": 0.2, "s": 2}, textsize=12)
    np.ravel(axes)[0].figure.savefig(written["pair"], dpi=60, bbox_inches="tight")
    plt.close("all")
    _plot_traces(fit, recording, check["mode"], written["traces"])
    _plot_features(names, observed, predicted, written["feature_plot"])
    fit.save(written["fit"])

    spikes = names.index("spike_count")
    rest = names.index("rest_mean")
    summary = {
        "recording": recording.name,
        "source": recording.source,
        "posterior_mode": check["mode"],
        "observed_spike_count": float(observed[spikes]),
        "spike_count_at_mode": float(np.median(at_mode[:, spikes])),
        "spike_count_relative_error_at_mode": float(
            abs(np.median(at_mode[:, spikes]) - observed[spikes]) / max(observed[spikes], 1.0)
        ),
        "observed_rest_mean": float(observed[rest]),
        "rest_mean_at_mode": float(np.median(at_mode[:, rest])),
        "invalid_simulations": fit.diagnostics["num_invalid"].tolist(),
        "simulations": fit.diagnostics["num_simulations"].tolist(),
    }
    written["summary"].write_text(json.dumps(summary, indent=2))
    return written


def _plot_traces(fit: Fit, recording: Recording, mode: dict, path: Path, num_draws: int = 3) -> None:
    simulated = fit.posterior_predictive(1, num_draws)
    at_mode = fit.model.simulate(2, mode)
    figure, axes = plt.subplots(num_draws + 2, 1, figsize=(9, 1.6 * (num_draws + 2)), sharex=True, sharey=True)
    time = recording.time
    axes[0].plot(time, recording.voltage, color="k", lw=0.5)
    axes[0].set_title(f"recorded: {recording.name}", fontsize=9, loc="left")
    axes[1].plot(time, np.asarray(at_mode), color="C3", lw=0.5)
    axes[1].set_title("simulated at the posterior mode", fontsize=9, loc="left")
    for axis, trace in zip(axes[2:], np.asarray(simulated)):
        axis.plot(time, trace, color="C0", lw=0.5)
        axis.set_title("simulated from a posterior draw", fontsize=9, loc="left")
    for axis in axes:
        axis.axvspan(recording.stim_on, recording.stim_off, color="0.93", zorder=0)
        axis.set_ylabel("mV")
    axes[-1].set_xlabel("time (ms)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _plot_features(names, observed, predicted, path: Path) -> None:
    columns = 5
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.0 * rows))
    for axis, name, value, column in zip(axes.ravel(), names, observed, predicted.T):
        finite = column[np.isfinite(column)]
        axis.hist(finite, bins=30, color="C0", alpha=0.7)
        axis.axvline(value, color="k", lw=1.5)
        axis.set_title(name, fontsize=8)
        axis.set_yticks([])
    for axis in axes.ravel()[len(names) :]:
        axis.set_visible(False)
    figure.suptitle("summary statistics: posterior predictive (histogram) vs recorded (line)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
