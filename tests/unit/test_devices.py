"""`devices --pick` saves the choice into the YAML in place, comments and all."""
from __future__ import annotations

import shutil

import pytest

from Config import load_config
from Config.loader import DEFAULT_CONFIG_PATH
from Orchestrator.commands.devices import save_device_choice


def test_the_chosen_devices_are_written_and_the_comments_survive(tmp_path):
    path = tmp_path / "assistant.yaml"
    shutil.copyfile(DEFAULT_CONFIG_PATH, path)
    save_device_choice(str(path), "USB Microphone: Audio (hw:1,0)", None)
    text = path.read_text()
    assert "# microphone: index or part of the name" in text
    config = load_config(path, environ={})
    assert config.audio.input_device == "USB Microphone: Audio (hw:1,0)"
    assert config.audio.output_device is None
    assert config.model_dump(exclude={"audio"}) == load_config(environ={}).model_dump(exclude={"audio"})


def test_devices_lists_nothing_and_points_to_text_mode_without_audio_hardware(run_cli, tmp_path):
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "PULSE_SERVER": ""}
    done = run_cli("devices", env=env, timeout=60)
    if done.returncode == 0:
        pytest.skip("this machine has audio devices")
    assert done.returncode == 1 and "--text" in done.stderr and "Traceback" not in done.stderr
