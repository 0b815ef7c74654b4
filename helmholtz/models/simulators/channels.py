"""Ion-channel kinetics of the single-compartment Hodgkin-Huxley models, as pure functions.

Units throughout: membrane potential in mV, time in ms, conductances in mS/cm^2, currents
in uA/cm^2, capacitance 1 uF/cm^2.

Each channel set is a pair of functions: ``initial_gates(v, params)`` (the gates at steady
state) and ``step(v, gates, drive, params, dt)``, one exponential-Euler step: the membrane
equation is linear in V and each gate's equation is linear in the gate once the others are
frozen, so each is advanced by its exact exponential solution over ``dt`` (the scheme of
NEURON's ``cnexp``, and the one the sbi tutorial and Goncalves et al. 2020 use).

The arithmetic is arranged for speed, which is what makes batches of 10^4 simulations of
10^5 steps practical: the rate functions of each set share their exponentials (the classic
set needs four per step instead of eight, the cortical set five instead of nine), and the
gate update is written as ``g * e + g_inf * (1 - e)`` with no extra divisions.
"""

from __future__ import annotations

import jax.numpy as jnp


def _x_over_expm1(x, exp_x):
    """x / (exp(x) - 1), given exp(x) computed elsewhere; its limit 1 - x/2 near 0."""
    small = jnp.abs(x) < 1e-4
    return jnp.where(small, 1.0 - 0.5 * x, x / jnp.where(small, 1.0, exp_x - 1.0))


def _relax(gate, alpha, beta, dt):
    """Exact update of dg/dt = alpha (1 - g) - beta g over dt with alpha, beta frozen."""
    rate = alpha + beta
    decay = jnp.exp(-dt * rate)
    return gate * decay + (alpha / rate) * (1.0 - decay)


def _membrane(v, conductance, reversal_current, drive, dt, capacitance=1.0):
    """Exact update of C dV/dt = sum g_i (E_i - V) + I over dt with the g_i frozen."""
    v_inf = (reversal_current + drive) / conductance
    return v_inf + (v - v_inf) * jnp.exp(-dt * conductance / capacitance)


# -- classic squid axon (NEURON's hh mechanism) -------------------------------------------
CLASSIC_DEFAULTS = {
    "g_Na": 120.0,
    "g_K": 36.0,
    "g_leak": 0.3,
    "E_Na": 50.0,
    "E_K": -77.0,
    "E_leak": -54.3,
    "celsius": 6.3,
}


def _classic_rates(v, params):
    q10 = 3.0 ** ((params["celsius"] - 6.3) / 10.0)
    # One exponential of (v + 40) / 10 serves alpha_m, alpha_n (shifted by 15 mV) and
    # beta_h (shifted by 5 mV); the other three rates have one each.
    e40 = jnp.exp(-(v + 40.0) / 10.0)
    alpha_m = _x_over_expm1(-(v + 40.0) / 10.0, e40)
    beta_m = 4.0 * jnp.exp(-(v + 65.0) / 18.0)
    alpha_h = 0.07 * jnp.exp(-(v + 65.0) / 20.0)
    beta_h = 1.0 / (e40 * jnp.exp(0.5) + 1.0)
    alpha_n = 0.1 * _x_over_expm1(-(v + 55.0) / 10.0, e40 * jnp.exp(-1.5))
    beta_n = 0.125 * jnp.exp(-(v + 65.0) / 80.0)
    return q10 * alpha_m, q10 * beta_m, q10 * alpha_h, q10 * beta_h, q10 * alpha_n, q10 * beta_n


def classic_initial_gates(v, params):
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = _classic_rates(v, params)
    return (alpha_m / (alpha_m + beta_m), alpha_h / (alpha_h + beta_h), alpha_n / (alpha_n + beta_n))


def classic_step(v, gates, drive, params, dt):
    m, h, n = gates
    g_na = params["g_Na"] * m * m * m * h
    n2 = n * n
    g_k = params["g_K"] * n2 * n2
    conductance = g_na + g_k + params["g_leak"]
    reversal_current = g_na * params["E_Na"] + g_k * params["E_K"] + params["g_leak"] * params["E_leak"]
    v = _membrane(v, conductance, reversal_current, drive, dt)
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = _classic_rates(v, params)
    return v, (_relax(m, alpha_m, beta_m, dt), _relax(h, alpha_h, beta_h, dt), _relax(n, alpha_n, beta_n, dt))


# -- cortical neuron (Pospischil et al. 2008; Goncalves et al. 2020) -------------------------
CORTICAL_DEFAULTS = {
    "g_Na": 20.0,
    "g_K": 15.0,
    "g_leak": 0.1,
    "g_M": 0.07,
    "tau_max": 600.0,
    "V_T": -60.0,
    "noise": 0.1,
    "E_leak": -70.0,
    "E_Na": 53.0,
    "E_K": -107.0,
}


def _cortical_rates(v, params):
    u = v - params["V_T"]
    # exp(-(u - 40) / 5) serves beta_m (as its reciprocal), beta_h and alpha_n (shifted by
    # 25 mV); exp(-(v + 35) / 20) serves both the M-current's steady state and time constant.
    e40 = jnp.exp(-(u - 40.0) / 5.0)
    e13 = jnp.exp(-(u - 13.0) / 4.0)
    alpha_m = 0.32 * 4.0 * _x_over_expm1(-(u - 13.0) / 4.0, e13)
    beta_m = 0.28 * 5.0 * _x_over_expm1((u - 40.0) / 5.0, 1.0 / e40)
    alpha_h = 0.128 * jnp.exp(-(u - 17.0) / 18.0)
    beta_h = 4.0 / (1.0 + e40)
    alpha_n = 0.032 * 5.0 * _x_over_expm1(-(u - 15.0) / 5.0, e40 * jnp.exp(-5.0))
    beta_n = 0.5 * jnp.exp(-(u - 10.0) / 40.0)
    w = jnp.exp(-(v + 35.0) / 20.0)
    p_inf = 1.0 / (1.0 + w * w)
    tau_p = params["tau_max"] / (3.3 / w + w)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n, p_inf, tau_p


def cortical_initial_gates(v, params):
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n, p_inf, _ = _cortical_rates(v, params)
    return (alpha_m / (alpha_m + beta_m), alpha_h / (alpha_h + beta_h), alpha_n / (alpha_n + beta_n), p_inf)


def cortical_step(v, gates, drive, params, dt):
    m, h, n, p = gates
    g_na = params["g_Na"] * m * m * m * h
    n2 = n * n
    g_k = params["g_K"] * n2 * n2 + params["g_M"] * p
    conductance = g_na + g_k + params["g_leak"]
    reversal_current = g_na * params["E_Na"] + g_k * params["E_K"] + params["g_leak"] * params["E_leak"]
    v = _membrane(v, conductance, reversal_current, drive, dt)
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n, p_inf, tau_p = _cortical_rates(v, params)
    decay_p = jnp.exp(-dt / tau_p)
    gates = (
        _relax(m, alpha_m, beta_m, dt),
        _relax(h, alpha_h, beta_h, dt),
        _relax(n, alpha_n, beta_n, dt),
        p * decay_p + p_inf * (1.0 - decay_p),
    )
    return v, gates


CHANNEL_SETS = {
    "classic": (CLASSIC_DEFAULTS, classic_initial_gates, classic_step),
    "cortical": (CORTICAL_DEFAULTS, cortical_initial_gates, cortical_step),
}
