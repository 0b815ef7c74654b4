"""Steps per second of ``helmholtz.fit(..., method="svi")`` against the same fit written in NumPyro.

Both sides fit factor analysis with the latents integrated,

    x_i ~ MultivariateNormal(mean, G G^T + diag(noise^2)),
    G ~ Normal(0, 1), mean ~ Normal(0, 10), noise ~ HalfNormal(1),

with an ``AutoNormal`` guide, Adam (Optax, through ``optax_to_numpyro``) and ``Trace_ELBO``.
The baseline is written by hand here and run with NumPyro's own compiled loop,
``SVI.run(key, num_steps, x, progress_bar=False)``; helmholtz runs the model declared as
``FactorAnalysis(obs_dim, latent_dim)`` with ``patience=0`` (no early stopping).

How it measures:

* Each timed call is a whole fit from scratch (guide set-up, ``svi.init``, the optimisation
  loop), on both sides, and ends with ``jax.block_until_ready`` on everything it returns,
  so JAX's asynchronous dispatch cannot hide work. Python's garbage collector is run before
  and held off during each timed call, as ``timeit`` does.
* Neither ``SVI.run`` nor ``helmholtz.fit`` keeps its compiled loop between calls, so every
  call re-traces and would re-compile. To measure steady-state throughput the script turns
  on JAX's persistent compilation cache in a temporary directory: the warm-up call of each
  side pays the XLA compilation (reported as "first call"), and the timed calls reuse it.
  ``--no-compile-cache`` switches that off (each timed call then includes a compilation).
* The timed calls are interleaved (the order alternates each repeat). The overhead is the
  median over repeats of the ratio of the two back-to-back times, which cancels most of the
  drift of a shared, loaded machine; the median and the best time are reported as well.
* The per-call fixed cost (everything but the steps) is estimated from extra fits of
  ``check_every`` steps (the shortest helmholtz fit) against the fits of ``num_steps``
  (fastest of each); from it follows the marginal (per-step) rate, the steady state with
  the fixed cost taken out.
* Both sides start from the same key; their final mean losses are printed so that one can
  see that the two compute the same thing.

Run: ``make bench`` or ``.venv/bin/python benchmarks/svi_overhead.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import shutil
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal
from numpyro.optim import optax_to_numpyro

import helmholtz


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--obs-dim", type=int, default=20, help="observed dimensions (default 20)")
    parser.add_argument("--latent-dim", type=int, default=3, help="latent factors (default 3)")
    parser.add_argument("--num-points", type=int, default=2000, help="simulated data points (default 2000)")
    parser.add_argument(
        "--num-steps",
        type=int,
        default=1000,
        help="SVI steps per timed fit (default 1000; a multiple of --check-every)",
    )
    parser.add_argument(
        "--check-every", type=int, default=500, help="helmholtz's chunk length (default 500, its own default)"
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed fits per method (default 7)")
    parser.add_argument("--learning-rate", type=float, default=1e-2, help="Adam step size (default 1e-2)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the data and the fits (default 0)")
    parser.add_argument("--goal", type=float, default=5.0, help="overhead goal in percent (default 5)")
    parser.add_argument(
        "--fixed-cost",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time fits of --check-every steps to split per-call from per-step cost (default on)",
    )
    parser.add_argument(
        "--compile-cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reuse compiled executables across calls via a temporary persistent cache (default on)",
    )
    args = parser.parse_args(argv)
    for name in ("obs_dim", "latent_dim", "num_points", "num_steps", "check_every", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if args.num_steps % args.check_every:
        parser.error("--num-steps must be a multiple of --check-every (helmholtz rounds up to whole chunks)")
    return args


def simulate(seed: int, num_points: int, obs_dim: int, latent_dim: int) -> jnp.ndarray:
    """Factor-analysis data: x = G z + mean + eps, eps with one scale per coordinate."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(size=(obs_dim, latent_dim))
    mean = rng.normal(scale=2.0, size=obs_dim)
    noise = rng.uniform(0.3, 1.0, size=obs_dim)
    z = rng.normal(size=(num_points, latent_dim))
    x = z @ loadings.T + mean + noise * rng.normal(size=(num_points, obs_dim))
    return jnp.asarray(x, dtype=jnp.float32)


