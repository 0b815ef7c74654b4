"""Signal detection theory: the closed forms against hand-computed values, the generative
observer against the closed forms, and NUTS recovering d' and c from simulated trials."""

from __future__ import annotations

import numpy as np
import pytest
from numpyro import handlers
from scipy.stats import norm

import helmholtz as hz
from helmholtz.models.base import OBSERVED_SITE
from helmholtz.perception.signal_detection import (
    SignalDetection,
    area_under_roc,
    dprime_and_criterion,
    proportion_correct_2afc,
    roc_curve,
)


def test_dprime_and_criterion_of_a_textbook_observer():
    """Ground truth: z(0.9) = 1.2816 and z(0.3) = -0.5244 from the normal table, so
    d' = 1.2816 + 0.5244 = 1.8060 and c = -(1.2816 - 0.5244) / 2 = -0.3786."""
    dprime, criterion = dprime_and_criterion(0.9, 0.3)
    assert float(dprime) == pytest.approx(1.8060, abs=5e-5)
    assert float(criterion) == pytest.approx(-0.3786, abs=5e-5)


def test_dprime_and_criterion_take_arrays():
    dprime, criterion = dprime_and_criterion(np.array([0.9, 0.5]), np.array([0.3, 0.5]))
    np.testing.assert_allclose(dprime, [1.8060, 0.0], atol=5e-5)
    np.testing.assert_allclose(criterion, [-0.3786, 0.0], atol=5e-5)


def test_two_interval_proportion_correct_at_dprime_one():
    """Ground truth: Phi(1 / sqrt 2) = Phi(0.7071) = 0.7602 (normal table)."""
    assert float(proportion_correct_2afc(1.0)) == pytest.approx(0.7602, abs=5e-5)


def test_roc_passes_through_the_rates_it_came_from():
    """Ground truth: roc_curve inverts dprime_and_criterion, so the observer (d', c)
    measured at (F, H) = (0.3, 0.9) has its ROC through that point at its criterion."""
    dprime, criterion = dprime_and_criterion(0.9, 0.3)
    false_alarm_rate, hit_rate = roc_curve(dprime, criterion)
    assert float(false_alarm_rate) == pytest.approx(0.3, abs=1e-5)
    assert float(hit_rate) == pytest.approx(0.9, abs=1e-5)


@pytest.mark.parametrize("dprime", [0.0, 0.5, 1.0, 2.0, 3.0])
def test_area_under_roc_equals_two_interval_proportion_correct(dprime):
    """Ground truth: Green & Swets' area theorem, checked by integrating the ROC numerically
    (trapezoids over a dense sweep of criteria) rather than by the same formula."""
    false_alarm_rate, hit_rate = roc_curve(dprime, np.linspace(8.0, -8.0, 4001))
    area = np.trapezoid(np.asarray(hit_rate), np.asarray(false_alarm_rate))
    assert area == pytest.approx(float(area_under_roc(dprime)), abs=1e-4)
    assert float(area_under_roc(dprime)) == pytest.approx(float(proportion_correct_2afc(dprime)))


@pytest.mark.parametrize(
    "hit_rate, false_alarm_rate", [(1.0, 0.3), (0.9, 0.0), (0.9, -0.1), (np.array([0.5, 1.0]), 0.2)]
)
def test_rates_of_zero_or_one_are_refused(hit_rate, false_alarm_rate):
    with pytest.raises(ValueError, match=r"strictly between 0 and 1.*log-linear"):
        dprime_and_criterion(hit_rate, false_alarm_rate)


def _response_distribution(model, params):
    """The distribution of the responses that the program builds for parameters ``params``."""
    program = handlers.substitute(handlers.seed(model.program, 0), data=params)
    return handlers.trace(program).get_trace()[OBSERVED_SITE]["fn"]


def test_yes_no_observer_has_the_closed_form_hit_and_false_alarm_rates():
    """Ground truth: H = Phi(d'/2 - c) and F = Phi(-d'/2 - c), which
    dprime_and_criterion must turn back into (d', c)."""
    model = SignalDetection(signal=(1, 0))
    responses = _response_distribution(model, {"d_prime": 1.3, "criterion": 0.4})
    hit_rate, false_alarm_rate = np.asarray(responses.probs)
    assert hit_rate == pytest.approx(norm.cdf(1.3 / 2 - 0.4), abs=1e-6)
    assert false_alarm_rate == pytest.approx(norm.cdf(-1.3 / 2 - 0.4), abs=1e-6)
    np.testing.assert_allclose(dprime_and_criterion(hit_rate, false_alarm_rate), (1.3, 0.4), atol=1e-4)


