"""`cambrian doctor`: what is installed and reachable, and how to fix each gap."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _docker_checks() -> list[Check]:
    out: list[Check] = []
    try:
        import docker  # noqa: F401
    except ImportError:
        return [Check("docker SDK", False, "python package 'docker' missing", "run ./cambrian again to reinstall")]
    try:
        from rig.image import docker_client, image_present, image_tag

        client = docker_client()
        version = client.version().get("Version", "?")
        out.append(Check("docker engine", True, f"reachable, server {version}"))
        tag = image_tag()
        present = image_present(client)
        out.append(Check("rig image", present, f"{tag} {'present' if present else 'missing'}",
                         "" if present else "cambrian rig build-image  (needs root + debootstrap)"))
    except Exception as exc:  # noqa: BLE001 - doctor reports, never crashes
        fix = ("start it: sudo dockerd &   (install: sudo apt-get install docker.io)"
               if shutil.which("dockerd") else "install it: sudo apt-get install docker.io && sudo dockerd &")
        out.append(Check("docker engine", False, f"not reachable: {str(exc).splitlines()[0][:120]}", fix))
        out.append(Check("rig image", False, "unknown (no engine)", "start the engine first", required=False))
    return out


def gather(home: Path) -> list[Check]:
    checks = [
        Check("python", sys.version_info >= (3, 11), f"{platform.python_version()} at {sys.executable}",
              "install Python 3.11+"),
        Check("home", os.access(home, os.W_OK), f"{home} (writable)" if os.access(home, os.W_OK) else str(home),
              "set CAMBRIAN_HOME or --home to a writable folder"),
    ]
    checks += _docker_checks()
    bwrap = shutil.which("bwrap")
    checks.append(Check("bubblewrap", bool(bwrap), bwrap or "not installed",
                        "" if bwrap else "sudo apt-get install bubblewrap  (fallback rig backend)", required=False))
    deboot = shutil.which("debootstrap")
    checks.append(Check("debootstrap", bool(deboot), deboot or "not installed",
                        "" if deboot else "sudo apt-get install debootstrap  (needed to build the rig image)",
                        required=False))
    key = bool(os.environ.get("ANTHROPIC_API_KEY"))
    checks.append(Check("anthropic key", key,
                        "ANTHROPIC_API_KEY set: provider 'anthropic' available" if key
                        else "not set: the offline 'sim' provider is used (SIMULATED)",
                        "" if key else "export ANTHROPIC_API_KEY=... to use the real model", required=False))
    checks.append(_anthropic_base_url())
    return checks


def _anthropic_base_url() -> Check:
    from core.llm import urls

    raw = os.environ.get("ANTHROPIC_BASE_URL")
    if not raw:
        return Check("anthropic url", True, "the Anthropic API (ANTHROPIC_BASE_URL not set)", required=False)
    try:
        url = urls.normalize(raw)
    except urls.BadBaseURL as exc:
        return Check("anthropic url", False, f"ANTHROPIC_BASE_URL: {exc}", "fix or unset ANTHROPIC_BASE_URL",
                     required=False)
    kind = "a local server, calls priced $0" if urls.is_local(url) else "a server other than the Anthropic API"
    return Check("anthropic url", True, f"{url} from ANTHROPIC_BASE_URL ({kind})", required=False)


def server_checks(provider: str, base_url: str | None, api_key_env: str | None, model: str | None,
                  home: Path | None = None) -> list[Check]:
    """`doctor --provider P --base-url URL`: the connectivity check of core.llm.endpoints
    (prices from the home's prices.toml, as its campaigns will be priced)."""
    from core.llm.endpoints import check_connection_sync

    rep = check_connection_sync(provider, base_url, api_key_env=api_key_env, model=model,
                                home=str(home) if home is not None else None)
    where = rep.base_url or ("the Anthropic API" if provider == "anthropic" else "the OpenAI API")
    name = f"{provider} server"
    if not rep.ok:
        return [Check(name, False, f"{where}: {rep.error}", rep.fix)]
    shown = ", ".join(rep.models[:12]) + (f" … ({len(rep.models)} in all)" if len(rep.models) > 12 else "")
    out = [Check(name, True, f"{where} answers{' (local)' if rep.local else ''}"),
           Check("models", bool(rep.models), shown or "the server lists no models",
                 "" if rep.models else "load a model on the server")]
    if rep.model:
        window = (f"{rep.context_window} tokens ({rep.context_source})" if rep.context_window
                  else f"unknown: {rep.context_source}")
        out.append(Check("context window", bool(rep.context_window), f"{rep.model}: {window}",
                         "" if rep.context_window else "pass --context-window TOKENS", required=False))
        out.append(Check("price", rep.price_source != "unknown", f"{rep.price_source}: {rep.price_note}",
                         "" if rep.price_source != "unknown" else
                         "add the model's price to CAMBRIAN_HOME/prices.toml (docs/providers.md)", required=False))
    elif rep.models:
        out.append(Check("model", False, "the server offers several models: pass --model to check one",
                         required=False))
    return out


def run_doctor(home: Path, as_json: bool = False, *, provider: str | None = None, base_url: str | None = None,
               api_key_env: str | None = None, model: str | None = None) -> int:
    checks = gather(home)
    if provider or base_url:
        checks += server_checks(provider or "openai", base_url, api_key_env, model, home)
    failed = [c for c in checks if c.required and not c.ok]
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
        return 1 if failed else 0
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        print(f"[{mark}] {c.name:<14} {c.detail}")
        if not c.ok and c.fix:
            print(f"       fix: {c.fix}")
    print("all required checks passed" if not failed else f"{len(failed)} required check(s) failed")
    return 1 if failed else 0
