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
    ``loss.png`` (the training curves: SVI's negative ELBO per step, sbi's training and
    validation losses per epoch) and ``fit.hz`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    idata = fit.to_arviz()
    written = {
        "posterior": out / "posterior.nc",
        "summary": out / "summary.csv",
        "trace": out / "trace.png",
        "fit": out / "fit.hz",
    }
    temporary = out / ".posterior.nc.tmp"
    idata.to_netcdf(str(temporary), engine="h5netcdf")
    temporary.replace(written["posterior"])
    summary = az.summary(idata, group="posterior")
    summary.to_csv(written["summary"])
    variables = list(idata.posterior.data_vars)[:MAX_PLOTTED_VARIABLES]
    axes = az.plot_trace(idata, var_names=variables, compact=True)
    axes.ravel()[0].figure.savefig(written["trace"], dpi=90, bbox_inches="tight")
    plt.close("all")
    curves = {name: fit.history[name] for name in ("loss", "training_loss", "validation_loss") if name in fit.history}
    if curves:
        figure, axis = plt.subplots(figsize=(6, 3))
        for name, values in curves.items():
            axis.plot(values, lw=0.5 if name == "loss" else 1.0, label=name.replace("_", " "))
        per = "step (SVI)" if "loss" in curves else "epoch, all rounds (sbi)"
        axis.set(xlabel=per, ylabel="loss", yscale="symlog" if "loss" in curves else "linear")
        if len(curves) > 1:
            axis.legend()
        written["loss"] = out / "loss.png"
        figure.savefig(written["loss"], dpi=90, bbox_inches="tight")
        plt.close(figure)
    fit.save(written["fit"])
    return written
