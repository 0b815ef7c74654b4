"""Hierarchical normal models: the centred and non-centred forms are one model."""

import numpy as np
import pytest
from numpyro.infer.util import log_density
from scipy import stats

import helmholtz as hz
from helmholtz.models.hierarchical import HierarchicalNormal
from helmholtz.models.posteriordb import load_posterior

SIGMA = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)
Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])


def _log_joint(model, params):
    return float(log_density(model.program, (Y,), {}, params)[0])


@pytest.mark.parametrize("eta_seed", [0, 1])
def test_forms_differ_by_the_jacobian_of_theta_equals_mu_plus_tau_eta(eta_seed):
    """Ground truth: the change of variables theta = mu + tau eta has Jacobian tau^J, so
    log p_nc(mu, tau, eta, y) = log p_c(mu, tau, theta, y) + J log tau; each term written
    with scipy as well."""
    mu, tau = 4.0, 3.5
    eta = np.random.default_rng(eta_seed).normal(size=8)
    theta = mu + tau * eta
    centred = _log_joint(HierarchicalNormal(SIGMA, centered=True), {"mu": mu, "tau": tau, "theta": theta})
    non_centred = _log_joint(HierarchicalNormal(SIGMA), {"mu": mu, "tau": tau, "theta_trans": eta})
    assert non_centred == pytest.approx(centred + 8 * np.log(tau), abs=1e-4)
    by_hand = (
        stats.norm(0, 5).logpdf(mu)
        + stats.halfcauchy(scale=5).logpdf(tau)
        + stats.norm(mu, tau).logpdf(theta).sum()
        + stats.norm(theta, SIGMA).logpdf(Y).sum()
    )
    assert centred == pytest.approx(by_hand, abs=1e-4)


def test_eight_schools_is_the_non_centred_hierarchical_normal():
    model, y = load_posterior("eight_schools_noncentered")
    assert isinstance(model, HierarchicalNormal) and not model.centered
    assert (model.mu_scale, model.tau_scale) == (5.0, 5.0)
    with pytest.raises(ValueError, match="tau_scale must be a finite number > 0"):
        HierarchicalNormal(SIGMA, tau_scale=0.0)


@pytest.mark.slow
def test_each_form_suits_its_regime():
    """Betancourt & Girolami (2015): with weak data (eight schools) the centred posterior is
    a funnel and NUTS diverges, the non-centred form does not; with strong data (standard
    errors divided by 20) the centred form mixes tau better (higher ESS). Same seed and
    settings for both forms; 4 chains x 1,000 draws."""

    def fit(model, y):
        return hz.fit(
            model, y, method="nuts", key=0, num_chains=4, num_warmup=1000, num_samples=1000, progress_bar=False
        )

    weak = {form: fit(HierarchicalNormal(SIGMA, centered=form), Y) for form in (True, False)}
    assert int(weak[True].diagnostics["num_divergent"]) > 10
    assert int(weak[False].diagnostics["num_divergent"]) <= 2
    precise_sigma = tuple(s / 20 for s in SIGMA)
    strong = {form: fit(HierarchicalNormal(precise_sigma, centered=form), Y) for form in (True, False)}
    assert float(strong[True].diagnostics["ess"]["tau"]) > 2 * float(strong[False].diagnostics["ess"]["tau"])
