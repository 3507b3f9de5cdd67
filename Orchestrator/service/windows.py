"""A Windows service (pywin32's service framework) that runs the same daemon as on Linux.

The service host (pythonservice.exe) only supervises: it starts `python run_assistant.py` as a
child, copies its output to a rotating log file, writes start/stop/crash to the Windows event
log, and stops the child on a service stop. A daemon that exits with an error makes the service
fail, and the recovery actions (`sc failure`) restart it.

What the installer writes (command lines, registry values) comes from pure functions so it is
tested on Linux; pywin32 is imported only when present. Not yet run on a Windows machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import TYPE_CHECKING, Any

from Orchestrator.service.supervisor import SERVICE_ENVIRONMENT, rotating_logger, run_child

if TYPE_CHECKING:
    from Config.schema import LuxaConfig

try:  # pywin32 exists on Windows only (pyproject installs it there)
    import pywintypes
    import servicemanager
    import win32service
    import win32serviceutil

    # what the service control manager, the registry and sc.exe raise
    WINDOWS_ERRORS: tuple[type[BaseException], ...] = (pywintypes.error, OSError, subprocess.CalledProcessError)
except ImportError:
    win32serviceutil = None
    WINDOWS_ERRORS = ()

SERVICES_KEY = r"SYSTEM\CurrentControlSet\Services"
EVENTLOG_KEY = r"SYSTEM\CurrentControlSet\Services\EventLog\Application"
SERVICE_AUTO_START = 2  # the Start value of a service that starts at boot
EVENTLOG_TYPES = 7  # error | warning | information
AUDIO_SERVICE = "Audiosrv"  # Windows Audio: microphone and speaker need it running first
RESTART_ATTEMPTS = 3  # recovery actions for the 1st, 2nd and later failures


@dataclass(frozen=True)
class WindowsServiceSpec:
    name: str
    display_name: str
    description: str
    repo: str
    python: str
    config_path: str
    log_file: str
    log_max_bytes: int
    log_backups: int
    restart_s: float
    reset_s: float
    stop_timeout_s: float
    overrides: tuple[str, ...] = ()


def spec_from_config(config: LuxaConfig, config_path: str, python: str, repo: str,
                     overrides: tuple[str, ...] = ()) -> WindowsServiceSpec:
    svc, logs = config.service, config.logging
    log_file = logs.file or str(PureWindowsPath(os.path.expanduser(svc.state_dir), f"{svc.name}-service.log"))
    return WindowsServiceSpec(
        name=svc.name, display_name="LUXA voice assistant",
        description="Local voice assistant: microphone -> speech recognition -> local LLM -> speech.",
        repo=repo, python=python, config_path=config_path, log_file=log_file,
        log_max_bytes=logs.file_max_bytes, log_backups=logs.file_backups,
        restart_s=svc.restart_s, reset_s=svc.start_limit_interval_s, stop_timeout_s=svc.stop_timeout_s,
        overrides=tuple(overrides),
    )


def python_class_string(repo: str) -> str:
    """pythonservice.exe puts the part before the last backslash on sys.path, then imports the
    dotted rest: the repo root and the package path, so the package's imports resolve."""
    return f"{PureWindowsPath(repo)}\\Orchestrator.service.windows.LuxaService"


def daemon_command(spec: WindowsServiceSpec) -> list[str]:
    command = [spec.python, str(PureWindowsPath(spec.repo, "run_assistant.py")), "--config", spec.config_path]
    for item in spec.overrides:
        command += ["--set", item]
    return command


def daemon_command_line(spec: WindowsServiceSpec) -> str:
    """As Windows will parse it (MS C runtime quoting)."""
    return subprocess.list2cmdline(daemon_command(spec))


def failure_actions_command(spec: WindowsServiceSpec) -> list[str]:
    """Restart after restart_s on each failure; the failure count resets after reset_s."""
    delay_ms = int(spec.restart_s * 1000)
    actions = "/".join(f"restart/{delay_ms}" for _ in range(RESTART_ATTEMPTS))
    return ["sc.exe", "failure", spec.name, "reset=", str(int(spec.reset_s)), "actions=", actions]


def failure_flag_command(spec: WindowsServiceSpec) -> list[str]:
    """Without the flag, recovery runs only if the host crashes, not when it stops with an error."""
    return ["sc.exe", "failureflag", spec.name, "1"]


def parameters(spec: WindowsServiceSpec) -> dict[str, object]:
    """What the service reads at start (Services\\<name>\\Parameters)."""
    return {
        "Command": json.dumps(daemon_command(spec)),
        "LogFile": spec.log_file,
        "LogMaxBytes": spec.log_max_bytes,
        "LogBackups": spec.log_backups,
        "StopTimeoutS": f"{spec.stop_timeout_s:g}",
    }


