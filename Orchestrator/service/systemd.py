"""A systemd unit for the daemon: rendered by pure functions, installed with systemctl when there is one.

The default is a user unit because the audio server (PipeWire, PulseAudio) lives in the user's
session; a system unit runs as a dedicated user with ALSA or a system-wide audio server.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from Core.errors import LuxaError
from Core.files import atomic_write
from Orchestrator.service.supervisor import SERVICE_ENVIRONMENT

if TYPE_CHECKING:
    from Config.schema import LuxaConfig

Scope = Literal["user", "system"]
REPO = Path(__file__).resolve().parents[2]
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
SYSTEM_STATE_ROOT = Path("/var/lib")


@dataclass(frozen=True)
class UnitSpec:
    """Everything the unit says, resolved to absolute paths; values come from config.service."""

    scope: Scope
    name: str
    repo: Path
    python: Path
    config_path: Path
    state_dir: Path
    models_dir: Path
    watchdog_s: float
    restart_s: float
    start_limit_interval_s: float
    start_limit_burst: int
    start_timeout_s: float
    stop_timeout_s: float
    user: str | None = None
    nice: int = 0
    overrides: tuple[str, ...] = field(default_factory=tuple)

    @property
    def unit_name(self) -> str:
        return f"{self.name}.service"


def spec_from_config(config: LuxaConfig, scope: Scope, config_path: str | os.PathLike | None,
                     overrides: tuple[str, ...] = (), repo: Path = REPO) -> UnitSpec:
    svc = config.service
    models_dir = Path(config.models.dir).expanduser()
    # a system service has no home to put state in: systemd creates /var/lib/<name> for it
    state_dir = (SYSTEM_STATE_ROOT / svc.name) if scope == "system" else Path(svc.state_dir).expanduser()
    return UnitSpec(
        scope=scope, name=svc.name, repo=repo, python=venv_python(repo),
        config_path=Path(config_path).resolve() if config_path else repo / "Config" / "assistant.yaml",
        state_dir=state_dir, models_dir=models_dir if models_dir.is_absolute() else repo / models_dir,
        watchdog_s=svc.watchdog_s, restart_s=svc.restart_s,
        start_limit_interval_s=svc.start_limit_interval_s, start_limit_burst=svc.start_limit_burst,
        start_timeout_s=svc.start_timeout_s, stop_timeout_s=svc.stop_timeout_s,
        user=svc.system_user if scope == "system" else None, nice=svc.nice, overrides=tuple(overrides),
    )


def venv_python(repo: Path) -> Path:
    """The project's venv interpreter (scripts/setup.sh makes it); a service must not use a random python3."""
    return repo / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def unit_path(spec: UnitSpec, home: Path | None = None) -> Path:
    if spec.scope == "system":
        return SYSTEM_UNIT_DIR / spec.unit_name
    config_home = os.environ.get("XDG_CONFIG_HOME") if home is None else None
    base = Path(config_home) if config_home else (home or Path.home()) / ".config"
    return base / "systemd" / "user" / spec.unit_name


def escape_specifiers(arg: str | os.PathLike) -> str:
    """systemd expands `%x` specifiers in most settings; a literal `%` is written `%%`."""
    return str(arg).replace("%", "%%")


