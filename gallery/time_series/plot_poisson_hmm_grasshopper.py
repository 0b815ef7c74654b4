"""
Adaptation of a grasshopper auditory receptor: a Poisson HMM
============================================================

Does an auditory receptor keep firing at the same rate through a long sound, or does it
adapt? Rokem et al. (2006) recorded a receptor of the locust *Locusta migratoria* for
10 s while playing a tone whose loudness was modulated by Gaussian noise (the recording
ships with nitime; :func:`helmholtz.data.spikes.load_grasshopper`). We bin its spikes in
25 ms bins and fit a three-state hidden Markov model with Poisson emissions
(:class:`helmholtz.models.markov.HiddenMarkovModel`) with NUTS (``method="nuts"``): the
hidden states are summed out by the forward algorithm, so the sampler moves in the 15
parameters only. Nothing in the model says the regimes come in any order; the smoother,
given the fitted parameters, shows which regime each bin was in.
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.data.spikes import load_grasshopper
from helmholtz.models.markov import HiddenMarkovModel

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite

# %%
# The recording
# -------------
# 929 spikes in 10 s. Counted second by second, the rate already falls from about 127 to
# about 78 spikes/s; the HMM should find that without being told to look for a trend.

recording = load_grasshopper(1)
bin_width = 0.025
counts, stimulus = recording.binned(bin_width)
per_second = np.histogram(recording.spike_times, np.arange(11))[0]
print(f"{len(recording.spike_times)} spikes in {recording.duration:.0f} s; spikes per second: {per_second}")

# %%
# Fitting the HMM
# ---------------
# Each state has its own rate; a stickiness of 5 on the diagonal of the Dirichlet prior on
# the transition matrix says regimes tend to last more than one bin. The prior on the
# rates is centred on the mean count per bin.

model = HiddenMarkovModel(num_states=3, obs_dim=1, emission="poisson", stickiness=5.0, rate_mean=float(counts.mean()))
x = counts[:, None].astype(float)
sizes = (
    dict(num_warmup=150, num_samples=150, num_chains=1)
    if QUICK
    else dict(num_warmup=1000, num_samples=1000, num_chains=2)
)
fit = hz.fit(model, x, method="nuts", key=0, progress_bar=False, **sizes)
draws = model.identifiable_parameters(fit.sample(1, 500))  # states ordered by their rate
rates_hz = np.asarray(draws["rates"][..., 0]) / bin_width
print("state rates (spikes/s), posterior mean (sd):")
for state in range(3):
    print(f"  state {state}: {rates_hz[:, state].mean():6.1f} ({rates_hz[:, state].std():.1f})")
print("transition matrix (posterior mean):")
print(np.round(np.asarray(draws["transition_matrix"]).mean(0), 3))

# %%
# Which regime was each bin in?
# -----------------------------
# The smoother gives p(z_t | all counts) at the posterior-mean parameters, and from it the
# expected rate in every bin; the Viterbi path is the most probable sequence of regimes.

posterior_mean = {name: np.asarray(value).mean(0) for name, value in draws.items()}
smoothed = np.asarray(model.smoother(posterior_mean, x).smoothed_probs)
viterbi = np.asarray(model.most_likely_states(posterior_mean, x))
switches = np.flatnonzero(np.diff(viterbi)) + 1
print(
    "Viterbi regimes (start time s, regime):",
    [(round(float(t) * bin_width, 2), int(viterbi[t])) for t in np.r_[0, switches]],
)

time = (np.arange(len(counts)) + 0.5) * bin_width
colors = ["tab:blue", "tab:orange", "tab:red"]
fig, axes = plt.subplots(3, 1, figsize=(9, 6.5), sharex=True, height_ratios=[0.8, 1.2, 1])
axes[0].plot(time, stimulus, color="0.4", lw=0.6)
axes[0].set_ylabel("stimulus\n(dB SPL)")
axes[1].plot(time, counts / bin_width, color="0.7", lw=0.6, label="spikes per bin / bin width")
axes[1].step(np.arange(11), np.r_[per_second, per_second[-1]], where="post", color="k", lw=1.2, label="per second")
axes[1].plot(time, smoothed @ rates_hz.mean(0), color="tab:purple", lw=1.8, label="HMM: expected rate")
axes[1].set_ylabel("rate (spikes/s)")
axes[1].legend(fontsize=8, loc="upper right", ncols=3)
axes[2].stackplot(time, smoothed.T, colors=colors, labels=[f"{r:.0f} spikes/s" for r in rates_hz.mean(0)])
axes[2].set_ylabel("p(regime | spikes)")
axes[2].set_xlabel("time (s)")
axes[2].legend(loc="lower left", fontsize=8, title="regime", title_fontsize=8, ncols=3)
fig.suptitle("A three-state Poisson HMM finds the receptor adapting (NUTS)")
fig.tight_layout()

# %%
# How certain are the rates?
# --------------------------
# The posterior of each regime's rate: the three are well separated, so the regimes are
# not an artefact of over-fitting noise with extra states.

fig, ax = plt.subplots(figsize=(5, 3.2))
for state in range(3):
    ax.hist(rates_hz[:, state], bins=30, density=True, alpha=0.6, color=colors[state], label=f"regime {state}")
ax.set_xlabel("firing rate (spikes/s)")
ax.set_ylabel("posterior density")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
