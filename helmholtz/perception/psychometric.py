"""Psychometric functions, parametrised as psignifit 4 does (Schuett et al., 2016).

The probability of a "yes" (or a correct answer) at stimulus intensity ``x`` is

    psi(x) = guess + (1 - guess - lapse) F(x; threshold, width)

with ``F`` a sigmoid that passes through ``threshold_pc`` (default 0.5) at ``threshold``
and rises from ``width_alpha`` to ``1 - width_alpha`` (default 0.05 to 0.95) over
``width``. The counts of each block (an intensity and its trials) are binomial, or, with
psignifit's overdispersion ``eta`` in (0, 1), beta-binomial: the block's probability is
drawn from a beta distribution with mean psi and variance ``eta^2 psi (1 - psi)``.

========================  ===================================================================
sigmoid                   F on the sigmoid's scale z = (x - loc) / scale
========================  ===================================================================
``"norm"``                the cumulative normal, Phi(z)
``"logistic"``            1 / (1 + e^-z)
``"gumbel"``              1 - exp(-e^z) (psignifit's Gumbel: a Weibull of e^x)
``"rgumbel"``             exp(-e^-z) (the reversed Gumbel)
``"student"``             the Cauchy (Student t, 1 degree of freedom): 1/2 + arctan(z) / pi
``"weibull"``             ``"gumbel"`` on log x: 1 - exp(-(x / a)^b); intensities must be > 0
========================  ===================================================================

``threshold`` and ``width`` are on the scale the sigmoid is applied to: for ``"weibull"``
that is log intensity (psignifit leaves the log to the user; here the model takes it, and
checks that the intensities are positive).

Experiment types (psignifit's names): ``"yes/no"`` (the guess rate is a parameter),
``"nAFC"`` written ``"2AFC"``, ``"3AFC"``, ... (guess rate fixed at 1/n), and
``"equal asymptote"`` (guess rate = lapse rate, for tasks such as "which is faster?"
whose errors at either end are lapses).

Default priors follow psignifit 4.3's (``psignifit/_priors.py``): the threshold flat over
the stimulus range with raised-cosine flanks reaching half the range beyond it; the width
flat from twice the smallest step between intensities to the range, with raised-cosine
flanks down to the smallest step and up to three times the range; lapse and guess rates
Beta(1, 10); eta Beta(1, 10). Two differences: psignifit truncates the lapse and guess
priors at 0.5 (Beta(1, 10) puts 0.1% of its mass above), and with ``"equal asymptote"``
it multiplies the lapse prior in twice (once for each asymptote), which is Beta(1, 19),
the default here too. Any prior can be replaced by name with a
:class:`~helmholtz.priors.Parameter` (any NumPyro distribution), and any parameter fixed.

    data = counts_from_trials(intensity, responses)      # rows: intensity, yes, trials
    model = PsychometricFunction.from_data(data, sigmoid="norm", experiment="2AFC")
    fit = hz.fit(model, data, method="nuts", key=0)      # or the counts, data[:, 1]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import scipy.stats
from jax.scipy.special import gammaln, ndtr
from numpyro.distributions import constraints

from helmholtz._serialization import serializable
from helmholtz.models.base import DATA_PLATE, OBSERVED_SITE, Model
from helmholtz.priors import Parameter

SIGMOIDS = ("norm", "logistic", "gumbel", "rgumbel", "student", "weibull")
LOG_SCALE_SIGMOIDS = ("weibull",)
EXPERIMENTS = ("yes/no", "nAFC", "equal asymptote")
PARAMETERS = ("threshold", "width", "lapse", "guess", "eta")


# -- the sigmoids: F and 1 - F in terms of z, and their quantile functions ------------------------
def _sigmoid_pair(name: str, z):
    """(F(z), 1 - F(z)), each computed directly, so neither loses precision near 0."""
    if name == "norm":
        return ndtr(z), ndtr(-z)
    if name == "logistic":
        return jax.nn.sigmoid(z), jax.nn.sigmoid(-z)
    if name in ("gumbel", "weibull"):
        return -jnp.expm1(-jnp.exp(z)), jnp.exp(-jnp.exp(z))
    if name == "rgumbel":
        return jnp.exp(-jnp.exp(-z)), -jnp.expm1(-jnp.exp(-z))
    if name == "student":
        angle = jnp.arctan(z) / jnp.pi
        return 0.5 + angle, 0.5 - angle
    raise ValueError(f"unknown sigmoid {name!r}; choose one of {SIGMOIDS}")


def _quantile(name: str, p: float) -> float:
    """The standard sigmoid's inverse at ``p`` (a number)."""
    if name == "norm":
        return float(scipy.stats.norm.ppf(p))  # NumPy, not JAX: a constant even inside a traced program
    if name == "logistic":
        return math.log(p / (1 - p))
    if name in ("gumbel", "weibull"):
        return math.log(-math.log(1 - p))
    if name == "rgumbel":
        return -math.log(-math.log(p))
    if name == "student":
        return math.tan(math.pi * (p - 0.5))
    raise ValueError(f"unknown sigmoid {name!r}; choose one of {SIGMOIDS}")


