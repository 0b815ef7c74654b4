"""Motion illusions as optimal percepts (Weiss, Simoncelli & Adelson, 2002, Nat. Neurosci. 5:598).

An observer that estimates the velocity v = (vx, vy) of an image patch from noisy
brightness changes, under a prior that slow motions are more likely than fast ones:

    prior       v ~ N(0, sp^2 I)
    likelihood  Ix vx + Iy vy + It ~ N(0, sigma^2) at every pixel and frame
                (brightness constancy: a pattern that moves keeps its brightness)

Both are Gaussian in v, so the posterior is too, in closed form
(:func:`posterior_velocity`). The noise sigma does not depend on the stimulus, while the
gradients scale with its contrast: a low-contrast stimulus gives a broad likelihood and
the prior pulls the percept toward slow speeds. That one fact explains why low-contrast
gratings look slower (Thompson, 1982) and why a thin rhombus moving horizontally looks, at
low contrast, as if it moved diagonally, along its edge normals (Weiss & Adelson).

Stimuli are movies shaped ``(frames, height, width)``, luminance in [0, 1] on a mid-grey 0.5
background. Coordinates: x to the right, y upward (row 0 is the top of the image),
velocities in pixels per frame, angles in degrees counter-clockwise from the x axis. The
movie is centred on its middle frame.

Default prior and noise (:data:`PRIOR_SIGMA`, :data:`NOISE_SIGMA`) were tuned once, on the
default 64 x 64 x 8 rhombus moving at 1 pixel per frame, so that contrast 1 is the
"high-contrast" regime and contrast 0.1 the "low-contrast" one; the paper fits one such
ratio per observer. The percept (the posterior mean) depends on the two only through
sigma / sp; its uncertainty depends on both.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.stats import norm

PRIOR_SIGMA = 1.0  # sp, pixels per frame
NOISE_SIGMA = 0.3  # sigma, luminance units per frame, per pixel


# -- stimuli ------------------------------------------------------------------------------
def _grid(size: int, frames: int):
    """Times (frames, 1, 1) and positions x, y (1, size, size), all centred on zero."""
    if size < 3 or frames < 3:  # size and frames are static under jit, so this runs at tracing
        raise ValueError(f"a movie needs size >= 3 and frames >= 3 (for central differences), got {size} and {frames}")
    offsets = jnp.arange(size) - (size - 1) / 2
    y, x = jnp.meshgrid(-offsets, offsets, indexing="ij")
    times = jnp.arange(frames) - (frames - 1) / 2
    return times[:, None, None], x[None], y[None]


def _check_contrast(contrast, upper=1.0):
    if not 0.0 <= float(contrast) <= upper:
        raise ValueError(f"contrast must lie in [0, {upper:g}] so luminance stays in [0, 1], got {float(contrast)}")


# Compiled whole, once per movie shape: far quicker than compiling each operation eagerly.
@partial(jax.jit, static_argnames=("size", "frames"))
def _sinusoid(size, frames, velocity, wavelength, orientation):
    """sin of a grating with normal ``orientation`` (deg) moving as a whole with ``velocity``."""
    times, x, y = _grid(size, frames)
    angle = jnp.deg2rad(orientation)
    along_normal = (x - velocity[0] * times) * jnp.cos(angle) + (y - velocity[1] * times) * jnp.sin(angle)
    return jnp.sin(2 * jnp.pi * along_normal / wavelength)


def drifting_grating(size=64, frames=8, velocity=(1.0, 0.0), wavelength=16.0, orientation=0.0, contrast=1.0):
    """A sinusoidal grating moving with ``velocity`` (vx, vy), Michelson contrast ``contrast``.

    ``orientation`` is the direction of the grating's normal: 0 gives vertical bars. Only
    the velocity's component along the normal changes the movie (the aperture problem).

    Args:
        size: the movie's height and width (pixels, >= 3).
        frames: the number of frames (>= 3).
        velocity: (vx, vy), pixels per frame.
        wavelength: the grating's period (pixels).
        orientation: the direction of the grating's normal (degrees).
        contrast: the Michelson contrast, in [0, 1].

    Returns:
        The movie, luminance in [0, 1], shape ``(frames, size, size)``.

    Raises:
        ValueError: the contrast is out of [0, 1], or the movie is too small.
    """
    _check_contrast(contrast)
    return 0.5 + 0.5 * contrast * _sinusoid(size, frames, velocity, wavelength, orientation)


def plaid(size=64, frames=8, velocity=(1.0, 0.0), wavelength=16.0, orientations=(45.0, -45.0), contrasts=(0.5, 0.5)):
    """Two gratings added, moving together with ``velocity`` (a coherent plaid).

    The contrasts add, so their sum must not exceed 1.

    Args:
        size: the movie's height and width (pixels, >= 3).
        frames: the number of frames (>= 3).
        velocity: (vx, vy), pixels per frame.
        wavelength: the gratings' period (pixels).
        orientations: the direction of each grating's normal (degrees).
        contrasts: each grating's contrast.

    Returns:
        The movie, luminance in [0, 1], shape ``(frames, size, size)``.

    Raises:
        ValueError: the contrasts sum to more than 1 (or less than 0), or the movie is too small.
    """
    _check_contrast(sum(contrasts))
    modulation = sum(
        contrast * _sinusoid(size, frames, velocity, wavelength, orientation)
        for contrast, orientation in zip(contrasts, orientations)
    )
    return 0.5 + 0.5 * modulation


def rhombus(size=64, frames=8, velocity=(1.0, 0.0), angle_deg=20.0, contrast=1.0, blur=1.5, side=None):
    """A bright rhombus on grey, moving with ``velocity``: Weiss & Adelson's illusion.

    Two of its sides are horizontal; the other two meet them at the acute angle
    ``angle_deg``. A small angle gives a thin rhombus, whose two edge orientations are
    close, so the constraint lines they put on the velocity are nearly parallel and the
    prior decides where along them the percept falls; near 90 degrees, a thick one
    (almost a square). Weiss et al. drew their rhombi tilted, with both pairs of sides
    oblique; what drives the illusion is the same, the angle between the two edge
    orientations. ``side`` is the side length in pixels (default 0.4 ``size``);
    ``blur`` the sd, in pixels, of the Gaussian blur of its edges, which keeps the
    brightness gradients smooth enough for finite differences. The luminance is
    0.5 (1 + ``contrast``) inside, 0.5 outside.

    Args:
        size: the movie's height and width (pixels, >= 3).
        frames: the number of frames (>= 3).
        velocity: (vx, vy), pixels per frame.
        angle_deg: the acute angle of the rhombus (degrees, in (0, 90]).
        contrast: the contrast, in [0, 1].
        blur: the sd of the blur of its edges (pixels).
        side: the side length (pixels; default 0.4 ``size``).

    Returns:
        The movie, luminance in [0, 1], shape ``(frames, size, size)``.

    Raises:
        ValueError: the contrast or the angle is out of range, or the movie is too small.
    """
    _check_contrast(contrast)
    if not 0.0 < angle_deg <= 90.0:
        raise ValueError(f"angle_deg must lie in (0, 90], got {angle_deg}")
    return _rhombus(size, frames, velocity, angle_deg, contrast, blur, 0.4 * size if side is None else side)


@partial(jax.jit, static_argnames=("size", "frames"))
def _rhombus(size, frames, velocity, angle_deg, contrast, blur, side):
    times, x, y = _grid(size, frames)
    x, y = x - velocity[0] * times, y - velocity[1] * times
    angle = jnp.deg2rad(angle_deg)
    half_height = 0.5 * side * jnp.sin(angle)
    # A point is inside when |y| < half_height and |x - y cot(angle)| < side / 2; the
    # distance to a slanted side is its offset along x times sin(angle).
    along_sides = x - y / jnp.tan(angle)
    inside = (
        norm.cdf((half_height - y) / blur)
        * norm.cdf((half_height + y) / blur)
        * norm.cdf((side / 2 - along_sides) * jnp.sin(angle) / blur)
        * norm.cdf((side / 2 + along_sides) * jnp.sin(angle) / blur)
    )
    return 0.5 + 0.5 * contrast * inside


# -- the observer ---------------------------------------------------------------------------
class Gradients(NamedTuple):
    """Brightness derivatives by central differences, on the movie's interior: where every neighbour exists.

    Args:
        x: dI/dx (x to the right), shape ``(frames - 2, height - 2, width - 2)``.
        y: dI/dy (y upward), the same shape.
        t: dI/dt (per frame), the same shape.
    """

    x: jnp.ndarray  # dI/dx, x to the right
    y: jnp.ndarray  # dI/dy, y upward
    t: jnp.ndarray  # dI/dt, per frame


def gradients(movie) -> Gradients:
    """Spatial and temporal brightness derivatives of ``movie``.

    Central differences in space and time share one error: for a pattern moving by
    exactly one pixel per frame along x, It = -vx Ix holds exactly.

    Args:
        movie: luminance, shape ``(frames, height, width)``, each at least 3.

    Returns:
        The :class:`Gradients`, each shape ``(frames - 2, height - 2, width - 2)``.

    Raises:
        ValueError: the movie is not 3-D with every size at least 3.
    """
    movie = _as_movie(movie)
    return Gradients(
        x=(movie[1:-1, 1:-1, 2:] - movie[1:-1, 1:-1, :-2]) / 2,
        y=(movie[1:-1, :-2, 1:-1] - movie[1:-1, 2:, 1:-1]) / 2,  # row above minus row below
        t=(movie[2:, 1:-1, 1:-1] - movie[:-2, 1:-1, 1:-1]) / 2,
    )


def _as_movie(movie):
    movie = jnp.asarray(movie, dtype=float)
    if movie.ndim != 3 or min(movie.shape) < 3:
        raise ValueError(f"movie must be shaped (frames, height, width), each >= 3, got {movie.shape}")
    return movie


class VelocityPosterior(NamedTuple):
    """The Gaussian posterior p(v | movie) over the velocity v = (vx, vy).

    Args:
        mean: the percept: the posterior mean (= MAP), pixels per frame, shape ``(2,)``.
        covariance: the posterior covariance, shape ``(2, 2)``.
    """

    mean: jnp.ndarray  # (2,) the percept: posterior mean (= MAP), pixels per frame
    covariance: jnp.ndarray  # (2, 2)


def posterior_velocity(movie, *, prior_sigma=PRIOR_SIGMA, noise_sigma=NOISE_SIGMA, window=None) -> VelocityPosterior:
    """The slow-speed observer's posterior over the velocity of ``movie``.

    Posterior precision P = A / sigma^2 + I / sp^2 and mean v = -P^{-1} b / sigma^2, with
    A = sum [[Ix Ix, Ix Iy], [Ix Iy, Iy Iy]] and b = sum [Ix It, Iy It] over every pixel
    and frame. ``window`` (height, width) or (frames, height, width) weights each pixel's
    likelihood term, e.g. a 0/1 mask restricting the estimate to a region; its border
    pixels (and first and last frames) are dropped with the movie's.
    ``noise_sigma`` is fixed, whatever the stimulus: contrast enters through A and b only.

    Args:
        movie: luminance, shape ``(frames, height, width)``, each at least 3.
        prior_sigma: sp, the sd of the slow-speed prior (pixels per frame).
        noise_sigma: sigma, the sd of the brightness-constancy noise.
        window: weights of each pixel's likelihood term, shape ``(height, width)`` or
            ``(frames, height, width)``; None weighs every pixel 1.

    Returns:
        A :class:`VelocityPosterior`.

    Raises:
        ValueError: the movie is not 3-D with every size at least 3.
    """
    movie = _as_movie(movie)
    weight = jnp.ones(()) if window is None else jnp.asarray(window, dtype=float)
    return _posterior(movie, jnp.broadcast_to(weight, movie.shape), prior_sigma, noise_sigma)


@jax.jit
def _posterior(movie, weight, prior_sigma, noise_sigma):
    gradient = gradients(movie)
    spatial = jnp.stack([gradient.x, gradient.y])
    weight = weight[1:-1, 1:-1, 1:-1]
    structure = jnp.einsum("i...,j...,...->ij", spatial, spatial, weight)  # A
    change = jnp.einsum("i...,...,...->i", spatial, gradient.t, weight)  # b
    precision = structure / noise_sigma**2 + jnp.eye(2) / prior_sigma**2
    covariance = jnp.linalg.inv(precision)
    return VelocityPosterior(mean=-covariance @ change / noise_sigma**2, covariance=covariance)


def observer_velocity_1d(velocity, likelihood_sigma, prior_sigma=PRIOR_SIGMA):
    """The 1-D slow-speed observer's percept of ``velocity``: v sp^2 / (sp^2 + sc^2).

    The posterior mean under a N(0, sp^2) prior and a Gaussian likelihood of width
    ``likelihood_sigma`` (sc) centred on the true velocity; sc grows as contrast falls.

    Args:
        velocity: the true velocities, any shape (the arguments broadcast together).
        likelihood_sigma: sc, the likelihood's width.
        prior_sigma: sp, the prior's sd.

    Returns:
        The percepts, the broadcast shape.
    """
    prior_variance = jnp.square(prior_sigma)
    return velocity * prior_variance / (prior_variance + jnp.square(likelihood_sigma))


__all__ = [
    "Gradients",
    "NOISE_SIGMA",
    "PRIOR_SIGMA",
    "VelocityPosterior",
    "drifting_grating",
    "gradients",
    "observer_velocity_1d",
    "plaid",
    "posterior_velocity",
    "rhombus",
]
