"""The Wilson-Cowan simulator against checks that do not share its integrator.

Ground truths: Diffrax's adaptive Tsit5 solution of the same ODE in float64 (error about
1e-8, far below the Euler scan's); the fixed-point equations and their Jacobian, written
out again here from Wilson & Cowan's formulas in NumPy; Wilson & Cowan's limit cycle at
P = 1.25 with their constants; and the base protocol's seeding (simulation i uses the
i-th split key).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from helmholtz.models.simulators import WilsonCowan

CLASSIC = dict(w_EE=16.0, w_EI=12.0, w_IE=15.0, w_II=3.0, Q=0.0, tau_E=10.0, tau_I=10.0)
A_E, THETA_E, A_I, THETA_I = 1.3, 4.0, 2.0, 3.7


def _theta(model, **values):
    """The parameter vector of ``model`` with the classic constants, overridden by ``values``."""
    named = dict(CLASSIC, P=1.25, sigma=0.0) | values
    return jnp.asarray([named[name] for name in model.parameter_names], jnp.float32)


def _simulate(model, thetas):
    """Noise-free (or seed-0) simulations ``(k, num_records, 2)``, through the base's
    compiled batch function (one compilation per model)."""
    return model.simulate_batch(0, np.stack([np.asarray(t) for t in thetas]))


def _features(model, x):
    return [dict(zip(model.feature_names, row)) for row in np.asarray(jax.jit(model.summarize)(jnp.asarray(x)))]


def _logistic(u, a, threshold):
    return 1 / (1 + np.exp(-a * (u - threshold))) - 1 / (1 + np.exp(a * threshold))


def _rates_of_change(state, P):
    """tau d(E, I)/dt of Wilson & Cowan (1972), r = 1, k = S(inf), written independently."""
    E, I = state
    k_E, k_I = 1 - 1 / (1 + np.exp(A_E * THETA_E)), 1 - 1 / (1 + np.exp(A_I * THETA_I))
    c = CLASSIC
    return np.array(
        [
            -E + (k_E - E) * _logistic(c["w_EE"] * E - c["w_EI"] * I + P, A_E, THETA_E),
            -I + (k_I - I) * _logistic(c["w_IE"] * E - c["w_II"] * I + c["Q"], A_I, THETA_I),
        ]
    )


def _jacobian_eigenvalues(state, P, step=1e-6):
    columns = [(_rates_of_change(state + d, P) - _rates_of_change(state - d, P)) / (2 * step) for d in np.eye(2) * step]
    return np.linalg.eigvals(np.stack(columns, axis=1))


def test_euler_scan_converges_to_the_diffrax_solution():
    """With sigma = 0 the Euler scan approximates the ODE with a global error of order dt.
    Starting from (0.1, 0.05), the approach to the low fixed point (P = 0.5) is within
    1e-3 of Diffrax at dt = 0.1 ms (dt / tau = 0.01; the error is 1.3e-4). On the limit
    cycle (P = 1.25) the error is a phase lag that grows cycle by cycle (0.05 after the
    first 100 ms, two cycles), so there, and at the fixed point too, the check is the
    order itself: halving dt halves the error (ratio within [1.7, 2.3]; it is 2.0 and
    2.06). Diffrax at rtol 1e-8 in float64 is about 1e-8 from the true solution, float32
    roundoff in the scan about 1e-6: both far below the Euler errors compared."""
    drives = (0.5, 1.25)
    # Records every 1 ms for both steps, so the traces line up with one exact solution.
    models = {dt: WilsonCowan(dt=dt, record_every=round(1.0 / dt), burn_in=0.0, duration=100.0) for dt in (0.1, 0.05)}
    reference = models[0.1]
    exact = {}
    with jax.enable_x64(True):
        for P in drives:
            theta = np.asarray(_theta(reference, P=P), np.float64)
            exact[P] = np.asarray(reference.solve_deterministic(theta, rtol=1e-8, atol=1e-10))
    errors = {}
    for dt, model in models.items():
        assert np.allclose(model.times, reference.times)
        euler = _simulate(model, [_theta(model, P=P) for P in drives]).astype(np.float64)
        for P, trace in zip(drives, euler):
            errors[P, dt] = np.abs(trace - exact[P]).max()
    assert errors[0.5, 0.1] < 1e-3, errors
    for P in (0.5, 1.25):
        assert 1.7 < errors[P, 0.1] / errors[P, 0.05] < 2.3, errors


def test_settled_state_is_a_stable_fixed_point():
    """Where the noise-free simulation settles (low drive P = 0.5 and high drive P = 4),
    the right-hand side of the equations vanishes (up to 1e-5: float32 Euler stops moving
    once dt / tau times the rate of change is below half a unit in the last place, about
    3e-8, i.e. at rates of change near 3e-6) and both Jacobian eigenvalues have negative
    real parts: a stable fixed point, computed independently of the simulator."""
    model = WilsonCowan(duration=300.0)
    drives = (0.5, 4.0)
    traces = _simulate(model, [_theta(model, P=P) for P in drives]).astype(np.float64)
    for P, trace in zip(drives, traces):
        settled = trace[-1]
        assert np.abs(_rates_of_change(settled, P)).max() < 1e-5, (P, settled)
        assert (_jacobian_eigenvalues(settled, P).real < 0).all(), (P, settled)


def test_limit_cycle_at_wilson_cowan_drive_and_none_at_a_fixed_point():
    """At P = 1.25 (Wilson & Cowan's limit cycle) the one fixed point is unstable (Jacobian
    eigenvalues with positive real parts, found independently), the activity cycles,
    and ``summarize`` finds it: a strong spectral peak (over 80% of the power within one
    bin) at the frequency of the Diffrax solution's period (within one 4 Hz bin). At P =
    0.5 the trace settles: no amplitude, no peak."""
    model = WilsonCowan()
    theta = _theta(model, P=1.25)
    x = _simulate(model, [theta, _theta(model, P=0.5)])
    features, quiet = _features(model, x)

    fixed_point = optimize.fsolve(_rates_of_change, x0=x[0].mean(0), args=(1.25,), xtol=1e-12)
    assert np.abs(_rates_of_change(fixed_point, 1.25)).max() < 1e-9
    assert (_jacobian_eigenvalues(fixed_point, 1.25).real > 0).all(), fixed_point

    E = np.asarray(model.solve_deterministic(theta))[:, 0]
    upward = np.flatnonzero((E[:-1] < E.mean()) & (E[1:] >= E.mean()))
    period_ms = np.diff(upward).mean() * model.sampling_interval
    resolution = 1000.0 / model.spectrum_segment
    assert features["std_E"] > 0.03
    assert features["relative_power_E"] > 0.8, features
    assert abs(features["frequency_E"] - 1000.0 / period_ms) <= resolution, (features, period_ms)

    assert quiet["std_E"] < 1e-4 and quiet["relative_power_E"] < 0.1, quiet
    assert all(np.isfinite(v) for v in quiet.values()), quiet


def test_batched_simulation_equals_one_by_one_with_the_split_keys():
    model = WilsonCowan(burn_in=10.0, duration=40.0, autocorrelation_lags=(5.0,), spectrum_segment=20.0)
    low, high = np.array([[p.low, p.high] for p in model.priors]).T
    theta = np.random.default_rng(1).uniform(low, high, (5, len(low))).astype(np.float32)
    theta[:, model.parameter_names.index("sigma")] = 0.01  # so that the keys matter
    key = jax.random.PRNGKey(7)
    batch = model.simulate_batch(key, theta, chunk_size=2)
    simulate_one = jax.jit(model.simulate_one)
    one_by_one = np.stack([simulate_one(k, jnp.asarray(t)) for k, t in zip(jax.random.split(key, 5), theta)])
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-5, atol=1e-6)
    assert not np.allclose(one_by_one[0], simulate_one(jax.random.PRNGKey(8), jnp.asarray(theta[0])))


def test_summaries_of_known_traces_and_of_blown_up_ones():
    """A 20 Hz sinusoid (amplitude 0.05 on 0.2) has its exact features: mean 0.2, sd
    0.05 / sqrt(2), the peak at 20 Hz holding nearly all the power, E's autocorrelation
    at lag L equal to cos(2 pi 20 L) (times (T - L) / T, the estimator's bias, up to an
    edge term), and zero
    correlation with I a quarter period behind. Traces with a NaN or inf give NaN
    features, not an error; a flat trace gives zeros, not 0 / 0."""
    model = WilsonCowan()
    t = model.times / 1000.0
    T = len(t)
    sinusoid = np.stack([0.2 + 0.05 * np.sin(2 * np.pi * 20 * t), 0.1 - 0.05 * np.cos(2 * np.pi * 20 * t)], -1)
    bad_nan, bad_inf = sinusoid.copy(), sinusoid.copy()
    bad_nan[30, 0] = np.nan
    bad_inf[5, 1] = np.inf
    flat = np.full_like(sinusoid, 0.2)
    rows = np.asarray(jax.jit(model.summarize)(jnp.asarray(np.stack([sinusoid, bad_nan, bad_inf, flat]), jnp.float32)))
    assert rows.shape == (4, len(model.feature_names))
    features = dict(zip(model.feature_names, rows[0]))
    assert abs(features["mean_E"] - 0.2) < 1e-5 and abs(features["std_E"] - 0.05 / np.sqrt(2)) < 1e-5
    assert features["frequency_E"] == pytest.approx(20.0)
    assert features["relative_power_E"] > 0.99
    assert abs(features["corr_EI"]) < 1e-3
    # The sum over T - L products also holds a partial period of cos(w (2t + L)), at most
    # 1 / (T sin w) after normalising, with w the phase step per record.
    phase_step = 2 * np.pi * 20 * model.sampling_interval / 1000.0
    for lag in model.autocorrelation_lags:
        expected = np.cos(2 * np.pi * 20 * lag / 1000.0) * (T - lag / model.sampling_interval) / T
        edge = 1 / (T * np.sin(phase_step))
        assert features[f"autocorr_E_{lag:g}ms"] == pytest.approx(expected, abs=edge), edge
    assert np.isnan(rows[1]).all() and np.isnan(rows[2]).all()
    assert np.isfinite(rows[3]).all()
    assert np.allclose(rows[3, [1, 3, 5, 6, 7, 8]], 0.0, atol=1e-4)


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="priors must name distinct parameters"):
        WilsonCowan(priors=(WilsonCowan().priors[0],) * 2)
    with pytest.raises(ValueError, match="multiple of the recording interval"):
        WilsonCowan(duration=100.05)
    with pytest.raises(ValueError, match=r"theta must have shape \(num_simulations, 6\)"):
        WilsonCowan().simulate_batch(0, np.zeros((3, 5)))
