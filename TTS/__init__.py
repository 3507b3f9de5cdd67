"""Text to speech: UnifiedTTSManager and its fallback chain of engines (see TTS/manager.py)."""
from TTS.base import TTSResult
from TTS.manager import UnifiedTTSManager

__all__ = ["UnifiedTTSManager", "TTSResult"]
