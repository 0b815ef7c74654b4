"""Comparing posterior draws with reference draws, parameter by parameter."""

from __future__ import annotations

import numpy as np


def flatten_draws(draws: dict, names=None) -> tuple[list[str], np.ndarray]:
    """Each scalar component of each site as one column, labelled e.g. ``theta[3]``.

    Args:
        draws: arrays by site name, each shape ``(num_draws, *site_shape)``.
        names: the sites to take, in order (default: all, sorted).

    Returns:
        ``(labels, matrix)``: a label per column, and the draws, shape ``(num_draws, num_columns)``.
    """
    columns, labels = [], []
    for site in names if names is not None else sorted(draws):
        value = np.asarray(draws[site], dtype=float)
        flat = value.reshape(value.shape[0], -1)
        columns.append(flat)
        if value.ndim == 1:
            labels.append(site)
        else:
            labels += [f"{site}[{','.join(map(str, i))}]" for i in np.ndindex(value.shape[1:])]
    return labels, np.concatenate(columns, axis=1)


def compare_to_reference(draws: dict, reference: dict) -> dict[str, dict[str, float]]:
    """Per scalar parameter: the mean's error and the sd's ratio, in reference units.

    Args:
        draws: our draws by site name, each shape ``(num_draws, *site_shape)``; it must hold
            every site of ``reference``.
        reference: the reference draws by site name, each shape ``(num_reference_draws, *site_shape)``.

    Returns:
        ``{label: {"mean_error": (mean - ref_mean) / ref_sd, "sd_ratio": sd / ref_sd}}`` for
        every scalar component of every site of ``reference`` (labels as :func:`flatten_draws`).
    """
    names = sorted(reference)
    labels, ours = flatten_draws(draws, names)
    _, theirs = flatten_draws(reference, names)
    ref_sd = theirs.std(0)
    return {
        label: {
            "mean_error": float((ours[:, i].mean() - theirs[:, i].mean()) / ref_sd[i]),
            "sd_ratio": float(ours[:, i].std() / ref_sd[i]),
        }
        for i, label in enumerate(labels)
    }
