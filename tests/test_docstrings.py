"""One docstring format across the public API (issue #18, "Habits").

Every public callable that takes arguments, a name in a module's ``__all__`` or a public
method of such a class, documents them in a Google-style ``Args:`` section, the format
the API reference renders (sphinx.ext.napoleon).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import helmholtz


def _public_modules():
    yield helmholtz
    for info in pkgutil.walk_packages(helmholtz.__path__, "helmholtz."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        yield importlib.import_module(info.name)


def _takes_arguments(obj) -> bool:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return False
    return any(name not in ("self", "cls") for name in signature.parameters)


def _public_callables():
    seen = set()
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if obj is None or inspect.ismodule(obj) or not getattr(obj, "__module__", "").startswith("helmholtz"):
                continue
            candidates = [(f"{obj.__module__}.{name}", obj)]
            if inspect.isclass(obj):
                for attribute, value in vars(obj).items():
                    function = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
                    if not attribute.startswith("_") and inspect.isfunction(function):
                        candidates.append((f"{obj.__module__}.{name}.{attribute}", function))
            elif not callable(obj):
                continue
            for where, candidate in candidates:
                if id(candidate) not in seen:
                    seen.add(id(candidate))
                    yield where, candidate


def test_every_public_callable_documents_its_arguments():
    callables = [(where, obj) for where, obj in _public_callables() if _takes_arguments(obj)]
    # The walk must find the API, or the check below passes vacuously.
    assert len(callables) > 250
    undocumented = sorted(where for where, obj in callables if "Args:" not in (inspect.getdoc(obj) or ""))
    assert not undocumented, "public callables without an Args: section:\n" + "\n".join(undocumented)