# -- psignifit's default priors for threshold and width -----------------------------------------
class TaperedUniform(dist.Distribution):
    """Flat on [low, high], with raised-cosine flanks falling to zero over ``taper_low``
    below and ``taper_high`` above: psignifit's prior shape for the threshold and the width.

    The density is proportional to 1 on [low, high] and to cos^2(pi d / (2 T)) = (1 + cos(pi
    d / T)) / 2 at a distance d < T outside it, on the side whose taper is T. Not one of
    ``numpyro.distributions``, so a model that declares it as a replacement prior cannot be
    saved; the psychometric function's defaults are rebuilt from its design instead.

    Args:
        low: the flat part's lower end.
        high: the flat part's upper end.
        taper_low: the width of the flank below ``low``.
        taper_high: the width of the flank above ``high``.
        validate_args: NumPyro's ``validate_args``.
    """

    arg_constraints = {
        "low": constraints.real,
        "high": constraints.real,
        "taper_low": constraints.positive,
        "taper_high": constraints.positive,
    }
    pytree_data_fields = ("low", "high", "taper_low", "taper_high")

    def __init__(self, low, high, taper_low, taper_high, *, validate_args=None):
        self.low, self.high, self.taper_low, self.taper_high = jnp.broadcast_arrays(
            *(jnp.asarray(v, dtype=jnp.result_type(float)) for v in (low, high, taper_low, taper_high))
        )
        super().__init__(jnp.shape(self.low), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low - self.taper_low, self.high + self.taper_high)

    @property
    def _normaliser(self):
        return (self.high - self.low) + (self.taper_low + self.taper_high) / 2

    def log_prob(self, value):
        """The log-density.

        Args:
            value: points, any shape broadcasting with the batch shape.

        Returns:
            The log-density at each point; -inf outside the support.
        """
        below = jnp.clip(self.low - value, 0.0, self.taper_low)
        above = jnp.clip(value - self.high, 0.0, self.taper_high)
        # At most one of the two is positive; each factor is 1 where its distance is 0.
        # cos(pi / 2) rounds to a tiny negative number in float32: clipped, the edges get log 0.
        flank_low = jnp.clip(jnp.cos(jnp.pi * below / (2 * self.taper_low)), 0.0)
        flank_high = jnp.clip(jnp.cos(jnp.pi * above / (2 * self.taper_high)), 0.0)
        log_density = 2 * (jnp.log(flank_low) + jnp.log(flank_high))
        inside = (value >= self.low - self.taper_low) & (value <= self.high + self.taper_high)
        return jnp.where(inside, log_density, -jnp.inf) - jnp.log(self._normaliser)

    def sample(self, key, sample_shape=()):
        """Draws by inverting the distribution function (bisection in the flanks).

        Args:
            key: a JAX PRNG key.
            sample_shape: the leading shape of the draws.

        Returns:
            The draws, shape ``(*sample_shape, *batch_shape)``.
        """
        shape = sample_shape + self.batch_shape
        u = jax.random.uniform(key, shape) * self._normaliser
        left_mass, flat = self.taper_low / 2, self.high - self.low

        def into_flank(mass, taper):
            # The flank's mass from its outer end to distance s inward is
            # s / 2 - T sin(pi s / T) / (2 pi), increasing; bisection finds s.
            def step(_, bounds):
                lo, hi = bounds
                mid = (lo + hi) / 2
                below = mid / 2 - taper * jnp.sin(jnp.pi * mid / taper) / (2 * jnp.pi) < mass
                return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

            lo, hi = jax.lax.fori_loop(0, 40, step, (jnp.zeros(shape), jnp.broadcast_to(taper, shape)))
            return (lo + hi) / 2

        left = self.low - self.taper_low + into_flank(u, self.taper_low)
        middle = self.low + (u - left_mass)
        right = self.high + self.taper_high - into_flank(self._normaliser - u, self.taper_high)
        return jnp.where(u < left_mass, left, jnp.where(u < left_mass + flat, middle, right))