def quote(arg: str | os.PathLike) -> str:
    """One word of a list setting (ExecStart, ReadWritePaths): spaces would split it."""
    text = escape_specifiers(arg)
    if text and not any(c in text for c in ' \t"\'\\;'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _exec_word(arg: str | os.PathLike) -> str:
    """ExecStart expands $VARIABLES in the arguments (not in the program path)."""
    return quote(str(arg).replace("$", "$$"))


def _seconds(value: float) -> str:
    return f"{value:g}s"


def render_unit(spec: UnitSpec) -> str:
    command: list[str | os.PathLike] = [spec.python, spec.repo / "run_assistant.py", "--config", spec.config_path]
    for item in spec.overrides:
        command += ["--set", item]
    system = spec.scope == "system"
    lines = [
        "# Written by `run_assistant.py service install`; edit the config, then install again.",
        "[Unit]",
        "Description=LUXA local voice assistant",
        # ordering only: whichever audio server the machine has is started first
        "After=sound.target" if system else "After=pipewire.service pipewire-pulse.service pulseaudio.service",
        f"StartLimitIntervalSec={_seconds(spec.start_limit_interval_s)}",
        f"StartLimitBurst={spec.start_limit_burst}",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=" + " ".join([quote(command[0])] + [_exec_word(a) for a in command[1:]]),
        f"WorkingDirectory={escape_specifiers(spec.repo)}",  # one path: systemd does not unquote it
        *(f"Environment={quote(f'{k}={v}')}" for k, v in SERVICE_ENVIRONMENT.items()),
        f"TimeoutStartSec={_seconds(spec.start_timeout_s)}",
        f"TimeoutStopSec={_seconds(spec.stop_timeout_s)}",
    ]
    if spec.watchdog_s > 0:
        lines.append(f"WatchdogSec={_seconds(spec.watchdog_s)}")
    lines += ["Restart=on-failure", f"RestartSec={_seconds(spec.restart_s)}"]
    if system:
        lines += [
            f"User={spec.user}",
            f"Group={spec.user}",
            "SupplementaryGroups=audio",
            f"StateDirectory={spec.name}",
            # set by systemd before it drops to User=, which may not lower it itself; not in a user
            # unit, where a negative Nice= fails the start (the daemon tries, and says if refused)
            f"Nice={spec.nice}",
            f"Environment={quote('LUXA_SERVICE__STATE_DIR=' + str(spec.state_dir))}",
        ]
    lines += _hardening(spec)
    lines += ["", "[Install]", "WantedBy=multi-user.target" if system else "WantedBy=default.target", ""]
    return "\n".join(lines)


def _hardening(spec: UnitSpec) -> list[str]:
    """Read-only system, writable models/ and state only. No PrivateDevices (it would hide
    /dev/snd and the GPU) and no MemoryDenyWriteExecute (inference libraries may JIT).
    In a user unit these imply PrivateUsers= and need unprivileged user namespaces."""
    lines = [
        "# hardening: a start failure with status 226/NAMESPACE means the kernel refuses these",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={quote(spec.models_dir)} {quote(spec.state_dir)}",
        "PrivateTmp=yes",
    ]
    if spec.scope == "system":
        # a user unit keeps the home visible: the repo and the audio client config may live there
        lines.append("ProtectHome=read-only")
    lines += [
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictNamespaces=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "UMask=0077",
    ]
    return lines


# --- acting on the machine ----------------------------------------------------------------


def systemctl(scope: Scope, *args: str) -> subprocess.CompletedProcess:
    cmd = ["systemctl"] + (["--user"] if scope == "user" else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def systemd_running(scope: Scope) -> bool:
    """sd_booted() for the system manager; for the user manager, whether systemctl reaches it."""
    if shutil.which("systemctl") is None or not Path("/run/systemd/system").is_dir():
        return False
    return scope == "system" or systemctl(scope, "show-environment").returncode == 0


def linger_enabled(user: str) -> bool:
    """Lingering starts the user's manager at boot; without it a user unit waits for a login."""
    return Path("/var/lib/systemd/linger", user).exists()


def write_unit(path: Path, text: str) -> None:
    """Atomic: a half-written unit must never be what systemd reads on reload."""
    with atomic_write(path, text=True) as out:
        out.write(text)


def check_installable(spec: UnitSpec) -> None:
    if not spec.python.exists():
        raise LuxaError(f"{spec.python} not found: run scripts/setup.sh first (the service runs the project's venv)")
    if spec.scope == "system" and os.geteuid() != 0:
        raise LuxaError(f"writing {SYSTEM_UNIT_DIR / spec.unit_name} needs root: run it with sudo, "
                        "or use --user, or --dry-run to see the unit")


def run_checked(scope: Scope, *args: str) -> None:
    result = systemctl(scope, *args)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LuxaError(f"systemctl {' '.join(args)} failed: {detail[0] if detail else result.returncode}")
