"""The wake-sleep and reweighted wake-sleep back ends, and what every amortised back end shares, against closed forms.

Probabilistic PCA has an exact marginal likelihood and posterior (Tipping & Bishop, 1999);
a sigmoid belief network with three binary latents has an exact log p(x) by summing over
its 8 latent states. Both check what was learnt, not only that training ran.
"""

import itertools

import jax
import numpy as np
import numpyro.distributions as dist
import pytest
from jax.scipy.special import logsumexp

import helmholtz as hz
from helmholtz.models import NonlinearLVM, ProbabilisticPCA

OBS_DIM, LATENT_DIM = 8, 2
QUICK = dict(learning_rate=1e-2, patience=0, progress_bar=False, encoder_hidden=(32,))


@pytest.fixture(scope="module")
def ppca():
    """1,000 training and 300 held-out points from a PPCA with known parameters."""
    rng = np.random.default_rng(0)
    truth = {
        "loadings": rng.normal(size=(OBS_DIM, LATENT_DIM)),
        "mean": rng.normal(size=OBS_DIM),
        "noise": np.array([0.5]),
    }
    model = ProbabilisticPCA(OBS_DIM, LATENT_DIM, collapse_local=False)
    x = np.asarray(model.simulate(jax.random.PRNGKey(1), truth, num_points=1300))
    return model, truth, x[:1000], x[1000:]


@pytest.fixture(scope="module", params=["wake-sleep", "rws"])
def ppca_fit(request, ppca):
    model, _, train, _ = ppca
    return hz.fit(model, train, method=request.param, key=0, num_steps=3000, **QUICK)


def _point_estimates(fit):
    return {name: np.asarray(value[0]) for name, value in fit.sample(0, 1).items() if name != "z"}


def test_ppca_held_out_likelihood_reaches_the_exact_optimum(ppca, ppca_fit):
    """The issue asks for the held-out log_marginal within 0.5 nats per point of the exact
    value. Against the exact marginal at the true parameters (the optimum up to sampling
    noise): measured 0.017 (wake-sleep) and 0.025 (rws); 0.1 is required. The estimate
    (K = 1000, encoder proposing) matches the exact marginal at the fitted parameters to
    0.05 nats (measured 4e-4)."""
    _, truth, _, test = ppca
    exact = ProbabilisticPCA(OBS_DIM, LATENT_DIM)
    estimated = float(ppca_fit.log_marginal(test, num_particles=1000, key=1).mean())
    at_fitted = float(exact.log_marginal_likelihood(_point_estimates(ppca_fit), test).mean())
    at_truth = float(exact.log_marginal_likelihood(truth, test).mean())
    assert abs(estimated - at_fitted) < 0.05
    assert at_fitted > at_truth - 0.1


def test_ppca_encoder_mean_is_the_exact_posterior_mean(ppca, ppca_fit):
    """q(z | x)'s mean against p(z | x)'s, M^-1 W^T (x - mu) with M = W^T W + s^2 I at the
    fitted parameters: correlation above 0.99 per coordinate (the issue asks 0.95;
    measured 0.9997 or more)."""
    _, _, _, test = ppca
    params = _point_estimates(ppca_fit)
    loadings, mean, noise = params["loadings"], params["mean"], params["noise"][0]
    precision = loadings.T @ loadings + noise**2 * np.eye(LATENT_DIM)
    exact_mean = (test - mean) @ loadings @ np.linalg.inv(precision).T
    loc = np.asarray(ppca_fit.encode(test)["z"].mean)
    for coordinate in range(LATENT_DIM):
        assert np.corrcoef(loc[:, coordinate], exact_mean[:, coordinate])[0, 1] > 0.99


# -- a sigmoid belief network: binary latents, exact log p(x) by enumeration -------------
STATES = np.array(list(itertools.product([0.0, 1.0], repeat=3)))


