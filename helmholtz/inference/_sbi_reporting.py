"""What the simulation-based back ends tell a person while sbi trains and samples: a
progress bar per training round (the epoch and the best validation loss, which sbi shows
only as a bare epoch count), and sbi's and torch's warnings summarised once, in words,
instead of one line per call.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import re
import warnings

from tqdm.auto import tqdm


def with_epoch_progress(trainer_class: type) -> type:
    """``trainer_class`` (sbi's NPE, NLE or NRE) reporting each epoch to :attr:`epoch_bar`.

    sbi calls ``_summarize_epoch`` once per epoch, after the validation loss is known; the
    subclass passes that on to the bar it is given for the round. It is sbi's own hook, so
    the training loop itself is sbi's, unchanged.

    Args:
        trainer_class: one of sbi's trainer classes.

    Returns:
        A subclass whose ``epoch_bar`` (a tqdm bar or None) is updated every epoch.
    """

    class WithEpochProgress(trainer_class):
        epoch_bar = None

        def _summarize_epoch(self, train_loss, val_loss, *args, **kwargs):
            super()._summarize_epoch(train_loss, val_loss, *args, **kwargs)
            if self.epoch_bar is not None:
                best = min(float(val_loss), float(getattr(self, "_best_val_loss", float("inf"))))
                self.epoch_bar.update(1)
                self.epoch_bar.set_postfix(validation_loss=f"{float(val_loss):.4g}", best=f"{best:.4g}", refresh=False)

    WithEpochProgress.__name__ = WithEpochProgress.__qualname__ = f"{trainer_class.__name__}WithEpochProgress"
    return WithEpochProgress


@contextlib.contextmanager
def epoch_progress(trainer, description: str, enabled: bool):
    """A tqdm bar of the epochs trained inside the block, given to a trainer made by
    :func:`with_epoch_progress`.

    Args:
        trainer: the trainer.
        description: the bar's label, e.g. ``"npe round 1: training"``.
        enabled: False shows nothing.

    Yields:
        The bar.
    """
    with tqdm(desc=description, unit="epoch", disable=not enabled) as bar:
        trainer.epoch_bar = bar
        try:
            yield bar
        finally:
            trainer.epoch_bar = None


class SbiWarningSummary(UserWarning):
    """The one warning that sums up what sbi and torch warned of during a step of a fit."""


# sbi's messages that a reader of a fit needs put in other words: (pattern, explanation).
_EXPLANATIONS = (
    (
        re.compile(r"Data has extreme outliers in dimension\(s\) (\[[^\]]*\])"),
        "the simulated summary statistics are heavy-tailed in dimension(s) {0} (silent against spiking "
        "simulations, say); the network trains on them z-scored regardless, and the predictive checks say how well",
    ),
    (
        re.compile(r"Maximum number of epochs `max_num_epochs=(\d+)` reached"),
        "training stopped at max_num_epochs={0}, before the validation loss stopped improving: raise "
        "max_num_epochs for a converged estimator",
    ),
    (
        re.compile(r"Only ([0-9.]+%) proposal samples were accepted"),
        "only {0} of the estimator's draws fell inside the prior's support and were kept: sampling is slow, "
        "and the estimator puts most of its mass outside the prior (more simulations, or a zuko estimator, which "
        "trains in the prior's unconstrained space, help)",
    ),
)


def explained(message: str) -> str:
    """``message`` (one of sbi's warnings) in the words of a fit's report, or as it is.

    Args:
        message: the warning's text.

    Returns:
        The explanation of a known message, else the message with its whitespace collapsed.
    """
    message = " ".join(message.split())
    for pattern, explanation in _EXPLANATIONS:
        if (match := pattern.search(message)) is not None:
            return explanation.format(*match.groups())
    return message


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def summarised_warnings(method: str, what: str):
    """Collect the warnings raised and the warnings sbi logs inside the block, and warn once
    at its end (a :class:`SbiWarningSummary`), a line per distinct message, in words where
    :func:`explained` knows it, with how often it came.

    The block holds only library calls that helmholtz makes (sbi's training and sampling,
    torch under it), so nothing caught is about the user's code; helmholtz's own warnings
    are raised outside such blocks.

    Args:
        method: the back end's name, for the summary.
        what: what the block did, e.g. ``"training round 2"``.

    Yields:
        None.
    """
    counts: collections.Counter[str] = collections.Counter()
    # sbi reports some problems through logging (a low acceptance rate), others as warnings.
    logger, handler = logging.getLogger("sbi"), _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate
            for message in [*(str(warning.message) for warning in caught), *handler.messages]:
                counts[explained(message)] += 1
    if counts:
        lines = [
            f"  {message[:300]}{'...' if len(message) > 300 else ''}" + (f" ({count} times)" if count > 1 else "")
            for message, count in counts.most_common()
        ]
        warnings.warn(
            f"{method}: sbi warned while {what} (summarised; helmholtz made these calls):\n" + "\n".join(lines),
            SbiWarningSummary,
            stacklevel=3,
        )
