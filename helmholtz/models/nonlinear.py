"""A nonlinear latent-variable model: x_i | z_i from a neural-network decoder.

    z_i ~ prior,    x_i | z_i ~ p(x | decoder(z_i))

with a Gaussian (learned noise per coordinate), Bernoulli (binary data) or Poisson
(counts) likelihood, an MLP or a small convolutional decoder (images), and two variants
declared the same way: two stochastic layers (:class:`HierarchicalLVM`) and a decoder
that also reads covariates y_i (:class:`ConditionalLVM`, a conditional VAE). The decoder's weights and the Gaussian noise scales are NumPyro
``param`` sites: point estimates found by maximum likelihood, as in a variational
autoencoder (Kingma & Welling, 2014). The ``vae`` back end fits them together with an
encoder for q(z_i | x_i).
"""

from __future__ import annotations

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from helmholtz._serialization import serializable
from helmholtz.models.base import DATA_PLATE, OBSERVED_SITE, Conditioned, Model, check_finite_array
from helmholtz.models.networks import ACTIVATIONS, MLP, ConvDecoder, apply_to_vectors, network_param, skeleton
from helmholtz.priors import Prior, as_latent_prior

LIKELIHOODS = ("gaussian", "bernoulli", "poisson")
DECODERS = ("mlp", "conv")
DECODER_PARAM = "decoder"
NOISE_PARAM = "noise"


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
        hidden: the widths of the decoder's hidden layers: units of the MLP's layers, or
            feature-map channels of the convolutional decoder's stages.
        activation: the decoder's nonlinearity, one of ``tanh``, ``relu``, ``gelu``,
            ``softplus``.
        network: ``"mlp"``, or ``"conv"`` for flattened images of ``image_shape``:
            a :class:`~helmholtz.models.networks.ConvDecoder`, one stride-2 transposed
            convolution per entry of ``hidden`` (so height and width must be divisible
            by 2 ** len(hidden)).
        image_shape: (height, width) of the images, with ``network="conv"``.

    Fit it with ``method="vae"``, ``"wake-sleep"`` or ``"rws"``. The decoder's weights are the param ``"decoder"`` and
    the Gaussian noise scales the param ``"noise"``.
    """

    prior: Prior
    obs_dim: int
    likelihood: str = "gaussian"
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    network: str = "mlp"
    image_shape: tuple[int, int] | None = None

    has_local_latents = True

    def __post_init__(self):
        owner = type(self).__name__
        try:
            object.__setattr__(self, "prior", as_latent_prior(self.prior))
        except TypeError as error:
            raise TypeError(f"{owner}: {error}") from None
        if not (isinstance(self.obs_dim, int) and self.obs_dim >= 1):
            raise ValueError(f"{owner}: obs_dim must be a positive integer, got {self.obs_dim!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"{owner}: likelihood must be one of {LIKELIHOODS}, got {self.likelihood!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"{owner}: activation must be one of {tuple(ACTIVATIONS)}, got {self.activation!r}")
        _set_layer_widths(self, owner, "hidden")
        if self.network not in DECODERS:
            raise ValueError(f"{owner}: network must be one of {DECODERS}, got {self.network!r}")
        if self.network == "conv":
            self._check_image_shape(owner)
        elif self.image_shape is not None:
            raise ValueError(f"{owner}: image_shape is for network='conv'; an MLP decoder takes flat vectors")

    def _check_image_shape(self, owner: str) -> None:
        shape = tuple(self.image_shape or ())
        factor = 2 ** len(self.hidden)
        if not (len(shape) == 2 and all(isinstance(side, (int, np.integer)) and side >= 1 for side in shape)):
            raise ValueError(f"{owner}: network='conv' needs image_shape=(height, width), got {self.image_shape!r}")
        if shape[0] * shape[1] != self.obs_dim:
            raise ValueError(
                f"{owner}: image_shape {shape} holds {shape[0] * shape[1]} pixels, but obs_dim is {self.obs_dim}"
            )
        if shape[0] % factor or shape[1] % factor:
            raise ValueError(
                f"{owner}: with {len(self.hidden)} upsampling stages (hidden={self.hidden}) the image sides must be "
                f"divisible by {factor}, got {shape}; use fewer stages or pad the images"
            )
        object.__setattr__(self, "image_shape", tuple(int(side) for side in shape))

    @property
    def latent_dim(self) -> int:
        return self.prior.dim

    @property
    def name(self) -> str:
        return f"{type(self).__name__}({type(self.prior).__name__} prior, {self.likelihood} likelihood)"

    @property
    def decoder_input_dim(self) -> int:
        return self.latent_dim

    @property
    def _decoder_config(self) -> tuple:
        """The network class and its arguments, a hashable key of its cached skeleton."""
        if self.network == "conv":
            return (ConvDecoder, self.decoder_input_dim, self.image_shape, self.hidden, self.activation)
        return (MLP, (self.decoder_input_dim, *self.hidden, self.obs_dim), self.activation)

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
    def _likelihood_params(self) -> dict:
        params = {DECODER_PARAM: numpyro.param(DECODER_PARAM, self._initial_decoder_weights)}
        if self.likelihood == "gaussian":
            params[NOISE_PARAM] = numpyro.param(NOISE_PARAM, jnp.ones(self.obs_dim), constraint=constraints.positive)
        return params

    def program(self, x=None, *, num_points: int | None = None):
        params = self._likelihood_params()
        num_points = x.shape[0] if x is not None else (num_points or 1)
        with numpyro.plate(DATA_PLATE, num_points):
            z = numpyro.sample("z", self.prior.distribution())
            numpyro.sample(OBSERVED_SITE, self.conditional_distribution(params, z), obs=x)

    def _initial_decoder_weights(self, key):
        network, *config = self._decoder_config
        return eqx.filter(network(*config, key=key), eqx.is_inexact_array)

    def decoder(self, weights):
        """The decoder network with the given weights (the param ``"decoder"``).

        Args:
            weights: the decoder's array leaves, as the param ``"decoder"`` holds them.

        Returns:
            The Equinox decoder, from ``decoder_input_dim`` inputs to ``obs_dim`` outputs.
        """
        return eqx.combine(weights, skeleton(*self._decoder_config))

    def conditional_distribution(self, params: dict, z) -> dist.Distribution:
        """p(x_i | z_i) at the params ``{"decoder": weights, "noise": scales}`` (for a
        conditional model, ``z`` is the decoder's whole input: z_i and y_i joined).

        Args:
            params: the fitted params by name: ``"decoder"`` and, for a Gaussian likelihood, ``"noise"``.
            z: the decoder's inputs, shape ``(..., decoder_input_dim)``.

        Returns:
            A distribution with batch shape ``(...)`` and event shape ``(obs_dim,)``.
        """
        output = apply_to_vectors(self.decoder(params[DECODER_PARAM]), z)
        if self.likelihood == "gaussian":
            return dist.Normal(output, params[NOISE_PARAM]).to_event(1)
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=output).to_event(1)
        return dist.Poisson(jax.nn.softplus(output)).to_event(1)


@serializable
@dataclass(frozen=True)
class ConditionalLVM(NonlinearLVM):
    """A conditional VAE's generative model (Sohn et al., 2015): the decoder reads the
    latents z_i and covariates y_i (a one-hot class, a stimulus) that are given with
    each data point:

        z_i ~ prior,    x_i | z_i, y_i ~ likelihood with parameters decoder(z_i, y_i)

    Its data is :class:`~helmholtz.models.base.Conditioned`: ``Conditioned(x, y)`` (or
    the pair ``(x, y)``), ``y`` of shape (num_points, condition_dim). The amortised back
    ends encode q(z_i | x_i, y_i). ``fit.decode(z, y)`` draws the mean image of class
    y for style z; ``fit.sample_posterior_predictive`` replicates x for the observed y.
    Simulating without data (prior checks) uses y = 0.

    Args:
        condition_dim: the length of each covariate vector y_i.

    The other arguments are those of :class:`NonlinearLVM`.
    """

    condition_dim: int = 1

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.condition_dim, (int, np.integer)) and self.condition_dim >= 1):
            raise ValueError(f"ConditionalLVM: condition_dim must be a positive integer, got {self.condition_dim!r}")

    @property
    def decoder_input_dim(self) -> int:
        return self.latent_dim + self.condition_dim

    def validate_data(self, data):
        if not (isinstance(data, tuple) and len(data) == 2):
            raise ValueError(
                f"{self.name}: data must be Conditioned(x, y) (or the pair (x, y)): observations x of shape "
                f"(num_points, {self.obs_dim}) and covariates y of shape (num_points, {self.condition_dim}); "
                f"got {type(data).__name__}"
            )
        x = super().validate_data(data[0])
        y = check_finite_array(data[1], f"{self.name} covariates y", ndim=2, last_dim=self.condition_dim)
        if y.shape[0] != x.shape[0]:
            raise ValueError(
                f"{self.name}: x has {x.shape[0]} rows but y has {y.shape[0]}; each data point needs its covariates"
            )
        return Conditioned(x, y)

    def program(self, data=None, *, num_points: int | None = None):
        params = self._likelihood_params()
        x, y = (None, None) if data is None else data
        num_points = y.shape[0] if y is not None else (num_points or 1)
        y = jnp.zeros((num_points, self.condition_dim)) if y is None else y
        # Under a minibatch the plate yields the batch's row indices, which select the
        # covariates of the rows the observed site keeps.
        with numpyro.plate(DATA_PLATE, num_points) as rows:
            z = numpyro.sample("z", self.prior.distribution())
            inputs = jnp.concatenate([z, jnp.take(y, rows, axis=0)], axis=-1)
            numpyro.sample(OBSERVED_SITE, self.conditional_distribution(params, inputs), obs=x)


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

    Args:
        middle_dim: the length of each middle latent vector h_i.
        top_hidden: the widths of the hidden layers of the top network.

    The other arguments are those of :class:`NonlinearLVM`.

    Raises:
        ValueError: ``middle_dim`` is not a positive integer, or ``top_hidden`` holds an invalid width.
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
    def decoder_input_dim(self) -> int:
        return self.middle_dim

    @property
    def top_sizes(self) -> tuple[int, ...]:
        return (self.latent_dim, *self.top_hidden, self.middle_dim)

    def program(self, x=None, *, num_points: int | None = None):
        params = self._likelihood_params()
        top = network_param(TOP_DECODER_PARAM, MLP, self.top_sizes, self.activation)
        middle_noise = numpyro.param(MIDDLE_NOISE_PARAM, jnp.ones(self.middle_dim), constraint=constraints.positive)
        num_points = x.shape[0] if x is not None else (num_points or 1)
        with numpyro.plate(DATA_PLATE, num_points):
            z = numpyro.sample("z", self.prior.distribution())
            h = numpyro.sample("h", dist.Normal(apply_to_vectors(top, z), middle_noise).to_event(1))
            numpyro.sample(OBSERVED_SITE, self.conditional_distribution(params, h), obs=x)
