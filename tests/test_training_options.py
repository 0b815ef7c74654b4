"""Options: the training options declared once, unknown options refused before anything
runs (every back end), values out of range refused with the option, the value and what is
expected (issue #20), and a non-finite loss reported at the step it happened with what to
change."""

import dataclasses
import inspect
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest

import helmholtz as hz
from helmholtz.inference import registry
from helmholtz.inference.registry import Backend, register_backend
from helmholtz.inference.svi import SVI_TRAINING
from helmholtz.inference.training import AMORTISED_TRAINING, AmortisedOptions, TrainingOptions
from helmholtz.models import EightSchools, GaussianLinear, Model, ProbabilisticPCA
from helmholtz.models.base import check_finite_array

SIGMA = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
GRADIENT_TRAINED = ("svi", "vae", "wake-sleep", "rws")
AMORTISED = ("vae", "wake-sleep", "rws")


@dataclass(frozen=True)
class ARMA11(Model):
    """ARMA(1, 1) as Stan's ``arma11`` writes it: err_t = y_t - mu - phi y_{t-1} - theta err_{t-1}.

    The moving-average coefficient theta is unconstrained, and past |theta| = 1 the errors
    grow as |theta|^t: at |theta| of about 1.4 and more, 200 steps overflow float32 and
    the log density is -inf."""

    can_simulate = False

    def validate_data(self, x):
        return check_finite_array(x, self.name, ndim=1)

    def num_points_of(self, x):
        return None

    def program(self, x=None, *, num_points=None):
        x = jnp.zeros(num_points or 2) if x is None else x
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        phi = numpyro.sample("phi", dist.Normal(0.0, 2.0))
        theta = numpyro.sample("theta", dist.Normal(0.0, 2.0))
        sigma = numpyro.sample("sigma", dist.HalfCauchy(5.0))

        def step(previous_error, y):
            error = y[1] - (mu + phi * y[0] + theta * previous_error)
            return error, error

        first = x[0] - (mu + phi * mu)
        _, errors = jax.lax.scan(step, first, (x[:-1], x[1:]))
        errors = jnp.concatenate([first[None], errors])
        # y_t = (y_t - err_t) + err_t with err_t ~ Normal(0, sigma): the map from y to the
        # errors is triangular with a unit diagonal, so this is Stan's density of y. Overflowed errors
        # must give a non-finite loss (what the tests below provoke), not a validation error.
        numpyro.sample("x", dist.Normal(x - errors, sigma, validate_args=False).to_event(1), obs=x)


