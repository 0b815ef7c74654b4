"""Linear latent-variable models: x = G z + mean + eps, one declaration for the family.

Which member of the family a model is follows from its prior and noise declaration:

====================  ==================  ================  =====================
model                 prior on z          noise eps         local latents
====================  ==================  ================  =====================
factor analysis       Gaussian            diagonal          integrated (closed form)
probabilistic PCA     Gaussian            isotropic         integrated (closed form)
sparse coding         Laplace             isotropic         sampled
Gaussian mixture      Categorical         isotropic         summed out
binary factors        Bernoulli           isotropic         summed out
====================  ==================  ================  =====================

The global parameters are the loadings ``G``, shape ``(obs_dim, latent_dim)``, the offset ``mean``
and the noise standard deviations ``noise``. Wherever the local latents can be removed
exactly (Gaussian prior: x is Gaussian with covariance G S G^T + Psi; discrete prior: a
finite sum over the prior's support), the program does so, which is what makes the
exact marginal likelihood available and lets NUTS run on these models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from helmholtz._serialization import serializable
from helmholtz.models.base import DATA_PLATE, OBSERVED_SITE, Model, check_finite_array
from helmholtz.priors import Bernoulli, Categorical, Gaussian, Laplace, Prior, as_latent_prior

NOISE_KINDS = ("diagonal", "isotropic")


@serializable
@dataclass(frozen=True)
class LinearLVM(Model):
    """x_i = loadings @ z_i + mean + eps_i with z_i ~ ``prior`` and Gaussian noise eps_i.

    Args:
        prior: the prior of one latent vector z_i (see :mod:`helmholtz.priors`).
        obs_dim: the length of each data vector x_i.
        noise: ``"diagonal"`` (one noise scale per observed coordinate, as in factor
            analysis) or ``"isotropic"`` (one shared scale, as in probabilistic PCA).
        loadings_scale: standard deviation of the Normal prior on each loading.
        mean_scale: standard deviation of the Normal prior on each entry of ``mean``;
            ``None`` drops the offset (a mixture's loadings already are its means).
        noise_scale: scale of the HalfNormal prior on the noise standard deviations.
        collapse_local: sum or integrate z out of the likelihood where that is exact
            (Gaussian or discrete prior). Set False to keep z as sampled sites.

    Data are shaped ``(num_points, obs_dim)``.

    Raises:
        TypeError: ``prior`` is not a latent prior.
        ValueError: ``obs_dim`` is not a positive integer, ``noise`` is unknown, or a scale
            is not a finite number > 0.
    """

    prior: Prior
    obs_dim: int
    noise: str = "diagonal"
    loadings_scale: float = 1.0
    mean_scale: float | None = 10.0
    noise_scale: float = 1.0
    collapse_local: bool = True

    has_local_latents = True

    def __post_init__(self):
        try:
            object.__setattr__(self, "prior", as_latent_prior(self.prior))
        except TypeError as error:
            raise TypeError(f"LinearLVM: {error}") from None
        if not (isinstance(self.obs_dim, int) and self.obs_dim >= 1):
            raise ValueError(f"LinearLVM: obs_dim must be a positive integer, got {self.obs_dim!r}")
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"LinearLVM: noise must be one of {NOISE_KINDS}, got {self.noise!r}")
        for field in ("loadings_scale", "noise_scale") + (("mean_scale",) if self.mean_scale is not None else ()):
            value = getattr(self, field)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"LinearLVM: {field} must be a finite number > 0, got {value!r}")

    @property
    def latent_dim(self) -> int:
        return self.prior.dim

    @property
    def name(self) -> str:
        return f"LinearLVM({type(self.prior).__name__} prior, {self.noise} noise)"

    @property
    def integrates_latents(self) -> bool:
        """Whether the program removes z exactly (closed form or enumeration)."""
        return self.collapse_local and (isinstance(self.prior, Gaussian) or self.prior.is_discrete)

    def validate_data(self, x):
        return check_finite_array(x, self.name, ndim=2, last_dim=self.obs_dim)

    # -- the program ---------------------------------------------------------------------
    def sample_globals(self) -> dict[str, jnp.ndarray]:
        """Sample the global parameters inside a NumPyro program."""
        params = {
            "loadings": numpyro.sample(
                "loadings",
                dist.Normal(0.0, self.loadings_scale).expand([self.obs_dim, self.latent_dim]).to_event(2),
            )
        }
        if self.mean_scale is not None:
            params["mean"] = numpyro.sample(
                "mean", dist.Normal(0.0, self.mean_scale).expand([self.obs_dim]).to_event(1)
            )
        noise_dim = self.obs_dim if self.noise == "diagonal" else 1
        params["noise"] = numpyro.sample("noise", dist.HalfNormal(self.noise_scale).expand([noise_dim]).to_event(1))
        return params

    def program(self, x=None, *, num_points: int | None = None):
        params = self.sample_globals()
        num_points = x.shape[0] if x is not None else (num_points or 1)
        with numpyro.plate(DATA_PLATE, num_points):
            if self.integrates_latents:
                numpyro.sample(OBSERVED_SITE, self.marginal_distribution(params), obs=x)
            else:
                z = numpyro.sample("z", self.prior.distribution())
                numpyro.sample(OBSERVED_SITE, self.conditional_distribution(params, z), obs=x)

    def identifiable_parameters(self, params):
        """With a Gaussian prior, G and G R (R orthogonal) fit equally well: only the
        loadings' covariance G S^2 G^T (its upper triangle) is identifiable, beside the
        mean and the noise.

        Args:
            params: draws of the global parameters by site name (any leading batch axes).

        Returns:
            The identifiable functions by name: ``mean``, ``noise`` and ``loadings_covariance``
            (the upper triangle, shape ``(..., obs_dim * (obs_dim + 1) // 2)``) with a Gaussian
            prior; else every global parameter.
        """
        if not isinstance(self.prior, Gaussian):
            return super().identifiable_parameters(params)
        scaled = params["loadings"] * self.prior.scale
        upper = jnp.triu_indices(self.obs_dim)
        invariant = {k: v for k, v in params.items() if k in ("mean", "noise")}
        return {**invariant, "loadings_covariance": (scaled @ scaled.T)[upper]}

    # -- the likelihood, with and without z ----------------------------------------------
    def _offset(self, params):
        return params.get("mean", jnp.zeros(self.obs_dim))

    def _noise_std(self, params):
        return jnp.broadcast_to(params["noise"], params["noise"].shape[:-1] + (self.obs_dim,))

    def conditional_distribution(self, params, z) -> dist.Distribution:
        """p(x_i | z_i, theta): independent Gaussians around G z_i + mean.

        Args:
            params: the global parameters by site name.
            z: latent vectors, shape ``(..., latent_dim)``.

        Returns:
            A distribution with batch shape ``(...)`` and event shape ``(obs_dim,)``.
        """
        loc = jnp.einsum("...dk,...k->...d", params["loadings"], z) + self._offset(params)
        return dist.Normal(loc, self._noise_std(params)).to_event(1)

    def marginal_distribution(self, params) -> dist.Distribution:
        """p(x_i | theta) with z_i integrated (Gaussian prior) or summed out (discrete).

        Args:
            params: one value of each global parameter, by site name.

        Returns:
            A distribution with event shape ``(obs_dim,)``: a multivariate Normal (Gaussian
            prior) or a mixture over the prior's support (discrete prior).

        Raises:
            TypeError: no exact marginal exists for the prior (Laplace, von Mises).
        """
        loadings, offset, noise_std = params["loadings"], self._offset(params), self._noise_std(params)
        if isinstance(self.prior, Gaussian):
            scaled = loadings * self.prior.scale
            covariance = scaled @ jnp.swapaxes(scaled, -1, -2) + jnp.vectorize(jnp.diag, signature="(d)->(d,d)")(
                noise_std**2
            )
            loc = offset + self.prior.loc * loadings.sum(-1)
            return dist.MultivariateNormal(loc, covariance_matrix=covariance)
        if self.prior.is_discrete:
            states, log_prior = self.prior.enumerate_support()
            component_means = jnp.einsum("...dk,sk->...sd", loadings, states) + offset[..., None, :]
            components = dist.Normal(component_means, noise_std[..., None, :]).to_event(1)
            return dist.MixtureSameFamily(dist.Categorical(logits=log_prior), components)
        raise TypeError(
            f"{self.name}: no exact marginal likelihood for a {type(self.prior).__name__} prior; "
            "only Gaussian and discrete priors have one"
        )

    def log_marginal_likelihood(self, params: dict, x) -> jnp.ndarray:
        """Exact log p(x_i | theta) for each data point (Gaussian or discrete prior).

        Args:
            params: one value of each global parameter, by site name.
            x: the data, shape ``(num_points, obs_dim)``.

        Returns:
            The log-likelihoods, shape ``(num_points,)``.

        Raises:
            ValueError: the data are invalid.
            TypeError: no exact marginal exists for the prior.
        """
        x = self.validate_data(x)
        return self.marginal_distribution({k: jnp.asarray(v) for k, v in params.items()}).log_prob(x)


def FactorAnalysis(obs_dim: int, latent_dim: int, **options) -> LinearLVM:
    """Factor analysis: Gaussian factors, one noise variance per observed coordinate.

    Args:
        obs_dim: the length of each data vector.
        latent_dim: the number of factors.
        **options: further fields of :class:`LinearLVM` (``loadings_scale``, ``noise_scale``...).

    Returns:
        A :class:`LinearLVM`.
    """
    return LinearLVM(Gaussian(latent_dim), obs_dim, noise="diagonal", **options)


def ProbabilisticPCA(obs_dim: int, latent_dim: int, **options) -> LinearLVM:
    """Probabilistic PCA (Tipping & Bishop, 1999): Gaussian factors, isotropic noise.

    Args:
        obs_dim: the length of each data vector.
        latent_dim: the number of factors.
        **options: further fields of :class:`LinearLVM` (``loadings_scale``, ``noise_scale``...).

    Returns:
        A :class:`LinearLVM`.
    """
    return LinearLVM(Gaussian(latent_dim), obs_dim, noise="isotropic", **options)


def SparseCoding(obs_dim: int, latent_dim: int, sparsity: float = 1.0, **options) -> LinearLVM:
    """Sparse coding: Laplace coefficients with scale 1/sparsity, isotropic noise.

    Args:
        obs_dim: the length of each data vector.
        latent_dim: the number of coefficients.
        sparsity: the inverse scale of the Laplace prior.
        **options: further fields of :class:`LinearLVM` (``loadings_scale``, ``noise_scale``...).

    Returns:
        A :class:`LinearLVM`.
    """
    return LinearLVM(Laplace(latent_dim, scale=1.0 / sparsity), obs_dim, noise="isotropic", **options)


def GaussianMixture(obs_dim: int, num_components: int, mean_scale: float = 10.0, **options) -> LinearLVM:
    """A mixture of isotropic Gaussians: one-hot z picks a column of G (a component mean).

    Args:
        obs_dim: the length of each data vector.
        num_components: the number of mixture components.
        mean_scale: the prior scale of the component means (the loadings).
        **options: further fields of :class:`LinearLVM` (``loadings_scale``, ``noise_scale``...).

    Returns:
        A :class:`LinearLVM`.
    """
    return LinearLVM(
        Categorical(num_components),
        obs_dim,
        noise="isotropic",
        loadings_scale=mean_scale,
        mean_scale=None,
        **options,
    )


def BinaryFactors(obs_dim: int, latent_dim: int, probs: float = 0.5, **options) -> LinearLVM:
    """Binary (on/off) factors whose loadings add up: x = sum of active columns of G.

    Args:
        obs_dim: the length of each data vector.
        latent_dim: the number of binary factors.
        probs: the prior probability that a factor is on.
        **options: further fields of :class:`LinearLVM` (``loadings_scale``, ``noise_scale``...).

    Returns:
        A :class:`LinearLVM`.
    """
    return LinearLVM(Bernoulli(latent_dim, probs=probs), obs_dim, noise="isotropic", **options)
