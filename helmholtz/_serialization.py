"""A safe on-disk format: JSON for structure, ``.npy`` (no pickle) for arrays, in one zip.

Only classes and functions marked :func:`serializable` (the models and priors of this
package, and any a user registers) and the distributions and transforms of
``numpyro.distributions`` (by their constructor arguments) can be rebuilt on load, so
opening a file never runs arbitrary code the way unpickling does: a function is saved by
its registered name (``module.qualname``), never by its code. Files are written to a
temporary name and renamed into place, so a crash mid-write leaves either the old file or
the new one, never half of one.

Reading is bounded: only the arrays the manifest names are read, each array's size is read
from its ``.npy`` header and checked before anything is decompressed, against
:func:`max_load_bytes` (1 GiB in all by default; ``HELMHOLTZ_MAX_LOAD_BYTES`` or the
``max_array_bytes`` argument of :func:`read` raise it for files you trust). Every file records
the helmholtz release that wrote it, which a mismatch between the saved fields of a class and
its fields today names.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import json
import os
import re
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_REGISTRY: dict[str, type] = {}
_FUNCTIONS: dict[str, Callable] = {}
FORMAT_NAME = "helmholtz"
FORMAT_VERSION = 1
_MANIFEST = "helmholtz.json"
# What reading a file may allocate for its arrays, all together, unless the caller or the
# environment variable says otherwise: generous for fits (a saved fit is mostly draws and
# weights), small enough that a crafted file cannot exhaust a machine's memory.
DEFAULT_MAX_LOAD_BYTES = 2**30
MAX_LOAD_BYTES_ENV = "HELMHOLTZ_MAX_LOAD_BYTES"
# The JSON manifest holds structure only (arrays are members of their own).
_MAX_MANIFEST_BYTES = 64 * 2**20
# A temporary file of a writer that is gone (killed) is removed by the next write to the
# same path once it is this old (seconds), so a kill -9 mid-save leaves nothing for long.
_STALE_TEMPORARY_SECONDS = 60.0


def library_version() -> str:
    """The helmholtz release running now (what files record as their writer)."""
    from helmholtz import __version__  # here: this module is imported while helmholtz initialises

    return __version__


def max_load_bytes(override: int | None = None) -> int:
    """The most bytes :func:`read` lets a file's arrays take in memory, all together.

    Args:
        override: a limit for this call (a positive int), else ``$HELMHOLTZ_MAX_LOAD_BYTES``,
            else :data:`DEFAULT_MAX_LOAD_BYTES` (1 GiB).

    Returns:
        The limit in bytes.
    """
    if override is None:
        text = os.environ.get(MAX_LOAD_BYTES_ENV)
        if text is None:
            return DEFAULT_MAX_LOAD_BYTES
        try:
            override = int(float(text))
        except ValueError:
            raise ValueError(f"{MAX_LOAD_BYTES_ENV} must be a number of bytes, got {text!r}") from None
        where = MAX_LOAD_BYTES_ENV
    else:
        where = "max_array_bytes"
    if isinstance(override, bool) or not isinstance(override, (int, np.integer)) or override < 1:
        raise ValueError(f"{where} must be a positive number of bytes, got {override!r}")
    return int(override)


def serializable(obj):
    """Let instances of the dataclass ``obj``, or the function ``obj``, be saved and rebuilt
    by name (``module.qualname``); returns ``obj`` unchanged, so it is used as a decorator.

    A model class of your own (a frozen dataclass subclassing
    :class:`~helmholtz.models.Model`) needs it to be saved with a fit, and so does the
    function a :class:`~helmholtz.models.Program` or
    :class:`~helmholtz.models.FunctionSimulator` wraps. The file stores the name only, never
    code: loading a file that names a class or function needs the module that defines
    it imported first (which registers it again). ::

        @hz.serializable
        @dataclass(frozen=True)
        class MyModel(hz.models.Model): ...

        @hz.serializable
        def my_program(x=None, *, num_points=None): ...

    Args:
        obj: a dataclass (decorate it with ``@dataclass`` first) or a function defined
            with ``def`` (a lambda has no name to find it by).

    Returns:
        ``obj``.
    """
    if isinstance(obj, type):
        if not dataclasses.is_dataclass(obj):
            raise TypeError(
                f"{obj.__name__} must be a dataclass to be serializable (decorate it with @dataclass first, "
                "under @serializable)"
            )
        _REGISTRY[f"{obj.__module__}.{obj.__qualname__}"] = obj
        return obj
    if not callable(obj) or not hasattr(obj, "__qualname__"):
        raise TypeError(f"serializable takes a dataclass or a function, got {type(obj).__name__}")
    if obj.__name__ == "<lambda>":
        raise TypeError("a lambda cannot be registered (it has no name to be found by): define it with def")
    _FUNCTIONS[function_name(obj)] = obj
    return obj


def function_name(function) -> str:
    """The name a function is saved under: ``module.qualname``."""
    return f"{getattr(function, '__module__', None)}.{getattr(function, '__qualname__', type(function).__name__)}"


def is_registered_function(function) -> bool:
    """True when ``function`` can be saved: it was marked :func:`serializable`."""
    return _FUNCTIONS.get(function_name(function)) is function


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
                raise TypeError(
                    f"{name} is not marked @serializable and cannot be saved: decorate the class with "
                    "@hz.serializable (above @dataclass(frozen=True)), and import its module before hz.load"
                )
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
        if callable(value) and not isinstance(value, type):
            return {"__function__": self.function(value)}
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            return value.item()
        raise TypeError(f"cannot save a value of type {type(value).__name__}")

    @staticmethod
    def function(value) -> str:
        name = function_name(value)
        if getattr(value, "__name__", None) == "<lambda>":
            raise TypeError("cannot save a lambda: define the function with def and decorate it with @hz.serializable")
        if not is_registered_function(value):
            raise TypeError(
                f"cannot save the function {name}: it is not registered. Decorate its definition with "
                "@hz.serializable (the file stores its name, not its code), and import its module before hz.load"
            )
        return name


def _written_by(release: str | None) -> str:
    if release is None:
        return "helmholtz 0.1.0 or earlier (the file does not record its release)"
    return f"helmholtz {release}"


def _release_number(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", release)[:3])


def _check_fields(cls: type, saved: dict, release: str | None) -> None:
    """Refuse saved fields that ``cls`` does not have (renamed or removed since the file was
    written) and fields of ``cls`` that the file lacks, except those the class declares as
    added later in ``_added_fields`` (name -> the release that added it) when the file's
    release predates them: their defaults keep the behaviour of the files written before."""
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    # Fields the file's release predates (all of them, for a file that records no release).
    added_later = {
        name
        for name, added in getattr(cls, "_added_fields", {}).items()
        if release is None or _release_number(release) < _release_number(added)
    }
    unknown = sorted(set(saved) - fields)
    missing = sorted(fields - set(saved) - set(added_later))
    if unknown or missing:
        name = cls.__qualname__
        problems = [f"it has a field {field!r} that {name} no longer has (renamed or removed)" for field in unknown]
        problems += [f"it lacks the field {field!r}" for field in missing]
        raise ValueError(
            f"the saved {name} does not match this release's: {'; '.join(problems)}. The file was written by "
            f"{_written_by(release)}, this is helmholtz {library_version()}: load it with the release that wrote it"
        )


def _decode(node: Any, arrays: dict[str, np.ndarray], release: str | None = None) -> Any:
    if not isinstance(node, dict):
        return node
    if "__array__" in node:
        return arrays[node["__array__"]]
    if "__dict__" in node:
        return {k: _decode(v, arrays, release) for k, v in node["__dict__"].items()}
    if "__tuple__" in node:
        return tuple(_decode(v, arrays, release) for v in node["__tuple__"])
    if "__list__" in node:
        return [_decode(v, arrays, release) for v in node["__list__"]]
    if "__distribution__" in node or "__transform__" in node:
        arguments = _decode(node["arguments"], arrays, release)
        if "batch_shape" in arguments:
            arguments["batch_shape"] = tuple(arguments["batch_shape"])
        return _numpyro_class(node)(**arguments)
    if "__function__" in node:
        function = _FUNCTIONS.get(node["__function__"])
        if function is None:
            raise ValueError(
                f"the file names the function {node['__function__']!r}, which is not registered: import the "
                "module that defines it (with @hz.serializable on its definition) before loading"
            )
        return function
    if "__class__" in node:
        cls = _REGISTRY.get(node["__class__"])
        if cls is None:
            raise ValueError(
                f"the file names the class {node['__class__']!r}, which is not a known "
                "helmholtz model or prior (import the module that defines it first)"
            )
        if dataclasses.is_dataclass(cls):  # not the rebuild functions of register_alias
            _check_fields(cls, node["fields"], release)
        return cls(**{k: _decode(v, arrays, release) for k, v in node["fields"].items()})
    raise ValueError(f"unrecognised entry in the file: {sorted(node)}")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (True where that cannot be told)."""
    if os.name != "posix":  # elsewhere signal 0 is no probe
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, OverflowError):  # another user's process, or no way to tell
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files that killed writers of ``path`` left behind (kill -9
    cannot be caught): those whose process is gone, untouched for a minute."""
    prefix = f".{path.name}."
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return
    for candidate in candidates:
        pid = candidate.name[len(prefix) :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        try:
            if time.time() - candidate.stat().st_mtime > _STALE_TEMPORARY_SECONDS:
                candidate.unlink()
        except OSError:
            pass


def _write_atomically(path: str | os.PathLike, fill) -> Path:
    """Write ``path`` by ``fill(stream)`` into a temporary file beside it (named after this
    process, so a later write can tell a killed writer's leftover), flushed to disk, then
    renamed into place; on any exception, KeyboardInterrupt included, the temporary file is
    removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            fill(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:  # the rename itself reaches the disk with the folder's entry
        folder = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return path
    try:
        os.fsync(folder)
    except OSError:
        pass
    finally:
        os.close(folder)
    return path


def write_bytes_atomically(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` through a temporary file renamed into place, so an
    interruption leaves either the old file or the new one, never half of one."""
    return _write_atomically(path, lambda stream: stream.write(payload))


def write(path: str | os.PathLike, kind: str, content: Any) -> Path:
    """Write ``content`` (nested dicts, dataclasses, arrays) atomically to ``path``."""
    encoder = _Encoder()
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "kind": kind,
        "helmholtz_version": library_version(),
        "content": encoder(content),
    }

    def fill(stream):
        with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(_MANIFEST, json.dumps(manifest))
            for key, array in encoder.arrays.items():
                buffer = io.BytesIO()
                np.save(buffer, array, allow_pickle=False)
                archive.writestr(f"arrays/{key}.npy", buffer.getvalue())

    return _write_atomically(path, fill)


def _array_names(node: Any, names: set, depth: int = 0) -> set:
    """The array keys that the manifest's content names (the members to read)."""
    if depth > 1000:
        raise ValueError("its content is nested more than 1000 levels deep")
    if isinstance(node, dict):
        if "__array__" in node:
            key = node["__array__"]
            if not isinstance(key, str) or not key.isidentifier():
                raise ValueError(f"it names an array {key!r}, not a member name")
            names.add(key)
            return names
        for value in node.values():
            _array_names(value, names, depth + 1)
    elif isinstance(node, list):
        for value in node:
            _array_names(value, names, depth + 1)
    return names


# What zipfile and zlib raise for a damaged member (bad CRC, bad deflate data, cut short).
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError)


def _npy_header(stream) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f".npy format {version[0]}.{version[1]} is not one that helmholtz writes")
    return shape, dtype


def _read_array(archive: zipfile.ZipFile, key: str, budget: int, path: Path) -> np.ndarray:
    """The member ``arrays/<key>.npy``, after checking its declared sizes against ``budget``."""
    member = f"arrays/{key}.npy"
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise ValueError(f"{path}: the manifest names the array {key!r}, but the file has no member {member}") from None
    hint = f"if you trust the file, raise the limit: load(path, max_array_bytes=...) or ${MAX_LOAD_BYTES_ENV}"
    if info.file_size > budget + 2**16:  # the header's few bytes beyond the data
        raise ValueError(
            f"{path}: {member} unpacks to {info.file_size:,} bytes, over the {budget:,} bytes left to load; {hint}"
        )
    corrupt = f"{path}: the array member {member} is unreadable or corrupt"
    try:
        with archive.open(info) as stream:
            shape, dtype = _npy_header(stream)
    except _UNREADABLE as error:
        raise ValueError(f"{corrupt}: {error}") from None
    if dtype.hasobject:
        raise ValueError(f"{path}: {member} holds Python objects, which would need pickle (refused)")
    size = dtype.itemsize * int(np.prod(shape, dtype=object))
    if size > budget:
        raise ValueError(
            f"{path}: {member} declares {shape} {dtype} ({size:,} bytes), "
            f"over the {budget:,} bytes left to load; {hint}"
        )
    try:
        with archive.open(info) as stream:
            return np.lib.format.read_array(stream, allow_pickle=False)
    except _UNREADABLE as error:
        raise ValueError(f"{corrupt}: {error}") from None


def read(path: str | os.PathLike, kind: str, *, max_array_bytes: int | None = None) -> Any:
    """Read what :func:`write` wrote, checking that it is a helmholtz file of ``kind``.

    Args:
        path: the file.
        kind: what the file must hold (``"fit"``, ``"model"``).
        max_array_bytes: the most bytes the file's arrays may take in memory, all together
            (default :func:`max_load_bytes`: ``$HELMHOLTZ_MAX_LOAD_BYTES``, else 1 GiB); each
            array's size is checked from its header before it is decompressed.

    Returns:
        The content, rebuilt.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a helmholtz file of ``kind``, a corrupt or crafted one, arrays over the
            limit, or fields that do not match the classes of this release (naming the
            release that wrote the file).
    """
    path = Path(path)
    budget = max_load_bytes(max_array_bytes)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a helmholtz {kind} file (expected a zip archive written by .save())")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as error:
        raise ValueError(f"{path} is not a readable zip archive ({error})") from None
    with archive:
        try:
            info = archive.getinfo(_MANIFEST)
        except KeyError:
            raise ValueError(f"{path} is a zip archive but not a helmholtz file (no {_MANIFEST} inside)") from None
        if info.file_size > _MAX_MANIFEST_BYTES:
            raise ValueError(
                f"{path}: its {_MANIFEST} unpacks to {info.file_size:,} bytes, not a manifest of this format"
            )
        try:
            manifest = json.loads(archive.read(info))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: its {_MANIFEST} is not valid JSON ({error})") from None
        except _UNREADABLE as error:
            raise ValueError(f"{path}: its {_MANIFEST} is unreadable or corrupt ({error})") from None
        except RecursionError:
            raise ValueError(f"{path}: its {_MANIFEST} is nested too deeply to be a manifest of this format") from None
        if not isinstance(manifest, dict):
            what = type(manifest).__name__
            raise ValueError(f"{path}: its {_MANIFEST} holds a JSON {what}, not the object that .save() writes")
        if manifest.get("format") != FORMAT_NAME or manifest.get("kind") != kind:
            raise ValueError(
                f"{path} holds {manifest.get('format')!r}/{manifest.get('kind')!r}, expected {FORMAT_NAME!r}/{kind!r}"
            )
        version, release = manifest.get("version", 0), manifest.get("helmholtz_version")
        if isinstance(version, bool) or not isinstance(version, int) or "content" not in manifest:
            raise ValueError(f"{path}: its {_MANIFEST} lacks an integer format version or the content")
        if version > FORMAT_VERSION:
            raise ValueError(
                f"{path} was written by a newer helmholtz (format {manifest['version']}); "
                f"this one reads format {FORMAT_VERSION} and older"
            )
        if release is not None and not isinstance(release, str):
            raise ValueError(f"{path}: its {_MANIFEST} records the release {release!r}, not a version string")
        try:
            names = _array_names(manifest["content"], set())
        except ValueError as error:
            raise ValueError(f"{path}: its {_MANIFEST} is malformed: {error}") from None
        arrays = {}
        for key in sorted(names):
            arrays[key] = array = _read_array(archive, key, budget, path)
            budget -= array.nbytes
    try:
        return _decode(manifest["content"], arrays, release)
    except (KeyError, TypeError, AttributeError, IndexError, RecursionError) as error:
        raise ValueError(
            f"{path}: its content is malformed ({type(error).__name__}: {error}); "
            f"the file was written by {_written_by(release)} or edited since"
        ) from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def file_digest(path: str | os.PathLike) -> str:
    """A digest of a file's contents: manifest and arrays, not the zip's timestamps."""
    import hashlib

    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode())
            digest.update(archive.read(name))
    return digest.hexdigest()
