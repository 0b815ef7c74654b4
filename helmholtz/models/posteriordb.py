"""Models of posteriordb (stan-dev/posteriordb), with loaders for their data and draws.

The programs are our own NumPyro translations of the Stan models, written from their
mathematical form (arK is the zoo's :class:`~helmholtz.models.markov.AutoRegressive`);
the reference draws (Stan NUTS, 10,000 per posterior) are read from
``shared/reference/posteriordb/`` and serve as ground truth for the back ends.
:func:`read_data` and :func:`read_draws` read any posterior stored there, also those of
models a user declares (``gallery/declaring_your_own_model``).
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import diffrax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from helmholtz._serialization import serializable
from helmholtz.models.base import DATA_PLATE, OBSERVED_SITE, Model, check_finite_array
from helmholtz.models.hierarchical import HierarchicalNormal
from helmholtz.models.markov import AutoRegressive
from helmholtz.models.markov.distributions import HiddenMarkovEmissions
from helmholtz.utils import reference_dir


@serializable
@dataclass(frozen=True)
class EightSchools(HierarchicalNormal):
    """Eight schools, non-centred (Rubin, 1981): a :class:`HierarchicalNormal` with
    mu ~ N(0, 5), tau ~ HalfCauchy(5), theta_j = mu + tau theta_trans_j, y_j ~ N(theta_j,
    sigma_j). The known standard errors ``sigma`` belong to the design; the data are the
    observed effects y.

    Args:
        sigma: the known standard error of each school's estimate, shape ``(num_groups,)``.
        centered: True for the centred form, False (posteriordb's) for the non-centred one.
        mu_scale: the prior scale of mu.
        tau_scale: the HalfCauchy prior scale of tau.
    """


@serializable
@dataclass(frozen=True)
class LowDimGaussMix(Model):
    """A two-component 1-D Gaussian mixture with ordered means, the component summed out.

    mu ordered with N(0, 2) on each, sigma_k ~ HalfNormal(2), theta ~ Beta(5, 5),
    y_n ~ theta N(mu_1, sigma_1) + (1 - theta) N(mu_2, sigma_2).
    """

    # Its prior on mu is Stan's ordered-vector Normal, written as a density without a
    # sampler: the model can be fit, not simulated from its prior.
    can_simulate = False

    def validate_data(self, x):
        return check_finite_array(x, self.name, ndim=1)

    def program(self, x=None, *, num_points=None):
        # Stan's `ordered[2] mu; mu ~ normal(0, 2)`: a Normal density on the ordered set.
        mu = numpyro.sample("mu", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
        numpyro.factor("mu_prior", dist.Normal(0.0, 2.0).log_prob(mu).sum())
        sigma = numpyro.sample("sigma", dist.HalfNormal(2.0).expand([2]).to_event(1))
        theta = numpyro.sample("theta", dist.Beta(5.0, 5.0))
        mixing = dist.Categorical(probs=jnp.stack([theta, 1.0 - theta], -1))
        with numpyro.plate(DATA_PLATE, x.shape[0] if x is not None else (num_points or 1)):
            numpyro.sample(OBSERVED_SITE, dist.MixtureSameFamily(mixing, dist.Normal(mu, sigma)), obs=x)


@serializable
@dataclass(frozen=True)
class HMMExample(Model):
    """posteriordb's ``hmm_example``: a two-state hidden Markov chain with Gaussian emissions.

    Transition rows theta1, theta2 ~ Uniform(2-simplex) (row k: p(z_t | z_t-1 = k));
    mu positive and ordered (0 < mu_1 < mu_2) with density N(mu_1; 3, 1) N(mu_2; 10, 1) on
    that set; z_1 uniform; y_t | z_t ~ N(mu_z_t, 1). The states are summed out by the
    forward algorithm. Data: one sequence shaped (num_steps, 1), the layout of
    :class:`~helmholtz.models.markov.HiddenMarkovModel`; ``num_steps`` is the length of
    simulated sequences.

    Args:
        num_steps: the length of simulated sequences.

    Raises:
        ValueError: ``num_steps`` is not a positive integer.
    """

    num_steps: int = 100

    # Its prior on mu is Stan's positive_ordered Normal, written as a density without a
    # sampler: the model can be fit, and simulated given mu, but not from its prior.
    can_simulate = False

    def __post_init__(self):
        if not (isinstance(self.num_steps, (int, np.integer)) and self.num_steps >= 1):
            raise ValueError(f"HMMExample: num_steps must be a positive integer, got {self.num_steps!r}")

    def validate_data(self, x):
        x = check_finite_array(x, self.name)
        if x.ndim != 2 or x.shape[-1] != 1:
            raise ValueError(
                f"{self.name}: data must be one sequence shaped (num_steps, 1), got shape {x.shape}; "
                "reshape a 1-D series y with y[:, None]"
            )
        return x

    def num_points_of(self, x):
        return None

    def program(self, x=None, *, num_points=None):
        theta1 = numpyro.sample("theta1", dist.Dirichlet(jnp.ones(2)))
        theta2 = numpyro.sample("theta2", dist.Dirichlet(jnp.ones(2)))
        # Stan's `positive_ordered[2] mu` with Normal(3, 1) and Normal(10, 1) on its
        # coordinates: a density on the positive ordered set.
        mu = numpyro.sample("mu", dist.ImproperUniform(constraints.positive_ordered_vector, (), (2,)))
        numpyro.factor("mu_prior", dist.Normal(jnp.array([3.0, 10.0]), 1.0).log_prob(mu).sum())
        emission = dist.Normal(mu[:, None], 1.0).to_event(1)
        sequence = HiddenMarkovEmissions(
            jnp.full(2, 0.5), jnp.stack([theta1, theta2]), emission, x.shape[0] if x is not None else self.num_steps
        )
        numpyro.sample(OBSERVED_SITE, sequence, obs=x)


@serializable
@dataclass(frozen=True)
class LotkaVolterra(Model):
    """posteriordb's ``lotka_volterra``: predator-prey dynamics measured with log-normal noise.

    The populations z = (u, v) = (prey, predator) solve du/dt = (alpha - beta v) u,
    dv/dt = (-gamma + delta u) v, z(0) = z_init, with theta = (alpha, beta, gamma, delta).
    Priors: alpha, gamma ~ N(1, 0.5) and beta, delta ~ N(0.05, 0.05), each restricted to
    > 0; z_init_k ~ LogNormal(log 10, 1); sigma_k ~ LogNormal(-1, 1). Measurements
    y_k(t) ~ LogNormal(log z_k(t), sigma_k) at t = 0 and at each of ``times``.

    Data: shape ``(len(times) + 1, 2)``, row 0 the measurement at t = 0 (posteriordb's
    y_init) and row n the one at ``times[n - 1]``; columns (prey, predator). The ODE is
    solved by Tsit5 with an adaptive step (relative and absolute tolerances ``rtol``,
    ``atol``); a solve that needs more than ``max_steps`` steps gives NaN populations,
    which NUTS rejects as a divergence.

    Args:
        times: the measurement times after t = 0, finite, > 0 and strictly increasing.
        rtol: the solver's relative tolerance.
        atol: the solver's absolute tolerance.
        max_steps: the most steps the solver may take.

    Raises:
        ValueError: ``times`` are not finite, > 0 and strictly increasing, a tolerance is not in
            (0, 1), or ``max_steps`` is not a positive integer.
    """

    times: tuple[float, ...]
    rtol: float = 1e-6
    atol: float = 1e-6
    max_steps: int = 4096

    def __post_init__(self):
        times = tuple(float(t) for t in np.ravel(self.times))
        if not times or not all(math.isfinite(t) for t in times) or times[0] <= 0 or np.any(np.diff(times) <= 0):
            raise ValueError(
                f"LotkaVolterra: times must be finite, > 0 (t = 0 is the initial measurement) "
                f"and strictly increasing, got {times}"
            )
        object.__setattr__(self, "times", times)
        for field in ("rtol", "atol"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and 0 < value < 1):
                raise ValueError(f"LotkaVolterra: {field} must be a number in (0, 1), got {value!r}")
        if not (isinstance(self.max_steps, (int, np.integer)) and self.max_steps >= 1):
            raise ValueError(f"LotkaVolterra: max_steps must be a positive integer, got {self.max_steps!r}")

    def validate_data(self, x):
        x = check_finite_array(x, self.name, ndim=2, last_dim=2)
        if x.shape[0] != len(self.times) + 1:
            raise ValueError(
                f"{self.name}: data must hold the measurement at t = 0 and one at each of the "
                f"{len(self.times)} times, shape ({len(self.times) + 1}, 2), got shape {x.shape}"
            )
        if np.any(x <= 0):
            where = tuple(int(i) for i in np.argwhere(np.asarray(x) <= 0)[0])
            raise ValueError(
                f"{self.name}: populations must be > 0 (the measurement noise is log-normal), "
                f"got {float(x[where])} at index {where}"
            )
        return x

    def num_points_of(self, x):
        return None

    @staticmethod
    def _vector_field(t, populations, theta):
        prey, predator = populations[0], populations[1]
        alpha, beta, gamma, delta = theta[0], theta[1], theta[2], theta[3]
        return jnp.stack([(alpha - beta * predator) * prey, (-gamma + delta * prey) * predator])

    def trajectory(self, theta, z_init) -> jnp.ndarray:
        """The populations z(t) at t = 0 and at ``times``.

        Args:
            theta: (alpha, beta, gamma, delta), shape ``(4,)``.
            z_init: the populations (prey, predator) at t = 0, shape ``(2,)``.

        Returns:
            The populations, shape ``(len(times) + 1, 2)``; NaN where the solve failed.
        """
        save_times = jnp.asarray((0.0,) + self.times)
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(self._vector_field),
            diffrax.Tsit5(),
            t0=0.0,
            t1=self.times[-1],
            dt0=None,
            y0=jnp.asarray(z_init),
            args=jnp.asarray(theta),
            saveat=diffrax.SaveAt(ts=save_times),
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol),
            max_steps=self.max_steps,
            # A failed solve must not raise inside NUTS: its NaN is rejected there instead.
            throw=False,
        )
        return jnp.where(solution.result == diffrax.RESULTS.successful, solution.ys, jnp.nan)

    def program(self, x=None, *, num_points=None):
        # (alpha, beta, gamma, delta): Stan's Normal priors on parameters declared > 0.
        rates_prior = dist.TruncatedNormal(
            jnp.array([1.0, 0.05, 1.0, 0.05]), jnp.array([0.5, 0.05, 0.5, 0.05]), low=0.0
        )
        theta = numpyro.sample("theta", rates_prior.to_event(1))
        z_init = numpyro.sample("z_init", dist.LogNormal(jnp.log(10.0), 1.0).expand([2]).to_event(1))
        sigma = numpyro.sample("sigma", dist.LogNormal(-1.0, 1.0).expand([2]).to_event(1))
        populations = self.trajectory(theta, z_init)
        numpyro.sample(OBSERVED_SITE, dist.LogNormal(jnp.log(populations), sigma).to_event(2), obs=x)


def _read_zipped_json(path: Path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(archive.namelist()[0]))


def _reference_file(name: str) -> Path:
    path = reference_dir() / "posteriordb" / name
    if not path.exists():
        raise FileNotFoundError(f"posteriordb file {name} not found in {path.parent}")
    return path


class Posterior(NamedTuple):
    """A posteriordb posterior: its data set's and reference draws' file stems, how the
    data become our model and observations, and our site name for each Stan parameter
    whose name differs (the rest keep theirs)."""

    data_set: str
    draws: str
    build: Callable[[dict], tuple[Model, jnp.ndarray]]
    site_names: dict[str, str]


def _ar_k(data):
    # posteriordb's arK priors: alpha, beta ~ N(0, 10), sigma ~ HalfCauchy(2.5).
    model = AutoRegressive(order=int(data["K"]), num_steps=int(data["T"]), coefficient_scale=10.0, noise_scale=2.5)
    return model, jnp.asarray(data["y"], dtype=float)


def _lotka_volterra(data):
    measurements = np.concatenate([np.asarray(data["y_init"], dtype=float)[None], np.asarray(data["y"], dtype=float)])
    return LotkaVolterra(times=tuple(data["ts"])), jnp.asarray(measurements)


POSTERIORS = {
    "eight_schools_noncentered": Posterior(
        "eight_schools",
        "eight_schools-eight_schools_noncentered",
        lambda data: (EightSchools(sigma=tuple(data["sigma"])), jnp.asarray(data["y"], dtype=float)),
        {},
    ),
    "low_dim_gauss_mix": Posterior(
        "low_dim_gauss_mix",
        "low_dim_gauss_mix-low_dim_gauss_mix",
        lambda data: (LowDimGaussMix(), jnp.asarray(data["y"], dtype=float)),
        {},
    ),
    "arK": Posterior("arK", "arK-arK", _ar_k, {"alpha": "intercept", "beta": "coefficients"}),
    "hmm_example": Posterior(
        "hmm_example",
        "hmm_example-hmm_example",
        lambda data: (HMMExample(num_steps=int(data["N"])), jnp.asarray(data["y"], dtype=float)[:, None]),
        {},
    ),
    "lotka_volterra": Posterior("hudson_lynx_hare", "hudson_lynx_hare-lotka_volterra", _lotka_volterra, {}),
}


def _posterior(name: str) -> Posterior:
    if name not in POSTERIORS:
        raise ValueError(f"unknown posteriordb posterior {name!r}; available: {sorted(POSTERIORS)}")
    return POSTERIORS[name]


def read_data(data_set: str) -> dict:
    """The data of any posteriordb data set in ``shared/reference/posteriordb`` (zoo model
    or not), by its name (``"kidiq"``): each entry as posteriordb stores it, lists as
    NumPy arrays."""
    content = _read_zipped_json(_reference_file(f"{data_set}.data.json.zip"))
    return {key: np.asarray(value) if isinstance(value, list) else value for key, value in content.items()}


def read_draws(posterior: str, site_names: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """The 10,000 Stan reference draws of any posteriordb posterior in
    ``shared/reference/posteriordb``, by its name (``"kidiq-kidscore_momiq"``), as site
    name -> array (draws, *site shape): Stan's 1-based ``beta[1]``, ``beta[2]`` are stacked
    into one array ``beta`` of shape (10,000, 2). ``site_names`` renames Stan's sites."""
    chains = _read_zipped_json(_reference_file(f"{posterior}.draws.json.zip"))
    site_names = site_names or {}
    columns: dict[str, dict[int, list]] = {}
    for stan_name in chains[0]:
        site, _, index = stan_name.partition("[")
        columns.setdefault(site, {})[int(index.rstrip("]")) if index else 0] = [
            value for chain in chains for value in chain[stan_name]
        ]
    draws = {}
    for site, by_index in columns.items():
        stacked = np.asarray([by_index[i] for i in sorted(by_index)], dtype=float).T
        draws[site_names.get(site, site)] = stacked[:, 0] if list(by_index) == [0] else stacked
    return draws


def load_posterior(name: str) -> tuple[Model, jnp.ndarray]:
    """The model and the observed data of a posteriordb posterior, in the model's layout
    (hmm_example's series as (N, 1); lotka_volterra's y_init stacked over y, (21, 2))."""
    posterior = _posterior(name)
    return posterior.build(_read_zipped_json(_reference_file(f"{posterior.data_set}.data.json.zip")))


def reference_draws(name: str) -> dict[str, np.ndarray]:
    """The 10,000 Stan reference draws of a zoo posterior, as our site name -> array
    (draws, *site shape) (:func:`read_draws`, with the sites named as our model's:
    ``POSTERIORS[name].site_names``, e.g. arK's alpha and beta are our AutoRegressive's
    intercept and coefficients)."""
    posterior = _posterior(name)
    return read_draws(posterior.draws, posterior.site_names)
