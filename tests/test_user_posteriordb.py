"""Three posteriordb posteriors outside the zoo, declared only through the public path
(a NumPyro function wrapped by :class:`helmholtz.models.Program`), checked against Stan's
reference draws (``shared/reference/posteriordb``, math in its README).

Bounds: C2ST (the sbibm definition) at most 0.55 and every |mean error| under 0.1
reference sd. The default suite scores 2,000 NUTS draws against 2,000 reference draws
(C2ST's standard error under the null about sqrt(0.25 / 4000) = 0.008, so 0.55 is six
above chance), except gp_pois_regr: the classifier on its 13 dimensions takes about a
minute at 2,000 + 2,000 on two busy cores, so the default suite scores it on 1,000 + 1,000
(se 0.011) and the slow suite on 10,000 + 10,000 like the others. 2,000 NUTS draws give
a Monte Carlo error of the means of about 1 / sqrt(ESS) = 0.03 reference sd, except for
the pharmacokinetic model's K_m and V_m: along the ridge where elimination is linear their
density falls off like a power (K_m^-3), so the tail draws dominate the mean. The
reference's own chains of 1,000 draws differ in the mean of K_m by up to 0.065 sd, and
ours at 2,000 draws by 0.01 to 0.10 over six seeds: the bound is tight for that model in
the default suite (key 0: 0.013), with room at 10,000 draws (0.044).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import integrate
from threadpoolctl import threadpool_limits

import helmholtz as hz
from helmholtz.models.posteriordb import read_data, read_draws


# -- the three models, as a user writes them --------------------------------------------
@hz.serializable
def kidscore_momiq(mom_iq, kid_score=None):
    """kid_score_n ~ N(beta_1 + beta_2 mom_iq_n, sigma); flat beta, sigma ~ HalfCauchy(2.5)."""
    beta = numpyro.sample("beta", dist.ImproperUniform(dist.constraints.real_vector, (), (2,)))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(2.5))
    with numpyro.plate("data", len(mom_iq)):
        numpyro.sample("kid_score", dist.Normal(beta[0] + beta[1] * mom_iq, sigma), obs=kid_score)


@hz.serializable
def gp_pois_regr(x, k=None):
    """k_n ~ Poisson(exp f_n), f = L f_tilde, L L^T = alpha^2 exp(-(x_n - x_m)^2 / (2 rho^2)) + 1e-10 I."""
    rho = numpyro.sample("rho", dist.Gamma(25.0, 4.0))
    alpha = numpyro.sample("alpha", dist.HalfNormal(2.0))
    f_tilde = numpyro.sample("f_tilde", dist.Normal(0.0, 1.0).expand([len(x)]).to_event(1))
    kernel = alpha**2 * jnp.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * rho**2)) + 1e-10 * jnp.eye(len(x))
    f = numpyro.deterministic("f", jnp.linalg.cholesky(kernel) @ f_tilde)
    numpyro.sample("k", dist.Poisson(jnp.exp(f)).to_event(1), obs=k)


def concentration(k_a, K_m, V_m, dose, volume, times, substeps=4):
    """C(t) at ``times`` of dC/dt = exp(-k_a t) D k_a / V - (V_m / V) C / (K_m + C), C(0) = 0:
    classical Runge-Kutta, ``substeps`` equal steps between consecutive times."""

    def rate(t, c):
        return jnp.exp(-k_a * t) * dose * k_a / volume - (V_m / volume) * c / (K_m + c)

    def interval(c, edges):
        start, end = edges
        h = (end - start) / substeps

        def step(c, i):
            t = start + i * h
            k1 = rate(t, c)
            k2 = rate(t + h / 2, c + h / 2 * k1)
            k3 = rate(t + h / 2, c + h / 2 * k2)
            return c + h / 6 * (k1 + 2 * k2 + 2 * k3 + rate(t + h, c + h * k3)), None

        c = jax.lax.scan(step, c, jnp.arange(substeps))[0]
        return c, c

    edges = jnp.concatenate([jnp.zeros(1), jnp.asarray(times, dtype=float)])
    return jax.lax.scan(interval, jnp.zeros(()), (edges[:-1], edges[1:]))[1]


@hz.serializable
def one_comp_mm_elim_abs(times, dose, volume, C_hat=None):
    """C_hat_n ~ LogNormal(log C(t_n), sigma); k_a, K_m, V_m, sigma ~ HalfCauchy(1)."""
    k_a = numpyro.sample("k_a", dist.HalfCauchy(1.0))
    K_m = numpyro.sample("K_m", dist.HalfCauchy(1.0))
    V_m = numpyro.sample("V_m", dist.HalfCauchy(1.0))
    sigma = numpyro.sample("sigma", dist.HalfCauchy(1.0))
    c = concentration(k_a, K_m, V_m, dose, volume, times)
    numpyro.sample("C_hat", dist.LogNormal(jnp.log(c), sigma).to_event(1), obs=C_hat)


def declare(name):
    """(model, observations, NUTS options, 64-bit) of each posterior."""
    if name == "kidiq-kidscore_momiq":
        data = read_data("kidiq")
        model = hz.models.Program(kidscore_momiq, observed="kid_score", data={"mom_iq": data["mom_iq"]})
        # beta_1 and beta_2 correlate at -0.99 (mom_iq is not centred): a dense mass matrix.
        return model, data["kid_score"], dict(dense_mass=True), False
    if name == "gp_pois_regr-gp_pois_regr":
        data = read_data("gp_pois_regr")
        model = hz.models.Program(gp_pois_regr, observed="k", data={"x": data["x"].astype(float)})
        # The kernel's smallest eigenvalue is about 1e-8 of its largest at the posterior's
        # length scales: float32's Cholesky gives NaN there, so this one runs in float64.
        return model, data["k"], dict(target_accept_prob=0.9), True
    data = read_data("one_comp_mm_elim_abs")
    model = hz.models.Program(
        one_comp_mm_elim_abs,
        observed="C_hat",
        data={"times": data["times"], "dose": float(data["D"]), "volume": float(data["V"])},
    )
    # K_m and V_m have long tails along the ridge where elimination is linear (K_m >> C):
    # a short warm-up or a lower target leaves chains stuck there (divergences).
    return model, data["C_hat"], dict(target_accept_prob=0.95), False


def check(name, num_chains, num_warmup, num_samples, num_c2st):
    model, y, options, x64 = declare(name)
    reference = read_draws(name)
    with jax.enable_x64(x64):
        fit = hz.fit(
            model,
            y,
            method="nuts",
            key=0,
            num_chains=num_chains,
            num_warmup=num_warmup,
            num_samples=num_samples,
            progress_bar=False,
            **options,
        )
        draws = fit.sample(1, num_chains * num_samples)
    sites = sorted(reference)
    _, ours = hz.diagnostics.flatten_draws(draws, sites)
    _, theirs = hz.diagnostics.flatten_draws(reference, sites)
    errors = {label: c["mean_error"] for label, c in hz.diagnostics.compare_to_reference(draws, reference).items()}
    # One BLAS thread: the classifier's small matrices run 3x faster than on two busy cores.
    with threadpool_limits(1):
        score = hz.diagnostics.c2st(ours, theirs, max_draws=num_c2st)
    return score, errors


DEFAULT_C2ST_DRAWS = {
    "kidiq-kidscore_momiq": 2000,
    "one_comp_mm_elim_abs-one_comp_mm_elim_abs": 2000,
    "gp_pois_regr-gp_pois_regr": 1000,
}


@pytest.mark.parametrize("name", sorted(DEFAULT_C2ST_DRAWS))
def test_nuts_on_a_declared_program_matches_the_reference(name):
    warmup = 1000 if name.startswith("one_comp") else 500
    score, errors = check(name, num_chains=2, num_warmup=warmup, num_samples=1000, num_c2st=DEFAULT_C2ST_DRAWS[name])
    assert score <= 0.55, f"C2ST {score:.3f}"
    assert max(abs(e) for e in errors.values()) < 0.1, errors


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DEFAULT_C2ST_DRAWS))
def test_nuts_on_a_declared_program_matches_the_reference_on_10000_draws(name):
    score, errors = check(name, num_chains=4, num_warmup=1000, num_samples=2500, num_c2st=10_000)
    assert score <= 0.55, f"C2ST {score:.3f}"
    assert max(abs(e) for e in errors.values()) < 0.1, errors


def test_the_runge_kutta_solution_matches_a_fine_solve():
    """The fixed-step solver against scipy's DOP853 at 1e-11, at reference draws including
    the 5 smallest and 5 largest K_m (down to 1e-4, where elimination switches on within
    1e-5 days): log C within 3e-3, against a measurement noise sigma of about 0.13."""
    data, draws = read_data("one_comp_mm_elim_abs"), read_draws("one_comp_mm_elim_abs-one_comp_mm_elim_abs")
    times, dose, volume = data["times"], float(data["D"]), float(data["V"])
    order = np.argsort(draws["K_m"])
    picked = np.r_[order[:5], order[-5:], np.random.default_rng(0).choice(len(order), 10, replace=False)]
    solve = jax.jit(lambda k_a, K_m, V_m: concentration(k_a, K_m, V_m, dose, volume, times))
    worst = 0.0
    for i in picked:
        k_a, K_m, V_m = draws["k_a"][i], draws["K_m"][i], draws["V_m"][i]
        exact = integrate.solve_ivp(
            lambda t, c, k_a=k_a, K_m=K_m, V_m=V_m: (
                np.exp(-k_a * t) * dose * k_a / volume - (V_m / volume) * c / (K_m + c)
            ),
            (0.0, times[-1]),
            [0.0],
            method="DOP853",
            t_eval=times,
            rtol=1e-11,
            atol=1e-12,
        ).y[0]
        ours = np.asarray(solve(k_a, K_m, V_m))
        worst = max(worst, float(np.abs(np.log(ours) - np.log(exact)).max()))
    assert worst < 3e-3, worst


def test_a_declared_program_saves_and_loads_with_its_data(tmp_path):
    model, y, _, _ = declare("kidiq-kidscore_momiq")
    assert not model.can_simulate  # the flat prior on beta has no sampler
    with pytest.raises(ValueError, match="improper"):
        model.sample_prior(0, 3)
    fit = hz.fit(
        model,
        y,
        method="nuts",
        key=0,
        num_chains=1,
        num_warmup=100,
        num_samples=100,
        dense_mass=True,
        progress_bar=False,
    )
    loaded = hz.load(fit.save(tmp_path / "kidiq.hz"))
    assert loaded.model == model
    np.testing.assert_array_equal(loaded.model.data["mom_iq"], model.data["mom_iq"])
    np.testing.assert_array_equal(loaded.sample(2, 50)["beta"], fit.sample(2, 50)["beta"])
