"""The five speed priors of Stocker & Simoncelli (2006) ranked by PSIS-LOO
(``helmholtz.diagnostics.compare``), against the 5-fold table of ``speed_observers.py``.

For each subject, the observer with each of the five priors (unbiased, gaussian, power,
slow, piecewise) is fit to all its trials by ``nuts`` (``--chains`` x ``--draws`` after as
many warm-up steps); :func:`helmholtz.diagnostics.compare` then estimates each one's
held-out elpd per trial by PSIS-LOO, refits the trials whose Pareto k exceeds 0.7 exactly
(or falls back to 5-fold CV when there are more than ``--max-refits``) and ranks them.
``--method svi`` fits a mean-field normal guide instead, which ``compare`` uses as an
importance-sampling proposal; on these observers its Pareto k exceeds 0.7 on almost every
trial (the guide misses the posterior's tails: the prior's exponent and scale trade
off), so ``compare`` falls back to 5-fold CV with svi refits. The K-fold figures are those of
``benchmarks/README.md`` (MAP parameters per fold, so they differ from the Bayesian elpd by
the parameters' uncertainty); the script prints both rankings and, for every pair the two
order differently, the LOO difference and its standard error.

    .venv/bin/python benchmarks/speed_loo.py                  # all five subjects (hours on a CPU)
    .venv/bin/python benchmarks/speed_loo.py --subjects 3 --out loo.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import helmholtz as hz
from helmholtz.perception.speed import speed_experiment

PRIORS = {"unbiased": None, "gaussian": "gaussian", "power": "power", "slow": "slow", "piecewise": "piecewise"}
# benchmarks/README.md, speed_observers.py: held-out log-likelihood per trial, 5-fold (MAP per fold).
KFOLD_TABLE = {
    1: {"unbiased": -0.6181, "gaussian": -0.6012, "power": -0.5853, "slow": -0.5794, "piecewise": -0.5778},
    2: {"unbiased": -0.6625, "gaussian": -0.6318, "power": -0.6158, "slow": -0.6120, "piecewise": -0.6135},
    3: {"unbiased": -0.5808, "gaussian": -0.5555, "power": -0.5568, "slow": -0.5543, "piecewise": -0.5469},
    4: {"unbiased": -0.6261, "gaussian": -0.6131, "power": -0.6086, "slow": -0.6048, "piecewise": -0.6039},
    5: {"unbiased": -0.6074, "gaussian": -0.5816, "power": -0.5827, "slow": -0.5782, "piecewise": -0.5812},
}


def pairwise(comparison, a: str, b: str) -> tuple[float, float]:
    """elpd(a) - elpd(b) and its standard error, from the pointwise values."""
    diff = np.asarray(comparison.elpd[a].loo_i) - np.asarray(comparison.elpd[b].loo_i)
    return float(diff.sum()), float(np.sqrt(diff.size * diff.var()))


def discordant_pairs(comparison, kfold: dict) -> list[dict]:
    """Pairs the LOO ranking and the K-fold table order differently."""
    loo = comparison.table["elpd_loo"].to_dict()
    names = list(kfold)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if np.sign(loo[a] - loo[b]) != np.sign(kfold[a] - kfold[b]):
                difference, se = pairwise(comparison, a, b)
                pairs.append(
                    {
                        "pair": (a, b),
                        "loo_difference": difference,
                        "se": se,
                        "kfold_difference_per_trial": kfold[a] - kfold[b],
                    }
                )
    return pairs


def run_subject(subject: int, args) -> dict:
    trials = hz.data.stocker_simoncelli_subject(subject)
    responses = trials["test_seen_faster"].to_numpy(float)
    if args.method == "nuts":
        options = dict(method="nuts", num_chains=args.chains, num_warmup=args.draws, num_samples=args.draws)
    else:
        options = dict(method="svi", guide="normal", num_steps=args.num_steps, learning_rate=0.02)
    fits = {}
    start = time.perf_counter()
    for name, prior in PRIORS.items():
        fits[name] = hz.fit(speed_experiment(trials, prior=prior), responses, progress_bar=False, key=0, **options)
        print(f"subject {subject} {name}: fit in {time.perf_counter() - start:.0f} s", flush=True)
    fitted = time.perf_counter()
    comparison = hz.diagnostics.compare(fits, num_draws=args.num_draws, max_refits=args.max_refits, key=0)
    done = time.perf_counter()
    kfold = KFOLD_TABLE[subject]
    table = comparison.table
    row = {
        "subject": subject,
        "trials": len(trials),
        "loo_ranking": comparison.ranking,
        "kfold_ranking": sorted(kfold, key=kfold.get, reverse=True),
        "elpd_loo_per_trial": {name: float(table.loc[name, "elpd_loo"]) / len(trials) for name in PRIORS},
        "se_per_trial": {name: float(table.loc[name, "se"]) / len(trials) for name in PRIORS},
        "estimate": {name: str(table.loc[name, "estimate"]) for name in PRIORS},
        "pareto_k_max": {name: float(table.loc[name, "pareto_k_max"]) for name in PRIORS},
        "high_pareto_k": {name: int(table.loc[name, "high_pareto_k"]) for name in PRIORS},
        "discordant": discordant_pairs(comparison, kfold),
        # Convergence, and where the chains sat (the unrestricted power prior has a mirror mode).
        "r_hat_max": {
            name: max((float(np.max(r)) for r in fit.diagnostics.get("r_hat", {}).values()), default=float("nan"))
            for name, fit in fits.items()
        },
        "posterior_means": {
            name: {site: np.asarray(v).mean(0).tolist() for site, v in fit.sample(0, 500).items()}
            for name, fit in fits.items()
        },
        "fit_seconds": fitted - start,
        "compare_seconds": done - fitted,
        "notes": comparison.notes,
    }
    print(
        f"\nsubject {subject} ({len(trials)} trials; "
        f"fits {row['fit_seconds']:.0f} s, compare {row['compare_seconds']:.0f} s)"
    )
    print(comparison, flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--method", default="nuts", choices=("nuts", "svi"))
    parser.add_argument("--chains", type=int, default=2, help="nuts chains")
    parser.add_argument("--draws", type=int, default=300, help="nuts warm-up steps and draws per chain")
    parser.add_argument("--num-steps", type=int, default=5000, help="svi steps per fit")
    parser.add_argument(
        "--num-draws", type=int, default=1000, help="draws of a guide or of a refit for the pointwise likelihood"
    )
    parser.add_argument("--max-refits", type=int, default=10, help="exact refits per model before 5-fold CV")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = []
    for subject in args.subjects:
        rows.append(run_subject(subject, args))
        if args.out:  # after each subject, so a long run keeps what it has done
            with open(args.out, "w") as handle:
                json.dump(rows, handle, indent=1)
    print(f"\nelpd per trial by {args.method} + compare (nats) and, in brackets, the 5-fold table's; higher is better")
    print(
        "| subject | "
        + " | ".join(PRIORS)
        + " | LOO ranking | 5-fold ranking | discordant pairs (LOO diff +- se, nats) |"
    )
    print("|---|" + "---:|" * len(PRIORS) + "---|---|---|")
    for row in rows:
        cells = " | ".join(f"{row['elpd_loo_per_trial'][n]:.4f} ({KFOLD_TABLE[row['subject']][n]:.4f})" for n in PRIORS)
        pairs = (
            "; ".join(
                f"{a} vs {b}: {p['loo_difference']:+.1f} +- {p['se']:.1f}"
                for p in row["discordant"]
                for a, b in [p["pair"]]
            )
            or "none"
        )
        print(
            f"| {row['subject']} | {cells} | {' > '.join(row['loo_ranking'])} | "
            f"{' > '.join(row['kfold_ranking'])} | {pairs} |"
        )


if __name__ == "__main__":
    main()
