"""LUXA as a Wyoming service (Home Assistant's speech protocol): asr, tts and handle on the shared models."""
