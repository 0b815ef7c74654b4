"""Ion-channel kinetics of the single-compartment Hodgkin-Huxley models, as pure functions.

Units throughout: membrane potential in mV, time in ms, conductances in mS/cm^2, currents
in uA/cm^2, capacitance 1 uF/cm^2.

Each channel set (a :class:`ChannelSet`) is four things: its ``defaults`` (every constant
the equations use), ``initial_gates(v, params)`` (the gates at steady state at ``v``),
``prepare(params, dt)`` (the per-simulation constants of one time step, computed once
before the time loop) and ``step(v, gates, drive, constants)``, one exponential-Euler step:
the membrane equation is linear in V once the gates are frozen and each gate's equation is
linear in the gate once V is frozen, so V is advanced first with the gates of the start of
the step, then each gate with the new V, each by its exact exponential solution over
``dt`` (the scheme of NEURON's ``cnexp`` for the gates, and the one the sbi tutorial and
Goncalves et al. 2020 use).

The arithmetic is arranged for speed, which is what makes batches of 10^4 simulations of
10^5 steps practical (measured in ``benchmarks/hh_throughput.py``):

* the rate functions of a set share their exponentials: the classic set needs two per step
  (exp(-(v+65)/80) and exp(-(v+65)/18); its other four are integer powers of the first),
  the cortical set two (exp(-u/40) and exp(-u/18) with u = V - V_T; the other four are
  powers of the first, the M-current's times a per-simulation constant), instead of six
  and seven: with the four gate decays and the membrane's, 6 and 7 exponentials a step;
* constants of a simulation (q10, g_leak E_leak, dt / tau_max, ...) are computed once in
  ``prepare`` rather than in every step;
* a gate is updated as ``g_inf + (g - g_inf) exp(-dt (alpha + beta))``.

Powers of one exponential carry its rounding error times the power (at most 10 here):
about 1e-6 relative in float32, far below the scheme's own error per step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp


class ChannelSet(NamedTuple):
    defaults: dict
    initial_gates: Callable
    prepare: Callable
    step: Callable


def _x_over_expm1(x, exp_x):
    """x / (exp(x) - 1), given exp(x) computed elsewhere (NEURON's ``vtrap``).

    Near x = 0 the quotient cancels, so there it is the series 1 - x/2 + x^2/12 (error
    x^4/720). The switch point balances the two errors for the precision: 0.1 in float32
    (both errors below 5e-7 relative), 3e-3 in float64 (below 3e-13)."""
    switch = 0.1 if jnp.dtype(x.dtype).itemsize <= 4 else 3e-3
    small = jnp.abs(x) < switch
    series = 1.0 + x * (x * (1.0 / 12.0) - 0.5)
    return jnp.where(small, series, x / jnp.where(small, 1.0, exp_x - 1.0))


def _relax(gate, alpha, beta, dt, scale=1.0):
    """Exact update of dg/dt = scale (alpha (1 - g) - beta g) over dt with alpha, beta frozen."""
    rate = alpha + beta
    steady = alpha / rate
    return steady + (gate - steady) * jnp.exp((-dt * scale) * rate)


def _membrane(v, conductance, reversal_current, drive, dt):
    """Exact update of C dV/dt = sum g_i (E_i - V) + I over dt with the g_i frozen (C = 1)."""
    v_inf = (reversal_current + drive) / conductance
    return v_inf + (v - v_inf) * jnp.exp(-dt * conductance)


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


def _classic_rates(v):
    """alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n of NEURON's hh.mod at 6.3 C."""
    # a = exp(-(v + 65) / 80) gives beta_n, a^4 alpha_h, and a^8 = exp(-(v + 65) / 10) the
    # exponentials of alpha_m (shifted by 25 mV), beta_h (by 30) and alpha_n (by 10).
    a = jnp.exp((v + 65.0) * (-1.0 / 80.0))
    a2 = a * a
    a4 = a2 * a2
    a8 = a4 * a4
    alpha_m = _x_over_expm1(-(v + 40.0) * 0.1, a8 * math.exp(2.5))
    beta_m = 4.0 * jnp.exp((v + 65.0) * (-1.0 / 18.0))
    alpha_h = 0.07 * a4
    beta_h = 1.0 / (a8 * math.exp(3.0) + 1.0)
    alpha_n = 0.1 * _x_over_expm1(-(v + 55.0) * 0.1, a8 * math.exp(1.0))
    beta_n = 0.125 * a
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


def classic_initial_gates(v, params):
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = _classic_rates(v)
    return (alpha_m / (alpha_m + beta_m), alpha_h / (alpha_h + beta_h), alpha_n / (alpha_n + beta_n))


def classic_prepare(params, dt):
    return {
        "dt": dt,
        "q10": 3.0 ** ((params["celsius"] - 6.3) / 10.0),
        "g_Na": params["g_Na"],
        "g_K": params["g_K"],
        "g_leak": params["g_leak"],
        "E_Na": params["E_Na"],
        "E_K": params["E_K"],
        "leak_current": params["g_leak"] * params["E_leak"],
    }


def classic_step(v, gates, drive, c):
    m, h, n = gates
    g_na = c["g_Na"] * (m * m * m * h)
    n2 = n * n
    g_k = c["g_K"] * (n2 * n2)
    conductance = g_na + g_k + c["g_leak"]
    reversal_current = g_na * c["E_Na"] + g_k * c["E_K"] + c["leak_current"]
    v = _membrane(v, conductance, reversal_current, drive, c["dt"])
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n = _classic_rates(v)
    dt, q10 = c["dt"], c["q10"]
    return v, (
        _relax(m, alpha_m, beta_m, dt, q10),
        _relax(h, alpha_h, beta_h, dt, q10),
        _relax(n, alpha_n, beta_n, dt, q10),
    )


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


def _cortical_rates(v, v_t, m_scale):
    """alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n and w = exp(-(v + 35) / 20), given
    ``m_scale`` = exp(-(V_T + 35) / 20)."""
    u = v - v_t
    # a = exp(-u / 40) gives beta_n, a^2 (times m_scale) the M-current's w, a^8 =
    # exp(-u / 5) the exponentials of beta_m, beta_h (shifted by 40 mV) and alpha_n (by 15),
    # and a^10 = exp(-u / 4) that of alpha_m (shifted by 13 mV).
    a = jnp.exp(u * (-1.0 / 40.0))
    a2 = a * a
    a8 = (a2 * a2) * (a2 * a2)
    e40 = a8 * math.exp(8.0)  # exp(-(u - 40) / 5)
    alpha_m = 1.28 * _x_over_expm1((13.0 - u) * 0.25, a8 * a2 * math.exp(3.25))
    # beta_m = 0.28 y / (exp(y / 5) - 1) with y = u - 40, = 0.28 * 5 * e40 * x / (exp(x) - 1), x = -y / 5
    beta_m = 1.4 * e40 * _x_over_expm1((40.0 - u) * 0.2, e40)
    alpha_h = (0.128 * math.exp(17.0 / 18.0)) * jnp.exp(u * (-1.0 / 18.0))
    beta_h = 4.0 / (1.0 + e40)
    alpha_n = 0.16 * _x_over_expm1((15.0 - u) * 0.2, e40 * math.exp(-5.0))
    beta_n = (0.5 * math.exp(0.25)) * a
    w = a2 * m_scale
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n, w


def cortical_initial_gates(v, params):
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n, w = _cortical_rates(
        v, params["V_T"], jnp.exp(-(params["V_T"] + 35.0) / 20.0)
    )
    p_inf = 1.0 / (1.0 + w * w)
    return (alpha_m / (alpha_m + beta_m), alpha_h / (alpha_h + beta_h), alpha_n / (alpha_n + beta_n), p_inf)


def cortical_prepare(params, dt):
    return {
        "dt": dt,
        "g_Na": params["g_Na"],
        "g_K": params["g_K"],
        "g_M": params["g_M"],
        "g_leak": params["g_leak"],
        "E_Na": params["E_Na"],
        "E_K": params["E_K"],
        "V_T": params["V_T"],
        "leak_current": params["g_leak"] * params["E_leak"],
        "m_scale": jnp.exp(-(params["V_T"] + 35.0) / 20.0),
        "dt_over_tau_max": dt / params["tau_max"],
    }


def cortical_step(v, gates, drive, c):
    m, h, n, p = gates
    g_na = c["g_Na"] * (m * m * m * h)
    n2 = n * n
    g_k = c["g_K"] * (n2 * n2) + c["g_M"] * p
    conductance = g_na + g_k + c["g_leak"]
    reversal_current = g_na * c["E_Na"] + g_k * c["E_K"] + c["leak_current"]
    v = _membrane(v, conductance, reversal_current, drive, c["dt"])
    alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n, w = _cortical_rates(v, c["V_T"], c["m_scale"])
    dt = c["dt"]
    # M-current: p_inf = 1 / (1 + w^2), tau_p = tau_max / (3.3 / w + w).
    p_inf = 1.0 / (1.0 + w * w)
    decay_p = jnp.exp(-c["dt_over_tau_max"] * (3.3 / w + w))
    gates = (
        _relax(m, alpha_m, beta_m, dt),
        _relax(h, alpha_h, beta_h, dt),
        _relax(n, alpha_n, beta_n, dt),
        p_inf + (p - p_inf) * decay_p,
    )
    return v, gates


CHANNEL_SETS = {
    "classic": ChannelSet(CLASSIC_DEFAULTS, classic_initial_gates, classic_prepare, classic_step),
    "cortical": ChannelSet(CORTICAL_DEFAULTS, cortical_initial_gates, cortical_prepare, cortical_step),
}
