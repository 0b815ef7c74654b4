"""The simulation-based back ends ``npe``, ``nle`` and ``nre``: the ``sbi`` package.

We do not reimplement sbi; this module is the one place where the two worlds meet:
- the model's declared priors become a torch prior (:func:`torch_prior`);
- parameters are drawn in torch, simulated in our JAX simulator in large batches (chunked
  and spread over devices by the simulator), and the summary statistics cross back to
  torch once per round;
- invalid simulations (NaN or inf summaries: blow-ups) are excluded, counted, and the
  counts kept in the Fit's diagnostics;
- the trained network becomes a :class:`NeuralPosterior`, which the Fit samples like any
  other posterior and saves as plain weight arrays (no pickle).

Several rounds (``num_rounds > 1``) focus the simulations on the observation: NPE uses
truncated proposals (Deistler et al. 2022: the prior cut to the posterior's
1 - ``truncation_quantile`` highest-density region, trained with the first-round loss),
NLE and NRE sample the next round from the current posterior (Papamakarios et al. 2019;
Hermans et al. 2020).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import time
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import torch
from tqdm.auto import tqdm

from helmholtz.inference._sbi_reporting import epoch_progress, summarised_warnings, with_epoch_progress
from helmholtz.inference.fit import Fit
from helmholtz.inference.posterior import ConditionsOnNewObservation, LogDensity, Posterior, register_posterior_kind
from helmholtz.inference.registry import register_backend
from helmholtz.inference.simulation_bank import SimulationBank, key_record
from helmholtz.inference.training import check_positive_int, is_real
from helmholtz.models.simulators.base import Simulator
from helmholtz.utils import as_key

METHODS = ("npe", "nle", "nre")
_ESTIMATOR_DEFAULTS = {"npe": "zuko_maf", "nle": "maf", "nre": "resnet"}
# The estimators sbi builds for each method (sbi's names; NPE and NLE share the density estimators).
_DENSITY_ESTIMATORS = (
    "mdn",
    "made",
    "maf",
    "maf_rqs",
    "nsf",
    "zuko_nice",
    "zuko_maf",
    "zuko_nsf",
    "zuko_ncsf",
    "zuko_sospf",
    "zuko_naf",
    "zuko_unaf",
    "zuko_gf",
    "zuko_bpf",
)
ESTIMATORS = {"npe": _DENSITY_ESTIMATORS, "nle": _DENSITY_ESTIMATORS, "nre": ("linear", "mlp", "resnet")}
# Below this many simulations a neural estimator learns little beyond the prior (the
# posterior of npe with 2 simulations piled up at the prior's edge): a warning says so.
FEW_SIMULATIONS = 100


class JaxPrior(torch.distributions.Distribution):
    """A simulator's joint prior as the torch distribution sbi expects, for any declared
    priors: draws and log densities come from the model's NumPyro distributions (drawn with
    a seed taken from torch's generator, so sbi's seeding holds), and the support from their
    bounds, which sbi uses to keep posterior mass inside the prior and to transform
    parameters to an unbounded space."""

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, model: Simulator):
        self.model = model
        low, high = (np.concatenate([np.ravel(b) for b in part]) for part in zip(*(p.bounds for p in model.parameters)))
        self.low, self.high = torch.tensor(low, dtype=torch.float32), torch.tensor(high, dtype=torch.float32)
        self._log_prior = jax.jit(model.log_prior)
        super().__init__(torch.Size(), torch.Size([model.num_theta]), validate_args=False)

    @property
    def bounded(self) -> bool:
        """True when some parameter's support has a bound."""
        return bool(torch.isfinite(self.low).any() or torch.isfinite(self.high).any())

    @property
    def uniform_on_a_box(self) -> bool:
        """True when every parameter is uniform: the prior cut to a box is then uniform on it."""
        return all(isinstance(p.prior, dist.Uniform) for p in self.model.parameters)

    @property
    def support(self):
        constraints = torch.distributions.constraints
        finite_low, finite_high = torch.isfinite(self.low), torch.isfinite(self.high)
        if bool((finite_low & finite_high).all()):
            return constraints.independent(constraints.interval(self.low, self.high), 1)
        if not self.bounded:
            return constraints.independent(constraints.real, 1)

        def one(low, high, has_low, has_high):
            if has_low and has_high:
                return constraints.interval(low, high)
            if has_low:
                return constraints.greater_than(low)
            return constraints.less_than(high) if has_high else constraints.real

        each = [one(*values) for values in zip(self.low, self.high, finite_low.tolist(), finite_high.tolist())]
        return constraints.independent(constraints.cat(each, dim=-1, lengths=[1] * len(each)), 1)

    @functools.cached_property
    def _moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and sd of each entry of theta (sbi z-scores an unbounded prior's space with
        them): exact where NumPyro knows them, else from 10,000 draws."""
        means, sds = [], []
        draws = self.model.sample_prior(jax.random.PRNGKey(0), 10_000)
        for p in self.model.parameters:
            try:
                mean, sd = np.ravel(p.prior.mean), np.sqrt(np.ravel(p.prior.variance))
            except NotImplementedError:
                mean, sd = np.full(p.size, np.nan), np.full(p.size, np.nan)
            sample = np.asarray(draws[p.name]).reshape(-1, p.size)
            exact = np.isfinite(mean) & np.isfinite(sd)
            means.append(np.where(exact, mean, sample.mean(0)))
            sds.append(np.where(exact, sd, sample.std(0)))
        return torch.tensor(np.concatenate(means), dtype=torch.float32), torch.tensor(
            np.concatenate(sds), dtype=torch.float32
        )

    @property
    def mean(self):
        return self._moments[0]

    @property
    def stddev(self):
        return self._moments[1]

    def sample(self, sample_shape=()):
        sample_shape = torch.Size(sample_shape)
        seed = int(torch.randint(0, 2**31 - 1, ()))
        draws = self.model.sample_prior(jax.random.PRNGKey(seed), max(sample_shape.numel(), 1))
        theta = np.array(self.model.theta_of(draws), dtype=np.float32)
        return torch.from_numpy(theta).reshape(sample_shape + self.event_shape)

    def log_prob(self, value):
        theta = value.detach().cpu().to(torch.float32)
        inside = ((theta >= self.low) & (theta <= self.high)).all(-1)
        flat = np.asarray(theta.reshape(-1, self.model.num_theta).numpy())
        log_p = torch.from_numpy(np.array(self._log_prior(flat), dtype=np.float32)).reshape(theta.shape[:-1])
        return torch.where(inside, log_p, torch.tensor(-torch.inf)).to(value.device)


def torch_prior(model: Simulator) -> JaxPrior:
    """The model's prior as the torch distribution sbi expects (the only conversion)."""
    return JaxPrior(model)


