"""The control API served by the daemon's HTTP stack (Orchestrator.service.http), beside the voice loop."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from Config.schema import LuxaConfig
from Orchestrator.api.app import create_app
from Orchestrator.api.security import server_key
from Orchestrator.service.http import ServerHandle, serve

if TYPE_CHECKING:
    from Orchestrator.assistant import Assistant

log = logging.getLogger(__name__)


async def start_api(assistant: Assistant, config: LuxaConfig, state: Callable[[], dict]) -> ServerHandle:
    """Serve the control API on api.host:port until `await handle.close()`."""
    api = config.api
    key, key_file = server_key(config)
    app = create_app(assistant, api, key, state)
    handle = await serve(app, api.host, api.port, "the control API", "set api.port, or api.enabled=false")
    log.info("control API on %s (key in %s)", handle.url, key_file)
    return handle
