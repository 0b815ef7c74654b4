"""The slow-speed motion observer (Weiss, Simoncelli & Adelson, 2002): its stimuli move as
declared, its posterior is Bayes' rule, and it shows the paper's illusions."""

from __future__ import annotations

import numpy as np
import pytest

from helmholtz.perception.motion import (
    NOISE_SIGMA,
    PRIOR_SIGMA,
    drifting_grating,
    gradients,
    observer_velocity_1d,
    plaid,
    posterior_velocity,
    rhombus,
)

LOW_CONTRAST, HIGH_CONTRAST = 0.1, 1.0
THIN_DEG, THICK_DEG = 20.0, 80.0


def _direction_deg(velocity):
    return float(np.degrees(np.arctan2(velocity[1], velocity[0])))


def _centroid(frame):
    """Centre of the luminance above the grey background, x right and y up."""
    excess = np.asarray(frame) - 0.5
    rows, columns = np.indices(excess.shape)
    offset = (excess.shape[0] - 1) / 2
    return np.array([((columns - offset) * excess).sum(), ((offset - rows) * excess).sum()]) / excess.sum()


def test_stimuli_are_grey_backed_movies_in_the_unit_range():
    for movie in (drifting_grating(size=32, frames=5), plaid(size=32, frames=5), rhombus(size=32, frames=5)):
        movie = np.asarray(movie)
        assert movie.shape == (5, 32, 32)
        assert movie.min() >= 0.0 and movie.max() <= 1.0
    assert np.asarray(rhombus(size=32, frames=5))[:, 0, 0] == pytest.approx(0.5)  # the corners are background
    assert np.asarray(drifting_grating(size=32, frames=5, contrast=0.0)) == pytest.approx(0.5)


def test_rhombus_moves_with_its_declared_velocity():
    """Ground truth: the definition of velocity, read off the shape's centroid (x right, y up)."""
    movie = rhombus(size=48, frames=5, velocity=(1.0, 0.5), angle_deg=45.0)
    centroids = np.array([_centroid(frame) for frame in movie])
    np.testing.assert_allclose(np.diff(centroids, axis=0), [[1.0, 0.5]] * 4, atol=1e-3)


def test_stimuli_refuse_contrast_that_leaves_the_unit_range():
    with pytest.raises(ValueError, match=r"contrast must lie in \[0, 1\]"):
        rhombus(contrast=1.5)
    with pytest.raises(ValueError, match=r"contrast must lie in \[0, 1\]"):
        plaid(contrasts=(0.7, 0.7))


def test_posterior_is_bayes_rule_evaluated_on_a_grid():
    """Ground truth: prior x likelihood of every pixel's brightness-constancy residual,
    normalised numerically over a grid of velocities, has the closed form's mean and
    covariance."""
    movie = rhombus(size=16, frames=4, velocity=(0.7, 0.2), angle_deg=35.0, contrast=0.3, side=7.0, blur=1.0)
    gradient = [np.asarray(g, dtype=float).ravel() for g in gradients(movie)]
    axis = np.linspace(-5.0, 5.0, 201)
    vx, vy = np.meshgrid(axis, axis, indexing="ij")
    residuals = gradient[0] * vx[..., None] + gradient[1] * vy[..., None] + gradient[2]
    log_posterior = -0.5 * (residuals**2).sum(-1) / NOISE_SIGMA**2 - 0.5 * (vx**2 + vy**2) / PRIOR_SIGMA**2
    weights = np.exp(log_posterior - log_posterior.max())
    weights /= weights.sum()
    mean = np.array([(weights * vx).sum(), (weights * vy).sum()])
    centred = np.stack([vx - mean[0], vy - mean[1]])
    covariance = np.einsum("iab,jab,ab->ij", centred, centred, weights)
    posterior = posterior_velocity(movie)
    np.testing.assert_allclose(posterior.mean, mean, atol=2e-3)
    np.testing.assert_allclose(posterior.covariance, covariance, atol=2e-3)


@pytest.mark.parametrize("contrast", [0.003, 0.01, 0.03, 0.3])
@pytest.mark.parametrize("speed", [1.0, 0.5])
def test_vertical_grating_percept_is_the_one_dimensional_closed_form(contrast, speed):
    """Ground truth: the 1-D Gaussian observer, v sp^2 / (sp^2 + sc^2). For vertical bars
    Iy = 0, so the 2-D posterior factorises and vx sees one Gaussian likelihood centred on
    the gradients' least-squares velocity with sc^2 = sigma^2 / sum Ix^2. At one pixel per
    frame that centre is exactly the true speed (central differences in x and t then
    agree); at half a pixel it is within the finite differences' error."""
    movie = drifting_grating(velocity=(speed, 0.0), contrast=contrast)
    gradient = gradients(movie)
    energy = float(np.sum(np.asarray(gradient.x, dtype=float) ** 2))
    measured = -float(np.sum(np.asarray(gradient.x) * np.asarray(gradient.t))) / energy
    assert measured == pytest.approx(speed, rel=1e-4 if speed == 1.0 else 0.03)
    likelihood_sigma = NOISE_SIGMA / np.sqrt(energy)
    estimate = np.asarray(posterior_velocity(movie).mean)
    expected = measured * PRIOR_SIGMA**2 / (PRIOR_SIGMA**2 + likelihood_sigma**2)
    assert float(observer_velocity_1d(measured, likelihood_sigma, PRIOR_SIGMA)) == pytest.approx(expected, rel=1e-6)
    assert estimate[0] == pytest.approx(expected, rel=1e-3)
    assert estimate[1] == pytest.approx(0.0, abs=1e-6)


