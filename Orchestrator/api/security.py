"""The API key: one secret per installation, in a file only its owner can read.

Generated with `secrets.token_urlsafe` by `run_assistant.py api-key` (the install step) or on the
first start bound to loopback. A server reachable from other machines never invents its key on
the fly: whoever opened it up must have created (and so know) the key first.
"""
from __future__ import annotations

import secrets
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from Config.schema import LuxaConfig
from Core.errors import ConfigError, LuxaError
from Core.files import atomic_write
from Core.net import is_loopback

KEY_BYTES = 32  # 256 bits of randomness, 43 URL-safe characters
MIN_KEY_CHARS = 16  # a hand-written key shorter than this is too easy to guess


def key_path(config: LuxaConfig) -> Path:
    path = Path(config.api.key_file).expanduser()
    return path if path.is_absolute() else Path(config.service.state_dir).expanduser() / path


def read_key(path: Path) -> str | None:
    """The key in `path`, None when there is no file; refuses a file others can read."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if sys.platform != "win32" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise LuxaError(f"API key file {path} is readable by other users (mode {stat.S_IMODE(info.st_mode):04o}): "
                        f"run chmod 600 {path}")
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_KEY_CHARS:
        raise LuxaError(f"API key file {path} holds {len(key)} characters, fewer than {MIN_KEY_CHARS}: "
                        "delete it and run `run_assistant.py api-key` to make a new one")
    return key


def create_key(path: Path, replace: bool = False) -> str:
    """Write a fresh key with 0600 from the first byte on (no window where others could read it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(KEY_BYTES)
    with atomic_write(path, mode=0o600, text=True) as out:
        out.write(key + "\n")
        if not replace and path.exists():
            raise LuxaError(f"API key file {path} already exists (use --rotate to replace it)")
    return key


def server_key(config: LuxaConfig) -> tuple[str, Path]:
    """The key the server checks, creating it on loopback; off loopback it must exist already."""
    path = key_path(config)
    key = read_key(path)
    if key is not None:
        return key, path
    if not is_loopback(config.api.host):
        raise ConfigError(f"config: api.host={config.api.host} is reachable from other machines and no API key exists yet: "
                          f"create it first with `run_assistant.py api-key` (it goes to {path})")
    return create_key(path), path


def presented_key(headers: Mapping[str, str]) -> str | None:
    """`Authorization: Bearer KEY` or `X-API-Key: KEY` (Starlette headers, case-insensitive)."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get("x-api-key") or None


def key_matches(given: str | None, key: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode("utf-8"), key.encode("utf-8"))
