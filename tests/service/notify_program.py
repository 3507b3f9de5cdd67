"""A stand-in for the daemon's use of SystemdNotifier, run as a subprocess by test_notify.py.

READY=1 once started, WATCHDOG=1 from a task on the event loop, STOPPING=1 on SIGTERM. SIGUSR1
blocks the event loop for argv[1] seconds the way a blocking call in a coroutine would, and
brackets the stall with STATUS= lines so the test can see which pings fell inside it.
"""
from __future__ import annotations

import asyncio
import signal
import sys
import time

from Orchestrator.service.notify import SystemdNotifier


async def main(stall_s: float) -> None:
    notifier = SystemdNotifier.from_env()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def stall() -> None:
        notifier.status("stalling")
        time.sleep(stall_s)
        notifier.status("stall over")

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: loop.call_soon(stall))
    watchdog = asyncio.create_task(notifier.run_watchdog())
    notifier.ready()
    notifier.status("listening")
    await stop.wait()
    notifier.stopping()
    watchdog.cancel()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1])))