@contextlib.contextmanager
def _torch_seeded(key):
    """Torch's global generator seeded from a JAX key, restored afterwards."""
    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def requires_simulator(model) -> str | None:
    if not isinstance(model, Simulator):
        return "it needs a simulator model (declared parameters and a simulate_one function)"
    return None


@dataclass(frozen=True)
class EstimatorConfig:
    """Everything needed to rebuild the network before loading its weights."""

    method: str
    estimator: str
    hidden_features: int
    num_transforms: int
    embedding_layers: int  # 0: summaries go straight in; else an MLP embedding of them
    num_parameters: int
    num_features: int

    def build(self, prior):
        from sbi.neural_nets import classifier_nn, likelihood_nn, posterior_nn
        from sbi.neural_nets.embedding_nets import FCEmbedding

        embedding = torch.nn.Identity()
        if self.embedding_layers:
            embedding = FCEmbedding(self.num_features, output_dim=self.num_features, num_layers=self.embedding_layers)
        if self.method == "npe":
            # zuko flows can learn in the prior's unconstrained space, so no posterior mass
            # leaks outside a bounded prior (nflows' maf leaked so much on the Hodgkin-
            # Huxley box that rejecting the leak took longer than training).
            bounded = self.estimator.startswith("zuko") and prior.bounded
            z_score = {"z_score_theta": "transform_to_unconstrained", "x_dist": prior} if bounded else {}
            return posterior_nn(
                self.estimator,
                hidden_features=self.hidden_features,
                num_transforms=self.num_transforms,
                embedding_net=embedding,
                **z_score,
            )
        if self.method == "nle":
            return likelihood_nn(
                self.estimator, hidden_features=self.hidden_features, num_transforms=self.num_transforms
            )
        return classifier_nn(self.estimator, hidden_features=self.hidden_features, embedding_net_x=embedding)

    def trainer(self, prior, device: str):
        from sbi.inference import NLE, NPE, NRE

        builder = self.build(prior)
        # sbi's own progress line is a bare epoch count; ours shows the validation loss too.
        quiet = {"device": device, "show_progress_bars": False, "tracker": _NoTracker()}
        if self.method == "npe":
            return with_epoch_progress(NPE)(prior, density_estimator=builder, **quiet)
        if self.method == "nle":
            return with_epoch_progress(NLE)(prior, density_estimator=builder, **quiet)
        return with_epoch_progress(NRE)(prior, classifier=builder, **quiet)


