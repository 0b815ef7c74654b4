"""Amortised inference, shared by the ``vae``, ``wake-sleep`` and ``rws`` back ends.

An encoder network maps each data point x_i to q(z_i | x_i), a distribution over the
model's local latents, of a family chosen by each latent's support:

- real vectors (Gaussian, Laplace priors): Normal(loc, softplus scale), reparameterised;
- binary vectors (Bernoulli prior): independent Bernoulli(logits);
- one-hot vectors (Categorical prior): a one-draw Multinomial(logits);
- angles (von Mises prior): independent VonMises(loc, softplus concentration).

The model's global latents (a linear model's loadings, mean and noise) are point
estimates; its ``param`` sites (a decoder's weights) are fitted as they are. How each back
end trains the encoder differs; what it returns is the same :class:`AmortisedPosterior`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro import handlers
from numpyro.distributions import constraints
from numpyro.infer import SVI
from numpyro.infer.initialization import init_to_uniform
from numpyro.optim import optax_to_numpyro
from numpyro.primitives import Messenger

from helmholtz.inference.posterior import Amortised, BindsProgram, LogMarginal, Posterior, register_posterior_kind
from helmholtz.inference.registry import requires_likelihood
from helmholtz.models.base import (
    DATA_PLATE,
    OBSERVED_SITE,
    Conditioned,
    Model,
    num_rows,
    take_rows,
    unobserved,
    with_observations,
)
from helmholtz.models.networks import MLP

ENCODER_PARAM = "encoder"
ENCODER_ACTIVATION = "tanh"
POINT_SUFFIX = "_point"
GLOBAL_PRIOR_SITE = "global_log_prior"
# A floor under the encoder's scales keeps log q(z | x) finite when a coordinate is pinned.
MIN_SCALE = 1e-4
# log_marginal evaluates (points x particles) rows in chunks of this many: ~10 MB of
# activations per chunk for 64-unit layers, whatever the number of particles.
ROWS_PER_CHUNK = 2**15


# -- effect handlers ----------------------------------------------------------------------
class Minibatch(Messenger):
    """The ``"data"`` plate takes ``indices`` (so NumPyro scales by N / len(indices)), and
    the observed site keeps only those rows."""

    def __init__(self, fn=None, indices=None):
        self.indices = jnp.asarray(indices)
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] == "plate" and msg["name"] == DATA_PLATE:
            msg["value"] = self.indices
        elif msg["type"] == "sample" and msg["name"] == OBSERVED_SITE and msg["is_observed"]:
            msg["value"] = jnp.asarray(msg["value"])[self.indices]


class ScaleSites(Messenger):
    """Multiplies the log density of the sample sites ``names`` by ``factor``."""

    def __init__(self, fn=None, names=(), factor=1.0):
        self.names, self.factor = set(names), factor
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] in self.names:
            msg["scale"] = self.factor if msg["scale"] is None else msg["scale"] * self.factor


class PointEstimates(Messenger):
    """Fixes sample sites at ``values``, hides them from the handlers outside (the
    objective's trace), and sums their log prior density in ``log_prior``."""

    def __init__(self, fn=None, values=None):
        self.values, self.log_prior = values or {}, 0.0
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] in self.values:
            msg["value"] = self.values[msg["name"]]
            self.log_prior = self.log_prior + jnp.sum(msg["fn"].log_prob(msg["value"]))
            msg["stop"] = True


def _encoder_input(x):
    """Each data point as one flat vector: its observations, then its covariates."""
    parts = [jnp.asarray(part) for part in jax.tree.leaves(x)]
    return jnp.concatenate([part.reshape(part.shape[0], -1) for part in parts], axis=-1)


def _mlp_encoder(sizes, key):
    return MLP(sizes, ENCODER_ACTIVATION, key=key)


