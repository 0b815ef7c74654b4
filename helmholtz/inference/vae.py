"""The ``vae`` back end: an encoder q(z_i | x_i) trained jointly with the model's
parameters on the ELBO (Kingma & Welling, 2014) or the importance-weighted bound (IWAE,
Burda et al., 2016), with NumPyro's SVI and ELBOs.

The programs it gives NumPyro are those of :class:`~helmholtz.inference.amortised.Amortisation`:
global latents as point estimates (MAP) whose log prior is spread over the data plate,
an encoder guide, minibatches as indices of the ``"data"`` plate (NumPyro scales each
point's terms by N / batch_size), and ``beta`` multiplying log p(z_i) and log q(z_i | x_i),
i.e. each point's KL term.

Discrete latents (Bernoulli, Categorical priors) and angles cannot be reparameterised;
for them the gradient of the ELBO with respect to the encoder is NumPyro's
score-function estimator (``TraceGraph_ELBO``), unbiased but noisy: prefer ``rws`` for
such models, which needs no gradient through the samples.
"""

from __future__ import annotations

import jax
import numpy as np
from numpyro.infer import RenyiELBO, Trace_ELBO, TraceGraph_ELBO, TraceMeanField_ELBO

from helmholtz.inference.amortised import Amortisation, requires_encodable_latents, train_amortised
from helmholtz.inference.fit import Fit
from helmholtz.inference.registry import register_backend
from helmholtz.inference.training import AMORTISED_TRAINING, AmortisedOptions, check_num_particles, is_real


def make_objective(amortisation: Amortisation, iwae: bool, analytic_kl: bool, num_particles: int, beta: float):
    num_particles = check_num_particles("vae", num_particles)
    if iwae:
        if analytic_kl:
            raise ValueError(
                "vae: iwae and analytic_kl exclude each other (the importance-weighted bound has no KL term)"
            )
        if num_particles < 2:
            raise ValueError("vae: iwae needs num_particles >= 2 (K of the bound; K = 1 is the ELBO)")
        if beta != 1:
            raise ValueError(
                "vae: beta != 1 would temper the importance weights, and the result bounds nothing; use beta with iwae=False"
            )
        if not amortisation.reparameterised:
            raise ValueError(
                "vae: iwae needs reparameterised (real-valued) latents; for discrete latents use method='rws'"
            )
        # Renyi's bound at alpha = 0 is the IWAE bound, formed per data point.
        return RenyiELBO(alpha=0.0, num_particles=num_particles)
    if not amortisation.reparameterised:
        return TraceGraph_ELBO(num_particles=num_particles)
    if analytic_kl:
        return TraceMeanField_ELBO(num_particles=num_particles)
    return Trace_ELBO(num_particles=num_particles)


@register_backend(
    "vae",
    "amortised VI: encoder network; ELBO, IWAE or analytic-KL bound; beta; minibatches; autoencoder",
    requires_encodable_latents,
    options=AmortisedOptions.names(),
)
def fit_vae(
    model,
    x,
    key,
    *,
    beta: float = 1.0,
    num_particles: int = 1,
    iwae: bool = False,
    analytic_kl: bool = False,
    deterministic_encoder: bool = False,
    **training,
) -> Fit:
    """Fit an encoder q(z_i | x_i) and point estimates of the model's parameters.

    The shared training options are those of :class:`~helmholtz.inference.AmortisedOptions`
    (``batch_size``, ``encoder_hidden``, ``validation``) and of
    :class:`~helmholtz.inference.TrainingOptions` (``num_steps``, ``learning_rate``,
    ``optimizer``, ``check_every``, ``patience``, ``tolerance``, ``resume``,
    ``progress_bar``), documented once in the user guide's "Options"; here ``num_steps``
    defaults to 10,000 and ``learning_rate`` to 1e-3, and ``resume`` takes a vae Fit (or
    its file) of the same model and encoder.

    Args:
        model: a model with local latents an encoder can propose.
        x: the observations.
        key: a JAX PRNG key.
        beta: the weight of each point's KL term (beta-VAE, Higgins et al., 2017): >1
            pulls q(z | x) towards the prior, <1 lets it follow the data.
        num_particles: Monte Carlo draws of z per point and step (K of the IWAE bound).
        iwae: train on the importance-weighted bound (needs num_particles >= 2).
        analytic_kl: use the closed-form KL(q || prior) where NumPyro has one (Gaussian
            prior), a Monte Carlo estimate elsewhere.
        deterministic_encoder: a plain autoencoder: z_i = encoder(x_i), trained on
            log p(x_i | z_i) alone (no KL term, no prior on z; ``beta`` is ignored).
        **training: the shared training options (above).

    Returns:
        The Fit: its ``encode(x)`` gives q(z | x) per local latent, ``decode(z)`` the mean
        of p(x | z), ``log_marginal(x, num_particles=K)`` an importance-sampled log p(x_i),
        and ``history["loss"]`` the negative bound at every step.
    """
    training = AMORTISED_TRAINING.replace("vae", **training)
    check_num_particles("vae", num_particles)
    if not (is_real(beta) and np.isfinite(beta) and beta > 0):
        raise ValueError(f"vae: beta must be a finite number > 0, got {beta!r}")
    beta = 0.0 if deterministic_encoder else float(beta)
    encoder_hidden = training.encoder_hidden
    config = {"encoder_hidden": encoder_hidden, "beta": beta, "deterministic": bool(deterministic_encoder)}
    key_build, key_train = jax.random.split(key)
    amortisation = Amortisation.build(model, x, key_build, encoder_hidden, beta, deterministic_encoder)
    objective = make_objective(amortisation, iwae, analytic_kl, num_particles, beta)
    return train_amortised(
        "vae",
        model,
        x,
        key_train,
        amortisation,
        objective,
        config=config,
        training=training,
        num_particles=None if deterministic_encoder else num_particles,
        options=dict(
            beta=beta,
            num_particles=num_particles,
            iwae=iwae,
            analytic_kl=analytic_kl,
            deterministic_encoder=deterministic_encoder,
            encoder_hidden=encoder_hidden,
        ),
    )