def arma_series(num_steps=200, seed=0):
    """A series from ARMA(1, 1) with mu = 1, phi = 0.6, theta = 0.3 and unit noise."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=num_steps)
    y = np.zeros(num_steps)
    for t in range(num_steps):
        y[t] = 1.0 + 0.6 * (y[t - 1] if t else 1.0) + 0.3 * (noise[t - 1] if t else 0.0) + noise[t]
    return y


@pytest.fixture(scope="module")
def ppca_data():
    return ProbabilisticPCA(4, 1, collapse_local=False), np.random.default_rng(0).normal(size=(20, 4))


def _model_and_data(method):
    if method in ("svi", "nuts"):
        return EightSchools(sigma=SIGMA), Y
    if method in AMORTISED:
        return ProbabilisticPCA(4, 1, collapse_local=False), np.zeros((5, 4))
    return GaussianLinear(dim=2), np.zeros(2)


# -- declared once -----------------------------------------------------------------------


def test_every_gradient_trained_back_end_takes_the_one_declaration_of_the_shared_options():
    backends = hz.backends()
    for method in GRADIENT_TRAINED:
        assert set(TrainingOptions.names()) <= backends[method].options, method
        # Not restated: the back end's own signature names none of the shared options.
        own = set(inspect.signature(backends[method].run).parameters)
        assert not own & set(AmortisedOptions.names()), (method, own & set(AmortisedOptions.names()))
    for method in AMORTISED:
        assert set(AmortisedOptions.names()) <= backends[method].options, method
    assert issubclass(AmortisedOptions, TrainingOptions)
    assert {"guide", "init_scale", "elbo", "num_particles"} <= backends["svi"].options
    assert "batch_size" not in backends["svi"].options


def test_each_back_end_keeps_its_defaults():
    assert (SVI_TRAINING.num_steps, SVI_TRAINING.learning_rate) == (20_000, 1e-2)
    assert (AMORTISED_TRAINING.num_steps, AMORTISED_TRAINING.learning_rate) == (10_000, 1e-3)
    assert (AMORTISED_TRAINING.batch_size, AMORTISED_TRAINING.encoder_hidden) == (None, (64, 64))
    for options in (SVI_TRAINING, AMORTISED_TRAINING):
        assert (options.check_every, options.patience, options.tolerance, options.progress_bar) == (500, 5, 1e-5, True)


def test_the_shared_options_are_documented_once_and_each_back_end_points_there():
    documented = TrainingOptions.__doc__ + AmortisedOptions.__doc__
    for name in AmortisedOptions.names():
        assert f"{name}:" in documented, name
    for method in GRADIENT_TRAINED:
        assert "TrainingOptions" in hz.backends()[method].run.__doc__, method
        assert "Args:" in hz.backends()[method].run.__doc__, method


def test_options_of_a_back_end_are_read_from_its_signature_or_declared():
    def run(model, x, key, *, alpha=1, beta=2):
        pass

    assert Backend("demo", "", lambda model: None, run).options == {"alpha", "beta"}

    def run_with_options(model, x, key, *, alpha=1, **options):
        pass

    with pytest.raises(TypeError, match="takes \\*\\*options; declare their names"):
        register_backend("undeclared", "", lambda model: None)(run_with_options)
    assert Backend("demo", "", lambda model: None, run_with_options, frozenset({"gamma"})).options == {"alpha", "gamma"}
    assert "undeclared" not in hz.backends()


# -- unknown options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, typo, meant",
    [
        ("svi", "num_stpes", "num_steps"),
        ("nuts", "num_chain", "num_chains"),
        ("vae", "learnig_rate", "learning_rate"),
        ("wake-sleep", "batchsize", "batch_size"),
        ("rws", "num_particle", "num_particles"),
        ("npe", "num_simulation", "num_simulations"),
        ("nle", "chunksize", "chunk_size"),
        ("nre", "estimater", "estimator"),
    ],
)
def test_a_misspelled_option_is_refused_with_the_closest_and_the_valid_ones(method, typo, meant, monkeypatch):
    # Refused before anything runs: the back end itself is never called.
    def never(*args, **kwargs):
        raise AssertionError("the back end ran")

    monkeypatch.setitem(registry._BACKENDS, method, dataclasses.replace(hz.backends()[method], run=never))
    valid = ", ".join(sorted(hz.backends()[method].options))
    message = f"{method}: unknown option '{typo}' (did you mean '{meant}'?); valid options: {valid}"
    model, data = _model_and_data(method)
    with pytest.raises(ValueError) as refused:
        hz.fit(model, data, method=method, **{typo: 10})
    assert str(refused.value) == message


def test_every_registered_back_end_refuses_an_unknown_option(monkeypatch):
    """Whatever is registered, now or later: the check is the registry's, not each back end's."""

    def never(*args, **kwargs):
        raise AssertionError("the back end ran")

    for method, backend in hz.backends().items():
        monkeypatch.setitem(registry._BACKENDS, method, dataclasses.replace(backend, run=never))
        model, data = _model_and_data(method)
        with pytest.raises(ValueError, match=f"^{method}: unknown option 'colour'; valid options: "):
            hz.fit(model, data, method=method, colour="red")


def test_several_unknown_options_are_named_together():
    message = "svi: unknown options 'colour', 'num_step' \\(did you mean 'num_steps'\\?\\); valid options: check_every"
    with pytest.raises(ValueError, match=message):
        hz.fit(EightSchools(sigma=SIGMA), Y, method="svi", num_step=1, colour="red")


# -- values out of range ------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(learning_rate=0), "svi: learning_rate must be a finite number > 0 .*got 0: with 0 the parameters"),
        (dict(learning_rate=-1e-3), "svi: learning_rate must be a finite number > 0 .*got -0.001"),
        (dict(learning_rate=float("nan")), "svi: learning_rate must be a finite number > 0"),
        (dict(learning_rate="1e-3"), "svi: learning_rate must be a finite number > 0"),
        (dict(num_particles=-2), "svi: num_particles must be a positive integer, got -2"),
        (dict(num_particles=1.5), "svi: num_particles must be a positive integer, got 1.5"),
        (dict(init_scale=0.0), "svi: init_scale must be a finite number > 0, got 0.0"),
        (dict(tolerance=-1.0), "svi: tolerance must be a finite number >= 0"),
        (dict(optimizer="adam"), "svi: optimizer must be an Optax GradientTransformation"),
        (dict(num_steps=0), "svi: num_steps and check_every must be positive integers"),
        (dict(patience=-1), "svi: patience must be an integer >= 0"),
        (dict(guide="mean-field"), "svi: unknown guide 'mean-field'; choose one of"),
        (dict(guide="flow", flow="maf"), "svi: unknown flow 'maf'; choose one of"),
        (dict(flow_layers=0), "svi: flow_layers must be a positive integer, got 0"),
        (dict(elbo="renyi"), "svi: unknown elbo 'renyi'"),
        (dict(progress_bar="yes"), "svi: progress_bar must be True or False"),
        (dict(resume=3), "svi: resume must be a Fit or the path of a saved one .*got int"),
        (dict(resume="no-such-fit.hz"), "svi: resume must be a Fit or the path of a saved one; no file at"),
    ],
)
def test_svi_refuses_options_out_of_range(options, message):
    with pytest.raises(ValueError, match=message):
        hz.fit(EightSchools(sigma=SIGMA), Y, method="svi", progress_bar=options.pop("progress_bar", False), **options)


def test_a_custom_optimizer_or_a_schedule_is_a_valid_learning_rate():
    assert TrainingOptions(optimizer=optax.sgd(0.1)).record()["learning_rate"] is None
    assert TrainingOptions(learning_rate=optax.linear_schedule(1e-2, 1e-3, 100)).make_optimizer() is not None


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(target_accept_prob=-1), r"nuts: target_accept_prob must be a number in \(0, 1\) .*got -1"),
        (dict(target_accept_prob=1.5), r"nuts: target_accept_prob must be a number in \(0, 1\) .*got 1.5"),
        (dict(target_accept_prob=1.0), r"nuts: target_accept_prob must be a number in \(0, 1\)"),
        (dict(max_tree_depth=0), "nuts: max_tree_depth must be a positive integer .*got 0"),
        (dict(num_chains=0), "nuts: num_chains must be a positive integer, got 0"),
        (dict(num_samples=-5), "nuts: num_samples must be a positive integer, got -5"),
        (dict(num_warmup=-1), "nuts: num_warmup must be an integer >= 0 .*got -1"),
        (dict(num_samples=10.0), "nuts: num_samples must be a positive integer, got 10.0"),
        (dict(chain_method="threads"), "nuts: chain_method must be one of"),
    ],
)
def test_nuts_refuses_options_out_of_range(options, message):
    with pytest.raises(ValueError, match=message):
        hz.fit(EightSchools(sigma=SIGMA), Y, method="nuts", progress_bar=False, **options)


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("vae", dict(learning_rate=0), "vae: learning_rate must be a finite number > 0 .*got 0"),
        ("vae", dict(num_particles=-2), "vae: num_particles must be a positive integer, got -2"),
        ("vae", dict(batch_size=0), "vae: batch_size must be a positive integer or None"),
        ("rws", dict(num_particles=-2), r"rws: num_particles must be an integer >= 2 \(K = 1 is wake-sleep\), got -2"),
        ("rws", dict(learning_rate=-1.0), "rws: learning_rate must be a finite number > 0"),
        ("wake-sleep", dict(learning_rate=-1e-3), "wake-sleep: learning_rate must be a finite number > 0"),
        ("wake-sleep", dict(encoder_hidden=(8, 0)), "wake-sleep: encoder_hidden must be positive integer layer widths"),
        ("wake-sleep", dict(resume=[1]), "wake-sleep: resume must be a Fit or the path of a saved one"),
    ],
)
def test_amortised_back_ends_refuse_options_out_of_range(ppca_data, method, options, message):
    model, data = ppca_data
    with pytest.raises(ValueError, match=message):
        hz.fit(model, data, method=method, progress_bar=False, **options)


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("npe", dict(chunk_size=0), "npe: chunk_size must be a positive integer, got 0"),
        ("npe", dict(estimator="bogus"), "npe: unknown estimator 'bogus'; valid estimators: mdn, made, maf, "),
        ("npe", dict(estimator="zuko_mfa"), "npe: unknown estimator 'zuko_mfa' \\(did you mean 'zuko_maf'\\?\\)"),
        ("nre", dict(estimator="maf"), "nre: unknown estimator 'maf'.*; valid estimators: linear, mlp, resnet"),
        (
            "npe",
            dict(num_simulations=1),
            r"npe: num_simulations must be an integer >= 2 \(2 per round, num_rounds=1\), got 1",
        ),
        ("npe", dict(num_rounds=0), "npe: num_rounds must be a positive integer, got 0"),
        ("nle", dict(learning_rate=0.0), "nle: learning_rate must be a finite number > 0, got 0.0"),
        ("npe", dict(training_batch_size=-1), "npe: training_batch_size must be a positive integer"),
        ("npe", dict(truncation_quantile=1.5), r"npe: truncation_quantile must be a number in \(0, 1\)"),
        ("npe", dict(hidden_features=0), "npe: hidden_features must be a positive integer"),
    ],
)
def test_simulation_based_back_ends_refuse_options_out_of_range(method, options, message):
    with pytest.raises(ValueError, match=message):
        hz.fit(GaussianLinear(dim=2), np.zeros(2), method=method, progress_bar=False, **options)


def test_npe_warns_that_two_simulations_are_too_few():
    with pytest.warns(UserWarning, match="npe: num_simulations=2 is too few to train a neural estimator"):
        # chunk_size=0 stops the run right after the warning: nothing is simulated.
        with pytest.raises(ValueError, match="chunk_size"):
            hz.fit(GaussianLinear(dim=2), np.zeros(2), method="npe", num_simulations=2, chunk_size=0)


def test_npe_warns_of_an_observation_far_outside_what_the_prior_simulates():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # stop at the warning: nothing is trained
        with pytest.raises(UserWarning, match="npe: the observation lies far outside what the prior simulates: .*1e"):
            hz.fit(GaussianLinear(dim=2), np.array([1e30, 0.0]), method="npe", num_simulations=200, progress_bar=False)


def test_resume_takes_the_path_of_a_saved_fit(tmp_path):
    quick = dict(num_steps=100, check_every=50, progress_bar=False)
    first = hz.fit(EightSchools(sigma=SIGMA), Y, method="svi", key=0, **quick)
    path = first.save(tmp_path / "first.hz")
    resumed = hz.fit(EightSchools(sigma=SIGMA), Y, method="svi", key=1, resume=str(path), **quick)
    assert resumed.diagnostics["num_steps"] == 200
    np.testing.assert_array_equal(resumed.history["loss"][:100], first.history["loss"])
    with pytest.raises(ValueError, match="svi: resume takes an svi Fit of the same model with the same guide"):
        hz.fit(EightSchools(sigma=SIGMA), Y, method="svi", guide="delta", resume=path, **quick)


# -- a non-finite loss ---------------------------------------------------------------------


def test_a_non_finite_first_step_is_reported_at_step_0_with_what_to_change():
    """First draws spread over +-10 (init_scale) land where the ARMA recursion overflows:
    the loss is infinite at the very first step, and the message says so (it said
    "after 500 steps" and blamed the learning rate)."""
    with pytest.raises(FloatingPointError) as failed:
        hz.fit(
            ARMA11(),
            arma_series(),
            method="svi",
            key=0,
            init_scale=10.0,
            num_particles=8,
            num_steps=50,
            check_every=50,
            progress_bar=False,
        )
    message = str(failed.value)
    assert "svi: the loss was inf at step 0 (the first);" in message
    assert "check the model's priors and their support, or pass a smaller init_scale (now 10)" in message


def test_a_divergence_later_is_reported_at_its_own_step_not_the_chunks_end():
    with pytest.raises(FloatingPointError) as failed:
        hz.fit(
            ARMA11(),
            arma_series(),
            method="svi",
            key=0,
            learning_rate=100.0,
            num_steps=100,
            check_every=50,
            progress_bar=False,
        )
    message = str(failed.value)
    step = int(message.split("at step ")[1].split(";")[0].split(" ")[0])
    assert 0 < step < 50, message
    assert "lower learning_rate (now 100) or raise num_particles (now 1)" in message


def test_the_shared_loop_names_the_first_non_finite_step_within_a_chunk():
    from helmholtz.inference.training import train_in_chunks

    def run_chunk(carry):
        losses = np.ones(10)
        if carry == 2:  # the third chunk, steps 20 to 29: step 23 is the first non-finite one
            losses[3:] = np.nan
        return carry + 1, losses

    with pytest.raises(FloatingPointError, match="demo: the loss was nan at step 23; lower it"):
        train_in_chunks(
            "demo", run_chunk, 0, num_steps=100, check_every=10, patience=0, tolerance=0, progress_bar=False,
            advice="lower it",
        )  # fmt: skip


@pytest.mark.parametrize("guide", ["flow"])
def test_svi_guides_start_where_the_arma_recursion_is_finite(guide):
    """NumPyro's flows start with unit-scale draws around zero, a third of them past
    |theta| = 1 here: with key 4 the loss was infinite by step 2. The flow now starts at a
    small scale around the prior's median, and trains (300 steps, all finite). (The normal
    and full-rank guides keep NumPyro's start, uniform in (-2, 2), which still diverges
    here by step 6 with key 4; the prior's median broke a sparse-coding fit.)"""
    fit = hz.fit(
        ARMA11(),
        arma_series(),
        method="svi",
        guide=guide,
        key=4,
        num_steps=300,
        check_every=100,
        patience=0,
        progress_bar=False,
    )
    assert np.all(np.isfinite(fit.history["loss"]))


