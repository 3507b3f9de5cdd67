"""The Windows service on Linux: it imports without pywin32, and what its installer would write
(command lines, registry values) is computed by pure functions tested here. It has not been run
on Windows."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from Core.errors import LuxaError
from Orchestrator.service import windows

REPO = r"C:\Users\Ana Lima\luxa"
PYTHON = r"C:\Users\Ana Lima\luxa\.venv\Scripts\python.exe"


@pytest.fixture
def spec(default_config):
    return windows.spec_from_config(default_config, REPO + r"\Config\assistant.yaml", PYTHON, REPO,
                                    ("metrics.enabled=true",))


def test_module_imports_without_pywin32_in_a_fresh_interpreter(repo_root):
    code = ("import sys; sys.modules['win32serviceutil'] = None\n"  # as if pywin32 were absent
            "from Orchestrator.service import windows\n"
            "print(windows.win32serviceutil is None, hasattr(windows, 'LuxaService'), windows.WINDOWS_ERRORS)")
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True False ()"


def test_acting_without_pywin32_is_a_one_line_error(spec):
    with pytest.raises(LuxaError, match="needs pywin32"):
        windows.install(spec)
    with pytest.raises(LuxaError, match="needs pywin32"):
        windows.status(spec.name)


def test_python_class_string_puts_the_repo_on_sys_path_and_imports_the_package_module():
    assert windows.python_class_string(REPO) == r"C:\Users\Ana Lima\luxa\Orchestrator.service.windows.LuxaService"


def test_daemon_command_runs_the_venv_python_on_run_assistant_with_the_config(spec):
    assert windows.daemon_command(spec) == [
        PYTHON, REPO + r"\run_assistant.py", "--config", REPO + r"\Config\assistant.yaml",
        "--set", "metrics.enabled=true"]


def test_daemon_command_line_quotes_paths_with_spaces_for_windows(spec):
    assert windows.daemon_command_line(spec) == (
        r'"C:\Users\Ana Lima\luxa\.venv\Scripts\python.exe" "C:\Users\Ana Lima\luxa\run_assistant.py" '
        r'--config "C:\Users\Ana Lima\luxa\Config\assistant.yaml" --set metrics.enabled=true')


def test_recovery_restarts_after_the_configured_delay_and_resets_after_the_window(spec, default_config):
    svc = default_config.service
    delay = int(svc.restart_s * 1000)
    assert windows.failure_actions_command(spec) == [
        "sc.exe", "failure", "luxa", "reset=", str(int(svc.start_limit_interval_s)),
        "actions=", f"restart/{delay}/restart/{delay}/restart/{delay}"]
    assert windows.failure_flag_command(spec) == ["sc.exe", "failureflag", "luxa", "1"]


def test_registry_settings_start_automatically_after_audio_and_log_to_the_event_log(spec, default_config):
    settings = windows.registry_settings(spec, r"C:\venv\Lib\site-packages\win32\servicemanager.pyd")
    service = settings[r"SYSTEM\CurrentControlSet\Services\luxa"]
    assert service["Start"] == 2  # SERVICE_AUTO_START
    assert service["DependOnService"] == ["Audiosrv"]
    assert settings[r"SYSTEM\CurrentControlSet\Services\luxa\PythonClass"] == {"": windows.python_class_string(REPO)}
    params = settings[r"SYSTEM\CurrentControlSet\Services\luxa\Parameters"]
    assert json.loads(params["Command"]) == windows.daemon_command(spec)
    assert params["LogMaxBytes"] == default_config.logging.file_max_bytes
    assert params["LogBackups"] == default_config.logging.file_backups
    assert params["StopTimeoutS"] == f"{default_config.service.stop_timeout_s:g}"
    eventlog = settings[r"SYSTEM\CurrentControlSet\Services\EventLog\Application\luxa"]
    assert eventlog == {"EventMessageFile": r"C:\venv\Lib\site-packages\win32\servicemanager.pyd", "TypesSupported": 7}
    # every value has a registry type the installer knows how to write
    assert all(type(v) in (int, str, list) for values in settings.values() for v in values.values())


def test_log_file_defaults_to_the_state_dir_unless_logging_file_is_set(default_config):
    spec = windows.spec_from_config(default_config, "c.yaml", PYTHON, REPO)
    assert spec.log_file.endswith(r"luxa\luxa-service.log")
    cfg = default_config.model_copy(update={"logging": default_config.logging.model_copy(
        update={"file": r"D:\logs\luxa.log"})})
    assert windows.spec_from_config(cfg, "c.yaml", PYTHON, REPO).log_file == r"D:\logs\luxa.log"


def test_the_daemon_gets_the_same_service_environment_as_under_systemd():
    env = windows.child_environment({"PATH": "x", "LUXA_LOGGING__FORMAT": "text"})
    assert env == {"PATH": "x", "PYTHONUNBUFFERED": "1", "LUXA_LOGGING__FORMAT": "line"}


def test_service_command_dry_run_prints_the_windows_plan(default_config, monkeypatch, capsys):
    import argparse

    from Orchestrator.commands import service

    monkeypatch.setattr(sys, "platform", "win32")
    ctx = argparse.Namespace(config=default_config, config_path=None, overrides=[])
    assert service.run(argparse.Namespace(action="install", scope=None, dry_run=True), ctx) == 0
    out = capsys.readouterr().out
    assert "Orchestrator.service.windows.LuxaService" in out and "sc.exe failureflag luxa 1" in out
    with pytest.raises(LuxaError, match="machine-wide: drop --user"):
        service.run(argparse.Namespace(action="install", scope="user", dry_run=True), ctx)
