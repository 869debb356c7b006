"""The typed-YAML engine behind ``hybridrec.config``: files and ``--set`` overrides into dataclasses.

Why a separate engine: the rules of reading a config (strict YAML, unknown keys and wrong types are
errors naming the dotted key, numbers held to their ``Limit``, paths resolved against the file's
folder) are the same for every section, so they live here once and know nothing of the sections;
``hybridrec.config.sections`` declares the settings and ``hybridrec.config`` binds the two.

Rules:
- Every key has a default in its dataclass, so a YAML file only lists what it changes.
- Unknown keys and wrong types are errors (``ConfigError``) naming the dotted key; a key a section
  lists in ``RENAMED`` gets one sentence naming its new name.
- ``--set a.b=value`` overrides a key after the file is read; the value is parsed as YAML
  (``--set train.epochs=3``, ``--set spark.master=local[2]``, ``--set train.nics=[lo]``).
- Relative paths (fields declared with ``path_field``) are resolved against the directory of the
  config file, so a job behaves the same whatever the current directory is.
- Fields with ``metadata={"internal": True}`` are not YAML keys (e.g. where the config came from).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import yaml

from hybridrec.errors import HybridrecError
from hybridrec.strict_yaml import BoolWord, DuplicateKeyError, safe_load_unique

T = TypeVar("T")


class ConfigError(HybridrecError, ValueError):
    """A config file or override that cannot be used; the message names the key and the fix."""


def path_field(default: str | None) -> Any:
    """A config field holding a path: resolved against the config file's directory at load time."""
    return field(default=default, metadata={"path": True})


# Spark and the JVM take 32-bit ints: a larger one passes Python and dies in the job as
# NumberFormatException, so every int setting is held to this range whatever its own limit.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


@dataclass(frozen=True)
class Limit:
    """The sane range of one numeric setting, checked at load time (see each section's ``LIMITS``).

    Why per setting: the type alone lets ``recommend.top_n=99999999`` through, which then fails
    (or eats the cluster's memory) an hour into a night. ``lo_open``: ``lo`` itself is not allowed
    (``> 0``). ``why``: what the range protects, added to the message. A list or mapping of numbers
    has the limit applied to each value.
    """

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    why: str = ""

    def allowed(self) -> str:
        """The range in words, e.g. ``1 to 1000`` or ``> 0 and at most 3650``."""
        lo = None if self.lo is None else f"> {_num(self.lo)}" if self.lo_open else _num(self.lo)
        if lo is not None and self.hi is not None:
            return f"{lo} and at most {_num(self.hi)}" if self.lo_open else f"{lo} to {_num(self.hi)}"
        if lo is None and self.hi is None:
            return "any finite number"
        return lo if lo is not None else f"at most {_num(self.hi)}"

    def check(self, key: str, value: int | float) -> None:
        """Raise one ``ConfigError`` naming the key, the value and the allowed range."""
        problem = None
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            if self.lo_open:
                problem = f"must be > {_num(self.lo)}"
            elif isinstance(value, int):
                problem = f"must be at least {_num(self.lo)}"
            else:
                problem = f"must be a number >= {_num(self.lo)}"
        elif self.hi is not None and value > self.hi:
            problem = f"must be at most {_num(self.hi)}"
        if problem:
            raise ConfigError(f"{key} {problem}, got {value!r} {self.hint()}")

    def hint(self) -> str:
        """``(allowed: 1 to 1000)``, with ``why`` after a semicolon when there is one."""
        why = f"; {self.why}" if self.why else ""
        return f"(allowed: {self.allowed()}{why})"


