"""Optional wake word ("hey jarvis", ...) gating the voice loop, on pyopen-wakeword (TFLite, no torch).

Off by default. When on, the microphone is only listened to for the wake word until it is heard;
then the assistant listens for `listen_window_s` (renewed after each reply, for follow-ups).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from Core.audio import float32_to_pcm16
from Core.errors import ConfigError

log = logging.getLogger(__name__)


class WakeWordGate:
    def __init__(self, model: str, threshold: float, listen_window_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        try:
            from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures
        except (ImportError, OSError) as err:
            raise ConfigError(f"wake_word.enabled needs the pyopen-wakeword package ({err}): "
                              "pip install pyopen-wakeword, or set wake_word.enabled=false") from None
        try:
            self._detector = OpenWakeWord.from_builtin(Model(model))
        except ValueError:
            known = ", ".join(m.value for m in Model)
            raise ConfigError(f"wake_word.model {model!r} is not a built-in wake word (known: {known})") from None
        self._features = OpenWakeWordFeatures.from_builtin()
        self.threshold = threshold
        self.listen_window_s = listen_window_s
        self._clock = clock
        self._awake_until = 0.0

    @property
    def awake(self) -> bool:
        return self._clock() < self._awake_until

    def keep_awake(self) -> None:
        """Open (or renew) the listening window: after the wake word, and after each reply."""
        self._awake_until = self._clock() + self.listen_window_s

    def heard(self, frame: np.ndarray) -> bool:
        """Feed one frame while asleep; True (and awake) when the wake word was just said."""
        for embeddings in self._features.process_streaming(float32_to_pcm16(frame)):
            for probability in self._detector.process_streaming(embeddings):
                if probability >= self.threshold:
                    log.info("wake word heard (p=%.2f)", probability)
                    self._detector.reset()
                    self._features.reset()
                    self.keep_awake()
                    return True
        return False