# -- psignifit's overdispersed binomial -----------------------------------------------------------
class OverdispersedBinomial(dist.Distribution):
    """Counts of ``total_count`` trials whose success probability is itself drawn from a
    beta distribution with mean ``probs`` and variance ``eta^2 probs (1 - probs)``
    (psignifit's beta-binomial; eta = 0 is the binomial).

    The log-probability is written with rising factorials divided through by the beta's
    concentration nu = 1 / eta^2 - 1 (r = 1 / nu):

        log C(n, k) + sum_{j<k} log(p + j r) + sum_{j<n-k} log(1 - p + j r) - sum_{j<n} log(1 + j r),

    which stays exact in float32 as eta -> 0 (the log-gamma form subtracts numbers of
    order nu log nu). It costs O(max n) per block. ``failure_probs`` (1 - p computed
    without cancellation) may be given beside ``probs``.

    Args:
        probs: the mean success probability p of each block.
        eta: the overdispersion, in [0, 1); 0 is the binomial.
        total_count: the number of trials n of each block.
        failure_probs: 1 - p, computed without cancellation (default: ``1 - probs``).
        max_count: the largest n, a Python integer (default: from ``total_count``; give it
            where ``total_count`` is traced).
        validate_args: NumPyro's ``validate_args``.
    """

    arg_constraints = {"probs": constraints.unit_interval, "eta": constraints.unit_interval}
    pytree_data_fields = ("probs", "failure_probs", "eta", "total_count")
    pytree_aux_fields = ("max_count",)

    def __init__(self, probs, eta, total_count, *, failure_probs=None, max_count=None, validate_args=None):
        self.probs, self.eta, self.total_count = jnp.broadcast_arrays(
            jnp.asarray(probs), jnp.asarray(eta), jnp.asarray(total_count)
        )
        self.failure_probs = (
            1 - self.probs if failure_probs is None else jnp.broadcast_to(failure_probs, self.probs.shape)
        )
        self.max_count = int(np.max(total_count)) if max_count is None else int(max_count)
        super().__init__(jnp.shape(self.probs), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    def log_prob(self, value):
        """The log-probability of the counts.

        Args:
            value: counts k, broadcasting with the batch shape.

        Returns:
            log P(k) per block.
        """
        n, k = jnp.asarray(self.total_count, dtype=value.dtype), value
        r = self.eta**2 / (1 - self.eta**2)
        j = jnp.arange(self.max_count, dtype=jnp.result_type(float))
        r_, p, q = r[..., None], self.probs[..., None], self.failure_probs[..., None]
        j_k, j_f, j_n = j < k[..., None], j < (n - k)[..., None], j < n[..., None]
        # Where a mask is off, log(1) stands in, so no log(0) reaches the gradient.
        successes = jnp.where(j_k, jnp.log(jnp.where(j_k, p + j * r_, 1.0)), 0.0).sum(-1)
        failures = jnp.where(j_f, jnp.log(jnp.where(j_f, q + j * r_, 1.0)), 0.0).sum(-1)
        normaliser = jnp.where(j_n, jnp.log1p(j * r_), 0.0).sum(-1)
        log_choose = gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)
        return log_choose + successes + failures - normaliser

    def sample(self, key, sample_shape=()):
        """Draws: a beta success probability per block, then binomial counts.

        Args:
            key: a JAX PRNG key.
            sample_shape: the leading shape of the draws.

        Returns:
            Counts, shape ``(*sample_shape, *batch_shape)``.
        """
        key_beta, key_binomial = jax.random.split(key)
        shape = sample_shape + self.batch_shape
        concentration = 1 / jnp.maximum(self.eta**2 / (1 - self.eta**2), 1e-12)
        p = jax.random.beta(key_beta, self.probs * concentration, self.failure_probs * concentration, shape)
        p = jnp.where(self.eta > 0, p, self.probs)
        return dist.Binomial(total_count=self.total_count, probs=p).sample(key_binomial)