def _num(x: float) -> str:
    """1000.0 → ``1000``, 0.5 → ``0.5``: limits read as the numbers one would type."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else repr(x)


def one_of(key: str, value: str, allowed: Sequence[str]) -> None:
    """Raise one ``ConfigError`` naming the key and the allowed values unless ``value`` is one."""
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}; got {value!r}")


def load_file(root: type[T], path: str | Path | None, overrides: Sequence[str], default: Path) -> T:
    """Read a YAML file (``default`` when ``path`` is None) into dataclass ``root``, apply
    ``key=value`` overrides, validate, resolve paths against the file's folder.

    Raises ``ConfigError`` for a missing file, bad YAML, unknown keys, wrong types or bad overrides.
    """
    cfg_path = Path(path) if path is not None else default
    if not cfg_path.is_file():
        hint = (
            "run from the repository root or pass --config PATH" if path is None else "check the path given to --config"
        )
        raise ConfigError(f"config file {cfg_path} not found: {hint}")
    try:
        raw = safe_load_unique(cfg_path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise ConfigError(f"config file {cfg_path}: {exc}") from exc
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: e.g. 2025-13-01, a date-like non-date
        raise ConfigError(f"config file {cfg_path} is not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {cfg_path} must hold a mapping of sections, got {type(raw).__name__}")
    for item in overrides:
        apply_override(root, raw, item)
    obj = _build(root, raw, prefix="")
    _resolve_paths(obj, cfg_path.resolve().parent)
    return obj


def from_mapping(root: type[T], data: Mapping[str, Any], base_dir: str | Path = ".") -> T:
    """Build a validated ``root`` from a mapping (tests, notebooks); paths resolve against base_dir."""
    obj = _build(root, dict(data), prefix="")
    _resolve_paths(obj, Path(base_dir).resolve())
    return obj


def as_dict(obj: Any) -> dict[str, Any]:
    """A loaded dataclass as plain data, without its internal (non-YAML) top-level fields."""
    out = dataclasses.asdict(obj)
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            out.pop(f.name, None)
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and YAML-parsed value."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r} must look like section.key=value (e.g. train.epochs=3)")
    parts = key.split(".")
    if any(not p for p in parts):
        raise ConfigError(f"override {item!r} has an empty part in its key {key!r}")
    try:
        parsed = safe_load_unique(value) if value.strip() else ""
    except DuplicateKeyError as exc:
        raise ConfigError(f"override {item!r}: {exc}") from exc
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date-like value that is no date
        raise ConfigError(f"override {item!r}: value is not valid YAML: {exc}") from exc
    return parts, parsed


def apply_override(root: type, raw: dict[str, Any], item: str) -> None:
    """Set one ``a.b.c=value`` override in the raw mapping of dataclass ``root``.

    Inside a pass-through mapping (``spark.conf``) the rest of the key is one key, so
    ``spark.conf.spark.sql.adaptive.enabled=false`` sets the Spark setting of that name.
    """
    parts, value = parse_override(item)
    node = raw
    tp: Any = root
    for depth, part in enumerate(parts[:-1]):
        tp = _field_type(tp, part)
        if typing.get_origin(tp) is dict:
            parts = [*parts[: depth + 1], ".".join(parts[depth + 1 :])]
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise ConfigError(f"override {item!r}: {where} is a value, not a section")
        node = child
        if len(parts) == depth + 2:
            break
    node[parts[-1]] = value


def _field_type(tp: Any, name: str) -> Any:
    """The declared type of field ``name`` of dataclass ``tp`` (None when unknown or not a class)."""
    if not (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        return None
    hint = typing.get_type_hints(tp).get(name)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return hint


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "<top level>"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping of keys, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = sorted(set(data) - set(fields))
    renamed: Mapping[str, str] = getattr(cls, "RENAMED", {})
    for old in unknown:
        if old in renamed:
            raise ConfigError(
                f"config key {prefix}{old} was renamed to {prefix}{renamed[old]}: use the new name in "
                "the config file and in --set overrides"
            )
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]}; valid keys in {where}: {', '.join(sorted(fields))}"
        )
    limits: Mapping[str, Limit] = getattr(cls, "LIMITS", {})
    kwargs = {name: _coerce(hints[name], value, f"{prefix}{name}", limits.get(name)) for name, value in data.items()}
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, key: str, limit: Limit | None = None) -> Any:
    """``value`` as type ``tp``; numbers (also inside lists and mappings) held to ``limit``."""
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, prefix=f"{key}.")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _coerce(inner[0], value, key, limit)
        raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - schema bug
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {_describe(value)}")
        return [_coerce(args[0], v, f"{key}[{i}]", limit) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {_describe(value)}")
        if args[1] is str:
            return {str(k): _scalar_to_str(v, f"{key}.{k}") for k, v in value.items()}
        return {str(k): _coerce(args[1], v, f"{key}.{k}", limit) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, BoolWord):  # an unquoted yes/no/on/off (YAML 1.1 booleans)
            return value.as_bool
        raise ConfigError(f"{key} must be true or false, got {_describe(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return _bounded_int(value, key, limit)
        raise ConfigError(f"{key} must be an integer, got {_describe(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _bounded_float(value, key, limit)
        raise ConfigError(f"{key} must be a number, got {_describe(value)}")
    if tp is str:
        if isinstance(value, str):
            return str(value)  # a BoolWord becomes the plain word
        if isinstance(value, date):  # YAML reads an unquoted 2025-12-18 as a date
            return value.isoformat()
        raise ConfigError(f"{key} must be a string, got {_describe(value)}")
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - schema bug


def _bounded_int(value: int, key: str, limit: Limit | None) -> int:
    """The setting's own range first (the clearer message), then the 32-bit rule for every int."""
    if limit is not None:
        limit.check(key, value)
    if not INT32_MIN <= value <= INT32_MAX:
        raise ConfigError(
            f"{key} must be an integer from {INT32_MIN} to {INT32_MAX} (Spark and the JVM take "
            f"32-bit integers), got {value}"
        )
    return value


def _bounded_float(value: int | float, key: str, limit: Limit | None) -> float:
    """Refuse inf and nan everywhere: no setting means "unbounded" by infinity (null does that),
    and nan passes every ``<``/``>`` check the sections make."""
    try:
        number = float(value)
    except OverflowError:  # an int beyond the largest float
        number = math.inf
    if not math.isfinite(number):
        hint = f" {limit.hint()}" if limit is not None else ""
        raise ConfigError(f"{key} must be a finite number, got {value!r}{hint}")
    if limit is not None:
        limit.check(key, number)
    return number


def _scalar_to_str(value: Any, key: str) -> str:
    """Pass-through maps (Spark settings) take scalars; booleans become Spark's 'true'/'false'."""
    if isinstance(value, BoolWord):
        value = value.as_bool
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigError(f"{key} must be a string, number or boolean, got {_describe(value)}")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r}"


def _resolve_paths(node: Any, base: Path) -> None:
    """Resolve every path field (``path_field``) in the config tree against ``base``."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if dataclasses.is_dataclass(value):
            _resolve_paths(value, base)
        elif f.metadata.get("path") and value is not None and not _is_uri(value):
            p = Path(value)
            setattr(node, f.name, str(p if p.is_absolute() else (base / p).resolve()))


def _is_uri(value: str) -> bool:
    """dbfs:/, s3://, abfss://, file: ... are left untouched."""
    head, sep, _ = value.partition(":")
    return bool(sep) and len(head) > 1 and "/" not in head
