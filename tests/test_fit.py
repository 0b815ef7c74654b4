"""The core protocol: dispatch, the Fit, determinism, saving, and clear errors on bad input."""

import zipfile
from dataclasses import dataclass

import jax
import numpy as np
import pytest

import helmholtz as hz
from helmholtz.models import EightSchools, FactorAnalysis, Model

SIGMA = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
QUICK_NUTS = dict(num_chains=2, num_warmup=200, num_samples=200, progress_bar=False)
QUICK_SVI = dict(num_steps=1000, progress_bar=False)


@pytest.fixture(scope="module")
def nuts_fit():
    return hz.fit(EightSchools(sigma=SIGMA), Y, method="nuts", key=0, **QUICK_NUTS)


@pytest.fixture(scope="module")
def flow_fit():
    return hz.fit(EightSchools(sigma=SIGMA), Y, method="svi", guide="flow", key=0, **QUICK_SVI)


def _assert_same_draws(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]))


def test_same_key_same_draws(nuts_fit, flow_fit):
    again = hz.fit(EightSchools(sigma=SIGMA), Y, method="nuts", key=0, **QUICK_NUTS)
    _assert_same_draws(nuts_fit.sample(3, 100), again.sample(3, 100))
    _assert_same_draws(flow_fit.sample(3, 100), flow_fit.sample(3, 100))
    other = nuts_fit.sample(4, 100)
    assert not np.array_equal(nuts_fit.sample(3, 100)["mu"], other["mu"])


@pytest.mark.parametrize("which", ["nuts_fit", "flow_fit"])
def test_saved_fit_loads_back_identical(which, request, tmp_path):
    fit = request.getfixturevalue(which)
    path = fit.save(tmp_path / "fit.hz")
    loaded = hz.load(path)
    assert loaded.model == fit.model and loaded.method == fit.method
    _assert_same_draws(fit.sample(7, 50), loaded.sample(7, 50))
    np.testing.assert_array_equal(fit.posterior_predictive(1, 5), loaded.posterior_predictive(1, 5))
    for name, values in fit.history.items():
        np.testing.assert_array_equal(values, loaded.history[name])
    assert not list(tmp_path.glob("*.tmp")), "the atomic write left its temporary file behind"


def test_fit_exports_every_arviz_group(nuts_fit):
    idata = nuts_fit.to_arviz()
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood", "posterior_predictive"} <= set(
        idata.groups()
    )
    assert idata.posterior["theta"].shape == (2, 200, 8)
    assert idata.log_likelihood["x"].shape == (2, 200, 8)
    # theta is deterministic: theta = mu + tau * theta_trans, draw by draw.
    post = idata.posterior
    np.testing.assert_allclose(post["theta"], post["mu"] + post["tau"] * post["theta_trans"], rtol=1e-5, atol=1e-5)
    # The pointwise log-likelihood is the Normal density of y_j around theta_j.
    expected = -0.5 * ((Y - post["theta"].values) / np.asarray(SIGMA)) ** 2 - np.log(
        np.asarray(SIGMA) * np.sqrt(2 * np.pi)
    )
    np.testing.assert_allclose(idata.log_likelihood["x"].values, expected, rtol=1e-4)


def test_nuts_reports_convergence(nuts_fit):
    assert set(nuts_fit.diagnostics["r_hat"]) == {"mu", "tau", "theta_trans", "theta"}
    assert 0.9 < float(nuts_fit.diagnostics["r_hat"]["mu"]) < 1.1
    assert nuts_fit.diagnostics["ess"]["mu"] > 50
    assert nuts_fit.sample_stats["diverging"].shape == (2, 200)


def test_refitting_new_data_reuses_the_compiled_sampler(nuts_fit):
    """SBC and per-subject fits refit one model to new data of the same shape: the chains
    must run through the sampler compiled for the first fit (NumPyro's MCMC recompiled
    its loop on every run, 3 s and ~500 memory mappings each), and give the draws that a
    freshly compiled sampler gives for the new data."""
    from helmholtz.inference.nuts import _runner

    model = EightSchools(sigma=SIGMA)
    reused = hz.fit(model, Y + 10, method="nuts", key=1, **QUICK_NUTS)
    compiled = _runner(model, 200, 200, 0.8, 10, False, False).compiled[nuts_fit.options["chain_method"]]
    assert compiled._cache_size() == 1
    _runner.cache_clear()
    fresh = hz.fit(model, Y + 10, method="nuts", key=1, **QUICK_NUTS)
    for name, draws in reused.posterior.draws.items():
        np.testing.assert_allclose(draws, fresh.posterior.draws[name], rtol=1e-5, atol=1e-6)
    assert not np.allclose(reused.posterior.draws["mu"], nuts_fit.posterior.draws["mu"])


def test_nuts_refuses_an_unknown_chain_method_and_missing_devices():
    with pytest.raises(ValueError, match="chain_method must be one of"):
        hz.fit(EightSchools(sigma=SIGMA), Y, method="nuts", chain_method="threads", **QUICK_NUTS)
    if jax.local_device_count() < 2:
        with pytest.raises(ValueError, match="parallel chains need a device each"):
            hz.fit(EightSchools(sigma=SIGMA), Y, method="nuts", chain_method="parallel", **QUICK_NUTS)


