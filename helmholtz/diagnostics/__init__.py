"""Diagnostics for any (model, back end) pair: calibration, two-sample tests, comparisons."""

from helmholtz.diagnostics.c2st import c2st
from helmholtz.diagnostics.compare import compare_to_reference, flatten_draws
from helmholtz.diagnostics.coverage import CoverageResult, expected_coverage
from helmholtz.diagnostics.reachability import ReachabilityReport, reachability
from helmholtz.diagnostics.sbc import SBCResult, rank_uniformity_p_values, sbc
from helmholtz.diagnostics.spikes import bits_per_spike, rate_r_squared, smoothing_baseline

__all__ = [
    "CoverageResult",
    "ReachabilityReport",
    "SBCResult",
    "c2st",
    "compare_to_reference",
    "expected_coverage",
    "flatten_draws",
    "rank_uniformity_p_values",
    "reachability",
    "sbc",
    "bits_per_spike",
    "rate_r_squared",
    "smoothing_baseline",
]