# -- the encoder's families ---------------------------------------------------------------
@dataclass(frozen=True)
class EncoderHead:
    """The part of the encoder's output that parameterises q(site | x)."""

    site: str
    family: str  # "normal", "delta", "bernoulli", "categorical" or "von_mises"
    dim: int

    @property
    def num_outputs(self) -> int:
        return 2 * self.dim if self.family in ("normal", "von_mises") else self.dim

    @property
    def reparameterised(self) -> bool:
        """Whether gradients flow through samples (else a score-function estimator is needed)."""
        return self.family in ("normal", "delta")

    def distribution(self, outputs) -> dist.Distribution:
        if self.family == "normal":
            loc, raw_scale = jnp.split(outputs, 2, axis=-1)
            return dist.Normal(loc, jax.nn.softplus(raw_scale) + MIN_SCALE).to_event(1)
        if self.family == "delta":
            return dist.Delta(outputs).to_event(1)
        if self.family == "bernoulli":
            return dist.Bernoulli(logits=outputs).to_event(1)
        if self.family == "categorical":
            return dist.Multinomial(total_count=1, logits=outputs)
        loc, raw_concentration = jnp.split(outputs, 2, axis=-1)
        return dist.VonMises(loc, jax.nn.softplus(raw_concentration) + MIN_SCALE).to_event(1)


def _family(fn: dist.Distribution) -> str | None:
    support = fn.support
    if isinstance(support, constraints._Multinomial):
        return "categorical"
    if len(fn.event_shape) != 1 or not isinstance(support, constraints._IndependentConstraint):
        return None
    base = support.base_constraint
    if base is constraints.real:
        return "normal"
    if base is constraints.boolean:
        return "bernoulli"
    if base is constraints.circular:
        return "von_mises"
    return None


def _prototype_trace(model: Model, x=None, key=None, radius: float = 2.0):
    """One run of the program at random values in (-radius, radius) (unconstrained)."""
    seeded = handlers.seed(model.program, jax.random.PRNGKey(0) if key is None else key)
    substituted = handlers.substitute(seeded, substitute_fn=init_to_uniform(radius=radius))
    return handlers.trace(substituted).get_trace(x, num_points=2 if x is None else None)


def requires_encodable_latents(model: Model) -> str | None:
    """None when an encoder can be built for ``model``'s local latents, else why not."""
    if (reason := requires_likelihood(model)) is not None:
        return reason
    if getattr(model, "integrates_latents", False):
        return "this model integrates its local latents out (collapse_local=True), so there is no z to encode; pass collapse_local=False"
    sites = model.sites()
    if not sites.local_latents:
        return f"it needs local latents sampled in the {DATA_PLATE!r} plate to encode, and this model samples none"
    trace = _prototype_trace(model)
    for name in sites.local_latents:
        if _family(trace[name]["fn"]) is None:
            fn = trace[name]["fn"]
            return (
                f"its encoder gives one vector per data point for real, binary, one-hot or angular latents; "
                f"{name!r} has event shape {fn.event_shape} and support {fn.support}"
            )
    if any(trace[name]["fn"].support.is_discrete for name in sites.global_latents):
        return "it takes point estimates of the global latents, so they must be continuous"
    return None


