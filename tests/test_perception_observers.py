"""Bayesian observers (observer.py, experiment.py, speed.py, cue_combination.py) against
closed forms and brute-force numerical integration written here, not taken from helmholtz."""

import jax
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import helmholtz as hz
from helmholtz.data import load_speed_trials, stocker_simoncelli_subject
from helmholtz.perception import (
    ErnstBanksExperiment,
    GaussianPrior,
    Observer,
    PowerLawPrior,
    TwoAFCExperiment,
    causal_inference,
    combine_cues,
    combine_cues_with_prior,
    ernst_banks_design,
    speed_experiment,
)


# -- the 1-D observer -------------------------------------------------------------------------
@pytest.mark.parametrize("percept", ["mean", "median", "mode"])
def test_gaussian_observer_matches_the_closed_form(percept):
    """Ground truth: with prior N(0, sp^2) and measurement noise sigma (linear domain) the
    posterior is Gaussian, so its mean, median and mode are all w m with
    w = sp^2 / (sp^2 + sigma^2); the percepts' difference is then Gaussian with mean
    w_t s_t - w_r s_r and variance w_t^2 sigma_t^2 + w_r^2 sigma_r^2. Tolerance 3e-3: the
    grid's spacing (0.02) limits the mode's resolution; the mean and median come closer."""
    observer = Observer(
        GaussianPrior(mean=0.0),
        num_noise_levels=2,
        domain="linear",
        percept=percept,
        lapse=False,
        grid=(-8.0, 8.0, 801),
    )
    params = {"prior_sd": 1.5, "noise": np.array([0.4, 0.9])}
    reference, test = np.array([1.0, 1.0, 2.0, 0.5]), np.array([1.0, 1.3, 1.8, 0.2])
    ref_level, test_level = np.array([0, 0, 1, 1]), np.array([1, 1, 0, 1])
    p = observer.prob_test_greater(params, reference, ref_level, test, test_level)
    w = 1.5**2 / (1.5**2 + params["noise"] ** 2)
    wr, wt = w[ref_level], w[test_level]
    sr, st = params["noise"][ref_level], params["noise"][test_level]
    expected = norm.cdf((wt * test - wr * reference) / np.sqrt(wt**2 * st**2 + wr**2 * sr**2))
    np.testing.assert_allclose(p, expected, atol=3e-3)


def test_unbiased_observer_is_a_cumulative_gaussian_of_the_log_ratio():
    """Ground truth: with no prior the percept is the measurement, so in the log domain
    P = Phi((log s_t - log s_r) / sqrt(sigma_t^2 + sigma_r^2)), lapses mixed in."""
    observer = Observer(None, num_noise_levels=2, domain="log", grid=(-4.0, 6.0, 256))
    params = {"noise": np.array([0.3, 0.15]), "lapse": 0.04}
    reference, test = np.full(3, 2.0), np.array([1.5, 2.0, 3.0])
    p = observer.prob_test_greater(params, reference, np.zeros(3, int), test, np.ones(3, int))
    expected = 0.02 + 0.96 * norm.cdf(np.log(test / reference) / np.hypot(0.3, 0.15))
    np.testing.assert_allclose(p, expected, atol=1e-4)


def test_a_power_law_prior_shifts_log_percepts_by_the_closed_form():
    """Ground truth: a prior p(s) proportional to s^a is, over u = log s, a density
    proportional to e^{(a + 1) u} (the Jacobian ds/du = s), so the posterior over u given
    m is N(m + (a + 1) sigma^2, sigma^2) and its mean is m + (a + 1) sigma^2. Hence
    P(test greater) = Phi((log(s_t / s_r) + (a + 1)(sigma_t^2 - sigma_r^2)) / sqrt(sigma_t^2 +
    sigma_r^2)); without the Jacobian the shift would be a sigma^2."""
    from helmholtz.perception import PiecewiseLogPrior

    a = -2.0
    observer = Observer(
        PiecewiseLogPrior(knots=(1.0, 2.0)), num_noise_levels=2, domain="log", lapse=False, grid=(-9.0, 9.0, 1201)
    )
    params = {"prior_slopes": np.full(3, a), "noise": np.array([0.5, 0.25])}
    reference, test = np.full(3, 2.0), np.array([1.5, 2.0, 3.0])
    p = observer.prob_test_greater(params, reference, np.ones(3, int), test, np.zeros(3, int))
    shift = (a + 1) * (0.5**2 - 0.25**2)
    expected = norm.cdf((np.log(test / reference) + shift) / np.hypot(0.5, 0.25))
    np.testing.assert_allclose(p, expected, atol=2e-3)


