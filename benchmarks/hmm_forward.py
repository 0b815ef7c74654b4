"""HMM forward algorithm: log-likelihood of one long sequence, against NumPy and Dynamax.

The issue's case: T = 10,000 steps, K = 10 states; the emission log-likelihoods (T, K) are
given (random, fixed seed), so only the forward recursion is timed. Methods:

* **ours**: ``helmholtz.models.markov.hmm_log_likelihood`` under ``jax.jit`` (a
  ``lax.scan`` with renormalisation at each step);
* **numpy**: the same scaled recursion written here as a plain Python loop over time with
  NumPy vector-matrix products (the named baseline);
* **dynamax**: ``dynamax.hidden_markov_model.inference.hmm_filter(...).marginal_loglik``
  under ``jax.jit``; skipped with a message where Dynamax is not installed.

Each JAX method is compiled by an untimed call; every timed call waits for its result,
with the garbage collector held off; the best and median of ``--repeats`` are printed,
with the ratio of medians against each baseline and the largest difference between the
methods' log-likelihoods (float32 JAX vs float64 NumPy).

    taskset -c 1 .venv/bin/python benchmarks/hmm_forward.py [--num-steps 10000 --num-states 10]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import jax
import numpy as np

from helmholtz.models.markov import hmm_log_likelihood


def numpy_forward(initial_probs, transition_matrix, log_likelihoods) -> float:
    loglik, predicted = 0.0, initial_probs
    for log_likelihood_t in log_likelihoods:
        shift = log_likelihood_t.max()
        unnormalised = predicted * np.exp(log_likelihood_t - shift)
        total = unnormalised.sum()
        loglik += np.log(total) + shift
        predicted = (unnormalised / total) @ transition_matrix
    return loglik


def timed(function, repeats: int) -> tuple[list[float], float]:
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            result = float(jax.block_until_ready(function()))
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return times, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-steps", type=int, default=10_000)
    parser.add_argument("--num-states", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--numpy-repeats", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    initial = rng.dirichlet(np.ones(args.num_states))
    transition = rng.dirichlet(np.ones(args.num_states), size=args.num_states)
    log_likelihoods = rng.normal(-2.0, 3.0, size=(args.num_steps, args.num_states))
    inputs32 = tuple(jax.numpy.asarray(a, dtype=np.float32) for a in (initial, transition, log_likelihoods))

    methods = {}
    ours = jax.jit(hmm_log_likelihood)
    ours(*inputs32).block_until_ready()
    methods["ours"] = lambda: ours(*inputs32)
    methods["numpy"] = lambda: numpy_forward(initial, transition, log_likelihoods)
    try:
        from dynamax.hidden_markov_model.inference import hmm_filter as dynamax_filter
    except ImportError:
        print("dynamax: not installed (pip install dynamax), skipped")
    else:
        dynamax = jax.jit(lambda p, a, ll: dynamax_filter(p, a, ll).marginal_loglik)
        dynamax(*inputs32).block_until_ready()
        methods["dynamax"] = lambda: dynamax(*inputs32)

    results = {}
    for name, function in methods.items():
        repeats = args.numpy_repeats if name == "numpy" else args.repeats
        results[name] = timed(function, repeats)
    print(f"T = {args.num_steps:,}, K = {args.num_states}; jax {jax.__version__} on {jax.devices()[0].device_kind}")
    print(f"{'method':<9}{'median ms':>11}{'best ms':>10}{'log-likelihood':>18}")
    for name, (times, value) in results.items():
        print(f"{name:<9}{1e3 * statistics.median(times):>11.2f}{1e3 * min(times):>10.2f}{value:>18.3f}")
    ours_median = statistics.median(results["ours"][0])
    for name in results:
        if name != "ours":
            print(f"ours is {statistics.median(results[name][0]) / ours_median:.1f}x {name} (ratio of medians)")
    values = [value for _, value in results.values()]
    print(f"largest difference between methods: {max(values) - min(values):.3g} nats")


if __name__ == "__main__":
    main()
