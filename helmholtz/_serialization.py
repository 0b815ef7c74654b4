"""A safe on-disk format: JSON for structure, ``.npy`` (no pickle) for arrays, in one zip.

Only classes marked :func:`serializable` (the models and priors of this package, and any
a user registers) and the distributions and transforms of ``numpyro.distributions`` (by
their constructor arguments) can be rebuilt on load, so opening a file never runs
arbitrary code the way unpickling does. Files are written to a temporary name and renamed into place, so a
crash mid-write leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_REGISTRY: dict[str, type] = {}
FORMAT_NAME = "helmholtz"
FORMAT_VERSION = 1
_MANIFEST = "helmholtz.json"


def serializable(cls: type) -> type:
    """Allow instances of the dataclass ``cls`` to be saved and rebuilt by name.

    A user's own model class needs this decorator to be saved; loading a file that names
    the class then needs the module that defines it imported first.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass to be serializable (decorate it with @dataclass first)")
    _REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def register_alias(old_name: str, rebuild) -> None:
    """Rebuild entries that an earlier release saved under ``old_name`` (a class that has
    since moved or become a function) with ``rebuild(**fields)``."""
    _REGISTRY[old_name] = rebuild


# -- NumPyro distributions and transforms, by their constructor arguments ------------------
# A distribution is saved as its class name in ``numpyro.distributions`` and the arguments
# its constructor takes, read from the instance's own fields (NumPyro's pytree fields: the
# parametrisation it stores, e.g. MultivariateNormal's scale_tril, not the lazy covariance).
# Only names found in that namespace are rebuilt, so a file cannot name arbitrary code.
_ATTRIBUTE_OF_ARGUMENT = {"base_distribution": "base_dist"}


def _constructor_arguments(value) -> dict:
    import numpyro.distributions as dist

    cls = type(value)
    if isinstance(value, dist.Distribution):
        stored = set(cls.gather_pytree_data_fields()) | set(cls.gather_pytree_aux_fields())
    else:
        stored = set(vars(value))
    arguments = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name in ("self", "validate_args") or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        attribute = _ATTRIBUTE_OF_ARGUMENT.get(name, name)
        if attribute in stored and attribute in vars(value):
            argument = vars(value)[attribute]
        elif isinstance(getattr(cls, attribute, None), property):
            argument = getattr(value, attribute)
        else:
            continue
        if argument is None:
            continue
        if isinstance(argument, dist.constraints.Constraint):
            if argument is not parameter.default:
                raise TypeError(
                    f"cannot save {cls.__name__}: its argument {name!r} is a constraint other than the default"
                )
            continue
        arguments[name] = argument
    return arguments


def _numpyro_class(node: dict):
    import numpyro.distributions as dist

    if "__distribution__" in node:
        name, namespace, base = node["__distribution__"], dist, dist.Distribution
    else:
        name, namespace, base = node["__transform__"], dist.transforms, dist.transforms.Transform
    cls = getattr(namespace, name, None)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f"the file names {name!r}, which is not a NumPyro distribution or transform")
    return cls


def _is_numpyro(value) -> str | None:
    """ "__distribution__" or "__transform__" for NumPyro objects (without importing NumPyro
    for files that hold none), else None."""
    module = type(value).__module__
    if not module.startswith("numpyro.distributions"):
        return None
    import numpyro.distributions as dist

    if isinstance(value, dist.Distribution):
        return "__distribution__"
    if isinstance(value, dist.transforms.Transform):
        return "__transform__"
    return None


