"""Reading and writing module configs as YAML (ruamel.yaml): primitives, lists and dicts only."""
from __future__ import annotations

import importlib
import io
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Mapping

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from nmod.version import __version__

from .errors import ConfigExportError, ConfigFieldError, ConfigParseError

__all__ = ["atomic_write", "to_primitive", "read_yaml", "write_yaml", "class_path", "import_class"]

_PRIMITIVES = (type(None), bool, int, float, str)


def to_primitive(value: Any, where: str) -> Any:
    """Return `value` as plain YAML data (tuples become lists) or raise naming the offending field."""
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, (list, tuple)):
        return [to_primitive(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise ConfigExportError(f"{where}: dict keys must be strings, found {key!r}")
            out[key] = to_primitive(v, f"{where}.{key}")
        return out
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ConfigExportError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}; only None, bool, int, float, "
        "str, lists and dicts can be exported. Pass a primitive (a file path, a name) instead of an object."
    )


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    return yaml


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_permissions(path: str | os.PathLike) -> None:
    """Give a file or folder made by ``tempfile`` (owner-only: 0600, 0700) the permissions ``open`` or
    ``mkdir`` would have given it under the process's umask, so that an atomically written model or
    checkpoint can be shared as a normally written one can."""
    mode = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, mode & ~_umask())


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], binary: bool = False) -> None:
    """Write through `write(file)` into a temp file in the same folder, fsync, then rename over `path`.

    A crash mid-write leaves the previous file intact, never a truncated one. The file gets the
    permissions a plain write would give it (``plain_permissions``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    plain_permissions(tmp)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_yaml(path: str | os.PathLike, data: dict) -> None:
    """Write atomically: a crash mid-write leaves the old file, never half a file."""
    buffer = io.StringIO()
    _yaml().dump(data, buffer)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {path} does not exist")
    try:
        data = _yaml().load(path.read_text())
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigParseError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigFieldError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def require(data: Mapping, key: str, kind: type | tuple, where: str) -> Any:
    if key not in data:
        raise ConfigFieldError(f"{where}: missing field '{key}'")
    value = data[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigFieldError(f"{where}: field '{key}' must be a {names}, found {type(value).__name__}")
    return value


def header() -> dict:
    return {"nmod_version": __version__}


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def import_class(path: str, where: str) -> type:
    """Import 'package.module.Class', or 'package.module.Outer.Inner' as `class_path` writes it."""
    parts = path.split(".")
    error: Exception = ValueError("not a dotted path")
    for split in range(len(parts) - 1, 0, -1):  # the longest importable module prefix wins
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError as e:
            if split == len(parts) - 1:  # report the most specific failure, e.g. an error inside it
                error = e
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
            return obj
        except AttributeError as e:
            error = e
            break
    raise ConfigFieldError(f"{where}: cannot import class '{path}': {error}") from None
