"""A 2AFC experiment as a simulator, so the simulation-based back ends (``npe``, ``nle``,
``nre``) fit observers too.

:class:`SimulatedExperiment` wraps a :class:`~helmholtz.perception.TwoAFCExperiment`: its
parameters are the observer's on unconstrained scales (every observer parameter is a Normal
pushed through exp, the logistic function or nothing, so the sbi prior is exactly the one
``nuts`` and ``svi`` use), one simulation is a full set of responses to the design, and
the summary statistics are the proportions of "test greater" answers per condition
(reference, its level, the test's level) and bin of log(test / reference).

    simulated = SimulatedExperiment(speed_experiment(trials))
    fit = hz.fit(simulated, responses, method="npe", num_simulations=10_000)
    simulated.constrained(fit.sample(0, 1000))      # noise, prior_exponent, ... as nuts names them
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from numpyro.distributions import transforms

from helmholtz._serialization import serializable
from helmholtz.models.simulators.base import Normal, Simulator
from helmholtz.perception.experiment import TwoAFCExperiment, check_responses

_TRANSFORMS = {"exp": jnp.exp, "sigmoid": jax.nn.sigmoid, "identity": lambda z: z}


def _unconstrained_sites(experiment: TwoAFCExperiment):
    """(site, shape, transform name, loc, scale) for each observer parameter, read from the
    program's prior: LogNormal -> exp, logistic-normal -> sigmoid, Normal -> identity."""
    trace = experiment._trace()
    sites = []
    for name in experiment.sites().global_latents:
        fn = trace[name]["fn"]
        while isinstance(fn, (dist.Independent, dist.ExpandedDistribution)):
            fn = fn.base_dist
        if isinstance(fn, dist.LogNormal):
            transform, base = "exp", fn.base_dist
        elif (
            isinstance(fn, dist.TransformedDistribution)
            and len(fn.transforms) == 1
            and isinstance(fn.transforms[0], transforms.SigmoidTransform)
        ):
            transform, base = "sigmoid", fn.base_dist
        elif isinstance(fn, dist.Normal):
            transform, base = "identity", fn
        else:
            raise ValueError(
                f"SimulatedExperiment: the prior of {name!r} ({type(fn).__name__}) is not a transformed Normal"
            )
        shape = tuple(np.shape(trace[name]["value"]))
        sites.append((name, shape, transform, float(np.ravel(base.loc)[0]), float(np.ravel(base.scale)[0])))
    return tuple(sites)


@serializable
@dataclass(frozen=True, eq=False)
class SimulatedExperiment(Simulator):
    """``experiment`` as a simulator of responses; ``ratio_bins`` bins of log(test /
    reference) per condition (equal-count bins over all trials).

    Its observation is the responses, shape ``(num_trials,)``; its summaries the proportion
    of responses 1 in each group of trials (reference, levels and ratio bin).

    Args:
        experiment: the :class:`~helmholtz.perception.TwoAFCExperiment` to simulate.
        ratio_bins: the number of bins of the stimulus ratio.
    """

    experiment: TwoAFCExperiment
    ratio_bins: int = 5

    def __post_init__(self):
        sites = _unconstrained_sites(self.experiment)
        object.__setattr__(self, "_sites", sites)
        e = self.experiment
        log_ratio = (
            np.log((e.test + e.observer.offset) / (e.reference + e.observer.offset))
            if e.observer.domain == "log"
            else e.test - e.reference
        )
        edges = np.quantile(log_ratio, np.linspace(0, 1, self.ratio_bins + 1)[1:-1])
        keys = np.stack([e.reference, e.reference_level, e.test_level, np.searchsorted(edges, log_ratio)], axis=1)
        _, group = np.unique(keys, axis=0, return_inverse=True)
        group = group.ravel()
        membership = np.zeros((e.num_trials, group.max() + 1), np.float32)
        membership[np.arange(e.num_trials), group] = 1.0
        object.__setattr__(self, "_group_means", membership / membership.sum(0))

    @property
    def name(self) -> str:
        return f"Simulated{self.experiment.name}"

    @property
    def parameters(self):
        parameters = []
        for name, shape, transform, loc, scale in self._sites:
            label = name if transform == "identity" else f"{'log' if transform == 'exp' else 'logit'}_{name}"
            size = int(np.prod(shape))
            parameters += [Normal(label if not shape else f"{label}_{i}", loc, scale) for i in range(size)]
        return tuple(parameters)

    @property
    def observation_shape(self):
        return (self.experiment.num_trials,)

    @property
    def feature_names(self):
        return tuple(f"proportion_{k}" for k in range(self._group_means.shape[1]))

    def constrained(self, draws: dict) -> dict:
        """Draws on the simulator's unconstrained scales as the observer's named parameters
        (with any deterministic functions of them that the observer's program records).

        Args:
            draws: values of the simulator's parameters by name, each with leading batch shape ``(...)``.

        Returns:
            The observer's parameters by name, each shape ``(..., *site_shape)``.
        """
        theta = self.theta_of(draws)
        params, start = {}, 0
        for name, shape, transform, _, _ in self._sites:
            size = int(np.prod(shape))
            params[name] = _TRANSFORMS[transform](theta[..., start : start + size]).reshape(theta.shape[:-1] + shape)
            start += size
        prior = self.experiment.observer.prior
        return {**params, **(prior.derived_parameters(params) if hasattr(prior, "derived_parameters") else {})}

    def simulate_one(self, key, theta):
        params = self.constrained(self.params_of(theta))
        p = self.experiment.response_probability(params)
        return jax.random.bernoulli(key, p).astype(jnp.float32)

    def summarize(self, x):
        return x @ jnp.asarray(self._group_means)

    def validate_data(self, x):
        return check_responses(x, self.experiment.num_trials, self.name)
