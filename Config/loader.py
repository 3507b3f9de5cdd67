"""Load assistant.yaml, apply LUXA_<SECTION>__<KEY> environment variables and --set overrides.

Errors are reduced to one line naming the key and what is allowed, because a user editing a
YAML file needs to know which line to fix, not pydantic's internals.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from Config.schema import LuxaConfig
from Core.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).with_name("assistant.yaml")
ENV_PREFIX = "LUXA_"


def load_config(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> LuxaConfig:
    data = _read_yaml(Path(path) if path else DEFAULT_CONFIG_PATH, explicit=path is not None)
    for dotted, raw in _env_overrides(os.environ if environ is None else environ):
        _set_dotted(data, dotted, raw)
    for item in overrides:
        dotted, sep, raw = item.partition("=")
        if not sep or not dotted.strip():
            raise ConfigError(f"--set expects key=value (for example stt.beam_size=5), got {item!r}")
        _set_dotted(data, dotted.strip(), raw)
    try:
        return LuxaConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_one_line(err)) from None


def _read_yaml(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file not found: {path}")
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"config file {path}{line} is not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    return data


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    found = []
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            found.append((name[len(ENV_PREFIX):].lower().replace("__", "."), value))
    return sorted(found)


def _next_key(node: dict[str, Any], parts: list[str], i: int) -> tuple[str, int]:
    """The key that `parts[i:]` starts with: the longest run of parts naming a key already in
    `node`, so that a key with a dot in it ("tts.clone.models.0.6B") can be set; else one part."""
    for end in range(len(parts), i + 1, -1):
        joined = ".".join(parts[i:end])
        if joined in node:
            return joined, end
    return parts[i], i + 1


def _set_dotted(data: dict[str, Any], dotted: str, raw: str) -> None:
    parts = dotted.split(".")
    node = data
    key, i = _next_key(node, parts, 0)
    while i < len(parts):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[:i])} is not a section, cannot set {dotted}")
        node = child
        key, i = _next_key(node, parts, i)
    try:
        node[key] = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        node[key] = raw


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    key = ".".join(loc)
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"config: unknown key {key}{hint}"
    got = first.get("input")
    shown = "" if isinstance(got, (dict, list)) else f" (got {got!r})"
    bounds = _allowed_range(loc)
    return f"config: {key}: {first['msg']}{shown}" + (f"; allowed: {bounds}" if bounds else "")


def _walk(loc: list[str]) -> tuple[Any, FieldInfo | None]:
    """The schema type at `loc` and the field that declares it (None inside lists and dicts)."""
    model: Any = LuxaConfig
    field = None
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            if field is None:
                return None, None
            model = field.annotation
        else:
            # a dict of sub-sections (stt.backends.<name>) or a list item: skip the free-form part
            model, field = getattr(model, "__args__", (None, None))[-1], None
    return model, field


def _allowed_keys(loc: list[str]) -> list[str]:
    model, _ = _walk(loc)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []


def _allowed_range(loc: list[str]) -> str:
    """'>= 1, <= 10' from the field's declared bounds, so the user sees the whole range at once."""
    _, field = _walk(loc)
    if field is None:
        return ""
    bounds = []
    for constraint in field.metadata:
        for attr, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            value = getattr(constraint, attr, None)
            if value is not None:
                bounds.append(f"{symbol} {value}")
    return ", ".join(bounds)
