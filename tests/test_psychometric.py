"""Psychometric functions (helmholtz/perception/psychometric.py) against closed forms
(scipy.stats's distributions, the beta-binomial), against psignifit 4 (an independent
implementation that integrates the posterior on a grid) where it is installed, and their
refusal of bad input."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
import scipy.stats as st

import helmholtz as hz
from helmholtz.perception import PsychometricFunction, counts_from_trials
from helmholtz.perception.psychometric import SIGMOIDS, OverdispersedBinomial, TaperedUniform

try:
    import psignifit
except ImportError:  # pragma: no cover - depends on the environment
    psignifit = None
needs_psignifit = pytest.mark.skipif(psignifit is None, reason="psignifit is not installed (pip install psignifit)")

# scipy's distribution for each sigmoid: F(x) = cdf((x - loc) / scale)
SCIPY = {
    "norm": st.norm,
    "logistic": st.logistic,
    "gumbel": st.gumbel_l,
    "rgumbel": st.gumbel_r,
    "student": st.cauchy,
    "weibull": st.gumbel_l,
}


# -- the function against closed forms ----------------------------------------------------------
@pytest.mark.parametrize("sigmoid", SIGMOIDS)
def test_threshold_and_width_are_defined_as_psignifit_defines_them(sigmoid):
    """Ground truth: scipy's distribution functions. F(threshold) = threshold_pc, and F
    rises from alpha to 1 - alpha over exactly ``width`` (found with scipy's quantiles),
    for a non-default pc and alpha; psi = guess + (1 - guess - lapse) F. Tolerance 1e-5:
    float32 arithmetic."""
    x = np.array([0.5, 1.0, 2.0, 4.0]) if sigmoid == "weibull" else np.array([-1.0, 0.0, 1.0, 2.0])
    model = PsychometricFunction(x, np.full(4, 10), sigmoid=sigmoid, threshold_pc=0.3, width_alpha=0.1)
    threshold, width = 0.2, 1.7
    distribution = SCIPY[sigmoid]
    scale = width / (distribution.ppf(0.9) - distribution.ppf(0.1))
    loc = threshold - distribution.ppf(0.3) * scale
    assert float(
        model.probability(
            {"threshold": threshold, "width": width},
            np.exp(threshold) if sigmoid == "weibull" else threshold,
            unscaled=True,
        )
    ) == pytest.approx(0.3, abs=1e-5)
    params = {"threshold": threshold, "width": width, "lapse": 0.05, "guess": 0.1, "eta": 0.1}
    expected = 0.1 + 0.85 * distribution.cdf((model.to_scale(x) - loc) / scale)
    np.testing.assert_allclose(model.probability(params), expected, atol=1e-5)
    low, high = distribution.ppf([0.1, 0.9]) * scale + loc
    np.testing.assert_allclose(
        model.probability(params, np.exp([low, high]) if sigmoid == "weibull" else [low, high], unscaled=True),
        [0.1, 0.9],
        atol=1e-5,
    )


@needs_psignifit
@pytest.mark.parametrize("sigmoid", SIGMOIDS)
def test_sigmoids_match_psignifits(sigmoid):
    """Ground truth: psignifit's own sigmoid classes (its Weibull on log intensities)."""
    x = np.geomspace(0.1, 10, 7)
    model = PsychometricFunction(x, np.full(7, 10), sigmoid=sigmoid, experiment="yes/no")
    theirs = psignifit.sigmoids.sigmoid_by_name(sigmoid)(model.scaled_intensity, 0.3, 1.2, gamma=0.1, lambd=0.05)
    np.testing.assert_allclose(
        model.probability({"threshold": 0.3, "width": 1.2, "guess": 0.1, "lapse": 0.05}), theirs, atol=1e-5
    )


def test_experiment_types_set_the_guess_rate():
    """2AFC fixes the lower asymptote at 1/2, 4AFC at 1/4; equal asymptote ties it to the
    lapse rate; yes/no makes it a parameter."""
    x = np.linspace(-3, 3, 5)
    params = {"threshold": 0.0, "width": 1.0, "lapse": 0.02, "guess": 0.3}
    for experiment, low in (("2AFC", 0.5), ("4AFC", 0.25), ("equal asymptote", 0.02), ("yes/no", 0.3)):
        model = PsychometricFunction(x, np.full(5, 10), experiment=experiment)
        assert float(model.probability(params, [-1e3])[0]) == pytest.approx(low, abs=1e-6), experiment
        assert float(model.probability(params, [1e3])[0]) == pytest.approx(0.98, abs=1e-6), experiment
        assert ("guess" in model.free_parameters) == (experiment == "yes/no")


def test_overdispersed_binomial_is_psignifits_beta_binomial():
    """Ground truth: scipy's beta-binomial with concentrations psi nu and (1 - psi) nu,
    nu = 1 / eta^2 - 1 (Schuett et al. 2016, eq. 3); at eta -> 0 the binomial, where the
    log-gamma form would lose all precision in float32. Tolerance 3e-4 nats (float32:
    log C(200, 150) comes from log-gammas near 860, whose rounding is 5e-5, and sums of up
    to 200 logs)."""
    n, k, p = np.array([1, 5, 40, 200]), np.array([0, 3, 17, 150]), np.array([0.3, 0.5, 0.6, 0.7])
    nu = 1 / 0.2**2 - 1
    ours = OverdispersedBinomial(jnp.asarray(p), 0.2, jnp.asarray(n)).log_prob(jnp.asarray(k, dtype=jnp.float32))
    np.testing.assert_allclose(ours, st.betabinom.logpmf(k, n, p * nu, (1 - p) * nu), atol=3e-4)
    near_binomial = OverdispersedBinomial(jnp.asarray(p), 1e-4, jnp.asarray(n)).log_prob(
        jnp.asarray(k, dtype=jnp.float32)
    )
    np.testing.assert_allclose(near_binomial, st.binom.logpmf(k, n, p), atol=3e-4)


@pytest.mark.slow
def test_overdispersed_binomial_draws_have_the_beta_binomial_moments():
    """Ground truth: mean n psi and variance n psi (1 - psi) (1 + (n - 1) eta^2)
    (Schuett et al. 2016), within 3 standard errors of 20,000 draws (the variance's
    standard error inflated by 1.5 for the beta-binomial's heavier tails)."""
    draws = np.asarray(
        OverdispersedBinomial(jnp.full(1, 0.3), 0.3, jnp.full(1, 50)).sample(jax.random.PRNGKey(0), (20_000,))
    )[:, 0]
    variance = 50 * 0.3 * 0.7 * (1 + 49 * 0.09)
    assert abs(draws.mean() - 15) < 3 * np.sqrt(variance / 20_000)
    assert abs(draws.var() / variance - 1) < 3 * np.sqrt(2 / 20_000) * 1.5


def test_tapered_uniform_density_integrates_to_one_and_its_draws_follow_it():
    """Ground truth: the density is normalised (trapezoid rule on 50,001 points); a
    histogram of 100,000 draws (bins of 0.2) matches it within 0.03 (the largest density is
    0.27; a bin's count there has relative sd 1.4%, so 0.03 is over 5 sd)."""
    prior = TaperedUniform(-1.0, 2.0, 1.5, 0.5)
    grid = np.linspace(-2.5, 2.5, 50_001)
    density = np.exp(np.asarray(prior.log_prob(jnp.asarray(grid))))
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-6)
    draws = np.asarray(prior.sample(jax.random.PRNGKey(1), (100_000,)))
    assert draws.min() >= -2.5 and draws.max() <= 2.5
    histogram, edges = np.histogram(draws, bins=25, range=(-2.5, 2.5), density=True)
    centres = (edges[1:] + edges[:-1]) / 2
    np.testing.assert_allclose(histogram, np.exp(np.asarray(prior.log_prob(jnp.asarray(centres)))), atol=0.03)


