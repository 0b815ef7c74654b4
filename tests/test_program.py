"""Models a user declares: a NumPyro program (Program), a simulator function
(FunctionSimulator), and the errors that say what to change when a declaration breaks a
convention. Ground truth: the conjugate posterior of a regression slope with known noise,
N(m, v) with 1 / v = 1 + sum(u^2) / s^2 and m = v sum(u y) / s^2."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import torch

import helmholtz as hz
from helmholtz import _serialization
from helmholtz.models.base import Model

NOISE = 0.5
U = np.linspace(-1.0, 1.0, 30)


@hz.serializable
def regression(u, noise, y=None):
    slope = numpyro.sample("slope", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", len(u)):
        numpyro.sample("y", dist.Normal(slope * u, noise), obs=y)


@hz.serializable
def clusters(x=None, *, num_points=None):
    """Local latents: each point's own mean z_i around a global centre, in the plate "data"."""
    centre = numpyro.sample("centre", dist.Normal(0.0, 3.0))
    with numpyro.plate("data", num_points):
        z = numpyro.sample("z", dist.Normal(centre, 1.0))
        numpyro.sample("x", dist.Normal(z, 0.5), obs=x)


def _exact_posterior(y):
    variance = 1.0 / (1.0 + np.sum(U**2) / NOISE**2)
    return variance * np.sum(U * y) / NOISE**2, np.sqrt(variance)


@pytest.fixture(scope="module")
def model_and_data():
    model = hz.models.Program(regression, observed="y", data={"u": U, "noise": NOISE})
    return model, np.asarray(model.simulate(0, {"slope": 0.7}))


# -- a Program has every derived method -----------------------------------------------------
def test_a_program_reads_its_sites_samples_its_prior_and_simulates(model_and_data):
    model, y = model_and_data
    assert model.sites() == hz.models.Sites(("slope",), (), ())
    assert model.can_simulate and not model.has_local_latents and model.continuous_latents
    assert model.sample_prior(1, 5)["slope"].shape == (5,)
    assert y.shape == U.shape
    assert hz.methods_for(model) == ["nuts", "svi"]
    local = hz.models.Program(clusters)
    assert local.sites().local_latents == ("z",) and local.has_local_latents
    assert local.simulate(2, {"centre": 1.0}, num_points=7).shape == (7,)


@pytest.mark.parametrize(
    "method, options", [("nuts", dict(num_chains=2, num_warmup=300, num_samples=500)), ("svi", dict(num_steps=2000))]
)
def test_a_program_fits_exports_and_saves(method, options, model_and_data, tmp_path):
    """NUTS and SVI (mean-field normal, exact here) recover the conjugate posterior; the
    ArviZ export and the summary work; a saved fit loads and gives the same draws."""
    model, y = model_and_data
    fit = hz.fit(model, y, method=method, key=0, progress_bar=False, **options)
    slope = np.asarray(fit.sample(1, 1000)["slope"])
    mean, sd = _exact_posterior(y)
    assert abs(slope.mean() - mean) < 0.15 * sd and abs(slope.std() / sd - 1) < 0.15
    idata = fit.to_arviz(num_draws=200)
    assert {"posterior", "log_likelihood", "posterior_predictive", "observed_data"} <= set(idata.groups())
    np.testing.assert_allclose(idata.observed_data["x"].values, y)
    assert idata.log_likelihood["x"].shape[-1] == len(U)
    assert "slope" in fit.summary().index
    loaded = hz.load(fit.save(tmp_path / "fit.hz"))
    assert loaded.model == model and loaded.model.fn is regression
    np.testing.assert_array_equal(loaded.sample(3, 100)["slope"], fit.sample(3, 100)["slope"])


def test_num_points_is_passed_to_programs_that_take_it():
    model = hz.models.Program(clusters)
    x = np.asarray(model.simulate(0, {"centre": 2.0}, num_points=40))
    fit = hz.fit(model, x, method="nuts", key=0, num_chains=1, num_warmup=200, num_samples=200, progress_bar=False)
    assert fit.sample(0, 10)["z"].shape == (10, 40)
    assert fit.posterior_predictive(1, 5).shape == (5, 40)


