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
from helmholtz.diagnostics.reachability import ReachabilityReport, reachability
from helmholtz.inference.fit import Fit
from helmholtz.inference.posterior import LogDensity, require
from helmholtz.inference.registry import fit as fit_model
from helmholtz.models.simulators.hodgkin_huxley import HodgkinHuxley
from helmholtz.utils import as_key

# The recording report's files, by the names write_recording_report returns them under.
RECORDING_REPORT_NAMES = (
    "posterior",
    "parameters",
    "features",
    "pair",
    "traces",
    "feature_plot",
    "reachability",
    "fit",
    "summary",
)
RECORDING_REPORT_FILES = (
    "posterior.nc",
    "parameters.csv",
    "features.csv",
    "pair.png",
    "traces.png",
    "features.png",
    "reachability.png",
    "fit.hz",
    "summary.json",
)
# How the fit treats the features the reachability check calls unreachable (said on the
# terminal and in summary.json): NPE conditions on every summary statistic it was trained on.
UNREACHABLE_TREATMENT = "the fit conditions on them anyway, so the posterior trades the other features against them"
OFF_SUPPORT_TREATMENT = "the fit conditions on every feature anyway: read its posterior with suspicion"
# Prior simulations drawn for the check when a Fit kept none of its first round's (older files).
PRIOR_PREDICTIVE_FALLBACK = 2000
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
    """Fit the cortical HH model to ``recording`` by NPE and, with ``out``, write the report.

    Args:
        recording: a current-clamp recording (``hz.data.load_recording``); its current
            drives the model.
        out: a folder for the report (:func:`write_recording_report`), or None for none.
            A folder holding files of those names that no report wrote is refused before
            the fit starts.
        key: an int seed or a JAX PRNG key.
        num_simulations: simulations over all rounds.
        num_rounds: truncated sequential rounds (the first from the prior).
        **npe_options: any other option of ``npe`` (``simulation_bank``, ``estimator``...).

    Returns:
        The Fit, and the report's files by name (empty without ``out``).
    """
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


def reachability_check(fit: Fit, *, key=0) -> tuple[ReachabilityReport, np.ndarray]:
    """What the model cannot reach: the recorded features against the prior predictive.

    The prior-predictive sample is the fit's first round (drawn from the prior, kept in
    ``fit.diagnostics["prior_predictive_summaries"]``), so the check costs no simulation;
    a Fit that kept none (saved by an older release) gets 2,000 fresh prior simulations.

    Args:
        fit: a simulation-based Fit of a simulator with summary statistics.
        key: the seed of the fresh simulations, where they are needed.

    Returns:
        The :class:`~helmholtz.diagnostics.reachability.ReachabilityReport` and the
        prior-predictive features it used, shape ``(num_simulations, num_features)``.
    """
    model = fit.model
    observed = np.asarray(model.summarize(fit.observed[None]))[0]
    simulated = fit.diagnostics.get("prior_predictive_summaries")
    if simulated is None or np.isfinite(np.asarray(simulated)).all(axis=1).sum() < 100:
        key_prior, key_simulate = jax.random.split(as_key(key))
        theta = model.theta_of(model.sample_prior(key_prior, PRIOR_PREDICTIVE_FALLBACK))
        simulated = model.simulate_summaries(key_simulate, theta)
    simulated = np.asarray(simulated)
    return reachability(simulated, observed, model.feature_names), simulated


