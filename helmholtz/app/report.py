"""Writing a Fit out for people: NetCDF posterior, summary table, plots, the Fit itself.

A report never overwrites a file it did not write: the folder's ``.helmholtz-report``
marker lists the files reports wrote there (recorded before they are written, so an
interrupted report still owns its files), and a report that would overwrite any other
file of the same name (a data file called ``summary.csv``, say) is refused up front.
"""

from __future__ import annotations

import json
from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from helmholtz._serialization import library_version, write_bytes_atomically
from helmholtz.inference.fit import Fit

# Trace plots of more variables than this are unreadable; the rest are in the table.
MAX_PLOTTED_VARIABLES = 6
# The files write_report may write, and the marker that lists what reports wrote in a folder.
REPORT_FILES = ("posterior.nc", "summary.csv", "trace.png", "predictive.png", "loss.png", "fit.hz")
REPORT_MARKER = ".helmholtz-report"


def _report_files(out: Path) -> set[str]:
    try:
        recorded = json.loads((out / REPORT_MARKER).read_text())
    except (OSError, ValueError):
        return set()
    files = recorded.get("files") if isinstance(recorded, dict) else None
    return {name for name in files if isinstance(name, str)} if isinstance(files, list) else set()


def claim_report_folder(out: str | Path, names) -> Path:
    """Make ``out`` ready for a report that writes the files ``names``: refuse if any of them
    exists and no report wrote it, else record them in the folder's marker.

    Args:
        out: the report's folder (made if missing).
        names: the file names the report may write there.

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: ``out`` is a file, or holds files of those names that no report wrote.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the report folder {out} is a file; give a folder (it is made if missing)")
    out.mkdir(parents=True, exist_ok=True)
    ours = _report_files(out)
    foreign = [name for name in names if (out / name).exists() and name not in ours]
    if foreign:
        raise ValueError(
            f"{out} holds {', '.join(foreign)}, which no helmholtz report wrote (no {REPORT_MARKER} lists them); "
            "refusing to overwrite: choose another output folder, or move those files"
        )
    marker = {"written_by": f"helmholtz {library_version()}", "files": sorted(ours | set(names))}
    write_bytes_atomically(out / REPORT_MARKER, json.dumps(marker, indent=1).encode())
    return out


def write_netcdf(idata: az.InferenceData, path: Path) -> None:
    """``idata`` to ``path`` through a temporary file renamed into place (removed on any error)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        idata.to_netcdf(str(temporary), engine="h5netcdf")
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def identifiable_posterior(fit: Fit, idata: az.InferenceData) -> az.InferenceData:
    """The posterior of ``fit.model.identifiable_parameters``, by chain and draw: what the
    data pin down (for factor analysis the loadings' covariance, not loadings that are
    identifiable only up to a rotation). The raw posterior where the model names none (an
    amortised fit whose only latents are local)."""
    posterior = idata.posterior
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    flat = {
        name: jnp.asarray(values.values.reshape((chains * draws,) + values.shape[2:]))
        for name, values in posterior.data_vars.items()
    }
    identifiable = jax.vmap(fit.model.identifiable_parameters)(flat)
    if not identifiable:
        return idata
    by_chain = {
        name: np.asarray(value).reshape((chains, draws) + value.shape[1:]) for name, value in identifiable.items()
    }
    return az.from_dict(posterior=by_chain)


def write_report(fit: Fit, out: str | Path) -> dict[str, Path]:
    """Write the report of ``fit`` into the folder ``out``.

    Args:
        fit: any Fit.
        out: the report's folder (made if missing); files of the report's names there
            that no report wrote are not overwritten (ValueError, before anything is written).

    Returns:
        The paths written, by name: ``posterior`` (``posterior.nc``, ArviZ InferenceData
        of the raw posterior), ``summary`` (``summary.csv``: the identifiable parameters'
        table, see :func:`identifiable_posterior`), ``trace`` (``trace.png``, of those),
        ``predictive`` (``predictive.png``: the data against the posterior predictive,
        for models with a likelihood), ``loss`` (``loss.png``: the training curves, where
        the back end keeps them) and ``fit`` (``fit.hz``).
    """
    out = claim_report_folder(out, REPORT_FILES)
    idata = fit.to_arviz()
    written = {
        "posterior": out / "posterior.nc",
        "summary": out / "summary.csv",
        "trace": out / "trace.png",
        "fit": out / "fit.hz",
    }
    write_netcdf(idata, written["posterior"])
    identifiable = identifiable_posterior(fit, idata)
    az.summary(identifiable, group="posterior").to_csv(written["summary"])
    _plot_trace(identifiable, written["trace"])
    if fit.model.has_likelihood:
        written["predictive"] = out / "predictive.png"
        _plot_predictive(idata, written["predictive"])
    curves = {name: fit.history[name] for name in ("loss", "training_loss", "validation_loss") if name in fit.history}
    if curves:
        written["loss"] = out / "loss.png"
        _plot_curves(curves, written["loss"])
    fit.save(written["fit"])
    return written


def _plot_trace(idata: az.InferenceData, path: Path) -> None:
    variables = list(idata.posterior.data_vars)[:MAX_PLOTTED_VARIABLES]
    # One row per variable, tall enough that a row's title clears the axis above it.
    axes = az.plot_trace(
        idata,
        var_names=variables,
        compact=True,
        figsize=(10, 2.2 * len(variables)),
        backend_kwargs={"layout": "constrained"},
    )
    axes.ravel()[0].figure.savefig(path, dpi=90)
    plt.close("all")


def _plot_predictive(idata: az.InferenceData, path: Path) -> None:
    axis = az.plot_ppc(idata, num_pp_samples=min(100, idata.posterior_predictive.sizes["draw"]), figsize=(6, 3.5))
    axis.set_title("the data (black) against the posterior predictive")
    axis.figure.savefig(path, dpi=90, bbox_inches="tight")
    plt.close("all")


def _plot_curves(curves: dict, path: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 3))
    for name, values in curves.items():
        axis.plot(values, lw=0.5 if name == "loss" else 1.0, label=name.replace("_", " "))
    per = "step (SVI)" if "loss" in curves else "epoch, all rounds (sbi)"
    axis.set(xlabel=per, ylabel="loss", yscale="symlog" if "loss" in curves else "linear")
    if len(curves) > 1:
        axis.legend()
    figure.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(figure)
