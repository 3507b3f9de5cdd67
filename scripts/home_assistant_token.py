"""A long-lived access token from a fresh Home Assistant, without its web UI. Prints the token.

Run with the Home Assistant environment's python (it uses aiohttp, a Home Assistant dependency;
LUXA's environment has no websocket client):
    $LUXA_HA_VENV/bin/python scripts/home_assistant_token.py http://127.0.0.1:8123

The steps are the ones the onboarding page takes: create the owner (POST /api/onboarding/users,
answered with an authorization code), exchange the code (POST /auth/token), then ask for a
long-lived token over the websocket API (auth/long_lived_access_token). It works once per
Home Assistant: a second run finds the owner already made (403) and says so.
"""
from __future__ import annotations

import asyncio
import sys

import aiohttp


async def long_lived_token(url: str, user: str = "luxa", password: str = "luxa-test-password") -> str:
    client_id = f"{url}/"  # Home Assistant's client ids are URLs; the instance's own is accepted
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/api/onboarding/users", json={
                "client_id": client_id, "name": "LUXA", "username": user, "password": password,
                "language": "en"}) as response:
            if response.status != 200:
                raise SystemExit(f"onboarding refused ({response.status}): {await response.text()}")
            code = (await response.json())["auth_code"]
        async with session.post(f"{url}/auth/token", data={
                "grant_type": "authorization_code", "code": code, "client_id": client_id}) as response:
            response.raise_for_status()
            access = (await response.json())["access_token"]
        async with session.ws_connect(f"{url}/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": access})
            if (answer := await ws.receive_json())["type"] != "auth_ok":
                raise SystemExit(f"websocket auth refused: {answer}")
            await ws.send_json({"id": 1, "type": "auth/long_lived_access_token",
                                "client_name": "LUXA", "lifespan": 3650})
            answer = await ws.receive_json()
            if not answer.get("success"):
                raise SystemExit(f"no long-lived token: {answer}")
            return str(answer["result"])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: home_assistant_token.py URL")
    print(asyncio.run(long_lived_token(sys.argv[1].rstrip("/"))))
