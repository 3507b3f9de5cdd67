"""One loaded Qwen3-TTS Base model: makes voice prompts and speaks with them.

Loaded once per model size, on the guarded card only (Core.gpu pinned it as cuda:0) within
tts.clone.gpu_memory_fraction, else float32 on the CPU. Every call is blocking and runs under
the model's lock: callers put it on a worker thread (asyncio.to_thread).
"""
from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from Config.schema import TtsCloneConfig
from Core.audio import Audio
from Core.errors import BackendError, ModelMissingError
from Core.gpu import GpuStatus
from Core.models import PROJECT_ROOT, models_dir
from TTS.voice_prompts import PromptData

log = logging.getLogger(__name__)

INSTALL_HINT = "install the clone extra: scripts/setup.sh --clone (pip install -e '.[clone]' plus qwen-tts)"
# Qwen3-TTS names its languages; the assistant speaks in ISO codes
LANGUAGES = {"zh": "chinese", "en": "english", "ja": "japanese", "ko": "korean", "de": "german",
             "fr": "french", "ru": "russian", "pt": "portuguese", "es": "spanish", "it": "italian"}


def _names(clone: TtsCloneConfig) -> dict[str, str]:
    """Model names by size; a size comes in as text (the API, the CLI)."""
    return {str(size): name for size, name in clone.models.items()}


def model_folder(clone: TtsCloneConfig, size: str, configured_models_dir: str) -> Path:
    """The Base model folder for `size`, or ModelMissingError saying where to put it."""
    name = _names(clone).get(size)
    if not name:
        raise ModelMissingError(f"no Qwen3-TTS {size} folder configured: set tts.clone.models.{size}")
    root = models_dir(configured_models_dir)
    raw = Path(name).expanduser()
    candidates = [raw] if raw.is_absolute() else [PROJECT_ROOT / raw, root / raw]
    for folder in candidates:
        if (folder / "config.json").is_file() and (folder / "speech_tokenizer" / "config.json").is_file():
            return folder
    fetch_name = _names(TtsCloneConfig())[size]  # the Config/models_manifest.yaml entry
    raise ModelMissingError(
        f"Qwen3-TTS {size} Base weights not found at {candidates[-1]} (tts.clone.models.{size}): fetch them with "
        f"`python run_assistant.py models fetch {fetch_name}` or copy the model folder (with speech_tokenizer/) there")


def import_qwen_tts() -> Any:
    printed = io.StringIO()
    try:
        # qwen-tts prints a flash-attn notice on stdout at import; stdout belongs to the command
        # (`voices create` prints only the id there), and the notice concerns a tokenizer not used here
        with contextlib.redirect_stdout(printed):
            from qwen_tts import Qwen3TTSModel
    except ImportError as err:
        raise BackendError(f"qwen-tts is not installed ({err}); {INSTALL_HINT}") from None
    except OSError as err:  # torchaudio's CUDA build beside the CPU torch fails here
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise BackendError(f"qwen-tts cannot load its dependencies ({first[:160]}); {INSTALL_HINT}") from None
    if printed.getvalue().strip():
        log.debug("qwen-tts at import: %s", " ".join(printed.getvalue().split()))
    return Qwen3TTSModel


class QwenCloneEngine:
    def __init__(self, folder: Path, size: str, clone: TtsCloneConfig, gpu: GpuStatus) -> None:
        self.folder = folder
        self.size = size
        self.clone = clone
        self.gpu = gpu
        self.lock = threading.Lock()  # one generation at a time per model
        self.model = self._load()

    def _load(self) -> Any:
        Qwen3TTSModel = import_qwen_tts()
        import torch

        if self.gpu.on_gpu:
            torch.cuda.set_per_process_memory_fraction(self.clone.gpu_memory_fraction, 0)
            options = {"device_map": "cuda:0", "dtype": getattr(torch, self.clone.gpu_dtype)}
        else:
            if self.size != "0.6B":
                log.warning("Qwen3-TTS %s on the CPU is far slower than real time; 0.6B is the CPU size", self.size)
            options = {"device_map": "cpu", "dtype": torch.float32}
        started = time.perf_counter()
        try:
            model = Qwen3TTSModel.from_pretrained(str(self.folder), **options)
        except Exception as err:  # transformers raises many types for a damaged folder
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise BackendError(f"cannot load Qwen3-TTS from {self.folder}: {first[:200]}") from None
        if getattr(model.model, "tts_model_type", None) != "base":
            raise BackendError(f"{self.folder} is not a Qwen3-TTS Base model: only Base models clone voices")
        # what transformers would pick anyway, set once so it does not log a warning per sentence
        model.model.talker.generation_config.pad_token_id = model.model.config.talker_config.codec_eos_token_id
        log.info("Qwen3-TTS %s loaded from %s on %s in %.1f s", self.size, self.folder,
                 options["device_map"], time.perf_counter() - started)
        return model

    def make_prompt(self, reference: Audio, ref_text: str) -> PromptData:
        """Process the reference once: speech-tokenizer codes and the speaker embedding."""
        with self.lock:
            item = self.model.create_voice_clone_prompt(
                ref_audio=(reference.samples, reference.sample_rate), ref_text=ref_text)[0]
        code = None if item.ref_code is None else item.ref_code.detach().cpu().numpy()
        return PromptData(code, item.ref_spk_embedding.detach().float().cpu().numpy())

    def speak(self, text: str, language: str, data: PromptData, ref_text: str) -> Audio:
        """`text` in the prompt's voice; the reference is never processed again here."""
        import torch
        from qwen_tts import VoiceClonePromptItem

        item = VoiceClonePromptItem(
            ref_code=None if data.ref_code is None else torch.from_numpy(data.ref_code),
            ref_spk_embedding=torch.from_numpy(data.speaker_embedding),
            x_vector_only_mode=data.ref_code is None, icl_mode=data.ref_code is not None, ref_text=ref_text)
        with self.lock:
            wavs, rate = self.model.generate_voice_clone(
                text=text, language=self._language(language), voice_clone_prompt=[item],
                max_new_tokens=self.clone.max_new_tokens)
        samples = np.clip(np.asarray(wavs[0], dtype=np.float32).reshape(-1), -1.0, 1.0)
        return Audio(samples, int(rate))

    def _language(self, code: str) -> str:
        """Qwen's name for the language, or auto when this model does not know it."""
        name = LANGUAGES.get(code.split("-")[0].split("_")[0], "auto")
        supported = {str(lang).lower() for lang in (self.model.model.get_supported_languages() or [])}
        return name if name in supported else "auto"