def test_the_gated_flow_layer_inverts_and_has_the_log_determinant_of_its_jacobian():
    from numpyro.nn.auto_reg_nn import AutoregressiveNN

    from helmholtz.inference.svi import GatedIAFTransform

    init, apply = AutoregressiveNN(3, [8, 8], permutation=jnp.arange(3))
    _, weights = init(jax.random.PRNGKey(0), (3,))
    layer = GatedIAFTransform(lambda x: apply(weights, x))
    x = jax.random.normal(jax.random.PRNGKey(1), (3,))
    y = layer(x)
    np.testing.assert_allclose(layer._inverse(y), x, atol=1e-5)
    log_det = jnp.linalg.slogdet(jax.jacfwd(layer)(x))[1]
    np.testing.assert_allclose(layer.log_abs_det_jacobian(x, y), log_det, atol=1e-5)


def test_flow_fits_saved_before_init_scale_rebuild_numpyros_flow():
    """A saved guide configuration without init_scale (files from before it) rebuilds the
    flow those files were trained with: NumPyro's, without the starting affine map."""
    from numpyro.infer.autoguide import AutoIAFNormal

    from helmholtz.inference.svi import StartedIAFNormal, make_guide

    model = EightSchools(sigma=SIGMA)
    assert type(make_guide(model, "flow")) is AutoIAFNormal
    assert isinstance(make_guide(model, "flow", init_scale=0.1), StartedIAFNormal)


