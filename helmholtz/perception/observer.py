"""Bayesian observers of a one-dimensional stimulus, declared from parts.

An :class:`Observer` is four parts:

* a **world prior** over the stimulus (:class:`GaussianPrior`, :class:`PowerLawPrior`,
  :class:`PiecewiseLogPrior`);
* a **sensory likelihood**: the measurement is the stimulus in an internal domain
  (``"linear"``, or ``"log"`` as for speed) plus Gaussian noise whose width depends on the
  condition (one width per contrast level, say);
* a **percept rule**: the posterior mean, median or mode;
* a **response model**: two-alternative forced choice with a lapse rate.

From the declaration it derives the probability that a test stimulus is judged greater
than a reference (:meth:`Observer.prob_test_greater`), the likelihood of 2AFC responses
that ``nuts`` and ``svi`` fit (through :class:`~helmholtz.perception.TwoAFCExperiment`),
and simulated responses.

How the probability is computed, for any prior: the percept of a measurement ``m`` is
computed on a grid of the internal domain for every noise level (posterior on a grid of
``grid_size`` points); the percept is increasing in ``m`` (a Gaussian likelihood has a
monotone likelihood ratio), so the reference's percept exceeds a value exactly when its
measurement exceeds the inverse percept of that value. Hence, with ``m_t`` integrated by
Gauss-Hermite quadrature,

    P(test judged greater) = E_{m_t}[ Phi((percept_r^{-1}(percept_t(m_t)) - u_r) / sigma_r) ],

exact up to the grids and the quadrature (Stocker & Simoncelli (2006) approximated the
percepts' distributions by Gaussians instead). Percepts are computed on a measurement grid
that extends ``measurement_padding`` beyond the stimulus grid, since a measurement can fall
below the slowest possible stimulus.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logsumexp
from jax.scipy.stats import norm
from numpyro import handlers
from numpyro.primitives import Messenger

from helmholtz._serialization import serializable
from helmholtz.priors import Parameter

PERCEPTS = ("mean", "median", "mode")
LAPSE_LOGIT_MEDIAN = float(np.log(0.02 / 0.98))
DOMAINS = ("linear", "log")


# -- world priors: log densities over the stimulus value s (not the internal domain) ----------
@serializable
@dataclass(frozen=True)
class GaussianPrior:
    """p(s) = N(s; mean, sd). ``mean=0.0`` (fixed) gives the slow-speed prior of Weiss et al.
    (2002); ``mean=None`` makes the mean a parameter too. The sd is always a parameter
    ``prior_sd`` (LogNormal(log sd_scale, 1.5) a priori).

    Args:
        mean: the prior mean (stimulus units), or None to make it a parameter ``prior_mean``.
        sd_scale: the median of the prior over ``prior_sd``.
    """

    mean: float | None = 0.0
    sd_scale: float = 5.0

    def sample_parameters(self) -> dict:
        params = {"prior_sd": numpyro.sample("prior_sd", dist.LogNormal(np.log(self.sd_scale), 1.5))}
        if self.mean is None:
            params["prior_mean"] = numpyro.sample("prior_mean", dist.Normal(0.0, 10.0))
        return params

    def log_density(self, s, params):
        """log N(s; mean, prior_sd).

        Args:
            s: stimulus values (stimulus units), any shape.
            params: the prior's parameters by name (as :meth:`sample_parameters` returns them).

        Returns:
            The log densities, the shape of ``s``.
        """
        mean = params.get("prior_mean", self.mean)
        return norm.logpdf(s, mean, params["prior_sd"])


@serializable
@dataclass(frozen=True)
class PowerLawPrior:
    """p(s) proportional to ``(1 + |s| / prior_scale)^(-prior_exponent)``: flat below
    ``prior_scale``, a power-law tail above it, heavier than any Gaussian. (Zhang & Stocker
    (2022) fit 1 / (s^c0 + c1) to speed judgements: the same tail, but unbounded at s = 0
    when c1 -> 0, which a fit on a grid that includes s = 0 exploits.)

    ``slow_offset``: when set to the observer's log-domain offset o, the prior is made to
    favour slow speeds over the internal variable u = log(s + o) everywhere, which needs
    exponent > 1 and scale < o x exponent: then ``prior_exponent`` = 1 + LogNormal(0, 1)
    and ``prior_scale`` = o x exponent x ``prior_scale_fraction`` (logit-normal, N(0, 1.5)).
    Without it a prior flat in s is allowed, and over u that favours fast speeds.

    Args:
        slow_offset: the observer's log-domain offset o, or None.
    """

    slow_offset: float | None = None

    def sample_parameters(self) -> dict:
        if self.slow_offset is None:
            return {
                "prior_exponent": numpyro.sample("prior_exponent", dist.LogNormal(np.log(2.0), 1.0)),
                "prior_scale": numpyro.sample("prior_scale", dist.LogNormal(0.0, 1.5)),
            }
        params = {
            "prior_exponent_excess": numpyro.sample("prior_exponent_excess", dist.LogNormal(0.0, 1.0)),
            "prior_scale_fraction": numpyro.sample(
                "prior_scale_fraction",
                dist.TransformedDistribution(dist.Normal(0.0, 1.5), dist.transforms.SigmoidTransform()),
            ),
        }
        for name, value in self.derived_parameters(params).items():
            numpyro.deterministic(name, value)
        return params

    def derived_parameters(self, params) -> dict:
        """The tail exponent and scale when they are functions of the sampled parameters
        (``slow_offset`` set), else nothing: they were sampled themselves.

        Args:
            params: the sampled parameters by name.

        Returns:
            ``prior_exponent`` and ``prior_scale`` by name, or an empty dict.
        """
        if self.slow_offset is None:
            return {}
        exponent, scale = self.exponent_and_scale(params)
        return {"prior_exponent": exponent, "prior_scale": scale}

    def exponent_and_scale(self, params):
        """The tail exponent and the scale (stimulus units) under either parametrisation.

        Args:
            params: the sampled parameters by name.

        Returns:
            ``(exponent, scale)``.
        """
        if self.slow_offset is None:
            return params["prior_exponent"], params["prior_scale"]
        exponent = 1.0 + params["prior_exponent_excess"]
        return exponent, self.slow_offset * exponent * params["prior_scale_fraction"]

    def log_density(self, s, params):
        """``-exponent * log(1 + |s| / scale)``.

        Args:
            s: stimulus values (stimulus units), any shape.
            params: the prior's parameters by name (as :meth:`sample_parameters` returns them).

        Returns:
            The unnormalised log densities, the shape of ``s``.
        """
        exponent, scale = self.exponent_and_scale(params)
        return -exponent * jnp.log1p(jnp.abs(s) / scale)


@serializable
@dataclass(frozen=True)
class PiecewiseLogPrior:
    """A flexible prior: log p(s) piecewise linear in log s between ``knots`` (s values, e.g.
    the reference speeds), with constant slope beyond the outer knots. The slopes d log p /
    d log s are the parameters ``prior_slopes`` (Normal(0, 2)): one per segment plus the two
    outer ones (a power law s^a has slope a everywhere). Stocker & Simoncelli (2006)
    described the speed prior by these local log-log slopes.

    Args:
        knots: at least two increasing positive stimulus values.

    Raises:
        ValueError: the knots are not at least two increasing positive values.
    """

    knots: tuple[float, ...]

    def __post_init__(self):
        knots = tuple(float(k) for k in self.knots)
        if len(knots) < 2 or any(k <= 0 for k in knots) or any(b <= a for a, b in zip(knots, knots[1:])):
            raise ValueError(f"PiecewiseLogPrior: knots must be at least two increasing positive values, got {knots}")
        object.__setattr__(self, "knots", knots)

    def sample_parameters(self) -> dict:
        slopes = numpyro.sample("prior_slopes", dist.Normal(0.0, 2.0).expand([len(self.knots) + 1]).to_event(1))
        return {"prior_slopes": slopes}

    def log_density(self, s, params):
        """The piecewise-linear log density in ``log |s|`` (``|s|`` floored at 1e-3), 0 at the first knot.

        Args:
            s: stimulus values (stimulus units), any shape.
            params: the prior's parameters by name (as :meth:`sample_parameters` returns them).

        Returns:
            The unnormalised log densities, the shape of ``s``.
        """
        log_knots = jnp.log(jnp.asarray(self.knots))
        x = jnp.log(jnp.maximum(jnp.abs(s), 1e-3))  # finite at s = 0
        slopes = params["prior_slopes"]
        # Integrate the slope from the first knot: below it the first slope, between knots
        # the inner slopes, above the last knot the last slope.
        lengths = jnp.clip(x[..., None] - log_knots[:-1], 0.0, jnp.diff(log_knots))
        inner = (lengths * slopes[1:-1]).sum(-1)
        below = jnp.minimum(x - log_knots[0], 0.0) * slopes[0]
        above = jnp.maximum(x - log_knots[-1], 0.0) * slopes[-1]
        return below + inner + above


PRIORS = (GaussianPrior, PowerLawPrior, PiecewiseLogPrior)


# -- lapses, shared by every 2AFC model --------------------------------------------------------
def lapse_prior() -> dist.Distribution:
    """logit(lapse) ~ N(logit 0.02, 1): median 2%, and a transformed Normal, so that the
    simulation-based back ends can be given exactly the prior nuts and svi use.

    Returns:
        The prior of the lapse rate, a NumPyro distribution on (0, 1).
    """
    return dist.TransformedDistribution(dist.Normal(LAPSE_LOGIT_MEDIAN, 1.0), dist.transforms.SigmoidTransform())


def with_lapse(p, lapse):
    """A guess (probability 1/2) on a fraction ``lapse`` of the trials, kept off 0 and 1.

    Args:
        p: the probabilities without lapses, any shape.
        lapse: the lapse rate.

    Returns:
        ``lapse / 2 + (1 - lapse) p``, clipped to [1e-6, 1 - 1e-6].
    """
    return jnp.clip(lapse / 2 + (1 - lapse) * p, 1e-6, 1 - 1e-6)


class _ReplacePriors(Messenger):
    """Sample each named site from the given distribution instead of its default prior
    (world priors and the observer declare their defaults in their own code)."""

    def __init__(self, priors: dict):
        self.priors = priors
        super().__init__()

    def process_message(self, msg):
        if msg["type"] == "sample" and msg["name"] in self.priors:
            msg["fn"] = self.priors[msg["name"]]


# -- the observer -----------------------------------------------------------------------------
@serializable
@dataclass(frozen=True)
class Observer:
    """A Bayesian observer of a scalar stimulus.

    Args:
        prior: the world prior, one of :data:`PRIORS` (``None``: flat, an unbiased observer
            whose percept is its measurement).
        num_noise_levels: how many likelihood widths (one per condition, e.g. contrast);
            parameter ``noise`` (LogNormal(log noise_scale, 1) each).
        domain: ``"log"``: the measurement is log(s + offset) plus noise (Weber's law;
            for speed Stocker & Simoncelli (2006) used offset 0.3 deg/s, so that s = 0 is
            allowed); ``"linear"``: s plus noise.
        percept: ``"mean"``, ``"median"`` or ``"mode"`` of the posterior over the internal
            variable (for ``"log"``, the mean of log(s + offset), not of s). The mode is a
            step function of the parameters on a grid: fine for predictions, but it gives
            gradient-based fits nothing to follow (:class:`TwoAFCExperiment` refuses it).
        noise_scale: the median of the prior over each noise width.
        offset: the offset of the ``"log"`` domain (stimulus units, >= 0).
        lapse: whether a lapse rate (:func:`lapse_prior`) mixes in guesses.
        bias: whether the decision has a bias ``bias`` (Normal(0, 0.5), internal units):
            "test greater" when percept(test) + bias > percept(reference).
        grid: (low, high, size) of the internal-domain grid the posterior is computed on;
            it must cover the stimuli and the prior's support (for ``"log"`` with an
            offset, low >= log(offset), which is s = 0).
        measurement_padding: how far (internal units) measurements can fall beyond the
            grid on either side; percepts are computed for them too (a few noise widths).
        quadrature_nodes: Gauss-Hermite nodes over the test's measurement.
        priors: :class:`~helmholtz.priors.Parameter` declarations that replace the default
            prior of any of the observer's parameters by name, e.g.
            ``(Parameter("noise", dist.HalfNormal(1.0).expand([2]).to_event(1)),)``; a
            replacement keeps the parameter's shape. :attr:`parameters` lists them all.

    Raises:
        TypeError: ``prior`` is not one of :data:`PRIORS` or None, or ``priors`` holds
            something other than :class:`~helmholtz.priors.Parameter` declarations.
        ValueError: a setting is out of its range, the grid starts below s = 0, or
            ``priors`` names an unknown parameter or changes a parameter's shape.
    """

    prior: GaussianPrior | PowerLawPrior | PiecewiseLogPrior | None
    num_noise_levels: int
    domain: str = "log"
    percept: str = "mean"
    lapse: bool = True
    bias: bool = False
    noise_scale: float = 0.3
    offset: float = 0.0
    grid: tuple[float, float, int] = (-5.0, 5.0, 256)
    measurement_padding: float = 3.0
    quadrature_nodes: int = 24
    priors: tuple[Parameter, ...] = ()
    # Fields added after a release, with defaults that keep what files of that release mean.
    _added_fields = {"priors": "0.2.0"}

    def __post_init__(self):
        if self.prior is not None and not isinstance(self.prior, PRIORS):
            raise TypeError(
                f"Observer: prior must be one of {[p.__name__ for p in PRIORS]} or None, got {self.prior!r}"
            )
        if self.domain not in DOMAINS:
            raise ValueError(f"Observer: domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.percept not in PERCEPTS:
            raise ValueError(f"Observer: percept must be one of {PERCEPTS}, got {self.percept!r}")
        if int(self.num_noise_levels) < 1:
            raise ValueError(f"Observer: num_noise_levels must be at least 1, got {self.num_noise_levels}")
        if not self.offset >= 0 or not self.measurement_padding >= 0:
            raise ValueError(
                f"Observer: offset and measurement_padding must be >= 0, got {self.offset}, {self.measurement_padding}"
            )
        low, high, size = self.grid
        if not (high > low and int(size) >= 16):
            raise ValueError(
                f"Observer: grid must be (low, high, size) with high > low and size >= 16, got {self.grid}"
            )
        if self.domain == "log" and self.offset > 0 and low < np.log(self.offset) - 1e-9:
            raise ValueError(
                f"Observer: the grid starts at {low}, below log(offset) = {np.log(self.offset):.4f}, which is s = 0"
            )
        object.__setattr__(self, "grid", (float(low), float(high), int(size)))
        object.__setattr__(self, "priors", tuple(self.priors))
        if not all(isinstance(p, Parameter) for p in self.priors):
            raise TypeError(
                "Observer: priors must be hz.priors.Parameter declarations (a name and a NumPyro distribution)"
            )
        defaults = {p.name: p for p in self._declared_parameters(replaced=False)}
        for replacement in self.priors:
            default = defaults.get(replacement.name)
            if default is None:
                raise ValueError(
                    f"Observer: priors names {replacement.name!r}, not a parameter of this observer; its parameters: {sorted(defaults)}"
                )
            if default.shape != replacement.shape:
                raise ValueError(
                    f"Observer: the prior of {replacement.name!r} must have event shape {default.shape}, "
                    f"got {replacement.shape}"
                )

    # -- parameters -------------------------------------------------------------------
    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """Every parameter with its prior (the defaults, with :attr:`priors` in place)."""
        return self._declared_parameters(replaced=True)

    def _declared_parameters(self, replaced: bool) -> tuple[Parameter, ...]:
        program = self.sample_parameters if replaced else self._sample_default_parameters
        trace = handlers.trace(handlers.seed(program, jax.random.PRNGKey(0))).get_trace()
        return tuple(Parameter(name, site["fn"]) for name, site in trace.items() if site["type"] == "sample")

    def sample_parameters(self) -> dict:
        """NumPyro sample statements for every parameter; returns them by name."""
        with _ReplacePriors({p.name: p.prior for p in self.priors}):
            return self._sample_default_parameters()

    def _sample_default_parameters(self) -> dict:
        params = {} if self.prior is None else self.prior.sample_parameters()
        noise_prior = dist.LogNormal(np.log(self.noise_scale), 1.0).expand([self.num_noise_levels]).to_event(1)
        params["noise"] = numpyro.sample("noise", noise_prior)
        if self.lapse:
            params["lapse"] = numpyro.sample("lapse", lapse_prior())
        if self.bias:
            params["bias"] = numpyro.sample("bias", dist.Normal(0.0, 0.5))
        return params

    def to_internal(self, s):
        """The internal variable of stimuli: log(s + offset) in the ``"log"`` domain, else s.

        Args:
            s: stimulus values, any shape.

        Returns:
            The internal values, the shape of ``s``.
        """
        s = jnp.asarray(s)
        return jnp.log(s + self.offset) if self.domain == "log" else s

    def from_internal(self, u):
        """The inverse of :meth:`to_internal`.

        Args:
            u: internal values, any shape.

        Returns:
            The stimulus values, the shape of ``u``.
        """
        return jnp.exp(u) - self.offset if self.domain == "log" else u

    def stimulus_grid(self):
        """The internal-domain grid the posterior is computed on, shape ``(grid_size,)``."""
        low, high, size = self.grid
        return jnp.linspace(low, high, size)

    def measurement_grid(self):
        """The measurement grid: the stimulus grid padded by ``measurement_padding``, shape ``(grid_size,)``."""
        low, high, size = self.grid
        return jnp.linspace(low - self.measurement_padding, high + self.measurement_padding, size)

    # -- percepts ---------------------------------------------------------------------
    def percept_curves(self, params):
        """The percept (internal domain) of each point of :meth:`measurement_grid`, per noise level.

        Args:
            params: the observer's parameters by name.

        Returns:
            The percepts, shape ``(num_noise_levels, grid_size)``.
        """
        return self.stimulus_grid()[0] + self._percepts_above_grid_start(params)

    def _percepts_above_grid_start(self, params):
        # Percepts are measured from the grid's lower edge: a steep slow-speed prior crushes
        # many percepts against s = 0, and as offsets of order 1e-9 from the edge they keep
        # their order in float32, whereas added to the edge's value they would tie, and
        # the inverse interpolation in prob_test_greater would jump between the ties.
        u, m = self.stimulus_grid(), self.measurement_grid()
        if self.prior is None:
            return jnp.broadcast_to(m - u[0], (self.num_noise_levels, m.size))
        log_prior = self.prior.log_density(self.from_internal(u), params)
        if self.domain == "log":
            log_prior = log_prior + u  # the density of u = log(s + offset): ds/du = e^u
        noise = jnp.asarray(params["noise"])[:, None, None]
        # log posterior over u (last axis) for each measurement (middle axis)
        log_post = log_prior + norm.logpdf(m[None, :, None], u[None, None, :], noise)
        log_post = log_post - logsumexp(log_post, axis=-1, keepdims=True)
        weights, above_start = jnp.exp(log_post), u - u[0]
        if self.percept == "mean":
            return (weights * above_start).sum(-1)
        if self.percept == "mode":
            return above_start[jnp.argmax(log_post, axis=-1)]
        cdf = jnp.cumsum(weights, axis=-1) - weights / 2  # each grid point's mass centred on it
        return jax.vmap(jax.vmap(lambda c: jnp.interp(0.5, c, above_start)))(cdf)

    def noiseless_percept(self, params, s, level):
        """The percepts (stimulus units) of measurements equal to stimuli ``s`` at noise
        levels ``level``: the observer's bias with its noise switched off.

        Args:
            params: the observer's parameters by name.
            s: stimuli (stimulus units), any shape.
            level: noise levels (integer indices into ``noise``), the shape of ``s``.

        Returns:
            The percepts (stimulus units), the shape of ``s``.
        """
        curves, m = self.percept_curves(params), self.measurement_grid()
        u = self.to_internal(s)
        return self.from_internal(
            jax.vmap(lambda x, k: jnp.interp(x, m, curves[k]))(jnp.ravel(u), jnp.ravel(level)).reshape(u.shape)
        )

    def prob_test_greater(self, params, reference, reference_level, test, test_level):
        """P(the observer says "test greater") per trial: stimuli ``reference`` and ``test``
        (stimulus units), their noise levels (integer indices into ``noise``), lapses and
        bias included. Vectorised over trials.

        Args:
            params: the observer's parameters by name.
            reference: the reference stimuli, shape ``(num_trials,)``.
            reference_level: the reference's noise levels, integers of shape ``(num_trials,)``.
            test: the test stimuli, shape ``(num_trials,)``.
            test_level: the test's noise levels, integers of shape ``(num_trials,)``.

        Returns:
            The probabilities, in [1e-6, 1 - 1e-6], shape ``(num_trials,)``.
        """
        m, curves = self.measurement_grid(), self._percepts_above_grid_start(params)
        noise = jnp.asarray(params["noise"])
        bias = params["bias"] if self.bias else 0.0
        nodes, weights = np.polynomial.hermite_e.hermegauss(self.quadrature_nodes)
        weights = jnp.asarray(weights / weights.sum())

        def one(u_r, k_r, u_t, k_t):
            seen_t = jnp.interp(u_t + noise[k_t] * nodes, m, curves[k_t]) + bias
            # The reference measurement whose percept equals the test's (biased) percept.
            m_r = jnp.interp(seen_t, curves[k_r], m)
            return (weights * norm.cdf((m_r - u_r) / noise[k_r])).sum()

        p = jax.vmap(one)(
            self.to_internal(reference), jnp.asarray(reference_level), self.to_internal(test), jnp.asarray(test_level)
        )
        return with_lapse(p, params["lapse"]) if self.lapse else jnp.clip(p, 1e-6, 1 - 1e-6)
