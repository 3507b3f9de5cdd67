"""Speech to text: a fallback chain of faster-whisper models, audio hygiene, VAD endpointing.

`STT.vad` is not imported here: the audio loop needs it without loading Whisper.
"""
from STT.manager import RobustSTTManager
from STT.transcript import Decoded, Transcript

__all__ = ["Decoded", "RobustSTTManager", "Transcript"]
