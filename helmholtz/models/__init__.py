"""The zoo's models: every family follows the protocol of :class:`Model`."""

from helmholtz.models import markov, simulators
from helmholtz.models.base import Conditioned, Model, Sites
from helmholtz.models.hierarchical import HierarchicalNormal
from helmholtz.models.linear import (
    BinaryFactors,
    FactorAnalysis,
    GaussianMixture,
    LinearLVM,
    ProbabilisticPCA,
    SparseCoding,
)
from helmholtz.models.markov import AutoRegressive, HiddenMarkovModel, LinearDynamicalSystem
from helmholtz.models.nonlinear import ConditionalLVM, HierarchicalLVM, NonlinearLVM
from helmholtz.models.posteriordb import EightSchools, HMMExample, LotkaVolterra, LowDimGaussMix
from helmholtz.models.simulators import SLCP, GaussianLinear, HodgkinHuxley, TwoMoons, WilsonCowan

__all__ = [
    "GaussianLinear",
    "HodgkinHuxley",
    "SLCP",
    "TwoMoons",
    "WilsonCowan",
    "simulators",
    "markov",
    "AutoRegressive",
    "HiddenMarkovModel",
    "LinearDynamicalSystem",
    "BinaryFactors",
    "ConditionalLVM",
    "Conditioned",
    "EightSchools",
    "FactorAnalysis",
    "GaussianMixture",
    "HierarchicalLVM",
    "HierarchicalNormal",
    "HMMExample",
    "LinearLVM",
    "LotkaVolterra",
    "LowDimGaussMix",
    "Model",
    "NonlinearLVM",
    "ProbabilisticPCA",
    "Sites",
    "SparseCoding",
]
