"""Voice prompts on disk: a reference voice processed once, reused for every sentence.

A prompt is what Qwen3-TTS extracts from a reference recording (speech-tokenizer codes and a
speaker embedding). It is stored as plain arrays, never pickled objects, one `.npz` per prompt
named by its UUID, with its metadata as JSON inside the same file so the two never disagree.
Each write goes to a temporary file that replaces the target (a crash leaves the old prompt or
the new one, never half of one); a file that does not parse is skipped with a warning.

Bounded in number (least recently used dropped first: recency is the file's mtime, so it
survives a restart) and in age (expired prompts are deleted when seen). Needs numpy only, so
`voices list/delete` work without the clone extra.
"""
from __future__ import annotations

import builtins  # the store has a method named list
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from Core.errors import LuxaError
from Core.files import atomic_write

log = logging.getLogger(__name__)

SUFFIX = ".npz"


class VoicePromptError(LuxaError):
    """An unknown, expired or unusable voice prompt id."""


@dataclass(frozen=True)
class VoicePrompt:
    id: str
    model_size: str  # prompts from one model size do not fit the other (embedding widths differ)
    ref_text: str
    ref_audio: str  # where the reference came from, for `voices list`
    created_at: float  # unix time
    expires_at: float | None
    similarity: float | None = None
    x_vector_only: bool = False
    icl: bool = True


@dataclass(frozen=True)
class PromptData:
    """The arrays Qwen3-TTS needs to speak in the voice."""

    ref_code: np.ndarray | None  # (frames, code groups) int64; None in x-vector-only mode
    speaker_embedding: np.ndarray  # (hidden,) float32


class VoicePromptStore:
    def __init__(self, directory: Path, max_prompts: int, ttl_s: float | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.max_prompts = max_prompts
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()  # the CLI and the backend's worker thread may both touch it

    def add(self, data: PromptData, model_size: str, ref_text: str, ref_audio: str,
            similarity: float | None = None) -> VoicePrompt:
        now = self.clock()
        prompt = VoicePrompt(str(uuid.uuid4()), model_size, ref_text, ref_audio, now,
                             now + self.ttl_s if self.ttl_s else None, similarity,
                             x_vector_only=data.ref_code is None, icl=data.ref_code is not None)
        with self._lock:
            self._write(prompt, data)
            self._evict_beyond_limit(keep=prompt.id)
        return prompt

    def update(self, prompt: VoicePrompt, data: PromptData) -> None:
        """Rewrite a prompt's metadata (the similarity score is known only after it exists)."""
        with self._lock:
            self._write(prompt, data)

    def get(self, prompt_id: str) -> tuple[VoicePrompt, PromptData]:
        """The prompt and its arrays; marks it as recently used."""
        path = self._path(prompt_id)
        with self._lock:
            loaded = self._read(path) if path.is_file() else None
            if loaded is None:
                raise VoicePromptError(f"unknown voice {prompt_id!r} (see `run_assistant.py voices list`)")
            prompt, data = loaded
            if self._expired(prompt):
                self._remove(path)
                raise VoicePromptError(f"voice {prompt_id} expired; create it again with `voices create`")
            now = self.clock()
            os.utime(path, (now, now))  # recency for the LRU bound, kept across restarts
        return prompt, data

    def exists(self, prompt_id: str) -> bool:
        """Cheap check for the manager's voice routing: the file is there (expiry is checked on use)."""
        try:
            return self._path(prompt_id).is_file()
        except VoicePromptError:
            return False

    def list(self) -> list[VoicePrompt]:
        """Live prompts, most recently used first; expired ones are deleted on the way."""
        with self._lock:
            return [prompt for prompt, _ in self._live()]

    def delete(self, prompt_id: str) -> None:
        path = self._path(prompt_id)
        with self._lock:
            if not path.is_file():
                raise VoicePromptError(f"unknown voice {prompt_id!r} (see `run_assistant.py voices list`)")
            self._remove(path)

    def find(self, model_size: str, ref_audio: str, ref_text: str) -> VoicePrompt | None:
        """A live prompt made from the same reference, so start-up does not redo the default voice."""
        for prompt in self.list():
            if (prompt.model_size, prompt.ref_audio, prompt.ref_text) == (model_size, ref_audio, ref_text):
                return prompt
        return None

    def _live(self) -> builtins.list[tuple[VoicePrompt, Path]]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            loaded = self._read(path)
            if loaded is None:
                continue
            if self._expired(loaded[0]):
                self._remove(path)
                continue
            found.append((loaded[0], path))
        found.sort(key=lambda item: _mtime(item[1]), reverse=True)
        return found

    def _evict_beyond_limit(self, keep: str) -> None:
        live = self._live()
        for prompt, path in live[self.max_prompts:]:
            if prompt.id != keep:
                log.info("voice prompt %s dropped: more than tts.clone.max_prompts=%d", prompt.id, self.max_prompts)
                self._remove(path)

    def _expired(self, prompt: VoicePrompt) -> bool:
        return prompt.expires_at is not None and self.clock() >= prompt.expires_at

    def _path(self, prompt_id: str) -> Path:
        try:
            canonical = str(uuid.UUID(prompt_id))
        except (ValueError, AttributeError, TypeError):
            raise VoicePromptError(f"{prompt_id!r} is not a voice id (ids are UUIDs, see `voices list`)") from None
        return self.directory / f"{canonical}{SUFFIX}"

    def _write(self, prompt: VoicePrompt, data: PromptData) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = {"meta": np.array(json.dumps(asdict(prompt))),
                  "speaker_embedding": np.asarray(data.speaker_embedding, np.float32)}
        if data.ref_code is not None:
            arrays["ref_code"] = np.asarray(data.ref_code, np.int64)
        with atomic_write(self._path(prompt.id)) as out:
            np.savez(out, allow_pickle=False, **arrays)
        now = self.clock()
        os.utime(self._path(prompt.id), (now, now))

    def _read(self, path: Path) -> tuple[VoicePrompt, PromptData] | None:
        try:
            with np.load(path, allow_pickle=False) as npz:
                prompt = VoicePrompt(**json.loads(str(npz["meta"])))
                code = npz["ref_code"] if "ref_code" in npz.files else None
                data = PromptData(code, npz["speaker_embedding"])
        except Exception as err:  # any damage (truncated zip, bad JSON, missing key) means: skip it
            log.warning("voice prompt file %s is unreadable and was skipped: %s", path.name, str(err)[:160])
            return None
        if path.stem != prompt.id:
            log.warning("voice prompt file %s holds id %s and was skipped", path.name, prompt.id)
            return None
        return prompt, data

    @staticmethod
    def _remove(path: Path) -> None:
        path.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
