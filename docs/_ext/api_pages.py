"""One API page per public object, under the shortest public name that exports it.

``helmholtz.Fit`` is also ``helmholtz.inference.Fit``, and ``helmholtz.models`` re-exports
the classes of ``helmholtz.models.markov``: documenting each name would describe the same
object twice (a Sphinx warning, and two pages to keep apart). Each package page lists
only the names of its ``__all__`` that no shallower package in the reference exports.
"""

import importlib
import inspect
import re
from pathlib import Path


def packages(api_rst: Path) -> list[str]:
    """The packages that ``api.rst``'s autosummary lists."""
    return re.findall(r"^\s+(helmholtz[\w.]*)\s*$", api_rst.read_text(), flags=re.MULTILINE)


def documented_elsewhere(names: list[str]) -> dict[str, dict[str, str]]:
    """For each package, {public name: the shallower package that documents its object}."""
    owner, elsewhere = {}, {}
    for package in sorted(names, key=lambda name: (name.count("."), name)):
        module = importlib.import_module(package)
        elsewhere[package] = {}
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.ismodule(value):
                continue
            if id(value) in owner:
                elsewhere[package][name] = owner[id(value)]
            else:
                owner[id(value)] = package
    return elsewhere
