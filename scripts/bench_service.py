#!/usr/bin/env python3
"""Benchmark the service glue: what a Prometheus scrape and a health check cost the daemon.

The endpoints run on the daemon's event loop, so the time to build one /metrics answer is time
the voice loop waits. This serves the full registry (the three managers built with the default
config, without loading models, plus process metrics) and times requests from a client on the
same loop, the time to encode the registry alone, and the cost of one watchdog ping.

    python scripts/bench_service.py [--requests N] [--json OUT]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_common import percentile  # noqa: E402  (scripts/ beside this file)
from Config import load_config  # noqa: E402
from Core import gpu  # noqa: E402


def summary(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {"median_ms": round(statistics.median(ms), 3), "p95_ms": round(percentile(ms, 95), 3),
            "max_ms": round(max(ms), 3), "n": len(ms)}


async def get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    body = await reader.read()
    writer.close()
    return body


async def bench(requests: int) -> dict:
    config = load_config(environ={})
    gpu.pin(config.gpu.index)
    from prometheus_client.exposition import generate_latest

    from Config.schema import MetricsConfig
    from Core import metrics
    from Core.gpu import GpuStatus
    from LLM import EnhancedLLMManager
    from Orchestrator.service.http import start_http
    from Orchestrator.service.notify import SystemdNotifier
    from STT import RobustSTTManager
    from TTS import UnifiedTTSManager

    status = GpuStatus(device="cpu", index=config.gpu.index)
    managers = [cls(config, status) for cls in (RobustSTTManager, EnhancedLLMManager, UnifiedTTSManager)]

    def health() -> dict:
        return {"state": "listening", **{type(m).__name__: m.health() for m in managers}}

    handle = await start_http(MetricsConfig.model_construct(host="127.0.0.1", port=0), health)
    results: dict[str, object] = {}
    try:
        for path in ("/metrics", "/health"):
            timings = []
            size = 0
            for _ in range(requests):
                t0 = time.perf_counter()
                size = len(await get(handle.port, path))
                timings.append(time.perf_counter() - t0)
            results[path] = {**summary(timings), "bytes": size}
    finally:
        await handle.close()

    encode = []
    for _ in range(requests):
        t0 = time.perf_counter()
        generate_latest(metrics.REGISTRY)
        encode.append(time.perf_counter() - t0)
    results["encode_registry_on_loop"] = summary(encode)

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/notify.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(path)
            notifier = SystemdNotifier.from_env(environ={"NOTIFY_SOCKET": path})
            pings = []
            for _ in range(requests * 5):
                t0 = time.perf_counter()
                notifier.watchdog_ping()
                pings.append(time.perf_counter() - t0)
                receiver.recv(64)
            notifier.close()
    results["watchdog_ping"] = summary(pings)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args()
    results = asyncio.run(bench(args.requests))
    for name, figures in results.items():
        print(f"{name:<26} " + "  ".join(f"{k}={v}" for k, v in figures.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
