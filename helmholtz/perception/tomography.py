"""Cognitive tomography (Houlsby et al., 2013): a person's subjective prior over a stimulus
space, inferred from odd-one-out judgements.

On each trial the observer sees three stimuli ``x_1, x_2, x_3`` (points of a 2-D stimulus
space, e.g. a face or shape space) and says which one is the odd one out. Houlsby et al.'s
observer explains the three by latent causes drawn from its subjective prior p(z): under
hypothesis H_i two of them (j, k) share one cause and the odd one ``i`` has its own,

    L_i = p(x_i) p(x_j, x_k),   p(x) = int N(x; z, s^2 I) p(z) dz,
    p(x_j, x_k) = int N(x_j; z, s^2 I) N(x_k; z, s^2 I) p(z) dz,

with ``s`` the sensory noise. It answers ``i`` with probability

    P(i) = (1 - lapse) softmax_i(beta log L_i) + lapse / 3

(``beta``: decision noise, Houlsby et al.'s soft-max of the posterior over hypotheses). The
subjective prior here is a mixture of ``num_components`` Gaussians, so both integrals are
closed-form: p(x) is the mixture with s^2 I added to every covariance, and for the pair the
midpoint m = (x_j + x_k) / 2 and the difference d = x_j - x_k are independent given z,

    p(x_j, x_k) = N(d; 0, 2 s^2 I) sum_c w_c N(m; mu_c, Sigma_c + s^2 / 2 I)

(the change of variables has unit Jacobian). One Gaussian (``num_components=1``) is the
Gaussian-prior observer. The term sum_m log p(x_m) is common to the three hypotheses, so a
choice depends on the pointwise mutual information log p(x_j, x_k) / (p(x_j) p(x_k)) of each
pair: close pairs go together, and more so where the prior is thin (a shared cause there is
the better explanation). That is what makes the prior's shape visible in the choices.

Parameters (sites): ``weights`` (Dirichlet(2, ..., 2); absent for one component), ``means``
(each coordinate Normal(0, ``prior_scale``)), ``scales`` (each component's standard
deviations along the axes, LogNormal(log(prior_scale / 4), 1)) and ``correlations`` (a 2 x 2
LKJ Cholesky factor per component, concentration 2). ``sensory_noise``, ``beta`` and
``lapse`` are the response model's and are declared, not fit: the prior's scale and the
sensory noise trade off against ``beta`` (a prior twice as wide with twice the noise and a
different beta predicts similar choices), which Houlsby et al. resolve the same way. The
mixture's components can be relabelled without changing anything, so compare priors as
densities (:func:`mixture_mmd`), not by their parameters.

    model = CognitiveTomography(triplets, num_components=3)    # triplets: (trials, 3, 2)
    fit = hz.fit(model, odd_one_out, method="svi", guide="delta", init="uniform", key=0)
    prior = model.mixture(fit.sample(0, 1))                      # weights, means, covariances
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logsumexp

from helmholtz._serialization import serializable
from helmholtz.models.base import DATA_PLATE, OBSERVED_SITE, Model
from helmholtz.utils import as_key

DIM = 2
# The three hypotheses: (odd one, the pair that shares a cause).
HYPOTHESES = ((0, 1, 2), (1, 0, 2), (2, 0, 1))


class Mixture(NamedTuple):
    """A mixture of Gaussians over the stimulus space (leading axes: draws, if any).

    Args:
        weights: the components' weights, shape ``(..., K)``.
        means: their means, shape ``(..., K, 2)``.
        covariances: their covariances, shape ``(..., K, 2, 2)``.
    """

    weights: jnp.ndarray
    means: jnp.ndarray
    covariances: jnp.ndarray


def mixture_log_density(mixture: Mixture, points, extra_variance=0.0):
    """log of the mixture's density at ``points``, with ``extra_variance`` times the identity
    added to every covariance (the density of a noisy observation of a draw).

    Args:
        mixture: one :class:`Mixture` (no leading axes).
        points: shape ``(..., 2)``.
        extra_variance: a number added to the diagonal of every covariance.

    Returns:
        The log density, shape ``(...)``.
    """
    covariances = mixture.covariances + extra_variance * jnp.eye(DIM)
    components = dist.MultivariateNormal(mixture.means, covariance_matrix=covariances)
    log_components = components.log_prob(jnp.asarray(points)[..., None, :])
    return logsumexp(log_components + jnp.log(mixture.weights), axis=-1)


def _gaussian_overlap(mean_a, cov_a, mean_b, cov_b, lengthscale):
    """E k(a, b) for a ~ N(mean_a, cov_a), b ~ N(mean_b, cov_b) and the kernel
    k(a, b) = exp(-|a - b|^2 / (2 l^2)): l^2 / sqrt(det(cov_a + cov_b + l^2 I)) times
    exp(-(mean_a - mean_b)^T (cov_a + cov_b + l^2 I)^-1 (mean_a - mean_b) / 2) in 2-D."""
    total = cov_a + cov_b + lengthscale**2 * jnp.eye(DIM)
    delta = mean_a - mean_b
    quadratic = jnp.einsum("...i,...ij,...j->...", delta, jnp.linalg.inv(total), delta)
    return lengthscale**DIM / jnp.sqrt(jnp.linalg.det(total)) * jnp.exp(-quadratic / 2)


def _expected_kernel(p: Mixture, q: Mixture, lengthscale: float):
    pairs = _gaussian_overlap(
        p.means[:, None], p.covariances[:, None], q.means[None, :], q.covariances[None, :], lengthscale
    )
    return jnp.einsum("i,j,ij->", p.weights, q.weights, pairs)


def mixture_mmd(p: Mixture, q: Mixture, lengthscale: float = 0.5) -> float:
    """The maximum mean discrepancy between two Gaussian mixtures, in closed form.

    With the Gaussian kernel ``k(a, b) = exp(-|a - b|^2 / (2 l^2))``, ``MMD^2 = E k(p, p') +
    E k(q, q') - 2 E k(p, q)``, and each expectation over two Gaussians is closed-form, so no
    sampling error enters. The kernel is characteristic: the MMD is 0 only for equal
    densities, and it does not depend on how the components are labelled.

    Args:
        p: one :class:`Mixture`.
        q: another.
        lengthscale: the kernel's length scale l (stimulus-space units): differences much
            finer than l count little.

    Returns:
        The MMD (not squared), in the kernel's units (between 0 and sqrt(2)).
    """
    squared = (
        _expected_kernel(p, p, lengthscale)
        + _expected_kernel(q, q, lengthscale)
        - 2 * _expected_kernel(p, q, lengthscale)
    )
    return float(jnp.sqrt(jnp.maximum(squared, 0.0)))


def check_triplets(triplets, owner: str = "CognitiveTomography") -> np.ndarray:
    """The triplets as a float array of shape ``(trials, 3, 2)``, or a ValueError that says
    what is wrong: the shape, a value that is not finite, or an item repeated within a
    triplet (the odd one out of x, x, y is not a judgement about the prior).

    Args:
        triplets: the stimuli of each trial.
        owner: the name the error messages start with.

    Returns:
        The triplets as a NumPy array.

    Raises:
        ValueError: as above.
    """
    array = np.asarray(triplets, dtype=float)
    if array.ndim != 3 or array.shape[1:] != (3, DIM) or array.shape[0] == 0:
        raise ValueError(f"{owner}: triplets must have shape (trials, 3, {DIM}), got {array.shape}")
    if not np.isfinite(array).all():
        first = int(np.argmax(~np.isfinite(array).all(axis=(1, 2))))
        raise ValueError(f"{owner}: triplets must be finite; triplet {first} is not")
    for a, b in ((0, 1), (0, 2), (1, 2)):
        same = np.all(array[:, a] == array[:, b], axis=-1)
        if same.any():
            first = int(np.argmax(same))
            raise ValueError(
                f"{owner}: triplet {first} repeats an item (items {a} and {b} are both {array[first, a].tolist()}); "
                f"{int(same.sum())} triplets repeat items {a} and {b}. Each triplet needs three distinct stimuli"
            )
    return array


@serializable
@dataclass(frozen=True, eq=False)
class CognitiveTomography(Model):
    """An observer whose subjective prior over a 2-D stimulus space is a mixture of
    Gaussians, fit to its odd-one-out choices (Houlsby et al., 2013; see the module).

    The data are the choices, one per triplet: 0, 1 or 2, the index of the odd one out.

    Args:
        triplets: the stimuli of each trial, shape ``(trials, 3, 2)``; no item may repeat
            within a triplet.
        num_components: the number of Gaussians in the subjective prior (1: a
            Gaussian-prior observer).
        sensory_noise: the standard deviation s of the noise on each stimulus.
        beta: the decision noise's inverse temperature.
        lapse: the probability of a random choice.
        prior_scale: the spread of the priors on the components' means and scales.
    """

    triplets: np.ndarray
    num_components: int = 3
    sensory_noise: float = 0.5
    beta: float = 1.0
    lapse: float = 0.05
    prior_scale: float = 2.0

    def __post_init__(self):
        owner = "CognitiveTomography"
        object.__setattr__(self, "triplets", check_triplets(self.triplets, owner))
        if not (isinstance(self.num_components, (int, np.integer)) and self.num_components >= 1):
            raise ValueError(f"{owner}: num_components must be a positive integer, got {self.num_components!r}")
        for name in ("sensory_noise", "beta", "prior_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{owner}: {name} must be positive, got {getattr(self, name)!r}")
        if not 0 <= self.lapse < 1:
            raise ValueError(f"{owner}: lapse must lie in [0, 1), got {self.lapse!r}")
        object.__setattr__(self, "num_components", int(self.num_components))

    @property
    def num_trials(self) -> int:
        return int(self.triplets.shape[0])

    def subset(self, trials) -> CognitiveTomography:
        """The same observer on some of the trials.

        Args:
            trials: an index array or boolean mask over the trials.
        """
        return CognitiveTomography(
            self.triplets[trials], self.num_components, self.sensory_noise, self.beta, self.lapse, self.prior_scale
        )

    # -- the subjective prior -------------------------------------------------------------
    def sample_parameters(self) -> dict:
        """NumPyro sample statements of the prior's parameters."""
        k = self.num_components
        params = {}
        if k > 1:
            params["weights"] = numpyro.sample("weights", dist.Dirichlet(jnp.full(k, 2.0)))
        params["means"] = numpyro.sample("means", dist.Normal(0.0, self.prior_scale).expand([k, DIM]).to_event(2))
        params["scales"] = numpyro.sample(
            "scales", dist.LogNormal(jnp.log(self.prior_scale / 4), 1.0).expand([k, DIM]).to_event(2)
        )
        params["correlations"] = numpyro.sample(
            "correlations", dist.LKJCholesky(DIM, concentration=2.0).expand([k]).to_event(1)
        )
        return params

    def mixture(self, params: dict) -> Mixture:
        """The subjective prior as a :class:`Mixture`.

        Args:
            params: the parameters by site name (``weights`` may be absent for one
                component); leading axes (draws) are kept.
        """
        means = jnp.asarray(params["means"])
        scales = jnp.asarray(params["scales"])
        factor = scales[..., :, None] * jnp.asarray(params["correlations"])
        covariances = factor @ jnp.swapaxes(factor, -1, -2)
        weights = params.get("weights")
        weights = jnp.ones(means.shape[:-1]) if weights is None else jnp.asarray(weights)
        return Mixture(weights, means, covariances)

    def log_prior_density(self, params: dict, points):
        """log p(z) of the subjective prior at ``points``.

        Args:
            params: the parameters of one prior (no leading axes).
            points: shape ``(..., 2)``.
        """
        return mixture_log_density(self.mixture(params), points)

    # -- the response model ---------------------------------------------------------------
    def hypothesis_log_likelihoods(self, params: dict, triplets=None):
        """log L_i for the three hypotheses of each trial, shape ``(trials, 3)``.

        Args:
            params: the parameters of one prior (no leading axes).
            triplets: the trials (default: the model's), shape ``(trials, 3, 2)``.
        """
        x = jnp.asarray(self.triplets if triplets is None else triplets)
        return _hypothesis_log_likelihoods(self.mixture(params), x, self.sensory_noise**2)

    def choice_probabilities(self, params: dict, triplets=None):
        """P(odd one out = i) per trial, shape ``(trials, 3)``.

        Args:
            params: the parameters of one prior (no leading axes).
            triplets: the trials (default: the model's).
        """
        x = jnp.asarray(self.triplets if triplets is None else triplets)
        return _choice_probabilities(self.mixture(params), x, self.sensory_noise**2, self.beta, self.lapse)

    def trial_log_likelihood(self, params: dict, choices, triplets=None):
        """log P(choice) of each trial: the held-out score of a fitted prior on other trials.

        Args:
            params: the parameters of one prior (no leading axes).
            choices: 0, 1 or 2 per trial.
            triplets: the trials (default: the model's).
        """
        probabilities = self.choice_probabilities(params, triplets)
        choices = jnp.asarray(choices, dtype=jnp.int32)
        return jnp.log(jnp.take_along_axis(probabilities, choices[:, None], axis=-1)[:, 0])

    def program(self, x=None, *, num_points=None):
        params = self.sample_parameters()
        probabilities = self.choice_probabilities(params)
        with numpyro.plate(DATA_PLATE, self.num_trials):
            numpyro.sample(OBSERVED_SITE, dist.Categorical(probs=probabilities), obs=x)

    # -- data -----------------------------------------------------------------------------
    def num_points_of(self, x):
        return None

    def validate_data(self, x):
        """The choices: one of 0, 1, 2 per triplet.

        Args:
            x: the choices.

        Raises:
            ValueError: the shape is not ``(trials,)`` or a choice is not 0, 1 or 2.
        """
        owner = self.name
        if x is None:
            raise ValueError(f"{owner}: data is missing (got None)")
        array = np.asarray(x, dtype=float)
        if array.shape != (self.num_trials,):
            raise ValueError(
                f"{owner}: data must be one choice per triplet, shape ({self.num_trials},), got {array.shape}"
            )
        bad = ~np.isin(array, (0.0, 1.0, 2.0))
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                f"{owner}: a choice is the index of the odd one out, 0, 1 or 2; trial {first} is "
                f"{float(array[first])!r} ({int(bad.sum())} such trials)"
            )
        return jnp.asarray(array, dtype=jnp.int32)


# Compiled as one program: run eagerly (NumPyro's initialisation, scoring held-out trials),
# the response model's few hundred array operations would each be compiled on their own.
@jax.jit
def _hypothesis_log_likelihoods(mixture: Mixture, x, sensory_variance):
    """log L_i of the three hypotheses of each trial, shape ``(trials, 3)``."""
    single = mixture_log_density(mixture, x, sensory_variance)  # (trials, 3)
    columns = []
    for odd, j, k in HYPOTHESES:
        midpoint, difference = (x[:, j] + x[:, k]) / 2, x[:, j] - x[:, k]
        pair = mixture_log_density(mixture, midpoint, sensory_variance / 2) + dist.Normal(
            0.0, jnp.sqrt(2 * sensory_variance)
        ).log_prob(difference).sum(-1)
        columns.append(single[:, odd] + pair)
    return jnp.stack(columns, axis=-1)


@jax.jit
def _choice_probabilities(mixture: Mixture, x, sensory_variance, beta, lapse):
    """P(odd one out = i) of each trial, shape ``(trials, 3)``."""
    soft = jax.nn.softmax(beta * _hypothesis_log_likelihoods(mixture, x, sensory_variance), axis=-1)
    return (1 - lapse) * soft + lapse / 3


def random_triplets(key, num_trials: int, low: float = -3.0, high: float = 3.0) -> np.ndarray:
    """Triplets drawn uniformly over the square [low, high]^2 (distinct with probability 1).

    Args:
        key: a JAX PRNG key or an integer seed.
        num_trials: the number of triplets.
        low: the square's lower edge.
        high: its upper edge.

    Returns:
        The triplets, shape ``(num_trials, 3, 2)``.
    """
    return np.asarray(jax.random.uniform(as_key(key), (num_trials, 3, DIM), minval=low, maxval=high), dtype=float)
