"""Speed observers fit to the five observers of Stocker & Simoncelli (2006): held-out fit.

For each subject (``../shared/reference/stocker_simoncelli_2006/``), the cross-validated
log-likelihood (``--folds``-fold, maximum a posteriori parameters by ``svi`` with a delta
guide on the other folds) of:

* **unbiased**: the observer with no prior (its percept is its measurement);
* **gaussian**: a Gaussian prior over speed centred at 0 (Weiss et al. 2002);
* **power**: the heavy-tailed prior (1 + v / scale)^(-exponent);
* **slow**: the same, restricted to favour slow speeds over the observer's internal
  variable log(v + 0.3) (exponent > 1, scale < 0.3 exponent);
* **piecewise**: a log-log piecewise-linear prior, knots at the reference speeds;
* **baseline**: the descriptive per-condition psychometric fit (a PSE and a width for each
  reference speed x reference contrast x test contrast), the named baseline.

Also, from the ``--fit-prior`` observer (default slow) fit to all the subject's trials: its noise width per contrast
(the issue's claim: decreasing with contrast; Spearman's rho printed) and its tail exponent.

    .venv/bin/python benchmarks/speed_observers.py --subjects 1 3 --folds 5
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np
from scipy.stats import spearmanr

import helmholtz as hz
from helmholtz.perception.speed import (
    contrast_levels,
    cross_validated_log_likelihood,
    psychometric_baseline,
    speed_experiment,
)

MODELS = ("unbiased", "gaussian", "power", "slow", "piecewise", "baseline")


def build(name, trials):
    if name == "baseline":
        return psychometric_baseline(trials)
    return speed_experiment(trials, prior=None if name == "unbiased" else name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--num-steps", type=int, default=2000)
    parser.add_argument("--fit-prior", default="slow", choices=("power", "slow"), help="the observer fit to all trials")
    parser.add_argument("--out", help="write the table as JSON here")
    args = parser.parse_args(argv)
    rows = []
    for subject in args.subjects:
        trials = hz.data.stocker_simoncelli_subject(subject)
        responses = trials["test_seen_faster"].to_numpy(float)
        row = {"subject": subject, "trials": len(trials)}
        for name in args.models:
            start = time.perf_counter()
            row[name] = cross_validated_log_likelihood(
                build(name, trials), responses, folds=args.folds, key=0, num_steps=args.num_steps
            )
            print(
                f"subject {subject} {name:9s} held-out log-likelihood {row[name]:9.1f}  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
        fit = hz.fit(
            build(args.fit_prior, trials),
            responses,
            method="svi",
            guide="delta",
            num_steps=args.num_steps,
            learning_rate=0.02,
            progress_bar=False,
            key=0,
        )
        params = jax.tree.map(lambda draws: np.asarray(draws[0]).tolist(), fit.sample(0, 1))
        row["fit_prior"], row["fit_params"] = args.fit_prior, params
        row["contrasts"] = contrast_levels(trials).tolist()
        row["noise_vs_contrast_rho"] = float(spearmanr(row["contrasts"], params["noise"]).statistic)
        rows.append(row)
        print(
            f"subject {subject} {args.fit_prior} fit: noise {np.round(params['noise'], 3).tolist()} "
            f"at contrasts {row['contrasts']}; exponent {params['prior_exponent']:.2f}, "
            f"scale {params['prior_scale']:.3f} deg/s",
            flush=True,
        )

    print(f"\nheld-out log-likelihood per trial (nats; {args.folds}-fold), higher is better")
    print("subject  trials " + " ".join(f"{m:>10s}" for m in args.models) + "   noise~contrast rho")
    for row in rows:
        cells = " ".join(f"{row[m] / row['trials']:10.4f}" for m in args.models)
        print(f"{row['subject']:7d} {row['trials']:7d} {cells}   {row['noise_vs_contrast_rho']:+.2f}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
