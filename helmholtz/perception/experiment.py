"""Two-alternative forced-choice experiments as models: an observer, the trials' stimuli
(the design), and the responses as data.

:class:`TwoAFCExperiment` turns an :class:`~helmholtz.perception.Observer` into a NumPyro
program: the observer's parameters, then one Bernoulli response per trial with the
probability the observer derives. ``helmholtz.fit(experiment, responses, method="nuts")``
(or ``"svi"``) fits the observer to a person's choices. :class:`PsychometricPerCondition`
is the descriptive baseline: a free cumulative Gaussian per condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.stats import norm

from helmholtz._serialization import serializable
from helmholtz.models.base import DATA_PLATE, OBSERVED_SITE, Model
from helmholtz.perception.observer import Observer, lapse_prior, with_lapse


def check_responses(x, num_trials: int, owner: str) -> jnp.ndarray:
    """Responses must be one 0 or 1 per trial.

    Args:
        x: the responses, shape ``(num_trials,)``.
        num_trials: the number of trials of the design.
        owner: the name the error messages start with.

    Returns:
        The responses as a float array, shape ``(num_trials,)``.

    Raises:
        ValueError: the shape is wrong, or a response is not 0 or 1.
    """
    array = np.asarray(x, dtype=float)
    if array.shape != (num_trials,):
        raise ValueError(
            f"{owner}: responses must have shape ({num_trials},), one per trial of the design, got {array.shape}"
        )
    bad = ~np.isin(array, (0.0, 1.0))
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(
            f"{owner}: responses must be 0 or 1; trial {first} is {array[first]!r} ({int(bad.sum())} such trials)"
        )
    return jnp.asarray(array)


class TrialResponses(Model):
    """A model whose data are one 0/1 response per trial of a design it holds: subclasses
    give ``num_trials`` and ``response_probability(params)``."""

    def validate_data(self, x):
        return check_responses(x, self.num_trials, self.name)

    def num_points_of(self, x):
        return None

    def observe(self, p, x):
        """The responses, Bernoulli with probabilities ``p``, one per trial.

        Args:
            p: the probability of a response 1 on each trial, shape ``(num_trials,)``.
            x: the observed responses, shape ``(num_trials,)``, or None to sample them.
        """
        with numpyro.plate(DATA_PLATE, self.num_trials):
            numpyro.sample(OBSERVED_SITE, dist.Bernoulli(probs=p), obs=x)


@serializable
@dataclass(frozen=True, eq=False)
class TwoAFCExperiment(TrialResponses):
    """Trials of "is the test greater than the reference?" answered by an observer.

    Args:
        observer: the :class:`Observer` being fit.
        reference: the reference stimulus per trial (stimulus units, e.g. deg/s), shape ``(num_trials,)``.
        reference_level: the reference's noise level per trial (an integer index into the
            observer's ``noise``, e.g. which contrast it had), shape ``(num_trials,)``.
        test: the test stimulus per trial, shape ``(num_trials,)``.
        test_level: the test's noise level per trial, shape ``(num_trials,)``.

    The data are the responses, shape ``(num_trials,)``: 1 when the test was judged greater.

    Raises:
        ValueError: the observer's percept is the mode, the arrays are not 1-D of one length,
            a level is not an integer below the observer's ``num_noise_levels``, or a
            stimulus is not finite or falls outside the observer's grid.
    """

    observer: Observer
    reference: np.ndarray
    reference_level: np.ndarray
    test: np.ndarray
    test_level: np.ndarray

    def __post_init__(self):
        if self.observer.percept == "mode":
            raise ValueError(
                "TwoAFCExperiment: a posterior mode on a grid is piecewise constant in the parameters, "
                "so nuts and svi would get no gradient; use percept='mean' or 'median'"
            )
        arrays = {
            name: np.asarray(getattr(self, name)) for name in ("reference", "reference_level", "test", "test_level")
        }
        shapes = {name: a.shape for name, a in arrays.items()}
        if len(set(shapes.values())) != 1 or arrays["reference"].ndim != 1:
            raise ValueError(
                f"TwoAFCExperiment: reference, test and their levels must be 1-D of one length, got {shapes}"
            )
        for name in ("reference_level", "test_level"):
            levels = arrays[name]
            if (
                not np.issubdtype(levels.dtype, np.integer)
                or levels.min() < 0
                or levels.max() >= self.observer.num_noise_levels
            ):
                raise ValueError(
                    f"TwoAFCExperiment: {name} must be integers in [0, {self.observer.num_noise_levels}) "
                    f"(the observer's noise levels), got values {np.unique(levels)[:10]}"
                )
        for name in ("reference", "test"):
            values = arrays[name]
            if not np.isfinite(values).all() or (
                self.observer.domain == "log" and (values + self.observer.offset <= 0).any()
            ):
                raise ValueError(
                    f"TwoAFCExperiment: {name} stimuli must be finite"
                    + (
                        f" and above -offset = {-self.observer.offset} (log domain)"
                        if self.observer.domain == "log"
                        else ""
                    )
                )
            low, high, _ = self.observer.grid
            internal = np.asarray(self.observer.to_internal(values))
            if (internal < low - 1e-9).any() or (internal > high + 1e-9).any():
                raise ValueError(
                    f"TwoAFCExperiment: {name} stimuli span {values.min():g} to {values.max():g}, outside the observer's grid "
                    f"({float(self.observer.from_internal(low)):g} to {float(self.observer.from_internal(high)):g}); widen Observer.grid"
                )
        for name, value in arrays.items():
            object.__setattr__(self, name, value)
        # Staircases repeat stimuli: the probability is computed once per distinct
        # (reference, level, test, level), 3-4x fewer than trials on the speed data.
        stacked = np.stack(
            [arrays["reference"], arrays["reference_level"], arrays["test"], arrays["test_level"]], axis=1
        )
        distinct, inverse = np.unique(stacked, axis=0, return_inverse=True)
        object.__setattr__(self, "_distinct", distinct)
        object.__setattr__(self, "_trial_to_distinct", inverse.ravel())

    @property
    def num_trials(self) -> int:
        return len(self.reference)

    def subset(self, trials) -> TwoAFCExperiment:
        """The same observer on a subset of the trials.

        Args:
            trials: the trials to keep, an index array or a boolean mask of shape ``(num_trials,)``.

        Returns:
            A :class:`TwoAFCExperiment` of those trials.
        """
        return TwoAFCExperiment(
            self.observer,
            self.reference[trials],
            self.reference_level[trials],
            self.test[trials],
            self.test_level[trials],
        )

    def response_probability(self, params):
        """P(test judged greater) for every trial under parameters ``params``.

        Args:
            params: the observer's parameters by name.

        Returns:
            The probabilities, shape ``(num_trials,)``.
        """
        d = self._distinct
        p = self.observer.prob_test_greater(
            params, d[:, 0], d[:, 1].astype(np.int32), d[:, 2], d[:, 3].astype(np.int32)
        )
        return p[self._trial_to_distinct]

    def program(self, x=None, *, num_points=None):
        params = self.observer.sample_parameters()
        self.observe(self.response_probability(params), x)


@serializable
@dataclass(frozen=True, eq=False)
class PsychometricPerCondition(TrialResponses):
    """The descriptive baseline: in each condition (an integer label per trial, below
    ``num_conditions``) its own cumulative Gaussian of the log ratio test / reference, with
    a point of subjective equality ``pse`` (Normal(0, 1)) and a width ``width``
    (LogNormal(log 0.3, 1)), and one shared lapse rate (:func:`lapse_prior`). Two
    parameters per condition, no observer theory.

    Args:
        condition: each trial's condition, integers in [0, ``num_conditions``), shape ``(num_trials,)``.
        reference: the reference stimulus per trial (> 0), shape ``(num_trials,)``.
        test: the test stimulus per trial (> 0), shape ``(num_trials,)``.
        num_conditions: the number of conditions.

    Raises:
        ValueError: ``condition`` does not hold integer labels below ``num_conditions``.
    """

    condition: np.ndarray
    reference: np.ndarray
    test: np.ndarray
    num_conditions: int

    def __post_init__(self):
        condition = np.asarray(self.condition)
        if (
            not np.issubdtype(condition.dtype, np.integer)
            or condition.min() < 0
            or condition.max() >= self.num_conditions
        ):
            raise ValueError(
                f"PsychometricPerCondition: condition must be integer labels in [0, {self.num_conditions})"
            )
        object.__setattr__(self, "condition", condition)
        object.__setattr__(self, "reference", np.asarray(self.reference, float))
        object.__setattr__(self, "test", np.asarray(self.test, float))

    @property
    def num_trials(self) -> int:
        return len(self.condition)

    def subset(self, trials) -> PsychometricPerCondition:
        """The same model on a subset of the trials.

        Args:
            trials: the trials to keep, an index array or a boolean mask of shape ``(num_trials,)``.

        Returns:
            A :class:`PsychometricPerCondition` of those trials.
        """
        return PsychometricPerCondition(
            self.condition[trials], self.reference[trials], self.test[trials], self.num_conditions
        )

    def response_probability(self, params):
        """P(test judged greater) for every trial, lapses included.

        Args:
            params: ``pse`` and ``width`` (each shape ``(num_conditions,)``) and ``lapse``, by name.

        Returns:
            The probabilities, shape ``(num_trials,)``.
        """
        log_ratio = jnp.log(self.test / self.reference)
        k = self.condition
        return with_lapse(norm.cdf((log_ratio - params["pse"][k]) / params["width"][k]), params["lapse"])

    def program(self, x=None, *, num_points=None):
        with numpyro.plate("conditions", self.num_conditions):
            pse = numpyro.sample("pse", dist.Normal(0.0, 1.0))
            width = numpyro.sample("width", dist.LogNormal(np.log(0.3), 1.0))
        lapse = numpyro.sample("lapse", lapse_prior())
        self.observe(self.response_probability({"pse": pse, "width": width, "lapse": lapse}), x)
