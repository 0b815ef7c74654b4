"""The ``svi`` back end: NumPyro stochastic variational inference with a choice of guide.

Training runs in compiled chunks (``lax.scan`` over ``check_every`` steps), so the Python
loop, the progress bar and the plateau test cost nothing per step.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.distributions.flows import InverseAutoregressiveTransform
from numpyro.distributions.transforms import AffineTransform, PermuteTransform
from numpyro.infer import SVI, RenyiELBO, Trace_ELBO
from numpyro.infer.autoguide import AutoBNAFNormal, AutoDelta, AutoIAFNormal, AutoMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_median, init_to_uniform
from numpyro.nn.auto_reg_nn import AutoregressiveNN
from numpyro.optim import optax_to_numpyro

from helmholtz.inference.fit import Fit, GuidePosterior
from helmholtz.inference.posterior import register_posterior_kind
from helmholtz.inference.registry import register_backend, requires_continuous_likelihood
from helmholtz.inference.training import (
    TrainingOptions,
    check_num_particles,
    check_positive_int,
    is_real,
    non_finite_advice,
    optimise,
)

GUIDES = ("normal", "full-rank", "flow", "delta")
FLOWS = ("iaf", "bnaf")
ELBOS = ("trace", "importance-weighted")


# The scale of the guides' first draws around their starting point (in unconstrained
# space), NumPyro's own for AutoNormal and AutoMultivariateNormal.
INIT_SCALE = 0.1
# Where a guide starts (``init``): the prior's median (the median of 15 prior draws), or
# NumPyro's default, uniform in (-2, 2) in unconstrained space; NumPyro redraws either until
# the log density is finite. "auto" takes the median, except for the normal and full-rank
# guides of a model with local latents: there the median starts every loading and code of a
# sparse-coding model at 0, a saddle point the fit never left (subspace angle 59 degrees), and
# uniform in (-0.5, 0.5) left it at 6.4 degrees after 6,000 steps, against 0.4 from uniform
# in (-2, 2). Without local latents the uniform start fails the other way: on posteriordb's
# lotka_volterra a full-rank guide from it stopped in another mode (C2ST 1.0), where the
# median start reaches the reference posterior.
INITS = ("auto", "median", "uniform")
INIT_LOCATIONS = {"median": init_to_median, "uniform": init_to_uniform}
# The gates of the flow guide's IAF layers start at sigmoid(2) = 0.88: near the identity.
GATE_BIAS = 2.0


class GatedIAFTransform(InverseAutoregressiveTransform):
    """The numerically stable IAF layer of Kingma et al. (2016, eqs. 11-14): from the
    autoregressive network's (m, s), y = g x + (1 - g) m with the gate g = sigmoid(s + 2).

    NumPyro's layer, y = exp(s) x + m with s clipped at 3 (gradients passed through), may
    stretch draws 20-fold per layer, and did: within a few dozen of Adam's first steps
    (which move every weight by about the learning rate) three layers grew tails 40 sd
    out, where an ARMA recursion overflows (ARMA(1, 1), 6 keys: 4 fits failed by step 43
    with NumPyro's layers, 1 with gated ones). A gated layer only contracts, smoothly; the
    guide's last, affine, map sets the scale."""

    def call_with_intermediates(self, x):
        mean, s = self.arn(x)
        log_gate = jax.nn.log_sigmoid(s + GATE_BIAS)
        gate = jnp.exp(log_gate)
        return gate * x + (1.0 - gate) * mean, log_gate

    def _inverse(self, y):
        def update(_, x):
            mean, s = self.arn(x)
            gate = jax.nn.sigmoid(s + GATE_BIAS)
            return (y - (1.0 - gate) * mean) / gate

        return jax.lax.fori_loop(0, jnp.shape(y)[-1], update, jnp.zeros(jnp.shape(y)))

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        log_gate = jax.nn.log_sigmoid(self.arn(x)[1] + GATE_BIAS) if intermediates is None else intermediates
        return log_gate.sum(-1)


class _StartedFlow:
    """A flow guide whose first draws lie within ``init_scale`` of the prior's median.

    NumPyro's flows push unit-scale normal draws through freshly initialised layers, so
    their first draws spread about one unit around zero in unconstrained space; where a
    model's log density overflows within that range (an ARMA recursion with its
    moving-average coefficient past 1, an ODE with large rates) the loss is infinite from
    the first step. Here the flow's output goes through one more, learnt, affine map,
    started at the point where NumPyro's initialisation found the log density finite
    (``loc``) and at ``init_scale`` (``scale``): the guide starts as ``normal`` and
    ``full-rank`` do."""

    def __init__(self, model, *, init_scale: float, **options):
        self._init_scale = init_scale
        super().__init__(model, **options)

    def _get_posterior(self):
        return self._started(super()._get_posterior())

    def _started(self, flow):
        loc = numpyro.param(f"{self.prefix}_loc", self._init_latent)
        start = jnp.full(self.latent_dim, self._init_scale)
        scale = numpyro.param(f"{self.prefix}_scale", start, constraint=constraints.softplus_positive)
        return dist.TransformedDistribution(flow, AffineTransform(loc, scale))


class StartedIAFNormal(_StartedFlow, AutoIAFNormal):
    """NumPyro's ``AutoIAFNormal`` with gated layers (:class:`GatedIAFTransform`), started
    at a small scale (see :class:`_StartedFlow`)."""

    def _get_posterior(self):
        # AutoIAFNormal's own, with gated layers.
        if self.latent_dim == 1:
            raise ValueError("latent dim = 1. Consider using AutoDiagonalNormal instead")
        hidden_dims = [self.latent_dim, self.latent_dim] if self._hidden_dims is None else self._hidden_dims
        flows = []
        for i in range(self.num_flows):
            if i > 0:
                flows.append(PermuteTransform(jnp.arange(self.latent_dim)[::-1]))
            arn = AutoregressiveNN(
                self.latent_dim,
                hidden_dims,
                permutation=jnp.arange(self.latent_dim),
                skip_connections=self._skip_connections,
                nonlinearity=self._nonlinearity,
            )
            arnn = numpyro.module(f"{self.prefix}_arn__{i}", arn, (self.latent_dim,))
            flows.append(GatedIAFTransform(arnn))
        return self._started(dist.TransformedDistribution(self.get_base_dist(), flows))


class StartedBNAFNormal(_StartedFlow, AutoBNAFNormal):
    """NumPyro's ``AutoBNAFNormal``, started at a small scale (see :class:`_StartedFlow`)."""


def make_guide(
    model,
    guide: str = "normal",
    flow: str = "iaf",
    flow_layers: int = 3,
    flow_hidden: int = 32,
    init_scale: float | None = None,
    init: str | None = None,
):
    """The NumPyro autoguide called ``guide`` for ``model``'s program.

    Args:
        model: a model with a likelihood.
        guide: ``"normal"``: mean-field normal; ``"full-rank"``: one multivariate normal
            over all latents; ``"flow"``: a normalising flow; ``"delta"``: a point
            estimate (MAP).
        flow: ``"iaf"`` (inverse autoregressive) or ``"bnaf"`` (block neural
            autoregressive), with ``flow_layers`` layers of ``flow_hidden`` units.
        init_scale: the scale of the first draws around the starting point (unconstrained
            space) of the normal, full-rank and flow guides. None, as in fits saved
            before it was an option, rebuilds the flow guide of then: NumPyro's own, whose
            first draws have unit scale.
        init: where the guide starts: ``"median"`` (the prior's median), ``"uniform"``
            (NumPyro's default: uniform in (-2, 2), unconstrained) or ``"auto"`` (the
            median, except uniform for the normal and full-rank guides of a model with
            local latents, whose symmetry the median would not break). None, as in fits
            saved before it was an option: the start of then (uniform, the flow at the
            median).

    Returns:
        The autoguide, started where the model's log density is finite (NumPyro redraws
        the start until it is), at ``init_scale``.
    """
    scale = INIT_SCALE if init_scale is None else init_scale
    init_loc_fn = INIT_LOCATIONS[resolved_init(model, guide, init)]
    if guide == "normal":
        return AutoNormal(model.program, init_scale=scale, init_loc_fn=init_loc_fn)
    if guide == "full-rank":
        return AutoMultivariateNormal(model.program, init_scale=scale, init_loc_fn=init_loc_fn)
    if guide == "delta":
        return AutoDelta(model.program)
    if guide == "flow":
        if flow not in FLOWS:
            raise ValueError(f"svi: unknown flow {flow!r}; choose one of {FLOWS}")
        if init_scale is None:
            if flow == "iaf":
                return AutoIAFNormal(model.program, num_flows=flow_layers, hidden_dims=[flow_hidden, flow_hidden])
            return AutoBNAFNormal(model.program, num_flows=flow_layers, hidden_factors=[flow_hidden // 4 or 1])
        if flow == "iaf":
            return StartedIAFNormal(
                model.program,
                init_scale=scale,
                init_loc_fn=init_loc_fn,
                num_flows=flow_layers,
                hidden_dims=[flow_hidden, flow_hidden],
            )
        return StartedBNAFNormal(
            model.program,
            init_scale=scale,
            init_loc_fn=init_loc_fn,
            num_flows=flow_layers,
            hidden_factors=[flow_hidden // 4 or 1],
        )
    raise ValueError(f"svi: unknown guide {guide!r}; choose one of {GUIDES}")


def resolved_init(model, guide: str, init: str | None) -> str:
    """``"median"`` or ``"uniform"``: where ``guide`` starts for ``model`` under ``init``
    (see :func:`make_guide`)."""
    if init in INIT_LOCATIONS:
        return init
    if init is None:  # a fit saved before init was an option
        return "median" if guide == "flow" else "uniform"
    if init != "auto":
        raise ValueError(f"svi: init must be one of {INITS}, got {init!r}")
    if guide in ("normal", "full-rank") and model.has_local_latents:
        return "uniform"
    return "median"


def make_elbo(elbo: str, num_particles: int):
    num_particles = check_num_particles("svi", num_particles)
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


# svi's defaults for the shared training options (TrainingOptions declares them all).
SVI_TRAINING = TrainingOptions(num_steps=20_000, learning_rate=1e-2)


@register_backend(
    "svi",
    "NumPyro SVI: normal, full-rank, flow or delta guide; standard or importance-weighted ELBO",
    requires_continuous_likelihood,
    options=TrainingOptions.names(),
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
    init_scale: float = INIT_SCALE,
    init: str = "auto",
    elbo: str = "trace",
    num_particles: int = 1,
    **training,
) -> Fit:
    """Fit a variational posterior by stochastic optimisation of the ELBO.

    The shared training options (``num_steps``, ``learning_rate``, ``optimizer``,
    ``check_every``, ``patience``, ``tolerance``, ``resume``, ``progress_bar``) are those
    of :class:`~helmholtz.inference.TrainingOptions`, documented once in the user guide's
    "Options"; here ``num_steps`` defaults to 20,000 and ``learning_rate`` to 1e-2, and
    ``resume`` takes an svi Fit (or its file) of the same model and guide settings.

    Args:
        model: a model with a likelihood and continuous latents.
        x: the observations.
        key: a JAX PRNG key.
        guide: ``"normal"``, ``"full-rank"``, ``"flow"`` or ``"delta"`` (see :func:`make_guide`).
        flow: the flow's type, ``"iaf"`` or ``"bnaf"``.
        flow_layers: the flow's layers, a positive integer.
        flow_hidden: the flow's hidden units per layer, a positive integer.
        init_scale: the scale (unconstrained space) of the guide's first draws around
            its starting point, where the model's log density is finite; lower it if the
            loss is not finite at step 0.
        init: where the guide starts, ``"auto"``, ``"median"`` or ``"uniform"`` (see
            :func:`make_guide`).
        elbo: ``"trace"`` (the standard ELBO) or ``"importance-weighted"``.
        num_particles: Monte Carlo particles per step (K of the importance-weighted bound).
        **training: the shared training options (above).

    Returns:
        The Fit; ``fit.history["loss"]`` is the negative ELBO at every step. When training
        stops early on a plateau, the normal, full-rank and delta guides keep the average
        of their parameters (unconstrained) over the chunks since the best one, rather
        than the last step's: at a constant learning rate the steps jitter about the
        optimum, and their average lies closer to it.
    """
    training = SVI_TRAINING.replace("svi", **training)
    if guide not in GUIDES:
        raise ValueError(f"svi: unknown guide {guide!r}; choose one of {GUIDES}")
    if flow not in FLOWS:
        raise ValueError(f"svi: unknown flow {flow!r}; choose one of {FLOWS}")
    flow_layers = check_positive_int("svi", "flow_layers", flow_layers)
    flow_hidden = check_positive_int("svi", "flow_hidden", flow_hidden)
    if not (is_real(init_scale) and 0 < init_scale < math.inf):
        raise ValueError(f"svi: init_scale must be a finite number > 0, got {init_scale!r}")
    objective = make_elbo(elbo, num_particles)
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"svi: init must be one of {INITS}, got {init!r}")
    guide_config = dict(
        guide=guide,
        flow=flow,
        flow_layers=flow_layers,
        flow_hidden=flow_hidden,
        init_scale=float(init_scale),
        init=resolved_init(model, guide, init),
    )
    autoguide = make_guide(model, **guide_config)
    svi = SVI(model.program, autoguide, optax_to_numpyro(training.make_optimizer()), objective)

    previous_losses = np.zeros(0)
    init_params = None
    resume = training.resume
    if resume is not None:
        # Where the guide started does not matter to a resumed fit (and fits saved before
        # init was an option do not record it).
        same_guide = resume.method == "svi" and {**resume.posterior.guide_config, "init": None} == {
            **guide_config,
            "init": None,
        }
        if not same_guide or resume.model != model:
            raise ValueError(
                "svi: resume takes an svi Fit of the same model with the same guide settings "
                f"({guide_config}); got a {resume.method} Fit"
                + (f" with {resume.posterior.guide_config}" if resume.method == "svi" else "")
            )
        init_params = dict(resume.posterior.params)
        previous_losses = np.asarray(resume.history["loss"])
    at_start = "the guide's first draws give a non-finite log density: check the model's priors and their support" + (
        "" if guide == "delta" else f", or pass a smaller init_scale (now {float(init_scale):g})"
    )
    params, losses, done, _ = optimise(
        "svi",
        svi,
        x,
        key,
        init_params=init_params,
        num_steps=training.num_steps,
        check_every=training.check_every,
        patience=training.patience,
        tolerance=training.tolerance,
        progress_bar=training.progress_bar,
        advice=non_finite_advice(training, at_start, num_particles=None if guide == "delta" else num_particles),
        # A flow's network weights are not averaged: an average of weights is no average of flows.
        average=guide != "flow",
        first_step=int(previous_losses.size),
    )
    return Fit(
        model=model,
        method="svi",
        observed=x,
        posterior=GuidePosterior(autoguide, params, guide_config),
        history={"loss": np.concatenate([previous_losses, losses])},
        diagnostics={"num_steps": int(previous_losses.size + done), "stopped_early": bool(done < training.num_steps)},
        options=dict(**guide_config, elbo=elbo, num_particles=num_particles, **training.record()),
    )
