"""`cambrian verify DIR --reproduce`: the rig's reproduction stage on any artifact directory.

The artifact is judged as in a campaign; when it is viable and its spec declares
``reproduce``, the running offspring is asked to breed through an LLM gateway this process
serves (the provider given, sim by default; the real key stays here), and what it wrote is
judged in a fresh container. No store: nothing is recorded, the calls are only printed.

Exit code: 0 viable and fertile, 1 non-viable or infertile, 2 the rig or the provider could
not run (setup problem), 3 viable but never asked to breed (its spec declares no
``reproduce``, or the backend cannot serve the gateway).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from core.llm.base import ProviderError


def _provider(name: str | None, base_url: str | None, api_key_env: str | None) -> tuple[Any, str]:
    from core.llm.base import default_provider_name
    from core.llm.config import provider_from

    name = name or default_provider_name()
    return provider_from({"provider": name, "base_url": base_url, "api_key_env": api_key_env}), name


async def _judge_and_breed(path: Path, provider: Any, model: str, seed: int, generation: int,
                           on_line, work: Path) -> tuple[Any, dict[str, Any], Any]:
    from core.llm.gateway import Caps, Gateway
    from rig.api import Channel, run_artifact

    channel = Channel(str(work / "gw"), model=model)
    Path(channel.gateway_dir).mkdir(parents=True)
    gateway = Gateway(provider, model=model, socket_path=Path(channel.gateway_dir) / channel.socket_name,
                      caps=Caps(), metadata={"generation": generation, "seed": seed, "draw": generation})
    await gateway.start()
    try:
        res = await asyncio.to_thread(run_artifact, path, generation=generation, on_line=on_line,
                                      channel=channel)
    finally:
        await gateway.close()
    bred = None
    if res.report.status == "viable" and res.offspring_files:
        from core.engine.runner import write_artifact

        out = work / "bred"
        await asyncio.to_thread(write_artifact, out, res.offspring_files)
        bred = await asyncio.to_thread(run_artifact, out, generation=generation + 1, on_line=on_line)
    return res, gateway.log.to_wire(), bred


def verdict(res: Any, bred: Any) -> tuple[str, str | None]:
    """(fertile | infertile | not-asked | non-viable, why) — the campaign's words."""
    if res.report.status != "viable":
        return "non-viable", None
    rep = res.report.to_wire().get("reproduction") or {}
    if "path" not in rep:  # the rig's reproduce step never ran
        return "not-asked", rep.get("why") or rep.get("note") or "the rig did not ask it to breed"
    if bred is None:
        return "infertile", rep.get("why") or rep.get("error") or "it wrote no artifact"
    if bred.report.status == "viable":
        return "fertile", None
    diag = bred.report.diagnostics
    return "infertile", f"offspring:{bred.report.failure_stage}: {diag.summary if diag else 'non-viable'}"


def verify_reproduce_main(dir_: str, *, provider: str | None = None, model: str | None = None,
                          base_url: str | None = None, api_key_env: str | None = None, seed: int = 0,
                          generation: int = 1, as_json: bool = False, stream: TextIO = sys.stdout) -> int:
    from core.llm.base import default_model
    from rig.api import RigSetupError
    from rig.verify import _ensure_image, format_human

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        prov, name = _provider(provider, base_url, api_key_env)
    except (ProviderError, ValueError, ImportError) as exc:
        say(f"error: cannot set up the provider: {exc}")
        return 2
    model = model or default_model(name)
    if not model:
        say(f"error: --model is required for the {name} provider")
        return 2
    if getattr(prov, "simulated", False):
        say(f"note: the offspring's model calls are answered by the sim provider ({model}), not a real model")

    def on_line(s: str, line: str) -> None:
        if not as_json:
            print(f"{'[' + s + ']':<9} {line}", file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="cambrian-verify-"))
    try:
        _ensure_image()
        res, log, bred = asyncio.run(_judge_and_breed(Path(dir_), prov, model, seed, generation, on_line, work))
    except RigSetupError as exc:
        say(f"error: {exc}")
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    status, why = verdict(res, bred)
    rep = res.report.to_wire().get("reproduction") or {}
    if as_json:
        doc = {"report": res.report.to_wire(), "fertility": status, "why": why, "gateway": log,
               "offspring_report": bred.report.to_wire() if bred is not None else None}
        stream.write(json.dumps(doc, indent=2, default=str) + "\n")
    else:
        stream.write(format_human(res))
        stream.write(f"\nREPRODUCTION: {status.upper()}" + (f" — {why}" if why else "") + "\n")
        if rep.get("path"):
            stream.write(f"POST {rep.get('path')} → {rep.get('status')}"
                         + (f" in {int(rep['ms']) / 1000:.1f} s" if rep.get("ms") is not None else "") + "\n")
        for c in log.get("calls") or []:
            stream.write(f"  gateway call {c['index']}: {c['status']}  in {c['input_tokens']} "
                         f"out {c['output_tokens']}  {c['ms'] / 1000:.1f} s"
                         + (f"  {c['error']}" if c.get("error") else "") + "\n")
        if log.get("cut_off"):
            stream.write(f"  cut off: {log['cut_off']}\n")
        if bred is not None:
            stream.write("\n--- the offspring it bred ---\n")
            stream.write(format_human(bred))
    stream.flush()
    if status == "fertile":
        return 0
    return 3 if status == "not-asked" else 1
