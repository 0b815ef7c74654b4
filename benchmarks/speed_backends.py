"""One speed observer, three back ends: ``nuts``, ``svi`` and ``npe`` side by side.

The heavy-tailed speed observer (:func:`helmholtz.perception.speed_experiment`, prior
``--prior``, default "slow") fit to one subject of Stocker & Simoncelli (2006): NUTS on the exact likelihood
(the reference), SVI with a mean-field Normal guide, and NPE (sbi) on the same experiment
as a simulator (:class:`helmholtz.perception.SimulatedExperiment`: responses simulated for
the subject's own stimuli, summarised as proportions per condition and speed-ratio bin).
Printed: posterior mean and sd of every parameter, the wall time of each fit, and each
back end's mean error in NUTS posterior sds.

    .venv/bin/python benchmarks/speed_backends.py --subject 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import helmholtz as hz
from helmholtz.perception import SimulatedExperiment, speed_experiment


def summarize(draws: dict) -> dict:
    return {name: (np.asarray(v).mean(0), np.asarray(v).std(0)) for name, v in draws.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subject", type=int, default=1)
    parser.add_argument("--prior", default="slow", help="speed_experiment's prior (default slow)")
    parser.add_argument("--methods", nargs="+", default=["nuts", "svi", "npe"], choices=["nuts", "svi", "npe"])
    parser.add_argument("--num-samples", type=int, default=500, help="NUTS warm-up and draws per chain (2 chains)")
    parser.add_argument("--num-simulations", type=int, default=10_000, help="NPE simulations")
    args = parser.parse_args(argv)
    trials = hz.data.stocker_simoncelli_subject(args.subject)
    responses = trials["test_seen_faster"].to_numpy(float)
    experiment = speed_experiment(trials, prior=args.prior)
    results = {}
    if "nuts" in args.methods:
        start = time.perf_counter()
        fit = hz.fit(
            experiment,
            responses,
            method="nuts",
            key=0,
            num_chains=2,
            num_warmup=args.num_samples,
            num_samples=args.num_samples,
            progress_bar=False,
        )
        results["nuts"] = (summarize(fit.sample(0, 1000)), time.perf_counter() - start)
        print(
            f"nuts done in {results['nuts'][1]:.0f} s; max r_hat {max(float(np.max(v)) for v in fit.diagnostics['r_hat'].values()):.3f}",
            flush=True,
        )
    if "svi" in args.methods:
        start = time.perf_counter()
        fit = hz.fit(
            experiment,
            responses,
            method="svi",
            key=0,
            guide="normal",
            num_steps=5000,
            learning_rate=0.01,
            progress_bar=False,
        )
        results["svi"] = (summarize(fit.sample(0, 1000)), time.perf_counter() - start)
        print(f"svi done in {results['svi'][1]:.0f} s", flush=True)
    if "npe" in args.methods:
        simulated = SimulatedExperiment(experiment)
        start = time.perf_counter()
        fit = hz.fit(
            simulated, responses, method="npe", key=0, num_simulations=args.num_simulations, progress_bar=False
        )
        results["npe"] = (summarize(simulated.constrained(fit.sample(0, 1000))), time.perf_counter() - start)
        print(f"npe done in {results['npe'][1]:.0f} s", flush=True)

    reference = results[args.methods[0]][0]
    print(f"\nsubject {args.subject}, {len(trials)} trials: posterior mean (sd)")
    print(f"{'parameter':<18}" + "".join(f"{name:>22}" for name in results))
    for name, (mean, _) in reference.items():
        for index in np.ndindex(np.shape(mean)):
            label = name + (f"[{index[0]}]" if index else "")
            cells = "".join(
                f"{float(res[0][name][0][index]):>12.3f} ({float(res[0][name][1][index]):.3f})"
                for res in results.values()
            )
            print(f"{label:<18}{cells}")
    print(f"{'seconds':<18}" + "".join(f"{res[1]:>22.0f}" for res in results.values()))
    for method in args.methods[1:]:
        gaps = [np.abs(results[method][0][n][0] - reference[n][0]) / reference[n][1] for n in reference]
        print(
            f"{method}: mean |mean - {args.methods[0]} mean| = "
            f"{np.mean(np.concatenate([np.ravel(g) for g in gaps])):.2f} {args.methods[0]} sds"
        )


if __name__ == "__main__":
    main()
