"""Typed schema of Config/assistant.yaml.

Every section forbids unknown keys so a typo fails loudly at start-up instead of being
silently ignored; ranges are declared here so the loader can name the allowed values.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AudioConfig(Section):
    input_device: int | str | None = None
    output_device: int | str | None = None
    sample_rate: Literal[16000] = 16000
    frame_ms: Literal[10, 20, 30] = 30
    playback_latency_s: float = Field(0.08, ge=0.0, le=2.0)
    reconnect_initial_s: float = Field(0.5, gt=0.0, le=60.0)
    reconnect_max_s: float = Field(5.0, gt=0.0, le=600.0)
    dead_input_s: float = Field(3.0, ge=0.0, le=600.0)
    # auto: aec when the echo canceller is installed and passes its self-test, else half_duplex
    barge_in: Literal["auto", "aec", "half_duplex", "headset", "off"] = "half_duplex"
    barge_in_min_ms: int = Field(250, ge=30, le=3000)
    barge_in_loud_dbfs: float = Field(-12.0, ge=-60.0, le=0.0)
    aec_min_erle_db: float = Field(10.0, ge=0.0, le=60.0)
    # aec: Silero probability at which a frame of the cancelled signal counts as the user's speech
    aec_speech_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    aec_noise_suppression: bool = False


class WakeWordConfig(Section):
    enabled: bool = False
    model: str = "hey_jarvis"
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    listen_window_s: float = Field(8.0, ge=1.0, le=600.0)


class VadConfig(Section):
    webrtc_aggressiveness: int = Field(2, ge=0, le=3)
    silero_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    end_silence_ms: int = Field(400, ge=100, le=3000)
    pre_roll_ms: int = Field(300, ge=0, le=2000)
    min_speech_ms: int = Field(250, ge=30, le=5000)
    max_utterance_s: float = Field(20.0, ge=1.0, le=120.0)
    early_stt: bool = True
    preemptive_reply: bool = True
    turn_words: bool = True
    pause_ms: int = Field(120, ge=10, le=3000)
    quiet_input_gain_db: float = Field(30.0, ge=0.0, le=60.0)
    turn_model: str | None = "smart-turn-v3.2"
    turn_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    turn_sure_threshold: float = Field(0.98, gt=0.0, le=1.0)
    turn_min_silence_ms: int = Field(120, ge=30, le=3000)
    turn_unsure_silence_ms: int = Field(600, ge=30, le=5000)
    turn_max_silence_ms: int = Field(1000, ge=100, le=5000)

    @property
    def longest_end_silence_ms(self) -> int:
        """The most trailing silence a turn can wait for: a file played in needs at least this tail."""
        return max(self.end_silence_ms, self.turn_max_silence_ms) if self.turn_model else self.end_silence_ms


class SttBackendConfig(Section):
    model: str
    device: Literal["auto", "cuda", "cpu"] = "cpu"
    compute_type: str = "int8"
    enabled: bool = True
    priority: int = Field(0, ge=0, le=100)
    timeout_s: float = Field(30.0, gt=0.0, le=600.0)


class SttConfig(Section):
    language: str | None = None
    languages: list[str] | None = Field(default_factory=lambda: ["en", "fr"])
    beam_size: int = Field(1, ge=1, le=10)
    threads: int = Field(2, ge=1, le=64)
    load: Literal["eager", "lazy"] = "eager"
    temperatures: list[float] = Field(default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    compression_ratio_threshold: float = Field(2.4, gt=0.0)
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = Field(0.6, ge=0.0, le=1.0)
    min_audio_s: float = Field(0.2, ge=0.0, le=5.0)
    max_audio_s: float = Field(60.0, ge=1.0, le=3600.0)
    silence_dbfs: float = Field(-80.0, ge=-150.0, le=0.0)
    clipped_warn_fraction: float = Field(0.01, ge=0.0, le=1.0)
    max_word_repeats: int = Field(8, ge=2, le=1000)
    max_char_repeats: int = Field(15, ge=2, le=1000)
    window_padding_s: float | None = Field(4.0, ge=0.5, le=30.0)
    window_min_s: float = Field(15.0, ge=0.0, le=30.0)
    quiet_lift_dbfs: float | None = Field(-45.0, ge=-60.0, le=-10.0)
    backends: dict[str, SttBackendConfig] = Field(
        default_factory=lambda: {
            "whisper_base": SttBackendConfig(model="whisper-base", priority=10),
            "tiny_en": SttBackendConfig(model="tiny.en", priority=20),
        }
    )


class LlmBackendConfig(Section):
    kind: Literal["gguf", "openai"] = "gguf"
    model: str
    url: str | None = None
    api_key_env: str | None = None
    n_gpu_layers: int = Field(0, ge=-1, le=1000)
    enabled: bool = True
    priority: int = Field(0, ge=0, le=100)


class LlmConfig(Section):
    system_prompt: str = "You are a helpful voice assistant. Answer briefly, in plain text."
    system_prompts: dict[str, str] = Field(default_factory=lambda: {  # by the question's language
        "fr": "Tu es un assistant vocal serviable. Réponds brièvement, en français.",
    })
    max_sentences: int = Field(2, ge=1, le=100)  # a spoken answer stops after this many sentences
    context_tokens: int = Field(2048, ge=256, le=131072)
    history_token_budget: int = Field(1024, ge=0, le=131072)  # 0: each question answered alone
    max_tokens: int = Field(120, ge=1, le=8192)
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    repeat_penalty: float = Field(1.1, ge=1.0, le=2.0)
    stop: list[str] = Field(default_factory=lambda: ["<|im_end|>", "\nUser:"])
    first_token_timeout_s: float = Field(10.0, gt=0.0, le=600.0)
    total_timeout_s: float = Field(30.0, gt=0.0, le=3600.0)
    prompt_eval_budget_s: float = Field(2.0, gt=0.0, le=600.0)
    threads: int = Field(1, ge=1, le=64)
    # prompt evaluation, before the first token: nothing else of the turn runs then (STT is done,
    # TTS waits for the first chunk), so it may use both cores
    batch_threads: int = Field(2, ge=1, le=64)
    # llama.cpp's fused attention: without it each prompt batch writes an attention matrix of
    # n_batch x n_kv floats per head into a scratch buffer reserved at load, whose pages the kernel
    # maps in only as prompts grow, so the daemon's memory stepped up ~100 MB at some turn
    flash_attn: bool = True
    # llama.cpp contexts per local model: answers generating at once (LuxaConfig.llm_contexts())
    contexts: Annotated[int, Field(ge=1, le=16)] | Literal["auto"] = "auto"
    chat_template: str | None = None
    max_input_chars: int = Field(4000, ge=1, le=1_000_000)
    swap_memory_margin: float = Field(1.2, ge=1.0, le=10.0)
    apology: dict[str, str] = Field(
        default_factory=lambda: {
            "en": "Sorry, I cannot answer right now.",
            "fr": "Désolé, je ne peux pas répondre pour le moment.",
        }
    )
    backends: dict[str, LlmBackendConfig] = Field(
        default_factory=lambda: {
            "primary": LlmBackendConfig(model="smollm2-135m", priority=10),
        }
    )

    @field_validator("contexts", mode="before")
    @classmethod
    def _contexts(cls, value: object) -> object:
        """One message for both branches of the union (pydantic would report each)."""
        if value == "auto":
            return value
        try:
            number = int(str(value)) if not isinstance(value, (bool, float)) else None
        except ValueError:
            number = None
        if number is None or not 1 <= number <= 16:
            raise ValueError("must be auto or a whole number from 1 to 16")
        return number


class TtsBackendConfig(Section):
    enabled: bool = True
    priority: int = Field(0, ge=0, le=100)
    timeout_s: float = Field(10.0, gt=0.0, le=600.0)
    executable: str | None = None


class TtsVoiceConfig(Section):
    piper: str | None = None
    system: str | None = None
    clone: str | None = None


class CloneDefaultVoice(Section):
    audio: str | None = None  # reference recording; null = no default clone voice
    text: str | None = None  # what the recording says, word for word


class TtsCloneConfig(Section):
    model_size: Literal["0.6B", "1.7B"] = "0.6B"
    models: dict[Literal["0.6B", "1.7B"], str] = {  # pydantic copies it for each instance
        "0.6B": "qwen3-tts-12hz-0.6b-base", "1.7B": "qwen3-tts-12hz-1.7b-base"}
    gpu_memory_fraction: float = Field(0.5, gt=0.0, le=1.0)
    gpu_dtype: Literal["bfloat16", "float16"] = "bfloat16"
    default_voice: CloneDefaultVoice = Field(default_factory=CloneDefaultVoice)
    prompt_store_dir: str = "voices"
    max_prompts: int = Field(32, ge=1, le=10000)
    prompt_ttl_s: float | None = Field(30 * 86400.0, gt=0.0)
    ref_min_s: float = Field(3.0, gt=0.0, le=60.0)
    ref_max_s: float = Field(30.0, gt=0.0, le=600.0)
    similarity_check: bool = True
    similarity_threshold: float = Field(0.7, ge=0.0, le=1.0)
    max_new_tokens: int = Field(2048, ge=2, le=8192)


class TtsConfig(Section):
    speed: float = Field(1.0, ge=0.25, le=4.0)
    max_chars: int = Field(400, ge=20, le=100000)
    max_input_chars: int = Field(20000, ge=100, le=10_000_000)
    first_chunk_max_words: int = Field(6, ge=1, le=50)
    threads: int = Field(2, ge=1, le=64)
    latency_target_ms: int = Field(300, ge=10, le=60000)
    emergency_silence_s: float = Field(0.3, ge=0.0, le=5.0)
    default_language: str = "en"
    voices: dict[str, TtsVoiceConfig] = Field(
        default_factory=lambda: {
            "en": TtsVoiceConfig(piper="en_US-joe-medium", system="en-us"),
            "fr": TtsVoiceConfig(piper=None, system="fr-fr"),
        }
    )
    backends: dict[str, TtsBackendConfig] = Field(
        default_factory=lambda: {
            "piper_native": TtsBackendConfig(priority=10),
            "piper_cli": TtsBackendConfig(priority=20),
            "system_voice": TtsBackendConfig(priority=30),
            "qwen_clone": TtsBackendConfig(priority=40, enabled=False, timeout_s=60.0),
        }
    )
    clone: TtsCloneConfig = Field(default_factory=TtsCloneConfig)


class CacheConfig(Section):
    enabled: bool = True
    max_bytes: int = Field(64 * 1024 * 1024, ge=0)
    ttl_s: float = Field(3600.0, gt=0.0)


class CircuitBreakerConfig(Section):
    failure_threshold: int = Field(3, ge=1, le=100)
    cooldown_s: float = Field(30.0, gt=0.0, le=86400.0)


class GpuConfig(Section):
    index: int = Field(1, ge=0, le=63)
    name_pattern: str | None = None
    min_free_mb: int = Field(0, ge=0)
    on_missing: Literal["cpu", "fail"] = "cpu"


class MetricsConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(9877, ge=1, le=65535)


class ApiConfig(Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    key_file: str = "api_key"
    max_text_chars: int = Field(2000, ge=1, le=1_000_000)
    max_audio_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    rate_limit_per_minute: int = Field(120, ge=1, le=1_000_000)
    queue_size: int = Field(4, ge=0, le=1000)
    max_sessions: int = Field(32, ge=1, le=100_000)
    cors_origins: list[str] = Field(default_factory=list)


class WyomingConfig(Section):
    enabled: bool = False
    uri: str = Field("tcp://127.0.0.1:10300", pattern=r"^(tcp://[^/]+:\d+|unix://.+|stdio://)$")
    allow_remote: bool = False
    zeroconf: bool = False
    zeroconf_name: str | None = None
    max_audio_s: float = Field(60.0, ge=1.0, le=3600.0)
    max_text_chars: int = Field(2000, ge=1, le=1_000_000)
    max_event_bytes: int = Field(1024 * 1024, ge=4096, le=64 * 1024 * 1024)
    max_concurrent: int = Field(1, ge=1, le=64)
    queue_size: int = Field(8, ge=0, le=1000)
    request_timeout_s: float = Field(30.0, gt=0.0, le=3600.0)
    max_conversations: int = Field(32, ge=1, le=100_000)
    endpointing: bool = False
    audio_chunk_ms: int = Field(100, ge=10, le=2000)


class SatelliteRoom(Section):
    """One wyoming-satellite (the server, port 10700 by default) that LUXA serves as pipeline host."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")  # the room: logs, metrics, `satellites`
    uri: str = Field(pattern=r"^(tcp://[^/]+:\d+|unix://.+)$")
    language: str | None = None  # null: stt.language (or detected)


