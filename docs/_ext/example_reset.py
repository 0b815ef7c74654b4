"""sphinx-gallery ``reset_modules`` hooks, called before and after each example
(``reset_modules_order = "both"``); every example runs in the one Sphinx process.

``clear_jax_caches``: JAX keeps every program it compiled, and each holds memory
mappings of its machine code (NUTS: about 500 per chain per fit, which recompiles its
loop). The full build crossed the kernel's limit of 65,530 mappings part-way through the
gallery ("LLVM compilation error: Cannot allocate memory", then a crash), so each
example starts with the caches empty.

``strict`` (quick mode) holds the examples to the test suite's standard: a Python warning
raised while an example runs is an error, except those pyproject.toml's pytest section
ignores (the same list, read from there, so the two never drift apart). It installs the
filters before each example and restores Sphinx's own after it, so Sphinx's and the
theme's warnings stay ordinary warnings (``-W`` judges those).
"""

import importlib
import tomllib
import warnings
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
_saved: list[warnings.catch_warnings] = []


def _category(name: str) -> type[Warning]:
    if not name:
        return Warning
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module or "builtins"), attribute)


def pytest_filters() -> list[tuple]:
    """pyproject.toml's ``filterwarnings`` as (action, message, category, module, lineno)."""
    with PYPROJECT.open("rb") as file:
        entries = tomllib.load(file)["tool"]["pytest"]["ini_options"]["filterwarnings"]
    filters = []
    for entry in entries:
        action, message, category, module, lineno = (entry.split(":", 4) + [""] * 4)[:5]
        filters.append((action, message, _category(category), module, int(lineno or 0)))
    return filters


def strict(gallery_conf, fname, when):
    if when == "before":
        context = warnings.catch_warnings()
        context.__enter__()
        _saved.append(context)
        # As in pytest, a later entry takes precedence: filterwarnings prepends.
        for action, message, category, module, lineno in pytest_filters():
            warnings.filterwarnings(action, message, category, module, lineno)
    elif _saved:
        _saved.pop().__exit__(None, None, None)


def clear_jax_caches(gallery_conf, fname, when):
    if when == "before":
        import jax

        jax.clear_caches()
