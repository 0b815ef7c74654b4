"""
Cognitive tomography: a prior read from odd-one-out choices
===========================================================

Can we see what a person believes about a stimulus space, a face space say, from nothing
but their answers to "which of these three is the odd one out"? Houlsby et al. (2013)
showed that we can: an observer that explains stimuli by latent causes drawn from its
subjective prior judges two stimuli alike when one shared cause explains them better than
two, and how much better depends on the prior. Here the observer
:class:`helmholtz.perception.CognitiveTomography` holds a subjective prior that is a mixture
of three Gaussians over a 2-D space; we simulate its choices on random triplets, fit the
prior back by maximum a posteriori estimation (``method="svi"`` with a delta guide), and
compare it with the true prior and with what a Gaussian-prior observer infers from the same
choices, as the number of trials grows.
"""

import os

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.perception import CognitiveTomography
from helmholtz.perception.tomography import mixture_log_density, mixture_mmd, random_triplets

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
TRIAL_COUNTS = (200, 600) if QUICK else (250, 1000, 4000)
HELD_OUT = 300 if QUICK else 1000
SVI = dict(
    method="svi",
    guide="delta",
    init="uniform",
    num_steps=300 if QUICK else 2000,
    learning_rate=0.05,
    progress_bar=False,
)
truth = {
    "weights": jnp.array([0.4, 0.35, 0.25]),
    "means": jnp.array([[-1.5, -1.0], [1.5, -1.0], [0.0, 1.5]]),
    "scales": jnp.array([[0.4, 0.4], [0.6, 0.3], [0.3, 0.6]]),
    "correlations": jnp.stack([jnp.eye(2)] * 3),
}
largest = TRIAL_COUNTS[-1]
triplets = random_triplets(0, largest + HELD_OUT)  # uniform over [-3, 3]^2
observer = CognitiveTomography(triplets)  # sensory noise 0.5, beta 1, lapse 0.05
choices = np.asarray(observer.simulate(1, truth))
true_prior = observer.mixture(truth)
held_out = slice(largest, largest + HELD_OUT)

# %%
# Fitting the prior as the trials accumulate
# ------------------------------------------
# For each trial count, the mixture observer and the Gaussian-prior observer are fit to the
# first trials; each is scored by the maximum mean discrepancy (MMD, closed form for
# Gaussian mixtures, kernel length 0.5) between its prior and the true one, and by the
# log-likelihood per trial of choices it was not fit to (chance: log 1/3 = -1.10).
fitted = {}
print(
    f"true prior: held-out log-likelihood {observer.trial_log_likelihood(truth, choices[held_out], triplets[held_out]).mean():.3f}"
)
for n in TRIAL_COUNTS:
    for k in (3, 1):
        model = CognitiveTomography(triplets[:n], num_components=k)
        fit = hz.fit(model, choices[:n], key=0, **SVI)
        params = {name: value[0] for name, value in fit.sample(0, 1).items()}
        prior = model.mixture(params)
        score = float(model.trial_log_likelihood(params, choices[held_out], triplets[held_out]).mean())
        fitted[n, k] = prior
        print(
            f"{n:5d} trials, {k} component(s): MMD to the true prior {mixture_mmd(prior, true_prior):.3f}, "
            f"held-out log-likelihood {score:.3f}"
        )

# %%
# The true and the inferred priors
# --------------------------------
# Top row: the mixture observer's inferred prior after each number of trials, beside the
# true prior (right). Bottom row: the Gaussian-prior observer's, which can only find the
# overall spread. Both are shaded on the true prior's density levels. The dots are the stimuli of the first 100 trials.
axis = np.linspace(-3.5, 3.5, 141)
grid = np.stack(np.meshgrid(axis, axis), -1)
fig, axes = plt.subplots(2, len(TRIAL_COUNTS) + 1, figsize=(3 * (len(TRIAL_COUNTS) + 1), 6), sharex=True, sharey=True)
true_density = np.exp(np.asarray(mixture_log_density(true_prior, grid)))
levels = np.linspace(0, true_density.max(), 8)[1:]
for row, k in enumerate((3, 1)):
    for column, n in enumerate(TRIAL_COUNTS):
        density = np.exp(np.asarray(mixture_log_density(fitted[n, k], grid)))
        ax = axes[row, column]
        # The true prior's levels: a component narrower than the true one saturates.
        ax.contourf(axis, axis, density, levels=levels, cmap="Blues", extend="max")
        ax.contour(axis, axis, true_density, levels=levels, colors="k", linewidths=0.4)
        ax.set_title(f"{'mixture' if k == 3 else 'Gaussian'} prior, {n} trials", fontsize=9)
    axes[row, -1].contourf(axis, axis, true_density, levels=levels, cmap="Greys")
    axes[row, -1].plot(*triplets[:100].reshape(-1, 2).T, ".", ms=1.5, color="tab:red")
    axes[row, -1].set_title("true prior (black contours)", fontsize=9)
for ax in axes.flat:
    ax.set_aspect("equal")
fig.tight_layout()

# %%
# What makes this work: the choice on a trial depends on the pointwise mutual information
# log p(x_j, x_k) / (p(x_j) p(x_k)) of each pair, which is large for close pairs and larger
# still where the prior is thin, so the prior's valleys and peaks are seen in which pairs
# the observer groups. The sensory noise, the decision noise and the prior's scale trade
# off, so the response model's noise is declared, as Houlsby et al. did; the components'
# labels are arbitrary, so the priors are compared as densities.
plt.show()
