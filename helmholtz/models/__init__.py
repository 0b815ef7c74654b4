"""The zoo's models: every family follows the protocol of :class:`Model`."""

from helmholtz.models.base import Model, Sites
from helmholtz.models.linear import (
    BinaryFactors,
    FactorAnalysis,
    GaussianMixture,
    LinearLVM,
    ProbabilisticPCA,
    SparseCoding,
)
from helmholtz.models import simulators
from helmholtz.models.posteriordb import EightSchools, LowDimGaussMix
from helmholtz.models.simulators import SLCP, GaussianLinear, HodgkinHuxley, TwoMoons, WilsonCowan

__all__ = [
    "GaussianLinear",
    "HodgkinHuxley",
    "SLCP",
    "TwoMoons",
    "WilsonCowan",
    "simulators",
    "BinaryFactors",
    "EightSchools",
    "FactorAnalysis",
    "GaussianMixture",
    "LinearLVM",
    "LowDimGaussMix",
    "Model",
    "ProbabilisticPCA",
    "Sites",
    "SparseCoding",
]