def registry_settings(spec: WindowsServiceSpec, event_message_file: str) -> dict[str, dict[str, object]]:
    """Every registry value an install leaves, by key under HKEY_LOCAL_MACHINE ('' = default value).
    int -> REG_DWORD, str -> REG_SZ, list -> REG_MULTI_SZ."""
    service_key = f"{SERVICES_KEY}\\{spec.name}"
    return {
        service_key: {"Start": SERVICE_AUTO_START, "DisplayName": spec.display_name,
                      "Description": spec.description, "DependOnService": [AUDIO_SERVICE]},
        f"{service_key}\\PythonClass": {"": python_class_string(spec.repo)},
        f"{service_key}\\Parameters": parameters(spec),
        f"{EVENTLOG_KEY}\\{spec.name}": {"EventMessageFile": event_message_file,
                                          "TypesSupported": EVENTLOG_TYPES},
    }


def child_environment(base: dict[str, str]) -> dict[str, str]:
    return {**base, **SERVICE_ENVIRONMENT}


# --- acting on Windows (pywin32) -------------------------------------------------------------


def _require_pywin32() -> None:
    if win32serviceutil is None:
        from Core.errors import LuxaError

        raise LuxaError("the Windows service needs pywin32 (pip install pywin32, then run "
                        "`python Scripts/pywin32_postinstall.py -install` from the venv as administrator)")


def _write_values(key_path: str, values: dict[str, object]) -> None:
    if sys.platform != "win32":  # the registry exists only there (this also tells mypy what winreg has)
        from Core.errors import LuxaError

        raise LuxaError("the service registry exists only on Windows")
    import winreg

    kinds = {int: winreg.REG_DWORD, str: winreg.REG_SZ, list: winreg.REG_MULTI_SZ}
    with winreg.CreateKey(winreg.HKEY_LOCAL_MACHINE, key_path) as key:
        for name, value in values.items():
            winreg.SetValueEx(key, name, 0, kinds[type(value)], value)


def install(spec: WindowsServiceSpec) -> None:
    _require_pywin32()
    import win32evtlogutil

    win32serviceutil.InstallService(
        python_class_string(spec.repo), spec.name, spec.display_name,
        startType=win32service.SERVICE_AUTO_START, serviceDeps=[AUDIO_SERVICE],
        description=spec.description,
    )
    _write_values(f"{SERVICES_KEY}\\{spec.name}\\Parameters", parameters(spec))
    win32evtlogutil.AddSourceToRegistry(spec.name, servicemanager.__file__, "Application")
    for command in (failure_actions_command(spec), failure_flag_command(spec)):
        subprocess.run(command, check=True, capture_output=True)


def uninstall(name: str) -> None:
    _require_pywin32()
    try:
        win32serviceutil.StopService(name)
    except Exception:  # already stopped: removing it is what was asked
        pass
    win32serviceutil.RemoveService(name)


def start(name: str) -> None:
    _require_pywin32()
    win32serviceutil.StartService(name)


def stop(name: str) -> None:
    _require_pywin32()
    win32serviceutil.StopService(name)


STATE_NAMES = {1: "stopped", 2: "starting", 3: "stopping", 4: "running", 5: "resuming", 6: "pausing", 7: "paused"}


def status(name: str) -> str:
    _require_pywin32()
    return STATE_NAMES.get(win32serviceutil.QueryServiceStatus(name)[1], "unknown")


def _read_parameters(name: str) -> dict[str, Any]:
    if sys.platform != "win32":  # the registry exists only there (this also tells mypy what winreg has)
        from Core.errors import LuxaError

        raise LuxaError("the service registry exists only on Windows")
    import winreg

    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, f"{SERVICES_KEY}\\{name}\\Parameters") as key:
        return {field: winreg.QueryValueEx(key, field)[0] for field in
                ("Command", "LogFile", "LogMaxBytes", "LogBackups", "StopTimeoutS")}


if win32serviceutil is not None:

    class LuxaService(win32serviceutil.ServiceFramework):
        _svc_name_ = "luxa"  # the installed name comes from the SCM (args[0])
        _svc_display_name_ = "LUXA voice assistant"

        def __init__(self, args: list[str]) -> None:
            super().__init__(args)
            self._name = args[0]
            self._stop = threading.Event()

        def SvcStop(self) -> None:
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
            self._stop.set()

        def SvcDoRun(self) -> None:
            p = _read_parameters(self._name)
            log = rotating_logger(self._name, p["LogFile"], int(p["LogMaxBytes"]), int(p["LogBackups"]))
            servicemanager.LogInfoMsg(f"{self._name}: starting the daemon, log in {p['LogFile']}")
            outcome = run_child(json.loads(p["Command"]), self._stop, log, float(p["StopTimeoutS"]),
                                env=child_environment(dict(os.environ)))
            if outcome.failed:
                servicemanager.LogErrorMsg(f"{self._name}: the daemon exited with code {outcome.exit_code}:\n"
                                           + "\n".join(outcome.tail))
                # an exception reports a service-specific error: the recovery actions restart it
                raise RuntimeError(f"daemon exited with code {outcome.exit_code}")
            servicemanager.LogInfoMsg(f"{self._name}: stopped")
