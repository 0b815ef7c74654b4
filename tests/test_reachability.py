"""What the model cannot reach: the reachability check against closed forms we did not make.

On Gaussian simulations a recorded value's quantile is the normal CDF, its robust z-score
its z-score, and (the k-nearest-neighbour distance tracking the density) the joint quantile
of a point at Mahalanobis distance m is the chi-square CDF of m^2: the prior-predictive mass
of points denser than it. Then the recording fit's report: the entry in summary.json, the
figure and the sentence on the terminal, on a tiny budget.
"""

import json

import numpy as np
import pytest
from scipy.stats import chi2, norm
from test_recording_fit import short_recording  # noqa: F401  (the fixture: a short simulated sweep)

from helmholtz.app.cli import _report_recording_fit
from helmholtz.app.recording_fit import fit_recording
from helmholtz.diagnostics import reachability


def correlated_gaussian(num_simulations, rho, seed=0):
    covariance = np.array([[1.0, rho], [rho, 1.0]])
    return np.random.default_rng(seed).multivariate_normal([0.0, 0.0], covariance, num_simulations), covariance


def test_per_feature_quantile_and_robust_z_match_the_normal():
    simulated = np.random.default_rng(0).normal(3.0, 2.0, (20_000, 3))
    report = reachability(simulated, [3.0 + 2.0 * 1.5, 3.0 - 2.0 * 2.5, 3.0], ["a", "b", "c"])
    np.testing.assert_allclose(report.quantile, norm.cdf([1.5, -2.5, 0.0]), atol=0.01)
    np.testing.assert_allclose(report.robust_z, [1.5, -2.5, 0.0], atol=0.06)  # MAD * 1.4826 is the sd
    np.testing.assert_allclose(report.scale, 2.0, rtol=0.03)
    assert report.reachable.all() and report.within_range.all() and report.unreachable == ()


def test_a_value_outside_the_simulated_range_is_unreachable_and_the_median_is_not():
    simulated = np.random.default_rng(1).normal(size=(2000, 3))
    high = simulated[:, 0].max()
    report = reachability(simulated, [high + 0.5, np.median(simulated[:, 1]), 0.0], ["width", "rest", "peak"])
    assert report.unreachable == ("width",)
    assert report.quantile[0] == 1.0 and not report.within_range[0] and report.quantile[1] == pytest.approx(0.5)
    # The rest of the recording is one the model produces; the whole of it is not.
    assert report.joint_quantile_of_reachable < report.level < report.joint_quantile
    text = report.sentence("the fit conditions on them anyway")
    assert text.startswith("The model cannot produce width (recorded") and "conditions on them anyway" in text
    # Fewer than ``tail`` of the simulations beyond it is unreachable too; at the maximum it is not.
    assert not reachability(simulated, [np.sort(simulated[:, 0])[-2], 0, 0], tail=0.01).reachable[0]
    assert reachability(simulated, [high, 0, 0], tail=1e-4).reachable[0]
    json.dumps(report.to_dict())  # JSON-ready


@pytest.mark.parametrize(("mahalanobis", "tolerance"), [(2.0, 0.06), (3.0, 0.01)])
def test_the_joint_quantile_of_a_point_at_known_mahalanobis_distance_is_the_chi_square_cdf(mahalanobis, tolerance):
    simulated, covariance = correlated_gaussian(20_000, 0.7)
    cholesky = np.linalg.cholesky(covariance)
    quantiles = []
    for angle in np.linspace(0, 2 * np.pi, 8, endpoint=False):
        point = cholesky @ np.array([np.cos(angle), np.sin(angle)]) * mahalanobis
        quantiles.append(reachability(simulated, point).joint_quantile)
    assert np.mean(quantiles) == pytest.approx(chi2.cdf(mahalanobis**2, df=2), abs=tolerance)


def test_an_observation_drawn_as_the_simulations_are_has_a_uniform_joint_quantile():
    rng = np.random.default_rng(4)
    simulated, observations = rng.standard_normal((1000, 6)), rng.standard_normal((100, 6))
    quantiles = np.array([reachability(simulated, x).joint_quantile for x in observations])
    assert abs(quantiles.mean() - 0.5) < 0.08  # the sd of the mean of 100 uniforms is 0.03
    assert (quantiles > 0.99).mean() <= 0.04  # the false-alarm rate is about 1 - level