# -- svi's defaults on posteriordb's time series ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, options",
    [
        ("arK", {}),
        ("hmm_example", {}),
        # One particle stopped at C2ST 0.56 (key 0) in an earlier measurement, four at 0.54.
        ("lotka_volterra", {"num_particles": 4}),
    ],
)
def test_svi_defaults_reach_the_reference_posterior(name, options):
    """svi with a full-rank guide and its default training options (learning rate 1e-2,
    one particle, early stopping, the average of the iterates over the plateau) against
    posteriordb's time-series posteriors, the visible cousins of the models issue #18
    measured (bound 0.55, as for NUTS). A full-rank guide, not the default mean-field one:
    arK's coefficients are correlated a posteriori, which no mean-field guide can follow.
    The guide starts at the prior's median (``init="auto"`` for models without local
    latents); from NumPyro's uniform start the full-rank guide stopped in another mode of
    lotka_volterra (C2ST 1.0). Figures in benchmarks/README.md."""
    from helmholtz.models.posteriordb import load_posterior, reference_draws

    model, data = load_posterior(name)
    fit = hz.fit(model, data, method="svi", guide="full-rank", key=0, progress_bar=False, **options)
    # As tests/test_posteriordb.py measures NUTS: C2ST on 1,000 + 1,000 draws.
    reference = reference_draws(name)
    draws = fit.sample(1, 4000)
    sites = sorted(reference)
    _, ours = hz.diagnostics.flatten_draws(draws, sites)
    _, theirs = hz.diagnostics.flatten_draws(reference, sites)
    errors = {k: v["mean_error"] for k, v in hz.diagnostics.compare_to_reference(draws, reference).items()}
    score = hz.diagnostics.c2st(ours, theirs, max_draws=1000)
    print(
        name, f"C2ST {score:.3f}", fit.diagnostics, {k: round(float(np.max(np.abs(v))), 3) for k, v in errors.items()}
    )
    assert score <= 0.55, f"C2ST {score:.3f}"


def test_a_guide_starts_at_the_prior_median_unless_local_latents_need_their_symmetry_broken():
    """``init="auto"``: the median for a model of global parameters only, NumPyro's uniform
    start for the normal and full-rank guides of a model with local latents; a bad value is
    refused by name."""
    from helmholtz.inference.svi import resolved_init

    sparse = hz.models.SparseCoding(obs_dim=4, latent_dim=2)
    assert sparse.has_local_latents and not EightSchools(sigma=SIGMA).has_local_latents
    assert resolved_init(EightSchools(sigma=SIGMA), "full-rank", "auto") == "median"
    assert resolved_init(sparse, "normal", "auto") == "uniform"
    assert resolved_init(sparse, "flow", "auto") == "median"
    with pytest.raises(ValueError, match=r"svi: init must be one of \('auto', 'median', 'uniform'\), got 'mode'"):
        hz.fit(EightSchools(sigma=SIGMA), Y, method="svi", init="mode", progress_bar=False)