def test_the_slow_power_prior_favours_slow_speeds_in_the_log_domain():
    """Ground truth: over u = log(s + 0.3), the density p(s(u)) e^u has slope
    1 - a (s + 0.3) / (s + scale), negative for every s >= 0 exactly when a > 1 and
    scale < 0.3 a. Every one of 500 prior draws of the restricted family must give a
    decreasing density on a fine grid; the unrestricted family must not always."""
    from numpyro import handlers

    u = np.linspace(np.log(0.3), np.log(200.0), 2000)
    s = np.exp(u) - 0.3

    def slopes(prior, seed):
        with handlers.seed(rng_seed=seed):
            params = prior.sample_parameters()
        return np.diff(np.asarray(prior.log_density(s, params)) + u)

    assert all((slopes(PowerLawPrior(slow_offset=0.3), seed) < 0).all() for seed in range(500))
    assert not all((slopes(PowerLawPrior(), seed) < 0).all() for seed in range(500))


def test_a_bias_shifts_the_point_of_subjective_equality():
    """Ground truth: with no prior and a bias b (internal units) the observer says "test
    greater" when m_t + b > m_r: P = Phi((log(s_t / s_r) + b) / sqrt(sigma_t^2 + sigma_r^2))."""
    observer = Observer(None, num_noise_levels=1, domain="log", lapse=False, bias=True, grid=(-4.0, 6.0, 256))
    test = np.array([1.5, 2.0, 3.0])
    p = observer.prob_test_greater(
        {"noise": np.array([0.2]), "bias": 0.1}, np.full(3, 2.0), np.zeros(3, int), test, np.zeros(3, int)
    )
    np.testing.assert_allclose(p, norm.cdf((np.log(test / 2.0) + 0.1) / np.hypot(0.2, 0.2)), atol=1e-3)


def test_a_slow_prior_makes_low_contrast_look_slower():
    """Ground truth: Stocker & Simoncelli (2006): with a prior falling with speed the
    posterior mean lies below the measurement, the more so the wider the likelihood, so a
    noisier (lower-contrast) stimulus is seen slower: at equal speeds the low-contrast test
    is judged faster less than half the time."""
    trials = pd.DataFrame(
        {
            "ref_speed_deg_s": [1.0, 4.0],
            "ref_contrast": [0.5, 0.5],
            "test_speed_deg_s": [1.0, 4.0],
            "test_contrast": [0.1, 0.5],
        }
    )
    observer = hz.perception.speed_observer(trials, prior="power")
    params = {"prior_exponent": 2.0, "prior_scale": 1.0, "noise": np.array([0.4, 0.15]), "lapse": 0.0}
    seen = observer.noiseless_percept(params, np.array([4.0, 4.0]), np.array([0, 1]))
    assert seen[0] < seen[1] < 4.0
    p = observer.prob_test_greater(params, np.array([4.0]), np.array([1]), np.array([4.0]), np.array([0]))
    assert p[0] < 0.5


def test_steep_slow_prior_likelihood_is_accurate_in_float32():
    """Ground truth: the same log-likelihood in float64. Subject 3's 960 trials at the
    steep prior subject 1's fit reaches (exponent 7, scale 0.001 deg/s) crush many percepts
    against s = 0; computed as absolute log speeds they tied in float32 and the total
    jumped by up to 2 nats between neighbouring parameters, which stopped NUTS. Measured
    from the grid's edge, float32 stays within float32 rounding of a sum of 960 terms."""
    trials = stocker_simoncelli_subject(3)
    responses = trials["test_seen_faster"].to_numpy(float)
    experiment = hz.perception.speed_experiment(trials, prior="slow")
    base = {
        "prior_exponent_excess": 6.0,
        "prior_scale_fraction": 5e-4,
        "noise": np.array([0.27, 0.25, 0.23]),
        "lapse": 0.01,
    }

    def log_likelihood(step):
        params = {**base, "noise": base["noise"] + step}
        p = np.asarray(experiment.response_probability(params), dtype=float)
        return float(np.sum(responses * np.log(p) + (1 - responses) * np.log1p(-p)))

    steps = np.linspace(-1e-4, 1e-4, 9)
    ours = np.array([log_likelihood(step) for step in steps])
    with jax.enable_x64(True):
        exact = np.array([log_likelihood(step) for step in steps])
    assert np.abs(ours - exact).max() < 0.02


