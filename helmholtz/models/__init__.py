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
from helmholtz.models.posteriordb import EightSchools, LowDimGaussMix

__all__ = [
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
