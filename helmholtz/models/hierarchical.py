"""Hierarchical (multilevel) normal models, in centred and non-centred forms.

Groups j = 1..J report estimates y_j with known standard errors sigma_j of effects
theta_j that are themselves drawn around a population mean: theta_j ~ N(mu, tau). The
same model can be written two ways, with the same posterior over (mu, tau, theta):

* centred: theta_j is sampled directly, theta_j ~ N(mu, tau). When the data are
  informative (sigma_j small against tau) the posterior of theta_j is close to its
  likelihood and this form samples best;
* non-centred: theta_j = mu + tau eta_j with eta_j ~ N(0, 1). When the data are weak, the
  centred posterior is a funnel (tau -> 0 pulls every theta_j to mu) that NUTS cannot
  enter without divergences, while eta_j and tau are nearly independent: this form samples
  best (Betancourt & Girolami, 2015).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from helmholtz._serialization import serializable
from helmholtz.models.base import Model, check_finite_array


@serializable
@dataclass(frozen=True)
class HierarchicalNormal(Model):
    """y_j ~ N(theta_j, sigma_j), theta_j ~ N(mu, tau), mu ~ N(0, ``mu_scale``),
    tau ~ HalfCauchy(``tau_scale``); ``centered`` picks the form (see the module).

    Sites: ``mu``, ``tau`` and ``theta`` always (deterministic in the non-centred form,
    which samples ``theta_trans`` = eta); the data are the J estimates y, shape ``(num_groups,)``.

    Args:
        sigma: the known standard error of each group's estimate, shape ``(num_groups,)``.
        centered: True for the centred form, False for the non-centred one.
        mu_scale: the prior scale of mu.
        tau_scale: the HalfCauchy prior scale of tau.

    Raises:
        ValueError: a standard error is not > 0, or a scale is not a finite number > 0.
    """

    sigma: tuple[float, ...]
    centered: bool = False
    mu_scale: float = 5.0
    tau_scale: float = 5.0

    def __post_init__(self):
        sigma = tuple(float(s) for s in np.ravel(self.sigma))
        if not sigma or not all(s > 0 and np.isfinite(s) for s in sigma):
            raise ValueError(f"{self.name}: every standard error sigma_j must be > 0, got {sigma}")
        object.__setattr__(self, "sigma", sigma)
        for field in ("mu_scale", "tau_scale"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{self.name}: {field} must be a finite number > 0, got {value!r}")

    def validate_data(self, x):
        return check_finite_array(x, self.name, ndim=1, last_dim=len(self.sigma))

    def num_points_of(self, x):
        return None

    def program(self, x=None, *, num_points=None):
        mu = numpyro.sample("mu", dist.Normal(0.0, self.mu_scale))
        tau = numpyro.sample("tau", dist.HalfCauchy(self.tau_scale))
        with numpyro.plate("groups", len(self.sigma)):
            if self.centered:
                theta = numpyro.sample("theta", dist.Normal(mu, tau))
            else:
                theta_trans = numpyro.sample("theta_trans", dist.Normal(0.0, 1.0))
                theta = numpyro.deterministic("theta", mu + tau * theta_trans)
            numpyro.sample("x", dist.Normal(theta, jnp.asarray(self.sigma)), obs=x)
