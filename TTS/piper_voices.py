"""What the two Piper backends share: which voice a request uses and where its files are."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from Core import models
from Core.errors import LuxaError, ModelMissingError
from TTS.base import SpeechRequest, TtsBackend


class PiperBackend(TtsBackend):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._paths: dict[str, Path] = {}  # resolving touches the file system: once per voice name

    def accepts_voice(self, voice: str) -> bool:
        try:
            self.model_path(voice)
            return True
        except LuxaError:
            return False

    def voice_for(self, request: SpeechRequest) -> str | None:
        return request.voice if request.voice else request.piper_voice

    def cache_key(self, request: SpeechRequest) -> tuple:
        name = self.voice_for(request)
        try:
            path = str(self.model_path(name)) if name else None
        except LuxaError:
            path = name  # the synthesis will fail and nothing gets cached under this key
        return (self.name, path, request.speed)

    def model_path(self, name: str) -> Path:
        """The voice's .onnx; ModelMissingError when it or its .onnx.json is absent.

        Only successes are remembered, so a voice installed after a failure is found next time.
        """
        if name not in self._paths:
            path = models.resolve(name, "piper", self.config.models.dir).path
            if not path.with_name(path.name + ".json").is_file():
                raise ModelMissingError(f"Piper voice {name!r}: {path.name}.json is missing beside {path}")
            self._paths[name] = path
        return self._paths[name]


@dataclass(frozen=True)
class VoiceSettings:
    sample_rate: int
    length_scale: float  # the voice's own phoneme duration; speed divides it


def voice_settings(onnx_path: Path) -> VoiceSettings:
    """Read the voice's .onnx.json: raw PCM from the CLI carries no rate of its own."""
    config_path = onnx_path.with_name(onnx_path.name + ".json")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
        return VoiceSettings(int(data["audio"]["sample_rate"]), float(data.get("inference", {}).get("length_scale", 1.0)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ModelMissingError(f"Piper voice config {config_path} is unreadable: {err}") from None