def test_unbiased_2afc_observer_is_correct_with_probability_phi_dprime_over_root_two():
    """Ground truth: with no interval bias (c = 0), P(correct) = Phi(d'/sqrt 2) whichever
    interval holds the signal (Green & Swets, ch. 2)."""
    model = SignalDetection(signal=(1, 0), task="2afc")
    p_interval_one = np.asarray(_response_distribution(model, {"d_prime": 1.0, "criterion": 0.0}).probs)
    np.testing.assert_allclose([p_interval_one[0], 1 - p_interval_one[1]], 0.7602, atol=5e-5)


def test_rating_observer_traces_the_yes_no_roc():
    """Ground truth: a rating observer is a yes/no observer at every criterion at once, so
    P(rating >= k | signal) and P(rating >= k | noise) lie on the ROC at criterion k."""
    model = SignalDetection(signal=(1, 0), task="rating", num_ratings=4)
    criteria = np.array([-0.8, 0.1, 1.2])
    probs = np.asarray(_response_distribution(model, {"d_prime": 1.5, "criteria": criteria}).probs)
    at_or_above = np.cumsum(probs[:, ::-1], axis=1)[:, ::-1][:, 1:]  # P(rating >= k), k = 1, 2, 3
    false_alarm_rates, hit_rates = roc_curve(1.5, criteria)
    np.testing.assert_allclose(at_or_above[0], hit_rates, atol=1e-6)
    np.testing.assert_allclose(at_or_above[1], false_alarm_rates, atol=1e-6)


@pytest.mark.slow
def test_yes_no_parameters_are_recovered_by_nuts():
    """Ground truth: the d' and c that simulated the trials. With 2,000 trials the N(1, 2)
    and N(0, 2) priors are weak, so the posterior is close to the sampling distribution of
    the estimate and a central 99% interval misses the truth with probability about 1% per
    parameter; the fixed seeds make the test deterministic, and a bias of 0.2 in d' (about
    three posterior sds) would fail it. The posterior means must also agree with the
    classical estimates from the observed hit and false-alarm rates."""
    truth = {"d_prime": 1.5, "criterion": 0.3}
    signal = np.repeat([1, 0], 1000)
    model = SignalDetection(signal=tuple(signal))
    responses = np.asarray(model.simulate(0, truth))
    # One chain keeps the test quick; R-hat needs several, ESS does not.
    fit = hz.fit(
        model, responses, method="nuts", key=0, num_warmup=300, num_samples=500, num_chains=1, progress_bar=False
    )
    assert fit.diagnostics["num_divergent"] == 0
    draws = fit.sample(1, 500)
    classical = dprime_and_criterion(responses[signal == 1].mean(), responses[signal == 0].mean())
    for name, estimate in zip(("d_prime", "criterion"), classical):
        low, high = np.percentile(np.asarray(draws[name]), [0.5, 99.5])
        assert low < truth[name] < high, f"{name}: truth {truth[name]} outside the 99% interval ({low:.3f}, {high:.3f})"
        assert float(np.mean(draws[name])) == pytest.approx(float(estimate), abs=0.03)


@pytest.mark.parametrize(
    "task, num_ratings, responses, message",
    [
        ("yes_no", None, [1, 0, 2], r"responses must be 0 or 1, got \[2\]"),
        ("2afc", None, [1, 0.5, 0], r"responses must be 0 or 1, got \[0.5\]"),
        ("yes_no", None, [1, 0], r"one response per trial \(3 trials in the design\), got 2"),
        ("rating", 4, [0, 3, 4], r"integers 0 \.\. 3, got \[4\]"),
        ("rating", 4, [0, -1, 1], r"integers 0 \.\. 3, got \[-1\]"),
        ("yes_no", None, [1, np.nan, 0], r"NaN"),
    ],
)
def test_bad_responses_are_refused(task, num_ratings, responses, message):
    model = SignalDetection(signal=(1, 0, 1), task=task, num_ratings=num_ratings)
    with pytest.raises(ValueError, match=message):
        model.validate_data(responses)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(signal=(1, 0), task="same_different"), r"task must be one of"),
        (dict(signal=(1, 2)), r"signal must hold one 0 or 1 per trial"),
        (dict(signal=()), r"signal must hold one 0 or 1 per trial"),
        (dict(signal=(1, 0), task="rating"), r"needs num_ratings >= 2"),
        (dict(signal=(1, 0), num_ratings=3), r"rating task only"),
    ],
)
def test_bad_designs_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        SignalDetection(**arguments)


def test_valid_responses_come_back_as_integers():
    model = SignalDetection(signal=(1, 0, 1), task="rating", num_ratings=3)
    responses = model.validate_data([0.0, 2.0, 1.0])
    assert responses.dtype.kind == "i"
    assert model.num_points_of(responses) is None