@needs_psignifit
@pytest.mark.parametrize(
    "experiment",
    ["2AFC", pytest.param("yes/no", marks=pytest.mark.slow), pytest.param("equal asymptote", marks=pytest.mark.slow)],
)
def test_default_priors_are_psignifits(experiment):
    """Ground truth: psignifit 4.3's normalised prior functions (``debug=True``), on its own
    grids. Tolerance 2e-3 of the largest density: the lapse and guess priors, which
    psignifit truncates at 0.5 (Beta(1, 10) has 0.1% of its mass above); for equal
    asymptotes psignifit counts the lapse prior twice, Beta(1, 10)^2, renormalised here."""
    data = np.array([[0.1, 3, 10], [0.4, 5, 10], [0.5, 6, 10], [1.3, 9, 10], [2.0, 10, 10]])
    model = PsychometricFunction.from_data(data, experiment=experiment)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = psignifit.psignifit(
            data,
            experiment_type=experiment,
            debug=True,
            # Only the priors are compared: the smallest grids psignifit accepts keep it quick.
            grid_steps={name: 3 for name in ("threshold", "width", "eta", "lambda", "gamma")},
            steps_moving_bounds={name: 3 for name in ("threshold", "width", "eta", "lambda", "gamma")},
        )
    names = {"threshold": "threshold", "width": "width", "lapse": "lambda", "guess": "gamma", "eta": "eta"}
    for parameter in model.free_parameters:
        grid = np.linspace(*result.debug["bounds"][names[parameter]], 200)
        theirs = result.debug["priors"][names[parameter]](grid)
        if parameter == "lapse" and experiment == "equal asymptote":
            theirs = theirs**2 / np.trapezoid(theirs**2, grid)
        ours = np.exp(np.asarray(model.default_prior(parameter).log_prob(jnp.asarray(grid))))
        np.testing.assert_allclose(ours, theirs, atol=2e-3 * theirs.max(), err_msg=parameter)