# -- each mistake gets an error that says what to change ------------------------------------
def test_an_observed_site_that_is_not_there_is_named_with_the_sites_there_are(model_and_data):
    _, y = model_and_data
    wrong = hz.models.Program(regression, observed="kid_score", data={"u": U, "noise": NOISE})
    with pytest.raises(ValueError, match=r"no sample site 'kid_score'.*Its sites: \['slope', 'y'\]; pass observed="):
        hz.fit(wrong, y, method="nuts")
    # Without observed=, the site must be called "x"; the program's argument y stays None.
    default = hz.models.Program(regression, data={"u": U, "noise": NOISE})
    with pytest.raises(ValueError, match=r"no sample site 'x'.*pass observed="):
        hz.fit(default, y, method="nuts")


@hz.serializable
def factor_likelihood(u, y=None):
    slope = numpyro.sample("slope", dist.Normal(0.0, 1.0))
    if y is not None:
        numpyro.factor("likelihood", dist.Normal(slope * u, NOISE).log_prob(y).sum())


def factor_needing_data(u, y):
    slope = numpyro.sample("slope", dist.Normal(0.0, 1.0))
    numpyro.factor("likelihood", dist.Normal(slope * u, NOISE).log_prob(y).sum())


def test_a_likelihood_written_with_factor_is_refused_with_the_fix(model_and_data):
    _, y = model_and_data
    with pytest.raises(
        ValueError,
        match=r"numpyro\.factor \('likelihood'\) cannot be simulated or exported: write it as numpyro\.sample",
    ):
        hz.fit(hz.models.Program(factor_likelihood, observed="y", data={"u": U}), y, method="nuts")
    with pytest.raises(
        ValueError,
        match=r"fails when called with y=None.*numpyro\.sample\('y', distribution, obs=y\) rather than numpyro\.factor",
    ):
        hz.fit(hz.models.Program(factor_needing_data, observed="y", data={"u": U}), y, method="nuts")


def unregistered(u, noise, y=None):
    regression(u, noise, y)


def test_saving_a_program_needs_its_function_registered(model_and_data, tmp_path, monkeypatch):
    _, y = model_and_data
    model = hz.models.Program(unregistered, observed="y", data={"u": U, "noise": NOISE})
    fit = hz.fit(model, y, method="svi", key=0, num_steps=10, progress_bar=False)
    with pytest.raises(
        TypeError,
        match=r"cannot save the function test_program\.unregistered: it is not registered\. "
        r"Decorate its definition with @hz\.serializable",
    ):
        fit.save(tmp_path / "fit.hz")
    assert not (tmp_path / "fit.hz").exists()
    with pytest.raises(TypeError, match="a lambda cannot be registered"):
        hz.serializable(lambda u, y=None: None)
    # A file naming a function that this session has not registered asks for its module.
    path = hz.models.Program(regression, observed="y", data={"u": U, "noise": NOISE})
    saved = hz.fit(path, y, method="svi", key=0, num_steps=10, progress_bar=False).save(tmp_path / "ok.hz")
    monkeypatch.delitem(_serialization._FUNCTIONS, "test_program.regression")
    with pytest.raises(
        ValueError, match=r"names the function 'test_program\.regression', which is not registered: import the module"
    ):
        hz.load(saved)


def test_program_arguments_are_checked_at_declaration():
    with pytest.raises(TypeError, match=r"argument 'noise' has no value: pass it as data=\{'noise': \.\.\.\}"):
        hz.models.Program(regression, observed="y", data={"u": U})
    with pytest.raises(TypeError, match=r"takes no argument 'v' given in data; its arguments: \['u', 'noise', 'y'\]"):
        hz.models.Program(regression, observed="y", data={"u": U, "noise": NOISE, "v": 1.0})
    with pytest.raises(ValueError, match="'y' is the observed site; give its values to hz.fit"):
        hz.models.Program(regression, observed="y", data={"u": U, "noise": NOISE, "y": U})
    with pytest.raises(TypeError, match=r"data\['u'\] must be a number or a numeric array"):
        hz.models.Program(regression, observed="y", data={"u": ["a", "b"], "noise": NOISE})
    with pytest.raises(TypeError, match="a helmholtz model is fit directly"):
        hz.models.Program(hz.models.FactorAnalysis(2, 1))