class SatellitesConfig(Section):
    """LUXA as the pipeline host of Wyoming satellites (docs/SATELLITES.md)."""

    rooms: list[SatelliteRoom] = Field(default_factory=list)
    discovery: bool = False  # browse zeroconf _wyoming._tcp and serve the satellites found (luxa[discovery])
    reconnect_initial_s: float = Field(1.0, gt=0.0, le=60.0)
    reconnect_max_s: float = Field(30.0, gt=0.0, le=3600.0)
    connect_timeout_s: float = Field(5.0, gt=0.0, le=300.0)
    stall_timeout_s: float = Field(15.0, gt=0.0, le=3600.0)  # a pipeline run with no event this long: reconnect
    max_event_bytes: int = Field(1024 * 1024, ge=4096, le=64 * 1024 * 1024)
    max_bad_events: int = Field(20, ge=1, le=100_000)  # malformed audio in one connection before it is cut
    audio_chunk_ms: int = Field(100, ge=10, le=2000)
    barge_in: bool = False  # listen while a reply plays, stop it when the user speaks (a mic that does not hear the speaker)


OPENAI_VOICE_NAMES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")


class OpenAIConfig(Section):
    enabled: bool = True
    voices: dict[str, str | None] = Field(default_factory=lambda: dict.fromkeys(OPENAI_VOICE_NAMES))
    stt_models: list[str] = Field(default_factory=lambda: ["whisper-1"], min_length=1)
    tts_models: list[str] = Field(default_factory=lambda: ["tts-1", "tts-1-hd"], min_length=1)
    chat_models: list[str] = Field(default_factory=lambda: ["luxa"], min_length=1)


