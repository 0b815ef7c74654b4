"""
A simulator from a function: the drift-diffusion model of choices
=================================================================

Which drift rate, boundary and non-decision time explain a person's choices and reaction
times? The drift-diffusion model accumulates noisy evidence until it reaches one of two
boundaries; its likelihood needs an infinite series, but simulating it takes a few lines.
We write one simulated session as a JAX function, declare it with its priors as a
:class:`helmholtz.models.FunctionSimulator` (no subclass), and fit it by neural posterior
estimation (``method="npe"``) to a session simulated at known parameters.
"""

import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
NUM_TRIALS, DT, NUM_STEPS = 100, 0.005, 600  # 100 trials, 5 ms steps, 3 s at most

# %%
# One session, as a function of a key and a parameter vector
# ----------------------------------------------------------
# theta = (drift v, boundary separation a, non-decision time t0); evidence starts at a / 2
# and moves by v dt plus Gaussian noise of variance dt until it leaves [0, a]. A trial
# gives its reaction time (t0 plus the crossing time) and its choice (1: upper boundary).
# The summary statistics are the share of upper choices and nine quantiles of the
# reaction time signed by the choice, which keep both responses' time distributions.


@hz.serializable
def drift_diffusion(key, theta):
    drift, bound, non_decision = theta[0], theta[1], theta[2]
    steps = drift * DT + jnp.sqrt(DT) * jax.random.normal(key, (NUM_STEPS, NUM_TRIALS))
    evidence = bound / 2 + jnp.cumsum(steps, axis=0)
    crossed = (evidence <= 0) | (evidence >= bound)
    first = jnp.argmax(crossed, axis=0)  # the first step out (0 if it never left)
    upper = evidence[first, jnp.arange(NUM_TRIALS)] >= bound
    finished = crossed.any(axis=0)
    reaction_time = non_decision + jnp.where(finished, first + 1, NUM_STEPS) * DT
    return jnp.stack([reaction_time, jnp.where(finished, upper, 0.5).astype(reaction_time.dtype)], axis=-1)


@hz.serializable
def choice_and_time_quantiles(session):
    signed = session[:, 0] * (2 * session[:, 1] - 1)
    return jnp.concatenate([session[:, 1].mean(keepdims=True), jnp.quantile(signed, jnp.linspace(0.1, 0.9, 9))])


model = hz.models.FunctionSimulator(
    drift_diffusion,
    parameters=(
        hz.priors.Uniform("drift", -2.0, 2.0, unit="1/s"),
        hz.priors.Uniform("bound", 0.5, 2.0),
        hz.priors.Uniform("non_decision", 0.1, 0.5, unit="s"),
    ),
    observation_shape=(NUM_TRIALS, 2),
    summary=choice_and_time_quantiles,
)
print(model.name, model.theta_names, "->", len(model.feature_names), "summary statistics")

# %%
# A session at known parameters, and the fit
# ------------------------------------------
# NPE is amortised: the network it trains on simulations from the prior gives the
# posterior of any session.

truth = {"drift": 0.8, "bound": 1.2, "non_decision": 0.3}
session = np.asarray(model.simulate(jax.random.PRNGKey(7), truth))
# Quick mode (the test suite): a small flow, trained fast on few simulations.
quick = dict(hidden_features=20, num_transforms=2, training_batch_size=100, learning_rate=3e-3, stop_after_epochs=3)
sizes = dict(num_simulations=500, **quick) if QUICK else dict(num_simulations=10_000)
fit = hz.fit(model, session, method="npe", key=0, progress_bar=False, **sizes)
draws = fit.sample(1, 2000)
for name, value in truth.items():
    low, high = np.percentile(np.asarray(draws[name]), [5, 95])
    print(f"{name:>12}: true {value}, posterior 90% interval [{low:.3f}, {high:.3f}]")

# %%
# The posterior over pairs of parameters, and replicated sessions (reaction times signed
# by the choice) over the observed one.

replicated = np.asarray(model.simulate_batch(2, model.theta_of(fit.sample(3, 200))))
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
for ax, (first, second) in zip(axes[:2], (("drift", "bound"), ("bound", "non_decision"))):
    ax.scatter(np.asarray(draws[first]), np.asarray(draws[second]), s=2, alpha=0.3, color="C0", label="npe posterior")
    ax.scatter(truth[first], truth[second], marker="x", s=80, color="C3", label="true parameters")
    ax.set(xlabel=first, ylabel=second)
    ax.legend(fontsize=8, markerscale=3)
bins = np.linspace(-2.0, 2.0, 60)
signed = replicated[..., 0] * (2 * replicated[..., 1] - 1)
axes[2].hist(signed.ravel(), bins=bins, density=True, color="0.7", label="replicated sessions")
axes[2].hist(
    session[:, 0] * (2 * session[:, 1] - 1),
    bins=bins,
    density=True,
    histtype="step",
    lw=2,
    color="C0",
    label="observed",
)
axes[2].set(xlabel="reaction time (s), signed by the choice", yticks=[])
axes[2].legend(fontsize=8)
fig.tight_layout()
plt.show()
