"""The zoo's models: every family follows the protocol of :class:`Model`.

Your own models: :class:`Program` (a NumPyro program), :class:`FunctionSimulator` (a
simulator function), or a frozen-dataclass subclass of :class:`Model` marked
:func:`helmholtz.serializable`; :func:`check_finite_array` for its ``validate_data``.
"""

from helmholtz.models import markov, simulators
from helmholtz.models.base import Conditioned, Model, SiteInfo, Sites, check_finite_array
from helmholtz.models.hierarchical import HierarchicalNormal
from helmholtz.models.linear import (
    BinaryFactors,
    FactorAnalysis,
    GaussianMixture,
    LinearLVM,
    ProbabilisticPCA,
    SparseCoding,
)
from helmholtz.models.markov import AutoRegressive, HiddenMarkovEmissions, HiddenMarkovModel, LinearDynamicalSystem
from helmholtz.models.nonlinear import ConditionalLVM, HierarchicalLVM, NonlinearLVM
from helmholtz.models.posteriordb import EightSchools, HMMExample, LotkaVolterra, LowDimGaussMix
from helmholtz.models.program import Program
from helmholtz.models.simulators import SLCP, FunctionSimulator, GaussianLinear, HodgkinHuxley, TwoMoons, WilsonCowan

__all__ = [
    "FunctionSimulator",
    "HiddenMarkovEmissions",
    "Program",
    "SiteInfo",
    "check_finite_array",
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