def test_weibull_on_intensities_is_gumbel_on_their_logs():
    x = np.geomspace(0.01, 0.5, 6)
    weibull = PsychometricFunction(x, np.full(6, 20), sigmoid="weibull", experiment="2AFC")
    gumbel = PsychometricFunction(np.log(x), np.full(6, 20), sigmoid="gumbel", experiment="2AFC")
    params = {"threshold": np.log(0.05), "width": 1.3, "lapse": 0.01, "eta": 0.1}
    np.testing.assert_allclose(weibull.probability(params), gumbel.probability(params), atol=1e-6)
    assert weibull.prior_range == pytest.approx(gumbel.prior_range)


# -- fitting --------------------------------------------------------------------------------------
TRUTH = {"threshold": 0.4, "width": 2.0, "lapse": 0.04, "eta": 0.05}


@pytest.fixture(scope="module")
def simulated_fit():
    """A 2AFC cumulative normal, 12 intensities x 80 trials, drawn with overdispersion;
    NUTS with 2 chains of 1,000 draws."""
    x = np.linspace(-2.5, 3.5, 12)
    model = PsychometricFunction(x, np.full(12, 80), sigmoid="norm", experiment="2AFC")
    counts = np.asarray(model.simulate(3, TRUTH))
    data = np.column_stack([x, counts, np.full(12, 80)])
    fit = hz.fit(
        PsychometricFunction.from_data(data, experiment="2AFC"),
        data,
        method="nuts",
        key=0,
        num_chains=2,
        num_warmup=500,
        num_samples=1000,
        progress_bar=False,
    )
    return data, fit


