"""Hodgkin-Huxley simulation throughput, in simulation steps per second, against named baselines.

A "step" is one time step of one simulation: a batch of 10,000 simulations of 1,450 ms at
dt = 0.02 ms (72,500 steps each) is 7.25e8 steps. Two models:

* **cortical**: the Pospischil et al. (2008) neuron that Goncalves et al. (2020) fit, with
  all 8 parameters free (intrinsic noise included) drawn from their prior, under a current
  step of 3.25 uA/cm^2 (0.5 nA on the sbi tutorial's 70 um soma) from 100 to 1,100 ms;
* **classic**: the squid axon (NEURON's ``hh``), g_Na and g_K free, no noise, under a step of
  10 uA/cm^2 over the same window.

Methods:

* **ours**: ``HodgkinHuxley.simulate_summaries`` (float32): the 14 summary statistics of
  every simulation, computed while it runs (exponential Euler, noise included);
* **numpy**: the same model written here with NumPy, vectorised over the batch, a Python
  loop over time, the textbook rate functions (each computed once per step), float32,
  noise from ``Generator.standard_normal``. It keeps only the current state: no trace and
  no summary statistics, so its figure is an upper bound on what NumPy would achieve for
  the same output;
* **scalar**: one simulation at a time, as the sbi tutorial writes it (a Python loop over
  time, scalar NumPy math, ``RandomState.randn`` per step). Too slow to run in full: a
  short run (``--scalar-steps``) is timed and its rate is reported;
* **jaxley**: Jaxley's ``HH`` channel in a single compartment (classic model only), the
  batch by ``jax.vmap`` over (gNa, gK), ``jx.integrate`` at the same dt, recording V
  (Jaxley's output; no summary statistics). Run in chunks of ``--jaxley-chunk`` simulations
  to bound the memory of the recorded traces. Skipped with a message if jaxley is missing.

Every timed call is preceded by an untimed one of the same shape (compilation), Python's
garbage collector is held off during it, and JAX results are waited for. Wall-clock times:
run it on an idle machine, pinned (``taskset -c 1``) for a one-core comparison. NumPy and
the scalar loop use one core; ours and Jaxley run on one XLA CPU device unless
``--devices N`` asks for N (``--xla_force_host_platform_device_count``: ours shards each
chunk over them, Jaxley does not). ``--xla-flags`` passes further XLA flags to both (for
example ``--xla_cpu_prefer_vector_width=512`` on an AVX-512 CPU). Both options act before
JAX starts, so they work from the command line only.

Run: ``.venv/bin/python benchmarks/hh_throughput.py`` (a few minutes) or ``--quick``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time


def _xla_options(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--xla-flags", default="")
    return parser.parse_known_args(argv)[0]


if __name__ == "__main__":
    # XLA reads its flags once, when JAX starts: set them before importing it.
    _early = _xla_options(sys.argv[1:])
    _flags = [os.environ.get("XLA_FLAGS", ""), _early.xla_flags]
    if _early.devices > 1:
        _flags.append(f"--xla_force_host_platform_device_count={_early.devices}")
    os.environ["XLA_FLAGS"] = " ".join(flag for flag in _flags if flag)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from helmholtz.models.simulators.hodgkin_huxley import DEFAULT_AREA_CM2, HodgkinHuxley, step_current  # noqa: E402

STIM_FRACTIONS = (100.0 / 1450.0, 1100.0 / 1450.0)  # the stimulus window, as fractions of the duration
CORTICAL_AMPLITUDE = 0.5e-3 / DEFAULT_AREA_CM2  # 0.5 nA on the 70 um soma, in uA/cm^2
CLASSIC_AMPLITUDE = 10.0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=10_000, help="simulations per batch (default 10,000)")
    parser.add_argument("--duration", type=float, default=1450.0, help="simulated ms (default 1,450)")
    parser.add_argument("--dt", type=float, default=0.02, help="time step in ms (default 0.02)")
    parser.add_argument("--quick", action="store_true", help="batch 1,000 x 145 ms, fewer scalar steps: a smoke run")
    parser.add_argument("--models", default="cortical,classic", help="comma-separated: cortical, classic")
    parser.add_argument(
        "--methods", default="ours,numpy,scalar,jaxley", help="comma-separated: ours, numpy, scalar, jaxley"
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="simulate_summaries' chunk_size (default: the library's for the device)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="timed calls of ours (default 2; best and median shown)")
    parser.add_argument("--numpy-steps", type=int, default=0, help="time only this many NumPy steps (0: all)")
    parser.add_argument(
        "--scalar-steps", type=int, default=20_000, help="steps of the timed scalar run (default 20,000)"
    )
    parser.add_argument("--jaxley-chunk", type=int, default=1000, help="simulations per Jaxley call (default 1,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--devices", type=int, default=1, help="XLA CPU devices (command line only; default 1)")
    parser.add_argument(
        "--xla-flags", default="", help="extra XLA flags, e.g. --xla_cpu_prefer_vector_width=512 (command line only)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.duration, args.scalar_steps = (
            min(args.batch, 1000),
            min(args.duration, 145.0),
            min(args.scalar_steps, 5000),
        )
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for name in ("batch", "repeats", "scalar_steps", "jaxley_chunk"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if not set(args.models) <= {"cortical", "classic"} or not set(args.methods) <= {
        "ours",
        "numpy",
        "scalar",
        "jaxley",
    }:
        parser.error("unknown model or method")
    return args


# -- the models, as helmholtz declares them ---------------------------------------------------
def make_model(name: str, args) -> HodgkinHuxley:
    stim_on, stim_off = (args.duration * f for f in STIM_FRACTIONS)
    if name == "cortical":
        current = step_current(
            CORTICAL_AMPLITUDE, duration=args.duration, dt=args.dt, stim_on=stim_on, stim_off=stim_off
        )
        return HodgkinHuxley.cortical(current=current, dt=args.dt, stim_on=stim_on, stim_off=stim_off)
    return HodgkinHuxley.classic(
        amplitude=CLASSIC_AMPLITUDE, duration=args.duration, dt=args.dt, stim_on=stim_on, stim_off=stim_off
    )


def prior_draws(model: HodgkinHuxley, batch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(p.low, p.high, batch) for p in model.parameters], axis=1).astype(np.float32)


def full_parameters(model: HodgkinHuxley, theta: np.ndarray) -> dict:
    """Every constant of the model, the free ones as arrays over the batch (float32)."""
    from helmholtz.models.simulators.channels import CHANNEL_SETS

    values = {**CHANNEL_SETS[model.channels].defaults, **model.constants}
    values = {name: np.float32(value) for name, value in values.items()}
    values.update({name: theta[:, i].astype(np.float32) for i, name in enumerate(model.parameter_names)})
    return values


# -- NumPy, vectorised over the batch ----------------------------------------------------------
def _efun(z):
    """z / (exp(z) - 1), 1 - z/2 near 0 (the tutorial's efun, on arrays)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(z) < 1e-4, 1.0 - z / 2.0, z / np.expm1(z)).astype(z.dtype)


def numpy_simulate(model: HodgkinHuxley, theta: np.ndarray, num_steps: int, seed: int) -> np.ndarray:
    """Run ``num_steps`` exponential-Euler steps of the model for the whole batch; returns V."""
    p = full_parameters(model, theta)
    batch, dt = theta.shape[0], np.float32(model.dt)
    current = model.current.astype(np.float32)
    rng = np.random.default_rng(seed)
    v = np.full(batch, model.v_init, np.float32)
    f32 = np.float32

    if model.channels == "cortical":
        vt, noise = p["V_T"], p["noise"] / np.sqrt(dt)

        def rates(v):
            am = f32(0.32) * _efun(-0.25 * (v - vt - 13.0)) / f32(0.25)
            bm = f32(0.28) * _efun(0.2 * (v - vt - 40.0)) / f32(0.2)
            ah = f32(0.128) * np.exp(-(v - vt - 17.0) / f32(18.0))
            bh = f32(4.0) / (1.0 + np.exp(-0.2 * (v - vt - 40.0)))
            an = f32(0.032) * _efun(-0.2 * (v - vt - 15.0)) / f32(0.2)
            bn = f32(0.5) * np.exp(-(v - vt - 10.0) / f32(40.0))
            return am, bm, ah, bh, an, bn

        am, bm, ah, bh, an, bn = rates(v)
        m, h, n = am / (am + bm), ah / (ah + bh), an / (an + bn)
        pm = 1.0 / (1.0 + np.exp(-0.1 * (v + 35.0)))
        for i in range(num_steps):
            g_na = p["g_Na"] * m**3 * h
            g_k = p["g_K"] * n**4
            g_m = p["g_M"] * pm
            conductance = g_na + g_k + p["g_leak"] + g_m
            drive = current[i] + noise * rng.standard_normal(batch, dtype=np.float32)
            v_inf = (g_na * p["E_Na"] + (g_k + g_m) * p["E_K"] + p["g_leak"] * p["E_leak"] + drive) / conductance
            v = v_inf + (v - v_inf) * np.exp(-dt * conductance)
            am, bm, ah, bh, an, bn = rates(v)
            m = am / (am + bm) + (m - am / (am + bm)) * np.exp(-dt * (am + bm))
            h = ah / (ah + bh) + (h - ah / (ah + bh)) * np.exp(-dt * (ah + bh))
            n = an / (an + bn) + (n - an / (an + bn)) * np.exp(-dt * (an + bn))
            p_inf = 1.0 / (1.0 + np.exp(-0.1 * (v + 35.0)))
            tau_p = p["tau_max"] / (3.3 * np.exp(0.05 * (v + 35.0)) + np.exp(-0.05 * (v + 35.0)))
            pm = p_inf + (pm - p_inf) * np.exp(-dt / tau_p)
        return v

    def rates(v):
        am = _efun(-(v + 40.0) / f32(10.0))
        bm = f32(4.0) * np.exp(-(v + 65.0) / f32(18.0))
        ah = f32(0.07) * np.exp(-(v + 65.0) / f32(20.0))
        bh = 1.0 / (np.exp(-(v + 35.0) / f32(10.0)) + 1.0)
        an = f32(0.1) * _efun(-(v + 55.0) / f32(10.0))
        bn = f32(0.125) * np.exp(-(v + 65.0) / f32(80.0))
        return am, bm, ah, bh, an, bn

    am, bm, ah, bh, an, bn = rates(v)
    m, h, n = am / (am + bm), ah / (ah + bh), an / (an + bn)
    for i in range(num_steps):
        g_na = p["g_Na"] * m**3 * h
        g_k = p["g_K"] * n**4
        conductance = g_na + g_k + p["g_leak"]
        v_inf = (g_na * p["E_Na"] + g_k * p["E_K"] + p["g_leak"] * p["E_leak"] + current[i]) / conductance
        v = v_inf + (v - v_inf) * np.exp(-dt * conductance)
        am, bm, ah, bh, an, bn = rates(v)
        m = am / (am + bm) + (m - am / (am + bm)) * np.exp(-dt * (am + bm))
        h = ah / (ah + bh) + (h - ah / (ah + bh)) * np.exp(-dt * (ah + bh))
        n = an / (an + bn) + (n - an / (an + bn)) * np.exp(-dt * (an + bn))
    return v


# -- one simulation at a time, as the sbi tutorial writes it -----------------------------------
def scalar_simulate(model: HodgkinHuxley, theta_row: np.ndarray, num_steps: int, seed: int) -> float:
    """The sbi tutorial's ``HHsimulator`` loop (scalar NumPy math, one ``randn`` per step)."""
    p = {name: float(value) for name, value in full_parameters(model, theta_row[None]).items() if np.ndim(value) == 0}
    p.update({name: float(theta_row[i]) for i, name in enumerate(model.parameter_names)})
    rng = np.random.RandomState(seed)
    dt, current = float(model.dt), model.current

    def efun(z):
        if np.abs(z) < 1e-4:
            return 1 - z / 2
        return z / (np.exp(z) - 1)

    if model.channels == "cortical":
        vt, tau_max = p["V_T"], p["tau_max"]

        def alpha_m(x):
            return 0.32 * efun(-0.25 * (x - vt - 13.0)) / 0.25

        def beta_m(x):
            return 0.28 * efun(0.2 * (x - vt - 40.0)) / 0.2

        def alpha_h(x):
            return 0.128 * np.exp(-(x - vt - 17.0) / 18.0)

        def beta_h(x):
            return 4.0 / (1 + np.exp(-0.2 * (x - vt - 40.0)))

        def alpha_n(x):
            return 0.032 * efun(-0.2 * (x - vt - 15.0)) / 0.2

        def beta_n(x):
            return 0.5 * np.exp(-(x - vt - 10.0) / 40)

        def p_inf(x):
            return 1.0 / (1.0 + np.exp(-0.1 * (x + 35.0)))

        def tau_p(x):
            return tau_max / (3.3 * np.exp(0.05 * (x + 35.0)) + np.exp(-0.05 * (x + 35.0)))

    else:

        def alpha_m(x):
            return efun(-(x + 40.0) / 10.0)

        def beta_m(x):
            return 4.0 * np.exp(-(x + 65.0) / 18.0)

        def alpha_h(x):
            return 0.07 * np.exp(-(x + 65.0) / 20.0)

        def beta_h(x):
            return 1.0 / (np.exp(-(x + 35.0) / 10.0) + 1.0)

        def alpha_n(x):
            return 0.1 * efun(-(x + 55.0) / 10.0)

        def beta_n(x):
            return 0.125 * np.exp(-(x + 65.0) / 80.0)

    def tau_n(x):
        return 1 / (alpha_n(x) + beta_n(x))

    def n_inf(x):
        return alpha_n(x) / (alpha_n(x) + beta_n(x))

    def tau_m(x):
        return 1 / (alpha_m(x) + beta_m(x))

    def m_inf(x):
        return alpha_m(x) / (alpha_m(x) + beta_m(x))

    def tau_h(x):
        return 1 / (alpha_h(x) + beta_h(x))

    def h_inf(x):
        return alpha_h(x) / (alpha_h(x) + beta_h(x))

    cortical = model.channels == "cortical"
    v = float(model.v_init)
    n, m, h = n_inf(v), m_inf(v), h_inf(v)
    pm = p_inf(v) if cortical else 0.0
    g_m, noise = (p["g_M"], p["noise"]) if cortical else (0.0, 0.0)
    for i in range(num_steps):
        tau_v_inv = (m**3) * p["g_Na"] * h + (n**4) * p["g_K"] + p["g_leak"] + g_m * pm
        v_inf = (
            (m**3) * p["g_Na"] * h * p["E_Na"]
            + (n**4) * p["g_K"] * p["E_K"]
            + p["g_leak"] * p["E_leak"]
            + g_m * pm * p["E_K"]
            + current[i]
            + (noise * rng.randn() / dt**0.5 if cortical else 0.0)
        ) / tau_v_inv
        v = v_inf + (v - v_inf) * np.exp(-dt * tau_v_inv)
        n = n_inf(v) + (n - n_inf(v)) * np.exp(-dt / tau_n(v))
        m = m_inf(v) + (m - m_inf(v)) * np.exp(-dt / tau_m(v))
        h = h_inf(v) + (h - h_inf(v)) * np.exp(-dt / tau_h(v))
        if cortical:
            pm = p_inf(v) + (pm - p_inf(v)) * np.exp(-dt / tau_p(v))
    return v


# -- Jaxley ------------------------------------------------------------------------------------
def jaxley_runner(model: HodgkinHuxley, chunk: int):
    """A function ``theta (n, 2) -> traces`` running Jaxley's HH in one compartment."""
    import jaxley as jx
    from jaxley.channels import HH

    comp = jx.Compartment()
    comp.insert(HH())
    comp.set("v", float(model.v_init))
    comp.init_states()
    area_cm2 = float(comp.nodes["area"].iloc[0]) * 1e-8  # um^2 -> cm^2
    # The same current density as ours: uA/cm^2 * cm^2 = uA, * 1e3 = nA.
    amplitude_na = CLASSIC_AMPLITUDE * area_cm2 * 1e3
    duration = model.current.size * model.dt
    stimulus = jx.step_current(
        model.stim_on, model.stim_off - model.stim_on, amplitude_na, model.dt, duration - model.dt / 2
    )
    comp.record("v", verbose=False)
    comp.make_trainable("HH_gNa", verbose=False)
    comp.make_trainable("HH_gK", verbose=False)
    data_stimuli = comp.data_stimulate(stimulus)

    def one(theta):
        # helmholtz's g in mS/cm^2, Jaxley's in S/cm^2.
        params = [{"HH_gNa": theta[0:1] * 1e-3}, {"HH_gK": theta[1:2] * 1e-3}]
        return jx.integrate(comp, params=params, data_stimuli=data_stimuli, delta_t=model.dt)[0]

    batched = jax.jit(jax.vmap(one))

    def run(theta):
        out = None
        for start in range(0, len(theta), chunk):
            block = theta[start : start + chunk]
            if len(block) < chunk:
                block = np.concatenate([block, np.repeat(block[-1:], chunk - len(block), axis=0)])
            out = batched(jnp.asarray(block))
            jax.block_until_ready(out)
        return out

    return run, stimulus.size


# -- timing ------------------------------------------------------------------------------------
def timed(function, *args, **kwargs):
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = function(*args, **kwargs)
        jax.block_until_ready(result)
        return time.perf_counter() - start, result
    finally:
        gc.enable()


def main(argv=None) -> None:
    args = parse_args(argv)
    steps_per_sim = int(round(args.duration / args.dt))
    print(
        f"HH throughput: batch {args.batch:,} x {steps_per_sim:,} steps (dt {args.dt} ms, {args.duration:g} ms); "
        f"JAX {jax.__version__} on {jax.devices()[0].device_kind} ({len(jax.devices())} device(s)), "
        f"{os.cpu_count()} CPU(s) visible, {len(os.sched_getaffinity(0))} usable; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}",
        flush=True,
    )
    rows = []  # (model, method, steps, seconds, note)
    for model_name in args.models:
        model = make_model(model_name, args)
        theta = prior_draws(model, args.batch, args.seed)
        total = args.batch * steps_per_sim
        if "ours" in args.methods:
            # The whole batch, so that every chunk shape the timed calls use is compiled.
            first, _ = timed(model.simulate_summaries, args.seed, theta, chunk_size=args.chunk_size)
            times = []
            for _ in range(args.repeats):
                seconds, summaries = timed(model.simulate_summaries, args.seed, theta, chunk_size=args.chunk_size)
                times.append(seconds)
            note = f"best of {args.repeats} (median {statistics.median(times):.2f} s); first call {first:.1f} s incl. compile"
            bad = int(np.isnan(summaries).any(axis=1).sum())
            if bad:
                note += f"; {bad} simulations gave NaN features"
            rows.append((model_name, "ours", total, min(times), note))
            print(f"  {model_name:8s} ours    {min(times):8.2f} s  {total / min(times):.3e} steps/s", flush=True)
        if "numpy" in args.methods:
            numpy_steps = min(args.numpy_steps or steps_per_sim, steps_per_sim)
            numpy_simulate(model, theta[:8], 10, args.seed)  # warm-up
            seconds, _ = timed(numpy_simulate, model, theta, numpy_steps, args.seed)
            steps = args.batch * numpy_steps
            note = "state only (no trace, no features)" + (
                "" if numpy_steps == steps_per_sim else f"; {numpy_steps:,} steps timed"
            )
            rows.append((model_name, "numpy", steps, seconds, note))
            print(f"  {model_name:8s} numpy   {seconds:8.2f} s  {steps / seconds:.3e} steps/s", flush=True)
        if "scalar" in args.methods:
            scalar_steps = min(args.scalar_steps, model.current.size)
            seconds, _ = timed(scalar_simulate, model, theta[0], scalar_steps, args.seed)
            rows.append(
                (
                    model_name,
                    "scalar",
                    scalar_steps,
                    seconds,
                    f"1 simulation, {scalar_steps:,} steps timed, rate extrapolated",
                )
            )
            print(f"  {model_name:8s} scalar  {seconds:8.2f} s  {scalar_steps / seconds:.3e} steps/s", flush=True)
        if "jaxley" in args.methods and model_name == "classic":
            try:
                run, jaxley_steps = jaxley_runner(model, min(args.jaxley_chunk, args.batch))
            except ImportError as error:
                print(f"  jaxley skipped: {error}", flush=True)
            else:
                timed(run, theta[: min(args.jaxley_chunk, args.batch)])  # compiles
                seconds, _ = timed(run, theta)
                steps = -(-args.batch // args.jaxley_chunk) * min(args.jaxley_chunk, args.batch) * jaxley_steps
                rows.append(
                    (
                        model_name,
                        "jaxley",
                        steps,
                        seconds,
                        f"records V; chunks of {min(args.jaxley_chunk, args.batch):,}",
                    )
                )
                print(f"  {model_name:8s} jaxley  {seconds:8.2f} s  {steps / seconds:.3e} steps/s", flush=True)

    print()
    header = f"{'model':<9} {'method':<7} {'steps':>14} {'seconds':>9} {'steps/s':>11}  notes"
    print(header)
    print("-" * len(header))
    rate = {}
    for model_name, method, steps, seconds, note in rows:
        rate[(model_name, method)] = steps / seconds
        print(f"{model_name:<9} {method:<7} {steps:>14,} {seconds:>9.2f} {steps / seconds:>11.3e}  {note}")
    print()
    goals = {"numpy": 5.0, "jaxley": 3.0, "scalar": None}
    for model_name in args.models:
        if (model_name, "ours") not in rate:
            continue
        for method, goal in goals.items():
            if (model_name, method) in rate:
                ratio = rate[(model_name, "ours")] / rate[(model_name, method)]
                verdict = (
                    "" if goal is None else f"  ({'meets' if ratio >= goal else 'MISSES'} the goal of >= {goal:g}x)"
                )
                print(f"{model_name:<9} ours/{method:<7} = {ratio:10.1f}x{verdict}")


if __name__ == "__main__":
    main()
