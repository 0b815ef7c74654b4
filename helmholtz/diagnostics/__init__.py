"""Diagnostics for any (model, back end) pair: calibration, two-sample tests, comparisons, and
choosing between models by held-out predictive accuracy (:func:`compare`), and whether a
simulator can produce what was recorded (:func:`reachability`)."""

from helmholtz.diagnostics.c2st import c2st
from helmholtz.diagnostics.compare import compare_to_reference, flatten_draws
from helmholtz.diagnostics.coverage import CoverageResult, expected_coverage
from helmholtz.diagnostics.model_comparison import ModelComparison, compare, elpd
from helmholtz.diagnostics.reachability import ReachabilityReport, reachability
from helmholtz.diagnostics.sbc import SBCResult, rank_uniformity_p_values, sbc
from helmholtz.diagnostics.spikes import bits_per_spike, rate_r_squared, smoothing_baseline

__all__ = [
    "CoverageResult",
    "ModelComparison",
    "ReachabilityReport",
    "SBCResult",
    "bits_per_spike",
    "c2st",
    "compare",
    "compare_to_reference",
    "elpd",
    "expected_coverage",
    "flatten_draws",
    "rank_uniformity_p_values",
    "reachability",
    "rate_r_squared",
    "sbc",
    "smoothing_baseline",
]
