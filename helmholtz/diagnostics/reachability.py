"""What a simulator cannot reach: a recording's features against the prior predictive.

Before a posterior is trusted, each observed summary statistic is placed among the same
statistics simulated from the prior (Gao, Deistler & Macke 2023 call an observation that
no simulation resembles *misspecified*; a neural posterior conditioned on one
extrapolates, and trades every other feature against the one it cannot match):

* per feature: the recorded value's prior-predictive quantile, whether it lies within the
  simulated range, and its robust z-score ``(observed - median) / scale``. A feature is
  *unreachable* when fewer than a fraction ``tail`` of the simulations (and none, where
  ``tail`` is below one simulation) lie at or beyond the recorded value on its side;
* jointly: the features standardised by each one's robust scale, the distance from the
  observation to its ``k``-th nearest simulation, as a quantile of the same distance from
  each simulation to its own ``k``-th nearest neighbour among the others. Where the
  observation lies on the simulations' support this quantile is roughly uniform; above
  ``level`` (0.99) the observation lies where the model simulates nothing, even when every
  feature on its own is inside its range (two correlated features recorded anti-correlated).

Where the observation is drawn as the simulations are, its quantile is uniform whatever
``k`` (the observation and a simulation are exchangeable), so ``level`` is the rate of
false alarms. A smaller ``k`` smooths less: in the tails of 14 Hodgkin-Huxley features a
recording's quantile among 5,000 simulations rose from 0.98 (``k = 10``) to 0.99 (5) and
0.995 (1), and with 20,000 simulations to 0.994-0.999; 5 is the default.

For a density ``f`` and many simulations, the ``k``-th neighbour distance is about
``(k / (n f(x)))^(1/d)``, so the joint quantile estimates the prior-predictive mass of
denser points, ``P(f(X) > f(x_o))``: for a Gaussian, the chi-square CDF of the squared
Mahalanobis distance (what the tests check). The robust scale is the MAD (times 1.4826,
the normal's standard deviation); where more than half the simulations share one value
(a silent neuron's spike count) it is the MAD of the others, then the standard deviation;
a feature every simulation gives the same value is left out of the distance.

    report = reachability(simulated, observed, names)
    report.unreachable, report.joint_quantile, report.sentence()
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The normal's standard deviation per unit of median absolute deviation.
_MAD_TO_SD = 1.482602218505602


@dataclass(frozen=True)
class ReachabilityReport:
    """The observation's place among prior-predictive simulations, per feature and jointly.

    Args:
        names: the features' names, ``(num_features,)``.
        observed: the observed features, shape ``(num_features,)``.
        quantile: each observed value's prior-predictive quantile (mid-rank: the fraction
            of simulations below it plus half of those equal), shape ``(num_features,)``.
        within_range: whether each observed value lies within the simulated minimum and
            maximum, shape ``(num_features,)``.
        robust_z: ``(observed - median) / scale``, shape ``(num_features,)`` (``inf`` for a
            feature the simulations never vary that the observation differs from).
        median: the simulations' median per feature, shape ``(num_features,)``.
        scale: the robust scale per feature (0 where every simulation agrees), shape
            ``(num_features,)``.
        simulated_range: the simulated minimum and maximum, shape ``(num_features, 2)``.
        reachable: whether each feature is reachable, shape ``(num_features,)``.
        joint_distance: the standardised distance from the observation to its ``k``-th
            nearest simulation.
        joint_quantile: that distance's quantile among the simulations' own ``k``-th
            neighbour distances.
        joint_reachable: whether ``joint_quantile <= level``.
        joint_quantile_of_reachable: the joint quantile over the reachable features alone
            (``None`` where all are reachable, or none is): whether the rest of the
            recording is one the model can produce.
        num_simulations: the finite simulations used.
        num_excluded: simulations left out for a non-finite feature.
        k: the neighbour rank of the joint check.
        tail: the per-feature tail fraction below which a feature is unreachable.
        level: the joint quantile above which the observation is off the joint support.
    """

    names: tuple[str, ...]
    observed: np.ndarray
    quantile: np.ndarray
    within_range: np.ndarray
    robust_z: np.ndarray
    median: np.ndarray
    scale: np.ndarray
    simulated_range: np.ndarray
    reachable: np.ndarray
    joint_distance: float
    joint_quantile: float
    joint_reachable: bool
    joint_quantile_of_reachable: float | None
    num_simulations: int
    num_excluded: int
    k: int
    tail: float
    level: float

    @property
    def unreachable(self) -> tuple[str, ...]:
        """The names of the features the simulations do not reach."""
        return tuple(name for name, ok in zip(self.names, self.reachable) if not ok)

    def to_dict(self) -> dict:
        """The report as JSON-ready values.

        Returns:
            A dict: ``"features"`` (by name: ``observed``, ``quantile``, ``within_range``,
            ``robust_z``, ``median``, ``simulated_min``, ``simulated_max``, ``reachable``),
            ``"unreachable"`` (names), ``"joint"`` (``distance``, ``quantile``, ``reachable``,
            ``quantile_of_reachable``, ``k``, ``level``), ``"num_simulations"``,
            ``"num_excluded"``, ``"tail"`` and ``"sentence"``.
        """
        features = {
            name: {
                "observed": float(self.observed[i]),
                "quantile": float(self.quantile[i]),
                "within_range": bool(self.within_range[i]),
                "robust_z": _json_float(self.robust_z[i]),
                "median": float(self.median[i]),
                "simulated_min": float(self.simulated_range[i, 0]),
                "simulated_max": float(self.simulated_range[i, 1]),
                "reachable": bool(self.reachable[i]),
            }
            for i, name in enumerate(self.names)
        }
        return {
            "features": features,
            "unreachable": list(self.unreachable),
            "joint": {
                "distance": float(self.joint_distance),
                "quantile": float(self.joint_quantile),
                "reachable": bool(self.joint_reachable),
                "quantile_of_reachable": self.joint_quantile_of_reachable,
                "k": self.k,
                "level": self.level,
            },
            "num_simulations": self.num_simulations,
            "num_excluded": self.num_excluded,
            "tail": self.tail,
            "sentence": self.sentence(),
        }

    def sentence(self, treatment: str = "") -> str:
        """One sentence naming what the model cannot produce, for a terminal.

        Args:
            treatment: how the fit treats the unreachable features, appended after a
                semicolon (e.g. ``"the fit conditions on them anyway"``); said only where
                something is unreachable.

        Returns:
            The sentence.
        """
        joint = (
            f"joint quantile {self.joint_quantile:.3f} among {self.num_simulations} prior simulations, "
            f"off the support above {self.level:g}"
        )
        if not self.unreachable and self.joint_reachable:
            edge = int(np.argmax(np.abs(self.quantile - 0.5)))
            return (
                f"The model's prior simulations reach every recorded feature, and their combination ({joint}); "
                f"the most extreme is {self.names[edge]} (recorded {_g(self.observed[edge])}, "
                f"quantile {self.quantile[edge]:.4f})."
            )
        if self.unreachable:
            described = ", ".join(
                f"{self.names[i]} (recorded {_g(self.observed[i])}, prior predictive "
                f"{_g(self.simulated_range[i, 0])} to {_g(self.simulated_range[i, 1])}, quantile {self.quantile[i]:.4f})"
                for i in np.flatnonzero(~self.reachable)
            )
            text = f"The model cannot produce {described}"
            if self.joint_quantile_of_reachable is not None:
                rest = "lie" if self.joint_quantile_of_reachable <= self.level else "do not lie"
                text += (
                    f"; the other features together {rest} within what it simulates "
                    f"(joint quantile {self.joint_quantile_of_reachable:.3f})"
                )
        else:
            text = (
                "Each recorded feature lies within the prior simulations' range, but not their combination: "
                f"the recording is farther from its nearest simulations than the simulations are from theirs ({joint})"
            )
        return text + (f"; {treatment}." if treatment else ".")


def reachability(
    simulated_features,
    observed_features,
    names=None,
    *,
    k: int = 5,
    tail: float = 1e-3,
    level: float = 0.99,
    num_reference: int = 2000,
    min_simulations: int = 100,
    seed: int = 0,
) -> ReachabilityReport:
    """Check each observed feature, and all of them together, against prior-predictive simulations.

    Args:
        simulated_features: the features of simulations drawn from the prior, shape
            ``(num_simulations, num_features)``; rows with a non-finite value are left out
            (counted in ``num_excluded``).
        observed_features: the observation's features, shape ``(num_features,)``; finite.
        names: the features' names, ``num_features`` of them (default ``feature 0``, ...).
        k: the neighbour rank of the joint check (the distance to the ``k``-th nearest).
        tail: a feature is unreachable when fewer than this fraction of the simulations lie
            at or beyond its observed value on its side (and always when none does).
        level: the joint quantile above which the observation is off the joint support.
        num_reference: how many simulations (at most) give the reference neighbour
            distances, picked at random by ``seed``.
        min_simulations: the fewest finite simulations accepted.
        seed: the seed of the reference pick.

    Returns:
        The :class:`ReachabilityReport`.

    Raises:
        ValueError: the shapes disagree, an observed feature is not finite, fewer than
            ``min_simulations`` simulations are finite, or an option is out of range.
    """
    simulated = np.asarray(simulated_features, dtype=np.float64)
    observed = np.asarray(observed_features, dtype=np.float64)
    if simulated.ndim != 2:
        raise ValueError(
            f"reachability: simulated_features must have shape (num_simulations, num_features), got {simulated.shape}"
        )
    num_features = simulated.shape[1]
    if observed.shape != (num_features,):
        raise ValueError(
            f"reachability: observed_features must have shape ({num_features},), one value per simulated feature, "
            f"got {observed.shape}"
        )
    names = tuple(f"feature {i}" for i in range(num_features)) if names is None else tuple(map(str, names))
    if len(names) != num_features:
        raise ValueError(f"reachability: {len(names)} names for {num_features} features")
    if not np.isfinite(observed).all():
        bad = ", ".join(f"{names[i]} = {observed[i]}" for i in np.flatnonzero(~np.isfinite(observed)))
        raise ValueError(f"reachability: observed features must be finite, got {bad}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"reachability: k must be a positive integer, got {k!r}")
    if not 0 < tail < 0.5:
        raise ValueError(f"reachability: tail must lie in (0, 0.5), got {tail!r}")
    if not 0 < level < 1:
        raise ValueError(f"reachability: level must lie in (0, 1), got {level!r}")
    if isinstance(num_reference, bool) or not isinstance(num_reference, (int, np.integer)) or num_reference < 1:
        raise ValueError(f"reachability: num_reference must be a positive integer, got {num_reference!r}")
    finite = np.isfinite(simulated).all(axis=1)
    simulated = simulated[finite]
    n = len(simulated)
    minimum = max(int(min_simulations), k + 1)
    if n < minimum:
        raise ValueError(
            f"reachability: {n} finite simulations ({int((~finite).sum())} left out as non-finite); "
            f"at least {minimum} are needed to place the observation among them"
        )

    below = (simulated < observed).sum(axis=0)
    equal = (simulated == observed).sum(axis=0)
    quantile = (below + 0.5 * equal) / n
    at_or_beyond = np.minimum(below + equal, n - below)  # on the observation's side, itself included
    reachable = at_or_beyond >= max(tail * n, 1.0)
    low, high = simulated.min(axis=0), simulated.max(axis=0)
    median = np.median(simulated, axis=0)
    scale = robust_scale(simulated)
    difference = observed - median
    with np.errstate(divide="ignore", invalid="ignore"):
        robust_z = np.where(scale > 0, difference / np.where(scale > 0, scale, 1.0), np.sign(difference) * np.inf)
    robust_z = np.where((scale == 0) & (difference == 0), 0.0, robust_z)

    varying = scale > 0
    rng = np.random.default_rng(seed)
    reference = np.sort(rng.choice(n, size=min(num_reference, n), replace=False))
    distance, joint_quantile = _joint(simulated, observed, median, scale, varying, k, reference)
    of_reachable = None
    if 0 < reachable.sum() < num_features and (varying & reachable).any():
        _, of_reachable = _joint(simulated, observed, median, scale, varying & reachable, k, reference)
    return ReachabilityReport(
        names=names,
        observed=observed,
        quantile=quantile,
        within_range=(observed >= low) & (observed <= high),
        robust_z=robust_z,
        median=median,
        scale=scale,
        simulated_range=np.stack([low, high], axis=1),
        reachable=reachable,
        joint_distance=distance,
        joint_quantile=joint_quantile,
        joint_reachable=bool(joint_quantile <= level),
        joint_quantile_of_reachable=of_reachable,
        num_simulations=n,
        num_excluded=int((~finite).sum()),
        k=int(k),
        tail=float(tail),
        level=float(level),
    )


def robust_scale(simulated) -> np.ndarray:
    """Each feature's robust scale: the MAD times 1.4826; where it is 0 (more than half the
    simulations share one value), the same of the simulations that differ from the median;
    then the standard deviation; 0 where every simulation gives the same value.

    Args:
        simulated: finite features, shape ``(num_simulations, num_features)``.

    Returns:
        The scales, shape ``(num_features,)``.
    """
    simulated = np.asarray(simulated, dtype=np.float64)
    median = np.median(simulated, axis=0)
    scale = _MAD_TO_SD * np.median(np.abs(simulated - median), axis=0)
    for j in np.flatnonzero(scale == 0):
        others = simulated[simulated[:, j] != median[j], j]
        if len(others) >= 2:
            scale[j] = _MAD_TO_SD * np.median(np.abs(others - np.median(others)))
        if scale[j] == 0:
            scale[j] = np.std(simulated[:, j])
    return scale


def _joint(simulated, observed, median, scale, columns, k, reference):
    """The observation's k-th neighbour distance and its quantile among the reference
    simulations' own (each's k-th nearest among the others), on the standardised columns."""
    z = (simulated[:, columns] - median[columns]) / scale[columns]
    z_observed = (observed[columns] - median[columns]) / scale[columns]
    observed_distance = float(np.sqrt(np.partition(((z - z_observed) ** 2).sum(axis=1), k - 1)[k - 1]))
    squared_norms = (z**2).sum(axis=1)
    rows = max(1, 4_000_000 // len(z))  # a chunk of the distance matrix: about 32 MB
    own = []
    for start in range(0, len(reference), rows):
        index = reference[start : start + rows]
        squared = squared_norms[index, None] + squared_norms[None, :] - 2.0 * z[index] @ z.T
        squared[np.arange(len(index)), index] = np.inf  # not its own neighbour
        own.append(np.sqrt(np.maximum(np.partition(squared, k - 1, axis=1)[:, k - 1], 0.0)))
    own = np.concatenate(own)
    quantile = float(((own < observed_distance).sum() + 0.5 * (own == observed_distance).sum()) / len(own))
    return observed_distance, quantile


def _g(value: float) -> str:
    return f"{float(value):.3g}"


def _json_float(value) -> float | str:
    value = float(value)
    return value if np.isfinite(value) else ("inf" if value > 0 else "-inf")
