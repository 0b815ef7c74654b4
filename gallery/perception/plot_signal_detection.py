"""
Signal detection: sensitivity apart from bias
=============================================

Two observers say "yes, I saw it" on 90% of the trials that held a faint flash. Are they
equally good at seeing it? Not if one also says "yes" on half of the blank trials. Signal
detection theory (Green & Swets, 1966) separates how well the observer tells signal from
noise, the sensitivity d', from how willing it is to say "yes", the criterion c: each
trial gives the observer one noisy number, N(+d'/2, 1) with the signal and N(-d'/2, 1)
without, and the observer answers "yes" above c. Here we draw the ROC curves that one d'
traces as c moves, check the link between the yes/no and the two-interval (2AFC) tasks,
and fit d' and c to simulated trials with the generative observer
:class:`helmholtz.perception.signal_detection.SignalDetection` and NumPyro's No-U-Turn
sampler (``method="nuts"``).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.perception.signal_detection import (
    SignalDetection,
    area_under_roc,
    dprime_and_criterion,
    proportion_correct_2afc,
    roc_curve,
)

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
NUM_TRIALS = 400 if QUICK else 2_000
NUTS_OPTIONS = (
    dict(num_chains=1, num_warmup=200, num_samples=200)
    if QUICK
    else dict(num_chains=4, num_warmup=500, num_samples=1000)
)

# %%
# ROC curves
# ----------
# For a fixed d', sweeping the criterion from strict to lax moves the observer along one
# curve of (false-alarm rate, hit rate). The observer with H = 0.9 and F = 0.3 sits on
# the curve of d' = 1.81, with a lax criterion c = -0.38.

dprime, criterion = dprime_and_criterion(0.9, 0.3)
print(f"H = 0.9, F = 0.3: d' = {float(dprime):.4f}, c = {float(criterion):.4f}")

sweep = np.linspace(4.0, -4.0, 200)
figure, (ax_roc, ax_2afc) = plt.subplots(1, 2, figsize=(10, 4.2))
for value in (0.0, 0.5, 1.0, 2.0, 3.0):
    false_alarms, hits = roc_curve(value, sweep)
    ax_roc.plot(false_alarms, hits, label=f"d' = {value:g} (area {float(area_under_roc(value)):.3f})")
ax_roc.plot([0.3], [0.9], "ko")
ax_roc.annotate(
    f"d' = {float(dprime):.2f}, c = {float(criterion):.2f}", (0.3, 0.9), (0.4, 0.75), arrowprops=dict(arrowstyle="->")
)
ax_roc.set(
    xlabel="false-alarm rate F", ylabel="hit rate H", title="ROC curves of the equal-variance observer", aspect="equal"
)
ax_roc.legend(fontsize=8, loc="lower right")

# %%
# Yes/no and two-interval forced choice
# -------------------------------------
# In 2AFC the signal is in one of two intervals and the observer picks the interval with
# the larger number. The difference of the two numbers has mean d' and variance 2, so an
# unbiased observer is right with probability Phi(d' / sqrt 2), which is also the area
# under its yes/no ROC. Simulated 2AFC sessions of the generative observer land on it.

dprimes = np.linspace(0.0, 3.5, 100)
ax_2afc.plot(dprimes, proportion_correct_2afc(dprimes), color="C0", label="Phi(d' / sqrt 2) = area under the ROC")
two_interval = SignalDetection(signal=tuple(np.arange(NUM_TRIALS) % 2), task="2afc")
for index, value in enumerate((0.25, 1.0, 1.75, 2.5, 3.25)):
    choices = np.asarray(two_interval.simulate(index, {"d_prime": value, "criterion": 0.0}))
    correct = np.mean(choices == np.asarray(two_interval.signal))
    ax_2afc.plot([value], [correct], "ko", label=f"simulated sessions ({NUM_TRIALS} trials)" if index == 0 else None)
ax_2afc.set(xlabel="d'", ylabel="proportion correct", title="2AFC performance of an unbiased observer")
ax_2afc.legend(fontsize=8, loc="lower right")
figure.tight_layout()

# %%
# Fitting d' and c to trials
# --------------------------
# A yes/no session: half the trials hold the signal. The observer's true d' is 1.5 and
# its criterion conservative (c = 0.3). NUTS samples the posterior of (d', c) under the
# model's priors d' ~ N(1, 2) and c ~ N(0, 2); with this many trials the posterior mean
# sits near the classical estimate from the observed hit and false-alarm rates. The
# posterior says what this one session shows: the session's rates scatter around the
# observer's, so a 95% interval holds the truth in about 19 sessions out of 20, not in all.

truth = {"d_prime": 1.5, "criterion": 0.3}
signal = np.arange(NUM_TRIALS) % 2
model = SignalDetection(signal=tuple(signal))
responses = np.asarray(model.simulate(0, truth))
hit_rate, false_alarm_rate = responses[signal == 1].mean(), responses[signal == 0].mean()
classical = [float(v) for v in dprime_and_criterion(hit_rate, false_alarm_rate)]
print(f"observed H = {hit_rate:.3f}, F = {false_alarm_rate:.3f}: d' = {classical[0]:.3f}, c = {classical[1]:.3f}")

fit = hz.fit(model, responses, method="nuts", key=0, progress_bar=False, **NUTS_OPTIONS)
draws = {name: np.asarray(value) for name, value in fit.sample(1, 1000).items()}
for name in ("d_prime", "criterion"):
    low, high = np.percentile(draws[name], [2.5, 97.5])
    inside = "inside" if low < truth[name] < high else "outside"
    print(
        f"{name}: posterior mean {draws[name].mean():.3f}, 95% interval ({low:.3f}, {high:.3f}), truth {truth[name]} ({inside})"
    )

figure, (ax_draws, ax_fit) = plt.subplots(1, 2, figsize=(10, 4.2))
ax_draws.plot(draws["d_prime"], draws["criterion"], ".", color="C0", alpha=0.3, ms=3, label="posterior draws")
ax_draws.plot([truth["d_prime"]], [truth["criterion"]], "k*", ms=14, label="truth")
ax_draws.plot([classical[0]], [classical[1]], "rx", ms=10, mew=2, label="z(H) - z(F), -(z(H) + z(F)) / 2")
ax_draws.set(xlabel="d'", ylabel="criterion c", title=f"posterior from {NUM_TRIALS} yes/no trials")
ax_draws.legend(fontsize=8)

for index in range(0, len(draws["d_prime"]), 20):
    ax_fit.plot(*roc_curve(draws["d_prime"][index], sweep), color="C0", alpha=0.1)
ax_fit.plot(*roc_curve(truth["d_prime"], sweep), "k", lw=2, label="true ROC")
ax_fit.plot([false_alarm_rate], [hit_rate], "ro", label="observed (F, H)")
ax_fit.set(xlabel="false-alarm rate F", ylabel="hit rate H", title="ROC curves of posterior draws", aspect="equal")
ax_fit.legend(fontsize=8, loc="lower right")
figure.tight_layout()
plt.show()
