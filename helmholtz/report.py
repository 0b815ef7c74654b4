"""Writing a Fit out for people: NetCDF posterior, summary table, plots, the Fit itself."""

from __future__ import annotations

from pathlib import Path

import arviz as az
import matplotlib.pyplot as plt

from helmholtz.inference.fit import Fit

# Trace plots of more variables than this are unreadable; the rest are in the table.
MAX_PLOTTED_VARIABLES = 6


def write_report(fit: Fit, out: str | Path) -> dict[str, Path]:
    """Write ``posterior.nc`` (ArviZ InferenceData), ``summary.csv``, ``trace.png``,
    ``loss.png`` (when the back end has a loss history) and ``fit.hz`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    idata = fit.to_arviz()
    written = {"posterior": out / "posterior.nc", "summary": out / "summary.csv", "trace": out / "trace.png", "fit": out / "fit.hz"}
    temporary = out / ".posterior.nc.tmp"
    idata.to_netcdf(str(temporary), engine="h5netcdf")
    temporary.replace(written["posterior"])
    summary = az.summary(idata, group="posterior")
    summary.to_csv(written["summary"])
    variables = list(idata.posterior.data_vars)[:MAX_PLOTTED_VARIABLES]
    axes = az.plot_trace(idata, var_names=variables, compact=True)
    axes.ravel()[0].figure.savefig(written["trace"], dpi=90, bbox_inches="tight")
    plt.close("all")
    if "loss" in fit.history:
        figure, axis = plt.subplots(figsize=(6, 3))
        axis.plot(fit.history["loss"], lw=0.5)
        axis.set(xlabel="step", ylabel="loss (negative ELBO)", yscale="symlog")
        written["loss"] = out / "loss.png"
        figure.savefig(written["loss"], dpi=90, bbox_inches="tight")
        plt.close(figure)
    fit.save(written["fit"])
    return written