def test_nuts_recovers_threshold_width_and_lapse(simulated_fit):
    """Ground truth: the parameters the data were drawn with. The seed is fixed, so the
    test is deterministic; each true value must lie in the central 99% posterior interval
    (a correct posterior misses it with probability 1% per parameter over seeds), and the
    sampler must have converged (R-hat < 1.02, no divergences)."""
    _, fit = simulated_fit
    draws = fit.sample(0, 2000)
    for name in ("threshold", "width", "lapse"):
        low, high = np.quantile(np.asarray(draws[name]), [0.005, 0.995])
        assert low < TRUTH[name] < high, (name, low, high)
    assert max(float(np.max(r)) for r in fit.diagnostics["r_hat"].values()) < 1.02
    assert fit.diagnostics["num_divergent"] == 0


@needs_psignifit
def test_thresholds_and_widths_agree_with_psignifit(simulated_fit):
    """Ground truth: psignifit 4 on the same data matrix, same sigmoid, experiment type and
    default priors, which integrates the posterior on a grid instead of sampling it.
    Posterior means must agree within 0.25 of our posterior sd (NUTS's Monte Carlo error
    of a mean is about 0.03 sd at this ESS; psignifit's grid of 40 points per parameter
    adds its quadrature error; measured: under 0.1 sd on six data sets in
    benchmarks/psychometric_psignifit.py), and each mean must lie in the other's 95%
    interval."""
    data, fit = simulated_fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # psignifit's advice on sampling and grid bounds
        result = psignifit.psignifit(data, sigmoid="norm", experiment_type="2AFC")
    draws = fit.sample(0, 2000)
    for name, theirs in (("threshold", "threshold"), ("width", "width"), ("lapse", "lambda"), ("eta", "eta")):
        values = np.asarray(draws[name])
        their_mean = result.parameter_estimate_mean[theirs]
        assert abs(values.mean() - their_mean) < 0.25 * values.std(), (name, values.mean(), their_mean)
        low, high = np.quantile(values, [0.025, 0.975])
        their_low, their_high = result.confidence_intervals[theirs]["0.95"]
        assert low <= their_mean <= high and their_low <= values.mean() <= their_high, name


def test_a_fit_saves_and_loads(simulated_fit, tmp_path):
    _, fit = simulated_fit
    loaded = hz.load(fit.save(tmp_path / "psychometric.hz"))
    assert loaded.model.experiment == "2AFC" and loaded.model.prior_range == fit.model.prior_range
    np.testing.assert_allclose(loaded.sample(1, 5)["threshold"], fit.sample(1, 5)["threshold"])


@pytest.mark.slow
def test_svi_fits_it_too(simulated_fit):
    """The same data by ``svi`` (mean-field normal guide): posterior means of threshold and
    width within one NUTS posterior sd of NUTS's (a mean-field guide's means are close to
    the posterior's, its sds smaller)."""
    data, fit = simulated_fit
    approximate = hz.fit(fit.model, data, method="svi", num_steps=3000, learning_rate=0.02, progress_bar=False, key=0)
    exact, guide = fit.sample(0, 2000), approximate.sample(0, 2000)
    for name in ("threshold", "width"):
        assert abs(np.mean(guide[name]) - np.mean(exact[name])) < np.std(exact[name]), name


# -- bad input ----------------------------------------------------------------------------------
def test_responses_must_be_zero_or_one():
    with pytest.raises(ValueError, match=r"responses must be 0 or 1; trial 2 is 2.0 \(1 such trials\)"):
        counts_from_trials([0.1, 0.2, 0.3], [0, 1, 2])
    with pytest.raises(ValueError, match="responses must be 0 or 1"):
        counts_from_trials([0.1, 0.2], [0.5, 1])
    data = counts_from_trials([0.2, 0.1, 0.2, 0.1, 0.3], [1, 0, 1, 1, 0])
    np.testing.assert_array_equal(data, [[0.1, 1, 2], [0.2, 2, 2], [0.3, 0, 1]])


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ([3, 11, 2], r"block 1 \(11.0 of 10 trials\) exceeds the block's number of trials"),
        ([3, -1, 2], r"block 1 \(-1.0 of 10 trials\) is negative"),
        ([3, 2.5, 2], "is not a whole number"),
        ([3, np.nan, 2], "is not finite"),
        ([3, 2], r"counts of the 3 blocks \(shape \(3,\)\)"),
    ],
)
def test_counts_must_be_whole_numbers_within_the_trials(counts, message):
    model = PsychometricFunction([0.1, 0.2, 0.3], [10, 10, 10])
    with pytest.raises(ValueError, match=message):
        model.validate_data(counts)


