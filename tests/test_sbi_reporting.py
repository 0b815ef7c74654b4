"""What the simulation-based back ends tell a person (issue #19, item 5): a progress bar
per training round with the validation loss, the seconds spent simulating and training,
excluded simulations named in a warning, and sbi's own warnings summarised once in words.

Ground truth for the summaries: sbi's own messages, raised by sbi's own functions.
"""

import logging
import warnings

import numpy as np
import pytest
import torch

import helmholtz as hz
from helmholtz.inference._sbi_reporting import SbiWarningSummary, explained, summarised_warnings
from helmholtz.models.simulators import GaussianLinear

OBSERVATION = np.array([0.3, -0.2], np.float32)


def test_sbis_outlier_warning_is_put_in_words():
    from sbi.utils.sbiutils import warn_if_invalid_for_zscoring

    x = torch.randn(1000, 3, generator=torch.Generator().manual_seed(0))
    x[0, 2] = 1e6  # one extreme value in dimension 2, far beyond 10 IQR
    with pytest.warns(SbiWarningSummary, match=r"heavy-tailed in dimension\(s\) \[2\]") as caught:
        with summarised_warnings("npe", "training round 1"):
            warn_if_invalid_for_zscoring(x)
    assert len(caught) == 1 and "z-scored regardless" in str(caught[0].message)


def test_repeated_warnings_and_sbis_logged_ones_come_once_with_their_count():
    with pytest.warns(SbiWarningSummary) as caught:
        with summarised_warnings("npe", "sampling"):
            for _ in range(3):
                warnings.warn("a library's advice", UserWarning, stacklevel=1)
            logging.getLogger("sbi.samplers.rejection").warning(
                "Only 0.200% proposal samples were accepted. It may take a long time"
            )
    (summary,) = caught
    text = str(summary.message)
    assert text.startswith("npe: sbi warned while sampling")
    assert "a library's advice (3 times)" in text
    assert "only 0.200% of the estimator's draws fell inside the prior's support" in text


def test_an_unconverged_training_says_which_option_to_raise():
    with pytest.warns(SbiWarningSummary, match=r"stopped at max_num_epochs=2, .* raise max_num_epochs"):
        hz.fit(GaussianLinear(dim=2), OBSERVATION, method="npe", key=0, num_simulations=200, max_num_epochs=2)


def test_explained_leaves_unknown_messages_as_they_are():
    assert explained("something  new\n  from sbi") == "something new from sbi"


def test_a_fit_shows_training_progress_and_keeps_its_timings(capsys):
    fit = hz.fit(GaussianLinear(dim=2), OBSERVATION, method="npe", key=0, num_simulations=500, num_rounds=2)
    err = capsys.readouterr().err
    for round_number in (1, 2):
        assert f"npe round {round_number}: training" in err
    assert "validation_loss=" in err and "epoch" in err
    seconds_simulating = fit.diagnostics["seconds_simulating"]
    seconds_training = fit.diagnostics["seconds_training"]
    assert seconds_simulating.shape == seconds_training.shape == (2,)
    assert np.all(seconds_simulating > 0) and np.all(seconds_training > 0)
    # Training a network for at least one epoch costs more than simulating 250 Gaussians.
    assert seconds_training.sum() > seconds_simulating.sum()
    assert fit.diagnostics["epochs"].sum() > 0
