"""Choosing between models of the same data by their held-out predictive accuracy.

:func:`compare` scores every fit by its expected log predictive density of each data point
held out (elpd, Vehtari, Gelman & Gabry 2017) and ranks them with ArviZ's ``az.compare``
(stacking weights, standard errors of the differences). How each fit's elpd is estimated
depends on what its posterior offers, and the table says which estimate each row got:

* **posterior draws** (``nuts``): PSIS-LOO, ``az.loo`` on the pointwise log-likelihood of
  :meth:`~helmholtz.inference.Fit.to_arviz`;
* **a variational guide with a density** (``svi`` with a normal, full-rank or flow guide):
  PSIS-LOO with the guide as the proposal: the importance ratio of draw s for point i is
  p(theta_s, y) / (q(theta_s) p(y_i | theta_s)), which corrects for the guide not being
  the posterior (Magnusson et al. 2019; the Pareto k of these ratios also diagnoses the
  guide, Yao et al. 2018);
* **a point estimate** (``svi`` with ``guide="delta"``) or any other posterior: K-fold
  cross-validation, each fold refit with :func:`helmholtz.fit` (same back end and options)
  on the other folds and its points predicted by the refit posterior.

Pareto k above ``pareto_k_threshold`` (0.7) means that point's importance-sampling estimate
cannot be trusted. Such points are not left in silently: each is refit exactly without
that point (at most ``max_refits`` of them per model; ArviZ's ``reloo`` recipe), or, with
``on_high_pareto_k="kfold"`` or when there are more, the model falls back to K-fold. The
table reports the largest k, how many points exceeded the threshold and what was done.

Refits need the model's data split into points: a model with a ``subset(index)`` method
(the 2AFC experiments, :class:`~helmholtz.perception.PsychometricFunction`) or one whose data
are independent rows.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr
from arviz.stats.stats_utils import ELPDData
from jax.scipy.special import logsumexp
from numpyro import handlers
from numpyro.infer import log_likelihood
from numpyro.infer.util import log_density

from helmholtz.inference import BindsProgram, DrawsPosterior, Fit, GuidePosterior
from helmholtz.inference.registry import backends
from helmholtz.inference.registry import fit as run_fit
from helmholtz.models.base import OBSERVED_SITE, take_rows
from helmholtz.utils import as_key

HIGH_K_ACTIONS = ("refit", "kfold")


@dataclass
class ModelComparison:
    """What :func:`compare` returns.

    Attributes:
        table: ``az.compare``'s table (rank, elpd_loo, p_loo, elpd_diff, weight, se, dse,
            warning, scale), best first, with four more columns: ``estimate`` (how each
            elpd was estimated), ``pareto_k_max`` (the largest Pareto k before any refit;
            NaN for K-fold), ``high_pareto_k`` (points above the threshold) and ``refits``
            (fits run beyond the one given: exact refits or folds).
        elpd: each model's ``ELPDData`` (pointwise: ``loo_i``; ``pareto_k`` as estimated,
            before refits).
        notes: per model, a sentence on what was done and why.

    Args:
        table: the table above.
        elpd: the ``ELPDData`` above.
        notes: the notes above.
    """

    table: pd.DataFrame
    elpd: dict[str, ELPDData]
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> str:
        """The name of the model with the highest elpd."""
        return str(self.table.index[0])

    @property
    def ranking(self) -> list[str]:
        """The model names, best first."""
        return [str(name) for name in self.table.index]

    def __str__(self):
        columns = [
            "rank",
            "elpd_loo",
            "se",
            "elpd_diff",
            "dse",
            "weight",
            "p_loo",
            "estimate",
            "pareto_k_max",
            "high_pareto_k",
        ]
        lines = [self.table[columns].to_string(float_format=lambda v: f"{v:.2f}")]
        lines += [f"{name}: {note}" for name, note in self.notes.items()]
        return "\n".join(lines)


def compare(
    fits: dict[str, Fit],
    *,
    pareto_k_threshold: float = 0.7,
    on_high_pareto_k: str = "refit",
    max_refits: int = 10,
    folds: int = 5,
    num_draws: int = 1000,
    key=0,
    weights: str = "stacking",
    refit_options: dict | None = None,
) -> ModelComparison:
    """Rank fitted models of the same data by held-out predictive accuracy.

    Args:
        fits: name -> :class:`~helmholtz.inference.Fit`, every one of the same observed data.
        pareto_k_threshold: points whose Pareto k exceeds it are refit or sent to K-fold.
        on_high_pareto_k: ``"refit"`` (exact refits without each such point, up to
            ``max_refits`` per model, else K-fold) or ``"kfold"``.
        max_refits: the most exact refits per model before K-fold is used instead.
        folds: K of K-fold; the folds are the same for every model (drawn from ``key``).
        num_draws: posterior draws per fit for the pointwise log-likelihood (guides and
            K-fold refits; a ``nuts`` fit's own draws are all used).
        key: seed of the folds, the guide draws and the refits.
        weights: ``az.compare``'s ``method``: ``"stacking"``, ``"bb-pseudo-bma"`` or
            ``"pseudo-bma"``.
        refit_options: back-end options that replace the original fit's for every refit
            (e.g. fewer NUTS draws).

    Returns:
        A :class:`ModelComparison`.

    Raises:
        ValueError: fewer than two fits, fits of different data, a model without a
            likelihood, or a refit needed for a model whose data cannot be split.
    """
    if len(fits) < 2:
        raise ValueError(f"compare: give at least two fits to compare, got {len(fits)}")
    if on_high_pareto_k not in HIGH_K_ACTIONS:
        raise ValueError(f"compare: on_high_pareto_k must be one of {HIGH_K_ACTIONS}, got {on_high_pareto_k!r}")
    if not (isinstance(folds, int) and folds >= 2):
        raise ValueError(f"compare: folds must be an integer >= 2, got {folds!r}")
    names = list(fits)
    reference = _observed_array(fits[names[0]])
    for name in names[1:]:
        observed = _observed_array(fits[name])
        if observed.shape != reference.shape or not np.allclose(observed, reference, equal_nan=True):
            raise ValueError(
                f"compare: {name!r} was fit to other data than {names[0]!r}; models are compared on the same data"
            )
    options = dict(
        pareto_k_threshold=pareto_k_threshold,
        on_high_pareto_k=on_high_pareto_k,
        max_refits=max_refits,
        folds=folds,
        num_draws=num_draws,
        key=key,
        refit_options=refit_options or {},
    )
    elpds, records = {}, {}
    for name in names:
        elpds[name], records[name] = elpd(fits[name], **options)
    with warnings.catch_warnings():
        # The ELPDData carry no Pareto-k warning we have not acted on; ArviZ 0.23's compare
        # calls a pandas method with inplace=True, which pandas 3 deprecates.
        warnings.simplefilter("ignore", UserWarning)
        warnings.filterwarnings("ignore", message="The inplace keyword")
        table = az.compare(elpds, ic="loo", method=weights, scale="log")
    for column in ("estimate", "pareto_k_max", "high_pareto_k", "refits"):
        table[column] = [records[name][column] for name in table.index]
    return ModelComparison(table, elpds, {name: records[name]["note"] for name in names})


def elpd(
    fit: Fit,
    *,
    pareto_k_threshold: float = 0.7,
    on_high_pareto_k: str = "refit",
    max_refits: int = 10,
    folds: int = 5,
    num_draws: int = 1000,
    key=0,
    refit_options: dict | None = None,
) -> tuple[ELPDData, dict]:
    """One fit's held-out elpd, estimated as :func:`compare` does.

    Args:
        fit: a :class:`~helmholtz.inference.Fit` of a model with a likelihood.
        pareto_k_threshold: points whose Pareto k exceeds it are refit or sent to K-fold.
        on_high_pareto_k: ``"refit"`` or ``"kfold"``, as in :func:`compare`.
        max_refits: the most exact refits before K-fold is used instead.
        folds: K of K-fold.
        num_draws: posterior draws for the pointwise log-likelihood (guides, refits).
        key: seed of the folds, the guide draws and the refits.
        refit_options: back-end options that replace the original fit's for every refit.

    Returns:
        (the ``ELPDData``, a record: ``estimate``, ``pareto_k_max``, ``high_pareto_k``,
        ``refits`` and ``note``).
    """
    model = fit.model
    if not model.has_likelihood:
        raise ValueError(f"compare: {model.name} is a simulator with no likelihood, so held-out data cannot be scored")
    refit_options = refit_options or {}
    seed = int(np.asarray(jax.random.randint(as_key(key), (), 0, 2**31 - 1)))
    kfold_args = dict(folds=folds, num_draws=num_draws, seed=seed, refit_options=refit_options)
    posterior = fit.posterior
    if model.has_local_latents:
        reason = f"{model.name} has local latents, whose pointwise likelihood is not a held-out one"
        return _kfold(fit, reason=reason, **kfold_args)
    if isinstance(posterior, DrawsPosterior):
        loo, proposal = _psis_loo_of_draws(fit), "posterior draws"
    elif isinstance(posterior, GuidePosterior) and not _is_point_estimate(fit):
        loo, proposal = (
            _psis_loo_of_guide(fit, num_draws, seed),
            f"the {posterior.guide_config['guide']} guide as proposal",
        )
    else:
        kind = (
            "a point estimate (delta guide)"
            if isinstance(posterior, GuidePosterior)
            else f"a {posterior.kind!r} posterior"
        )
        return _kfold(fit, reason=f"{kind} offers no draws to importance-sample", **kfold_args)

    k = np.asarray(loo.pareto_k).ravel()
    high = np.flatnonzero(k > pareto_k_threshold)
    record = {"estimate": "PSIS-LOO", "pareto_k_max": float(np.nanmax(k)), "high_pareto_k": int(high.size), "refits": 0}
    if high.size == 0:
        record["note"] = (
            f"PSIS-LOO with {proposal}; every Pareto k <= {pareto_k_threshold} (max {record['pareto_k_max']:.2f})"
        )
        return loo, record
    if on_high_pareto_k == "kfold" or high.size > max_refits:
        why = f"{high.size} points with Pareto k > {pareto_k_threshold} (max {record['pareto_k_max']:.2f})"
        if on_high_pareto_k == "refit":
            why += f", more than max_refits={max_refits}"
        loo_kfold, kfold_record = _kfold(fit, reason=why, **kfold_args)
        return loo_kfold, {
            **kfold_record,
            "pareto_k_max": record["pareto_k_max"],
            "high_pareto_k": record["high_pareto_k"],
        }
    return _refit_points(fit, loo, high, record, num_draws, seed, refit_options, pareto_k_threshold)


# -- PSIS-LOO -----------------------------------------------------------------------------------
def _psis_loo_of_draws(fit: Fit) -> ELPDData:
    """``az.loo`` on every draw's pointwise log-likelihood (computed a chunk of draws at a
    time rather than by ``to_arviz``, which also simulates replicated data)."""
    draws = fit.posterior.draws
    chains, per_chain = fit.posterior.num_chains_and_draws
    flat = {name: value.reshape((chains * per_chain,) + value.shape[2:]) for name, value in draws.items()}
    pointwise = _pointwise(fit._program, flat, fit.observed, fit._num_points)
    idata = az.from_dict(
        posterior={name: np.asarray(value) for name, value in draws.items()},
        log_likelihood={OBSERVED_SITE: pointwise.reshape(chains, per_chain, -1)},
    )
    with warnings.catch_warnings():
        # az.loo warns about Pareto k above its threshold; compare acts on them instead.
        warnings.simplefilter("ignore", UserWarning)
        return az.loo(idata, pointwise=True, scale="log")


def _guide_draws(fit: Fit, num_draws: int, seed: int, chunk: int = 64):
    """Draws from a guide with log q (constrained space: an AutoContinuous guide's Delta
    sites carry the Jacobian), the model's log joint, and the pointwise log-likelihood."""
    posterior = fit.posterior
    guide, params = posterior.guide, posterior.params
    program, x, num_points = fit._program, fit.observed, fit._num_points
    latents = fit.model.sites().global_latents

    def one(draw_key):
        trace = handlers.trace(handlers.seed(handlers.substitute(guide, data=params), draw_key)).get_trace(x)
        log_q = sum(
            jnp.sum(site["fn"].log_prob(site["value"]))
            for site in trace.values()
            if site["type"] == "sample" and not site["is_observed"]
        )
        values = {name: trace[name]["value"] for name in latents}
        log_joint, model_trace = log_density(program, (x,), {"num_points": num_points}, values)
        site = model_trace[OBSERVED_SITE]
        return log_q, log_joint, jnp.reshape(site["fn"].log_prob(site["value"]), -1)

    chunk = min(chunk, num_draws)
    # Whole chunks only (one compilation); the surplus draws are dropped.
    keys = jax.random.split(jax.random.PRNGKey(seed), -(-num_draws // chunk) * chunk)
    batched = jax.jit(jax.vmap(one))
    parts = [batched(keys[start : start + chunk]) for start in range(0, keys.shape[0], chunk)]
    log_q, log_joint, pointwise = (np.concatenate([np.asarray(p[i]) for p in parts])[:num_draws] for i in range(3))
    return log_q, log_joint, pointwise


def _pointwise(program, draws: dict, x, num_points, chunk: int = 64) -> np.ndarray:
    """log p(x_i | theta_s), shaped (draws, points): compiled once, then run ``chunk`` draws
    at a time (an observer's likelihood holds a grid per draw); the last chunk is padded."""
    num_draws = int(np.shape(next(iter(draws.values())))[0])
    chunk = min(chunk, num_draws)
    compiled = jax.jit(lambda part: log_likelihood(program, part, x, num_points=num_points)[OBSERVED_SITE])
    parts = []
    for start in range(0, num_draws, chunk):
        part = {name: v[start : start + chunk] for name, v in draws.items()}
        size = int(np.shape(next(iter(part.values())))[0])
        if size < chunk:
            pad = chunk - size
            part = {name: jnp.concatenate([v, jnp.repeat(v[-1:], pad, axis=0)]) for name, v in part.items()}
        values = np.asarray(compiled(part))[:size]
        parts.append(values.reshape(size, -1))
    return np.concatenate(parts)


def _psis_loo_of_guide(fit: Fit, num_draws: int, seed: int) -> ELPDData:
    log_q, log_joint, pointwise = _guide_draws(fit, num_draws, seed)
    if not (np.isfinite(log_q).all() and np.isfinite(log_joint).all()):
        raise ValueError(f"compare: {fit.model.name}'s guide drew parameters where the model's density is not finite")
    log_ratio = (log_joint - log_q)[:, None]
    # The full-data ratios weight the guide's draws towards the posterior (for the
    # in-sample lppd); leaving point i out divides its likelihood out of them.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        full_weights, _ = az.psislw(log_ratio.T, reff=1.0)
        loo_weights, k = az.psislw((log_ratio - pointwise).T, reff=1.0)
    loo_i = logsumexp(loo_weights + pointwise.T, axis=1)
    lppd = float(np.sum(logsumexp(full_weights + pointwise.T, axis=1)))
    return _elpd_data(np.asarray(loo_i), lppd, num_draws, pareto_k=np.asarray(k))


def _elpd_data(loo_i: np.ndarray, lppd: float, num_draws: int, pareto_k=None) -> ELPDData:
    """An ``ELPDData`` as ``az.loo(pointwise=True)`` builds it, from pointwise values."""
    n = loo_i.size
    total = float(loo_i.sum())
    k = np.full(n, np.nan) if pareto_k is None else np.asarray(pareto_k, dtype=float)
    good_k = min(1 - 1 / np.log10(num_draws), 0.7) if num_draws > 10 else 0.7
    return ELPDData(
        data=[
            total,
            float(np.sqrt(n * np.var(loo_i))),
            lppd - total,
            num_draws,
            n,
            False,
            xr.DataArray(loo_i, dims=["observation"], name="loo_i"),
            xr.DataArray(k, dims=["observation"], name="pareto_shape"),
            "log",
            good_k,
        ],
        index=[
            "elpd_loo",
            "se",
            "p_loo",
            "n_samples",
            "n_data_points",
            "warning",
            "loo_i",
            "pareto_k",
            "scale",
            "good_k",
        ],
    )


# -- refits: exact leave-one-out and K-fold -----------------------------------------------------
def _split(model, x, index):
    """The model and data of the points ``index`` (the data's leading axis)."""
    if hasattr(model, "subset"):
        return model.subset(index), jnp.asarray(x)[index]
    if model.num_points_of(x) is not None:
        return model, take_rows(x, index)
    raise ValueError(
        f"compare: {model.name} cannot be refit on part of its data; give it a subset(index) method "
        "(as the perception experiments have) or data whose rows are independent points"
    )


def _refit(fit: Fit, model, x, seed: int, refit_options: dict) -> Fit:
    options = {**fit.options, **refit_options}
    if "progress_bar" in inspect.signature(backends()[fit.method].run).parameters:
        options.setdefault("progress_bar", False)
    return run_fit(model, x, method=fit.method, key=seed, **options)


def _held_out(fitted: Fit, model, x, num_draws: int, seed: int) -> np.ndarray:
    """log p(x_i | the fitted posterior) for each point of ``x``, under ``model`` (the
    held-out points' design): the log of the mean likelihood over posterior draws."""
    if _is_point_estimate(fitted):
        num_draws = 1  # every draw of a delta guide is the same
    draws = fitted.posterior.sample(jax.random.PRNGKey(seed), num_draws)
    program = fitted.posterior.bind(model.program) if fitted.posterior.has(BindsProgram) else model.program
    pointwise = _pointwise(program, draws, x, model.num_points_of(x))
    return np.asarray(logsumexp(pointwise, axis=0) - np.log(num_draws))


def _is_point_estimate(fit: Fit) -> bool:
    return isinstance(fit.posterior, GuidePosterior) and fit.posterior.guide_config.get("guide") == "delta"


def _num_points(fit: Fit) -> int:
    return int(np.shape(_observed_array(fit))[0])


def _in_sample_lppd(fit: Fit, num_draws: int, seed: int) -> float:
    return float(_held_out(fit, fit.model, fit.observed, num_draws, seed).sum())


def _kfold(fit: Fit, *, reason: str, folds: int, num_draws: int, seed: int, refit_options: dict):
    model, x = fit.model, fit.observed
    n = _num_points(fit)
    if n < folds:
        raise ValueError(f"compare: {folds}-fold cross-validation needs at least {folds} points, {model.name} has {n}")
    # The same folds for every model of these data: drawn from the seed alone.
    assignment = np.random.default_rng(np.random.SeedSequence(seed)).permutation(n) % folds
    loo_i = np.empty(n)
    for fold in range(folds):
        train, test = np.flatnonzero(assignment != fold), np.flatnonzero(assignment == fold)
        fitted = _refit(fit, *_split(model, x, train), seed + fold + 1, refit_options)
        test_model, x_test = _split(model, x, test)
        if model.has_local_latents:
            loo_i[test] = np.asarray(fitted.log_marginal(x_test, key=seed + fold, num_draws=num_draws))
        else:
            loo_i[test] = _held_out(fitted, test_model, x_test, num_draws, seed + fold)
    lppd = float("nan") if model.has_local_latents else _in_sample_lppd(fit, num_draws, seed)
    record = {
        "estimate": f"{folds}-fold CV",
        "pareto_k_max": float("nan"),
        "high_pareto_k": 0,
        "refits": folds,
        "note": f"{folds}-fold cross-validation (refit with {fit.method!r} on the other folds): {reason}",
    }
    return _elpd_data(loo_i, lppd, num_draws), record


def _refit_points(fit, loo: ELPDData, high: np.ndarray, record: dict, num_draws, seed, refit_options, threshold):
    """ArviZ's reloo: each point with a high Pareto k gets its exact leave-one-out elpd from
    a refit without it."""
    model, x = fit.model, fit.observed
    n = _num_points(fit)
    loo_i = np.asarray(loo.loo_i).ravel().copy()
    lppd = float(loo.p_loo + loo.elpd_loo)
    for i in high:
        keep = np.flatnonzero(np.arange(n) != i)
        fitted = _refit(fit, *_split(model, x, keep), seed + int(i) + 1, refit_options)
        loo_i[i] = _held_out(fitted, *_split(model, x, np.array([i])), num_draws, seed + int(i))[0]
    refit = _elpd_data(loo_i, lppd, int(loo.n_samples), pareto_k=np.asarray(loo.pareto_k).ravel())
    points = ", ".join(str(int(i)) for i in high)
    record = {
        **record,
        "estimate": f"PSIS-LOO + {high.size} exact",
        "refits": int(high.size),
        "note": f"PSIS-LOO; points {points} had Pareto k > {threshold} and were refit exactly without them",
    }
    return refit, record


def _observed_array(fit: Fit) -> np.ndarray:
    observed = fit.observed
    return np.asarray(observed.x if hasattr(observed, "x") else observed, dtype=float)


__all__ = ["ModelComparison", "compare", "elpd"]
