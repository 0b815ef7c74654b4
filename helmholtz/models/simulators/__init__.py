"""Simulator models: known only through a stochastic program ``theta -> x``."""

from helmholtz.models.simulators.base import Normal, Simulator, Uniform
from helmholtz.models.simulators.features import FEATURE_NAMES, voltage_features
from helmholtz.models.simulators.function import FunctionSimulator
from helmholtz.models.simulators.hodgkin_huxley import HodgkinHuxley, step_current
from helmholtz.models.simulators.sbibm import SLCP, TASKS, GaussianLinear, TwoMoons, load_task
from helmholtz.models.simulators.wilson_cowan import WilsonCowan

__all__ = [
    "FEATURE_NAMES",
    "FunctionSimulator",
    "HodgkinHuxley",
    "step_current",
    "voltage_features",
    "GaussianLinear",
    "Normal",
    "SLCP",
    "Simulator",
    "TASKS",
    "TwoMoons",
    "Uniform",
    "WilsonCowan",
    "load_task",
]
