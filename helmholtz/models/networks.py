"""The neural networks of the zoo's decoders and encoders (Equinox modules), and how a
NumPyro program holds their weights as a ``param``.

A network is split into its weights (the param, what optimisers and checkpoints see) and
its structure (a skeleton, built once per configuration and cached), the pattern of
``numpyro.contrib.module.eqx_module``; unlike it, the starting weights are drawn from the
run's PRNG key, so that a fit's key also chooses the networks' initialisation.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro

ACTIVATIONS: dict[str, Callable] = {
    "tanh": jax.nn.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "softplus": jax.nn.softplus,
}


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


class ConvDecoder(eqx.Module):
    """A small convolutional decoder from one vector to one flattened image (the DCGAN
    generator's pattern, shrunk): a linear layer to ``channels[0]`` feature maps of
    (H, W) / 2**len(channels), then one stride-2 transposed convolution per entry of
    ``channels`` (4 x 4 kernels), each doubling the height and width, the last to a
    single channel of H x W. Sharing weights across positions, it needs far fewer
    parameters than an MLP for the same image and draws strokes rather than pixels."""

    linear: eqx.nn.Linear
    upsampling: tuple[eqx.nn.ConvTranspose2d, ...]
    base_shape: tuple[int, int, int] = eqx.field(static=True)
    activation: Callable = eqx.field(static=True)

    def __init__(
        self, input_dim: int, image_shape: tuple[int, int], channels: tuple[int, ...], activation: str = "relu", *, key
    ):
        factor = 2 ** len(channels)
        self.base_shape = (channels[0], image_shape[0] // factor, image_shape[1] // factor)
        key_linear, *keys = jax.random.split(key, len(channels) + 1)
        self.linear = eqx.nn.Linear(input_dim, math.prod(self.base_shape), key=key_linear)
        widths = (*channels, 1)
        self.upsampling = tuple(
            eqx.nn.ConvTranspose2d(n_in, n_out, kernel_size=4, stride=2, padding=1, key=k)
            for n_in, n_out, k in zip(widths[:-1], widths[1:], keys)
        )
        self.activation = ACTIVATIONS[activation]

    def __call__(self, z):
        maps = self.activation(self.linear(z)).reshape(self.base_shape)
        for layer in self.upsampling[:-1]:
            maps = self.activation(layer(maps))
        return self.upsampling[-1](maps).reshape(-1)


@functools.cache
def skeleton(network: Callable, *config) -> eqx.Module:
    """The non-array part (the structure) of ``network(*config, key=...)``, to combine
    with weights. Built eagerly even when first asked for inside a traced function, so
    no tracer is cached."""
    with jax.ensure_compile_time_eval():
        module = network(*config, key=jax.random.PRNGKey(0))
    return eqx.partition(module, eqx.is_inexact_array)[1]


def network_param(name: str, network: Callable, *config) -> eqx.Module:
    """The module ``network(*config)`` whose weights are the NumPyro param ``name``,
    initialised from the run's PRNG key."""

    def initial_weights(key):
        return eqx.filter(network(*config, key=key), eqx.is_inexact_array)

    return eqx.combine(numpyro.param(name, initial_weights), skeleton(network, *config))


def apply_to_vectors(network: Callable, inputs: jnp.ndarray) -> jnp.ndarray:
    """``network`` applied to each vector along the last axis of ``inputs`` (any batch shape)."""
    flat = inputs.reshape((-1, inputs.shape[-1]))
    outputs = jax.vmap(network)(flat)
    return outputs.reshape(inputs.shape[:-1] + outputs.shape[-1:])