def _exact_log_marginal(conditional, x, prior_probs=0.5):
    """log p(x) = log sum over the 8 states z of p(z) p(x | z)."""
    log_prior = dist.Bernoulli(probs=prior_probs).log_prob(STATES).sum(-1)
    log_likelihood = np.asarray(conditional(STATES).log_prob(x[:, None, :]))
    return np.asarray(logsumexp(log_likelihood + log_prior, axis=1))


@pytest.fixture(scope="module")
def belief_network():
    """2,000 training and 500 held-out binary vectors from 3 binary causes:
    x_d ~ Bernoulli(logits = W_d z + b_d) with strong weights, so p(z | x) is peaked but
    not a point mass."""
    rng = np.random.default_rng(3)
    weights, bias = rng.choice([-3.0, 3.0], size=(3, OBS_DIM)), rng.normal(size=OBS_DIM)

    def conditional(z):
        return dist.Bernoulli(logits=(z - 0.5) @ weights + bias).to_event(1)

    z = rng.integers(0, 2, size=(2500, 3)).astype(float)
    x = np.asarray(conditional(z).sample(jax.random.PRNGKey(2)))
    return conditional, x[:2000], x[2000:]


@pytest.mark.parametrize(
    "method, options",
    [
        pytest.param("rws", dict(num_particles=5), marks=pytest.mark.slow),
        pytest.param("wake-sleep", {}, marks=pytest.mark.slow),
    ],
)
def test_binary_latents_reach_the_true_models_likelihood(belief_network, method, options):
    """Binary causes need no relaxation under (reweighted) wake-sleep. The fitted model's
    exact held-out log p(x) (enumeration, with the fitted decoder) comes within 0.1 nats
    per point of the true model's (measured: rws 0.021, wake-sleep 0.024), and the
    importance-sampled estimate (K = 1000) matches the enumeration at the fitted decoder
    to 0.02 nats (measured 4e-4 or less): the encoder proposes the right states."""
    conditional, train, test = belief_network
    model = NonlinearLVM(hz.priors.Bernoulli(3), OBS_DIM, likelihood="bernoulli", hidden=(16,))
    fit = hz.fit(model, train, method=method, key=0, num_steps=2000, **QUICK, **options)
    decoder = model.decoder(fit.posterior.model_params["decoder"])

    def fitted(z):
        return dist.Bernoulli(logits=jax.vmap(decoder)(z)).to_event(1)

    at_fitted = _exact_log_marginal(fitted, test).mean()
    assert at_fitted > _exact_log_marginal(conditional, test).mean() - 0.1
    assert abs(float(fit.log_marginal(test, num_particles=1000, key=1).mean()) - at_fitted) < 0.02


# -- the training loop's contract ---------------------------------------------------------


def test_resume_continues_from_the_saved_parameters(ppca, tmp_path):
    """A resumed fit starts where the saved one stopped (its first losses are near the
    saved fit's last, far below a fresh start's), and keeps the history."""
    model, _, train, _ = ppca
    options = dict(method="rws", num_steps=500, **QUICK)
    first = hz.load(hz.fit(model, train, key=0, **options).save(tmp_path / "first.hz"))
    resumed = hz.fit(model, train, key=1, resume=first, **options)
    fresh = hz.fit(model, train, key=1, **options)
    loss = resumed.history["loss"]
    assert len(loss) == 1000 and np.array_equal(loss[:500], first.history["loss"])
    assert abs(loss[500:520].mean() - loss[480:500].mean()) < 0.1 * abs(
        fresh.history["loss"][:20].mean() - loss[480:500].mean()
    )
    with pytest.raises(ValueError, match="resume takes a rws Fit of the same model"):
        hz.fit(model, train, key=1, resume=first, **{**options, "encoder_hidden": (16,)})


