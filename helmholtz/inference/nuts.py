"""The ``nuts`` back end: NumPyro's No-U-Turn sampler, several chains, with R-hat and ESS."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer import NUTS
from tqdm.auto import tqdm

from helmholtz.inference.fit import DrawsPosterior, Fit, rebuild_draws_posterior
from helmholtz.inference.posterior import register_posterior_kind
from helmholtz.inference.registry import register_backend, requires_sampling_without_params
from helmholtz.inference.training import check_positive_int, is_real

# NumPyro's per-draw statistics, under ArviZ's names for them.
_SAMPLE_STATS = {
    "diverging": "diverging",
    "energy": "energy",
    "num_steps": "n_steps",
    "accept_prob": "acceptance_rate",
    "potential_energy": "lp",
}


CHAIN_METHODS = ("sequential", "vectorized", "parallel")

register_posterior_kind(DrawsPosterior, rebuild=rebuild_draws_posterior, methods=("nuts",))


def _default_chain_method(num_chains: int) -> str:
    # Parallel chains need one device each; on a single CPU device sequential chains are
    # faster than vectorised ones, whose trees all wait for the deepest.
    if jax.local_device_count() >= num_chains:
        return "parallel"
    return "vectorized" if jax.default_backend() == "gpu" else "sequential"


class ChainRunner:
    """NumPyro's NUTS kernel for one model and settings, with its chains run by a
    ``lax.scan`` over the kernel's ``sample`` that is compiled once and reused.

    Why not ``numpyro.infer.MCMC``: NumPyro 0.22 re-wraps its sampling loop's body in a
    fresh ``jit`` on every ``run``, so the compilation cache never hits (see
    pyro-ppl/numpyro#2171): each fit recompiles (about 3 s for a small factor analysis)
    and keeps another executable in memory (about 500 memory mappings), so the hundreds
    of fits of a simulation-based calibration ran out of the process's mappings. The
    kernel, its warm-up adaptation and its transitions are NumPyro's; only the loop
    around them is ours, an ``init``/``step`` pair as BlackJAX writes its samplers.
    """

    def __init__(self, model, num_warmup, num_samples, target_accept_prob, max_tree_depth, dense_mass, progress_bar):
        self.kernel = NUTS(
            model.program, target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth, dense_mass=dense_mass
        )
        self.num_warmup, self.num_samples, self.progress_bar = num_warmup, num_samples, progress_bar
        self.bar = None
        self.compiled = {
            "sequential": jax.jit(self._run_chain),
            "vectorized": jax.jit(jax.vmap(self._run_chain, in_axes=(0, None))),
            "parallel": jax.pmap(self._run_chain, in_axes=(0, None)),
        }

    def init(self, key, x):
        """One chain's starting state (NumPyro's initialisation and step-size search)."""
        return self.kernel.init(key, self.num_warmup, model_args=(x,))

    def _run_chain(self, state, x):
        """Warm-up, then ``num_samples`` kept draws (constrained) and their statistics."""
        every = max(1, (self.num_warmup + self.num_samples) // 100)

        def step(state, index):
            state = self.kernel.sample(state, (x,), {})
            if self.progress_bar:
                # The scan's own index is the same for every chain, so under vmap this
                # stays a branch (one update per step for all chains), not a select.
                jax.lax.cond(index % every == 0, lambda: jax.debug.callback(self._advance, every), lambda: None)
            return state

        def draw(state, index):
            state = step(state, index)
            return state, (state.z, {name: getattr(state, name) for name in _SAMPLE_STATS})

        state = jax.lax.scan(lambda state, index: (step(state, index), None), state, jnp.arange(self.num_warmup))[0]
        z, stats = jax.lax.scan(draw, state, jnp.arange(self.num_warmup, self.num_warmup + self.num_samples))[1]
        return jax.vmap(self.kernel.postprocess_fn((x,), {}))(z), stats

    def _advance(self, steps):
        if self.bar is not None:
            self.bar.update(int(steps))

    def run(self, key, x, num_chains: int, chain_method: str):
        """Draws and statistics shaped (chains, draws, ...)."""
        # One init per chain: NumPyro's init with a batch of keys would replace the
        # kernel's sample function by a vmapped one, which the compiled runs then inherit.
        states = [self.init(chain_key, x) for chain_key in jax.random.split(key, num_chains)]
        steps = (self.num_warmup + self.num_samples) * (1 if chain_method == "vectorized" else num_chains)
        with tqdm(
            total=steps, desc=f"nuts, {num_chains} chains ({chain_method})", disable=not self.progress_bar, unit="step"
        ) as self.bar:
            if chain_method == "sequential":
                chains = [self.compiled["sequential"](state, x) for state in states]
                draws, stats = jax.tree.map(lambda *parts: jnp.stack(parts), *chains)
            else:
                stacked = jax.tree.map(lambda *parts: jnp.stack(parts), *states)
                draws, stats = self.compiled[chain_method](stacked, x)
            jax.block_until_ready((draws, stats))
            self.bar.update(steps - self.bar.n)
        self.bar = None
        return draws, stats


@functools.lru_cache(maxsize=8)
def _runner(model, *settings) -> ChainRunner:
    """One runner per model and settings, so refitting the same model to new data of the
    same shape (as SBC does) reuses its compiled chains."""
    return ChainRunner(model, *settings)


def check_nuts_options(num_chains, num_warmup, num_samples, target_accept_prob, max_tree_depth, dense_mass):
    """A ValueError naming the first invalid NUTS option, its value and what is expected."""
    check_positive_int("nuts", "num_chains", num_chains)
    check_positive_int("nuts", "num_warmup", num_warmup, minimum=0, why=" (0: no adaptation)")
    check_positive_int("nuts", "num_samples", num_samples)
    if not (is_real(target_accept_prob) and 0 < target_accept_prob < 1):
        raise ValueError(
            f"nuts: target_accept_prob must be a number in (0, 1) (NumPyro's default is 0.8), got {target_accept_prob!r}"
        )
    check_positive_int("nuts", "max_tree_depth", max_tree_depth, why=" (10 is NumPyro's default)")
    if not isinstance(dense_mass, (bool, np.bool_, list)):
        raise ValueError(f"nuts: dense_mass must be True, False or a list of site groups, got {dense_mass!r}")


@register_backend(
    "nuts",
    "NumPyro No-U-Turn sampler (several chains; R-hat, ESS, divergences)",
    requires_sampling_without_params,
)
def fit_nuts(
    model,
    x,
    key,
    *,
    num_chains: int = 4,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = False,
    chain_method: str | None = None,
    progress_bar: bool = True,
) -> Fit:
    """Sample the posterior with NUTS.

    NUTS takes none of the gradient-trained back ends' shared training options (the user
    guide's "Options"); its own are these, each checked before anything runs.

    Args:
        model: a model with a likelihood whose every latent is continuous and has a prior.
        x: the observations.
        key: a JAX PRNG key.
        num_chains: chains, a positive integer.
        num_warmup: warm-up (adaptation) steps per chain, an integer >= 0.
        num_samples: kept draws per chain, a positive integer.
        target_accept_prob: the step-size adaptation's target acceptance probability, in (0, 1).
        max_tree_depth: the most doublings of a trajectory, an integer >= 1.
        dense_mass: adapt a dense mass matrix (True) or a diagonal one (False).
        chain_method: ``"parallel"``, ``"sequential"`` or ``"vectorized"``; by default
            parallel when there is a device per chain.
        progress_bar: show a progress bar (tqdm) of the sampler's steps.

    Returns:
        The Fit; ``fit.diagnostics`` holds ``r_hat`` and ``ess`` (per site, split R-hat
        and bulk ESS over the chains) and ``num_divergent``.
    """
    check_nuts_options(num_chains, num_warmup, num_samples, target_accept_prob, max_tree_depth, dense_mass)
    if not isinstance(progress_bar, (bool, np.bool_)):
        raise ValueError(f"nuts: progress_bar must be True or False, got {progress_bar!r}")
    num_chains, num_warmup, num_samples = int(num_chains), int(num_warmup), int(num_samples)
    options = dict(
        num_chains=num_chains,
        num_warmup=num_warmup,
        num_samples=num_samples,
        target_accept_prob=target_accept_prob,
        max_tree_depth=max_tree_depth,
        dense_mass=dense_mass,
        chain_method=chain_method or _default_chain_method(num_chains),
    )
    if options["chain_method"] not in CHAIN_METHODS:
        raise ValueError(f"nuts: chain_method must be one of {CHAIN_METHODS}, got {options['chain_method']!r}")
    if options["chain_method"] == "parallel" and jax.local_device_count() < num_chains:
        raise ValueError(
            f"nuts: parallel chains need a device each; {num_chains} chains, {jax.local_device_count()} devices"
        )
    runner = _runner(model, num_warmup, num_samples, target_accept_prob, max_tree_depth, dense_mass, progress_bar)
    draws, extra = runner.run(key, x, num_chains, options["chain_method"])
    draws = {name: np.asarray(value) for name, value in draws.items()}
    sample_stats = {arviz_name: np.asarray(extra[name]) for name, arviz_name in _SAMPLE_STATS.items()}
    sample_stats["lp"] = -sample_stats["lp"]  # potential energy is the negative log density
    diagnostics = {
        "r_hat": {name: np.asarray(split_gelman_rubin(np.asarray(v))) for name, v in draws.items()}
        if num_chains > 1
        else {},
        "ess": {name: np.asarray(effective_sample_size(np.asarray(v))) for name, v in draws.items()},
        "num_divergent": int(sample_stats["diverging"].sum()),
    }
    return Fit(
        model=model,
        method="nuts",
        observed=x,
        posterior=DrawsPosterior(draws),
        diagnostics=diagnostics,
        sample_stats=sample_stats,
        options=options,
    )