def test_a_data_matrix_is_checked_too():
    with pytest.raises(ValueError, match="exceeds the block's number of trials"):
        PsychometricFunction.from_data([[0.1, 12, 10], [0.2, 3, 10]])
    with pytest.raises(ValueError, match="number of trials must be a positive whole number; block 1"):
        PsychometricFunction.from_data([[0.1, 2, 10], [0.2, 0, 0]])
    with pytest.raises(ValueError, match="psignifit's matrix"):
        PsychometricFunction.from_data([[0.1, 2], [0.2, 3]])
    model = PsychometricFunction.from_data([[0.1, 2, 10], [0.2, 3, 10]])
    with pytest.raises(ValueError, match="differ from the model's design"):
        model.validate_data([[0.1, 2, 10], [0.3, 3, 10]])
    np.testing.assert_array_equal(model.validate_data([[0.1, 2, 10], [0.2, 3, 10]]), [2, 3])


def test_log_scaled_sigmoids_need_positive_intensities():
    with pytest.raises(
        ValueError,
        match=r"weibull sigmoid works on log intensity, so intensities must be positive; "
        r"block 0 has -0.1 \(2 such blocks\)",
    ):
        PsychometricFunction([-0.1, 0.0, 0.5], [10, 10, 10], sigmoid="weibull")
    with pytest.raises(ValueError, match="positive stimulus_range"):
        PsychometricFunction([0.1, 0.5], [10, 10], sigmoid="weibull", stimulus_range=(0.0, 1.0))
    PsychometricFunction([-0.1, 0.0, 0.5], [10, 10, 10], sigmoid="gumbel")  # the same function on log scale data


def test_declarations_are_checked():
    x, n = [0.1, 0.2, 0.3], [10, 10, 10]
    with pytest.raises(ValueError, match="sigmoid must be one of"):
        PsychometricFunction(x, n, sigmoid="probit")
    with pytest.raises(ValueError, match="experiment must be"):
        PsychometricFunction(x, n, experiment="2IFC")
    with pytest.raises(ValueError, match="at least 2 choices"):
        PsychometricFunction(x, n, experiment="1AFC")
    with pytest.raises(ValueError, match=r"fixed names \['slope'\]"):
        PsychometricFunction(x, n, fixed={"slope": 1.0})
    with pytest.raises(ValueError, match="fixed lapse = 1.5 is outside its range"):
        PsychometricFunction(x, n, fixed={"lapse": 1.5})
    with pytest.raises(ValueError, match="'guess', which is not a free parameter"):
        PsychometricFunction(x, n, experiment="2AFC", priors=(hz.priors.Parameter("guess", dist.Beta(1.0, 5.0)),))
    with pytest.raises(ValueError, match="every block has the same intensity"):
        PsychometricFunction([0.2, 0.2], [10, 10])
    with pytest.raises(ValueError, match="num_trials must be positive integers; block 1 has 0.0"):
        PsychometricFunction(x, [10, 0, 10])
    model = PsychometricFunction(
        x, n, experiment="2AFC", fixed={"eta": 0.0}, priors=(hz.priors.Parameter("threshold", dist.Normal(0.2, 0.1)),)
    )
    assert model.free_parameters == ("threshold", "width", "lapse")
    assert type(model.parameters[0].prior).__name__ == "Normal"
