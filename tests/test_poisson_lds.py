"""The Poisson linear dynamical system (spike counts): its density written out by hand,
and the rates it recovers from simulated spikes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density
from scipy import stats

import helmholtz as hz
from helmholtz.models.markov import PoissonLinearDynamicalSystem


def test_poisson_lds_density_is_written_out_by_hand():
    """The program's log joint against scipy: the priors (A through its N(0, 1) deviation
    from 0.9 I in steps of 0.1), N(0, 1) innovations, the states
    built by a Python loop from z_1 = e_1, z_t = A z_t-1 + q e_t, and Poisson counts."""
    model = PoissonLinearDynamicalSystem(2, 3, state_noise=0.5)
    rng = np.random.default_rng(6)
    dynamics = np.array([[0.9, 0.1], [-0.1, 0.8]])
    params = {
        "dynamics_deviation": (dynamics - 0.9 * np.eye(2)) / 0.1,
        "emission_diagonal": np.array([0.7, 1.2]),
        "emission_lower": np.array([-0.4]),
        "emission_rest": np.array([[0.3, 0.5]]),
        "emission_bias": np.array([0.1, -0.5, 0.3]),
        "innovations": rng.normal(size=(6, 2)),
    }
    y = rng.poisson(2.0, size=(6, 3)).astype(float)
    C = np.array([[0.7, 0.0], [-0.4, 1.2], [0.3, 0.5]])
    states = [params["innovations"][0]]
    for innovation in params["innovations"][1:]:
        states.append(dynamics @ states[-1] + 0.5 * innovation)
    log_rates = np.array(states) @ C.T + params["emission_bias"]
    by_hand = (
        stats.norm(0, 1).logpdf(params["dynamics_deviation"]).sum()
        + stats.halfnorm(scale=1.0).logpdf(params["emission_diagonal"]).sum()
        + stats.norm(0, 1).logpdf(params["emission_lower"]).sum()
        + stats.norm(0, 1).logpdf(params["emission_rest"]).sum()
        + stats.norm(0, 2).logpdf(params["emission_bias"]).sum()
        + stats.norm(0, 1).logpdf(params["innovations"]).sum()
        + stats.poisson(np.exp(log_rates)).logpmf(y).sum()
    )
    with jax.enable_x64(True):
        ours, _ = log_density(model.program, (jnp.asarray(y),), {}, {k: jnp.asarray(v) for k, v in params.items()})
    assert float(ours) == pytest.approx(by_hand, abs=1e-8)


@pytest.mark.slow
def test_poisson_lds_recovers_the_rates_of_simulated_spikes():
    """20 neurons driven by a slow one-dimensional state over 200 bins: the posterior
    mean log-rates (SVI, mean-field guide) must track the true ones. Each neuron's count
    is a noisy read-out, but pooling 20 of them pins the state down: correlation > 0.9
    (an independent check of the pipeline, not of a closed form). About a minute."""
    model = PoissonLinearDynamicalSystem(1, 20, num_steps=200, state_noise=0.3, decay=0.95)
    rng = np.random.default_rng(7)
    truth = {
        "dynamics_matrix": jnp.array([[0.97]]),
        "emission_matrix": jnp.asarray(np.abs(rng.normal(0.6, 0.2, size=(20, 1)))),
        "emission_bias": jnp.full(20, 0.5),
    }
    states = model.states_from_innovations(truth["dynamics_matrix"], jnp.asarray(rng.normal(size=(200, 1))))
    log_rates = np.asarray(model.log_rates(truth, states))
    y = rng.poisson(np.exp(log_rates)).astype(float)
    fit = hz.fit(model, y, method="svi", guide="normal", key=0, num_steps=3000, learning_rate=0.02, progress_bar=False)
    draws = fit.sample(1, 200)
    estimated = np.asarray(jax.vmap(model.log_rates)(draws, draws["states"])).mean(0)
    assert np.corrcoef(estimated.ravel(), log_rates.ravel())[0, 1] > 0.9