class _Encoder:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def __call__(self, value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            name = f"{type(value).__module__}.{type(value).__qualname__}"
            if name not in _REGISTRY:
                raise TypeError(f"{name} is not marked @serializable and cannot be saved")
            fields = {f.name: self(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
            return {"__class__": name, "fields": fields}
        if (tag := _is_numpyro(value)) is not None:
            node = {tag: type(value).__name__}
            try:
                known = _numpyro_class(node) is type(value)
            except ValueError:
                known = False
            if not known:
                raise TypeError(
                    f"cannot save {type(value).__qualname__}: only classes exported by numpyro.distributions can"
                )
            node["arguments"] = self(_constructor_arguments(value))
            return node
        if hasattr(value, "__array__") and not isinstance(value, (int, float, bool, str)):
            array = np.asarray(value)
            key = f"a{len(self.arrays)}"
            self.arrays[key] = array
            return {"__array__": key}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError("only dictionaries with string keys can be saved")
            return {"__dict__": {k: self(v) for k, v in value.items()}}
        if isinstance(value, (list, tuple)):
            return {"__tuple__" if isinstance(value, tuple) else "__list__": [self(v) for v in value]}
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            return value.item()
        raise TypeError(f"cannot save a value of type {type(value).__name__}")


def _decode(node: Any, arrays: dict[str, np.ndarray]) -> Any:
    if not isinstance(node, dict):
        return node
    if "__array__" in node:
        return arrays[node["__array__"]]
    if "__dict__" in node:
        return {k: _decode(v, arrays) for k, v in node["__dict__"].items()}
    if "__tuple__" in node:
        return tuple(_decode(v, arrays) for v in node["__tuple__"])
    if "__list__" in node:
        return [_decode(v, arrays) for v in node["__list__"]]
    if "__distribution__" in node or "__transform__" in node:
        arguments = _decode(node["arguments"], arrays)
        if "batch_shape" in arguments:
            arguments["batch_shape"] = tuple(arguments["batch_shape"])
        return _numpyro_class(node)(**arguments)
    if "__class__" in node:
        cls = _REGISTRY.get(node["__class__"])
        if cls is None:
            raise ValueError(
                f"the file names the class {node['__class__']!r}, which is not a known "
                "helmholtz model or prior (import the module that defines it first)"
            )
        return cls(**{k: _decode(v, arrays) for k, v in node["fields"].items()})
    raise ValueError(f"unrecognised entry in the file: {sorted(node)}")


def write_bytes_atomically(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` through a temporary file renamed into place, so an
    interruption leaves either the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write(path: str | os.PathLike, kind: str, content: Any) -> Path:
    """Write ``content`` (nested dicts, dataclasses, arrays) atomically to ``path``."""
    path = Path(path)
    encoder = _Encoder()
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "kind": kind, "content": encoder(content)}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_MANIFEST, json.dumps(manifest))
            for key, array in encoder.arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, array, allow_pickle=False)
                archive.writestr(f"arrays/{key}.npy", buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def read(path: str | os.PathLike, kind: str) -> Any:
    """Read what :func:`write` wrote, checking that it is a helmholtz file of ``kind``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a helmholtz {kind} file (expected a zip archive written by .save())")
    with zipfile.ZipFile(path) as archive:
        try:
            manifest = json.loads(archive.read(_MANIFEST))
        except KeyError:
            raise ValueError(f"{path} is a zip archive but not a helmholtz file (no {_MANIFEST} inside)") from None
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: its {_MANIFEST} is not valid JSON ({error})") from None
        if manifest.get("format") != FORMAT_NAME or manifest.get("kind") != kind:
            raise ValueError(
                f"{path} holds {manifest.get('format')!r}/{manifest.get('kind')!r}, expected {FORMAT_NAME!r}/{kind!r}"
            )
        if manifest.get("version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{path} was written by a newer helmholtz (format {manifest['version']}); "
                f"this one reads format {FORMAT_VERSION} and older"
            )
        arrays = {}
        for name in archive.namelist():
            if name.startswith("arrays/") and name.endswith(".npy"):
                with archive.open(name) as stream:
                    arrays[name[len("arrays/") : -len(".npy")]] = np.load(io.BytesIO(stream.read()), allow_pickle=False)
    return _decode(manifest["content"], arrays)


def file_digest(path: str | os.PathLike) -> str:
    """A digest of a file's contents: manifest and arrays, not the zip's timestamps."""
    import hashlib

    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode())
            digest.update(archive.read(name))
    return digest.hexdigest()
