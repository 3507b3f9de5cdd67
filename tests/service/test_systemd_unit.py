"""The generated systemd unit: what it says, that systemd-analyze accepts it, and the install command."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from Core.errors import LuxaError
from Orchestrator.service import systemd

needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze missing (scripts/setup.sh --test installs systemd)")


def unit_settings(text: str) -> dict[str, list[str]]:
    """Key -> every value it is given (Environment= repeats)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


@pytest.fixture
def user_spec(default_config):
    return systemd.spec_from_config(default_config, "user", None)


@pytest.fixture
def system_spec(default_config):
    return systemd.spec_from_config(default_config, "system", None)


def verify(unit_text: str, tmp_path: Path, scope: str, name: str = "luxa.service") -> subprocess.CompletedProcess:
    """systemd-analyze verify, offline: a private runtime dir stands in for the user's session."""
    path = tmp_path / name
    path.write_text(unit_text)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    cmd = ["systemd-analyze"] + (["--user"] if scope == "user" else []) + ["verify", "--man=no", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})


def test_user_unit_is_type_notify_with_the_watchdog_and_restart_policy(user_spec, default_config):
    s = unit_settings(systemd.render_unit(user_spec))
    svc = default_config.service
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == [f"{svc.watchdog_s:g}s"]
    assert s["Restart"] == ["on-failure"] and s["RestartSec"] == [f"{svc.restart_s:g}s"]
    assert s["StartLimitIntervalSec"] == [f"{svc.start_limit_interval_s:g}s"]
    assert s["StartLimitBurst"] == [str(svc.start_limit_burst)]
    assert s["TimeoutStartSec"] == [f"{svc.start_timeout_s:g}s"]
    assert s["WantedBy"] == ["default.target"]


def test_unit_runs_the_project_venv_with_the_config_from_the_repo(user_spec, repo_root):
    s = unit_settings(systemd.render_unit(user_spec))
    assert s["ExecStart"] == [f"{repo_root}/.venv/bin/python {repo_root}/run_assistant.py "
                              f"--config {repo_root}/Config/assistant.yaml"]
    assert s["WorkingDirectory"] == [str(repo_root)]
    assert "PYTHONUNBUFFERED=1" in s["Environment"] and "LUXA_LOGGING__FORMAT=line" in s["Environment"]


def test_unit_is_hardened_with_writable_models_and_state_only(user_spec, repo_root):
    s = unit_settings(systemd.render_unit(user_spec))
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectControlGroups", "RestrictSUIDSGID", "LockPersonality"):
        assert s[key] == ["yes"], key
    assert s["ProtectSystem"] == ["strict"]
    assert s["ReadWritePaths"] == [f"{repo_root}/models {Path('~/.local/state/luxa').expanduser()}"]
    # the user's audio socket and the repo may live in the home: a user unit keeps it visible
    assert "ProtectHome" not in s
    # /dev/snd and the GPU device nodes must stay visible
    assert "PrivateDevices" not in s


def test_system_unit_runs_as_the_service_user_with_audio_group_and_read_only_home(system_spec):
    s = unit_settings(systemd.render_unit(system_spec))
    assert s["User"] == ["luxa"] and s["SupplementaryGroups"] == ["audio"]
    assert s["ProtectHome"] == ["read-only"]
    assert s["StateDirectory"] == ["luxa"]
    assert "LUXA_SERVICE__STATE_DIR=/var/lib/luxa" in s["Environment"]
    assert s["ReadWritePaths"][0].endswith("/models /var/lib/luxa")
    assert s["WantedBy"] == ["multi-user.target"]
    assert s["Nice"] == ["-10"]  # service.nice, set by systemd before it drops to User=


def test_a_user_unit_sets_no_niceness(user_spec):
    """A user manager cannot lower it: Nice=-10 there would fail the start; the daemon tries itself."""
    assert "Nice" not in unit_settings(systemd.render_unit(user_spec))


def test_a_zero_watchdog_leaves_watchdogsec_out(user_spec):
    assert "WatchdogSec" not in unit_settings(systemd.render_unit(replace(user_spec, watchdog_s=0.0)))


def test_config_overrides_given_to_install_are_passed_to_the_service(default_config):
    spec = systemd.spec_from_config(default_config, "user", None, ("metrics.enabled=true",))
    assert unit_settings(systemd.render_unit(spec))["ExecStart"][0].endswith("--set metrics.enabled=true")


def test_quote_escapes_specifiers_and_wraps_spaces():
    assert systemd.quote("/opt/luxa") == "/opt/luxa"
    assert systemd.quote("/opt/my luxa") == '"/opt/my luxa"'
    assert systemd.quote("/opt/100%") == "/opt/100%%"
    assert systemd.quote('a"b') == '"a\\"b"'


@needs_systemd_analyze
@pytest.mark.parametrize("scope", ["user", "system"])
def test_systemd_analyze_verify_accepts_the_unit(scope, default_config, tmp_path):
    spec = systemd.spec_from_config(default_config, scope, None)
    result = verify(systemd.render_unit(spec), tmp_path, scope)
    # verify exits 0 even for unknown keys; any message at all is a defect in the unit
    assert result.returncode == 0 and result.stderr == "" and result.stdout == "", result.stderr


