"""Perception: Bayesian observers declared from parts and fit to people's responses.

* :mod:`~helmholtz.perception.observer`: a world prior x a sensory likelihood x a percept
  rule x a response model, for a scalar stimulus; :mod:`~helmholtz.perception.experiment`
  turns one into a model of 2AFC responses that ``nuts`` and ``svi`` fit, and
  :mod:`~helmholtz.perception.simulation` into a simulator that ``npe`` fits;
* :mod:`~helmholtz.perception.speed`: speed perception (Stocker & Simoncelli, 2006);
* :mod:`~helmholtz.perception.cue_combination`: Ernst & Banks (2002), causal inference
  (Koerding et al., 2007);
* :mod:`~helmholtz.perception.motion`: motion illusions (Weiss, Simoncelli & Adelson, 2002);
* :mod:`~helmholtz.perception.signal_detection`: Green & Swets (1966);
* :mod:`~helmholtz.perception.psychometric`: psychometric functions as psignifit 4 fits them
  (Schuett et al., 2016): sigmoid, threshold, width, lapse and guess rates, overdispersion;
* :mod:`~helmholtz.perception.tomography`: cognitive tomography (Houlsby et al., 2013): a
  subjective prior over a 2-D stimulus space from odd-one-out judgements.
"""

from helmholtz.perception import motion, psychometric, signal_detection, tomography
from helmholtz.perception.cue_combination import (
    ErnstBanksExperiment,
    causal_inference,
    combine_cues,
    combine_cues_with_prior,
    ernst_banks_design,
)
from helmholtz.perception.experiment import PsychometricPerCondition, TwoAFCExperiment
from helmholtz.perception.observer import GaussianPrior, Observer, PiecewiseLogPrior, PowerLawPrior
from helmholtz.perception.psychometric import PsychometricFunction, counts_from_trials
from helmholtz.perception.signal_detection import (
    SignalDetection,
    area_under_roc,
    dprime_and_criterion,
    proportion_correct_2afc,
    roc_curve,
)
from helmholtz.perception.simulation import SimulatedExperiment
from helmholtz.perception.speed import (
    cross_validated_log_likelihood,
    psychometric_baseline,
    speed_experiment,
    speed_observer,
)
from helmholtz.perception.tomography import CognitiveTomography, Mixture, mixture_mmd, random_triplets

__all__ = [
    "motion",
    "signal_detection",
    "psychometric",
    "tomography",
    "CognitiveTomography",
    "Mixture",
    "mixture_mmd",
    "random_triplets",
    "PsychometricFunction",
    "counts_from_trials",
    "Observer",
    "GaussianPrior",
    "PowerLawPrior",
    "PiecewiseLogPrior",
    "TwoAFCExperiment",
    "PsychometricPerCondition",
    "SimulatedExperiment",
    "speed_experiment",
    "speed_observer",
    "psychometric_baseline",
    "cross_validated_log_likelihood",
    "combine_cues",
    "combine_cues_with_prior",
    "causal_inference",
    "ernst_banks_design",
    "ErnstBanksExperiment",
    "SignalDetection",
    "dprime_and_criterion",
    "proportion_correct_2afc",
    "roc_curve",
    "area_under_roc",
]