# -- the model with point-estimated globals, and the encoder ------------------------------
@dataclass(frozen=True)
class Amortisation:
    """The model with point-estimated global latents, and the encoder over its local
    latents. The programs take ``(x, indices=None)``; the ``log_joint``, ``dream`` and
    ``encoder_distributions`` functions take a dict of every param.

    The encoder is an MLP on each data vector (tanh hidden layers ``encoder_hidden``),
    unless the model builds its own: a model whose ``make_encoder(num_outputs, key)``
    (a hook of :class:`~helmholtz.models.base.Model`) returns an Equinox module (a
    recurrent network over a trial, say) gets that network, applied to each data point."""

    model: Model
    num_points: int
    heads: tuple[EncoderHead, ...]
    make_encoder: Callable  # key -> an Equinox module from one data point to the heads' outputs
    global_inits: dict
    beta: float = 1.0

    @classmethod
    def build(cls, model: Model, x, key, encoder_hidden=(64, 64), beta: float = 1.0, deterministic: bool = False):
        # Small random starting values break the symmetry between latent coordinates
        # while staying near the priors' centres.
        trace = _prototype_trace(model, x, key, radius=0.5)
        sites = model.sites()
        heads = []
        for name in sites.local_latents:
            family = _family(trace[name]["fn"])
            if deterministic:
                if family != "normal":
                    raise ValueError(f"a deterministic encoder needs real-valued latents; {name!r} is {family}")
                family = "delta"
            heads.append(EncoderHead(name, family, trace[name]["fn"].event_shape[-1]))
        inits = {name: (trace[name]["value"], trace[name]["fn"].support) for name in sites.global_latents}
        num_outputs = sum(head.num_outputs for head in heads)
        if model.make_encoder(num_outputs, jax.random.PRNGKey(0)) is not None:
            make_encoder = functools.partial(model.make_encoder, num_outputs)
        else:
            input_size = sum(int(np.prod(np.shape(part)[1:])) for part in jax.tree.leaves(x))
            sizes = (input_size, *encoder_hidden, num_outputs)
            make_encoder = functools.partial(_mlp_encoder, sizes)
        return cls(model, num_rows(x), tuple(heads), make_encoder, inits, beta)

    @property
    def _own_encoder(self) -> bool:
        """Whether the model built the encoder (which reads data points as they are)."""
        return not (isinstance(self.make_encoder, functools.partial) and self.make_encoder.func is _mlp_encoder)

    @functools.cached_property
    def _encoder_skeleton(self):
        # Built eagerly even when first asked for inside a traced function, so no tracer is kept.
        with jax.ensure_compile_time_eval():
            return eqx.partition(self.make_encoder(jax.random.PRNGKey(0)), eqx.is_inexact_array)[1]

    @property
    def local_sites(self) -> tuple[str, ...]:
        return tuple(head.site for head in self.heads)

    @property
    def reparameterised(self) -> bool:
        return all(head.reparameterised for head in self.heads)

    # -- the params, by role
    def split(self, params: dict) -> tuple[dict, dict, dict]:
        """The global point estimates by site name, the model's own params (a decoder's
        weights), and the encoder's weights."""
        point_names = {name + POINT_SUFFIX: name for name in self.global_inits}
        points = {point_names[k]: v for k, v in params.items() if k in point_names}
        model_params = {k: v for k, v in params.items() if k != ENCODER_PARAM and k not in point_names}
        return points, model_params, params[ENCODER_PARAM]

    def point_params(self):
        """Declares the global point estimates as params (inside a program)."""
        return {
            name: numpyro.param(name + POINT_SUFFIX, value, constraint=support)
            for name, (value, support) in self.global_inits.items()
        }

    def encoder_distributions(self, encoder_weights, x) -> dict[str, dist.Distribution]:
        """q(site | x) for each local latent site, batched over the rows of ``x``."""
        encoder = eqx.combine(encoder_weights, self._encoder_skeleton)
        # A model's own encoder reads its data points as they are; the default MLP reads
        # each flattened, with its covariates appended for a conditional model.
        outputs = jax.vmap(encoder)(x if self._own_encoder else _encoder_input(x))
        splits = np.cumsum([head.num_outputs for head in self.heads])[:-1]
        return {
            head.site: head.distribution(part) for head, part in zip(self.heads, jnp.split(outputs, splits, axis=-1))
        }

    # -- the two programs of a NumPyro objective (vae)
    def _minibatch(self, indices):
        return contextlib.nullcontext() if indices is None else Minibatch(indices=indices)

    def objective_model(self, x, indices=None):
        """The model with its global latents fixed at point estimates (params), their
        log prior added back spread evenly (1/N) over the points of the data plate: every
        site then lies in that plate, which keeps minibatch scaling exact and lets
        ``RenyiELBO`` form the IWAE bound per data point."""
        fixed = PointEstimates(values=self.point_params())
        with self._minibatch(indices):
            with fixed, ScaleSites(names=self.local_sites, factor=self.beta):
                self.model.program(x)
            if self.global_inits:
                with numpyro.plate(DATA_PLATE, self.num_points):
                    numpyro.factor(GLOBAL_PRIOR_SITE, fixed.log_prior / self.num_points)

    def guide(self, x, indices=None):
        # Initialised from the run's PRNG key, so that a fit's key also chooses the encoder.
        weights = numpyro.param(ENCODER_PARAM, lambda key: eqx.filter(self.make_encoder(key), eqx.is_inexact_array))
        batch = x if indices is None else take_rows(x, indices)
        with self._minibatch(indices), numpyro.plate(DATA_PLATE, self.num_points):
            with ScaleSites(names=self.local_sites, factor=self.beta):
                for site, q in self.encoder_distributions(weights, batch).items():
                    numpyro.sample(site, q)

    def initial_params(self, key, x) -> dict:
        """Every param the two programs declare, at its starting value."""
        params = {}
        for program, key_program in zip((self.guide, self.objective_model), jax.random.split(key)):
            trace = handlers.trace(handlers.seed(program, key_program)).get_trace(x)
            params.update({name: site["value"] for name, site in trace.items() if site["type"] == "param"})
        return params

    # -- the model as functions of the params (wake-sleep, rws, log_marginal)
    def _bound_program(self, params):
        points, model_params, _ = self.split(params)
        fixed = PointEstimates(values=points)
        return handlers.substitute(fixed(self.model.program), data=model_params), fixed

    def log_joint(self, params, x, latents: dict):
        """log p(x_i, z_i | theta) for each row x_i (shape ``(len(x),)``) at the local
        latents ``latents``, and the log prior density of the global point estimates."""
        program, fixed = self._bound_program(params)
        conditioned = handlers.condition(program, data=latents)
        trace = handlers.trace(handlers.seed(conditioned, jax.random.PRNGKey(0))).get_trace(x)
        total = jnp.zeros(num_rows(x))
        for site in trace.values():
            if site["type"] == "sample" and any(frame.name == DATA_PLATE for frame in site["cond_indep_stack"]):
                total = total + jnp.reshape(site["fn"].log_prob(site["value"]), total.shape)
        return total, fixed.log_prior

    def dream(self, params, key, like) -> tuple[dict, jnp.ndarray]:
        """Local latents and data simulated from the model at ``params`` (the sleep
        phase), as many points as ``like`` has, with ``like``'s covariates if it has any."""
        program, _ = self._bound_program(params)
        trace = handlers.trace(handlers.seed(program, key)).get_trace(unobserved(like), num_points=num_rows(like))
        latents = {site: trace[site]["value"] for site in self.local_sites}
        return latents, with_observations(like, trace[OBSERVED_SITE]["value"])

    def conditional_mean(self, params, latents: dict, num_points: int, covariates=None):
        """The mean of p(x_i | z_i) (of p(x_i | z_i, y_i) with ``covariates`` y) at the
        local latents ``latents``."""
        program, _ = self._bound_program(params)
        conditioned = handlers.condition(program, data=latents)
        given = None if covariates is None else Conditioned(None, covariates)
        trace = handlers.trace(handlers.seed(conditioned, jax.random.PRNGKey(0))).get_trace(
            given, num_points=num_points
        )
        return trace[OBSERVED_SITE]["fn"].mean

    def log_weights(self, params, x, key, num_particles: int):
        """log p(x_i, z_k) - log q(z_k | x_i) for K = ``num_particles`` draws z_k ~ q(z | x_i):
        shape (K, len(x)); also returns the draws and the log prior of the globals."""
        q = self.encoder_distributions(self.split(params)[2], x)
        keys = dict(zip(q, jax.random.split(key, len(q))))
        latents = {site: q[site].sample(keys[site], (num_particles,)) for site in q}
        log_q = sum(q[site].log_prob(latents[site]) for site in q)
        log_p, log_prior = jax.vmap(lambda z: self.log_joint(params, x, z))(latents)
        return log_p - log_q, latents, log_prior[0]


