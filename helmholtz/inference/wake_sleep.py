"""The ``wake-sleep`` and ``rws`` back ends: the Helmholtz machine (Hinton, Dayan, Frey &
Neal, 1995) and reweighted wake-sleep (Bornschein & Bengio, 2015).

Neither alternates phases: each step takes one gradient step on the generative parameters
theta and the encoder's phi together, each from its own objective.

- wake-theta: the model is fitted to the data completed by the encoder's guesses,
  maximising sum_k w_k log p_theta(x, z_k) with z_k ~ q_phi(z | x) and self-normalised
  importance weights w_k proportional to p(x, z_k) / q(z_k | x) (K = 1: w = 1, the
  Helmholtz machine's wake phase; K > 1: the gradient of the IWAE bound in theta).
- sleep-phi: the encoder learns to invert the model on its own dreams: maximise
  log q_phi(z | x) on (z, x) ~ p_theta.
- wake-phi (rws): the encoder learns from the data, maximising sum_k w_k log q_phi(z_k | x),
  i.e. descending KL(p(z | x) || q(z | x)) rather than the ELBO's reverse KL.

No gradient passes through a sample, so discrete latents (a sigmoid belief network,
Bernoulli or Categorical priors) train as easily as continuous ones. NumPyro has no such
objective; it is written here as an objective object NumPyro's ``SVI`` accepts (its
``loss`` has the value of the negative importance-weighted bound, for the history, and
the gradient of the wake-sleep surrogate), so optimisation, constraints and minibatches
are NumPyro's, exactly as for ``vae``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from helmholtz.inference.amortised import ENCODER_PARAM, Amortisation, requires_encodable_latents, train_amortised
from helmholtz.inference.fit import Fit
from helmholtz.inference.registry import register_backend
from helmholtz.inference.training import AMORTISED_TRAINING, AmortisedOptions, check_num_particles, is_int
from helmholtz.models.base import num_rows, take_rows

PHI_UPDATES = ("sleep", "wake", "both")


class WakeSleepObjective:
    """The wake-sleep surrogate for NumPyro's ``SVI``: ``loss`` evaluates to the negative
    K-particle importance-weighted bound on the batch (the ELBO at K = 1), and its gradient
    is that of wake-theta plus the chosen phi update(s)."""

    can_infer_discrete = True  # tells SVI.init that discrete latents are expected

    def __init__(self, amortisation: Amortisation, num_particles: int, phi_update: str, num_dreams: int):
        self.amortisation, self.num_particles = amortisation, num_particles
        self.phi_update, self.num_dreams = phi_update, num_dreams

    def loss(self, rng_key, param_map, model, guide, x, indices=None):
        stop = jax.lax.stop_gradient
        amortisation = self.amortisation
        batch = x if indices is None else take_rows(x, indices)
        scale = amortisation.num_points / num_rows(batch)
        encoder = param_map[ENCODER_PARAM]
        theta = {**param_map, ENCODER_PARAM: stop(encoder)}
        key_wake, key_sleep = jax.random.split(rng_key)

        # The encoder is frozen here, so log_weights carries gradients to theta only.
        log_weights, latents, log_prior = amortisation.log_weights(theta, batch, key_wake, self.num_particles)
        latents = stop(latents)
        normalised = jax.nn.softmax(stop(log_weights), axis=0)
        bound = (
            scale * jnp.sum(jax.scipy.special.logsumexp(log_weights, axis=0) - np.log(self.num_particles)) + log_prior
        )
        objective = scale * jnp.sum(normalised * log_weights) + log_prior

        phi_weight = 0.5 if self.phi_update == "both" else 1.0
        if self.phi_update in ("wake", "both"):
            q = amortisation.encoder_distributions(encoder, batch)
            log_q = sum(q[site].log_prob(latents[site]) for site in q)
            objective = objective + phi_weight * scale * jnp.sum(normalised * log_q)
        if self.phi_update in ("sleep", "both"):
            # Dreams take the covariates (if the model has any) of random points of the batch.
            key_rows, key_sleep = jax.random.split(key_sleep)
            like = take_rows(batch, jax.random.randint(key_rows, (self.num_dreams,), 0, num_rows(batch)))
            dreamt_latents, dreamt_x = stop(amortisation.dream(stop(theta), key_sleep, like))
            q = amortisation.encoder_distributions(encoder, dreamt_x)
            log_q = sum(q[site].log_prob(dreamt_latents[site]) for site in q)
            objective = objective + phi_weight * amortisation.num_points * jnp.mean(log_q)
        # Value: the negative bound; gradient: the negative surrogate's.
        return -stop(bound) - (objective - stop(objective))


def _fit_wake_sleep(method, model, x, key, *, num_particles, phi_update, num_dreams, training: AmortisedOptions):
    if phi_update not in PHI_UPDATES:
        raise ValueError(f"{method}: phi_update must be one of {PHI_UPDATES}, got {phi_update!r}")
    points_per_step = min(training.batch_size or num_rows(x), num_rows(x))
    num_dreams = points_per_step if num_dreams is None else num_dreams
    if not (is_int(num_dreams) and num_dreams >= 1):
        raise ValueError(f"{method}: num_dreams must be a positive integer, got {num_dreams!r}")
    encoder_hidden = training.encoder_hidden
    config = {"encoder_hidden": encoder_hidden, "beta": 1.0, "deterministic": False}
    key_build, key_train = jax.random.split(key)
    amortisation = Amortisation.build(model, x, key_build, encoder_hidden)
    objective = WakeSleepObjective(amortisation, num_particles, phi_update, int(num_dreams))
    return train_amortised(
        method,
        model,
        x,
        key_train,
        amortisation,
        objective,
        config=config,
        training=training,
        num_particles=num_particles if num_particles > 1 else None,
        options=dict(
            num_particles=num_particles,
            phi_update=phi_update,
            num_dreams=int(num_dreams),
            encoder_hidden=encoder_hidden,
        ),
    )


_OPTIONS_DOC = """
    The shared training options are those of :class:`~helmholtz.inference.AmortisedOptions`
    (``batch_size``, ``encoder_hidden``, ``validation``) and of
    :class:`~helmholtz.inference.TrainingOptions` (``num_steps``, ``learning_rate``,
    ``optimizer``, ``check_every``, ``patience``, ``tolerance``, ``resume``,
    ``progress_bar``), documented once in the user guide's "Options"; here ``num_steps``
    defaults to 10,000 and ``learning_rate`` to 1e-3, and ``resume`` takes a Fit (or its
    file) of this method and model.

    Returns:
        The Fit, the same as ``vae``'s: ``encode``, ``decode``, ``log_marginal``, and
        ``history["loss"]``, the negative K-particle bound on each step's batch.