def factor_analysis(obs_dim: int, latent_dim: int):
    """The NumPyro program of helmholtz's LinearLVM(Gaussian(latent_dim), obs_dim, "diagonal"),
    written by hand: the same sites, priors, plate and observed-site names."""

    def program(x):
        loadings = numpyro.sample("loadings", dist.Normal(0.0, 1.0).expand([obs_dim, latent_dim]).to_event(2))
        mean = numpyro.sample("mean", dist.Normal(0.0, 10.0).expand([obs_dim]).to_event(1))
        noise = numpyro.sample("noise", dist.HalfNormal(1.0).expand([obs_dim]).to_event(1))
        covariance = loadings @ loadings.T + jnp.diag(noise**2)
        with numpyro.plate("data", x.shape[0]):
            numpyro.sample("x", dist.MultivariateNormal(mean, covariance_matrix=covariance), obs=x)

    return program


def make_runners(args, x):
    """Two functions ``run(num_steps) -> losses`` that each do one whole fit and wait for it,
    by name, and a ``prewarm()`` that runs the shared initialisation once."""
    program = factor_analysis(args.obs_dim, args.latent_dim)
    model = helmholtz.models.FactorAnalysis(args.obs_dim, args.latent_dim)

    def run_numpyro(num_steps: int) -> np.ndarray:
        svi = SVI(program, AutoNormal(program), optax_to_numpyro(optax.adam(args.learning_rate)), Trace_ELBO())
        result = svi.run(jax.random.PRNGKey(args.seed), num_steps, x, progress_bar=False)
        jax.block_until_ready((result.params, result.state, result.losses))
        return np.asarray(result.losses)

    def run_helmholtz(num_steps: int) -> np.ndarray:
        fit = helmholtz.fit(
            model,
            x,
            method="svi",
            key=args.seed,
            guide="normal",
            num_steps=num_steps,
            learning_rate=args.learning_rate,
            patience=0,
            check_every=args.check_every,
            progress_bar=False,
        )
        jax.block_until_ready(fit.posterior.params)
        return np.asarray(fit.history["loss"])

    def prewarm() -> None:
        svi = SVI(program, AutoNormal(program), optax_to_numpyro(optax.adam(args.learning_rate)), Trace_ELBO())
        jax.block_until_ready(svi.init(jax.random.PRNGKey(args.seed), x))

    return {"helmholtz": run_helmholtz, "numpyro": run_numpyro}, prewarm


