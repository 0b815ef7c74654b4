"""The ``svi`` back end: NumPyro stochastic variational inference with a choice of guide.

Training runs in compiled chunks (``lax.scan`` over ``check_every`` steps), so the Python
loop, the progress bar and the plateau test cost nothing per step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro import handlers
from numpyro.infer import SVI, RenyiELBO, Trace_ELBO
from numpyro.infer.autoguide import AutoBNAFNormal, AutoDelta, AutoIAFNormal, AutoMultivariateNormal, AutoNormal
from numpyro.optim import optax_to_numpyro

from helmholtz.inference.fit import Fit, GuidePosterior
from helmholtz.inference.posterior import register_posterior_kind
from helmholtz.inference.registry import register_backend, requires_continuous_likelihood
from helmholtz.inference.training import check_schedule, optimise

GUIDES = ("normal", "full-rank", "flow", "delta")
FLOWS = ("iaf", "bnaf")
ELBOS = ("trace", "importance-weighted")


def make_guide(model, guide: str = "normal", flow: str = "iaf", flow_layers: int = 3, flow_hidden: int = 32):
    """The NumPyro autoguide called ``guide`` for ``model``'s program.

    ``normal``: mean-field normal; ``full-rank``: one multivariate normal over all latents;
    ``flow``: a normalising flow (``flow="iaf"``: inverse autoregressive, or ``"bnaf"``:
    block neural autoregressive) with ``flow_layers`` layers of ``flow_hidden`` units;
    ``delta``: a point estimate (MAP).
    """
    if guide == "normal":
        return AutoNormal(model.program)
    if guide == "full-rank":
        return AutoMultivariateNormal(model.program)
    if guide == "delta":
        return AutoDelta(model.program)
    if guide == "flow":
        if flow == "iaf":
            return AutoIAFNormal(model.program, num_flows=flow_layers, hidden_dims=[flow_hidden, flow_hidden])
        if flow == "bnaf":
            return AutoBNAFNormal(model.program, num_flows=flow_layers, hidden_factors=[flow_hidden // 4 or 1])
        raise ValueError(f"svi: unknown flow {flow!r}; choose one of {FLOWS}")
    raise ValueError(f"svi: unknown guide {guide!r}; choose one of {GUIDES}")


def make_elbo(elbo: str, num_particles: int):
    if elbo == "trace":
        return Trace_ELBO(num_particles=num_particles)
    if elbo == "importance-weighted":
        if num_particles < 2:
            raise ValueError("svi: the importance-weighted ELBO needs num_particles >= 2")
        # Renyi's bound at alpha = 0 is the importance-weighted (IWAE) bound.
        return RenyiELBO(alpha=0.0, num_particles=num_particles)
    raise ValueError(f"svi: unknown elbo {elbo!r}; choose one of {ELBOS}")


def rebuild_guide_posterior(model, observed, state: dict, options: dict) -> GuidePosterior:
    """A GuidePosterior from its saved state (``"guide"``: the guide's settings, ``"params"``):
    the guide is rebuilt and traced once so that its shapes are known, then used with
    exactly the saved parameters."""
    guide_config = state["guide"]
    guide = make_guide(model, **guide_config)
    params = jax.tree.map(jnp.asarray, state["params"])
    handlers.seed(handlers.substitute(guide, data=params), jax.random.PRNGKey(0))(observed)
    return GuidePosterior(guide, params, guide_config)


register_posterior_kind(GuidePosterior, rebuild=rebuild_guide_posterior, methods=("svi",))


@register_backend(
    "svi",
    "NumPyro SVI: normal, full-rank, flow or delta guide; standard or importance-weighted ELBO",
    requires_continuous_likelihood,
)
def fit_svi(
    model,
    x,
    key,
    *,
    guide: str = "normal",
    flow: str = "iaf",
    flow_layers: int = 3,
    flow_hidden: int = 32,
    elbo: str = "trace",
    num_particles: int = 1,
    num_steps: int = 20_000,
    learning_rate: float = 1e-2,
    optimizer: optax.GradientTransformation | None = None,
    check_every: int = 500,
    patience: int = 5,
    tolerance: float = 1e-5,
    resume: Fit | None = None,
    progress_bar: bool = True,
) -> Fit:
    """Fit a variational posterior by stochastic optimisation of the ELBO.

    Options:
        guide: ``"normal"``, ``"full-rank"``, ``"flow"`` or ``"delta"`` (see :func:`make_guide`);
            flow, flow_layers, flow_hidden: the flow's type and size.
        elbo: ``"trace"`` (the standard ELBO) or ``"importance-weighted"``;
            num_particles: Monte Carlo particles per step (K of the importance-weighted bound).
        num_steps: the most optimisation steps (rounded up to a multiple of ``check_every``).
        learning_rate: Adam's step size; or pass any Optax ``optimizer``.
        check_every, patience, tolerance: every ``check_every`` steps the mean loss of
            those steps is compared with the best so far; training stops early when it has
            not improved by ``tolerance`` (relative) ``patience`` times in a row.
            ``patience=0`` switches early stopping off.
        resume: a previous svi Fit of the same model and guide: training continues from
            its parameters (Adam's moment estimates start afresh) and its loss history.

    ``fit.history["loss"]`` is the negative ELBO at every step.
    """
    guide_config = dict(guide=guide, flow=flow, flow_layers=flow_layers, flow_hidden=flow_hidden)
    autoguide = make_guide(model, **guide_config)
    custom_optimizer = optimizer is not None
    optimizer = optimizer if custom_optimizer else optax.adam(learning_rate)
    svi = SVI(model.program, autoguide, optax_to_numpyro(optimizer), make_elbo(elbo, num_particles))
    check_schedule("svi", num_steps, check_every, patience)

    previous_losses = np.zeros(0)
    init_params = None
    if resume is not None:
        if resume.method != "svi" or resume.posterior.guide_config != guide_config or resume.model != model:
            raise ValueError("svi: resume takes an svi Fit of the same model with the same guide settings")
        init_params = dict(resume.posterior.params)
        previous_losses = np.asarray(resume.history["loss"])
    state, losses, done, _ = optimise(
        "svi",
        svi,
        x,
        key,
        init_params=init_params,
        num_steps=num_steps,
        check_every=check_every,
        patience=patience,
        tolerance=tolerance,
        progress_bar=progress_bar,
        advice="lower learning_rate or check the model's priors",
    )

    params = svi.get_params(state)
    return Fit(
        model=model,
        method="svi",
        observed=x,
        posterior=GuidePosterior(autoguide, params, guide_config),
        history={"loss": np.concatenate([previous_losses, losses])},
        diagnostics={"num_steps": int(previous_losses.size + done), "stopped_early": bool(done < num_steps)},
        options=dict(
            **guide_config,
            elbo=elbo,
            num_particles=num_particles,
            num_steps=num_steps,
            learning_rate=None if custom_optimizer else learning_rate,
            check_every=check_every,
            patience=patience,
            tolerance=tolerance,
        ),
    )
