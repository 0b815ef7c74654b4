"""Cognitive tomography (helmholtz/perception/tomography.py): the odd-one-out likelihoods
against numerical integration, the closed-form MMD against its definition, the recovery of a
known non-Gaussian subjective prior from simulated triplet judgements, and bad input."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import helmholtz as hz
from helmholtz.perception.tomography import CognitiveTomography, Mixture, mixture_mmd, random_triplets

# A known subjective prior that no Gaussian is: three separated components.
TRUTH = {
    "weights": jnp.array([0.4, 0.35, 0.25]),
    "means": jnp.array([[-1.5, -1.0], [1.5, -1.0], [0.0, 1.5]]),
    "scales": jnp.array([[0.4, 0.4], [0.6, 0.3], [0.3, 0.6]]),
    "correlations": jnp.stack([jnp.eye(2)] * 3),
}


def test_hypothesis_likelihoods_match_numerical_integration():
    """Ground truth: L_i = p(x_i) p(x_j, x_k), both integrals over z done on a 401 x 401
    grid with scipy's normal densities (no closed form of ours). Tolerance 1e-3 nats:
    the grid's quadrature error (spacing 0.02, against noise sd 0.5) is far below that,
    float32 logs of numbers near e^-10 carry about 1e-5."""
    model = CognitiveTomography(np.array([[[-1.0, -0.8], [1.2, -1.1], [0.1, 1.0]]]), sensory_noise=0.5)
    mixture = model.mixture(TRUTH)
    axis = np.linspace(-5, 5, 401)
    z = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1)
    prior = sum(
        float(w) * st.multivariate_normal(np.asarray(m), np.asarray(c)).pdf(z)
        for w, m, c in zip(mixture.weights, mixture.means, mixture.covariances)
    )
    cell = (axis[1] - axis[0]) ** 2

    def noise(x):
        return st.norm.pdf(x[0], z[..., 0], 0.5) * st.norm.pdf(x[1], z[..., 1], 0.5)

    x = model.triplets[0]
    single = [np.log((noise(x[i]) * prior).sum() * cell) for i in range(3)]
    pair = {(j, k): np.log((noise(x[j]) * noise(x[k]) * prior).sum() * cell) for j, k in ((1, 2), (0, 2), (0, 1))}
    expected = [single[0] + pair[1, 2], single[1] + pair[0, 2], single[2] + pair[0, 1]]
    np.testing.assert_allclose(model.hypothesis_log_likelihoods(TRUTH)[0], expected, atol=1e-3)


def test_mixture_mmd_matches_its_definition_by_sampling():
    """Ground truth: MMD^2 estimated from 4,000 draws of each mixture with the unbiased
    U-statistic; the closed form must agree within 0.01 (the estimator's sd here, from
    its variance over draws, is about 0.003). Zero between a mixture and itself, and the
    components' order does not matter."""
    p = Mixture(TRUTH["weights"], TRUTH["means"], CognitiveTomography(random_triplets(0, 1)).mixture(TRUTH).covariances)
    q = Mixture(jnp.ones(1), jnp.array([[0.0, -0.3]]), jnp.array([[[1.8, 0.0], [0.0, 1.4]]]))
    rng = np.random.default_rng(0)

    def draws(m, n):
        component = rng.choice(len(m.weights), size=n, p=np.asarray(m.weights) / float(m.weights.sum()))
        return np.stack(
            [rng.multivariate_normal(np.asarray(m.means[c]), np.asarray(m.covariances[c])) for c in component]
        )

    a, b = draws(p, 4000), draws(q, 4000)

    def kernel(u, v):
        return np.exp(-((u[:, None] - v[None]) ** 2).sum(-1) / (2 * 0.5**2))

    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    n = len(a)
    squared = (kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1)) - 2 * kab.mean()
    assert mixture_mmd(p, q, 0.5) == pytest.approx(np.sqrt(squared), abs=0.01)
    assert mixture_mmd(p, p) == pytest.approx(0.0, abs=1e-3)
    order = np.array([2, 0, 1])
    assert mixture_mmd(p, Mixture(p.weights[order], p.means[order], p.covariances[order])) == pytest.approx(0, abs=1e-3)


@pytest.mark.slow
def test_the_inferred_prior_is_closer_to_the_true_one_than_a_gaussian_observers():
    """Ground truth: the known three-component prior the choices were simulated from
    (1,500 random triplets in [-3, 3]^2, seeds fixed). MAP fits of the mixture observer
    (three components) and of the Gaussian-prior observer to the same choices: the
    mixture's MMD to the true prior (closed form, kernel length 0.5) must be below 0.15
    and below a third of the Gaussian's, which cannot go under the best Gaussian's
    distance (about 0.55 here; measured: 0.05 against 0.59 at 3,000 trials). On 1,000
    held-out trials the mixture's log-likelihood per trial must beat the Gaussian's by
    0.05 nats and be within 0.03 of the true prior's (the sd of a mean of 1,000 trial
    log-likelihoods is about 0.015). Slow: two MAP fits of 1,500 steps, 80 s on
    two cores."""
    train, test = 1500, 1000
    triplets = random_triplets(0, train + test)
    everything = CognitiveTomography(triplets)
    choices = np.asarray(everything.simulate(1, TRUTH))
    held_out = everything.subset(np.arange(train, train + test))
    true_mixture = everything.mixture(TRUTH)
    options = dict(method="svi", guide="delta", init="uniform", num_steps=1500, learning_rate=0.03, progress_bar=False)
    distance, score = {}, {}
    for k in (3, 1):
        model = CognitiveTomography(triplets[:train], num_components=k)
        fit = hz.fit(model, choices[:train], key=0, **options)
        params = {name: value[0] for name, value in fit.sample(0, 1).items()}
        distance[k] = mixture_mmd(model.mixture(params), true_mixture)
        score[k] = float(model.trial_log_likelihood(params, choices[train:], triplets[train:]).mean())
    truth_score = float(held_out.trial_log_likelihood(TRUTH, choices[train:]).mean())
    assert distance[3] < 0.15 and distance[3] < distance[1] / 3, distance
    assert score[3] > score[1] + 0.05 and score[3] > truth_score - 0.03, (score, truth_score)


def test_triplets_with_repeated_items_are_refused():
    triplets = random_triplets(0, 4)
    triplets[2, 2] = triplets[2, 0]
    with pytest.raises(ValueError, match=r"triplet 2 repeats an item \(items 0 and 2 are both"):
        CognitiveTomography(triplets)
    with pytest.raises(ValueError, match=r"triplets must have shape \(trials, 3, 2\), got \(4, 2, 2\)"):
        CognitiveTomography(random_triplets(0, 4)[:, :2])
    bad = random_triplets(0, 4)
    bad[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="triplet 1 is not"):
        CognitiveTomography(bad)


def test_choices_must_be_zero_one_or_two():
    model = CognitiveTomography(random_triplets(0, 3))
    with pytest.raises(ValueError, match=r"0, 1 or 2; trial 1 is 3.0 \(1 such trials\)"):
        model.validate_data([0, 3, 2])
    with pytest.raises(ValueError, match=r"one choice per triplet, shape \(3,\)"):
        model.validate_data([0, 1])
    with pytest.raises(ValueError, match="num_components must be a positive integer"):
        CognitiveTomography(random_triplets(0, 3), num_components=0)
    np.testing.assert_array_equal(model.validate_data([0, 1, 2.0]), [0, 1, 2])
