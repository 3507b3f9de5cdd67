"""`service install|uninstall|start|stop|status`: run the assistant at boot (systemd or Windows)."""
from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from Core.errors import LuxaError

if TYPE_CHECKING:
    from Config.schema import MetricsConfig
    from Orchestrator.cli import Context
    from Orchestrator.service.systemd import UnitSpec
    from Orchestrator.service.windows import WindowsServiceSpec

HELP = "install, remove, start, stop or inspect the boot service (systemd unit or Windows service)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["install", "uninstall", "start", "stop", "status"])
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--user", dest="scope", action="store_const", const="user",
                       help="a user unit, in the session that owns the audio server (default)")
    scope.add_argument("--system", dest="scope", action="store_const", const="system",
                       help="a system unit running as service.system_user, with ALSA or a system audio server")
    parser.add_argument("--dry-run", action="store_true", help="print what would be installed; change nothing")


def run(args: argparse.Namespace, ctx: Context) -> int:
    if sys.platform == "win32":
        return _run_windows(args, ctx)
    return _run_systemd(args, ctx)


# --- Linux ---------------------------------------------------------------------------------


def _run_systemd(args: argparse.Namespace, ctx: Context) -> int:
    from Orchestrator.service import systemd

    spec = systemd.spec_from_config(ctx.config, args.scope or "user", ctx.config_path, tuple(ctx.overrides))
    if args.action == "install":
        return _install(systemd, spec, args.dry_run)
    if args.dry_run:
        raise LuxaError(f"--dry-run applies to install only, not {args.action}")
    if args.action == "uninstall":
        return _uninstall(systemd, spec)
    if args.action == "status":
        return _status(systemd, spec, ctx.config.metrics)
    if not systemd.systemd_running(spec.scope):
        raise LuxaError(f"systemd is not running here: cannot {args.action} {spec.unit_name}")
    systemd.run_checked(spec.scope, args.action, spec.unit_name)
    print(f"{args.action}: {spec.unit_name} done")
    return 0


def _ctl(spec: UnitSpec) -> str:
    return "systemctl" + (" --user" if spec.scope == "user" else "")


def _install(systemd: ModuleType, spec: UnitSpec, dry_run: bool) -> int:
    text = systemd.render_unit(spec)
    path = systemd.unit_path(spec)
    if dry_run:
        print(f"# {path}\n{text}", end="")
        return 0
    systemd.check_installable(spec)
    if spec.scope == "user":
        spec.state_dir.mkdir(parents=True, exist_ok=True)  # ReadWritePaths must exist at start
    spec.models_dir.mkdir(parents=True, exist_ok=True)
    systemd.write_unit(path, text)
    print(f"wrote {path}")
    if systemd.systemd_running(spec.scope):
        systemd.run_checked(spec.scope, "daemon-reload")
        systemd.run_checked(spec.scope, "enable", spec.unit_name)
        print(f"enabled {spec.unit_name}; start it now with: {_ctl(spec)} start {spec.name}")
    else:
        print(text, end="")
        print(f"systemd is not running here (a container?): the unit is written but not enabled. On a machine "
              f"booted with systemd run: {_ctl(spec)} daemon-reload && {_ctl(spec)} enable --now {spec.name}")
    _print_scope_notes(systemd, spec)
    return 0


def _print_scope_notes(systemd: ModuleType, spec: UnitSpec) -> None:
    if spec.scope == "user":
        import getpass

        user = getpass.getuser()
        if not systemd.linger_enabled(user):
            print(f"the unit starts when {user} logs in; to start it at boot without a login run: "
                  f"sudo loginctl enable-linger {user}")
        return
    import pwd

    assert spec.user is not None  # a system unit always names its user (spec_from_config)
    try:
        pwd.getpwnam(spec.user)
        print(f"runs as {spec.user}; it needs read access to {spec.repo} and membership of group audio")
    except KeyError:
        print(f"create the service user first: sudo useradd --system --home-dir {spec.state_dir} "
              f"--shell /usr/sbin/nologin --groups audio {spec.user}")
    print("a system unit has no user session: use ALSA (audio.input_device / output_device) "
          "or a system-wide PipeWire/PulseAudio server")


def _uninstall(systemd: ModuleType, spec: UnitSpec) -> int:
    path = systemd.unit_path(spec)
    if systemd.systemd_running(spec.scope):
        systemd.systemctl(spec.scope, "disable", "--now", spec.unit_name)  # may already be off
    if not path.exists():
        print(f"{spec.unit_name} is not installed ({path})")
        return 0
    if spec.scope == "system":
        systemd.check_installable(spec)
    path.unlink()
    if systemd.systemd_running(spec.scope):
        systemd.run_checked(spec.scope, "daemon-reload")
    print(f"removed {path}")
    return 0


def _status(systemd: ModuleType, spec: UnitSpec, metrics_config: MetricsConfig) -> int:
    path = systemd.unit_path(spec)
    installed = path.exists()
    print(f"unit: {path} ({'installed' if installed else 'not installed'})")
    active = False
    if systemd.systemd_running(spec.scope):
        result = systemd.systemctl(spec.scope, "is-active", spec.unit_name)
        active = result.stdout.strip() == "active"
        print(f"systemd: {result.stdout.strip() or 'unknown'}")
    else:
        print("systemd: not running here")
    if metrics_config.enabled:
        print(f"health: {_health_line(metrics_config)}")
    # systemctl's convention: 3 = not running
    return 0 if installed and active else 3


def _health_line(metrics_config: MetricsConfig) -> str:
    host = f"[{metrics_config.host}]" if ":" in metrics_config.host else metrics_config.host
    url = f"http://{host}:{metrics_config.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            report = json.loads(response.read())
        return f"{report.get('state', 'unknown')} ({url})"
    except (urllib.error.URLError, OSError, ValueError) as err:
        return f"no answer from {url} ({getattr(err, 'reason', err)})"


# --- Windows -------------------------------------------------------------------------------


def _run_windows(args: argparse.Namespace, ctx: Context) -> int:
    from Orchestrator.service import systemd, windows

    if args.scope == "user":
        raise LuxaError("Windows services are machine-wide: drop --user")
    repo = systemd.REPO
    config_path = str(Path(ctx.config_path).resolve()) if ctx.config_path else str(repo / "Config" / "assistant.yaml")
    spec = windows.spec_from_config(ctx.config, config_path, str(systemd.venv_python(repo)), str(repo),
                                    tuple(ctx.overrides))
    if args.action == "install" and args.dry_run:
        print(f"service {spec.name}: {windows.python_class_string(spec.repo)}")
        print(f"runs: {windows.daemon_command_line(spec)}")
        for command in (windows.failure_actions_command(spec), windows.failure_flag_command(spec)):
            print(" ".join(command))
        return 0
    try:
        return _windows_action(windows, spec, args.action)
    except windows.WINDOWS_ERRORS as err:
        raise LuxaError(f"service {args.action} {spec.name}: {getattr(err, 'strerror', None) or err}") from None


def _windows_action(windows: ModuleType, spec: WindowsServiceSpec, action: str) -> int:
    if action == "install":
        windows.install(spec)
        print(f"installed service {spec.name} (automatic start); start it now with: "
              f"python run_assistant.py service start")
    elif action == "uninstall":
        windows.uninstall(spec.name)
        print(f"removed service {spec.name}")
    elif action == "start":
        windows.start(spec.name)
    elif action == "stop":
        windows.stop(spec.name)
    else:
        state = windows.status(spec.name)
        print(f"service {spec.name}: {state}; log: {spec.log_file}")
        return 0 if state == "running" else 3
    return 0
