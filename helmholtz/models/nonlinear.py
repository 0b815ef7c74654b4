"""A nonlinear latent-variable model: x_i | z_i from a neural-network decoder.

    z_i ~ prior,    x_i | z_i ~ p(x | decoder(z_i))

with a Gaussian (learned noise per coordinate), Bernoulli (binary data) or Poisson
(counts) likelihood. The decoder's weights and the Gaussian noise scales are NumPyro
``param`` sites: point estimates found by maximum likelihood, as in a variational
autoencoder (Kingma & Welling, 2014). The ``vae`` back end fits them together with an
encoder for q(z_i | x_i).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from helmholtz._serialization import serializable
from helmholtz.models.base import DATA_PLATE, OBSERVED_SITE, Model, check_finite_array
from helmholtz.priors import Prior

LIKELIHOODS = ("gaussian", "bernoulli", "poisson")
ACTIVATIONS: dict[str, Callable] = {
    "tanh": jax.nn.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "softplus": jax.nn.softplus,
}
DECODER_PARAM = "decoder"
NOISE_PARAM = "noise"


class MLP(eqx.Module):
    """A multilayer perceptron on one vector: ``sizes = (input, *hidden, output)``,
    ``activation`` between layers and none after the last."""

    layers: tuple[eqx.nn.Linear, ...]
    activation: Callable = eqx.field(static=True)

    def __init__(self, sizes: tuple[int, ...], activation: str = "tanh", *, key):
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(eqx.nn.Linear(n_in, n_out, key=k) for n_in, n_out, k in zip(sizes[:-1], sizes[1:], keys))
        self.activation = ACTIVATIONS[activation]

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)


@functools.lru_cache(maxsize=None)
def mlp_skeleton(sizes: tuple[int, ...], activation: str) -> MLP:
    """The non-array part of an :class:`MLP` (its structure), to combine with weights.

    Built eagerly even when first asked for inside a traced function, so no tracer is
    cached."""
    with jax.ensure_compile_time_eval():
        network = MLP(sizes, activation, key=jax.random.PRNGKey(0))
    return eqx.partition(network, eqx.is_inexact_array)[1]


def mlp_param(name: str, sizes: tuple[int, ...], activation: str) -> MLP:
    """An :class:`MLP` whose weights are the NumPyro param ``name`` (the pattern of
    ``numpyro.contrib.module.eqx_module``, but initialised from the run's PRNG key, so
    that a fit's key also chooses the networks' starting weights)."""

    def initial_weights(key):
        return eqx.filter(MLP(sizes, activation, key=key), eqx.is_inexact_array)

    return eqx.combine(numpyro.param(name, initial_weights), mlp_skeleton(sizes, activation))


def apply_to_vectors(network: Callable, inputs: jnp.ndarray) -> jnp.ndarray:
    """``network`` applied to each vector along the last axis of ``inputs`` (any batch shape)."""
    flat = inputs.reshape((-1, inputs.shape[-1]))
    outputs = jax.vmap(network)(flat)
    return outputs.reshape(inputs.shape[:-1] + outputs.shape[-1:])


def _set_layer_widths(model, owner: str, field: str) -> None:
    """Check the layer widths ``model.<field>`` and store them as a tuple of ints."""
    widths = tuple(getattr(model, field))
    if not all(isinstance(width, (int, np.integer)) and width >= 1 for width in widths):
        raise ValueError(f"{owner}: {field} must be positive integer layer widths, got {getattr(model, field)!r}")
    object.__setattr__(model, field, tuple(int(width) for width in widths))


@serializable
@dataclass(frozen=True)
class NonlinearLVM(Model):
    """z_i ~ ``prior``, x_i | z_i ~ ``likelihood`` with parameters decoder(z_i).

    Args:
        prior: the prior of one latent vector z_i, any prior of :mod:`helmholtz.priors`.
            Gaussian and Laplace latents suit every amortised back end; binary
            (Bernoulli: a sigmoid belief network), one-hot (Categorical) and angular (von
            Mises) latents are fitted best by ``rws`` and ``wake-sleep``, which need no
            gradient through the samples (``vae`` falls back on a noisier score-function
            estimator).
        obs_dim: the length of each data vector x_i.
        likelihood: ``"gaussian"``: x_i ~ Normal(decoder(z_i), noise) with one learned
            noise scale per coordinate (starting at 1: standardise the data);
            ``"bernoulli"``: binary x_i with logits decoder(z_i);
            ``"poisson"``: counts x_i with rate softplus(decoder(z_i)) (softplus rather
            than exp keeps early training from overflowing).
        hidden: the widths of the decoder's hidden layers.
        activation: the decoder's nonlinearity, one of ``tanh``, ``relu``, ``gelu``,
            ``softplus``.

    Fit it with ``method="vae"``, ``"wake-sleep"`` or ``"rws"``. The decoder's weights are the param ``"decoder"`` and
    the Gaussian noise scales the param ``"noise"``.
    """

    prior: Prior
    obs_dim: int
    likelihood: str = "gaussian"
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"

    has_local_latents = True

    def __post_init__(self):
        if not isinstance(self.prior, Prior):
            raise TypeError(f"NonlinearLVM: prior must be a helmholtz.priors prior, got {type(self.prior).__name__}")
        if not (isinstance(self.obs_dim, int) and self.obs_dim >= 1):
            raise ValueError(f"NonlinearLVM: obs_dim must be a positive integer, got {self.obs_dim!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"NonlinearLVM: likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"NonlinearLVM: activation must be one of {tuple(ACTIVATIONS)}, got {self.activation!r}")
        _set_layer_widths(self, "NonlinearLVM", "hidden")

    @property
    def latent_dim(self) -> int:
        return self.prior.dim

    @property
    def name(self) -> str:
        return f"NonlinearLVM({type(self.prior).__name__} prior, {self.likelihood} likelihood)"

    @property
    def decoder_sizes(self) -> tuple[int, ...]:
        return (self.latent_dim, *self.hidden, self.obs_dim)

    def validate_data(self, x):
        shape = np.shape(x)
        if len(shape) == 3 and shape[1] * shape[2] == self.obs_dim:
            raise ValueError(
                f"{self.name}: data must have shape (num_points, {self.obs_dim}), got images of shape {shape}; "
                "flatten them first: x.reshape(len(x), -1)"
            )
        array = check_finite_array(x, self.name, ndim=2, last_dim=self.obs_dim)
        values = np.asarray(array)
        if self.likelihood == "bernoulli":
            bad = values[(values != 0) & (values != 1)]
            if bad.size:
                raise ValueError(
                    f"{self.name}: a Bernoulli likelihood needs binary data (0 or 1), but {bad.size} of "
                    f"{values.size} values are not, e.g. {bad[:3].tolist()}"
                )
        if self.likelihood == "poisson":
            bad = values[(values < 0) | (values != np.round(values))]
            if bad.size:
                raise ValueError(
                    f"{self.name}: a Poisson likelihood needs counts (non-negative integers), but "
                    f"{bad.size} of {values.size} values are not, e.g. {bad[:3].tolist()}"
                )
        return array

    # -- the program ---------------------------------------------------------------------
    def program(self, x=None, *, num_points: int | None = None):
        params = {DECODER_PARAM: numpyro.param(DECODER_PARAM, self._initial_decoder_weights)}
        if self.likelihood == "gaussian":
            params[NOISE_PARAM] = numpyro.param(NOISE_PARAM, jnp.ones(self.obs_dim), constraint=constraints.positive)
        num_points = x.shape[0] if x is not None else (num_points or 1)
        with numpyro.plate(DATA_PLATE, num_points):
            z = numpyro.sample("z", self.prior.distribution())
            numpyro.sample(OBSERVED_SITE, self.conditional_distribution(params, z), obs=x)

    def _initial_decoder_weights(self, key):
        return eqx.filter(MLP(self.decoder_sizes, self.activation, key=key), eqx.is_inexact_array)

    def decoder(self, weights) -> MLP:
        """The decoder network with the given weights (the param ``"decoder"``)."""
        return eqx.combine(weights, mlp_skeleton(self.decoder_sizes, self.activation))

    def conditional_distribution(self, params: dict, z) -> dist.Distribution:
        """p(x_i | z_i) at the params ``{"decoder": weights, "noise": scales}``."""
        output = apply_to_vectors(self.decoder(params[DECODER_PARAM]), z)
        if self.likelihood == "gaussian":
            return dist.Normal(output, params[NOISE_PARAM]).to_event(1)
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=output).to_event(1)
        return dist.Poisson(jax.nn.softplus(output)).to_event(1)


TOP_DECODER_PARAM = "top_decoder"
MIDDLE_NOISE_PARAM = "middle_noise"


@serializable
@dataclass(frozen=True)
class HierarchicalLVM(NonlinearLVM):
    """Two stochastic layers, z_i -> h_i -> x_i:

        z_i ~ prior,   h_i | z_i ~ Normal(top(z_i), middle_noise),   x_i | h_i ~ likelihood(decoder(h_i))

    The top network ``top`` (hidden layers ``top_hidden``) and the per-coordinate scales
    ``middle_noise`` are params (``"top_decoder"``, ``"middle_noise"``), as is the decoder
    of h (``"decoder"``, hidden layers ``hidden``). The amortised back ends encode both
    latents from x_i, q(z_i, h_i | x_i) = q(z_i | x_i) q(h_i | x_i).

    ``fit.decode({"z": z, "h": h})`` is the mean of p(x | h); given z alone, h is drawn
    from p(h | z).
    """

    middle_dim: int = 8
    top_hidden: tuple[int, ...] = (32,)

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.middle_dim, (int, np.integer)) and self.middle_dim >= 1):
            raise ValueError(f"HierarchicalLVM: middle_dim must be a positive integer, got {self.middle_dim!r}")
        _set_layer_widths(self, "HierarchicalLVM", "top_hidden")

    @property
    def name(self) -> str:
        return f"HierarchicalLVM({type(self.prior).__name__} prior, {self.middle_dim}-d middle layer, {self.likelihood} likelihood)"

    @property
    def decoder_sizes(self) -> tuple[int, ...]:
        return (self.middle_dim, *self.hidden, self.obs_dim)

    @property
    def top_sizes(self) -> tuple[int, ...]:
        return (self.latent_dim, *self.top_hidden, self.middle_dim)

    def program(self, x=None, *, num_points: int | None = None):
        params = {DECODER_PARAM: numpyro.param(DECODER_PARAM, self._initial_decoder_weights)}
        if self.likelihood == "gaussian":
            params[NOISE_PARAM] = numpyro.param(NOISE_PARAM, jnp.ones(self.obs_dim), constraint=constraints.positive)
        top = mlp_param(TOP_DECODER_PARAM, self.top_sizes, self.activation)
        middle_noise = numpyro.param(MIDDLE_NOISE_PARAM, jnp.ones(self.middle_dim), constraint=constraints.positive)
        num_points = x.shape[0] if x is not None else (num_points or 1)
        with numpyro.plate(DATA_PLATE, num_points):
            z = numpyro.sample("z", self.prior.distribution())
            h = numpyro.sample("h", dist.Normal(apply_to_vectors(top, z), middle_noise).to_event(1))
            numpyro.sample(OBSERVED_SITE, self.conditional_distribution(params, h), obs=x)
