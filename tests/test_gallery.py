"""The gallery: every example opens as the site expects, and the quick-mode site build
(which executes each example once, through sphinx-gallery) gives each one a page with
its figures and a thumbnail in the gallery's grid."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

import helmholtz as hz
from helmholtz.app.cli import main

GALLERY = Path(__file__).resolve().parents[1] / "gallery"
SCRIPTS = sorted(GALLERY.rglob("plot_*.py"))
IDS = [str(path.relative_to(GALLERY)) for path in SCRIPTS]


def test_gallery_has_scripts():
    assert SCRIPTS, f"no plot_*.py examples found under {GALLERY}"


def test_every_gallery_folder_has_a_readme():
    """sphinx-gallery needs a README.txt in the root and in every sub-folder with scripts."""
    assert (GALLERY / "README.txt").is_file(), "gallery/README.txt is missing"
    folders = {script.parent for script in SCRIPTS}
    missing = sorted(str(folder.relative_to(GALLERY)) for folder in folders if not (folder / "README.txt").is_file())
    assert not missing, f"gallery folders without a README.txt: {missing}"


@pytest.mark.parametrize("script", SCRIPTS, ids=IDS)
def test_example_opens_with_its_question_model_and_back_end(script):
    """The docstring is the page's title and opening: a question, the model it declares
    (a reference into the API) and, where the script fits, the back end by its name."""
    source = script.read_text()
    docstring = ast.get_docstring(ast.parse(source)) or ""
    title, underline, *body = docstring.splitlines() or [""]
    assert set(underline) == {"="} and len(underline) >= len(title), f"{script.name}: no '=' underlined title"
    opening = "\n".join(body)
    assert "?" in opening, f"{script.name}: the opening asks no question"
    assert re.search(r":(class|func|mod):`~?helmholtz\.", opening), (
        f"{script.name}: the opening names no helmholtz model"
    )
    if "hz.fit(" in source:
        named = set(re.findall(r'``(?:method=")?([\w-]+)"?``', opening))
        assert named & set(hz.backends()), f'{script.name} fits, but its opening names no back end (``method="..."``)'


def _placeholder_thumbnail(tmp_path: Path) -> bytes:
    """The thumbnail sphinx-gallery makes for an example that draws nothing."""
    from sphinx_gallery import glr_path_static
    from sphinx_gallery.utils import scale_image

    out = tmp_path / "placeholder.png"
    # 400 x 280: sphinx-gallery's default thumbnail_size, which docs/conf.py keeps.
    scale_image(str(Path(glr_path_static()) / "no_image.png"), str(out), 400, 280)
    return out.read_bytes()


def example_problems(site: Path, script: Path, placeholder: bytes) -> list[str]:
    """What the built ``site`` lacks for ``script``: its page, a figure, a real thumbnail."""
    section = site / "auto_examples" / script.parent.name
    page = section / f"{script.stem}.html"
    if not page.is_file():
        return [f"no page {page.relative_to(site)}"]
    problems = []
    if not re.search(rf'<img[^>]+src="[^"]*sphx_glr_{script.stem}_\d{{3}}(_\d+)?\.png"', page.read_text()):
        problems.append("no figure on its page")
    thumbnails = re.findall(
        rf'<img[^>]+src="([^"]*sphx_glr_{script.stem}_thumb(?:_\d+)?\.png)"', (section / "index.html").read_text()
    )
    if not thumbnails:
        problems.append("no thumbnail in its section's grid")
    elif (section / thumbnails[0]).read_bytes() == placeholder:
        problems.append("its thumbnail is sphinx-gallery's 'no image' placeholder")
    return problems


def test_every_example_has_a_page_with_figures_and_a_thumbnail(quick_site, tmp_path):
    placeholder = _placeholder_thumbnail(tmp_path)
    problems = {
        name: found
        for name, script in zip(IDS, SCRIPTS)
        if (found := example_problems(quick_site, script, placeholder))
    }
    assert not problems, f"examples missing from the built site: {problems}"


def test_the_page_check_catches_an_example_without_figures(tmp_path):
    """example_problems on a hand-made site: one example drew, one did not."""
    placeholder = _placeholder_thumbnail(tmp_path)
    section = tmp_path / "site" / "auto_examples" / "demo"
    (section / "_images").mkdir(parents=True)
    plt.plot([0, 1])
    plt.savefig(section / "_images" / "sphx_glr_plot_drawn_thumb.png")
    (section / "_images" / "sphx_glr_plot_blank_thumb.png").write_bytes(placeholder)
    (section / "plot_drawn.html").write_text(
        '<img src="_images/sphx_glr_plot_drawn_001.png" class="sphx-glr-single-img"/>'
    )
    (section / "plot_blank.html").write_text("<p>no figure</p>")
    (section / "index.html").write_text(
        '<img alt="" src="_images/sphx_glr_plot_drawn_thumb.png" /><img alt="" src="_images/sphx_glr_plot_blank_thumb.png" />'
    )
    site = tmp_path / "site"
    assert example_problems(site, Path("demo/plot_drawn.py"), placeholder) == []
    assert example_problems(site, Path("demo/plot_blank.py"), placeholder) == [
        "no figure on its page",
        "its thumbnail is sphinx-gallery's 'no image' placeholder",
    ]
    assert example_problems(site, Path("demo/plot_missing.py"), placeholder) == [
        "no page auto_examples/demo/plot_missing.html"
    ]


def test_every_example_ran_in_the_build(quick_site):
    """sphinx-gallery's timing table lists each executed example once."""
    table = (quick_site / "sg_execution_times.html").read_text()
    missing = [name for name in IDS if f">../gallery/{name}<" not in table]
    assert not missing, f"examples the build did not execute: {missing}"


def test_the_build_leaves_nothing_in_the_gallery_sources(quick_site):
    """Examples run with gallery/<section>/ as the working directory; whatever they or
    the libraries they call write there (sbi's TensorBoard logs were) would be committed."""
    sources = [path for path in GALLERY.rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    strays = [
        str(path.relative_to(GALLERY)) for path in sources if not (path.suffix == ".py" or path.name == "README.txt")
    ]
    assert not strays, f"files written into gallery/ by the build: {strays}"


def test_cli_gallery_prints_the_built_site(quick_site, capsys):
    assert main(["gallery", "--quick", "--no-open"]) == 0
    assert capsys.readouterr().out.strip() == f"gallery: {quick_site / 'index.html'}"
