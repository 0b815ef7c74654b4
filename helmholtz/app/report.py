"""Writing a Fit out for people: NetCDF posterior, summary table, plots, the Fit itself."""

from __future__ import annotations

from pathlib import Path

import arviz as az
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from helmholtz.inference.fit import Fit

# Trace plots of more variables than this are unreadable; the rest are in the table.
MAX_PLOTTED_VARIABLES = 6


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
        out: the report's folder (made if missing).

    Returns:
        The paths written, by name: ``posterior`` (``posterior.nc``, ArviZ InferenceData
        of the raw posterior), ``summary`` (``summary.csv``: the identifiable parameters'
        table, see :func:`identifiable_posterior`), ``trace`` (``trace.png``, of those),
        ``predictive`` (``predictive.png``: the data against the posterior predictive,
        for models with a likelihood), ``loss`` (``loss.png``: the training curves, where
        the back end keeps them) and ``fit`` (``fit.hz``).
    """
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
