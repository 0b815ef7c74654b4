"""Signal detection theory (Green & Swets, 1966): the equal-variance Gaussian observer.

On each trial the observer receives one noisy number, the decision variable, drawn from
N(-d'/2, 1) when only noise is present and from N(+d'/2, 1) when the signal is present; it
answers "yes" when the number exceeds its criterion c (measured from the midpoint of the
two distributions, so c > 0 is a conservative observer). The closed forms below turn hit
and false-alarm rates into (d', c) and back; :class:`SignalDetection` is the same observer
as a generative model whose d' and c are inferred from a person's trial-by-trial responses.

    d, c = dprime_and_criterion(0.9, 0.3)          # (1.806, -0.379)
    model = SignalDetection(signal=(1, 0, 1, ...), task="yes_no")
    fit = helmholtz.fit(model, responses, method="nuts", key=0)
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln, log_ndtr
from jax.scipy.stats import norm
from numpyro.distributions import constraints

from helmholtz._serialization import serializable
from helmholtz.models.base import OBSERVED_SITE, Model, check_finite_array

TASKS = ("yes_no", "2afc", "rating")


# -- closed forms -----------------------------------------------------------------------
def dprime_and_criterion(hit_rate, false_alarm_rate):
    """Sensitivity d' = z(H) - z(F) and criterion c = -(z(H) + z(F)) / 2.

    ``hit_rate`` and ``false_alarm_rate`` are floats or arrays (broadcast together), each
    strictly between 0 and 1: a rate of 0 or 1 puts z at infinity. Correct such counts
    before calling, usually with the log-linear rule (hits + 0.5) / (signal trials + 1).

    Args:
        hit_rate: H, a float or an array, in (0, 1).
        false_alarm_rate: F, a float or an array broadcasting with ``hit_rate``, in (0, 1).

    Returns:
        ``(dprime, criterion)``, each of the broadcast shape.

    Raises:
        ValueError: a rate is not strictly between 0 and 1.
    """
    hit_rate = _check_rate(hit_rate, "hit_rate")
    false_alarm_rate = _check_rate(false_alarm_rate, "false_alarm_rate")
    z_hit, z_false_alarm = norm.ppf(hit_rate), norm.ppf(false_alarm_rate)
    return z_hit - z_false_alarm, -(z_hit + z_false_alarm) / 2


def proportion_correct_2afc(dprime):
    """Proportion correct of an unbiased observer in two-alternative forced choice.

    The observer picks the interval with the larger decision variable; the difference of
    the two has mean d' and variance 2, so P(correct) = Phi(d' / sqrt 2).

    Args:
        dprime: d', a float or an array.

    Returns:
        P(correct), the shape of ``dprime``.
    """
    return norm.cdf(jnp.asarray(dprime, dtype=float) / jnp.sqrt(2.0))


def roc_curve(dprime, criteria):
    """(false-alarm rates, hit rates) of the observer ``dprime`` at each criterion.

    F = Phi(-d'/2 - c), H = Phi(d'/2 - c): the inverse of :func:`dprime_and_criterion`.
    Sweep ``criteria`` from +inf to -inf to trace the whole curve from (0, 0) to (1, 1).

    Args:
        dprime: d', a float or an array broadcasting with ``criteria``.
        criteria: the criteria c, shape ``(num_criteria,)`` (or any shape).

    Returns:
        ``(false_alarm_rates, hit_rates)``, each of the broadcast shape.
    """
    dprime = jnp.asarray(dprime, dtype=float)
    criteria = jnp.asarray(criteria, dtype=float)
    return norm.cdf(-dprime / 2 - criteria), norm.cdf(dprime / 2 - criteria)


def area_under_roc(dprime):
    """Area under the equal-variance ROC: Phi(d' / sqrt 2), the unbiased 2AFC proportion
    correct (Green & Swets' area theorem).

    Args:
        dprime: d', a float or an array.

    Returns:
        The area, the shape of ``dprime``.
    """
    return proportion_correct_2afc(dprime)


def _check_rate(rate, name):
    array = np.asarray(rate, dtype=float)
    outside = ~((array > 0) & (array < 1))
    if outside.any():
        raise ValueError(
            f"{name} must lie strictly between 0 and 1, got {array[outside].ravel()[:5].tolist()}: "
            "z(0) and z(1) are infinite. Apply a correction first, usually the log-linear "
            "rule rate = (count + 0.5) / (trials + 1)"
        )
    return jnp.asarray(array)


# -- the generative observer ---------------------------------------------------------------
class _OrderedNormal(dist.Distribution):
    """The sorted values of ``size`` independent Normal(loc, scale) draws.

    Its density is Stan's ``ordered[K] c; c ~ normal(loc, scale)`` with the K! orderings
    folded into one (hence the log K! term), so it is proper and can be sampled.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.ordered_vector
    pytree_aux_fields = ("size",)

    def __init__(self, loc, scale, size, *, validate_args=None):
        self.loc, self.scale, self.size = loc, scale, size
        super().__init__(batch_shape=(), event_shape=(size,), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        draws = dist.Normal(self.loc, self.scale).sample(key, sample_shape + (self.size,))
        return jnp.sort(draws, axis=-1)

    def log_prob(self, value):
        return dist.Normal(self.loc, self.scale).log_prob(value).sum(-1) + gammaln(self.size + 1.0)


@serializable
@dataclass(frozen=True)
class SignalDetection(Model):
    """The equal-variance Gaussian observer, fit to trial-by-trial responses.

    Args:
        signal: the design, one 0/1 per trial. For ``"yes_no"`` and ``"rating"``, whether
            the signal was present; for ``"2afc"``, which interval (0 or 1) held it.
        task: ``"yes_no"``, ``"2afc"`` or ``"rating"``.
        num_ratings: for ``"rating"`` only, the number of confidence ratings (>= 2).

    The data ``x`` hold one response per trial: 1 for "yes" (yes/no) or "interval 1"
    (2AFC), 0 otherwise; for ratings 0 .. num_ratings - 1, higher meaning more confident
    the signal was there.

    Program:
        d' ~ N(1, 2). Not a half-normal: d' = z(H) - z(F) is negative for an observer
        below chance (swapped response keys, say), and a prior with a wall at 0 would pile
        the posterior of a near-chance observer against it and bias d' upward. N(1, 2)
        covers every d' a person shows (0 to 4) and lets the trials decide.
        yes/no: c ~ N(0, 2); P(yes) = Phi(+-d'/2 - c), + on signal trials.
        2AFC: c ~ N(0, 2), a bias toward interval 0; the observer compares the two
        intervals, whose difference has sd sqrt 2, so P(interval 1) = Phi(+-d'/sqrt 2 - c),
        + when the signal was in interval 1. At c = 0, P(correct) = Phi(d'/sqrt 2).
        rating: num_ratings - 1 criteria, the sorted values of as many N(0, 2) draws; the
        rating counts the criteria below the decision variable, N(+-d'/2, 1).

    The design fixes the number of trials, so ``num_points_of`` returns None.
    """

    signal: tuple[int, ...]
    task: str = "yes_no"
    num_ratings: int | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"SignalDetection: task must be one of {TASKS}, got {self.task!r}")
        signal = np.ravel(np.asarray(self.signal))
        if signal.size == 0 or not np.isin(signal, (0, 1)).all():
            raise ValueError("SignalDetection: signal must hold one 0 or 1 per trial (at least one trial)")
        object.__setattr__(self, "signal", tuple(int(s) for s in signal))
        if self.task == "rating":
            if not (isinstance(self.num_ratings, (int, np.integer)) and self.num_ratings >= 2):
                raise ValueError(f"SignalDetection: the rating task needs num_ratings >= 2, got {self.num_ratings!r}")
            object.__setattr__(self, "num_ratings", int(self.num_ratings))
        elif self.num_ratings is not None:
            raise ValueError(f"SignalDetection: num_ratings applies to the rating task only, not {self.task!r}")

    @property
    def num_trials(self) -> int:
        return len(self.signal)

    @property
    def num_responses(self) -> int:
        """How many different responses a trial can have."""
        return self.num_ratings if self.task == "rating" else 2

    def validate_data(self, x):
        responses = check_finite_array(x, self.name, ndim=1)
        if responses.shape[0] != self.num_trials:
            raise ValueError(
                f"{self.name}: expected one response per trial ({self.num_trials} trials in the design), "
                f"got {responses.shape[0]}"
            )
        values = np.asarray(responses)
        invalid = values[(values != np.round(values)) | (values < 0) | (values >= self.num_responses)]
        if invalid.size:
            allowed = "0 or 1" if self.num_responses == 2 else f"integers 0 .. {self.num_responses - 1}"
            shown = ", ".join(f"{value:g}" for value in np.unique(invalid)[:5])
            raise ValueError(f"{self.name}: {self.task} responses must be {allowed}, got [{shown}]")
        return responses.astype(jnp.int32)

    def num_points_of(self, x):
        return None

    def program(self, x=None, *, num_points=None):
        dprime = numpyro.sample("d_prime", dist.Normal(1.0, 2.0))
        # +1/2 on trials whose signal is at 1 (present, or in interval 1), -1/2 otherwise.
        side = jnp.asarray(self.signal, dtype=float) - 0.5
        if self.task == "rating":
            criteria = numpyro.sample("criteria", _OrderedNormal(0.0, 2.0, self.num_ratings - 1))
            below = norm.cdf(criteria - side[:, None] * dprime)  # P(decision variable < each criterion)
            bounds = (jnp.zeros((self.num_trials, 1)), below, jnp.ones((self.num_trials, 1)))
            response = dist.Categorical(probs=jnp.diff(jnp.concatenate(bounds, axis=-1), axis=-1))
        else:
            criterion = numpyro.sample("criterion", dist.Normal(0.0, 2.0))
            separation = dprime if self.task == "yes_no" else jnp.sqrt(2.0) * dprime
            z = side * separation - criterion
            # logit(Phi(z)) from log Phi, which stays finite where Phi(z) rounds to 0 or 1.
            response = dist.Bernoulli(logits=log_ndtr(z) - log_ndtr(-z))
        with numpyro.plate("trials", self.num_trials):
            numpyro.sample(OBSERVED_SITE, response, obs=x)


__all__ = [
    "SignalDetection",
    "area_under_roc",
    "dprime_and_criterion",
    "proportion_correct_2afc",
    "roc_curve",
]