def clash(u, y=None):
    x = numpyro.sample("x", dist.Normal(0.0, 1.0))
    with numpyro.plate("data", len(u)):
        numpyro.sample("y", dist.Normal(x * u, 1.0), obs=y)


def test_data_of_another_shape_and_a_site_called_x_are_refused(model_and_data):
    model, y = model_and_data
    with pytest.raises(
        ValueError, match=r"the data have shape \(10,\), but the program simulates its site 'y' with shape \(30,\)"
    ):
        hz.fit(model, y[:10], method="nuts")
    with pytest.raises(ValueError, match="a site named 'x' besides its observed site 'y'.*rename the other site"):
        hz.fit(hz.models.Program(clash, observed="y", data={"u": U}), y, method="nuts")


def test_a_model_class_that_is_not_frozen_is_refused_when_instantiated():
    @dataclass
    class Mutable(Model):
        scale: float = 1.0

    with pytest.raises(
        TypeError, match=r"Mutable cannot be hashed.*Declare it with @dataclass\(frozen=True\) \(add eq=False"
    ):
        Mutable()

    @dataclass(frozen=True)
    class HoldsAnArray(Model):
        weights: np.ndarray

    with pytest.raises(TypeError, match=r"HoldsAnArray cannot be hashed.*@dataclass\(frozen=True, eq=False\)"):
        HoldsAnArray(np.ones(3)).check_declaration()


@dataclass(frozen=True)
class _NamedY(Model):
    def program(self, x=None, *, num_points=None):
        slope = numpyro.sample("slope", dist.Normal(0.0, 1.0))
        with numpyro.plate("data", len(U)):
            numpyro.sample("y", dist.Normal(slope * U, NOISE), obs=x)


@dataclass(frozen=True)
class _Factor(Model):
    def program(self, x=None, *, num_points=None):
        slope = numpyro.sample("slope", dist.Normal(0.0, 1.0))
        if x is not None:
            numpyro.factor("likelihood", dist.Normal(slope * U, NOISE).log_prob(x).sum())


@dataclass(frozen=True)
class _Unregistered(Model):
    def program(self, x=None, *, num_points=None):
        slope = numpyro.sample("slope", dist.Normal(0.0, 1.0))
        with numpyro.plate("data", len(U)):
            numpyro.sample("x", dist.Normal(slope * U, NOISE), obs=x)


def test_a_model_class_breaking_the_site_convention_is_told_what_to_change(model_and_data):
    _, y = model_and_data
    x = jnp.asarray(y)
    with pytest.raises(
        ValueError, match=r"no sample site 'x' for the observations.*Rename its observed site 'y' to 'x'"
    ):
        _NamedY().check_declaration(x)
    with pytest.raises(
        ValueError,
        match=r"no sample site 'x'.*numpyro\.factor \('likelihood'\).*numpyro\.sample\('x', distribution, obs=x\)",
    ):
        _Factor().check_declaration(x)
    # hz.fit runs the same check before any back end, so the prior is never sampled silently.
    with pytest.raises(ValueError, match=r"Rename its observed site 'y' to 'x'"):
        hz.fit(_NamedY(), y, method="nuts", key=0, num_warmup=5, num_samples=5, progress_bar=False)


def test_a_model_class_of_your_own_is_saved_only_once_registered(model_and_data, tmp_path):
    _, y = model_and_data
    fit = hz.fit(_Unregistered(), y, method="svi", key=0, num_steps=10, progress_bar=False)
    with pytest.raises(
        TypeError, match=r"_Unregistered is not marked @serializable.*decorate the class with @hz\.serializable"
    ):
        fit.save(tmp_path / "fit.hz")


def test_every_zoo_model_passes_the_declaration_check():
    """So that hz.fit can run the check on every model."""
    from helmholtz.app.zoo import ZOO

    for entry in ZOO.values():
        model = entry.example()
        model.check_declaration()
        if model.has_likelihood:
            # Data of the shape the program simulates (the check traces it abstractly).
            model.check_declaration(jnp.ones(model.site_info(None, num_points=4)["x"].shape))


