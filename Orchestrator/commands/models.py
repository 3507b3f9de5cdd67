"""`models prepare|list|fetch`: the models the config names, where they are, and bigger ones."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from Core import models
from Core.errors import LuxaError

if TYPE_CHECKING:
    from Config.schema import LuxaConfig

if TYPE_CHECKING:
    from Orchestrator.cli import Context


HELP = "prepare, list or fetch models (prepare assembles the default Whisper once); use: hot-swap the running LLM"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    sub.add_parser("prepare", help="resolve every model the config names; assemble split ones")
    sub.add_parser("list", help="list known and installed models with their source")
    fetch = sub.add_parser("fetch", help="download a model from the manifest into models/")
    fetch.add_argument("name", help="a name from the manifest (see `models list`)")
    fetch.add_argument("--manifest", default=None, help="manifest YAML (default Config/models_manifest.yaml)")
    fetch.add_argument("--base-url", default=None,
                       help="mirror holding <URL>/<NAME>/<file> (default: the manifest's URLs, or $LUXA_MODELS_BASE_URL)")
    use = sub.add_parser("use", help="make the running daemon's LLM serve another model, without a restart")
    use.add_argument("name", help="a known name or a .gguf path under models/")
    use.add_argument("--backend", default=None, help="the gguf backend to swap (default: the first one)")
    use.add_argument("--url", default=None, help="the daemon's control API (default: http://api.host:api.port)")


def configured_models(cfg: LuxaConfig) -> list[tuple[str, str, str]]:
    """(where in the config, model name, kind) for every enabled backend that needs a model."""
    found = [(f"stt.backends.{n}", b.model, "whisper") for n, b in cfg.stt.backends.items() if b.enabled]
    found += [(f"llm.backends.{n}", b.model, "gguf") for n, b in cfg.llm.backends.items()
              if b.enabled and b.kind == "gguf"]
    if cfg.tts.backends["piper_native"].enabled or cfg.tts.backends["piper_cli"].enabled:
        found += [(f"tts.voices.{lang}.piper", v.piper, "piper") for lang, v in cfg.tts.voices.items() if v.piper]
    if cfg.vad.turn_model:
        found.append(("vad.turn_model", cfg.vad.turn_model, "turn"))
    return found


def check_configured(cfg: LuxaConfig) -> list[tuple[str, str, str, str | None]]:
    """(where, name, path or '', error or None) for each configured model."""
    rows: list[tuple[str, str, str, str | None]] = []
    for where, name, kind in configured_models(cfg):
        try:
            info = models.resolve(name, kind, cfg.models.dir)
            rows.append((where, name, str(info.path), None))
        except LuxaError as err:
            rows.append((where, name, "", str(err)))
    return rows


def run(args: argparse.Namespace, ctx: Context) -> int:
    cfg = ctx.config
    if args.models_command == "prepare":
        rows = check_configured(cfg)
        for where, name, path, error in rows:
            print(f"{'ok ' if error is None else 'MISSING'} {where}: {name} {path or error}")
        return 0 if all(error is None for *_, error in rows) else 1
    if args.models_command == "list":
        for name in models.EMBEDDED:
            kind = {"whisper-base": "whisper", "tiny.en": "whisper", "smollm2-135m": "gguf",
                    "smart-turn-v3.2": "turn"}.get(name, "piper")
            try:
                info = models.resolve(name, kind, cfg.models.dir)
                print(f"{name:<26} {kind:<8} {info.source:<40} {info.path}")
            except LuxaError:
                print(f"{name:<26} {kind:<8} {'not installed':<40} (make setup)")
        installed = models.installed_extra(cfg.models.dir)
        for entry in installed:
            print(f"{entry.name:<26} {entry.kind:<8} {entry.source:<40} {entry.path}")
        from Core import fetch

        fetched = {entry.name for entry in installed}
        for name, known in fetch.load_manifest().models.items():
            if name not in fetched:
                print(f"{name:<26} {known.kind:<8} {'not fetched':<40} (models fetch {name})")
        return 0
    if args.models_command == "use":
        return _use(args, cfg)
    from Core import fetch

    options = fetch.FetchOptions(cfg.models.fetch_retries, cfg.models.fetch_timeout_s)
    return fetch.fetch_by_name(args.name, cfg.models.dir, args.manifest, options, base_url=args.base_url)


def _use(args: argparse.Namespace, cfg: LuxaConfig) -> int:
    """POST /v1/models/llm to the running daemon (`serve`, or the voice loop with api.enabled)."""
    import httpx

    from Orchestrator.api.security import key_path, read_key

    url = args.url or f"http://{cfg.api.host}:{cfg.api.port}"
    key = read_key(key_path(cfg))
    if key is None:
        raise LuxaError(f"no API key at {key_path(cfg)}: is the daemon running with its control API on "
                        "(`run_assistant.py serve` or --set api.enabled=true)?")
    try:
        reply = httpx.post(f"{url}/v1/models/llm", json={"model": args.name, "backend": args.backend},
                           headers={"Authorization": f"Bearer {key}"}, timeout=cfg.service.start_timeout_s)
    except httpx.HTTPError as err:
        raise LuxaError(f"no daemon answers at {url} ({err}); start it with `run_assistant.py serve` "
                        "or --set api.enabled=true") from None
    body = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else {}
    if reply.status_code != 200:
        raise LuxaError(f"swap refused: {body.get('error', {}).get('message', reply.text[:200])}")
    print(f"llm backend {body['backend']} now serves {body['model']} ({body['path']}), loaded in {body['seconds']} s")
    return 0
