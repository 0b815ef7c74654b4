"""Autoregressive processes AR(K), posteriordb's arK among them."""

from __future__ import annotations

from dataclasses import dataclass

import numpyro
import numpyro.distributions as dist

from helmholtz._serialization import serializable
from helmholtz.models.base import OBSERVED_SITE, Model
from helmholtz.models.markov._sequences import (
    check_count,
    check_positive,
    check_sequences,
    num_sequences,
    sequence_plate,
)
from helmholtz.models.markov.distributions import AutoRegressiveProcess


@serializable
@dataclass(frozen=True)
class AutoRegressive(Model):
    """An AR(K) process: y_t = intercept + sum_k coefficients_k y_t-k + sigma e_t.

    Priors as in posteriordb's ``arK``: intercept and coefficients ~ N(0,
    ``coefficient_scale``), ``sigma`` ~ HalfCauchy(``noise_scale``). The first K values of a
    sequence are conditioned on (their N(0, ``initial_scale``) term does not involve the
    parameters); simulated sequences are ``num_steps`` long.

    Data are one sequence, shape ``(num_steps,)``, or a batch, shape ``(num_sequences, num_steps)``.

    Args:
        order: K, the number of lagged values each step depends on.
        num_steps: the length of simulated sequences (must exceed ``order``).
        coefficient_scale: the prior scale of the intercept and the coefficients.
        noise_scale: the scale of the HalfCauchy prior of ``sigma``.
        initial_scale: the scale of the N(0, ``initial_scale``) term of the first K values.

    Raises:
        ValueError: a count is not a positive integer, a scale is not a finite number > 0,
            or ``num_steps`` does not exceed ``order``.
    """

    order: int
    num_steps: int = 200
    coefficient_scale: float = 10.0
    noise_scale: float = 2.5
    initial_scale: float = 1.0

    def __post_init__(self):
        check_count(self.name, order=self.order, num_steps=self.num_steps)
        check_positive(
            self.name,
            coefficient_scale=self.coefficient_scale,
            noise_scale=self.noise_scale,
            initial_scale=self.initial_scale,
        )
        if self.num_steps <= self.order:
            raise ValueError(f"{self.name}: num_steps must exceed the order {self.order}, got {self.num_steps}")

    def validate_data(self, x):
        x = check_sequences(x, self.name, 1)
        if x.shape[-1] <= self.order:
            raise ValueError(
                f"{self.name}: an AR({self.order}) sequence needs more than {self.order} steps, got {x.shape[-1]}"
            )
        return x

    def num_points_of(self, x):
        return num_sequences(x, 1)

    def program(self, x=None, *, num_points=None):
        intercept = numpyro.sample("intercept", dist.Normal(0.0, self.coefficient_scale))
        coefficients = numpyro.sample(
            "coefficients", dist.Normal(0.0, self.coefficient_scale).expand([self.order]).to_event(1)
        )
        sigma = numpyro.sample("sigma", dist.HalfCauchy(self.noise_scale))
        num_steps = x.shape[-1] if x is not None else self.num_steps
        process = AutoRegressiveProcess(intercept, coefficients, sigma, num_steps, initial_scale=self.initial_scale)
        with sequence_plate(x, num_points, 1):
            numpyro.sample(OBSERVED_SITE, process, obs=x)