def test_the_helpers_a_model_needs_are_public():
    from helmholtz.models.base import check_finite_array
    from helmholtz.models.markov.distributions import HiddenMarkovEmissions

    assert hz.models.check_finite_array is check_finite_array
    assert hz.models.HiddenMarkovEmissions is HiddenMarkovEmissions is hz.models.markov.HiddenMarkovEmissions
    assert hz.serializable is _serialization.serializable
    with pytest.raises(ValueError, match=r"mine: data contains 1 NaN"):
        hz.models.check_finite_array([1.0, np.nan], "mine")


# -- a simulator from a function --------------------------------------------------------------
@hz.serializable
def noisy_copy(key, theta):
    return theta + jnp.sqrt(0.1) * jax.random.normal(key, (2,))


@hz.serializable
def mean_and_difference(x):
    return jnp.stack([x.mean(), x[0] - x[1]])


def rotated(key, theta):
    return jnp.array([[0.0, -1.0], [1.0, 0.0]]) @ theta


def _simulator(**options):
    parameters = (hz.priors.Normal("a", 0.0, np.sqrt(0.1)), hz.priors.Normal("b", 0.0, np.sqrt(0.1)))
    return hz.models.FunctionSimulator(noisy_copy, parameters=parameters, observation_shape=(2,), **options)


@pytest.fixture
def one_torch_thread():
    """Torch's small matrices run about 4x faster on one thread than on two busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_function_simulator_fits_by_npe_and_saves(tmp_path, one_torch_thread):
    """The Gaussian linear task in 2-d: posterior N(x / 2, 0.05 I)."""
    model = _simulator(summary=mean_and_difference)
    assert model.feature_names == ("s_0", "s_1") and model.name == "noisy_copy"
    assert hz.methods_for(model) == ["npe", "nle", "nre"]
    observed = np.array([0.3, -0.2], np.float32)
    # A small flow and a bounded training: the check is that the path runs, not the estimator.
    fit = hz.fit(
        model,
        observed,
        method="npe",
        key=0,
        num_simulations=1000,
        hidden_features=20,
        num_transforms=2,
        max_num_epochs=10**6,
        stop_after_epochs=5,
        progress_bar=False,
    )
    draws = fit.sample(1, 2000)
    theta = np.stack([np.asarray(draws["a"]), np.asarray(draws["b"])], -1)
    assert np.all(np.abs(theta.mean(0) - observed / 2) < 0.35 * np.sqrt(0.05)), theta.mean(0)
    loaded = hz.load(fit.save(tmp_path / "npe.hz"))
    assert loaded.model == model
    np.testing.assert_array_equal(loaded.sample(2, 100)["a"], fit.sample(2, 100)["a"])


def test_a_function_simulator_checks_its_declaration():
    assert _simulator().feature_names == ("x_0", "x_1")
    assert _simulator().simulate_batch(0, np.zeros((3, 2))).shape == (3, 2)
    with pytest.raises(
        ValueError, match=r"simulate_one returns shape \(2,\) for one parameter vector, but observation_shape is \(3,\)"
    ):
        hz.models.FunctionSimulator(noisy_copy, parameters=_simulator().parameters, observation_shape=(3,))
    with pytest.raises(TypeError, match=r"each parameter must be an hz\.priors\.Parameter"):
        hz.models.FunctionSimulator(noisy_copy, parameters=(dist.Normal(0, 1),), observation_shape=(2,))
    with pytest.raises(ValueError, match="summary must return a vector"):
        _simulator(summary=jnp.sum)
    with pytest.raises(
        ValueError, match=r"simulate_one\(key, theta\) fails on one parameter vector theta of shape \(1,\)"
    ):
        hz.models.FunctionSimulator(rotated, parameters=(hz.priors.Normal("a", 0.0, 1.0),), observation_shape=(2,))
    with pytest.raises(TypeError, match="FunctionSimulator needs simulate_one"):
        hz.models.FunctionSimulator(parameters=_simulator().parameters, observation_shape=(2,))
