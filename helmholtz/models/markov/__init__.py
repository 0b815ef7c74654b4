"""Markov-chain priors for sequences: hidden Markov models, linear dynamical systems
(Gaussian and Poisson observations) and autoregressive processes, each a thin model class
over pure inference functions; and LFADS, a sequential VAE of spiking trials."""

from helmholtz.models.markov.autoregressive import AutoRegressive
from helmholtz.models.markov.distributions import AutoRegressiveProcess, HiddenMarkovEmissions, LinearGaussianStateSpace
from helmholtz.models.markov.hmm import HiddenMarkovModel
from helmholtz.models.markov.hmm_inference import (
    HMMFilterResult,
    HMMSmootherResult,
    hmm_filter,
    hmm_log_likelihood,
    hmm_posterior_mode,
    hmm_posterior_sample,
    hmm_sample,
    hmm_smoother,
)
from helmholtz.models.markov.lds import LinearDynamicalSystem, PoissonLinearDynamicalSystem
from helmholtz.models.markov.lds_inference import (
    LDSFilterResult,
    LDSParams,
    LDSSmootherResult,
    kalman_filter,
    kalman_smoother,
    lds_log_likelihood,
    lds_sample,
)
from helmholtz.models.markov.lfads import LFADS

__all__ = [
    "AutoRegressiveProcess",
    "HiddenMarkovEmissions",
    "LinearGaussianStateSpace",
    "AutoRegressive",
    "LFADS",
    "HMMFilterResult",
    "HMMSmootherResult",
    "HiddenMarkovModel",
    "LDSFilterResult",
    "LDSParams",
    "LDSSmootherResult",
    "LinearDynamicalSystem",
    "PoissonLinearDynamicalSystem",
    "hmm_filter",
    "hmm_log_likelihood",
    "hmm_posterior_mode",
    "hmm_posterior_sample",
    "hmm_sample",
    "hmm_smoother",
    "kalman_filter",
    "kalman_smoother",
    "lds_log_likelihood",
    "lds_sample",
]
