"""
Psychometric functions: thresholds, widths and lapses, beside psignifit
=======================================================================

How much contrast does a person need to see a grating, and how sharply does seeing turn
on? Every psychophysics lab answers with a psychometric function: the probability of a
correct (or "yes") answer against stimulus intensity, a sigmoid with a threshold and a
width, squeezed between a guess rate and a lapse rate. psignifit 4 (Schuett et al., 2016)
is the tool most labs trust: Bayesian, with beta-binomial overdispersion for data noisier
than binomial. :class:`helmholtz.perception.PsychometricFunction` is the same model,
parametrised as psignifit parametrises it and with psignifit's default priors, as a NumPyro
program; here NumPyro's No-U-Turn sampler (``method="nuts"``) fits it, and psignifit's own
fit of the same data (where psignifit is installed) is drawn beside ours.
"""

import os
import warnings

import matplotlib.pyplot as plt
import numpy as np

import helmholtz as hz
from helmholtz.perception import PsychometricFunction
from helmholtz.perception.speed import condition_counts

try:
    import psignifit
except ImportError:  # the page still runs; it just has nothing to overlay
    psignifit = None

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"  # small sizes for the test suite
NUTS = (
    dict(num_chains=1, num_warmup=300, num_samples=400)
    if QUICK
    else dict(num_chains=4, num_warmup=1000, num_samples=1000)
)


def run_psignifit(data, **options):
    """psignifit's fit, its advice (warnings) printed rather than raised."""
    if psignifit is None:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = psignifit.psignifit(data, **options)
    for warning in caught:
        print("psignifit:", str(warning.message).splitlines()[0])
    return result


# %%
# Contrast detection in two-alternative forced choice
# -----------------------------------------------------
# A simulated observer detects a grating in one of two intervals: chance is 1/2, the
# function a Weibull of contrast (psignifit's Gumbel on log contrast) with threshold 5%
# contrast, a width of 1.2 log units, a 2% lapse rate and some overdispersion. Eight
# contrasts, 50 trials each. The bands are our 95% posterior intervals of the function;
# the dashed line is psignifit's maximum a posteriori fit.
contrast = np.geomspace(0.01, 0.3, 8)
design = PsychometricFunction(contrast, np.full(8, 50), sigmoid="weibull", experiment="2AFC")
truth = {"threshold": np.log(0.05), "width": 1.2, "lapse": 0.02, "eta": 0.1}
data = np.column_stack([contrast, np.asarray(design.simulate(0, truth)), np.full(8, 50)])
model = PsychometricFunction.from_data(data, sigmoid="weibull", experiment="2AFC")
fit = hz.fit(model, data, method="nuts", key=1, progress_bar=False, **NUTS)
draws = fit.sample(0, 1000)
print(fit.summary())
result = run_psignifit(np.column_stack([np.log(contrast), data[:, 1:]]), sigmoid="weibull", experiment_type="2AFC")

fine = np.geomspace(0.006, 0.5, 200)
curves = np.asarray(model.probability(draws, fine))
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.fill_between(fine, *np.quantile(curves, [0.025, 0.975], axis=0), alpha=0.3, label="helmholtz: 95% interval")
ax.plot(fine, np.median(curves, axis=0), label="helmholtz: posterior median")
if result is not None:
    estimate = result.parameter_estimate_MAP
    sigmoid = result.configuration.make_sigmoid()
    ax.plot(
        fine,
        sigmoid(np.log(fine), estimate["threshold"], estimate["width"], estimate["gamma"], estimate["lambda"]),
        "k--",
        label="psignifit: MAP",
    )
ax.plot(contrast, data[:, 1] / data[:, 2], "o", color="C3", label="data (50 trials each)")
ax.plot(fine, np.asarray(model.probability(truth, fine)), ":", color="grey", label="true function")
ax.set(xscale="log", xlabel="contrast", ylabel="proportion correct", ylim=(0.4, 1.02), title="2AFC detection, Weibull")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The two posteriors of threshold and width
# -----------------------------------------
# psignifit integrates its posterior on a grid and reports marginals; we sample ours. With
# the same model and the same priors the two should agree up to Monte Carlo error and the
# grid's resolution: histograms are our draws, lines psignifit's marginal densities (the
# threshold in log contrast). ``benchmarks/psychometric_psignifit.py`` makes this check on
# six simulated data sets and 60 conditions of the speed experiment below.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, name in zip(axes, ("threshold", "width")):
    ax.hist(np.asarray(draws[name]), bins=40, density=True, alpha=0.5, label="helmholtz (nuts)")
    if result is not None:
        ax.plot(result.parameter_values[name], result.marginal_posterior_values[name], "k-", label="psignifit (grid)")
    ax.axvline(truth[name], color="grey", ls=":", label="true value")
    ax.set(xlabel=f"{name} ({'log contrast' if name == 'threshold' else 'log units'})", ylabel="posterior density")
    ax.legend(fontsize=8)
fig.tight_layout()

# %%
# A real observer: speed discrimination at two contrasts
# -------------------------------------------------------
# Stocker & Simoncelli (2006)'s subject 1 compared a 4 deg/s reference at contrast 0.5 with
# test gratings of low (0.05) and high (0.8) contrast (data from
# ``../shared/reference/stocker_simoncelli_2006/``; 80 trials per condition, pooled in
# bins of 1/8 octave). "Which moved faster?" has a lapse at either end, so the function
# has equal asymptotes; its threshold is the point of subjective equality. The
# low-contrast test must move faster to look as fast (the Thompson effect): its
# function sits to the right.
counts = condition_counts(hz.data.stocker_simoncelli_subject(1))
fig, ax = plt.subplots(figsize=(6.5, 4))
ratios = np.linspace(-1.2, 1.2, 200)
for test_contrast, color in ((0.05, "C0"), (0.8, "C1")):
    data = counts[(4.0, 0.5, test_contrast)]
    model = PsychometricFunction.from_data(data, experiment="equal asymptote")
    fit = hz.fit(model, data, method="nuts", key=2, progress_bar=False, **NUTS)
    draws = fit.sample(0, 1000)
    curves = np.asarray(model.probability(draws, ratios))
    pse = np.asarray(draws["threshold"])
    ax.fill_between(ratios, *np.quantile(curves, [0.025, 0.975], axis=0), color=color, alpha=0.25)
    ax.plot(
        ratios,
        np.median(curves, axis=0),
        color=color,
        label=f"test contrast {test_contrast}: PSE {pse.mean():+.2f} +- {pse.std():.2f} octaves",
    )
    ax.scatter(data[:, 0], data[:, 1] / data[:, 2], s=6 * data[:, 2], color=color, alpha=0.6)
    result = run_psignifit(data, sigmoid="norm", experiment_type="equal asymptote")
    if result is not None:
        estimate = result.parameter_estimate_MAP
        sigmoid = result.configuration.make_sigmoid()
        ax.plot(
            ratios,
            sigmoid(ratios, estimate["threshold"], estimate["width"], estimate["lambda"], estimate["lambda"]),
            "--",
            color="k",
            lw=1,
        )
ax.axhline(0.5, color="grey", lw=0.5)
ax.axvline(0.0, color="grey", lw=0.5)
ax.set(
    xlabel="log2(test speed / reference speed)",
    ylabel='P("test faster")',
    title="subject 1, reference 4 deg/s at contrast 0.5 (dashed: psignifit)",
)
ax.legend(fontsize=8, loc="upper left")
fig.tight_layout()
plt.show()
