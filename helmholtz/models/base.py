"""The model protocol shared by every family of the zoo.

A model is a frozen dataclass (so it can be saved and compared) that says what it
supports, samples its prior, simulates data and, where it has a likelihood, exposes a
NumPyro program. The sample and simulate methods here are derived from that program by
NumPyro's effect handlers, so a latent-variable model is written once, as one program.

Site conventions inside a program:
- the observations are the sample site ``"x"``;
- per-data-point latents live inside a plate named ``"data"``; every other latent site is
  a global parameter.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.infer import Predictive
from numpyro.infer.initialization import init_to_uniform

from helmholtz.utils import as_key

OBSERVED_SITE = "x"
DATA_PLATE = "data"


class Sites(NamedTuple):
    """The sample sites of a model's program, by role."""

    global_latents: tuple[str, ...]
    local_latents: tuple[str, ...]
    deterministic: tuple[str, ...]


class Conditioned(NamedTuple):
    """The data of a conditional model: observations ``x`` (one row per data point) and
    the covariates ``y`` each row is conditioned on (a class label, a stimulus), row by
    row: ``hz.fit(model, Conditioned(x, y), key, method=...)``.

    A pytree, so minibatches, ``jit`` and ``vmap`` take rows of both together. ``x`` is
    None where the program is to simulate observations for the covariates ``y``.
    """

    x: Any
    y: Any


def num_rows(data) -> int:
    """The number of data points (rows) of an array or a :class:`Conditioned`."""
    parts = data if isinstance(data, Conditioned) else (data,)
    return int(np.shape(next(part for part in parts if part is not None))[0])


def take_rows(data, indices):
    """The rows ``indices`` of an array or of both parts of a :class:`Conditioned`."""
    return jax.tree.map(lambda part: jnp.asarray(part)[indices], data)


def observations(data):
    """The observed array of ``data`` (what the site ``"x"`` sees)."""
    return data.x if isinstance(data, Conditioned) else data


def unobserved(data):
    """The program input that simulates new observations in place of ``data``'s: its
    covariates for a conditional model, None otherwise."""
    return data._replace(x=None) if isinstance(data, Conditioned) else None


def with_observations(data, x):
    """``data`` with its observations replaced by ``x`` (covariates kept)."""
    return data._replace(x=x) if isinstance(data, Conditioned) else x