class AmortisedPosterior(Posterior, BindsProgram, LogMarginal, Amortised):
    """A fitted encoder q(z_i | x_i) with point estimates of the model's parameters.

    ``sample`` gives the global point estimates, repeated, and draws of the local
    latents from q(z_i | x_i) at the observed data."""

    kind = "amortised"

    def __init__(self, amortisation: Amortisation, params: dict, observed, config: dict):
        self.amortisation, self.observed, self.config = amortisation, observed, config
        self.params = jax.tree.map(jnp.asarray, params)
        self._compiled_log_marginal = {}

    @property
    def points(self) -> dict:
        """The global latents' point estimates, by site name."""
        return self.amortisation.split(self.params)[0]

    @property
    def model_params(self) -> dict:
        """The model's own fitted params (a decoder's weights, noise scales), by name."""
        return self.amortisation.split(self.params)[1]

    def bind(self, program):
        """``program`` with the fitted network weights and other params in place."""
        return handlers.substitute(program, data=self.model_params)

    def encode(self, x) -> dict[str, dist.Distribution]:
        """q(site | x_i) for each local latent site, batched over the rows of ``x``."""
        return self.amortisation.encoder_distributions(
            self.amortisation.split(self.params)[2], jax.tree.map(jnp.asarray, x)
        )

    def decode(self, z, y=None):
        """The mean of p(x | z) at the fitted parameters, for each latent vector along
        z's last axis (a dict by site name for a model with several local latents); for a
        conditional model, of p(x | z, y), with one covariate row of ``y`` per vector."""
        latents = z if isinstance(z, dict) else {self.amortisation.local_sites[0]: z}
        latents = {site: jnp.asarray(value) for site, value in latents.items()}
        batch_shape = next(iter(latents.values())).shape[:-1]
        rows = {site: value.reshape((-1, value.shape[-1])) for site, value in latents.items()}
        covariates = None
        if isinstance(self.observed, Conditioned):
            if y is None:
                raise ValueError(
                    f"decode: {self.amortisation.model.name} is conditional; pass the covariates y, one row per latent vector"
                )
            y = jnp.asarray(y, dtype=jnp.result_type(float))
            if y.shape[:-1] != batch_shape:
                raise ValueError(
                    f"decode: y must have shape {(*batch_shape, '...')} (one row per latent vector), got {y.shape}"
                )
            covariates = y.reshape((-1, y.shape[-1]))
        elif y is not None:
            raise ValueError(f"decode: {self.amortisation.model.name} takes no covariates y")
        mean = self.amortisation.conditional_mean(self.params, rows, int(np.prod(batch_shape, dtype=int)), covariates)
        return mean.reshape(batch_shape + mean.shape[-1:])

    def log_marginal(self, x, *, key, num_particles: int):
        """Importance-sampled log p(x_i) at the fitted parameters, q(z | x_i) proposing:
        log (1/K) sum_k p(x_i, z_k) / q(z_k | x_i), z_k ~ q(z | x_i), for each row x_i.

        Its expectation is a lower bound (the IWAE bound) that tightens to log p(x_i) as
        K = ``num_particles`` grows. Points are evaluated in chunks, so memory stays
        bounded whatever K and the number of points."""
        if not (isinstance(num_particles, (int, np.integer)) and num_particles >= 1):
            raise ValueError(f"log_marginal: num_particles must be a positive integer, got {num_particles!r}")
        if any(head.family == "delta" for head in self.amortisation.heads):
            raise TypeError(
                "log_marginal needs a stochastic encoder; this fit's encoder is deterministic (an autoencoder)"
            )
        if num_particles not in self._compiled_log_marginal:
            estimate = functools.partial(self._log_marginal, num_particles=int(num_particles))
            self._compiled_log_marginal[num_particles] = jax.jit(estimate)
        return self._compiled_log_marginal[num_particles](self.params, x, jax.random.split(key, num_rows(x)))

    def _log_marginal(self, params, x, keys, num_particles: int):
        def one_point(point_and_key):
            x_point, key_point = point_and_key
            one_row = jax.tree.map(lambda part: part[None], x_point)
            log_weights = self.amortisation.log_weights(params, one_row, key_point, num_particles)[0][:, 0]
            return jax.scipy.special.logsumexp(log_weights) - jnp.log(num_particles)

        return jax.lax.map(one_point, (x, keys), batch_size=max(1, ROWS_PER_CHUNK // num_particles))

    def sample(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        q = self.encode(self.observed)
        keys = dict(zip(q, jax.random.split(key, len(q))))
        local = {site: q[site].sample(keys[site], (num_draws,)) for site in q}
        repeated = {name: jnp.broadcast_to(value, (num_draws, *value.shape)) for name, value in self.points.items()}
        return {**repeated, **local}

    def grouped(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        return {name: value[None] for name, value in self.sample(key, num_draws).items()}

    def state(self) -> dict:
        # Network weights are saved as their list of arrays; load rebuilds the structure.
        leaves = {name: [np.asarray(leaf) for leaf in jax.tree.leaves(value)] for name, value in self.params.items()}
        return {"params": leaves, "config": self.config}


def rebuild_amortised_posterior(model: Model, observed, state: dict, options: dict) -> AmortisedPosterior:
    """An AmortisedPosterior from a saved state: the programs are rebuilt and traced once
    for the structure of each param, which is then filled with the saved arrays (the Fit's
    ``options`` are not needed)."""
    config = state["config"]
    amortisation = Amortisation.build(
        model,
        observed,
        jax.random.PRNGKey(0),
        tuple(config["encoder_hidden"]),
        config["beta"],
        config.get("deterministic", False),
    )
    templates = amortisation.initial_params(jax.random.PRNGKey(0), observed)
    params = {
        name: jax.tree.unflatten(jax.tree.structure(templates[name]), [jnp.asarray(leaf) for leaf in leaves])
        for name, leaves in state["params"].items()
    }
    return AmortisedPosterior(amortisation, params, observed, config)


register_posterior_kind(AmortisedPosterior, rebuild=rebuild_amortised_posterior, methods=("vae", "wake-sleep", "rws"))


def resumed_params(method: str, resume, model: Model, config: dict) -> tuple[dict | None, dict]:
    """The params and history a ``resume`` Fit continues from (none without one)."""
    if resume is None:
        return None, {}
    if resume.method != method or resume.model != model or resume.posterior.config != config:
        raise ValueError(
            f"{method}: resume takes a {method} Fit of the same model with the same encoder settings ({config})"
        )
    return dict(resume.posterior.params), {name: np.asarray(value) for name, value in resume.history.items()}


def joined_history(previous: dict, new: dict) -> dict:
    return {name: np.concatenate([previous[name], value]) if name in previous else value for name, value in new.items()}


# Particles of the held-out bound that early stopping watches: enough to rank parameters
# (its gap to log p(x) changes slowly), few enough to cost less than a training chunk.
VALIDATION_PARTICLES = 10


def held_out_loss(amortisation: Amortisation, model: Model, validation):
    """A function params -> the negative 10-particle importance-weighted bound per point
    on the held-out data ``validation`` (None without it). The same draws every call, so
    that changes between calls are the parameters' doing."""
    if validation is None:
        return None
    x = model.validate_data(validation)
    key = jax.random.PRNGKey(0)

    @jax.jit
    def loss(params):
        log_weights = amortisation.log_weights(params, x, key, VALIDATION_PARTICLES)[0]
        return -jnp.mean(jax.scipy.special.logsumexp(log_weights, axis=0) - np.log(VALIDATION_PARTICLES))

    return loss


def train_amortised(
    method: str,
    model: Model,
    x,
    key,
    amortisation: Amortisation,
    objective,
    *,
    config: dict,
    training,
    options: dict,
    num_particles: int | None = None,
):
    """Train ``amortisation``'s programs on ``objective`` with NumPyro's SVI (the loop
    every amortised back end shares) and return the Fit.

    Args:
        training: the run's :class:`~helmholtz.inference.training.AmortisedOptions`.
        options: the back end's own options, as the Fit records them.
        num_particles: the particles per point and step, for the advice on a non-finite loss.
    """
    from helmholtz.inference.fit import Fit
    from helmholtz.inference.training import non_finite_advice, optimise

    init_params, previous = resumed_params(method, training.resume, model, config)
    svi = SVI(amortisation.objective_model, amortisation.guide, optax_to_numpyro(training.make_optimizer()), objective)
    at_start = (
        "the starting encoder and parameters give a non-finite log density: check the model's priors and their support"
    )
    validation = training.validation
    params, losses, done, held_out = optimise(
        method,
        svi,
        x,
        key,
        batch_size=training.batch_size,
        init_params=init_params,
        num_steps=training.num_steps,
        check_every=training.check_every,
        patience=training.patience,
        tolerance=training.tolerance,
        progress_bar=training.progress_bar,
        advice=non_finite_advice(training, at_start, num_particles=num_particles),
        validate=held_out_loss(amortisation, model, validation),
        first_step=int(previous["loss"].size) if "loss" in previous else 0,
    )
    history = joined_history(previous, {"loss": losses, **({"held_out": held_out} if validation is not None else {})})
    steps = int(history["loss"].size)
    check_every = training.check_every
    return Fit(
        model=model,
        method=method,
        observed=x,
        posterior=AmortisedPosterior(amortisation, params, x, config),
        history=history,
        diagnostics={
            "num_steps": steps,
            "stopped_early": bool(done < training.num_steps),
            # With validation, the parameters kept are those after this many steps.
            "kept_step": steps - done + check_every * (1 + int(np.argmin(held_out))) if len(held_out) else None,
        },
        options=dict(
            **options,
            **training.record(),
            batch_size=training.batch_size,
            validation_points=None if validation is None else num_rows(model.validate_data(validation)),
        ),
    )