# -- the experiment as a model ------------------------------------------------------------
def _small_speed_table(rng, num_trials=600):
    reference = rng.choice([1.0, 4.0], num_trials)
    return pd.DataFrame(
        {
            "ref_speed_deg_s": reference,
            "ref_contrast": np.full(num_trials, 0.5),
            # a fixed set of speed ratios, as a method of constant stimuli
            "test_speed_deg_s": reference * np.exp(rng.choice(np.linspace(-0.8, 0.8, 9), num_trials)),
            "test_contrast": rng.choice([0.1, 0.5], num_trials),
        }
    )


@pytest.mark.slow
def test_speed_observer_parameters_are_recovered():
    """Ground truth: the parameters the responses were simulated from. 3,000 simulated trials;
    the maximum a posteriori noise widths (svi, delta guide) come within 25% of the truth
    (their standard errors at this size are about 10%), low contrast noisier than high."""
    rng = np.random.default_rng(0)
    table = _small_speed_table(rng, 3000)
    experiment = speed_experiment(table, prior="power")
    truth = {"prior_exponent": 2.0, "prior_scale": 1.0, "noise": np.array([0.45, 0.2]), "lapse": 0.02}
    responses = experiment.simulate(1, truth)
    fit = hz.fit(
        experiment,
        responses,
        method="svi",
        guide="delta",
        num_steps=1500,
        learning_rate=0.03,
        progress_bar=False,
        key=0,
    )
    noise = np.asarray(fit.sample(0, 1)["noise"][0])
    assert noise[0] > noise[1]
    np.testing.assert_allclose(noise, truth["noise"], rtol=0.25)


def test_bad_designs_and_responses_are_refused():
    """Ground truth: the documented contract of TwoAFCExperiment."""
    observer = Observer(None, num_noise_levels=2)
    with pytest.raises(ValueError, match="levels"):
        TwoAFCExperiment(observer, np.ones(3), np.array([0, 1, 2]), np.ones(3), np.zeros(3, int))
    with pytest.raises(ValueError, match="one length"):
        TwoAFCExperiment(observer, np.ones(3), np.zeros(3, int), np.ones(2), np.zeros(2, int))
    with pytest.raises(ValueError, match="positive|offset"):
        TwoAFCExperiment(observer, np.array([1.0, -1.0]), np.zeros(2, int), np.ones(2), np.zeros(2, int))
    experiment = TwoAFCExperiment(observer, np.ones(3), np.zeros(3, int), np.ones(3), np.ones(3, int))
    with pytest.raises(ValueError, match="0 or 1; trial 1"):
        experiment.validate_data([1, 2, 0])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        experiment.validate_data([1, 0])
    with pytest.raises(ValueError, match="percept"):
        Observer(None, num_noise_levels=1, percept="average")
    with pytest.raises(ValueError, match="no gradient"):
        TwoAFCExperiment(
            Observer(GaussianPrior(), 1, percept="mode"), np.ones(2), np.zeros(2, int), np.ones(2), np.zeros(2, int)
        )
    with pytest.raises(ValueError, match="outside the observer's grid"):
        TwoAFCExperiment(
            Observer(None, 1, domain="linear"), np.array([1.0, 50.0]), np.zeros(2, int), np.ones(2), np.zeros(2, int)
        )


# -- trial tables ---------------------------------------------------------------------------
def test_the_stocker_simoncelli_tables_load_with_their_published_sizes():
    """Ground truth: the reference README (5,760 / 5,760 / 960 / 5,760 / 6,240 trials), less
    the one trial of subject 2 with a negative test speed, which read strictly is refused."""
    sizes = [len(stocker_simoncelli_subject(k)) for k in range(1, 6)]
    assert sizes == [5760, 5759, 960, 5760, 6240]
    path = hz.data.reference_dir() / "stocker_simoncelli_2006" / "subject2.csv"
    with pytest.raises(ValueError, match="1 negative values"):
        load_speed_trials(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.drop(columns="test_contrast"), "missing columns"),
        (lambda t: t.assign(test_contrast=1.5), r"contrasts must lie in \(0, 1\]"),
        (lambda t: t.assign(test_seen_faster=2), "must be 0 or 1"),
        (lambda t: t.assign(ref_speed_deg_s=-1.0), "speeds must be >= 0"),
        (lambda t: t.assign(test_speed_deg_s="fast"), "numeric and finite"),
    ],
)
def test_bad_trial_tables_are_refused(tmp_path, change, message):
    """Ground truth: the column contract of load_speed_trials."""
    good = pd.DataFrame(
        {
            "ref_speed_deg_s": [1.0],
            "ref_contrast": [0.5],
            "test_speed_deg_s": [1.2],
            "test_contrast": [0.1],
            "test_seen_faster": [1],
        }
    )
    path = tmp_path / "trials.csv"
    change(good).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message):
        load_speed_trials(path)
    with pytest.raises(FileNotFoundError, match="no such trial table"):
        load_speed_trials(tmp_path / "absent.csv")