def timed(run, num_steps: int) -> tuple[float, np.ndarray]:
    """Seconds for ``run(num_steps)``, with Python's garbage collector held off as ``timeit``
    does: a full collection in a process that has imported JAX, NumPyro and helmholtz's
    dependencies takes about 0.2 s and would land on whichever side happened to trigger it."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        losses = run(num_steps)
        return time.perf_counter() - start, losses
    finally:
        gc.enable()


def measure(args, runners, prewarm) -> dict:
    names = list(runners)
    results = {name: {"first": None, "long": [], "short": [], "losses": None} for name in names}

    # The eager operations of guide set-up and svi.init are the same on both sides and are
    # compiled once per process: do that first so that neither side's first call pays for both.
    prewarm()
    # Warm-up: the first call of each side traces and compiles its loop (and fills the cache).
    for name in names:
        seconds, losses = timed(runners[name], args.num_steps)
        results[name]["first"] = seconds
        results[name]["losses"] = losses
        print(f"  first call {name:<10} {args.num_steps} steps: {seconds:6.2f} s (compiles)", flush=True)
    if args.fixed_cost and args.check_every != args.num_steps:
        for name in names:  # the short fits have their own scan length: compile it too
            timed(runners[name], args.check_every)

    for repeat in range(args.repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        line = []
        for name in order:
            seconds, _ = timed(runners[name], args.num_steps)
            results[name]["long"].append(seconds)
            line.append(f"{name} {seconds:6.2f} s")
        if args.fixed_cost:
            for name in order[::-1]:
                seconds, _ = timed(runners[name], args.check_every)
                results[name]["short"].append(seconds)
        print(f"  repeat {repeat + 1}/{args.repeats}: " + ", ".join(line), flush=True)
    return results


def report(args, results, title: str | None = None, loss_tolerance: float = 1e-3) -> None:
    """Print the table and the verdicts; ``title`` describes the fit (default: this
    script's factor analysis); final losses further apart than ``loss_tolerance``
    (relative) are flagged."""
    rows = {}
    for name, r in results.items():
        row = {
            "first": r["first"],
            "median": statistics.median(r["long"]),
            "best": min(r["long"]),
        }
        if r["short"]:
            # The fastest calls are the ones least disturbed by other work on the machine.
            extra_steps = args.num_steps - args.check_every
            per_step = (row["best"] - min(r["short"])) / extra_steps if extra_steps else float("nan")
            row["fixed"] = min(r["short"]) - per_step * args.check_every
            row["marginal"] = 1.0 / per_step if per_step > 0 else float("nan")
        tail = r["losses"][-max(1, len(r["losses"]) // 10) :]
        row["loss"] = float(np.mean(tail))
        rows[name] = row

    print()
    title = (
        title or f"factor analysis: obs_dim={args.obs_dim}, latent_dim={args.latent_dim}, num_points={args.num_points}"
    )
    print(
        f"{title}; {args.num_steps} steps per fit, check_every={args.check_every}, {args.repeats} repeats, "
        f"compile cache {'on' if args.compile_cache else 'off'}; backend {jax.default_backend()}"
    )
    header = f"{'method':<10} {'steps/s':>9} {'best steps/s':>13} {'first call s':>13}"
    if args.fixed_cost:
        header += f" {'fixed s/call':>13} {'marginal steps/s':>17}"
    header += f" {'final loss':>13}"
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        line = f"{name:<10} {args.num_steps / row['median']:9.1f} {args.num_steps / row['best']:13.1f} {row['first']:13.2f}"
        if args.fixed_cost:
            line += f" {row['fixed']:13.3f} {row['marginal']:17.1f}"
        line += f" {row['loss']:13.2f}"
        print(line)
    print("steps/s: from the median time of a whole fit; best: from the fastest", end="")
    if args.fixed_cost:
        print(
            f"; fixed and marginal: from the fastest\nfits of {args.num_steps} and {args.check_every} steps "
            "(time = fixed + steps / marginal rate)",
            end="",
        )
    print()

    hz, base = rows["helmholtz"], rows["numpyro"]
    print()

    def verdict(label, time_ratio):
        # time_ratio: helmholtz's time per step over numpyro's, so overhead = time_ratio - 1.
        overhead = 100.0 * (time_ratio - 1.0)
        status = "meets" if overhead < args.goal else "MISSES"
        print(
            f"{label:<36} helmholtz/numpyro steps/s = {1.0 / time_ratio:.3f}, overhead = {overhead:+5.1f}% "
            f"({status} the goal of < {args.goal:g}%)"
        )

    # Each repeat times the two back to back, so their ratio cancels most of the machine's drift.
    paired = statistics.median(h / n for h, n in zip(results["helmholtz"]["long"], results["numpyro"]["long"]))
    verdict("whole fit (median of paired ratios):", paired)
    verdict("whole fit (best times):", hz["best"] / base["best"])
    if args.fixed_cost and np.isfinite(hz["marginal"]) and np.isfinite(base["marginal"]):
        verdict("per step (marginal rates):", base["marginal"] / hz["marginal"])
    spread = max(max(r["long"]) / min(r["long"]) for r in results.values())
    if spread > 1.25:
        print(
            f"NOTE: the timed fits of one method varied by a factor of {spread:.1f} (other work on the machine?): "
            "the figures above cannot resolve a few percent. Rerun on an idle machine or with more --repeats."
        )
    relative = abs(hz["loss"] - base["loss"]) / abs(base["loss"])
    print(
        f"final mean loss (last 10% of steps): helmholtz {hz['loss']:.4f}, numpyro {base['loss']:.4f} "
        f"(relative difference {relative:.1e})"
    )
    if relative > loss_tolerance:
        print("WARNING: the final losses differ: the two sides may not run the same computation")


@contextlib.contextmanager
def compile_cache(enabled: bool, prefix: str):
    """JAX's persistent compilation cache in a temporary directory, removed afterwards.
    Must be entered before the first compilation of the process."""
    if not enabled:
        yield
        return
    cache_dir = tempfile.mkdtemp(prefix=prefix)
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    try:
        yield
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


def main(argv=None) -> None:
    args = parse_args(argv)
    with compile_cache(args.compile_cache, "svi-overhead-xla-"):
        x = simulate(args.seed, args.num_points, args.obs_dim, args.latent_dim)
        runners, prewarm = make_runners(args, x)
        print(f"timing helmholtz.fit(method='svi') against NumPyro SVI.run on {jax.devices()[0]}", flush=True)
        results = measure(args, runners, prewarm)
        report(args, results)


if __name__ == "__main__":
    main()
