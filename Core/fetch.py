"""Download the bigger models listed in Config/models_manifest.yaml into models/<name>/.

Model files are gigabytes over links that drop, so each file downloads into a `.part` file that
a later attempt resumes with an HTTP Range request. Nothing appears at models/<name>/ until every
file is complete and verified: the finished folder is moved into place with one os.replace, so
the resolver can never pick up a half-fetched model.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import http.client
import logging
import os
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from Core.errors import LuxaError, ModelMissingError
from Core.models import PROJECT_ROOT, models_dir

log = logging.getLogger(__name__)

DEFAULT_MANIFEST = PROJECT_ROOT / "Config" / "models_manifest.yaml"
BASE_URL_ENV = "LUXA_MODELS_BASE_URL"
STAGING = ".downloads"  # under models/; dot-folders are ignored by Core.models.installed_extra
SOURCE_FILE = ".luxa-source"
CHECKSUM_FILE = ".luxa-sha256"
BLOCK = 1 << 20


class FetchError(LuxaError):
    """A download that could not complete: network failure, bad checksum, bad manifest."""


class ManifestFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str
    size: int | None = Field(None, ge=0)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")

    @field_validator("path")
    @classmethod
    def _inside_the_model_folder(cls, value: str) -> str:
        """A manifest must not be able to write outside models/<name>/."""
        parts = value.split("/")
        if not value or value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
            raise ValueError("must be a relative path inside the model folder")
        return value


class ManifestEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["whisper", "gguf", "piper", "folder"]
    description: str = ""
    licence: str = ""
    base_url: str | None = None
    files: list[ManifestFile] = Field(min_length=1)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    base_url: str | None = None
    models: dict[str, ManifestEntry]


@dataclass(frozen=True)
class FetchOptions:
    retries: int        # models.fetch_retries: attempts per file after the first, each resuming
    timeout_s: float    # models.fetch_timeout_s: socket timeout of one connect or read
    progress: bool = True


def load_manifest(path: str | Path | None = None) -> Manifest:
    path = Path(path) if path else DEFAULT_MANIFEST
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Manifest.model_validate(data)
    except FileNotFoundError:
        raise FetchError(f"model manifest not found: {path}") from None
    except yaml.YAMLError:
        raise FetchError(f"model manifest {path} is not valid YAML") from None
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise FetchError(f"model manifest {path}: {key}: {first['msg']}") from None


def fetch_by_name(name: str, configured_dir: str, manifest_path: str | Path | None,
                  options: FetchOptions, base_url: str | None = None) -> int:
    """The `models fetch NAME` command: 0 when the model is installed (now or before)."""
    manifest = load_manifest(manifest_path)
    entry = manifest.models.get(name)
    if entry is None:
        raise ModelMissingError(f"unknown model {name!r} in the manifest; known: {', '.join(sorted(manifest.models))}")
    mirror = base_url or os.environ.get(BASE_URL_ENV) or None
    target = fetch(name, entry, models_dir(configured_dir), _origin(name, entry, manifest, mirror), options)
    print(f"{name}: installed in {target}")
    return 0


def _origin(name: str, entry: ManifestEntry, manifest: Manifest, mirror: str | None) -> str:
    """Where the files come from: a mirror holds every model under <mirror>/<name>/."""
    if mirror:
        return f"{mirror.rstrip('/')}/{urllib.parse.quote(name)}"
    origin = entry.base_url or manifest.base_url
    if not origin:
        raise FetchError(f"model {name!r} has no base_url in the manifest; pass --base-url or set {BASE_URL_ENV}")
    return origin.rstrip("/")


def fetch(name: str, entry: ManifestEntry, root: Path, origin: str, options: FetchOptions) -> Path:
    target = root / name
    if (target / SOURCE_FILE).is_file():
        log.info("%s is already installed in %s", name, target)
        return target
    if target.exists():
        raise FetchError(f"{target} exists but was not fetched by LUXA; move it away and fetch again")
    staging = root / STAGING / name
    digests = [(f.path, _fetch_file(f, staging, f"{origin}/{urllib.parse.quote(f.path)}", options))
               for f in entry.files]
    (staging / CHECKSUM_FILE).write_text("".join(f"{d}  {p}\n" for p, d in digests), encoding="utf-8")
    (staging / SOURCE_FILE).write_text(f"fetched {_dt.date.today().isoformat()} from {origin}\n", encoding="utf-8")
    os.replace(staging, target)  # the one step that makes the model visible
    return target


def _fetch_file(spec: ManifestFile, staging: Path, url: str, options: FetchOptions) -> str:
    """Download one file into the staging folder, verify it, return its sha256."""
    final = staging / spec.path
    if final.is_file():  # left by an earlier, interrupted run; checked again in case the manifest changed
        return _verify(spec, final)
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    for attempt in range(options.retries + 1):
        try:
            _download(url, part, spec.size, options)
            break
        except _Transient as err:
            kept = part.stat().st_size if part.exists() else 0
            if attempt == options.retries:
                raise FetchError(
                    f"network failure downloading {spec.path} from {url}: {err}; "
                    f"{kept} bytes kept, run the same command again to resume"
                ) from None
            log.warning("%s: %s; resuming from byte %d", spec.path, err, kept)
    digest = _verify(spec, part)
    os.replace(part, final)
    return digest


def _verify(spec: ManifestFile, part: Path) -> str:
    size = part.stat().st_size
    digest = _sha256(part)
    if spec.size is not None and size != spec.size:
        part.unlink()
        raise FetchError(f"{spec.path}: got {size} bytes, the manifest says {spec.size}; the download was discarded")
    if spec.sha256 is None:
        log.warning("%s has no sha256 in the manifest: not verified (sha256 %s recorded)", spec.path, digest)
    elif digest != spec.sha256:
        part.unlink()  # corrupt bytes must not be resumed from
        raise FetchError(f"checksum mismatch for {spec.path}: expected sha256 {spec.sha256}, got {digest}; "
                         f"the download was discarded")
    return digest


class _Transient(Exception):
    """A failure worth retrying with a Range request (dropped connection, timeout, 5xx)."""


def _download(url: str, part: Path, expected_size: int | None, options: FetchOptions) -> None:
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset == expected_size:
        return  # complete already; _verify decides whether it is right
    request = urllib.request.Request(url, headers={"User-Agent": "luxa-fetch"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=options.timeout_s)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing after `offset`: the part is whole
            return
        if err.code >= 500:
            raise _Transient(f"HTTP {err.code}") from None
        raise FetchError(f"HTTP {err.code} {err.reason} for {url}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Transient(_reason(err)) from None
    with response:
        if offset and response.status != 206:
            offset = 0  # the server ignored Range: start again rather than append a second copy
        elif offset and not _content_range_starts_at(response, offset):
            raise FetchError(f"{url}: the server resumed at the wrong offset (Content-Range "
                             f"{response.headers.get('Content-Range')!r}, expected byte {offset})")
        length = response.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        total = offset + remaining if remaining is not None else expected_size
        _copy(response, part, offset, remaining, total, options.progress)


def _copy(response, part: Path, offset: int, remaining: int | None, total: int | None, progress: bool) -> None:
    from tqdm import tqdm

    received = 0
    with open(part, "ab" if offset else "wb") as out, tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name[:-5],
        disable=None if progress else True, file=sys.stderr, leave=False,
    ) as bar:
        try:
            while block := response.read(BLOCK):
                out.write(block)
                received += len(block)
                bar.update(len(block))
        except (OSError, http.client.HTTPException) as err:
            raise _Transient(_reason(err)) from None
    # http.client returns b"" when the peer closes early instead of raising: compare to the length.
    if remaining is not None and received < remaining:
        raise _Transient(f"connection closed after {offset + received} of {offset + remaining} bytes")


def _content_range_starts_at(response, offset: int) -> bool:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return match is not None and int(match.group(1)) == offset


def _reason(err: BaseException) -> str:
    inner = getattr(err, "reason", None)
    if isinstance(err, (socket.timeout, TimeoutError)) or isinstance(inner, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(inner or err) or type(err).__name__


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()