# -- cue combination ------------------------------------------------------------------------
def test_cue_weights_and_combined_variance_are_the_formulas():
    """Ground truth: Ernst & Banks (2002): w_i proportional to 1 / sigma_i^2 and
    sigma^2 = sigma_1^2 sigma_2^2 / (sigma_1^2 + sigma_2^2), below either cue's."""
    estimate, sigma, weights = combine_cues(np.array([50.0, 56.0]), np.array([2.0, 4.0]))
    np.testing.assert_allclose(weights, [0.8, 0.2])
    np.testing.assert_allclose(estimate, 0.8 * 50 + 0.2 * 56)
    np.testing.assert_allclose(sigma, np.sqrt(4.0 * 16.0 / 20.0))
    assert sigma < 2.0


def test_the_prior_acts_as_a_cue():
    """Ground truth: the posterior mean and sd of N(s; m, sp) N(x1; s, s1) N(x2; s, s2),
    integrated numerically on a fine grid."""
    s = np.linspace(-30, 30, 200_001)
    log_post = norm.logpdf(s, 2.0, 3.0) + norm.logpdf(1.0, s, 1.0) + norm.logpdf(4.0, s, 2.0)
    post = np.exp(log_post - log_post.max())
    post /= post.sum()
    mean = (s * post).sum()
    sd = np.sqrt(((s - mean) ** 2 * post).sum())
    estimate, sigma = combine_cues_with_prior(np.array([1.0, 4.0]), np.array([1.0, 2.0]), 2.0, 3.0)
    np.testing.assert_allclose([estimate, sigma], [mean, sd], rtol=1e-5)


def test_causal_inference_matches_brute_force_integration():
    """Ground truth: Koerding et al. (2007)'s generative model integrated numerically over
    the sources on a grid: P(C=1 | x1, x2) from the two marginal likelihoods, and the
    model-averaged estimate of source 1."""
    grid = np.linspace(-40, 40, 4001)
    sigma_1, sigma_2, sigma_p, p_common, mu = 1.5, 4.0, 10.0, 0.4, 1.0
    for x_1, x_2 in [(0.0, 2.0), (3.0, -6.0), (10.0, 12.0), (-5.0, 15.0)]:
        prior = norm.pdf(grid, mu, sigma_p)
        l1, l2 = norm.pdf(x_1, grid, sigma_1), norm.pdf(x_2, grid, sigma_2)
        step = grid[1] - grid[0]
        common = (prior * l1 * l2).sum() * step
        separate = (prior * l1).sum() * step * (prior * l2).sum() * step
        posterior_common = common * p_common / (common * p_common + separate * (1 - p_common))
        fused = (grid * prior * l1 * l2).sum() / (prior * l1 * l2).sum()
        alone = (grid * prior * l1).sum() / (prior * l1).sum()
        result = causal_inference(x_1, x_2, sigma_1, sigma_2, sigma_p, p_common, prior_mean=mu)
        np.testing.assert_allclose(result["p_common"], posterior_common, rtol=1e-4)
        np.testing.assert_allclose(
            result["estimate_1"], posterior_common * fused + (1 - posterior_common) * alone, rtol=1e-4, atol=1e-5
        )