class _NoTracker:
    """sbi's tracker protocol, doing nothing: by default sbi writes TensorBoard logs into
    ``./sbi-logs`` of whatever folder the user runs from; the Fit keeps the curves."""

    log_dir = ""

    def log_metric(self, name, value, step=None):
        pass

    def log_metrics(self, metrics, step=None):
        pass

    def log_params(self, params):
        pass

    def add_figure(self, name, figure, step=None):
        pass

    def flush(self):
        pass


class NeuralPosterior(Posterior, LogDensity, ConditionsOnNewObservation):
    """A posterior held as a trained sbi network, conditioned on the observed summaries.

    NPE samples directly; NLE and NRE sample their unnormalised posterior with sbi's
    vectorised slice sampler (``mcmc`` options). Amortised use: :meth:`sample_at` and
    :meth:`log_prob_at` condition on other summaries without retraining (exact for
    single-round NPE; later rounds are focused on the observation they were trained for).
    The capabilities it reports say so: :class:`LogDensity` for NPE,
    :class:`ConditionsOnNewObservation` for NPE trained in ``num_rounds=1``.
    """

    kind = "neural"

    def __init__(self, model: Simulator, config: EstimatorConfig, network, x_summary, mcmc: dict, num_rounds: int = 1):
        self.model = model
        self.config = config
        self.network = network.eval()
        self.x_summary = np.asarray(x_summary, dtype=np.float32)
        self.mcmc = dict(mcmc)
        self.num_rounds = int(num_rounds)  # the Fit's option, not part of the saved state
        self.prior = torch_prior(model)
        self._posterior = self._build()

    def _build(self):
        from sbi.inference import DirectPosterior, MCMCPosterior
        from sbi.inference.potentials import likelihood_estimator_based_potential, ratio_estimator_based_potential

        if self.config.method == "npe":
            return DirectPosterior(self.network, self.prior)
        potential = (
            likelihood_estimator_based_potential if self.config.method == "nle" else ratio_estimator_based_potential
        )
        potential_fn, transform = potential(self.network, self.prior, x_o=None)
        return MCMCPosterior(
            potential_fn, self.prior, theta_transform=transform, method="slice_np_vectorized", **self.mcmc
        )

    def _theta(self, key, num_draws: int, x) -> np.ndarray:
        with _torch_seeded(as_key(key)), torch.no_grad(), summarised_warnings(self.config.method, "sampling"):
            draws = self._posterior.sample(
                (num_draws,), x=torch.tensor(np.asarray(x, np.float32)), show_progress_bars=False
            )
        return draws.numpy()

    def sample_at(self, key, num_draws: int, x_summary) -> dict[str, jnp.ndarray]:
        """Draws of the posterior given other summary statistics ``x_summary (F,)``."""
        return self.model.params_of(self._theta(key, num_draws, np.asarray(x_summary)[None]))

    def log_prob_at(self, theta, x_summary) -> np.ndarray:
        """log q(theta | x_summary) for parameter vectors ``theta (n, d)`` (NPE only: the
        other methods' posteriors are unnormalised)."""
        with torch.no_grad():
            theta = torch.tensor(np.asarray(theta, np.float32))
            return self._posterior.log_prob(theta, x=torch.tensor(np.asarray(x_summary, np.float32)[None])).numpy()

    def log_prob(self, draws: dict) -> np.ndarray:
        """log q(theta | observed summaries) of each draw (NPE only)."""
        return self.log_prob_at(np.asarray(self.model.theta_of(draws)), self.x_summary)

    def unavailable(self, capability) -> str | None:
        if capability in (LogDensity, ConditionsOnNewObservation) and self.config.method != "npe":
            return f"{self.config.method} gives an unnormalised posterior, sampled by MCMC"
        if capability is ConditionsOnNewObservation and self.num_rounds > 1:
            return "a multi-round NPE posterior is focused on one observation, not amortised"
        return None

    def sample(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        return self.model.params_of(self._theta(key, num_draws, self.x_summary[None]))

    def grouped(self, key, num_draws: int) -> dict[str, jnp.ndarray]:
        return {name: value[None] for name, value in self.sample(key, num_draws).items()}

    def state(self) -> dict:
        return {
            "config": {name: getattr(self.config, name) for name in EstimatorConfig.__dataclass_fields__},
            "weights": {name: tensor.detach().cpu().numpy() for name, tensor in self.network.state_dict().items()},
            "x_summary": self.x_summary,
            "mcmc": self.mcmc,
        }


def rebuild_neural_posterior(model: Simulator, observed, state: dict, options: dict) -> NeuralPosterior:
    """The inverse of :meth:`NeuralPosterior.state`: the network rebuilt, then its weights;
    the number of rounds comes from the Fit's ``options``."""
    config = EstimatorConfig(**state["config"])
    prior = torch_prior(model)
    # The builder infers shapes (and z-scoring, overwritten by the saved buffers) from a batch.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theta = prior.sample((64,))
        x = torch.randn(64, config.num_features)
        network = config.build(prior)(theta, x)
    network.load_state_dict({name: torch.tensor(np.asarray(value)) for name, value in state["weights"].items()})
    return NeuralPosterior(model, config, network, state["x_summary"], state["mcmc"], options.get("num_rounds", 1))


register_posterior_kind(
    NeuralPosterior,
    rebuild=rebuild_neural_posterior,
    methods=METHODS,
    only={LogDensity: ("npe",), ConditionsOnNewObservation: ("npe",)},
)


# The most first-round (prior) simulations whose summaries a Fit keeps, in
# fit.diagnostics["prior_predictive_summaries"] (20,000 x 14 float32: 1.1 MB).
PRIOR_PREDICTIVE_KEPT = 20_000


def _run(
    method: str,
    model: Simulator,
    x,
    key,
    *,
    num_simulations: int = 10_000,
    num_rounds: int = 1,
    estimator: str | None = None,
    hidden_features: int = 50,
    num_transforms: int = 5,
    embedding_layers: int = 0,
    training_batch_size: int = 200,
    learning_rate: float = 5e-4,
    stop_after_epochs: int = 20,
    max_num_epochs: int = 2**31 - 1,
    truncation_quantile: float = 1e-3,
    mcmc: dict | None = None,
    simulation_bank=None,
    chunk_size: int = 1000,
    device: str = "cpu",
    progress_bar: bool = True,
) -> Fit:
    check_simulation_options(
        method,
        num_simulations=num_simulations,
        num_rounds=num_rounds,
        estimator=estimator,
        hidden_features=hidden_features,
        num_transforms=num_transforms,
        embedding_layers=embedding_layers,
        training_batch_size=training_batch_size,
        learning_rate=learning_rate,
        stop_after_epochs=stop_after_epochs,
        max_num_epochs=max_num_epochs,
        truncation_quantile=truncation_quantile,
        mcmc=mcmc,
        chunk_size=chunk_size,
        device=device,
        progress_bar=progress_bar,
    )
    options = {k: v for k, v in locals().items() if k not in ("method", "model", "x", "key", "simulation_bank")}
    options["simulation_bank"] = None if simulation_bank is None else str(simulation_bank)
    mcmc = mcmc or {"num_chains": 20, "warmup_steps": 50, "thin": 2, "init_strategy": "resample"}
    x_summary = np.asarray(model.summarize(jnp.asarray(x)[None]))[0]
    if not np.isfinite(x_summary).all():
        raise ValueError(
            f"{method}: the observation's summary statistics are not finite: {dict(zip(model.feature_names, x_summary))}"
        )
    config = EstimatorConfig(
        method,
        estimator or _ESTIMATOR_DEFAULTS[method],
        hidden_features,
        num_transforms,
        embedding_layers,
        model.num_theta,
        len(x_summary),
    )
    prior = torch_prior(model)
    # The bank refuses simulations made by another model, prior, key or budget (or, over several rounds, proposal).
    unshaping = ("num_simulations", "simulation_bank", "chunk_size", "device", "progress_bar")
    shaping = {k: v for k, v in options.items() if k not in unshaping}
    record = {
        "key": key_record(key),
        "num_simulations": num_simulations,
        "num_rounds": num_rounds,
        "proposal": None if num_rounds == 1 else {"method": method, **shaping},
    }
    bank = SimulationBank(simulation_bank, model, record) if simulation_bank is not None else None
    trainer = config.trainer(prior, device)
    proposal = prior
    counts = {"num_simulations": [], "num_invalid": [], "epochs": [], "seconds_simulating": [], "seconds_training": []}
    per_round = np.diff(np.linspace(0, num_simulations, num_rounds + 1).astype(int))
    round_keys = jax.random.split(key, num_rounds)
    x_o = torch.tensor(x_summary[None])
    posterior = None
    for round_index, (round_key, round_size) in enumerate(zip(round_keys, per_round)):
        key_theta, key_simulate, key_train = jax.random.split(round_key, 3)

        def draw_parameters():
            with _torch_seeded(key_theta), torch.no_grad():
                if round_index == 0 or method == "npe":
                    return proposal.sample((int(round_size),)).numpy()
                return proposal.sample((int(round_size),), x=x_o, show_progress_bars=False).numpy()

        started = time.perf_counter()
        with summarised_warnings(method, f"drawing round {round_index + 1}'s parameters"):
            theta = draw_parameters() if bank is None else bank.parameters(round_index, draw_parameters)
        with tqdm(
            total=len(theta), desc=f"{method} round {round_index + 1}: simulating", unit="sim", disable=not progress_bar
        ) as bar:

            def simulate(start, stop):
                # Seeded by chunk, so a run resumed from the bank equals an uninterrupted one.
                summaries = model.simulate_summaries(
                    jax.random.fold_in(key_simulate, start), theta[start:stop], chunk_size=chunk_size
                )
                bar.update(stop - start)
                return summaries

            if bank is None:
                summaries = np.concatenate(
                    [simulate(start, min(start + chunk_size, len(theta))) for start in range(0, len(theta), chunk_size)]
                )
            else:
                summaries = bank.summaries(round_index, theta, chunk_size, simulate)
        counts["seconds_simulating"].append(time.perf_counter() - started)
        valid = np.isfinite(summaries).all(axis=1)
        counts["num_simulations"].append(int(len(theta)))
        counts["num_invalid"].append(int((~valid).sum()))
        warn_of_excluded_simulations(method, model, round_index, summaries)
        if valid.sum() < 2:
            raise RuntimeError(
                f"{method}: only {int(valid.sum())} of {len(theta)} simulations in round {round_index} were valid"
            )
        if round_index == 0:
            warn_if_outside_simulations(method, model, x_summary, summaries[valid])
            # The first round draws from the prior: its summaries are a prior-predictive sample
            # that checks (helmholtz.diagnostics.reachability) reuse at no further cost.
            prior_predictive = np.asarray(summaries[valid][:PRIOR_PREDICTIVE_KEPT], dtype=np.float32)
        theta_t, x_t = torch.tensor(theta[valid]), torch.tensor(summaries[valid])
        # TSNPE trains every round as if on prior draws (no proposal given); the
        # likelihood and ratio losses do not depend on the proposal at all.
        with summarised_warnings(method, f"checking round {round_index + 1}'s simulations"):
            if method == "npe":
                trainer.append_simulations(theta_t, x_t, exclude_invalid_x=False)
            else:
                trainer.append_simulations(theta_t, x_t, exclude_invalid_x=False, from_round=round_index)
        started = time.perf_counter()
        training = f"{method} round {round_index + 1}: training"
        with (
            _torch_seeded(key_train),
            epoch_progress(trainer, training, progress_bar),
            summarised_warnings(method, f"training round {round_index + 1}"),
        ):
            network = trainer.train(
                training_batch_size=training_batch_size,
                learning_rate=learning_rate,
                stop_after_epochs=stop_after_epochs,
                max_num_epochs=max_num_epochs,
                **({"force_first_round_loss": True} if method == "npe" else {}),
            )
        counts["seconds_training"].append(time.perf_counter() - started)
        summary = trainer._summary  # sbi keeps its training curves only here
        counts["epochs"].append(int(summary["epochs_trained"][-1]))
        posterior = NeuralPosterior(model, config, network, x_summary, mcmc)
        if round_index + 1 < num_rounds:
            with summarised_warnings(method, f"focusing round {round_index + 2}'s proposal"):
                proposal = _next_proposal(method, prior, posterior, x_o, truncation_quantile)
    # sbi's curves run over every epoch of every round.
    history = {name: np.asarray(summary[name], dtype=np.float64) for name in ("training_loss", "validation_loss")}
    diagnostics = {name: np.asarray(values) for name, values in counts.items()}
    diagnostics["invalid_fraction"] = float(diagnostics["num_invalid"].sum() / diagnostics["num_simulations"].sum())
    diagnostics["prior_predictive_summaries"] = prior_predictive
    return Fit(
        model=model,
        method=method,
        observed=jnp.asarray(x),
        posterior=posterior,
        history=history,
        diagnostics=diagnostics,
        options=options,
    )


def check_simulation_options(
    method: str,
    *,
    num_simulations,
    num_rounds,
    estimator,
    hidden_features,
    num_transforms,
    embedding_layers,
    training_batch_size,
    learning_rate,
    stop_after_epochs,
    max_num_epochs,
    truncation_quantile,
    mcmc,
    chunk_size,
    device,
    progress_bar,
) -> None:
    """A ValueError naming the first option of a simulation-based back end whose value is
    invalid, the value and what is expected; a warning for a budget too small to train on."""
    num_rounds = check_positive_int(method, "num_rounds", num_rounds)
    check_positive_int(
        method,
        "num_simulations",
        num_simulations,
        minimum=2 * num_rounds,
        why=f" (2 per round, num_rounds={num_rounds})",
    )
    if num_simulations < FEW_SIMULATIONS:
        warnings.warn(
            f"{method}: num_simulations={num_simulations} is too few to train a neural estimator "
            f"(use at least {FEW_SIMULATIONS}, and thousands for a posterior worth reading): the posterior will "
            "say little more than the prior, or pile up at its edges",
            UserWarning,
            stacklevel=4,
        )
    valid = ESTIMATORS[method]
    if estimator is not None and estimator not in valid:
        import difflib

        close = difflib.get_close_matches(str(estimator), valid, n=1)
        raise ValueError(
            f"{method}: unknown estimator {estimator!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; valid estimators: {', '.join(valid)}"
        )
    for name, value in (
        ("hidden_features", hidden_features),
        ("num_transforms", num_transforms),
        ("training_batch_size", training_batch_size),
        ("stop_after_epochs", stop_after_epochs),
        ("max_num_epochs", max_num_epochs),
        ("chunk_size", chunk_size),
    ):
        check_positive_int(method, name, value)
    check_positive_int(method, "embedding_layers", embedding_layers, minimum=0, why=" (0: no embedding)")
    if not (is_real(learning_rate) and 0 < learning_rate < math.inf):
        raise ValueError(f"{method}: learning_rate must be a finite number > 0, got {learning_rate!r}")
    if not (is_real(truncation_quantile) and 0 < truncation_quantile < 1):
        raise ValueError(f"{method}: truncation_quantile must be a number in (0, 1), got {truncation_quantile!r}")
    if mcmc is not None and not isinstance(mcmc, dict):
        raise ValueError(f"{method}: mcmc must be a dict of sbi's slice-sampler options or None, got {mcmc!r}")
    if not isinstance(device, str):
        raise ValueError(f"{method}: device must be a torch device name such as 'cpu' or 'cuda', got {device!r}")
    if not isinstance(progress_bar, (bool, np.bool_)):
        raise ValueError(f"{method}: progress_bar must be True or False, got {progress_bar!r}")


def warn_of_excluded_simulations(method: str, model: Simulator, round_index: int, summaries) -> None:
    """Warn, naming the summaries at fault, when simulations of a round give non-finite
    summary statistics: they are left out of training (counted in ``fit.diagnostics``), and
    many of them mean the prior reaches where the simulator fails."""
    bad = ~np.isfinite(summaries)
    excluded = int(bad.any(axis=1).sum())
    if not excluded:
        return
    names = list(getattr(model, "feature_names", None) or [f"summary {i}" for i in range(summaries.shape[1])])
    worst = np.argsort(-bad.sum(axis=0))[:3]
    described = ", ".join(f"{names[i]} ({int(bad[:, i].sum())})" for i in worst if bad[:, i].any())
    warnings.warn(
        f"{method}: round {round_index + 1}: {excluded} of {len(summaries)} simulations "
        f"({excluded / len(summaries):.1%}) gave non-finite summary statistics and are left out of training; "
        f"most often {described}",
        UserWarning,
        stacklevel=4,
    )


def warn_if_outside_simulations(method: str, model: Simulator, x_summary, summaries) -> None:
    """Warn when the observation's summaries lie far outside those simulated from the prior
    (more than three times their range beyond it): the estimator would extrapolate, and its
    posterior piles up at the prior's edge (an observation of 1e30 did so with no word)."""
    if len(summaries) < 2:
        return
    low, high = summaries.min(axis=0), summaries.max(axis=0)
    span = high - low
    outside = (span > 0) & ((x_summary < low - 3 * span) | (x_summary > high + 3 * span))
    if outside.any():
        names = list(getattr(model, "feature_names", None) or [f"summary {i}" for i in range(len(x_summary))])
        described = ", ".join(
            f"{names[i]} = {x_summary[i]:.4g} (simulated: {low[i]:.4g} to {high[i]:.4g})"
            for i in np.flatnonzero(outside)
        )
        warnings.warn(
            f"{method}: the observation lies far outside what the prior simulates: {described}. "
            "The posterior will be an extrapolation; check the observation's units and the prior's ranges",
            UserWarning,
            stacklevel=4,
        )


def _next_proposal(method, prior, posterior: NeuralPosterior, x_o, truncation_quantile):
    if method != "npe":
        return posterior._posterior.set_default_x(x_o)
    return _truncated_prior(prior, posterior._posterior.set_default_x(x_o), truncation_quantile)


def _truncated_prior(prior, conditioned, quantile: float, num_draws: int = 20_000):
    """The prior cut to the posterior's 1 - ``quantile`` highest-density region (TSNPE).

    As sbi's ``get_density_thresholder`` and ``RestrictedPrior``, with one change: a
    uniform prior is first cut to the bounding box of the region (from the same posterior
    draws, widened by 10% each side), because rejection from the whole prior box accepts
    almost nothing once the posterior is narrow (measured: 0.007% on an Allen cell, where
    the round never finished). A uniform prior cut to a box is uniform on the box, so the
    proposal is still exactly the prior restricted to the region.
    """
    from sbi.utils import BoxUniform, RestrictedPrior

    with torch.no_grad():
        draws = conditioned.sample((num_draws,), show_progress_bars=False)
        log_density = conditioned.log_prob(draws)
    threshold = torch.sort(log_density).values[int(quantile * num_draws)]

    def inside(theta):
        return conditioned.log_prob(theta) > threshold

    base = prior
    if prior.uniform_on_a_box:
        kept = draws[log_density > threshold]
        low, high = prior.low, prior.high
        margin = 0.1 * (kept.max(0).values - kept.min(0).values)
        base = BoxUniform(
            torch.maximum(kept.min(0).values - margin, low), torch.minimum(kept.max(0).values + margin, high)
        )
    return RestrictedPrior(base, inside, sample_with="rejection")


def _register(method: str, summary: str):
    def run(model, x, key, **options):
        fit = _run(method, model, x, key, **options)
        fit.posterior.num_rounds = fit.options["num_rounds"]  # what the posterior's capabilities depend on
        return fit

    run.__name__ = f"fit_{method}"
    run.__doc__ = f"""{summary}.

    Options: num_simulations (10,000), num_rounds (1; more focus simulations on the
    observation), estimator ({_ESTIMATOR_DEFAULTS[method]!r}; sbi's names), hidden_features,
    num_transforms, embedding_layers (an MLP embedding of the summaries), training_batch_size,
    learning_rate, stop_after_epochs, max_num_epochs, truncation_quantile (NPE rounds),
    mcmc (sbi's slice-sampler options, NLE/NRE), simulation_bank (a folder: simulations
    saved as they finish and reused on a rerun), chunk_size, device (torch's), progress_bar.
    """
    # run takes **options: the names fit() accepts are _run's keywords.
    options = [p.name for p in inspect.signature(_run).parameters.values() if p.kind is p.KEYWORD_ONLY]
    return register_backend(method, summary, requires_simulator, options=options)(run)


fit_npe = _register("npe", "Neural posterior estimation (sbi NPE; truncated sequential rounds)")
fit_nle = _register("nle", "Neural likelihood estimation (sbi NLE) with slice-sampling MCMC")
fit_nre = _register("nre", "Neural ratio estimation (sbi NRE-B) with slice-sampling MCMC")
