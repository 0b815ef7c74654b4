"""LFADS-style sequential VAE on Lorenz-driven spikes: co-bps and rate R^2 against the
spike-smoothing baseline of the Neural Latents Benchmark.

Data (``helmholtz.data.lorenz_spikes``, as the LFADS papers make them): 30 neurons
whose log-rates are a random linear read-out of a Lorenz attractor (sigma 10, rho 28,
beta 8/3), 100 bins of 10 ms per trial, 15 spikes/s baseline, Poisson counts; the true
rates are kept. 700 training, 100 validation and 200 test trials; 24 held-in and 6
held-out neurons.

- LFADS (``helmholtz.models.markov.LFADS``, generator GRU of 64 units, 3 factors,
  encoder reading the held-in neurons only) fitted by ``vae`` with the validation trials
  for early stopping. Its rates on test trials come from the encoder's mean g_0.
- Smoothing baseline (``helmholtz.diagnostics.smoothing_baseline``): held-in counts
  smoothed in time, a Poisson GLM to each held-out neuron; the kernel width is the best
  of 1-16 bins on the validation trials.

Scores on the test trials: co-bps (bits per spike of the held-out neurons,
``helmholtz.diagnostics.bits_per_spike``) and R^2 of inferred against true rates, for
held-in and held-out neurons.

Run: ``.venv/bin/python benchmarks/lfads_lorenz.py`` (about 10 minutes on 2 CPU cores; a
GPU takes a few).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

import helmholtz as hz
from helmholtz.diagnostics import bits_per_spike, rate_r_squared, smoothing_baseline
from helmholtz.models.markov import LFADS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-steps", type=int, default=20_000, help="most training steps (default 20,000)")
    parser.add_argument("--generator-dim", type=int, default=64)
    parser.add_argument("--factor-dim", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the scores as JSON here")
    return parser.parse_args(argv)


def lorenz_data(seed: int):
    spikes = hz.data.lorenz_spikes(
        seed,
        num_trials=1000,
        num_neurons=30,
        num_bins=100,
        bin_width=0.01,
        lorenz_time_per_bin=0.01,
        baseline_rate_hz=15.0,
    )
    splits = {"train": slice(0, 700), "validation": slice(700, 800), "test": slice(800, 1000)}
    return {name: (spikes.counts[part], spikes.rates[part]) for name, part in splits.items()}


def main(argv=None):
    args = parse_args(argv)
    data = lorenz_data(args.seed)
    held_in, held_out = list(range(24)), list(range(24, 30))
    test_counts, test_rates = data["test"]
    print(f"Lorenz spikes: {data['train'][0].shape} train; device {jax.devices()[0]}", flush=True)

    scores = {}
    widths = [1, 2, 4, 8, 16]
    validation_bps = [
        bits_per_spike(
            smoothing_baseline(data["train"][0], data["validation"][0], held_in, held_out, w)[..., held_out],
            data["validation"][0][..., held_out],
        )
        for w in widths
    ]
    width = widths[int(np.argmax(validation_bps))]
    smoothed = smoothing_baseline(data["train"][0], test_counts, held_in, held_out, width)
    scores[f"smoothing + GLM ({width * 10} ms kernel)"] = smoothed

    model = LFADS(
        30,
        100,
        generator_dim=args.generator_dim,
        factor_dim=args.factor_dim,
        encoder_dim=64,
        encoded_neurons=tuple(held_in),
    )
    start = time.perf_counter()
    fit = hz.fit(
        model,
        data["train"][0],
        method="vae",
        key=args.seed,
        num_steps=args.num_steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        check_every=500,
        patience=6,
        validation=data["validation"][0],
    )
    seconds = time.perf_counter() - start
    initial = fit.encode(test_counts)["initial_condition"].mean
    scores["LFADS (vae)"] = np.asarray(model.rates(fit.posterior.model_params, initial))

    table = {}
    for name, rates in scores.items():
        table[name] = {
            "co_bps": bits_per_spike(rates[..., held_out], test_counts[..., held_out]),
            "r2_held_in": rate_r_squared(rates[..., held_in], test_rates[..., held_in]),
            "r2_held_out": rate_r_squared(rates[..., held_out], test_rates[..., held_out]),
        }
    table["true rates (ceiling)"] = {
        "co_bps": bits_per_spike(test_rates[..., held_out], test_counts[..., held_out]),
        "r2_held_in": 1.0,
        "r2_held_out": 1.0,
    }
    print(
        f"\nLFADS: {fit.diagnostics['num_steps']} steps ({seconds:.0f} s), parameters kept after {fit.diagnostics['kept_step']}"
    )
    print("\n| rates from | co-bps (held-out) | R² held-in | R² held-out |\n|---|---:|---:|---:|")
    for name, row in table.items():
        print(f"| {name} | {row['co_bps']:.3f} | {row['r2_held_in']:.3f} | {row['r2_held_out']:.3f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "settings": {k: str(v) for k, v in vars(args).items()},
                    "scores": table,
                    "lfads_seconds": seconds,
                    "steps": fit.diagnostics["num_steps"],
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
