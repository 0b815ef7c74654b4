"""The prior library: declared parameters are checked, densities are the textbook ones."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from helmholtz import priors


def test_densities_match_scipy():
    """Closed forms from scipy.stats, an independent implementation of each density."""
    z = np.array([-0.7, 0.1, 2.3])
    cases = [
        (priors.Gaussian(3, loc=0.5, scale=2.0), stats.norm(0.5, 2.0).logpdf(z).sum()),
        (priors.Laplace(3, loc=0.5, scale=2.0), stats.laplace(0.5, 2.0).logpdf(z).sum()),
        (priors.VonMises(3, loc=0.5, concentration=2.0), stats.vonmises(2.0, loc=0.5).logpdf(z).sum()),
    ]
    for prior, expected in cases:
        assert float(prior.distribution().log_prob(jnp.asarray(z))) == pytest.approx(expected, rel=1e-5)


def test_discrete_supports_are_complete_and_normalised():
    bernoulli = priors.Bernoulli(3, probs=0.2)
    states, log_prior = bernoulli.enumerate_support()
    assert {tuple(s) for s in np.asarray(states)} == set(itertools.product((0.0, 1.0), repeat=3))
    assert np.exp(log_prior).sum() == pytest.approx(1.0, rel=1e-6)
    assert np.exp(log_prior[-1]) == pytest.approx(0.2**3, rel=1e-5)  # all three on

    categorical = priors.Categorical(3, probs=(0.2, 0.3, 0.5))
    states, log_prior = categorical.enumerate_support()
    np.testing.assert_array_equal(states, np.eye(3))
    # float32 lgamma terms of the one-draw multinomial cost a few ulps.
    assert float(categorical.distribution().log_prob(states[2])) == pytest.approx(np.log(0.5), rel=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: priors.Gaussian(2, scale=-1.0), "scale must be a finite number > 0"),
        (lambda: priors.Laplace(2, scale=0.0), "scale must be a finite number > 0"),
        (lambda: priors.VonMises(2, concentration=float("nan")), "concentration"),
        (lambda: priors.Gaussian(0), "dim must be a positive integer"),
        (lambda: priors.Bernoulli(2, probs=1.5), r"probs must lie in \(0, 1\)"),
        (lambda: priors.Categorical(3, probs=(0.5, 0.5)), "needs 3 entries"),
        (lambda: priors.Categorical(2, probs=(0.6, 0.6)), "must sum to 1"),
        (lambda: priors.Bernoulli(20).enumerate_support(), "too many to enumerate"),
    ],
)
def test_invalid_parameters_are_refused_with_the_reason(make, message):
    with pytest.raises(ValueError, match=message):
        make()