@needs_systemd_analyze
def test_systemd_analyze_verify_accepts_paths_with_spaces_percent_and_dollar(default_config, tmp_path, repo_root):
    repo = tmp_path / "my $HOME 100% luxa"
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").symlink_to(repo_root / ".venv" / "bin" / "python")
    (repo / "run_assistant.py").write_text("")
    spec = systemd.spec_from_config(default_config, "user", repo / "cfg.yaml", ("llm.system_prompt=Be brief",), repo=repo)
    text = systemd.render_unit(spec)
    result = verify(text, tmp_path, "user")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "$$HOME 100%%" in unit_settings(text)["ExecStart"][0]


@needs_systemd_analyze
def test_systemd_analyze_verify_rejects_a_unit_whose_interpreter_is_missing(user_spec, tmp_path):
    """The check above can fail: the same unit with a missing interpreter does not pass."""
    spec = replace(user_spec, python=tmp_path / "no-venv" / "python")
    result = verify(systemd.render_unit(spec), tmp_path, "user")
    assert result.returncode != 0 and "no-venv/python" in result.stderr


# --- the command -------------------------------------------------------------------------------


def service_env(tmp_path: Path) -> dict[str, str]:
    """A private home, so the user unit and the state dir land in tmp_path."""
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config"),
            "LUXA_SERVICE__STATE_DIR": str(tmp_path / "state")}


def test_dry_run_prints_the_unit_and_writes_nothing(run_cli, tmp_path):
    result = run_cli("service", "install", "--dry-run", env=service_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# {tmp_path}/.config/systemd/user/luxa.service\n")
    assert "Type=notify" in result.stdout and "WatchdogSec=30s" in result.stdout
    assert not (tmp_path / ".config").exists() and not (tmp_path / "state").exists()


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="would enable a real unit on this machine")
def test_install_writes_the_user_unit_then_status_and_uninstall_see_it(run_cli, tmp_path):
    env = service_env(tmp_path)
    unit = tmp_path / ".config" / "systemd" / "user" / "luxa.service"
    result = run_cli("service", "install", env=env)
    assert result.returncode == 0, result.stderr
    assert unit.read_text() in result.stdout  # printed, since there is no systemd to enable it
    assert "systemd is not running here" in result.stdout
    assert "systemctl --user daemon-reload && systemctl --user enable --now luxa" in result.stdout
    import getpass

    assert ("loginctl enable-linger" in result.stdout) != systemd.linger_enabled(getpass.getuser())
    assert (tmp_path / "state").is_dir()
    assert "ReadWritePaths=" in unit.read_text() and str(tmp_path / "state") in unit.read_text()

    status = run_cli("service", "status", env=env)
    assert status.returncode == 3 and "(installed)" in status.stdout  # installed, not running

    removed = run_cli("service", "uninstall", env=env)
    assert removed.returncode == 0 and not unit.exists()
    assert "(not installed)" in run_cli("service", "status", env=env).stdout


def test_system_install_by_a_non_root_user_is_a_one_line_error(system_spec, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LuxaError, match="needs root: run it with sudo"):
        systemd.check_installable(system_spec)


def test_install_without_the_venv_is_a_one_line_error(user_spec, tmp_path):
    with pytest.raises(LuxaError, match="run scripts/setup.sh first"):
        systemd.check_installable(replace(user_spec, python=tmp_path / "python"))


def test_dry_run_with_another_action_is_refused(run_cli, tmp_path):
    result = run_cli("service", "status", "--dry-run", env=service_env(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == "luxa: error: --dry-run applies to install only, not status"


def test_system_dry_run_says_how_the_service_user_is_made(run_cli, tmp_path):
    result = run_cli("service", "install", "--system", "--dry-run", env=service_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# /etc/systemd/system/luxa.service\n") and "User=luxa" in result.stdout


def test_system_install_writes_the_unit_and_names_the_user_to_create(default_config, tmp_path, monkeypatch, capsys):
    from Orchestrator.commands import service

    monkeypatch.setattr(systemd, "SYSTEM_UNIT_DIR", tmp_path)
    monkeypatch.setattr(systemd, "systemd_running", lambda scope: False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    ctx = argparse.Namespace(config=default_config.model_copy(update={"service": default_config.service.model_copy(
        update={"system_user": "luxa_test_nobody"})}), config_path=None, overrides=[])
    args = argparse.Namespace(action="install", scope="system", dry_run=False)
    assert service.run(args, ctx) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "luxa.service").read_text() in out
    assert "sudo useradd --system --home-dir /var/lib/luxa --shell /usr/sbin/nologin --groups audio luxa_test_nobody" in out


async def test_status_reports_the_daemon_health_when_metrics_are_on(run_cli, tmp_path):
    import asyncio

    from Config.schema import MetricsConfig
    from Orchestrator.service.http import start_http

    handle = await start_http(MetricsConfig.model_construct(host="127.0.0.1", port=0), lambda: {"state": "listening"})
    try:
        result = await asyncio.to_thread(run_cli, "service", "status", "--set", "metrics.enabled=true",
                                         "--set", f"metrics.port={handle.port}", env=service_env(tmp_path))
    finally:
        await handle.close()
    assert f"health: listening (http://127.0.0.1:{handle.port}/health)" in result.stdout
    stopped = run_cli("service", "status", "--set", "metrics.enabled=true",
                      "--set", f"metrics.port={handle.port}", env=service_env(tmp_path))
    assert f"health: no answer from http://127.0.0.1:{handle.port}/health" in stopped.stdout