# -- data ---------------------------------------------------------------------------------------
def counts_from_trials(intensity, responses) -> np.ndarray:
    """psignifit's data matrix from trial-by-trial data: one row per distinct intensity,
    ``[intensity, number of 1 responses (yes / correct), number of trials]``, sorted by
    intensity.

    Args:
        intensity: the stimulus intensity of each trial, 1-D.
        responses: each trial's response, 0 or 1, the same shape.

    Returns:
        The data matrix, shape ``(levels, 3)``.

    Raises:
        ValueError: shapes differ, an intensity is not finite, or a response is not 0 or 1.
    """
    intensity, responses = np.asarray(intensity, dtype=float), np.asarray(responses, dtype=float)
    if intensity.ndim != 1 or intensity.shape != responses.shape or intensity.size == 0:
        raise ValueError(
            "counts_from_trials: intensity and responses must be 1-D of one length, "
            f"got {intensity.shape} and {responses.shape}"
        )
    if not np.isfinite(intensity).all():
        raise ValueError(
            f"counts_from_trials: intensities must be finite; trial {int(np.argmin(np.isfinite(intensity)))} is not"
        )
    bad = ~np.isin(responses, (0.0, 1.0))
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"counts_from_trials: responses must be 0 or 1; trial {first} is {float(responses[first])!r} "
            f"({int(bad.sum())} such trials)"
        )
    levels, block = np.unique(intensity, return_inverse=True)
    return np.stack([levels, np.bincount(block, weights=responses), np.bincount(block).astype(float)], axis=1)


def _parse_experiment(experiment: str) -> tuple[str, int | None]:
    found = re.fullmatch(r"\s*(\d+)\s*AFC\s*", experiment, flags=re.IGNORECASE)
    if found:
        choices = int(found.group(1))
        if choices < 2:
            raise ValueError(f"PsychometricFunction: an nAFC task has at least 2 choices, got {experiment!r}")
        return "nAFC", choices
    if experiment in ("yes/no", "equal asymptote"):
        return experiment, None
    raise ValueError(
        "PsychometricFunction: experiment must be 'yes/no', 'equal asymptote' or 'nAFC' as '2AFC', '3AFC', ...; "
        f"got {experiment!r}"
    )