def test_ernst_banks_pse_is_the_reliability_weighted_average():
    """Ground truth: Ernst & Banks (2002), worked by hand: haptic sd 4, visual sd 2 gives a
    visual weight 16 / 20 = 0.8; a +6 mm conflict puts vision at 58 and touch at 52, so the
    PSE is 0.8 * 58 + 0.2 * 52 = 56.8 mm and the threshold sqrt(2) * sqrt(4 * 16 / 20) mm."""
    experiment = ErnstBanksExperiment(**ernst_banks_design(noise_levels=1, repeats=1))
    summary = experiment.psychometrics({"sigma_haptic": 4.0, "sigma_visual": np.array([2.0])}, conflicts=(6.0, -6.0))
    np.testing.assert_allclose(summary["visual_weight"][0], [0.8, 0.8], rtol=1e-6)
    np.testing.assert_allclose(summary["pse"][0], [56.8, 53.2], rtol=1e-6)
    np.testing.assert_allclose(summary["threshold"][0], np.sqrt(2 * 3.2), rtol=1e-6)


def test_causal_inference_selection_takes_the_likelier_structure():
    """Ground truth: Koerding et al. (2007)'s model selection: fused estimate when P(C=1) >
    0.5, the single-cue posterior mean otherwise (closed forms written out here)."""
    for x_2, expect_common in [(1.0, True), (30.0, False)]:
        result = causal_inference(0.0, x_2, 1.0, 2.0, 10.0, 0.5, decision="selection")
        assert bool(result["p_common"] > 0.5) is expect_common
        fused = (x_2 / 4.0) / (1 + 1 / 4.0 + 1 / 100.0)
        np.testing.assert_allclose(result["estimate_1"], fused if expect_common else 0.0, atol=1e-6)


def test_ernst_banks_psychometrics_are_the_points_of_the_psychometric_function():
    """Ground truth: the observer's own response probabilities, inverted numerically on a
    0.001 mm grid of comparison sizes: the 50% point is the PSE, the 84.13% point (one sd of
    the cumulative Gaussian) minus the PSE is the threshold."""
    comparisons = np.arange(40.0, 70.0, 0.001)
    params = {"sigma_haptic": 4.0, "sigma_visual": np.array([2.0, 6.0]), "lapse": 0.0}
    for level in (0, 1):
        for conflict in (-6.0, 3.0):
            experiment = ErnstBanksExperiment(
                np.full(comparisons.size, level), np.full(comparisons.size, conflict), comparisons
            )
            p = np.asarray(experiment.response_probability(params))
            summary = experiment.psychometrics(params, conflicts=(conflict,))
            pse = comparisons[np.searchsorted(p, 0.5)]
            np.testing.assert_allclose(summary["pse"][level, 0], pse, atol=2e-3)
            np.testing.assert_allclose(
                summary["threshold"][level, 0], comparisons[np.searchsorted(p, norm.cdf(1.0))] - pse, atol=3e-3
            )


@pytest.mark.slow
def test_ernst_banks_noise_levels_are_recovered_by_nuts():
    """Ground truth: the noise levels the 2IFC choices were simulated from (haptic 4 mm,
    visual 2, 4, 6, 8 mm as the visual noise rises, 2% lapses; 2,200 trials). Each 99%
    posterior interval holds its true value (with five intervals, the chance that one of
    them misses by bad luck is about 5%; the seeds are fixed)."""
    design = ernst_banks_design(repeats=10)
    experiment = ErnstBanksExperiment(**design)
    truth = {"sigma_haptic": 4.0, "sigma_visual": np.array([2.0, 4.0, 6.0, 8.0]), "lapse": 0.02}
    responses = experiment.simulate(3, truth)
    fit = hz.fit(
        experiment, responses, method="nuts", key=0, num_chains=1, num_warmup=300, num_samples=400, progress_bar=False
    )
    draws = fit.sample(0, 400)
    values = np.column_stack([draws["sigma_haptic"], draws["sigma_visual"]])
    low, high = np.quantile(values, [0.005, 0.995], axis=0)
    true_values = np.r_[4.0, truth["sigma_visual"]]
    assert np.all((low < true_values) & (true_values < high)), (low, high)
    # The combined estimate leans on the visual cue when it is reliable (weight 0.8 at 2 mm).
    mean, _ = experiment.standard_estimate(jax.tree.map(lambda d: d.mean(0), draws))
    conflict_6 = (experiment.conflict == 6.0) & (experiment.noise_level == 0)
    assert 55.0 + 1.5 < float(mean[conflict_6][0]) < 55.0 + 3.0


# -- the experiment as a simulator (npe, nle, nre) ----------------------------------------
def _simulated_speed_experiment():
    from helmholtz.perception.simulation import SimulatedExperiment

    table = _small_speed_table(np.random.default_rng(2), 800)
    return SimulatedExperiment(speed_experiment(table, prior="power", grid_size=128))


