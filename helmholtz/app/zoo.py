"""The zoo: every model the command line can build by name, from a data file."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helmholtz.data.arrays import load_array
from helmholtz.models import linear, markov, posteriordb
from helmholtz.models.base import Model
from helmholtz.models.nonlinear import HierarchicalLVM, NonlinearLVM
from helmholtz.models.simulators import sbibm
from helmholtz.models.simulators.hodgkin_huxley import HodgkinHuxley, step_current
from helmholtz.priors import Gaussian


@dataclass(frozen=True)
class ZooEntry:
    """A named model: ``build(data_path, **options) -> (model, data)``, and an example
    instance (``example()``) that back ends are asked about."""

    name: str
    description: str
    build: Callable[..., tuple[Model, np.ndarray]]
    example: Callable[[], Model]
    options: str = ""


def _linear(constructor, size_option: str):
    def build(path, **options):
        x = load_array(path)
        if x.ndim != 2:
            raise ValueError(f"{path}: expected a (num_points, obs_dim) matrix, got shape {x.shape}")
        size = int(options.pop(size_option, 2))
        return constructor(x.shape[1], size, **options), x

    return build


def _read_json(path) -> dict:
    path = Path(path)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(archive.namelist()[0]))
    return json.loads(path.read_text())


def _eight_schools(path, **options):
    content = _read_json(path)
    missing = {"y", "sigma"} - set(content)
    if missing:
        raise ValueError(f"{path}: eight schools data needs entries 'y' and 'sigma', missing {sorted(missing)}")
    return posteriordb.EightSchools(sigma=tuple(content["sigma"])), np.asarray(content["y"], dtype=float)


def _low_dim_gauss_mix(path, **options):
    return posteriordb.LowDimGaussMix(), np.ravel(load_array(path))


def _hodgkin_huxley(path, **options):
    from helmholtz.data.recordings import load_recording

    recording = load_recording(path)
    return HodgkinHuxley.cortical(recording=recording, **options), recording.voltage


def _hodgkin_huxley_example():
    return HodgkinHuxley.cortical(
        current=step_current(1.0, duration=10.0, dt=0.1, stim_on=2.0, stim_off=8.0), dt=0.1, stim_on=2.0, stim_off=8.0
    )


def _speed_observer(path, **options):
    from helmholtz.data.trials import load_speed_trials
    from helmholtz.perception.speed import speed_experiment

    trials = load_speed_trials(path)
    return speed_experiment(trials, **options), trials["test_seen_faster"].to_numpy(float)


def _speed_observer_example():
    import pandas as pd

    from helmholtz.perception.speed import speed_experiment

    table = pd.DataFrame(
        {
            "ref_speed_deg_s": [1.0, 4.0],
            "ref_contrast": [0.5, 0.5],
            "test_speed_deg_s": [1.2, 3.0],
            "test_contrast": [0.1, 0.5],
        }
    )
    return speed_experiment(table, grid_size=32)


def _sequence(constructor, size_option: str, event_ndim: int):
    """A sequence model from a table: one column per channel, one row per time step."""

    def build(path, **options):
        x = load_array(path)
        if event_ndim == 1:
            x = np.ravel(x)
        elif x.ndim == 1:
            x = x[:, None]
        size = int(options.pop(size_option, 2))
        if event_ndim == 1:
            return constructor(size, **options), x
        return constructor(size, obs_dim=x.shape[-1], **options), x

    return build


def _nonlinear(constructor):
    """A network-decoder model of a (num_points, obs_dim) matrix, Gaussian latents."""

    def build(path, **options):
        x = load_array(path)
        if x.ndim != 2:
            raise ValueError(f"{path}: expected a (num_points, obs_dim) matrix, got shape {x.shape}")
        latent_dim = int(options.pop("latent_dim", 2))
        return constructor(Gaussian(latent_dim), x.shape[1], **options), x

    return build


def _lfads(path, **options):
    x = load_array(path)
    if x.ndim != 3:
        raise ValueError(f"{path}: LFADS needs spike counts shaped (trials, time bins, neurons), got shape {x.shape}")
    return markov.LFADS(num_neurons=x.shape[2], num_steps=x.shape[1], **options), x


def _sbibm_task(name):
    def build(path, **options):
        x = np.ravel(load_array(path))
        return sbibm.TASKS[name](**options), x

    return build


ZOO = {
    entry.name: entry
    for entry in [
        ZooEntry(
            "factor-analysis",
            "Gaussian factors, one noise scale per coordinate",
            _linear(linear.FactorAnalysis, "latent_dim"),
            lambda: linear.FactorAnalysis(3, 1),
            "latent_dim",
        ),
        ZooEntry(
            "ppca",
            "probabilistic PCA: Gaussian factors, isotropic noise",
            _linear(linear.ProbabilisticPCA, "latent_dim"),
            lambda: linear.ProbabilisticPCA(3, 1),
            "latent_dim",
        ),
        ZooEntry(
            "sparse-coding",
            "Laplace (sparse) coefficients, isotropic noise",
            _linear(linear.SparseCoding, "latent_dim"),
            lambda: linear.SparseCoding(3, 1),
            "latent_dim, sparsity",
        ),
        ZooEntry(
            "gaussian-mixture",
            "mixture of isotropic Gaussians, component summed out",
            _linear(linear.GaussianMixture, "num_components"),
            lambda: linear.GaussianMixture(3, 2),
            "num_components",
        ),
        ZooEntry(
            "binary-factors",
            "additive on/off factors (Bernoulli), summed out",
            _linear(linear.BinaryFactors, "latent_dim"),
            lambda: linear.BinaryFactors(3, 2),
            "latent_dim, probs",
        ),
        ZooEntry(
            "eight-schools",
            "hierarchical normal model (posteriordb, non-centred)",
            _eight_schools,
            lambda: posteriordb.EightSchools(sigma=(1.0, 2.0)),
        ),
        ZooEntry(
            "hodgkin-huxley",
            "cortical HH neuron (Pospischil 2008) driven by a recording's current",
            _hodgkin_huxley,
            _hodgkin_huxley_example,
            "area_cm2, v_init",
        ),
        ZooEntry(
            "two-moons", "sbibm two moons: crescent-shaped, bimodal posterior", _sbibm_task("two_moons"), sbibm.TwoMoons
        ),
        ZooEntry(
            "gaussian-linear",
            "sbibm Gaussian linear: closed-form posterior",
            _sbibm_task("gaussian_linear"),
            sbibm.GaussianLinear,
            "dim",
        ),
        ZooEntry("slcp", "sbibm simple likelihood, complex posterior", _sbibm_task("slcp"), sbibm.SLCP),
        ZooEntry(
            "speed-observer",
            "Bayesian speed observer (Stocker & Simoncelli 2006), 2AFC trials CSV",
            _speed_observer,
            _speed_observer_example,
            "prior, percept",
        ),
        ZooEntry(
            "hmm",
            "hidden Markov model, Gaussian/Poisson/Bernoulli emissions (rows = time steps)",
            _sequence(markov.HiddenMarkovModel, "num_states", 2),
            lambda: markov.HiddenMarkovModel(2, obs_dim=1),
            "num_states, emission, stickiness",
        ),
        ZooEntry(
            "lds",
            "linear dynamical system, states integrated by the Kalman filter",
            _sequence(markov.LinearDynamicalSystem, "state_dim", 2),
            lambda: markov.LinearDynamicalSystem(1, 2),
            "state_dim",
        ),
        ZooEntry(
            "poisson-lds",
            "linear dynamical system with Poisson spike counts, states sampled",
            _sequence(markov.PoissonLinearDynamicalSystem, "state_dim", 2),
            lambda: markov.PoissonLinearDynamicalSystem(1, 2),
            "state_dim",
        ),
        ZooEntry(
            "ar",
            "autoregressive AR(K) process (one column)",
            _sequence(markov.AutoRegressive, "order", 1),
            lambda: markov.AutoRegressive(2),
            "order",
        ),
        ZooEntry(
            "nonlinear-lvm",
            "latent Gaussian causes through a neural-network decoder (a VAE's model)",
            _nonlinear(NonlinearLVM),
            lambda: NonlinearLVM(Gaussian(1), 3, hidden=(4,)),
            "latent_dim, likelihood, hidden, network, image_shape",
        ),
        ZooEntry(
            "hierarchical-lvm",
            "two stochastic layers z -> h -> x, network decoders",
            _nonlinear(HierarchicalLVM),
            lambda: HierarchicalLVM(Gaussian(1), 3, hidden=(4,), middle_dim=2, top_hidden=(4,)),
            "latent_dim, middle_dim, likelihood",
        ),
        ZooEntry(
            "lfads",
            "LFADS: a GRU generator of Poisson spike trains (.npy of trials x bins x neurons)",
            _lfads,
            lambda: markov.LFADS(num_neurons=3, num_steps=5, generator_dim=4, factor_dim=2, encoder_dim=4),
            "generator_dim, factor_dim, encoder_dim",
        ),
        ZooEntry(
            "low-dim-gauss-mix",
            "two-component 1-D mixture, ordered means (posteriordb)",
            _low_dim_gauss_mix,
            posteriordb.LowDimGaussMix,
        ),
    ]
}