# -- the model ----------------------------------------------------------------------------------
@serializable
@dataclass(frozen=True, eq=False)
class PsychometricFunction(Model):
    """A psychometric function fit to counts per stimulus intensity (psignifit 4's model).

    The data are the number of "yes" (or correct) responses in each block, one number per
    entry of ``intensity`` (or psignifit's whole ``(blocks, 3)`` data matrix, whose other
    two columns must then match the design).

    Args:
        intensity: each block's stimulus intensity.
        num_trials: each block's number of trials (positive integers).
        sigmoid: one of :data:`SIGMOIDS` (see the module's table).
        experiment: ``"yes/no"``, ``"equal asymptote"`` or ``"2AFC"``, ``"3AFC"``, ...
        threshold_pc: the value of the (unscaled) sigmoid at ``threshold``.
        width_alpha: ``width`` is the distance over which the sigmoid rises from
            ``width_alpha`` to ``1 - width_alpha``.
        stimulus_range: (low, high) the default priors of threshold and width are built
            from (intensity units); default: the lowest and highest intensity.
        width_min: the smallest width the default width prior allows; default: the
            smallest step between intensities, or the range / 100 when
            ``stimulus_range`` is given (psignifit's rules).
        priors: :class:`~helmholtz.priors.Parameter` declarations replacing the default
            priors by name (``threshold``, ``width``, ``lapse``, ``guess``, ``eta``).
        fixed: parameters held at a value instead, e.g. ``{"eta": 0.0}`` (binomial
            counts) or ``{"lapse": 0.0}``. Stored as sorted (name, value) pairs.
    """

    intensity: np.ndarray
    num_trials: np.ndarray
    sigmoid: str = "norm"
    experiment: str = "yes/no"
    threshold_pc: float = 0.5
    width_alpha: float = 0.05
    stimulus_range: tuple[float, float] | None = None
    width_min: float | None = None
    priors: tuple[Parameter, ...] = ()
    fixed: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        owner = "PsychometricFunction"
        intensity = np.asarray(self.intensity, dtype=float)
        trials = np.asarray(self.num_trials, dtype=float)
        if intensity.ndim != 1 or intensity.size == 0 or trials.shape != intensity.shape:
            raise ValueError(
                f"{owner}: intensity and num_trials must be 1-D of one length (one entry per block), "
                f"got {intensity.shape} and {trials.shape}"
            )
        if not np.isfinite(intensity).all():
            first_bad = int(np.argmin(np.isfinite(intensity)))
            raise ValueError(
                f"{owner}: intensities must be finite; block {first_bad} is {float(intensity[first_bad])!r}"
            )
        bad = ~(np.isfinite(trials) & (trials >= 1) & (trials == np.round(trials)))
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                f"{owner}: num_trials must be positive integers; block {first} has {float(trials[first])!r}"
            )
        if self.sigmoid not in SIGMOIDS:
            raise ValueError(f"{owner}: sigmoid must be one of {SIGMOIDS}, got {self.sigmoid!r}")
        if self.sigmoid in LOG_SCALE_SIGMOIDS and (intensity <= 0).any():
            first = int(np.argmax(intensity <= 0))
            raise ValueError(
                f"{owner}: the {self.sigmoid} sigmoid works on log intensity, so intensities must be positive; "
                f"block {first} has {intensity[first]:g} ({int((intensity <= 0).sum())} such blocks). For intensities "
                "already on a log scale use sigmoid='gumbel' (psignifit's Weibull on log x)"
            )
        _parse_experiment(self.experiment)
        if not 0 < self.threshold_pc < 1:
            raise ValueError(f"{owner}: threshold_pc must lie in (0, 1), got {self.threshold_pc!r}")
        if not 0 < self.width_alpha < 0.5:
            raise ValueError(f"{owner}: width_alpha must lie in (0, 0.5), got {self.width_alpha!r}")
        fixed = dict(self.fixed)
        unknown = sorted(set(fixed) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"{owner}: fixed names {unknown}, not parameters; they are {PARAMETERS}")
        for name, value in fixed.items():
            low_ok = (
                0 <= value < 1
                if name in ("lapse", "guess", "eta")
                else (value > 0 if name == "width" else np.isfinite(value))
            )
            if not low_ok:
                raise ValueError(f"{owner}: fixed {name} = {value!r} is outside its range")
        object.__setattr__(self, "intensity", intensity)
        object.__setattr__(self, "num_trials", trials.astype(np.int64))
        object.__setattr__(self, "fixed", tuple(sorted((str(k), float(v)) for k, v in fixed.items())))
        object.__setattr__(self, "priors", tuple(self.priors))
        if self.stimulus_range is not None:
            low, high = (float(v) for v in self.stimulus_range)
            if not (np.isfinite(low) and np.isfinite(high) and high > low):
                raise ValueError(
                    f"{owner}: stimulus_range must be (low, high) with high > low, got {self.stimulus_range!r}"
                )
            if self.sigmoid in LOG_SCALE_SIGMOIDS and low <= 0:
                raise ValueError(
                    f"{owner}: the {self.sigmoid} sigmoid needs a positive stimulus_range, got {self.stimulus_range!r}"
                )
            object.__setattr__(self, "stimulus_range", (low, high))
        if self.width_min is not None and not self.width_min > 0:
            raise ValueError(f"{owner}: width_min must be positive, got {self.width_min!r}")
        if not all(isinstance(p, Parameter) for p in self.priors):
            raise TypeError(
                f"{owner}: priors must be hz.priors.Parameter declarations (a name and a NumPyro distribution)"
            )
        free = self.free_parameters
        for replacement in self.priors:
            if replacement.name not in free:
                raise ValueError(
                    f"{owner}: priors names {replacement.name!r}, which is not a free parameter; "
                    f"free parameters: {free}"
                )
            if replacement.shape != ():
                raise ValueError(
                    f"{owner}: the prior of {replacement.name!r} must be scalar, got event shape {replacement.shape}"
                )
        # The default priors need a spread of intensities unless the range is given.
        defaults = {"threshold", "width"} & set(free) - {p.name for p in self.priors}
        if defaults and self.stimulus_range is None and np.unique(self.scaled_intensity).size < 2:
            raise ValueError(
                f"{owner}: every block has the same intensity; the default priors of {sorted(defaults)} "
                "need a range (give stimulus_range)"
            )

    # -- the design ---------------------------------------------------------------------------
    @classmethod
    def from_data(cls, data, **options) -> PsychometricFunction:
        """The model of psignifit's data matrix ``data`` (rows: intensity, number of yes /
        correct, number of trials); fit it to the same ``data`` (or its second column).

        Args:
            data: psignifit's data matrix, shape ``(blocks, 3)``.
            **options: the other arguments of :class:`PsychometricFunction`.
        """
        data = _as_matrix(data, "PsychometricFunction.from_data")
        return cls(data[:, 0], data[:, 2], **options)

    @property
    def num_blocks(self) -> int:
        return int(self.intensity.size)

    @property
    def guess_kind(self) -> str:
        """``"free"`` (yes/no), ``"fixed"`` (nAFC: 1 / choices) or ``"lapse"`` (equal asymptote)."""
        kind, _ = _parse_experiment(self.experiment)
        return {"yes/no": "free", "nAFC": "fixed", "equal asymptote": "lapse"}[kind]

    @property
    def free_parameters(self) -> tuple[str, ...]:
        """The parameters with a prior (sampled), in the program's order."""
        names = ["threshold", "width", "lapse"] + (["guess"] if self.guess_kind == "free" else []) + ["eta"]
        fixed = dict(self.fixed)
        return tuple(name for name in names if name not in fixed)

    @property
    def scaled_intensity(self) -> np.ndarray:
        """The intensities on the sigmoid's scale (log intensity for ``"weibull"``)."""
        return self.to_scale(self.intensity)

    def to_scale(self, intensity):
        """Intensities (stimulus units) on the scale threshold and width are measured on.

        Args:
            intensity: intensities in stimulus units.
        """
        return np.log(intensity) if self.sigmoid in LOG_SCALE_SIGMOIDS else np.asarray(intensity, dtype=float)

    @property
    def prior_range(self) -> tuple[float, float]:
        """The (low, high) stimulus range of the default priors, on the sigmoid's scale."""
        if self.stimulus_range is not None:
            return tuple(float(v) for v in self.to_scale(np.asarray(self.stimulus_range)))
        x = self.scaled_intensity
        return float(x.min()), float(x.max())

    @property
    def prior_width_min(self) -> float:
        """The smallest width of the default width prior, on the sigmoid's scale."""
        if self.width_min is not None:
            return float(self.width_min)
        if self.stimulus_range is not None:
            low, high = self.prior_range
            return (high - low) / 100
        return float(np.diff(np.unique(self.scaled_intensity)).min())

    def subset(self, blocks) -> PsychometricFunction:
        """The same model (the same priors: the range they are built from is kept) on some
        of the blocks.

        Args:
            blocks: an index array or boolean mask over the blocks.
        """
        return PsychometricFunction(
            self.intensity[blocks],
            self.num_trials[blocks],
            self.sigmoid,
            self.experiment,
            self.threshold_pc,
            self.width_alpha,
            stimulus_range=tuple(
                float(v) for v in (np.exp(self.prior_range) if self.sigmoid in LOG_SCALE_SIGMOIDS else self.prior_range)
            ),
            width_min=self.prior_width_min,
            priors=self.priors,
            fixed=self.fixed,
        )

    # -- priors -------------------------------------------------------------------------------
    def default_prior(self, name: str) -> dist.Distribution:
        """psignifit 4.3's default prior of a parameter for this design.

        Args:
            name: ``"threshold"``, ``"width"``, ``"lapse"``, ``"guess"`` or ``"eta"``.
        """
        if name == "threshold":
            low, high = self.prior_range
            spread = high - low
            return TaperedUniform(low, high, spread / 2, spread / 2)
        if name == "width":
            low, high = self.prior_range
            w_min = self.prior_width_min
            # psignifit's width prior is written for alpha = 0.05 and rescaled for others.
            factor = (_quantile("norm", 0.95) - _quantile("norm", 0.05)) / (
                _quantile("norm", 1 - self.width_alpha) - _quantile("norm", self.width_alpha)
            )
            spread = high - low
            return TaperedUniform(2 * w_min / factor, spread / factor, w_min / factor, 2 * spread / factor)
        if name == "lapse":
            # psignifit multiplies the lapse prior in twice for equal asymptotes: Beta(1, 10)^2 = Beta(1, 19).
            return dist.Beta(1.0, 19.0) if self.guess_kind == "lapse" else dist.Beta(1.0, 10.0)
        if name in ("guess", "eta"):
            return dist.Beta(1.0, 10.0)
        raise ValueError(f"PsychometricFunction: no parameter {name!r}; parameters: {PARAMETERS}")

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """Every free parameter with its prior (the defaults, with :attr:`priors` in place)."""
        replaced = {p.name: p for p in self.priors}
        return tuple(replaced.get(name) or Parameter(name, self.default_prior(name)) for name in self.free_parameters)

    def sample_parameters(self) -> dict:
        """NumPyro sample statements for the free parameters; all five by name (fixed and
        derived ones filled in)."""
        params = {p.name: numpyro.sample(p.name, p.prior) for p in self.parameters}
        return self.complete(params)

    def complete(self, params: dict) -> dict:
        """``params`` with the fixed parameters and the guess rate the experiment implies.

        Args:
            params: values of (some of) the parameters by name.
        """
        params = {**dict(self.fixed), **params}
        kind = self.guess_kind
        if kind == "fixed":
            params["guess"] = 1.0 / _parse_experiment(self.experiment)[1]
        elif kind == "lapse":
            params["guess"] = params["lapse"]
        return params

    # -- the function -------------------------------------------------------------------------
    def standard_parameters(self, threshold, width):
        """(loc, scale) of the standard sigmoid for a threshold and a width.

        Args:
            threshold: where psi's unscaled part crosses ``threshold_pc``, on the sigmoid's scale.
            width: the distance between its ``width_alpha`` and ``1 - width_alpha`` points.
        """
        name = self.sigmoid
        scale = width / (_quantile(name, 1 - self.width_alpha) - _quantile(name, self.width_alpha))
        return threshold - _quantile(name, self.threshold_pc) * scale, scale

    def probability(self, params: dict, intensity=None, *, unscaled: bool = False):
        """psi at ``intensity`` (stimulus units; default: the design's), for parameters
        ``params`` (by name; fixed ones may be left out). Leading axes of the parameters
        (draws) come first in the result.

        Args:
            params: the parameters by name.
            intensity: where to evaluate psi, in stimulus units (default: the design's).
            unscaled: F alone, without guesses and lapses.
        """
        x = self.scaled_intensity if intensity is None else self.to_scale(np.asarray(intensity, dtype=float))
        p, _ = self._probabilities(params, np.ravel(x), unscaled)
        return p.reshape(p.shape[:-1] + np.shape(x))

    def _probabilities(self, params, x, unscaled=False):
        """(psi, 1 - psi) at scaled intensities ``x``, each computed without cancellation."""
        params = self.complete(params)
        threshold, width = jnp.asarray(params["threshold"])[..., None], jnp.asarray(params["width"])[..., None]
        loc, scale = self.standard_parameters(threshold, width)
        f, f_bar = _sigmoid_pair(self.sigmoid, (jnp.asarray(x) - loc) / scale)
        if unscaled:
            return f, f_bar
        guess, lapse = jnp.asarray(params["guess"])[..., None], jnp.asarray(params["lapse"])[..., None]
        span = 1 - guess - lapse
        tiny = 1e-7
        return jnp.clip(guess + span * f, tiny, 1 - tiny), jnp.clip(lapse + span * f_bar, tiny, 1 - tiny)

    def observation_distribution(self, params: dict):
        """The distribution of the blocks' counts.

        Args:
            params: the parameters by name.
        """
        params = self.complete(params)
        p, q = self._probabilities(params, self.scaled_intensity)
        n = jnp.asarray(self.num_trials, dtype=jnp.int32)  # integer, as NumPyro's binomial sampler needs
        if "eta" in dict(self.fixed) and dict(self.fixed)["eta"] == 0.0:
            return dist.Binomial(total_count=n, probs=p)
        return OverdispersedBinomial(
            p, jnp.asarray(params["eta"])[..., None], n, failure_probs=q, max_count=int(self.num_trials.max())
        )

    def program(self, x=None, *, num_points=None):
        params = self.sample_parameters()
        with numpyro.plate(DATA_PLATE, self.num_blocks):
            numpyro.sample(OBSERVED_SITE, self.observation_distribution(params), obs=x)

    # -- data ---------------------------------------------------------------------------------
    def num_points_of(self, x):
        return None

    def validate_data(self, x):
        """The counts per block: a ``(blocks,)`` array, or psignifit's ``(blocks, 3)`` data
        matrix whose intensities and trial numbers match the design.

        Args:
            x: the data.

        Raises:
            ValueError: the shape, the design or a count is wrong.
        """
        owner = self.name
        if x is None:
            raise ValueError(f"{owner}: data is missing (got None)")
        array = np.asarray(x, dtype=float)
        if array.ndim == 2 and array.shape[1] == 3:
            matrix = _as_matrix(array, owner)
            if (
                matrix.shape[0] != self.num_blocks
                or not np.allclose(matrix[:, 0], self.intensity)
                or not np.array_equal(matrix[:, 2], self.num_trials)
            ):
                raise ValueError(
                    f"{owner}: the data matrix's intensities or trial numbers differ from the model's design; "
                    "build the model with PsychometricFunction.from_data(data)"
                )
            array = matrix[:, 1]
        if array.shape != (self.num_blocks,):
            raise ValueError(
                f"{owner}: data must be the counts of the {self.num_blocks} blocks (shape ({self.num_blocks},)) "
                f"or a ({self.num_blocks}, 3) data matrix, got shape {array.shape}"
            )
        _check_counts(array, self.num_trials, owner)
        return jnp.asarray(array)


