"""
Motion illusions as optimal percepts
====================================

Why does a grating look slower when its contrast is low, and why does a thin rhombus that
moves horizontally look, at low contrast, as if it slid diagonally? Weiss, Simoncelli &
Adelson (2002) showed that both are what an ideal observer should see if its measurements
of brightness change are noisy and it believes that slow motions are more common than
fast ones. The observer of :mod:`helmholtz.perception.motion` combines a Gaussian
slow-speed prior N(0, sp^2 I) over the velocity with the brightness-constancy likelihood
Ix vx + Iy vy + It ~ N(0, sigma^2) at every pixel; both are Gaussian, so its percept, the
posterior mean, is exact linear algebra (no sampler: the back end is the closed form,
:func:`~helmholtz.perception.motion.posterior_velocity`). The noise sigma is the same for
every stimulus, while the gradients scale with contrast: at low contrast the likelihood
widens and the prior takes over.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

from helmholtz.perception.motion import (
    NOISE_SIGMA,
    PRIOR_SIGMA,
    drifting_grating,
    gradients,
    observer_velocity_1d,
    posterior_velocity,
    rhombus,
)

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
CONTRASTS = np.geomspace(0.02, 1.0, 6 if QUICK else 25)
THIN_DEG, THICK_DEG = 20.0, 80.0
print(f"prior sd sp = {PRIOR_SIGMA} pixel/frame, noise sd sigma = {NOISE_SIGMA} per pixel")

# %%
# The stimuli
# -----------
# Both rhombi move right at one pixel per frame. Two of their sides are horizontal and
# slide along themselves, so only the slanted sides and the corners carry motion. In the
# thin rhombus the two edge orientations (0 and 20 degrees) are close, so the velocities
# consistent with each edge lie on two nearly parallel lines; in the thick one (0 and 80
# degrees) the lines cross steeply and pin the velocity down.

movies = {
    f"thin ({THIN_DEG:g} deg)": lambda contrast: rhombus(angle_deg=THIN_DEG, contrast=contrast),
    f"thick ({THICK_DEG:g} deg)": lambda contrast: rhombus(angle_deg=THICK_DEG, contrast=contrast),
}
figure, axes = plt.subplots(2, 3, figsize=(8, 5.5))
for row, (name, make) in zip(axes, movies.items()):
    movie = np.asarray(make(1.0))
    for axis, frame in zip(row, (0, movie.shape[0] // 2, movie.shape[0] - 1)):
        axis.imshow(movie[frame], cmap="gray", vmin=0, vmax=1)
        axis.axvline((movie.shape[2] - 1) / 2, color="C3", lw=0.8)
        axis.set(title=f"{name}, frame {frame}", xticks=[], yticks=[])
figure.suptitle("the rhombus movies at full contrast (red line: the image centre)")
figure.tight_layout()

# %%
# Perceived direction and speed against contrast
# ----------------------------------------------
# At high contrast both rhombi are seen moving horizontally, at nearly their true speed.
# As contrast falls the thin rhombus's percept swings down toward -70 degrees, the
# normal of its slanted edges (the vector average of the edges' normal motions: the
# horizontal edges contribute none); the thick one stays near horizontal and only slows.

percepts = {
    name: np.array([np.asarray(posterior_velocity(make(c)).mean) for c in CONTRASTS]) for name, make in movies.items()
}
figure, (ax_direction, ax_speed) = plt.subplots(1, 2, figsize=(10, 3.8))
for name, velocity in percepts.items():
    ax_direction.semilogx(CONTRASTS, np.degrees(np.arctan2(velocity[:, 1], velocity[:, 0])), "o-", ms=3, label=name)
    ax_speed.semilogx(CONTRASTS, np.hypot(velocity[:, 0], velocity[:, 1]), "o-", ms=3, label=name)
ax_direction.axhline(0, color="k", lw=0.8, label="true direction")
ax_direction.axhline(-(90 - THIN_DEG), color="C0", ls=":", label="thin: edge-normal direction")
ax_direction.set(xlabel="contrast", ylabel="perceived direction (deg)", title="direction")
ax_speed.axhline(1.0, color="k", lw=0.8, label="true speed")
ax_speed.set(xlabel="contrast", ylabel="perceived speed (pixel / frame)", title="speed")
for axis in (ax_direction, ax_speed):
    axis.legend(fontsize=8)
figure.tight_layout()

for name, velocity in percepts.items():
    low, high = velocity[0], velocity[-1]
    print(
        f"{name}: contrast {CONTRASTS[0]:.2f} -> {np.degrees(np.arctan2(low[1], low[0])):.1f} deg, "
        f"contrast {CONTRASTS[-1]:.2f} -> {np.degrees(np.arctan2(high[1], high[0])):.1f} deg"
    )

# %%
# A grating looks slower at low contrast
# --------------------------------------
# For vertical bars the problem is one-dimensional: the likelihood of vx is a Gaussian of
# width sc, with sc^2 = sigma^2 / sum Ix^2, so the percept is the textbook shrinkage
# v sp^2 / (sp^2 + sc^2) (:func:`~helmholtz.perception.motion.observer_velocity_1d`).
# The 2-D computation on the movie and the 1-D formula agree.

grating_contrasts = np.geomspace(0.001, 1.0, 8 if QUICK else 40)
perceived, closed_form = [], []
for contrast in grating_contrasts:
    movie = drifting_grating(velocity=(1.0, 0.0), contrast=contrast)
    perceived.append(float(posterior_velocity(movie).mean[0]))
    likelihood_sigma = NOISE_SIGMA / np.sqrt(float(np.sum(np.asarray(gradients(movie).x, dtype=float) ** 2)))
    closed_form.append(float(observer_velocity_1d(1.0, likelihood_sigma, PRIOR_SIGMA)))

figure, (ax_grating, ax_speed) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw=dict(width_ratios=[1, 2]))
ax_grating.imshow(np.asarray(drifting_grating(contrast=0.3))[0], cmap="gray", vmin=0, vmax=1)
ax_grating.set(title="grating, contrast 0.3", xticks=[], yticks=[])
ax_speed.semilogx(grating_contrasts, perceived, "o", ms=4, label="posterior mean from the movie")
ax_speed.semilogx(grating_contrasts, closed_form, "-", label="v sp^2 / (sp^2 + sc^2)")
ax_speed.axhline(1.0, color="k", lw=0.8, label="true speed")
ax_speed.set(
    xlabel="contrast", ylabel="perceived speed (pixel / frame)", title="Thompson's effect: slower at low contrast"
)
ax_speed.legend(fontsize=8)
figure.tight_layout()
plt.show()
