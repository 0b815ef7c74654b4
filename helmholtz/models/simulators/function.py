"""A simulator from a function: :class:`FunctionSimulator`, a :class:`Simulator` without a subclass.

::

    @hz.serializable                        # only needed to save fits: registers the name
    def drift_diffusion(key, theta):        # one data set from one parameter vector
        ...

    model = hz.models.FunctionSimulator(
        drift_diffusion,
        parameters=(hz.priors.Uniform("drift", -2.0, 2.0), hz.priors.Uniform("bound", 0.5, 2.0)),
        observation_shape=(200,),
        summary=reaction_time_quantiles,    # optional: one data set -> a vector of statistics
    )
    fit = hz.fit(model, observed, method="npe", key=0)

Everything batched (chunks, devices, seeding by index) is derived by :class:`Simulator`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from helmholtz._serialization import serializable
from helmholtz.models.simulators.base import Simulator
from helmholtz.priors import Parameter


def _function_name(function) -> str:
    return getattr(function, "__name__", type(function).__name__)


@serializable
@dataclass(frozen=True)
class FunctionSimulator(Simulator):
    """A simulator given by a function ``simulate_one(key, theta)``.

    Args:
        simulate_one: one data set of shape ``observation_shape`` from a JAX key and one
            parameter vector ``theta`` (every parameter flattened, in the order of
            ``parameters``); pure JAX, so that it can be jitted and vmapped.
        parameters: the parameters and their priors, each a
            :class:`~helmholtz.priors.Parameter` (any NumPyro distribution).
        observation_shape: the shape of one data set.
        summary: optional summary statistics of one data set, a vector (jittable; NaN
            rather than an error for a data set that blew up); the flattened data set if None.
        feature_names: a name per statistic; ``s_0, s_1, ...`` (or ``x_0, ...`` without a
            summary) if empty.

    Raises:
        TypeError: ``simulate_one`` or ``summary`` is not a function, or a parameter is
            not a :class:`~helmholtz.priors.Parameter`.
        ValueError: ``simulate_one`` or ``summary`` fails on one parameter vector or data
            set, or returns a shape other than declared.
    """

    # Fields of the same names as Simulator's methods and properties: a default at class
    # level is what lets each instance's value stand in for the inherited attribute.
    simulate_one: Callable = None
    parameters: tuple[Parameter, ...] = field(default=(), kw_only=True)
    observation_shape: tuple[int, ...] = field(default=(), kw_only=True)
    summary: Callable | None = field(default=None, kw_only=True)
    feature_names: tuple[str, ...] = field(default=(), kw_only=True)

    def __post_init__(self):
        if not callable(self.simulate_one) or isinstance(self.simulate_one, type):
            raise TypeError(
                "FunctionSimulator needs simulate_one(key, theta), a function returning one data set, "
                f"got {type(self.simulate_one).__name__}"
            )
        name = self.name
        parameters = tuple(self.parameters) if isinstance(self.parameters, list | tuple) else None
        if not parameters:
            raise ValueError(f"{name}: parameters must be a non-empty tuple of hz.priors.Parameter(name, distribution)")
        for parameter in parameters:
            if not isinstance(parameter, Parameter):
                raise TypeError(
                    f"{name}: each parameter must be an hz.priors.Parameter(name, distribution), "
                    f"got {type(parameter).__name__}"
                )
        names = [p.name for p in parameters]
        if len(set(names)) < len(names):
            raise ValueError(f"{name}: parameter names must differ, got {names}")
        object.__setattr__(self, "parameters", parameters)
        shape = (self.observation_shape,) if isinstance(self.observation_shape, int) else self.observation_shape
        if not shape or not all(isinstance(n, int | np.integer) and n >= 1 for n in shape):
            raise ValueError(
                f"{name}: observation_shape must be the shape of one data set simulate_one returns, "
                f"a tuple of positive integers, got {self.observation_shape!r}"
            )
        object.__setattr__(self, "observation_shape", tuple(int(n) for n in shape))
        if self.summary is not None and (not callable(self.summary) or isinstance(self.summary, type)):
            raise TypeError(f"{name}: summary must be a function of one data set, got {type(self.summary).__name__}")
        num_features = self._check_shapes()
        names = tuple(self.feature_names) or tuple(f"{'s' if self.summary else 'x'}_{i}" for i in range(num_features))
        if len(names) != num_features:
            raise ValueError(f"{name}: {len(names)} feature_names for {num_features} summary statistics")
        object.__setattr__(self, "feature_names", names)

    def _check_shapes(self) -> int:
        """Run both functions abstractly on one parameter vector; the number of statistics."""
        theta = jax.ShapeDtypeStruct((self.num_theta,), jnp.float32)
        try:
            simulated = jax.eval_shape(self.simulate_one, jax.random.PRNGKey(0), theta)
        except Exception as error:
            raise ValueError(
                f"{self.name}: simulate_one(key, theta) fails on one parameter vector theta of shape "
                f"({self.num_theta},) (entries {list(self.theta_names)}): {type(error).__name__}: {error}"
            ) from error
        if not hasattr(simulated, "shape") or tuple(simulated.shape) != self.observation_shape:
            raise ValueError(
                f"{self.name}: simulate_one returns shape {getattr(simulated, 'shape', type(simulated).__name__)} "
                f"for one parameter vector, but observation_shape is {self.observation_shape}"
            )
        if self.summary is None:
            return math.prod(self.observation_shape)
        try:
            features = jax.eval_shape(self.summary, jax.ShapeDtypeStruct(self.observation_shape, jnp.float32))
        except Exception as error:
            raise ValueError(
                f"{self.name}: summary fails on one data set of shape {self.observation_shape}: "
                f"{type(error).__name__}: {error}"
            ) from error
        if not hasattr(features, "shape") or len(features.shape) != 1:
            raise ValueError(
                f"{self.name}: summary must return a vector of statistics for one data set, "
                f"got shape {getattr(features, 'shape', type(features).__name__)}"
            )
        return int(features.shape[0])

    @property
    def name(self) -> str:
        return _function_name(self.simulate_one)

    def summarize(self, x: jnp.ndarray) -> jnp.ndarray:
        """The summary of each data set (``summary`` vmapped, or the flattened data).

        Args:
            x: data sets, shape ``(num_simulations, *observation_shape)``.

        Returns:
            The summaries, shape ``(num_simulations, num_features)``.
        """
        if self.summary is None:
            return x.reshape(x.shape[0], -1)
        return jax.vmap(self.summary)(x)
