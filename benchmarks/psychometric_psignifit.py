"""Psychometric functions: helmholtz (``PsychometricFunction``, ``nuts``) against psignifit 4.

The same data, the same sigmoid, experiment type and (psignifit's default) priors on both
sides; psignifit (Schuett et al., 2016; ``pip install psignifit``) integrates its posterior
on a grid, we sample ours with NUTS. For threshold and width the table gives each side's
posterior mean and 95% credible interval (equal-tailed, psignifit's default
``CI_method="percentiles"``) and whether each side's mean lies inside the other's interval.

* **simulated**: six data sets from known functions (every sigmoid, yes/no, 2AFC, 4AFC and
  equal-asymptote tasks, overdispersion from none to strong);
* **stocker**: the five observers of Stocker & Simoncelli (2006), every condition
  (reference speed, reference contrast, test contrast) as its own function of
  log2(test / reference speed), a cumulative normal with equal asymptotes (a lapse at
  either end of a "which is faster?" task), the trials pooled into bins of 0.125 octave
  (:func:`helmholtz.perception.speed.condition_counts`); ``--conditions`` per subject, evenly
  spaced over its conditions (default 12; 0: all 306, each fit a NUTS compilation of
  10-20 s on a CPU).

    .venv/bin/python benchmarks/psychometric_psignifit.py                     # 6 simulated + 60 conditions
    .venv/bin/python benchmarks/psychometric_psignifit.py --subjects 3 --no-simulated
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

import helmholtz as hz
from helmholtz.perception import PsychometricFunction
from helmholtz.perception.speed import condition_counts

PSIGNIFIT_NAMES = {"lapse": "lambda", "guess": "gamma", "threshold": "threshold", "width": "width", "eta": "eta"}

# name, sigmoid, experiment, intensities, trials per block, true parameters
SIMULATED = (
    (
        "norm 2AFC",
        "norm",
        "2AFC",
        np.linspace(-2, 2, 9),
        40,
        {"threshold": 0.3, "width": 1.5, "lapse": 0.03, "eta": 0.05},
    ),
    (
        "logistic yes/no",
        "logistic",
        "yes/no",
        np.linspace(-1, 3, 7),
        50,
        {"threshold": 1.0, "width": 2.0, "lapse": 0.05, "guess": 0.1, "eta": 0.1},
    ),
    (
        "weibull 2AFC (contrast)",
        "weibull",
        "2AFC",
        np.geomspace(0.01, 0.3, 8),
        60,
        {"threshold": np.log(0.05), "width": 1.5, "lapse": 0.02, "eta": 0.05},
    ),
    (
        "rgumbel yes/no",
        "rgumbel",
        "yes/no",
        np.linspace(0, 10, 11),
        30,
        {"threshold": 4.0, "width": 5.0, "lapse": 0.02, "guess": 0.05, "eta": 0.02},
    ),
    (
        "student 4AFC",
        "student",
        "4AFC",
        np.linspace(-3, 3, 8),
        80,
        {"threshold": 0.0, "width": 2.0, "lapse": 0.04, "eta": 0.05},
    ),
    (
        "norm equal asymptote, eta 0.3",
        "norm",
        "equal asymptote",
        np.linspace(-1, 1, 10),
        100,
        {"threshold": -0.2, "width": 1.0, "lapse": 0.05, "eta": 0.3},
    ),
)


def centred_interval(result, name: str, level: float = 0.95) -> list[float]:
    """psignifit's equal-tailed interval from its marginal grid, with each grid point's mass
    centred on the point. psignifit 4.3 interpolates the cumulative sum of the masses at the
    grid points, which puts each point's mass at the point's upper edge and moves both
    ends of its interval down by half a grid step."""
    grid = np.asarray(result.parameter_values[name])
    density = np.asarray(result.marginal_posterior_values[name])
    weights = np.gradient(grid)  # the width of each grid point's cell
    mass = density * weights / np.sum(density * weights)
    return [float(v) for v in np.interp([(1 - level) / 2, (1 + level) / 2], np.cumsum(mass) - mass / 2, grid)]


def fit_both(data: np.ndarray, sigmoid: str, experiment: str, nuts: dict, key: int) -> dict:
    """Our NUTS fit and psignifit's on one data matrix; each side's summaries."""
    import psignifit

    model = PsychometricFunction.from_data(data, sigmoid=sigmoid, experiment=experiment)
    start = time.perf_counter()
    fit = hz.fit(model, data, method="nuts", key=key, progress_bar=False, **nuts)
    ours_seconds = time.perf_counter() - start
    draws = fit.sample(0, nuts["num_chains"] * nuts["num_samples"])
    # psignifit's Weibull is its Gumbel on intensities the user has logged.
    theirs_data = np.column_stack([model.scaled_intensity, data[:, 1], data[:, 2]])
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = psignifit.psignifit(theirs_data, sigmoid=sigmoid, experiment_type=experiment)
    theirs_seconds = time.perf_counter() - start
    row = {
        "ours_seconds": ours_seconds,
        "psignifit_seconds": theirs_seconds,
        "r_hat": float(max(np.max(v) for v in fit.diagnostics["r_hat"].values()))
        if fit.diagnostics["r_hat"]
        else float("nan"),
        "divergent": fit.diagnostics["num_divergent"],
        "psignifit_warnings": sorted(
            {str(w.message).split("\n")[0] + " " + str(w.message).split("\n")[1][:60] for w in caught}
        ),
    }
    for name in ("threshold", "width", "lapse", "eta"):
        values = np.asarray(draws[name])
        low, high = np.quantile(values, [0.025, 0.975])
        theirs = PSIGNIFIT_NAMES[name]
        t_low, t_high = result.confidence_intervals[theirs]["0.95"]
        row[name] = {
            "ours_mean": float(values.mean()),
            "ours_sd": float(values.std()),
            "ours_ci": [float(low), float(high)],
            "psignifit_mean": float(result.parameter_estimate_mean[theirs]),
            "psignifit_map": float(result.parameter_estimate_MAP[theirs]),
            "psignifit_ci": [float(t_low), float(t_high)],
            "psignifit_ci_centred": centred_interval(result, theirs),
        }
        row[name]["theirs_in_ours"] = bool(low <= row[name]["psignifit_mean"] <= high)
        row[name]["ours_in_theirs"] = bool(t_low <= row[name]["ours_mean"] <= t_high)
    return row


def simulated_rows(nuts: dict) -> list[dict]:
    rows = []
    for index, (name, sigmoid, experiment, intensity, trials, truth) in enumerate(SIMULATED):
        model = PsychometricFunction(intensity, np.full(intensity.size, trials), sigmoid=sigmoid, experiment=experiment)
        counts = np.asarray(model.simulate(100 + index, {k: v for k, v in truth.items() if k in model.free_parameters}))
        data = np.column_stack([intensity, counts, np.full(intensity.size, trials)])
        row = {
            "case": name,
            "truth": {k: float(v) for k, v in truth.items()},
            **fit_both(data, sigmoid, experiment, nuts, key=index),
        }
        rows.append(row)
        print_row(name, row, truth)
    return rows


def print_row(name: str, row: dict, truth: dict | None = None) -> None:
    cells = []
    for parameter in ("threshold", "width"):
        r = row[parameter]
        true = f" (true {truth[parameter]:.3g})" if truth else ""
        cells.append(
            f"{parameter}{true}: ours {r['ours_mean']:.3f} [{r['ours_ci'][0]:.3f}, {r['ours_ci'][1]:.3f}], "
            f"psignifit {r['psignifit_mean']:.3f} [{r['psignifit_ci'][0]:.3f}, {r['psignifit_ci'][1]:.3f}] "
            f"(MAP {r['psignifit_map']:.3f})"
        )
    print(
        f"{name}: "
        + "; ".join(cells)
        + f"; r_hat {row['r_hat']:.3f}; {row['ours_seconds']:.0f} s / {row['psignifit_seconds']:.1f} s",
        flush=True,
    )


def stocker_rows(subjects, nuts: dict, bin_width: float, conditions: int) -> list[dict]:
    rows = []
    for subject in subjects:
        counts = list(condition_counts(hz.data.stocker_simoncelli_subject(subject), bin_width=bin_width).items())
        if 0 < conditions < len(counts):  # evenly spaced over the sorted conditions
            counts = [counts[i] for i in np.linspace(0, len(counts) - 1, conditions).round().astype(int)]
        for index, (condition, data) in enumerate(counts):
            row = {
                "subject": subject,
                "condition": list(condition),
                "blocks": int(data.shape[0]),
                **fit_both(data, "norm", "equal asymptote", nuts, key=index),
            }
            rows.append(row)
            print_row(f"subject {subject} {condition}", row)
    return rows


def summarise(rows: list[dict], label) -> dict:
    """Per group: how often each side's mean lies in the other's interval, and the largest
    difference of means in units of our posterior sd."""
    summary = {"group": label, "fits": len(rows), "max_r_hat": max(r["r_hat"] for r in rows)}
    for parameter in ("threshold", "width"):
        summary[f"{parameter}_theirs_in_ours"] = sum(r[parameter]["theirs_in_ours"] for r in rows)
        summary[f"{parameter}_ours_in_theirs"] = sum(r[parameter]["ours_in_theirs"] for r in rows)
        z = [abs(r[parameter]["ours_mean"] - r[parameter]["psignifit_mean"]) / r[parameter]["ours_sd"] for r in rows]
        summary[f"{parameter}_median_z"], summary[f"{parameter}_max_z"] = float(np.median(z)), float(np.max(z))
    summary["psignifit_warned"] = sum(bool(r["psignifit_warnings"]) for r in rows)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, nargs="*", default=[1, 2, 3, 4, 5])
    parser.add_argument("--conditions", type=int, default=12, help="per subject, evenly spaced over them (0: all)")
    parser.add_argument("--no-simulated", action="store_true")
    parser.add_argument("--bin-width", type=float, default=0.125, help="octaves of test / reference speed per block")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", help="write every row as JSON here")
    args = parser.parse_args(argv)
    try:
        import psignifit  # noqa: F401
    except ImportError:
        parser.exit(1, "psignifit is not installed: pip install psignifit (or the bench extra)\n")
    nuts = {"num_chains": args.chains, "num_warmup": args.warmup, "num_samples": args.samples}
    simulated = [] if args.no_simulated else simulated_rows(nuts)
    stocker = stocker_rows(args.subjects, nuts, args.bin_width, args.conditions)
    summaries = [summarise([row], row["case"]) for row in simulated]
    summaries += [summarise([r for r in stocker if r["subject"] == s], f"subject {s}") for s in args.subjects]
    print("\nthreshold and width: each side's posterior mean inside the other's 95% interval (count of fits),")
    print("and |our mean - psignifit's mean| / our posterior sd (median, max)")
    print(
        "| data | fits | threshold: theirs in ours | ours in theirs | median, max z "
        "| width: theirs in ours | ours in theirs | median, max z | max R-hat |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in summaries:
        print(
            f"| {s['group']} | {s['fits']} | {s['threshold_theirs_in_ours']} | {s['threshold_ours_in_theirs']} | "
            f"{s['threshold_median_z']:.2f}, {s['threshold_max_z']:.2f} | "
            f"{s['width_theirs_in_ours']} | {s['width_ours_in_theirs']} | "
            f"{s['width_median_z']:.2f}, {s['width_max_z']:.2f} | {s['max_r_hat']:.3f} |"
        )
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"simulated": simulated, "stocker": stocker, "summaries": summaries}, handle, indent=1)


if __name__ == "__main__":
    main()