def test_the_joint_check_flags_a_point_inside_each_range_but_off_the_joint_support():
    simulated, covariance = correlated_gaussian(10_000, 0.95)
    along = reachability(simulated, [1.5, 1.5], ["v1", "v2"])  # with the correlation: Mahalanobis^2 = 2.3
    against = reachability(simulated, [1.5, -1.5], ["v1", "v2"])  # against it: Mahalanobis^2 = 90
    for report in (along, against):
        assert report.reachable.all() and report.within_range.all()
    assert along.joint_reachable and along.joint_quantile == pytest.approx(chi2.cdf(4.5 / 1.95, df=2), abs=0.1)
    assert not against.joint_reachable and against.joint_quantile > 0.999
    assert "but not their combination" in against.sentence()
    assert along.sentence().startswith("The model's prior simulations reach every recorded feature")


def test_point_masses_and_constant_features():
    rng = np.random.default_rng(2)
    silent = rng.random(5000) < 0.8  # most simulations give the same value, as a silent cell's spike width
    width = np.where(silent, 0.0, rng.normal(1.5, 0.1, 5000))
    simulated = np.stack([width, rng.normal(size=5000), np.full(5000, 7.0)], axis=1)
    report = reachability(simulated, [1.6, 0.0, 7.0])
    assert report.scale[0] == pytest.approx(0.1, rel=0.1)  # the spread of the simulations that vary
    assert report.scale[2] == 0.0 and report.robust_z[2] == 0.0 and report.reachable.all()
    assert reachability(simulated, [1.6, 0.0, 7.5]).unreachable == ("feature 2",)


def test_bad_input_is_refused_clearly():
    simulated = np.random.default_rng(3).normal(size=(500, 3))
    with pytest.raises(ValueError, match=r"observed_features must have shape \(3,\).*got \(2,\)"):
        reachability(simulated, [0.0, 0.0])
    with pytest.raises(ValueError, match="2 names for 3 features"):
        reachability(simulated, [0.0, 0.0, 0.0], ["a", "b"])
    with pytest.raises(ValueError, match="observed features must be finite, got b = nan"):
        reachability(simulated, [0.0, np.nan, 0.0], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"shape \(num_simulations, num_features\)"):
        reachability(simulated[:, 0], [0.0])
    with pytest.raises(ValueError, match=r"50 finite simulations \(0 left out as non-finite\); at least 100"):
        reachability(simulated[:50], [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="k must be a positive integer"):
        reachability(simulated, [0.0, 0.0, 0.0], k=0)
    with pytest.raises(ValueError, match="tail must lie in"):
        reachability(simulated, [0.0, 0.0, 0.0], tail=0.7)
    # Non-finite simulations are left out and counted; too many of them leave too few.
    spoiled = simulated.copy()
    spoiled[:10, 1] = np.nan
    assert reachability(spoiled, [0.0, 0.0, 0.0]).num_excluded == 10
    spoiled[:450, 2] = np.inf
    with pytest.raises(ValueError, match=r"50 finite simulations \(450 left out as non-finite\)"):
        reachability(spoiled, [0.0, 0.0, 0.0])


def test_the_recording_report_says_what_the_model_cannot_reach(short_recording, tmp_path, capsys):  # noqa: F811
    with pytest.warns(UserWarning, match="max_num_epochs"):
        fit, written = fit_recording(
            short_recording, out=tmp_path, num_simulations=400, num_rounds=1, max_num_epochs=5, progress_bar=False
        )
    # The check reuses the first round's prior simulations: no simulation of its own.
    kept = fit.diagnostics["prior_predictive_summaries"]
    assert kept.shape == (400 - fit.diagnostics["num_invalid"][0], len(fit.model.feature_names))
    assert written["reachability"].name == "reachability.png" and written["reachability"].stat().st_size > 0
    entry = json.loads(written["summary"].read_text())["reachability"]
    names = list(fit.model.feature_names)
    assert list(entry["features"]) == names
    observed = np.asarray(fit.model.summarize(np.asarray(short_recording.voltage)[None]))[0]
    expected = reachability(kept, observed, names)
    for i, name in enumerate(names):
        assert entry["features"][name]["reachable"] == bool(expected.reachable[i])
        assert entry["features"][name]["quantile"] == pytest.approx(expected.quantile[i])
    assert entry["joint"]["quantile"] == pytest.approx(expected.joint_quantile)
    assert entry["unreachable"] == list(expected.unreachable) and entry["num_simulations"] == len(kept)
    _report_recording_fit(fit, written, "the short sweep")
    assert entry["sentence"] in capsys.readouterr().out