def test_svi_records_loss_and_stops_on_a_plateau():
    """A delta guide on a conjugate-like problem converges: early stopping must end it
    well before num_steps, and the loss must have gone down."""
    model = FactorAnalysis(4, 1)
    x = np.asarray(model.simulate(1, {k: v[0] for k, v in model.sample_prior(0, 1).items()}, num_points=300))
    fit = hz.fit(model, x, method="svi", guide="delta", key=0, num_steps=50_000, patience=3, progress_bar=False)
    loss = fit.history["loss"]
    assert fit.diagnostics["stopped_early"] and len(loss) < 50_000
    assert loss[-100:].mean() < loss[:100].mean()


def test_svi_resumes_from_a_saved_fit(tmp_path):
    model = FactorAnalysis(4, 1)
    x = np.asarray(model.simulate(1, {k: v[0] for k, v in model.sample_prior(0, 1).items()}, num_points=300))
    first = hz.fit(model, x, method="svi", key=0, num_steps=500, patience=0, progress_bar=False)
    first = hz.load(first.save(tmp_path / "first.hz"))
    resumed = hz.fit(model, x, method="svi", key=1, num_steps=500, patience=0, progress_bar=False, resume=first)
    assert len(resumed.history["loss"]) == 1000
    np.testing.assert_array_equal(resumed.history["loss"][:500], first.history["loss"])
    # Continuing from the trained parameters starts far below where training started.
    assert resumed.history["loss"][500:520].mean() < first.history["loss"][:20].mean()


def test_posterior_predictive_has_the_data_shape(nuts_fit):
    replicated = nuts_fit.posterior_predictive(0, 30)
    assert replicated.shape == (30, 8)
    # The replicates scatter around the data on the scale of the known standard errors.
    assert 0.5 < float(np.std(replicated - Y, axis=0).mean() / np.mean(SIGMA)) < 3


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "1 NaN and 0 infinite values"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "0 NaN and 1 infinite values"),
        (np.ones(4), r"shape \(num_points, obs_dim\)"),
        (np.ones((5, 3)), "must have 2 values"),
        (np.ones((0, 2)), "empty"),
        ([["a", "b"]], "must be numeric"),
    ],
)
def test_bad_data_is_refused(data, message):
    with pytest.raises(ValueError, match=message):
        hz.fit(FactorAnalysis(2, 1), data, method="svi")


def test_invalid_model_parameters_are_refused():
    with pytest.raises(ValueError, match="loadings_scale must be a finite number > 0"):
        FactorAnalysis(3, 1, loadings_scale=-1.0)
    with pytest.raises(ValueError, match="noise must be one of"):
        hz.models.LinearLVM(hz.priors.Gaussian(1), 3, noise="full")
    with pytest.raises(ValueError, match="sigma_j must be > 0"):
        EightSchools(sigma=(1.0, -2.0))


def test_unknown_method_lists_the_registered_ones():
    with pytest.raises(ValueError, match="unknown method 'hmc'; registered methods: .*nuts.*svi"):
        hz.fit(FactorAnalysis(2, 1), np.ones((3, 2)), method="hmc")


def test_a_back_end_that_does_not_fit_says_which_do():
    @dataclass(frozen=True)
    class Simulator(Model):
        has_likelihood = False

    with pytest.raises(
        ValueError, match="'nuts' cannot fit Simulator: it needs a model with a likelihood.*Methods that can: none"
    ):
        hz.fit(Simulator(), np.ones(3), method="nuts")
    too_many_binary = hz.models.LinearLVM(hz.priors.Bernoulli(3), 2, collapse_local=False)
    with pytest.raises(ValueError, match="every sampled latent to be continuous"):
        hz.fit(too_many_binary, np.ones((3, 2)), method="nuts")


def test_files_that_are_not_fits_are_refused(tmp_path):
    text = tmp_path / "notes.hz"
    text.write_text("not a fit")
    with pytest.raises(ValueError, match="not a helmholtz fit file"):
        hz.load(text)
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(ValueError, match="not a helmholtz file"):
        hz.load(archive)
    with pytest.raises(FileNotFoundError):
        hz.load(tmp_path / "missing.hz")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.npy", b"garbage", "a.npy does not hold a numeric array"),
        ("a.csv", b"1,2\n3,x\n", "does not hold a numeric array"),
        ("a.csv", b"1,2\n3\n", "different numbers of columns"),
        ("a.json", b"{broken", "not a readable .json file"),
        ("a.txt", b"1 2", "unsupported file type"),
    ],
)
def test_unreadable_data_files_are_refused(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        hz.data.load_array(path)


def test_prior_draws_follow_the_declared_prior():
    """Prior sampling through the program: mu ~ N(0, 5) and tau ~ HalfCauchy(5)
    (10,000 draws: the sample sd of mu is within 3% of 5, the median of tau within 5% of 5)."""
    draws = EightSchools(sigma=SIGMA).sample_prior(jax.random.PRNGKey(0), 10_000)
    assert float(np.std(draws["mu"])) == pytest.approx(5.0, rel=0.03)
    assert float(np.median(draws["tau"])) == pytest.approx(5.0, rel=0.05)
    assert draws["theta"].shape == (10_000, 8)
