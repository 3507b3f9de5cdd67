"""Config/assistant.yaml and the schema agree; bad values fail with one line naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from Config import DEFAULT_CONFIG_PATH, LuxaConfig, load_config
from Core.errors import ConfigError


def _schema_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys |= _schema_keys(field.annotation, f"{prefix}{name}.")
    return keys


def _yaml_keys(node: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in node.items():
        keys.add(prefix + str(name))
        if isinstance(value, dict):
            keys |= _yaml_keys(value, f"{prefix}{name}.")
    return keys


def _config_error(**kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={}, **kwargs)
    message = str(caught.value)
    assert "\n" not in message, f"error is not one line: {message!r}"
    return message


def test_schema_defaults_equal_the_shipped_yaml():
    from_yaml = load_config(DEFAULT_CONFIG_PATH, environ={})
    assert from_yaml.model_dump() == LuxaConfig().model_dump()


def test_every_schema_key_appears_in_the_shipped_yaml():
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    missing = _schema_keys(LuxaConfig) - _yaml_keys(data)
    assert not missing, f"keys missing from assistant.yaml: {sorted(missing)}"


def test_unknown_key_is_named_with_the_allowed_keys():
    message = _config_error(overrides=["stt.nope=1"])
    assert "stt.nope" in message
    assert "beam_size" in message and "language" in message


def test_unknown_key_inside_a_named_backend_lists_that_backend_keys():
    message = _config_error(overrides=["stt.backends.whisper_base.colour=red"])
    assert "stt.backends.whisper_base.colour" in message
    assert "compute_type" in message


def test_unknown_section_is_named():
    message = _config_error(overrides=["sound.volume=3"])
    assert "sound" in message and "audio" in message


def test_wrong_type_names_the_key_and_the_expected_type():
    message = _config_error(overrides=["stt.beam_size=banana"])
    assert "stt.beam_size" in message
    assert "integer" in message and "banana" in message
    assert ">= 1" in message and "<= 10" in message


def test_out_of_range_names_the_key_and_the_range():
    message = _config_error(overrides=["stt.beam_size=50"])
    assert "stt.beam_size" in message
    assert ">= 1" in message and "<= 10" in message  # the whole range, not only the bound crossed
    assert "50" in message


def test_literal_choice_lists_the_allowed_values():
    message = _config_error(overrides=["gpu.on_missing=maybe"])
    assert "gpu.on_missing" in message
    assert "'cpu'" in message and "'fail'" in message


def test_set_overrides_a_plain_key():
    assert load_config(overrides=["stt.beam_size=5"], environ={}).stt.beam_size == 5


def test_set_overrides_a_nested_backend_key_and_keeps_its_siblings():
    cfg = load_config(overrides=["stt.backends.tiny_en.enabled=false"], environ={})
    assert cfg.stt.backends["tiny_en"].enabled is False
    assert cfg.stt.backends["tiny_en"].model == "tiny.en"
    assert cfg.stt.backends["whisper_base"].enabled is True


def test_set_adds_a_new_backend():
    cfg = load_config(overrides=["llm.backends.server.kind=openai", "llm.backends.server.model=remote",
                                 "llm.backends.server.url=http://127.0.0.1:8080/v1"], environ={})
    assert cfg.llm.backends["server"].kind == "openai"
    assert "primary" in cfg.llm.backends


def test_set_reaches_a_key_with_a_dot_in_its_name():
    cfg = load_config(overrides=["tts.clone.models.0.6B=/srv/qwen-small", "tts.clone.model_size=0.6B"], environ={})
    assert cfg.tts.clone.models["0.6B"] == "/srv/qwen-small"
    assert cfg.tts.clone.models["1.7B"] == LuxaConfig().tts.clone.models["1.7B"]  # its sibling is kept


def test_set_without_equals_sign_is_rejected():
    assert "key=value" in _config_error(overrides=["stt.beam_size"])


def test_set_through_a_plain_value_is_rejected():
    assert "stt.beam_size" in _config_error(overrides=["stt.beam_size.x=1"])


def test_environment_variable_overrides_a_key():
    assert load_config(environ={"LUXA_STT__BEAM_SIZE": "4"}).stt.beam_size == 4


def test_environment_variable_reaches_a_nested_backend():
    cfg = load_config(environ={"LUXA_STT__BACKENDS__TINY_EN__ENABLED": "false"})
    assert cfg.stt.backends["tiny_en"].enabled is False


def test_set_wins_over_the_environment():
    cfg = load_config(overrides=["stt.beam_size=3"], environ={"LUXA_STT__BEAM_SIZE": "4"})
    assert cfg.stt.beam_size == 3


def test_environment_variable_with_a_bad_value_names_the_key():
    with pytest.raises(ConfigError, match="stt.beam_size"):
        load_config(environ={"LUXA_STT__BEAM_SIZE": "many"})


def test_unrelated_luxa_variables_are_ignored():
    assert load_config(environ={"LUXA_CORPUS": "/x", "LUXA_MODELS_BASE_URL": "http://x"}) == LuxaConfig()


def test_invalid_yaml_file_names_the_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stt:\n  beam_size: [1,\n", encoding="utf-8")
    message = _config_error(path=bad)
    assert str(bad) in message and "line" in message


def test_yaml_that_is_not_a_mapping_is_rejected(tmp_path: Path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n", encoding="utf-8")
    assert "mapping" in _config_error(path=bad)


def test_missing_explicit_config_file_is_named(tmp_path: Path):
    missing = tmp_path / "nowhere.yaml"
    message = _config_error(path=missing)
    assert "not found" in message and str(missing) in message


def test_partial_config_file_keeps_defaults_for_the_rest(tmp_path: Path):
    partial = tmp_path / "partial.yaml"
    partial.write_text("stt:\n  beam_size: 2\n", encoding="utf-8")
    cfg = load_config(partial, environ={})
    assert cfg.stt.beam_size == 2
    assert cfg.llm == LuxaConfig().llm