def _check_counts(counts: np.ndarray, trials: np.ndarray, owner: str) -> None:
    checks = (
        (~np.isfinite(counts), "is not finite"),
        (counts != np.round(counts), "is not a whole number"),
        (counts < 0, "is negative"),
        (counts > trials, "exceeds the block's number of trials"),
    )
    for bad, what in checks:
        bad = np.asarray(bad)
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                f"{owner}: the count of block {first} ({float(counts[first])!r} of {int(trials[first])} trials) {what} "
                f"({int(bad.sum())} such blocks); counts must be whole numbers from 0 to the number of trials"
            )


def _as_matrix(data, owner: str) -> np.ndarray:
    try:
        matrix = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: data must be numeric, got {type(data).__name__}") from None
    if matrix.ndim != 2 or matrix.shape[1] != 3 or matrix.shape[0] == 0:
        raise ValueError(
            f"{owner}: data must be psignifit's matrix, one row per block: "
            f"[intensity, number yes/correct, number of trials]; got shape {matrix.shape}"
        )
    trials = matrix[:, 2]
    bad = ~(np.isfinite(trials) & (trials >= 1) & (trials == np.round(trials)))
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"{owner}: the number of trials must be a positive whole number; block {first} has {float(trials[first])!r}"
        )
    _check_counts(matrix[:, 1], trials, owner)
    return matrix


__all__ = ["OverdispersedBinomial", "PsychometricFunction", "SIGMOIDS", "TaperedUniform", "counts_from_trials"]