def test_one_dimensional_observer_matches_a_numerical_posterior():
    """Ground truth: the posterior mean of N(0, sp^2) x N(v; v_true, sc^2), integrated
    numerically on a grid."""
    grid = np.linspace(-10.0, 10.0, 20001)
    for velocity, likelihood_sigma, prior_sigma in [(2.0, 1.0, 1.5), (1.0, 3.0, 0.5), (-0.5, 0.2, 2.0)]:
        log_posterior = -0.5 * ((grid - velocity) / likelihood_sigma) ** 2 - 0.5 * (grid / prior_sigma) ** 2
        weights = np.exp(log_posterior - log_posterior.max())
        numerical = (weights * grid).sum() / weights.sum()
        assert float(observer_velocity_1d(velocity, likelihood_sigma, prior_sigma)) == pytest.approx(
            numerical, abs=1e-6
        )


def test_perceived_speed_falls_with_contrast():
    """Ground truth: Thompson (1982), reproduced by the paper: lower contrast, slower
    percept, monotonically, approaching the true speed at high contrast."""
    contrasts = [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
    speeds = [float(np.hypot(*posterior_velocity(drifting_grating(contrast=c)).mean)) for c in contrasts]
    assert all(slow < fast for slow, fast in zip(speeds, speeds[1:])), speeds
    assert speeds[0] < 0.2 and speeds[-1] == pytest.approx(1.0, abs=0.01)


def test_symmetric_plaid_is_seen_moving_in_its_true_direction_at_every_contrast():
    """Ground truth: for two gratings at +-45 deg to the motion both the intersection of
    constraints and the vector average point along the motion, so only speed changes."""
    for contrast in (0.02, 0.2, 1.0):
        estimate = np.asarray(posterior_velocity(plaid(contrasts=(contrast / 2, contrast / 2))).mean)
        assert abs(_direction_deg(estimate)) < 0.5


def test_upward_motion_is_positive_y():
    estimate = np.asarray(posterior_velocity(drifting_grating(velocity=(0.0, 1.0), orientation=90.0)).mean)
    assert estimate[1] > 0.9 and abs(estimate[0]) < 1e-6


def test_thin_rhombus_is_seen_moving_diagonally_at_low_contrast_only():
    """Ground truth: the paper's rhombus illusion (after Weiss & Adelson, 1998). A thin
    rhombus moving horizontally looks horizontal at high contrast; at low contrast its
    percept turns toward the vector average of its edges' normal velocities, which here is
    -(90 - 20) = -70 deg (its horizontal edges have no normal motion)."""
    low = np.asarray(posterior_velocity(rhombus(angle_deg=THIN_DEG, contrast=LOW_CONTRAST)).mean)
    high = np.asarray(posterior_velocity(rhombus(angle_deg=THIN_DEG, contrast=HIGH_CONTRAST)).mean)
    assert -(90.0 - THIN_DEG) < _direction_deg(low) < -20.0
    assert abs(_direction_deg(high)) < 5.0


def test_thick_rhombus_is_seen_moving_horizontally_at_both_contrasts():
    """Ground truth: the paper's finding that a fat rhombus, whose edge constraints cross
    at a wide angle, is seen moving in its true direction whatever the contrast (only its
    speed falls)."""
    low = np.asarray(posterior_velocity(rhombus(angle_deg=THICK_DEG, contrast=LOW_CONTRAST)).mean)
    high = np.asarray(posterior_velocity(rhombus(angle_deg=THICK_DEG, contrast=HIGH_CONTRAST)).mean)
    assert abs(_direction_deg(low)) < 10.0
    assert abs(_direction_deg(high)) < 5.0
    assert np.hypot(*low) < np.hypot(*high)


def test_window_restricts_the_estimate_to_its_region():
    """Ground truth: a movie holding two rhombi moving in opposite directions; a mask over
    one must give that one's velocity."""
    right = rhombus(size=64, frames=6, velocity=(1.0, 0.0), angle_deg=60.0, side=14.0)
    left = rhombus(size=64, frames=6, velocity=(-1.0, 0.0), angle_deg=60.0, side=14.0)
    movie = 0.5 + (np.roll(np.asarray(right), -16, axis=2) - 0.5) + (np.roll(np.asarray(left), 16, axis=2) - 0.5)
    mask = np.zeros((64, 64))
    mask[:, 32:] = 1.0
    assert posterior_velocity(movie, window=mask).mean[0] < -0.8
    assert posterior_velocity(movie, window=1.0 - mask).mean[0] > 0.8
