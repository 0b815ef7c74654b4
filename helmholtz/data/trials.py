"""Trial tables of psychophysics experiments: CSV files with named columns, validated.

``load_trials(path, columns)`` reads any such table; ``load_speed_trials`` the layout of
Stocker & Simoncelli (2006) (``../shared/reference/stocker_simoncelli_2006/``), checked
column by column, so that a malformed file fails when it is read rather than as a NaN
inside a fit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from helmholtz.utils import reference_dir

SPEED_COLUMNS = ("ref_speed_deg_s", "ref_contrast", "test_speed_deg_s", "test_contrast", "test_seen_faster")


def load_trials(path: str | os.PathLike, columns) -> pd.DataFrame:
    """A CSV trial table with at least ``columns``, all numeric and finite in those columns.

    Args:
        path: the CSV file, one row per trial.
        columns: the columns it must have.

    Returns:
        The table, a pandas DataFrame with ``columns`` converted to numbers.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is not a readable CSV table, lacks a column, has no trials, or
            has a value that is not a finite number in one of ``columns``.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such trial table") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable CSV trial table ({error})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; the table has {list(table.columns)}")
    if table.empty:
        raise ValueError(f"{path}: the table has no trials")
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(float))
        if bad.any():
            raise ValueError(
                f"{path}: column {column!r} must be numeric and finite; "
                f"row {int(np.argmax(bad))} is {table[column].iloc[int(np.argmax(bad))]!r}"
            )
        table[column] = values
    return table


def load_speed_trials(path: str | os.PathLike, *, drop_negative_speeds: bool = False) -> pd.DataFrame:
    """2AFC speed-discrimination trials: reference and test speed (deg/s, >= 0) and contrast
    (in (0, 1]), and the response ``test_seen_faster`` (0 or 1), one row per trial.

    Negative speeds are an error unless ``drop_negative_speeds``: then those trials are
    removed (a staircase can step below zero; the observer models speed magnitudes).

    Args:
        path: the CSV file, one row per trial.
        drop_negative_speeds: drop trials with a negative speed rather than refuse them.

    Returns:
        The table, a pandas DataFrame.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the table is not as :func:`load_trials` needs, or holds a negative
            speed, a contrast outside (0, 1] or a response other than 0 or 1.
    """
    table = load_trials(path, SPEED_COLUMNS)
    if drop_negative_speeds:
        table = table[(table["ref_speed_deg_s"] >= 0) & (table["test_speed_deg_s"] >= 0)].reset_index(drop=True)
    for column in ("ref_speed_deg_s", "test_speed_deg_s"):
        if (table[column] < 0).any():
            raise ValueError(
                f"{path}: speeds must be >= 0 (a magnitude); column {column!r} has {int((table[column] < 0).sum())} negative values"
            )
    for column in ("ref_contrast", "test_contrast"):
        outside = (table[column] <= 0) | (table[column] > 1)
        if outside.any():
            raise ValueError(
                f"{path}: contrasts must lie in (0, 1]; column {column!r} has {table[column][outside].iloc[0]!r}"
            )
    if not table["test_seen_faster"].isin((0, 1)).all():
        odd = table["test_seen_faster"][~table["test_seen_faster"].isin((0, 1))].iloc[0]
        raise ValueError(f"{path}: responses (test_seen_faster) must be 0 or 1, found {odd!r}")
    return table


def stocker_simoncelli_subject(subject: int) -> pd.DataFrame:
    """The trials of one of the five observers of Stocker & Simoncelli (2006), read from the
    shared reference folder (not shipped with the package). One trial of subject 2, whose
    staircase set the test to -0.0075 deg/s, is dropped: 5,759 of its 5,760 remain.

    Args:
        subject: 1 to 5.

    Returns:
        The trials, a pandas DataFrame as :func:`load_speed_trials` returns it.

    Raises:
        ValueError: ``subject`` is not 1 to 5.
        FileNotFoundError: the reference file is missing.
    """
    if subject not in range(1, 6):
        raise ValueError(f"Stocker & Simoncelli (2006) had subjects 1 to 5, got {subject!r}")
    return load_speed_trials(
        reference_dir() / "stocker_simoncelli_2006" / f"subject{subject}.csv", drop_negative_speeds=True
    )
