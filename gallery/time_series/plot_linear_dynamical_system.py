"""
Denoising a population recording with a linear dynamical system
================================================================

Twelve channels record the same slow, oscillating population activity through
independent noise. How well can the shared activity be recovered, and how sure can we be
of it at each moment? A linear dynamical system
(:class:`helmholtz.models.markov.LinearDynamicalSystem`) says the channels are a linear
read-out of a two-dimensional latent state that evolves linearly: z_t = A z_t-1 + w_t,
y_t = C z_t + d + v_t. Its likelihood, with the states integrated out, is computed
exactly by the Kalman filter, so any back end that needs a likelihood applies. We fit it by
stochastic variational inference with a full-rank Gaussian guide (``method="svi"``):
the dynamics near the unit circle make the posterior strongly correlated, which costs NUTS
hundreds of leapfrog steps per draw, while the full-rank guide captures the correlations
in a minute. The Rauch-Tung-Striebel smoother then gives p(z_t | all data) for each
posterior draw; averaging over draws carries the parameter uncertainty into the denoised
signal.
"""

import os

import jax
import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.models.markov import LinearDynamicalSystem

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# Simulated data with a known truth
# ---------------------------------
# A damped rotation (period about 25 steps) drives twelve channels; we keep the noise-free
# signal C z + d to score the reconstruction.

num_steps, obs_dim = (100 if QUICK else 200), 12
model = LinearDynamicalSystem(state_dim=2, obs_dim=obs_dim, num_steps=num_steps)
angle = 2 * np.pi / 25
truth = {
    "dynamics_matrix": 0.97 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]),
    "emission_matrix": np.random.default_rng(0).normal(size=(obs_dim, 2)),
    "emission_bias": np.random.default_rng(1).normal(0.0, 2.0, size=obs_dim),
    "noise": np.full(obs_dim, 1.5),
}
key_states, key_fit = jax.random.split(jax.random.PRNGKey(0))
states, y = hz.models.markov.lds_sample(key_states, model.lds_params(truth), num_steps)
clean = np.asarray(states @ truth["emission_matrix"].T + truth["emission_bias"])
y = np.asarray(y)

# %%
# Fitting with SVI
# ----------------
# The latent space could be rotated without changing the data (A -> R A R^T,
# C -> C R^T); the model pins it by making the top block of C lower triangular, so the
# fitted C is a rotation of the true one. We judge the fit by what does not depend on
# the rotation: the noise, the eigenvalues of A, and the denoised signal.

fit = hz.fit(
    model,
    y,
    method="svi",
    guide="full-rank",
    key=key_fit,
    num_steps=2_000 if QUICK else 10_000,
    learning_rate=0.03 if QUICK else 0.01,
    progress_bar=False,
)
draws = fit.sample(1, 100 if QUICK else 300)
noise = np.asarray(draws["noise"])
print(
    f"noise sd: true 1.5, posterior mean {noise.mean():.2f} (range over channels {noise.mean(0).min():.2f}-{noise.mean(0).max():.2f})"
)
eigenvalues = np.abs(np.linalg.eigvals(np.asarray(draws["dynamics_matrix"])))
print(f"|eigenvalues of A|: true 0.97, posterior mean {eigenvalues.mean():.3f}")

# %%
# Smoothing
# ---------
# For each draw, the smoother's mean and covariance of z_t map to the mean and variance of
# the noise-free signal C z_t + d; their mixture over draws is the posterior of the signal.


def signal_moments(params):
    smoothed = model.smoother(params, y)
    loadings = params["emission_matrix"]
    mean = smoothed.smoothed_means @ loadings.T + params["emission_bias"]
    variance = np.einsum("ds,tse,de->td", loadings, smoothed.smoothed_covariances, loadings)
    return np.asarray(mean), np.asarray(variance)


moments = [signal_moments({name: value[i] for name, value in draws.items()}) for i in range(len(noise))]
means = np.stack([m for m, _ in moments])
signal_mean = means.mean(0)
signal_sd = np.sqrt(np.stack([v for _, v in moments]).mean(0) + means.var(0))
error_smoothed = np.sqrt(np.mean((signal_mean - clean) ** 2))
error_raw = np.sqrt(np.mean((y - clean) ** 2))
coverage = np.mean(np.abs(signal_mean - clean) < 2 * signal_sd)
print(f"RMS error against the noise-free signal: raw data {error_raw:.2f}, smoothed {error_smoothed:.2f}")
print(f"the noise-free signal lies inside the +-2 sd band at {coverage:.0%} of points (about 95% expected)")

time = np.arange(num_steps)
fig, axes = plt.subplots(3, 1, figsize=(9, 6.5), sharex=True)
for ax, channel in zip(axes, range(3)):
    ax.plot(time, y[:, channel], ".", color="0.6", ms=3, label="recorded")
    ax.plot(time, clean[:, channel], color="k", lw=1, label="noise-free truth")
    ax.plot(time, signal_mean[:, channel], color="tab:blue", lw=1.5, label="smoothed (posterior mean)")
    ax.fill_between(
        time,
        signal_mean[:, channel] - 2 * signal_sd[:, channel],
        signal_mean[:, channel] + 2 * signal_sd[:, channel],
        color="tab:blue",
        alpha=0.25,
        lw=0,
        label="+-2 sd",
    )
    ax.set_ylabel(f"channel {channel}")
axes[0].legend(fontsize=8, ncols=4, loc="upper right")
axes[-1].set_xlabel("time step")
fig.suptitle(f"LDS smoothing: RMS error {error_raw:.2f} (raw) -> {error_smoothed:.2f} (smoothed)")
fig.tight_layout()
plt.show()