class Model:
    """A declared generative model. Subclasses are frozen dataclasses."""

    has_likelihood: ClassVar[bool] = True
    can_simulate: ClassVar[bool] = True
    has_local_latents: ClassVar[bool] = False

    @property
    def name(self) -> str:
        return type(self).__name__

    # -- what subclasses provide -------------------------------------------------------
    def program(self, x=None, *, num_points: int | None = None):
        """The NumPyro program: priors, then the likelihood of ``x`` (sampled if None)."""
        raise NotImplementedError(f"{self.name} has no likelihood program")

    def validate_data(self, x) -> jnp.ndarray:
        """Return ``x`` as an array, or raise ValueError saying what is wrong with it."""
        return check_finite_array(x, self.name)

    def num_points_of(self, x) -> int | None:
        """How many independent data points ``x`` holds (passed back to the program)."""
        return None if x is None else num_rows(x)

    # -- optional hooks: a model that can do more overrides them --------------------------
    def marginal_distribution(self, params):
        """p(x_i | theta), a NumPyro distribution with the local latents removed exactly
        (closed form or enumeration), at global parameters ``params`` (by site name).

        Raises:
            TypeError: the model has none (the default).
        """
        raise TypeError(f"{self.name} has no exact marginal likelihood over its local latents")

    def make_encoder(self, num_outputs: int, key):
        """The encoder network the amortised back ends (``vae``, ``wake-sleep``, ``rws``) train
        for this model, or None (the default) for the zoo's MLP on each flattened data point.

        Args:
            num_outputs: the size of the network's output for one data point.
            key: a JAX PRNG key for its initial weights.

        Returns:
            An Equinox module from one data point, as the data holds it, to ``num_outputs``
            values; or None.
        """
        return None

    @property
    def continuous_latents(self) -> bool:
        """True when every latent the program samples is continuous (so NUTS applies)."""
        trace = self._trace()
        return all(
            not site["fn"].support.is_discrete
            for name, site in trace.items()
            if site["type"] == "sample" and not site["is_observed"] and name != OBSERVED_SITE
        )

    # -- derived from the program ------------------------------------------------------
    def _trace(self, x=None, num_points: int = 2):
        # Values come from NumPyro's initialisation strategy rather than the prior, so
        # programs with improper priors (no sampler) can be traced too.
        seeded = handlers.seed(self.program, jax.random.PRNGKey(0))
        substituted = handlers.substitute(seeded, substitute_fn=init_to_uniform)
        return handlers.trace(substituted).get_trace(x, num_points=num_points)

    def sites(self) -> Sites:
        trace = self._trace()
        global_latents, local_latents, deterministic = [], [], []
        for name, site in trace.items():
            if site["type"] == "deterministic":
                deterministic.append(name)
            elif site["type"] == "sample" and name != OBSERVED_SITE and not site["is_observed"]:
                in_data_plate = any(frame.name == DATA_PLATE for frame in site["cond_indep_stack"])
                (local_latents if in_data_plate else global_latents).append(name)
        return Sites(tuple(global_latents), tuple(local_latents), tuple(deterministic))

    def sample_prior(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        """``num_draws`` draws of the global parameters (and deterministic functions of them)."""
        sites = self.sites()
        predictive = Predictive(
            self.program, num_samples=num_draws, return_sites=list(sites.global_latents + sites.deterministic)
        )
        return predictive(as_key(key), None, num_points=1)

    def identifiable_parameters(self, params: dict) -> dict[str, jnp.ndarray]:
        """The functions of the global parameters that the data can pin down.

        Calibration checks rank these. By default every global parameter; models with a
        symmetry (rotating factor loadings, relabelling states) return invariants instead.
        """
        return {name: params[name] for name in self.sites().global_latents if name in params}

    def simulate(self, key, params: dict, num_points: int | None = None) -> jnp.ndarray:
        """Simulate one data set from the parameters ``params`` (one draw, unbatched)."""
        conditioned = handlers.condition(self.program, data=params)
        trace = handlers.trace(handlers.seed(conditioned, as_key(key))).get_trace(None, num_points=num_points)
        return trace[OBSERVED_SITE]["value"]

    def replicate(self, key, draws: dict, num_points: int | None = None) -> jnp.ndarray:
        """Replicated data sets, one per parameter draw (a leading axis in ``draws``)."""
        predictive = Predictive(self.program, posterior_samples=draws, return_sites=[OBSERVED_SITE])
        return predictive(as_key(key), None, num_points=num_points)[OBSERVED_SITE]


# The private name, for the modules that still import it from here; use helmholtz.utils.as_key.
_as_key = as_key


def check_finite_array(x, owner: str, *, ndim: int | None = None, last_dim: int | None = None) -> jnp.ndarray:
    """The data checks every model shares: numeric, the right shape, no NaN or inf."""
    if x is None:
        raise ValueError(f"{owner}: data is missing (got None)")
    try:
        array = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: data must be numeric, got {type(x).__name__}") from None
    if ndim is not None and array.ndim != ndim:
        expected = "(num_points, obs_dim)" if ndim == 2 else f"{ndim} dimensions"
        raise ValueError(f"{owner}: data must have shape {expected}, got shape {array.shape}")
    if last_dim is not None and array.shape[-1] != last_dim:
        raise ValueError(f"{owner}: each data point must have {last_dim} values, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{owner}: data is empty (shape {array.shape})")
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{owner}: data contains {int(np.isnan(array).sum())} NaN and "
            f"{int(np.isinf(array).sum())} infinite values (first at index {where}); "
            "remove or impute them before fitting"
        )
    return jnp.asarray(array)