class ServiceConfig(Section):
    watchdog_s: float = Field(30.0, ge=0.0, le=3600.0)
    state_dir: str = "~/.local/state/luxa"
    name: str = Field("luxa", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    restart_s: float = Field(5.0, gt=0.0, le=3600.0)
    start_limit_interval_s: float = Field(600.0, gt=0.0, le=86400.0)
    start_limit_burst: int = Field(5, ge=1, le=1000)
    start_timeout_s: float = Field(180.0, gt=0.0, le=3600.0)
    stop_timeout_s: float = Field(30.0, gt=0.0, le=3600.0)
    system_user: str = Field("luxa", pattern=r"^[a-z_][a-z0-9_-]*$")
    malloc_arenas: int = Field(2, ge=0, le=1024)
    nice: int = Field(-10, ge=-20, le=19)  # CPU priority (Core/niceness.py); below 0 needs privilege


class LoggingConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    format: Literal["auto", "text", "line"] = "auto"
    file: str | None = None
    file_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    file_backups: int = Field(3, ge=0, le=100)


class ModelsConfig(Section):
    dir: str = "models"
    fetch_retries: int = Field(3, ge=0, le=100)
    fetch_timeout_s: float = Field(30.0, gt=0.0, le=3600.0)


class IntentsConfig(Section):
    """Commands answered exactly, before the LLM (Home Assistant's hassil + home-assistant-intents)."""

    enabled: bool = True
    languages: list[str] = Field(default_factory=lambda: ["en", "fr"])
    time_zone: str | None = None  # an IANA name ("Europe/Paris"); null: the system's
    location: str | None = None  # where the assistant is ("Lyon, France"), told to the LLM
    volume_step: int = Field(10, ge=1, le=100)  # percent, for "louder" / "quieter"
    timer_max_s: float = Field(24 * 3600.0, gt=0.0)
    alert_hz: float = Field(880.0, ge=100.0, le=8000.0)  # the timer's alert tone
    # Whisper's prompt when a short utterance that matched no command is heard again (Orchestrator/hearing.py)
    stt_prompts: dict[str, str] = Field(default_factory=lambda: {
        "en": "Stop. Be quiet. What time is it? Set a timer for five minutes. How long is left on the timer? "
              "Pause the timer, resume the timer. Turn on the light. Dim the lamp to 20 percent. "
              "Speak softer, louder. Never mind.",
        "fr": "Allume la lumière. Baisse la lampe à 20 pour cent. Mets un minuteur de cinq minutes. "
              "Parle moins fort, plus fort. Laisse tomber. Quelle heure est-il ?",
    })


class HomeAssistantConfig(Section):
    url: str | None = None  # e.g. http://homeassistant.local:8123; null: no Home Assistant
    token_file: str | None = None  # a long-lived access token, in a file...
    token_env: str = "LUXA_HA_TOKEN"  # ...or in this environment variable
    import_entities: bool = False  # add Home Assistant's lights and switches to devices.entities
    timeout_s: float = Field(3.0, gt=0.0, le=60.0)


class MqttConfig(Section):
    host: str | None = None  # null: no broker
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password_env: str = "LUXA_MQTT_PASSWORD"
    timeout_s: float = Field(3.0, gt=0.0, le=60.0)


class DeviceEntity(Section):
    id: str = Field(pattern=r"^[a-z_]+\.[A-Za-z0-9_]+$")  # Home Assistant style: light.kitchen
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    area: str | None = None
    area_aliases: list[str] = Field(default_factory=list)  # the area in other words or languages ("cuisine")
    via: Literal["home_assistant", "mqtt"] = "mqtt"
    command_topic: str | None = None  # mqtt: where ON/OFF (and brightness) are published
    state_topic: str | None = None  # mqtt: a retained state to answer "is it on?"
    payload_on: str = "ON"
    payload_off: str = "OFF"


class DevicesConfig(Section):
    home_assistant: HomeAssistantConfig = Field(default_factory=HomeAssistantConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    entities: list[DeviceEntity] = Field(default_factory=list)


AUTO_MAX_CONTEXTS = 4  # llm.contexts=auto never loads more (each costs the model's KV cache: ~65 MB for SmolLM2)


class LuxaConfig(Section):
    audio: AudioConfig = Field(default_factory=AudioConfig)
    vad: VadConfig = Field(default_factory=VadConfig)
    wake_word: WakeWordConfig = Field(default_factory=WakeWordConfig)
    stt: SttConfig = Field(default_factory=SttConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    tts: TtsConfig = Field(default_factory=TtsConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    gpu: GpuConfig = Field(default_factory=GpuConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    wyoming: WyomingConfig = Field(default_factory=WyomingConfig)
    satellites: SatellitesConfig = Field(default_factory=SatellitesConfig)
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    intents: IntentsConfig = Field(default_factory=IntentsConfig)
    devices: DevicesConfig = Field(default_factory=DevicesConfig)

    def llm_contexts(self) -> int:
        """llm.contexts resolved. `auto`: 1 without satellites (a desktop's single voice loop pays no
        memory for contexts it never uses: the control API steps aside for it anyway); with
        satellites one per room plus the local loop (discovery counts as one room), at most
        AUTO_MAX_CONTEXTS, so that no room's question waits for another room's whole answer."""
        wanted = self.llm.contexts
        if wanted != "auto":
            return wanted
        rooms = max(len(self.satellites.rooms), 1 if self.satellites.discovery else 0)
        return 1 if rooms == 0 else min(rooms + 1, AUTO_MAX_CONTEXTS)
