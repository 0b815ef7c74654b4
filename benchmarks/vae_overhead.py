"""Training steps per second of ``helmholtz.fit(..., method="vae")`` against the same VAE
written directly with NumPyro (the pattern of NumPyro's ``examples/vae.py``), and against
the same VAE in Pyro (PyTorch) on the same machine.

The VAE, on binarised MNIST-5k (4,000 training images, 784 pixels):

    z_i ~ Normal(0, I_L),  x_i | z_i ~ Bernoulli(logits = decoder(z_i)),
    q(z_i | x_i) = Normal(loc(x_i), softplus(raw_scale(x_i)) + 1e-4),

decoder L-H-784 and encoder 784-H-2L, tanh hidden layers; minibatches of 128, Adam 1e-3,
``Trace_ELBO`` with one particle. helmholtz declares it as
``NonlinearLVM(Gaussian(L), 784, likelihood="bernoulli", hidden=(H,))``; the NumPyro
baseline is written by hand with ``numpyro.contrib.module.eqx_module`` and a subsampled
plate and run with NumPyro's compiled ``SVI.run``. The timing protocol (warm-up with a
persistent compilation cache, interleaved repeats, paired ratios, fixed vs per-step cost)
is ``svi_overhead.py``'s; see its docstring. Pyro runs its usual Python loop of
``svi.step`` on PyTorch's CPU build, timed over the same number of steps after a warm-up.

Run: ``make bench`` or ``.venv/bin/python benchmarks/vae_overhead.py --help``.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
from numpyro.contrib.module import eqx_module
from numpyro.infer import SVI, Trace_ELBO
from numpyro.optim import optax_to_numpyro
from svi_overhead import compile_cache, measure, report

import helmholtz

MIN_SCALE = 1e-4


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latent-dim", type=int, default=20, help="latent dimensions L (default 20)")
    parser.add_argument("--hidden", type=int, default=400, help="hidden units H of encoder and decoder (default 400)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per step (default 128)")
    parser.add_argument("--num-steps", type=int, default=2000, help="steps per timed fit (default 2000)")
    parser.add_argument("--check-every", type=int, default=500, help="helmholtz's chunk length (default 500)")
    parser.add_argument("--repeats", type=int, default=5, help="timed fits per method (default 5)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam step size (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--goal", type=float, default=5.0, help="overhead goal in percent (default 5)")
    parser.add_argument(
        "--pyro", action=argparse.BooleanOptionalAction, default=True, help="also time Pyro (default on)"
    )
    parser.add_argument("--fixed-cost", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile-cache", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    if args.num_steps % args.check_every:
        parser.error("--num-steps must be a multiple of --check-every (helmholtz rounds up to whole chunks)")
    return args


def numpyro_vae(latent_dim: int, hidden: int, obs_dim: int, batch_size: int):
    """The model and guide, written as NumPyro's VAE example writes them."""
    decoder_net = eqx.nn.MLP(latent_dim, obs_dim, hidden, depth=1, activation=jax.nn.tanh, key=jax.random.PRNGKey(1))
    encoder_net = eqx.nn.MLP(
        obs_dim, 2 * latent_dim, hidden, depth=1, activation=jax.nn.tanh, key=jax.random.PRNGKey(2)
    )

    def model(x):
        decoder = eqx_module("decoder", decoder_net)
        with numpyro.plate("data", x.shape[0], subsample_size=batch_size) as idx:
            z = numpyro.sample("z", dist.Normal(0, 1).expand([latent_dim]).to_event(1))
            numpyro.sample("x", dist.Bernoulli(logits=jax.vmap(decoder)(z)).to_event(1), obs=x[idx])

    def guide(x):
        encoder = eqx_module("encoder", encoder_net)
        with numpyro.plate("data", x.shape[0], subsample_size=batch_size) as idx:
            loc, raw_scale = jnp.split(jax.vmap(encoder)(x[idx]), 2, axis=-1)
            numpyro.sample("z", dist.Normal(loc, jax.nn.softplus(raw_scale) + MIN_SCALE).to_event(1))

    return model, guide


