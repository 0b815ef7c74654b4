"""Sphinx configuration: the user guide, the API reference and the executed gallery.

Two modes, chosen by the variable the gallery scripts already read:
``HELMHOLTZ_QUICK=1`` runs every example with small sizes (CI, ``make test``), and turns
Python warnings raised by an example into errors, as the test suite does; unset, the
examples run at full size for the published site (``make gallery``).
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import api_pages  # noqa: E402  (docs/_ext, put on the path above)

QUICK = os.environ.get("HELMHOLTZ_QUICK") == "1"
# Examples run one at a time unless HELMHOLTZ_GALLERY_JOBS says otherwise (joblib
# processes); the test suite runs the build beside its other tests instead.
JOBS = int(os.environ.get("HELMHOLTZ_GALLERY_JOBS", "1"))
if JOBS > 1:
    # The worker processes import the reset hook by name; they see PYTHONPATH, not sys.path.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DOCS / "_ext"), os.environ.get("PYTHONPATH")]))

project = "helmholtz"
author = "the helmholtz developers"
copyright = "the helmholtz developers"
release = version = "0.1.0"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",  # the docstrings are Google style (Args:, Attributes:)
    "sphinx_gallery.gen_gallery",
    "backend_table",
]

exclude_patterns = ["_build", "**/*.ipynb", "**/*.md5", "**/*.py", "**/*.zip", "**/*.pickle"]
templates_path = ["_templates"]

# -- API reference ----------------------------------------------------------------------
autosummary_generate = True
autosummary_context = {"elsewhere": api_pages.documented_elsewhere(api_pages.packages(DOCS / "api.rst"))}
autosummary_ignore_module_all = False  # a package's public names are its __all__...
autosummary_imported_members = True  # ...which it re-exports from private modules
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# The models are frozen dataclasses whose fields autodoc would also list as attributes.
napoleon_use_ivar = True
# The back ends document their options under "Options:", simulators their fixed
# settings under "Fixed design:".
napoleon_custom_sections = [("Options", "params_style"), ("Fixed design", "params_style")]

# -- the gallery ------------------------------------------------------------------------
GALLERY = "../gallery"
SECTIONS = (
    "latent_variable_models",
    "amortised_inference",
    "hierarchical_models",
    "time_series",
    "perception",
    "simulators_and_recordings",
    "declaring_your_own_model",
    "*",
    "diagnostics",
)
sphinx_gallery_conf = {
    "examples_dirs": GALLERY,
    "gallery_dirs": "auto_examples",
    # Names in the examples' code link to the API reference, whose pages list the
    # examples that use them.
    "doc_module": ("helmholtz",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"helmholtz": None},
    # The sections in the order a reader meets them; a folder not listed lands before
    # diagnostics, so a new section shows up without editing this file.
    "subsection_order": [name if name == "*" else f"{GALLERY}/{name}" for name in SECTIONS],
    # Every build executes every example: the MD5 cache would otherwise keep the figures
    # of the other mode (quick and full share auto_examples/).
    "run_stale_examples": True,
    # Run them all and list every failure at the end, then fail the build (an
    # ExtensionError; only_warn_on_example_error would downgrade it to a warning).
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "reset_modules": ("matplotlib", "example_reset.clear_jax_caches") + (("example_reset.strict",) if QUICK else ()),
    "reset_modules_order": "both",
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "min_reported_time": 1,
    "parallel": JOBS,
}

# -- HTML -------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "helmholtz"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sg_download_links", "sg_launcher_links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "user_guide": []}
html_show_sourcelink = False
# The figures are drawn on white; an empty default mode also makes the theme log a
# console error on a visitor's first page.
html_context = {"default_mode": "light"}
# Without an icon, browsers ask for /favicon.ico and log its 404 as a console error.
html_favicon = "_static/favicon.svg"
