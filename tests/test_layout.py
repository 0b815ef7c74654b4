"""The folders show the layers: imports point down app -> diagnostics -> inference ->
perception -> models -> priors -> utils, with data beside them for the app
(``../shared/DESIGN.md``, "Layout and layers"). Checked on the source, statically."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "helmholtz"

# What each layer may not import: everything above it, and data for the model layers.
FORBIDDEN = {
    "utils": ("helmholtz.",),
    "priors": (
        "helmholtz.models",
        "helmholtz.perception",
        "helmholtz.inference",
        "helmholtz.diagnostics",
        "helmholtz.data",
        "helmholtz.app",
    ),
    "models": (
        "helmholtz.perception",
        "helmholtz.inference",
        "helmholtz.diagnostics",
        "helmholtz.data",
        "helmholtz.app",
    ),
    "perception": ("helmholtz.inference", "helmholtz.diagnostics", "helmholtz.app"),
    "inference": ("helmholtz.diagnostics", "helmholtz.app"),
    "diagnostics": ("helmholtz.app",),
    "data": ("helmholtz.app",),
}


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _layer_files(layer: str) -> list[Path]:
    single = PACKAGE / f"{layer}.py"
    return [single] if single.exists() else sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_down_the_layers(layer):
    files = _layer_files(layer)
    assert files, f"no source found for the layer {layer!r}"
    offending = {
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in files
        for name in _imported_modules(path)
        if name.startswith(FORBIDDEN[layer])
        and name != "helmholtz._serialization"
        and not (layer == "utils" and name == "helmholtz.utils")
    }
    assert not offending, sorted(offending)
