"""The Fit: what every back end returns, whichever it is.

A Fit pairs the model and the observed data with a posterior that can be sampled (the
protocol of :mod:`helmholtz.inference.posterior`). Two generic kinds of posterior are
defined here: a set of draws (MCMC) and a fitted variational guide (SVI); back ends
register others (a fitted encoder, a neural posterior). Everything else (ArviZ export,
posterior predictive simulation, marginal likelihoods, saving) is written once here on top
of ``sample`` and of the capabilities a posterior declares; this module imports no back end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.infer import Predictive, log_likelihood

from helmholtz import _serialization
from helmholtz.inference.posterior import Amortised, BindsProgram, LogMarginal, Posterior, posterior_kinds, require
from helmholtz.models.base import OBSERVED_SITE, Conditioned, Model, observations, unobserved
from helmholtz.utils import as_key

FILE_KIND = "fit"


class DrawsPosterior(Posterior):
    """A posterior held as draws.

    Args:
        draws: arrays by site name, each shape ``(num_chains, num_draws_per_chain, *site_shape)``.
    """

    kind = "draws"

    def __init__(self, draws: dict[str, Any]):
        self.draws = {name: jnp.asarray(value) for name, value in draws.items()}

    @property
    def num_chains_and_draws(self) -> tuple[int, int]:
        return next(iter(self.draws.values())).shape[:2]

    def sample(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        """Draws picked at random from the pool: without replacement while it lasts.

        Args:
            key: a JAX PRNG key; the same key gives the same draws.
            num_draws: how many.

        Returns:
            Arrays by site name, each shape ``(num_draws, *site_shape)``.
        """
        chains, per_chain = self.num_chains_and_draws
        pool = chains * per_chain
        index = jax.random.choice(key, pool, (num_draws,), replace=num_draws > pool)
        return {name: value.reshape((pool,) + value.shape[2:])[index] for name, value in self.draws.items()}

    def grouped(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        """The draws as they are held, in chains.

        Args:
            key: unused.
            num_draws: unused: every draw is returned.

        Returns:
            Arrays by site name, each shape ``(num_chains, num_draws_per_chain, *site_shape)``.
        """
        return self.draws

    def state(self) -> dict:
        return {"draws": {name: np.asarray(value) for name, value in self.draws.items()}}


class GuidePosterior(Posterior, BindsProgram):
    """A posterior held as a fitted NumPyro guide and its parameters.

    Args:
        guide: the fitted NumPyro guide.
        params: the guide's fitted params (and the model's own, if any), by name.
        guide_config: what rebuilds the guide when the Fit is loaded.
    """

    kind = "guide"

    def __init__(self, guide, params: dict, guide_config: dict):
        self.guide = guide
        self.params = jax.tree.map(jnp.asarray, params)
        self.guide_config = guide_config

    def sample(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        return self.guide.sample_posterior(key, self.params, sample_shape=(num_draws,))

    def bind(self, program):
        """``program`` with the model's own fitted params (network weights) in place; the
        guide's params have names of their own, so they leave the program alone.

        Args:
            program: the model's NumPyro program.

        Returns:
            The program with the params substituted.
        """
        return handlers.substitute(program, data=self.params)

    def grouped(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        """``num_draws`` draws of the guide, in one chain.

        Args:
            key: a JAX PRNG key; the same key gives the same draws.
            num_draws: how many.

        Returns:
            Arrays by site name, each shape ``(1, num_draws, *site_shape)``.
        """
        return {name: value[None] for name, value in self.sample(key, num_draws).items()}

    def state(self) -> dict:
        return {"params": jax.tree.map(np.asarray, self.params), "guide": self.guide_config}


def rebuild_draws_posterior(model: Model, observed, state: dict, options: dict) -> DrawsPosterior:
    """The inverse of :meth:`DrawsPosterior.state` (the back ends that return draws register it)."""
    return DrawsPosterior(state["draws"])


@dataclass
class Fit:
    """The result of :func:`helmholtz.fit`.

    Args:
        model: the model that was fit.
        method: the back end's registered name.
        observed: the data the posterior conditions on.
        posterior: a :class:`~helmholtz.inference.posterior.Posterior` (draws, a fitted guide,
            an encoder, a network); use :meth:`sample` rather than reading it, and
            ``fit.posterior.has(capability)`` to ask what more it can do.
        history: training curves by name (for SVI, ``"loss"``: the negative ELBO per step).
        diagnostics: convergence figures by name (for NUTS, ``"r_hat"`` and ``"ess"`` per
            site, and the number of divergent transitions).
        sample_stats: per-draw sampler statistics, each shape ``(num_chains, num_draws_per_chain)``.
        options: the back end's options as it ran, for the record and for reloading.
    """

    model: Model
    method: str
    observed: jnp.ndarray | Conditioned
    posterior: Posterior
    history: dict[str, np.ndarray] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    sample_stats: dict[str, np.ndarray] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def __repr__(self):
        return f"Fit(model={self.model.name}, method={self.method!r}, sites={list(self.sample(0, 1))})"

    @property
    def _num_points(self):
        return self.model.num_points_of(self.observed)

    @property
    def _program(self):
        """The model's program, with any network weights the back end fitted in place."""
        if self.posterior.has(BindsProgram):
            return self.posterior.bind(self.model.program)
        return self.model.program

    def _replicate(self, key, draws: dict):
        num_points = self._num_points or self.observed.shape[0]
        if not self.posterior.has(BindsProgram):
            return self.model.replicate(key, draws, num_points=num_points)
        predictive = Predictive(self._program, posterior_samples=draws, return_sites=[OBSERVED_SITE])
        # A conditional model replicates its observations for the observed covariates.
        return predictive(key, unobserved(self.observed), num_points=num_points)[OBSERVED_SITE]

    # -- draws -------------------------------------------------------------------------
    def _complete(self, key, draws: dict, batch_ndims: int) -> dict:
        """Add the program's deterministic sites where the posterior did not keep them."""
        missing = [name for name in self.model.sites().deterministic if name not in draws]
        if not missing:
            return draws
        predictive = Predictive(self._program, posterior_samples=draws, return_sites=missing, batch_ndims=batch_ndims)
        return {**draws, **predictive(key, self.observed, num_points=self._num_points)}

    def sample(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        """``num_draws`` posterior draws of every latent and deterministic site.

        The same key gives the same draws, also after :meth:`save` and :func:`load`.

        Args:
            key: a JAX PRNG key or an int seed.
            num_draws: how many, a positive integer.

        Returns:
            Arrays by site name, each shape ``(num_draws, *site_shape)``.

        Raises:
            ValueError: ``num_draws`` is not a positive integer.
        """
        if isinstance(num_draws, bool) or not isinstance(num_draws, (int, np.integer)) or num_draws < 1:
            raise ValueError(f"sample: num_draws must be a positive integer, got {num_draws!r}")
        key_draws, key_complete = jax.random.split(as_key(key))
        return self._complete(key_complete, self.posterior.sample(key_draws, num_draws), batch_ndims=1)

    def posterior_predictive(self, key, num_draws: int) -> jnp.ndarray:
        """Replicated data sets, one per posterior draw.

        Args:
            key: a JAX PRNG key or an int seed.
            num_draws: how many.

        Returns:
            The data sets, shape ``(num_draws, *observed.shape)``.
        """
        key_draws, key_simulate = jax.random.split(as_key(key))
        draws = self.posterior.sample(key_draws, num_draws)
        return self._replicate(key_simulate, draws)

    def log_marginal(self, x, *, key=0, num_draws: int = 200, num_particles: int = 1000) -> jnp.ndarray:
        """log p(x_i | observed) for each new data point x_i.

        A posterior with the :class:`~helmholtz.inference.posterior.LogMarginal` capability
        gives its own estimate: an amortised fit (``vae``, ``wake-sleep``, ``rws``) estimates
        log p(x_i | theta_hat) by importance sampling with its encoder q(z | x_i) as the
        proposal and ``num_particles`` draws per point.

        Otherwise the model's local latents are removed exactly (its
        ``marginal_distribution``: closed form or enumeration) and the
        global parameters are averaged over ``num_draws`` posterior draws:
        log (1/S) sum_s p(x_i | theta_s). For a point-estimate guide (``guide="delta"``)
        this is the exact log p(x_i | theta_hat).

        Args:
            x: new data, shape ``(num_points, ...)``; checked by the model's ``validate_data``.
            key: a JAX PRNG key or an int seed.
            num_draws: posterior draws of the global parameters to average over.
            num_particles: importance-sampling draws per point (amortised fits).

        Returns:
            One value per data point, shape ``(num_points,)``.

        Raises:
            ValueError: the data are invalid for the model.
            TypeError: the model has no exact marginal over its local latents and the
                posterior gives no estimate of its own.
        """
        x = self.model.validate_data(x)
        if self.posterior.has(LogMarginal):
            return self.posterior.log_marginal(x, key=as_key(key), num_particles=num_particles)
        draws = self.posterior.sample(as_key(key), num_draws)
        log_p = jax.vmap(lambda params: self.model.marginal_distribution(params).log_prob(x))(draws)
        return jax.scipy.special.logsumexp(log_p, axis=0) - jnp.log(log_p.shape[0])

    def encode(self, x) -> dict:
        """The amortised posterior q(z_i | x_i) of each local latent site (a NumPyro
        distribution batched over the data points x_i): ``fit.encode(x)["z"].mean``.

        Args:
            x: new data, shape ``(num_points, ...)``; checked by the model's ``validate_data``.

        Returns:
            NumPyro distributions by site name, each with batch shape ``(num_points,)``.

        Raises:
            MissingCapability: (a TypeError) the fit is not amortised.
        """
        return require(self.posterior, Amortised, what="encode", method=self.method).encode(self.model.validate_data(x))

    def decode(self, z, y=None) -> jnp.ndarray:
        """The mean of p(x | z) at the fitted parameters, for each latent vector z; for a
        conditional model, the mean of p(x | z, y) with the covariates ``y`` (one row per
        latent vector).

        Args:
            z: latent vectors, shape ``(num_points, latent_dim)`` (a dict by site for several
                local latents).
            y: the covariates of a conditional model, one row per latent vector.

        Returns:
            One mean per latent vector, shape ``(num_points, ...)``.

        Raises:
            MissingCapability: (a TypeError) the fit is not amortised.
        """
        return require(self.posterior, Amortised, what="decode", method=self.method).decode(z, y)

    # -- ArviZ -------------------------------------------------------------------------
    def to_arviz(self, *, key=0, num_draws: int = 1000) -> az.InferenceData:
        """An ArviZ InferenceData with posterior, sample_stats, observed_data,
        log_likelihood (pointwise, local latents summed out where the model does so)
        and posterior_predictive groups.

        A guide posterior is represented by ``num_draws`` draws in one chain. A simulator
        has no likelihood, so its InferenceData has no log_likelihood group, and its
        observed and replicated data are the summary statistics inference conditioned on
        (coordinate ``feature``), not the raw data sets.

        Args:
            key: a JAX PRNG key or an int seed.
            num_draws: draws that represent a posterior not held as draws.

        Returns:
            An ``arviz.InferenceData``.
        """
        if not self.model.has_likelihood:
            return self._simulator_arviz(key, num_draws)
        key_draws, key_complete, key_predict = jax.random.split(as_key(key), 3)
        grouped = self._complete(key_complete, self.posterior.grouped(key_draws, num_draws), batch_ndims=2)
        chains, per_chain = next(iter(grouped.values())).shape[:2]
        flat = {name: value.reshape((chains * per_chain,) + value.shape[2:]) for name, value in grouped.items()}
        pointwise = log_likelihood(self._program, flat, self.observed, num_points=self._num_points)[OBSERVED_SITE]
        replicated = self._replicate(key_predict, flat)

        def by_chain(value):
            return np.asarray(value).reshape((chains, per_chain) + value.shape[1:])

        sample_stats = dict(self.sample_stats)
        if "lp" not in sample_stats:
            sample_stats["lp"] = by_chain(jnp.sum(pointwise.reshape(pointwise.shape[0], -1), axis=-1))
        return az.from_dict(
            posterior={name: np.asarray(value) for name, value in grouped.items()},
            sample_stats=sample_stats,
            log_likelihood={OBSERVED_SITE: by_chain(pointwise)},
            posterior_predictive={OBSERVED_SITE: by_chain(replicated)},
            observed_data={OBSERVED_SITE: np.asarray(observations(self.observed))},
        )

    def _simulator_arviz(self, key, num_draws: int) -> az.InferenceData:
        key_draws, key_predict = jax.random.split(as_key(key))
        grouped = self.posterior.grouped(key_draws, num_draws)
        chains, per_chain = next(iter(grouped.values())).shape[:2]
        flat = {name: value.reshape((chains * per_chain,) + value.shape[2:]) for name, value in grouped.items()}
        theta = self.model.theta_of(flat)
        replicated = self.model.simulate_summaries(key_predict, theta).reshape(chains, per_chain, -1)
        observed = np.asarray(self.model.summarize(self.observed[None]))[0]
        features = {"feature": list(self.model.feature_names)}
        return az.from_dict(
            posterior={name: np.asarray(value) for name, value in grouped.items()},
            sample_stats=dict(self.sample_stats),
            posterior_predictive={OBSERVED_SITE: replicated},
            observed_data={OBSERVED_SITE: observed},
            coords=features,
            dims={OBSERVED_SITE: ["feature"]},
        )

    def summary(self, **options):
        """ArviZ's summary table (mean, sd, HDI, ESS, R-hat) of the posterior.

        Args:
            **options: passed to ``arviz.summary``.

        Returns:
            A pandas DataFrame, one row per parameter entry.
        """
        return az.summary(self.to_arviz(), group="posterior", **options)

    # -- saving ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike):
        """Write the Fit to ``path`` (zip of JSON and .npy, no pickle), atomically.

        Args:
            path: the file to write.

        Returns:
            The path written, a ``pathlib.Path``.
        """
        return _serialization.write(
            path,
            FILE_KIND,
            {
                "model": self.model,
                "method": self.method,
                "observed": jax.tree.map(np.asarray, self.observed),
                "posterior": {"kind": self.posterior.kind, **self.posterior.state()},
                "history": self.history,
                "diagnostics": self.diagnostics,
                "sample_stats": self.sample_stats,
                "options": self.options,
            },
        )


def load(path: str | os.PathLike, *, max_array_bytes: int | None = None) -> Fit:
    """Load a Fit written by :meth:`Fit.save`; it gives the same draws for the same key.

    The posterior is rebuilt by the function its kind registered
    (:func:`~helmholtz.inference.posterior.register_posterior_kind`), after the saved model
    has accepted the data saved with it (so a file whose model was edited, to sizes its data
    do not have, fails before anything of the model's size is allocated).

    Args:
        path: a file written by :meth:`Fit.save`.
        max_array_bytes: the most bytes the file's arrays may take in memory, all together;
            default ``$HELMHOLTZ_MAX_LOAD_BYTES``, else 1 GiB. Raise it for a large fit you trust.

    Returns:
        The Fit.
    """
    content = _serialization.read(path, FILE_KIND, max_array_bytes=max_array_bytes)
    if not isinstance(content, dict) or not {"model", "posterior", "observed", "options"} <= set(content):
        raise ValueError(f"{path}: not the content of a saved Fit (a model, observed data, a posterior and options)")
    state = content["posterior"]
    saved = content["observed"]
    # Data with covariates is saved as the tuple (x, y) of a Conditioned.
    observed = Conditioned(*map(jnp.asarray, saved)) if isinstance(saved, tuple) else jnp.asarray(saved)
    if not hasattr(content["model"], "validate_data") or not isinstance(state, dict) or "kind" not in state:
        raise ValueError(f"{path}: the saved Fit's model or posterior is malformed")
    try:
        content["model"].validate_data(observed)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"{path}: the saved model does not accept the data saved with it ({error}); "
            "the file was edited or is corrupt"
        ) from None
    kinds = posterior_kinds()
    if state["kind"] not in kinds:
        raise ValueError(
            f"{path}: unknown posterior kind {state['kind']!r}; registered kinds: {', '.join(sorted(kinds))} "
            "(a kind is registered when the module that defines it is imported)"
        )
    saved_state = {name: value for name, value in state.items() if name != "kind"}
    posterior = kinds[state["kind"]].rebuild(content["model"], observed, saved_state, content["options"])
    return Fit(
        model=content["model"],
        method=content["method"],
        observed=observed,
        posterior=posterior,
        history=content["history"],
        diagnostics=content["diagnostics"],
        sample_stats=content["sample_stats"],
        options=content["options"],
    )
