"""On a GPU the simulators give the CPU's results (skipped where JAX has no GPU).

Ground truth: the CPU path of the same process, itself checked against ``solve_ivp`` and
NEURON in ``test_hodgkin_huxley.py``. Same keys, same parameters and the same counter-based
noise on both, so what may differ is only the devices' floating-point functions (exp,
log1p, erfinv, fused multiply-adds): a wrong noise stream, a transposed batch or a lost
time step would differ by millivolts and whole spikes.
"""

import jax
import numpy as np
import pytest

from helmholtz.models.simulators import HodgkinHuxley, Uniform, step_current
from helmholtz.models.simulators.hodgkin_huxley import CORTICAL_PRIORS

pytestmark = pytest.mark.skipif(jax.default_backend() != "gpu", reason="JAX sees no GPU here")


def _both(simulate):
    return simulate(jax.devices()), simulate(jax.devices("cpu"))


def test_float64_traces_match_the_cpu():
    """Classic HH, float64, 64 draws of (g_Na, g_K) around a spiking regime, 50 ms at 0.01 ms.
    Tolerance 1e-6 mV: float64 functions differ by a few ulp (1e-16 relative); the spikes
    amplify that by far less than the 1e9 left between the two."""
    priors = (Uniform("g_Na", 60.0, 180.0), Uniform("g_K", 18.0, 54.0))
    theta = np.random.default_rng(0).uniform([60.0, 18.0], [180.0, 54.0], size=(64, 2))
    with jax.enable_x64(True):
        model = HodgkinHuxley.classic(precision="float64", priors=priors)
        gpu, cpu = _both(lambda devices: model.simulate_batch(0, theta, devices=devices))
    assert np.isfinite(gpu).all()
    assert np.abs(gpu - cpu).max() < 1e-6


def test_float32_noisy_summaries_match_the_cpu():
    """The cortical model with intrinsic noise, float32, 512 prior draws, 400 ms under a
    0.5 nA step. Near-threshold noisy traces can gain or lose one spike from one float32
    rounding, so spike counts must agree for at least 95% of the draws (a different noise
    stream agrees for about half) and the resting potential within 0.01 mV at the median."""
    current = step_current(3.25, duration=400.0, dt=0.02, stim_on=50.0, stim_off=350.0)
    model = HodgkinHuxley.cortical(current=current, dt=0.02, stim_on=50.0, stim_off=350.0)
    rng = np.random.default_rng(1)
    theta = np.stack([rng.uniform(p.low, p.high, 512) for p in CORTICAL_PRIORS], axis=1)
    gpu, cpu = _both(lambda devices: model.simulate_summaries(3, theta, chunk_size=512, devices=devices))
    names = list(model.feature_names)
    count, rest = names.index("spike_count"), names.index("rest_mean")
    agreement = np.mean(gpu[:, count] == cpu[:, count])
    rest_gap = np.median(np.abs(gpu[:, rest] - cpu[:, rest]))
    print(f"spike counts equal: {agreement:.4f}; median |rest mean gap| {rest_gap:.2e} mV")
    assert agreement >= 0.95
    assert rest_gap < 0.01
