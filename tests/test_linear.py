"""Linear latent-variable models against closed forms and independent implementations."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg, stats
from sklearn.decomposition import PCA
from sklearn.decomposition import FactorAnalysis as SklearnFactorAnalysis

import helmholtz as hz
from helmholtz.models import BinaryFactors, FactorAnalysis, GaussianMixture, ProbabilisticPCA


def _simulate(model, seed, num_points):
    truth = {k: v[0] for k, v in model.sample_prior(jax.random.PRNGKey(seed), 1).items()}
    return truth, np.asarray(model.simulate(jax.random.PRNGKey(seed + 1), truth, num_points=num_points))


def _ppca_params_from_sklearn(pca):
    """Tipping & Bishop's maximum-likelihood PPCA parameters, as scikit-learn fits them."""
    loadings = pca.components_.T * np.sqrt(pca.explained_variance_ - pca.noise_variance_)
    return {"loadings": loadings, "mean": pca.mean_, "noise": np.array([np.sqrt(pca.noise_variance_)])}


def test_ppca_marginal_likelihood_equals_sklearn_score():
    """Our exact log p(x | theta) at scikit-learn's ML parameters equals PCA.score_samples."""
    _, x = _simulate(ProbabilisticPCA(10, 3), seed=0, num_points=500)
    pca = PCA(n_components=3).fit(x)
    ours = ProbabilisticPCA(10, 3).log_marginal_likelihood(_ppca_params_from_sklearn(pca), x)
    np.testing.assert_allclose(ours, pca.score_samples(x), rtol=1e-4)


@pytest.mark.slow  # 10,000 SVI steps: about 45 s here
def test_fitted_ppca_held_out_likelihood_matches_closed_form():
    """MAP by SVI (delta guide) reaches the held-out log-likelihood of the closed-form ML
    solution (scikit-learn's PCA.score) to 1e-3 relative. With 3,000 training points
    the N(0, 1) loading prior moves the optimum by far less than that."""
    model = ProbabilisticPCA(10, 3)
    _, x = _simulate(model, seed=2, num_points=4000)
    train, test = x[:3000], x[3000:]
    fit = hz.fit(
        model,
        train,
        method="svi",
        guide="delta",
        key=0,
        num_steps=10_000,
        learning_rate=2e-2,
        patience=0,
        progress_bar=False,
    )
    ours = float(fit.log_marginal(test).mean())
    closed_form = PCA(n_components=3).fit(train).score(test)
    assert ours == pytest.approx(closed_form, rel=1e-3)


def test_factor_analysis_marginal_equals_sklearn():
    """sklearn's FactorAnalysis.score_samples is an independent implementation of the same density."""
    model = FactorAnalysis(6, 2)
    truth, x = _simulate(model, seed=4, num_points=50)
    reference = SklearnFactorAnalysis(n_components=2).fit(x)
    reference.components_ = np.asarray(truth["loadings"]).T
    reference.noise_variance_ = np.asarray(truth["noise"]) ** 2
    reference.mean_ = np.asarray(truth["mean"])
    np.testing.assert_allclose(model.log_marginal_likelihood(truth, x), reference.score_samples(x), rtol=1e-4)


@pytest.mark.slow  # 8,000 SVI steps on 2,000 points: about 40 s here
def test_factor_analysis_loadings_recovered_up_to_rotation():
    """SVI on simulated data: the loadings' column space and G G^T match the truth.

    (NUTS is not used here: the likelihood is flat along rotations of G, a ridge that
    with 2,000 points drives NUTS to its maximum tree depth.)

    With 2,000 points the sampling error of the covariance is about 1/sqrt(2000) = 2%
    of its scale, so a 10% relative error bound and a 10 degree subspace angle are far
    outside sampling error, while a wrong subspace would sit tens of degrees away.
    """
    model = FactorAnalysis(8, 2)
    truth, x = _simulate(model, seed=6, num_points=2000)
    fit = hz.fit(model, x, method="svi", guide="normal", key=0, num_steps=8000, progress_bar=False)
    gram = jax.vmap(lambda g: g @ g.T)(fit.sample(1, 800)["loadings"]).mean(0)
    true_gram = truth["loadings"] @ truth["loadings"].T
    assert np.linalg.norm(gram - true_gram) / np.linalg.norm(true_gram) < 0.1
    fitted_basis = np.linalg.eigh(np.asarray(gram))[1][:, -2:]
    angles = np.degrees(linalg.subspace_angles(fitted_basis, np.asarray(truth["loadings"])))
    assert angles.max() < 10


def test_gaussian_mixture_marginal_equals_explicit_sum():
    """The summed-out categorical latent equals sum_k w_k N(x; mu_k, s^2 I) from scipy."""
    model = GaussianMixture(2, 3)
    truth, x = _simulate(model, seed=8, num_points=20)
    means, noise = np.asarray(truth["loadings"]).T, float(truth["noise"][0])
    explicit = np.log(sum(stats.multivariate_normal(m, noise**2 * np.eye(2)).pdf(x) / 3 for m in means))
    np.testing.assert_allclose(model.log_marginal_likelihood(truth, x), explicit, rtol=1e-5)


def test_binary_factors_marginal_equals_brute_force():
    """Enumerating the Bernoulli prior equals a Python loop over all 2^K on/off patterns."""
    model = BinaryFactors(4, 3, probs=0.3)
    truth, x = _simulate(model, seed=10, num_points=10)
    loadings, mean, noise = (np.asarray(truth[k]) for k in ("loadings", "mean", "noise"))
    total = np.zeros(len(x))
    for pattern in itertools.product((0, 1), repeat=3):
        z = np.asarray(pattern, dtype=float)
        prior = np.prod(np.where(z == 1, 0.3, 0.7))
        total += prior * stats.multivariate_normal(loadings @ z + mean, noise[0] ** 2 * np.eye(4)).pdf(x)
    np.testing.assert_allclose(model.log_marginal_likelihood(truth, x), np.log(total), rtol=1e-5)


def test_only_collapsible_priors_have_an_exact_marginal():
    sparse = hz.models.SparseCoding(4, 2)
    assert not sparse.integrates_latents
    assert sparse.sites().local_latents == ("z",)
    with pytest.raises(TypeError, match="no exact marginal likelihood for a Laplace prior"):
        sparse.marginal_distribution({"loadings": jnp.ones((4, 2)), "mean": jnp.zeros(4), "noise": jnp.ones(1)})


def test_sparse_coding_recovers_the_dictionary_subspace():
    """SVI with the Laplace codes kept as sampled latents (no closed form): the learned
    dictionary spans the true one. Noise 0.05 on codes of scale 1 leaves the subspace
    determined to well under a degree; 5 degrees allows for the optimiser's tolerance."""
    model = hz.models.SparseCoding(12, 3, sparsity=1.0)
    truth = {k: v[0] for k, v in model.sample_prior(jax.random.PRNGKey(12), 1).items()}
    z = jax.random.laplace(jax.random.PRNGKey(13), (200, 3))
    noise = 0.05 * jax.random.normal(jax.random.PRNGKey(14), (200, 12))
    x = np.asarray(z @ truth["loadings"].T + truth["mean"] + noise)
    fit = hz.fit(model, x, method="svi", guide="normal", key=0, num_steps=6000, progress_bar=False)
    loadings = np.asarray(fit.sample(0, 100)["loadings"].mean(0))
    angles = np.degrees(linalg.subspace_angles(loadings, np.asarray(truth["loadings"])))
    assert angles.max() < 5
