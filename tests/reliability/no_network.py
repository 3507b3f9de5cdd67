"""Run run_assistant.py with an audit hook that records every attempt to reach the network.

usage: python no_network.py LOG_FILE run_assistant.py ARGS...

Inside a network namespace a library that tries the network fails, but one that catches the
error and goes on would pass unnoticed; the hook records the attempt itself (Python-level
connect, sendto and name lookups to anything but loopback), so the test can prove nothing tried.
"""
from __future__ import annotations

import ipaddress
import runpy
import sys
from pathlib import Path

WATCHED = {"socket.connect", "socket.sendto", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"}


def _is_local(host) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _target(event: str, args: tuple):
    if event in ("socket.connect", "socket.sendto"):
        address = args[-1]
        return address[0] if isinstance(address, tuple) else None  # a str/bytes address is AF_UNIX
    return args[0]


def main() -> None:
    log_path, script, *argv = sys.argv[1:]
    with open(log_path, "a", encoding="utf-8") as log:

        def hook(event: str, args: tuple) -> None:
            if event in WATCHED and not log.closed:
                host = _target(event, args)
                if not _is_local(host):
                    log.write(f"{event} {host!r}\n")
                    log.flush()

        sys.addaudithook(hook)
        sys.argv = [script, *argv]
        sys.path.insert(0, str(Path(script).resolve().parent))
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