def test_the_simulator_prior_is_the_observer_prior():
    """Ground truth: the experiment's NumPyro prior. Draws of the simulator's unconstrained
    Normal parameters, transformed back, must match its draws (two-sample Kolmogorov-Smirnov
    on 4,000 + 4,000 draws per parameter, p > 0.001; a wrong transform or scale fails at
    p < 1e-10)."""
    from scipy.stats import ks_2samp

    simulated = _simulated_speed_experiment()
    assert [p.name for p in simulated.parameters] == [
        "log_prior_exponent",
        "log_prior_scale",
        "log_noise_0",
        "log_noise_1",
        "logit_lapse",
    ]
    ours = simulated.constrained(simulated.sample_prior(0, 4000))
    theirs = simulated.experiment.sample_prior(1, 4000)
    for name in ("prior_exponent", "prior_scale", "lapse"):
        assert ks_2samp(np.asarray(ours[name]), np.asarray(theirs[name])).pvalue > 1e-3, name
    assert ks_2samp(np.asarray(ours["noise"][:, 1]), np.asarray(theirs["noise"][:, 1])).pvalue > 1e-3


def test_simulated_responses_follow_the_observer():
    """Ground truth: the observer's response probabilities. Over 400 simulations the mean
    summary (proportions per condition and ratio bin) must equal the group means of those
    probabilities within 5 binomial standard errors."""
    simulated = _simulated_speed_experiment()
    truth = {"prior_exponent": 2.0, "prior_scale": 1.0, "noise": np.array([0.45, 0.2]), "lapse": 0.02}
    unconstrained = {
        "log_prior_exponent": np.log(2.0),
        "log_prior_scale": 0.0,
        "log_noise_0": np.log(0.45),
        "log_noise_1": np.log(0.2),
        "logit_lapse": np.log(0.02 / 0.98),
    }
    theta = np.repeat(np.asarray(simulated.theta_of(unconstrained))[None], 400, axis=0)
    summaries = np.asarray(simulated.simulate_summaries(0, theta))
    p = np.asarray(simulated.experiment.response_probability(truth))
    expected = p @ simulated._group_means
    trials_per_group = 1 / simulated._group_means.max(0)
    standard_error = np.sqrt(expected * (1 - expected) / trials_per_group / 400)
    assert np.all(np.abs(summaries.mean(0) - expected) < 5 * standard_error + 1e-6)


@pytest.mark.slow
def test_npe_recovers_the_speed_observer():
    """Ground truth: the parameters 2,000 responses were simulated from. NPE with 3,000
    simulations: each noise width inside its 99% posterior interval, low contrast noisier."""
    from helmholtz.perception.simulation import SimulatedExperiment

    table = _small_speed_table(np.random.default_rng(0), 2000)
    experiment = speed_experiment(table, prior="power", grid_size=128)
    truth = {"prior_exponent": 2.0, "prior_scale": 1.0, "noise": np.array([0.45, 0.2]), "lapse": 0.02}
    simulated = SimulatedExperiment(experiment)
    fit = hz.fit(
        simulated, experiment.simulate(1, truth), method="npe", num_simulations=3000, key=0, progress_bar=False
    )
    noise = np.asarray(simulated.constrained(fit.sample(0, 2000))["noise"])
    low, high = np.quantile(noise, [0.005, 0.995], axis=0)
    assert np.all((low < truth["noise"]) & (truth["noise"] < high))
    assert np.median(noise[:, 0]) > np.median(noise[:, 1])


@pytest.mark.slow
def test_ernst_banks_posterior_is_calibrated():
    """Ground truth: simulation-based calibration (Talts et al., 2018): with truths drawn
    from the prior, the rank of each truth among NUTS's posterior draws is uniform. 60
    simulated experiments of 1,100 trials (5 repeats of the design), ranks among 49 draws,
    Bonferroni-corrected chi-square test at 1% over the 6 parameters."""
    experiment = ErnstBanksExperiment(**ernst_banks_design(repeats=5))
    result = hz.diagnostics.sbc(
        experiment,
        "nuts",
        key=0,
        num_simulations=60,
        num_posterior_draws=49,
        progress_bar=False,
        num_chains=1,
        num_warmup=300,
        num_samples=490,
    )
    print(dict(zip(result.names, np.round(result.p_values, 3))))
    assert result.passes(alpha=0.01), dict(zip(result.names, np.round(result.p_values, 4)))