def write_recording_report(fit: Fit, recording: Recording, out: str | Path) -> dict[str, Path]:
    """Write the report into ``out``: posterior.nc, parameters.csv, features.csv, pair.png,
    traces.png, features.png, reachability.png, fit.hz and summary.json (refused, before
    anything is written, where a file of those names exists that no report wrote).

    summary.json's ``"reachability"`` entry says, per feature, whether the prior simulations
    reach the recorded value and its quantile among them, the joint quantile, and a sentence
    naming the unreachable features and how the fit treats them
    (:func:`~helmholtz.diagnostics.reachability.reachability`)."""
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

    _plot_pair(fit, idata, written["pair"])
    _plot_traces(fit, recording, check["mode"], written["traces"])
    _plot_features(names, observed, predicted, written["feature_plot"])
    reach, prior_predictive = reachability_check(fit)
    _plot_reachability(reach, prior_predictive, written["reachability"])
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
        # Where the time went, per round (absent from fits saved before they were kept).
        **{
            name: np.round(fit.diagnostics[name], 2).tolist()
            for name in ("seconds_simulating", "seconds_training")
            if name in fit.diagnostics
        },
        "reachability": {
            **reach.to_dict(),
            "sentence": reach.sentence(UNREACHABLE_TREATMENT if reach.unreachable else OFF_SUPPORT_TREATMENT),
        },
    }
    written["summary"].write_text(json.dumps(summary, indent=2))
    return written


def _plot_pair(fit: Fit, idata, path: Path) -> None:
    """The posterior's marginals and pairs as density contours (points vanish at this size),
    each axis over the prior's range, so what the recording pinned down shows as a narrow
    peak in a wide box; labels carry units."""
    parameters = fit.model.parameters
    names = [parameter.name for parameter in parameters]
    axes = az.plot_pair(
        idata,
        var_names=names,
        kind="kde",
        marginals=True,
        kde_kwargs={"contour": True, "fill_last": False, "contourf_kwargs": {"cmap": "Blues"}},
        textsize=11,
    )
    for row, parameter in enumerate(parameters):
        for column, other in enumerate(parameters[: row + 1]):
            axis = axes[row, column]
            if np.isfinite(other.low) and np.isfinite(other.high):
                axis.set_xlim(other.low, other.high)
            if row != column and np.isfinite(parameter.low) and np.isfinite(parameter.high):
                axis.set_ylim(parameter.low, parameter.high)
        label = f"{parameter.name} ({parameter.unit})" if parameter.unit else parameter.name
        axes[row, 0].set_ylabel(label if row else "")
        axes[-1, row].set_xlabel(label)
    figure = np.ravel(axes)[0].figure
    figure.suptitle("posterior over the prior's range (marginals, and 2-D density contours)", fontsize=14)
    figure.savefig(path, dpi=60, bbox_inches="tight")
    plt.close("all")


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


def _plot_reachability(report: ReachabilityReport, simulated, path: Path) -> None:
    """Each feature's prior-predictive histogram with the recorded value marked; the
    unreachable ones in red."""
    columns = 5
    rows = -(-len(report.names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.0 * rows))
    finite = np.asarray(simulated)[np.isfinite(simulated).all(axis=1)]
    for i, (axis, name) in enumerate(zip(axes.ravel(), report.names)):
        ok = bool(report.reachable[i])
        value = report.observed[i]
        # The central 99.8% and the recorded value: a few far simulations (a 974 ms spike
        # width) would squeeze the rest into one bin; those beyond fall in the end bins.
        low, high = np.quantile(finite[:, i], [0.001, 0.999])
        low, high = min(low, value), max(high, value)
        column = np.clip(finite[:, i], low, high)
        bins = np.linspace(low, high, 31) if high > low else 30
        axis.hist(column, bins=bins, color="0.6" if ok else "C3", alpha=0.8, log=True)  # rare values visible
        axis.axvline(value, color="k" if ok else "C3", lw=1.5)
        axis.set_title(f"{name}\nquantile {report.quantile[i]:.3f}", fontsize=8, color="k" if ok else "C3")
        axis.set_yticks([])
        axis.set_yticks([], minor=True)  # a log axis labels its minor ticks too
        axis.tick_params(labelsize=7)
        if not ok:
            for spine in axis.spines.values():
                spine.set_edgecolor("C3")
                spine.set_linewidth(1.5)
    for axis in axes.ravel()[len(report.names) :]:
        axis.set_visible(False)
    verdict = "within" if report.joint_reachable else "OUTSIDE"
    figure.suptitle(
        f"prior predictive ({report.num_simulations} simulations, histogram, log counts) vs recorded (line); unreachable in red. "
        f"Jointly {verdict} what the model simulates: quantile {report.joint_quantile:.3f} (off above {report.level:g})",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)