def make_runners(args, x):
    model, guide = numpyro_vae(args.latent_dim, args.hidden, x.shape[1], args.batch_size)
    declared = helmholtz.models.NonlinearLVM(
        helmholtz.priors.Gaussian(args.latent_dim), x.shape[1], likelihood="bernoulli", hidden=(args.hidden,)
    )

    def run_numpyro(num_steps: int) -> np.ndarray:
        svi = SVI(model, guide, optax_to_numpyro(optax.adam(args.learning_rate)), Trace_ELBO())
        result = svi.run(jax.random.PRNGKey(args.seed), num_steps, x, progress_bar=False)
        jax.block_until_ready((result.params, result.state, result.losses))
        return np.asarray(result.losses)

    def run_helmholtz(num_steps: int) -> np.ndarray:
        fit = helmholtz.fit(
            declared,
            x,
            method="vae",
            key=args.seed,
            num_steps=num_steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            encoder_hidden=(args.hidden,),
            patience=0,
            check_every=args.check_every,
            progress_bar=False,
        )
        jax.block_until_ready(fit.posterior.params)
        return np.asarray(fit.history["loss"])

    def prewarm() -> None:
        svi = SVI(model, guide, optax_to_numpyro(optax.adam(args.learning_rate)), Trace_ELBO())
        jax.block_until_ready(svi.init(jax.random.PRNGKey(args.seed), x))

    return {"helmholtz": run_helmholtz, "numpyro": run_numpyro}, prewarm


def pyro_steps_per_second(args, x: np.ndarray) -> tuple[float, float]:
    """Steps per second of the same VAE in Pyro, and its mean loss over the last 10% of steps."""
    import pyro
    import pyro.distributions as pdist
    import torch
    from torch import nn

    pyro.set_rng_seed(args.seed)
    pyro.clear_param_store()
    data = torch.tensor(np.asarray(x), dtype=torch.float32)
    latent, hidden, obs = args.latent_dim, args.hidden, data.shape[1]
    decoder = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, obs))
    encoder = nn.Sequential(nn.Linear(obs, hidden), nn.Tanh(), nn.Linear(hidden, 2 * latent))

    def model(x):
        pyro.module("decoder", decoder)
        with pyro.plate("data", x.shape[0], subsample_size=args.batch_size) as idx:
            z = pyro.sample("z", pdist.Normal(torch.zeros(latent), 1.0).to_event(1))
            pyro.sample("x", pdist.Bernoulli(logits=decoder(z)).to_event(1), obs=x[idx])

    def guide(x):
        pyro.module("encoder", encoder)
        with pyro.plate("data", x.shape[0], subsample_size=args.batch_size) as idx:
            loc, raw_scale = encoder(x[idx]).chunk(2, dim=-1)
            pyro.sample("z", pdist.Normal(loc, nn.functional.softplus(raw_scale) + MIN_SCALE).to_event(1))

    svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": args.learning_rate}), pyro.infer.Trace_ELBO())
    for _ in range(50):  # warm-up: parameter creation, allocator
        svi.step(data)
    start = time.perf_counter()
    losses = [svi.step(data) for _ in range(args.num_steps)]
    seconds = time.perf_counter() - start
    return args.num_steps / seconds, float(np.mean(losses[-max(1, len(losses) // 10) :]))


def main(argv=None) -> None:
    args = parse_args(argv)
    with compile_cache(args.compile_cache, "vae-overhead-xla-"):
        x = jnp.asarray(helmholtz.data.load_mnist().binarised().train)
        runners, prewarm = make_runners(args, x)
        print(f"timing helmholtz.fit(method='vae') against NumPyro SVI.run on {jax.devices()[0]}", flush=True)
        results = measure(args, runners, prewarm)
        title = f"VAE on binarised MNIST-5k: 784-{args.hidden}-{args.latent_dim}, batch {args.batch_size}"
        # The two sides draw their networks' starting weights differently, so their
        # losses agree to about 1% after a short fit, not to float precision.
        report(args, results, title=title, loss_tolerance=2e-2)
        if args.pyro:
            try:
                import pyro  # noqa: F401
            except ImportError:
                print("\nPyro is not installed (pip install -e '.[bench]'): its comparison is skipped")
                return
            pyro_rate, pyro_loss = pyro_steps_per_second(args, np.asarray(x))
            best = args.num_steps / min(results["helmholtz"]["long"])
            print(
                f"\nPyro {pyro.__version__} (torch CPU): {pyro_rate:.1f} steps/s, final mean loss {pyro_loss:.1f}; "
                f"helmholtz (best whole fit) {best:.1f} steps/s: {best / pyro_rate:.2f}x Pyro "
                f"({'meets' if best > pyro_rate else 'MISSES'} the goal of being faster)"
            )


if __name__ == "__main__":
    main()