"""


@register_backend(
    "wake-sleep",
    "the Helmholtz machine: wake phase fits the model, sleep phase the encoder on dreams; discrete latents too",
    requires_encodable_latents,
    options=AmortisedOptions.names(),
)
def fit_wake_sleep(model, x, key, *, num_dreams: int | None = None, **training) -> Fit:
    """Fit the model and an encoder by wake-sleep: the wake phase takes one draw
    z ~ q(z | x) per point and fits the model to (x, z); the sleep phase fits the encoder
    to (z, x) dreamt from the model.

    Args:
        model: a model with local latents an encoder can propose.
        x: the observations.
        key: a JAX PRNG key.
        num_dreams: (z, x) pairs dreamt per step for the sleep phase (default: as many as
            the data points of a step).
        **training: the shared training options (below).
    """
    training = AMORTISED_TRAINING.replace("wake-sleep", **training)
    return _fit_wake_sleep(
        "wake-sleep", model, x, key, num_particles=1, phi_update="sleep", num_dreams=num_dreams, training=training
    )


@register_backend(
    "rws",
    "reweighted wake-sleep with K particles: wake-phi and/or sleep-phi encoder updates; discrete latents too",
    requires_encodable_latents,
    options=AmortisedOptions.names(),
)
def fit_rws(
    model, x, key, *, num_particles: int = 5, phi_update: str = "wake", num_dreams: int | None = None, **training
) -> Fit:
    """Fit the model and an encoder by reweighted wake-sleep with K = ``num_particles``
    importance samples per point.

    Args:
        model: a model with local latents an encoder can propose.
        x: the observations.
        key: a JAX PRNG key.
        num_particles: K, an integer >= 2.
        phi_update: ``"wake"`` (the encoder follows the importance-weighted posterior of
            the data; the better choice in Le et al., 2019), ``"sleep"`` (dreams, as in
            wake-sleep) or ``"both"`` (their average, as in Bornschein & Bengio, 2015).
        num_dreams: (z, x) pairs dreamt per step for sleep-phi (default: as many as the
            data points of a step).
        **training: the shared training options (below).
    """
    num_particles = check_num_particles("rws", num_particles, 2, " (K = 1 is wake-sleep)")
    training = AMORTISED_TRAINING.replace("rws", **training)
    return _fit_wake_sleep(
        "rws",
        model,
        x,
        key,
        num_particles=num_particles,
        phi_update=phi_update,
        num_dreams=num_dreams,
        training=training,
    )


fit_wake_sleep.__doc__ += _OPTIONS_DOC
fit_rws.__doc__ += _OPTIONS_DOC
