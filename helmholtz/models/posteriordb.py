"""Models of posteriordb (stan-dev/posteriordb), with loaders for their data and draws.

The programs are our own NumPyro translations of the Stan models, written from their
mathematical form; the reference draws (Stan NUTS, 10,000 per posterior) are read from
``shared/reference/posteriordb/`` and serve as ground truth for the back ends.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from helmholtz._serialization import serializable
from helmholtz.data.reference import reference_dir
from helmholtz.models.base import DATA_PLATE, OBSERVED_SITE, Model, check_finite_array


@serializable
@dataclass(frozen=True)
class EightSchools(Model):
    """Eight schools, non-centred (Rubin, 1981): a hierarchical prior over school effects.

    mu ~ N(0, 5), tau ~ HalfCauchy(5), theta_trans_j ~ N(0, 1), theta_j = mu + tau theta_trans_j,
    y_j ~ N(theta_j, sigma_j). The known standard errors ``sigma`` belong to the design;
    the data are the observed effects y.
    """

    sigma: tuple[float, ...]

    def __post_init__(self):
        sigma = tuple(float(s) for s in np.ravel(self.sigma))
        if not all(s > 0 and np.isfinite(s) for s in sigma):
            raise ValueError(f"EightSchools: every standard error sigma_j must be > 0, got {sigma}")
        object.__setattr__(self, "sigma", sigma)

    def validate_data(self, x):
        return check_finite_array(x, self.name, ndim=1, last_dim=len(self.sigma))

    def num_points_of(self, x):
        return None

    def program(self, x=None, *, num_points=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
        tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
        with numpyro.plate("schools", len(self.sigma)):
            theta_trans = numpyro.sample("theta_trans", dist.Normal(0.0, 1.0))
            theta = numpyro.deterministic("theta", mu + tau * theta_trans)
            numpyro.sample(OBSERVED_SITE, dist.Normal(theta, jnp.asarray(self.sigma)), obs=x)


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


def _read_zipped_json(path: Path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read(archive.namelist()[0]))


def _reference_file(name: str) -> Path:
    path = reference_dir() / "posteriordb" / name
    if not path.exists():
        raise FileNotFoundError(f"posteriordb file {name} not found in {path.parent}")
    return path


POSTERIORS = {
    "eight_schools_noncentered": ("eight_schools", "eight_schools-eight_schools_noncentered"),
    "low_dim_gauss_mix": ("low_dim_gauss_mix", "low_dim_gauss_mix-low_dim_gauss_mix"),
}


def load_posterior(name: str) -> tuple[Model, jnp.ndarray]:
    """The model and the observed data of a posteriordb posterior."""
    if name not in POSTERIORS:
        raise ValueError(f"unknown posteriordb posterior {name!r}; available: {sorted(POSTERIORS)}")
    data = _read_zipped_json(_reference_file(f"{POSTERIORS[name][0]}.data.json.zip"))
    if name == "eight_schools_noncentered":
        return EightSchools(sigma=tuple(data["sigma"])), jnp.asarray(data["y"], dtype=float)
    return LowDimGaussMix(), jnp.asarray(data["y"], dtype=float)


def reference_draws(name: str) -> dict[str, np.ndarray]:
    """The 10,000 Stan reference draws, as site name -> array (draws, *site shape).

    Stan's 1-based names (``theta[1]`` ... ``theta[8]``) are stacked into one array per site.
    """
    chains = _read_zipped_json(_reference_file(f"{POSTERIORS[name][1]}.draws.json.zip"))
    columns: dict[str, dict[int, list]] = {}
    for stan_name in chains[0]:
        site, _, index = stan_name.partition("[")
        columns.setdefault(site, {})[int(index.rstrip("]")) if index else 0] = [
            value for chain in chains for value in chain[stan_name]
        ]
    draws = {}
    for site, by_index in columns.items():
        stacked = np.asarray([by_index[i] for i in sorted(by_index)], dtype=float).T
        draws[site] = stacked[:, 0] if list(by_index) == [0] else stacked
    return draws
