"""
Simulation-based inference on the sbibm benchmark tasks
=======================================================

When a model can be simulated but its likelihood cannot be written down, simulation-based
inference learns the posterior from simulations. How good is that posterior? The
simulation-based inference benchmark (sbibm; Lueckmann et al., 2021) answers with tasks
whose reference posteriors are known. Here we declare two of them as simulator models
(:class:`helmholtz.models.TwoMoons`, :class:`helmholtz.models.SLCP`), fit them with
neural posterior estimation (``method="npe"``, sbi's NPE), and score the draws with the
benchmark's classifier two-sample test (C2ST: 0.5 means indistinguishable from the
reference, 1.0 fully separable) against the published figures.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.models.simulators import load_task

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
NUM_SIMULATIONS = 500 if QUICK else 10_000
NUM_DRAWS = 300 if QUICK else 2_000
# sbibm's published NPE C2ST at 10^3 and 10^4 simulations (mean over 10 observations).
PUBLISHED = {
    "two_moons": {1_000: 0.725, 10_000: 0.606},
    "slcp": {1_000: 0.975, 10_000: 0.901},
}  # quick mode: 500 (none)

# %%
# Fit each task once, score one observation
# -----------------------------------------
# :func:`~helmholtz.models.simulators.load_task` returns our simulator (written from the
# task's definition), the benchmark's 10 observations and its reference draws. NPE is
# amortised: the trained network gives the posterior of any observation.

results = {}
for name in ["two_moons", "slcp"]:
    model, observations, true_parameters, reference = load_task(name)
    fit = hz.fit(model, observations[0], method="npe", key=0, num_simulations=NUM_SIMULATIONS, progress_bar=False)
    draws = np.asarray(model.theta_of(fit.sample(1, NUM_DRAWS)))
    score = hz.diagnostics.c2st(draws, reference[0][:NUM_DRAWS])
    results[name] = (draws, reference[0][:NUM_DRAWS], true_parameters[0], score)
    published = PUBLISHED[name].get(NUM_SIMULATIONS)
    print(
        f"{name}: C2ST {score:.3f} with {NUM_SIMULATIONS} simulations"
        + (f" (published NPE: {published:.3f})" if published else "")
    )

# %%
# The posteriors against the reference
# ------------------------------------
# Two moons has a crescent-shaped posterior with two modes; SLCP's posterior over its
# first two parameters (the mean of a 2-d Gaussian) has four modes, because the sign of
# theta_3 and theta_4 cannot be told from the data. NPE has to find all of them.

figure, axes = plt.subplots(1, 2, figsize=(9, 4))
for axis, (name, (draws, reference_draws, truth, score)) in zip(axes, results.items()):
    axis.scatter(*reference_draws[:, :2].T, s=2, alpha=0.3, color="0.5", label="reference (sbibm)")
    axis.scatter(*draws[:, :2].T, s=2, alpha=0.3, color="C0", label="npe")
    axis.scatter(*truth[:2], marker="x", color="C3", s=60, label="true parameters")
    axis.set(title=f"{name}: C2ST {score:.2f}", xlabel="theta_1", ylabel="theta_2")
axes[0].legend(loc="lower left", fontsize=8, markerscale=4)
figure.tight_layout()
plt.show()
