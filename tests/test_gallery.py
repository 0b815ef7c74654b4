"""The gallery's examples run, each in quick mode, and each draws at least one figure."""

from __future__ import annotations

import runpy
from pathlib import Path

import matplotlib.pyplot as plt  # conftest.py has chosen the Agg back end
import pytest

GALLERY = Path(__file__).resolve().parents[1] / "gallery"
SCRIPTS = sorted(GALLERY.rglob("plot_*.py"))


def test_gallery_has_scripts():
    assert SCRIPTS, f"no plot_*.py examples found under {GALLERY}"


def test_every_gallery_folder_has_a_readme():
    """sphinx-gallery needs a README.txt in the root and in every sub-folder with scripts."""
    assert (GALLERY / "README.txt").is_file(), "gallery/README.txt is missing"
    folders = {script.parent for script in SCRIPTS}
    missing = sorted(str(folder.relative_to(GALLERY)) for folder in folders if not (folder / "README.txt").is_file())
    assert not missing, f"gallery folders without a README.txt: {missing}"


def _drawn_axes(figure):
    """The axes of ``figure`` that show something (lines, points, images, patches, text)."""
    return [
        axes
        for axes in figure.axes
        if axes.get_visible()
        and (axes.lines or axes.collections or axes.images or axes.patches or axes.texts or axes.tables)
    ]


@pytest.mark.parametrize("script", SCRIPTS, ids=[str(path.relative_to(GALLERY)) for path in SCRIPTS])
def test_gallery_script_runs_and_draws(script, monkeypatch):
    monkeypatch.setenv("HELMHOLTZ_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(script.parent)
    # plt.show() is a no-op under Agg; replacing it keeps the figures open for inspection.
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    plt.close("all")
    try:
        runpy.run_path(str(script), run_name="__main__")
        figures = [plt.figure(number) for number in plt.get_fignums()]
        assert figures, f"{script.name} created no matplotlib figure"
        drawn = [figure for figure in figures if _drawn_axes(figure)]
        assert drawn, f"{script.name}: none of its {len(figures)} figures has axes with drawn artists"
    finally:
        plt.close("all")