def test_saved_fit_loads_back_identical(ppca, tmp_path):
    model, _, train, _ = ppca
    fit = hz.fit(model, train, method="wake-sleep", key=0, num_steps=500, **QUICK)
    loaded = hz.load(fit.save(tmp_path / "ws.hz"))
    assert loaded.method == "wake-sleep" and loaded.model == model
    x = train[:20]
    np.testing.assert_array_equal(fit.encode(x)["z"].mean, loaded.encode(x)["z"].mean)
    np.testing.assert_array_equal(
        fit.log_marginal(x, num_particles=10, key=2), loaded.log_marginal(x, num_particles=10, key=2)
    )
    np.testing.assert_array_equal(fit.history["loss"], loaded.history["loss"])


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("rws", dict(num_particles=1), "num_particles must be an integer >= 2"),
        ("rws", dict(phi_update="dream"), "phi_update must be one of"),
        ("wake-sleep", dict(num_dreams=0), "num_dreams must be a positive integer"),
        ("wake-sleep", dict(batch_size=-3), "batch_size must be a positive integer"),
        ("wake-sleep", dict(check_every=0), "num_steps and check_every must be positive integers"),
    ],
)
def test_bad_options_are_refused(ppca, method, options, message):
    model, _, train, _ = ppca
    with pytest.raises(ValueError, match=message):
        hz.fit(model, train[:5], method=method, **options)


# -- two stochastic layers, and early stopping on held-out data ---------------------------


@pytest.mark.slow
def test_two_layer_model_reaches_the_true_linear_gaussian_likelihood():
    """Data from a linear-Gaussian chain z (1-d) -> h (3-d) -> x (8-d), whose marginal is
    exactly Normal(0, C A A^T C^T + C S_h C^T + s_x^2 I). A HierarchicalLVM fitted by rws
    (both layers encoded) reaches a held-out importance-sampled log p(x) (K = 1000, a
    lower bound in expectation) within 0.15 nats per point of the true model's exact
    value (measured: 0.031 below). The middle layer is needed: x varies along four
    directions beyond its noise, and a one-layer NonlinearLVM with the same 1-d z, fitted
    the same way, falls 3.8 nats short."""
    rng = np.random.default_rng(5)
    top, read_out = rng.normal(size=(3, 1)), rng.normal(size=(OBS_DIM, 3))
    middle_sd, noise_sd = 0.7, 0.3
    covariance = read_out @ (top @ top.T + middle_sd**2 * np.eye(3)) @ read_out.T + noise_sd**2 * np.eye(OBS_DIM)
    x = rng.multivariate_normal(np.zeros(OBS_DIM), covariance, size=1500)
    train, test = x[:1200], x[1200:]
    exact = float(dist.MultivariateNormal(np.zeros(OBS_DIM), covariance).log_prob(test).mean())
    model = hz.models.HierarchicalLVM(hz.priors.Gaussian(1), OBS_DIM, middle_dim=3, hidden=(16,), top_hidden=(16,))
    fit = hz.fit(model, train, method="rws", key=0, num_steps=2000, **QUICK)
    assert set(fit.encode(test[:3])) == {"z", "h"}
    estimated = float(fit.log_marginal(test, num_particles=1000, key=1).mean())
    assert estimated > exact - 0.15


def test_validation_keeps_the_parameters_with_the_best_held_out_bound(ppca):
    """With ``validation``, the Fit's parameters are those of the chunk with the lowest
    held-out loss: recomputing that loss at the returned parameters gives the minimum of
    ``history["held_out"]``, not its last entry."""
    from helmholtz.inference.amortised import held_out_loss

    model, _, train, test = ppca
    fit = hz.fit(model, train[:100], method="vae", key=0, num_steps=2000, check_every=100, validation=test, **QUICK)
    held_out = fit.history["held_out"]
    assert len(held_out) == 20 and np.argmin(held_out) < 19  # 100 points overfit: the best chunk is not the last
    at_returned = float(held_out_loss(fit.posterior.amortisation, model, test)(fit.posterior.params))
    assert at_returned == pytest.approx(held_out.min(), rel=1e-6)
    assert fit.diagnostics["kept_step"] == 100 * (1 + int(np.argmin(held_out)))
