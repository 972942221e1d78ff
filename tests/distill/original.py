"""A small history in the original Cambrian's layout, built from the published facts
(issue 19), and a minimal loader that puts it into a store for the distiller.

Layout written (one campaign, 10 generations: 8 viable, 2 failed)::

    ROOT/gen-0-campaigns/<campaign-id>/summary.json      campaign_id, spec_path, spec_hash, model,
                                                          supervisor_url, start_generation,
                                                          generations (an integer), viable (an
                                                          integer), records [...]
    ROOT/gen-0-campaigns/<campaign-id>/gen-N/             a viable artifact (files + manifest.json)
    ROOT/gen-0-campaigns/<campaign-id>/failed/gen-N/      a failed one

Each record: generation, parent, spec-hash, artifact-hash, outcome, created, container-id,
campaign-id, viability (the full report: generation, status, failure_stage, checks, fitness,
completed_at). The artifacts read like the original's: they hard-code ``/workspace``, read
``CAMBRIAN_GENERATION``, build with ``uv pip install -r requirements.txt`` (one M1-era
manifest uses ``pip install`` and ``created_at``), and one manifest lists a file twice.

``load_history`` is not the importer (``cambrian import``, issue 19): it stores exactly the
recorded verdicts, so the distiller can be tried on history in this format.

    .venv/bin/python -m tests.distill.original --home HOME [--dir DIR]

builds the tree (in DIR, default a temporary folder), loads it into HOME and prints the
campaign id.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

CAMPAIGN = "cmp-20250311-prime"
SPEC_TEXT = """---
name: prime
port: 8401
---

# Prime

A self-reproducing code generator served over HTTP (the original project's genome, abridged).

## HTTP Contract

GET /health answers {"status": "ok", "generation": N}.
"""

# per generation: viable?, typed, swallow (except Exception: pass), env_index
# (os.environ[...] instead of .get), wall (time.time() durations), fstring logging, trivial
# test assert, M1 manifest, duplicate manifest path
PLAN = {
    1: dict(viable=True, typed=True, swallow=False, env_index=False, wall=True, fstring=True, trivial=False),
    2: dict(viable=True, typed=True, swallow=False, env_index=False, wall=False, fstring=True, trivial=False, m1=True),
    3: dict(viable=True, typed=False, swallow=False, env_index=True, wall=True, fstring=False, trivial=True),
    4: dict(viable=False, typed=False, swallow=True, env_index=True, wall=False, fstring=True, trivial=True),
    5: dict(viable=True, typed=True, swallow=False, env_index=False, wall=False, fstring=False, trivial=False,
            duplicate=True),
    6: dict(viable=True, typed=True, swallow=True, env_index=False, wall=True, fstring=False, trivial=False),
    7: dict(viable=True, typed=False, swallow=False, env_index=False, wall=False, fstring=True, trivial=False),
    8: dict(viable=False, typed=False, swallow=True, env_index=True, wall=True, fstring=True, trivial=True),
    9: dict(viable=True, typed=True, swallow=False, env_index=False, wall=False, fstring=False, trivial=False),
    10: dict(viable=True, typed=True, swallow=False, env_index=False, wall=False, fstring=False, trivial=True),
}


def _server(n: int, p: dict) -> str:
    ann = (lambda a, t: f"{a}: {t}") if p["typed"] else (lambda a, t: a)
    ret = (lambda t: f" -> {t}") if p["typed"] else (lambda t: "")
    gen = ('int(os.environ["CAMBRIAN_GENERATION"])' if p["env_index"]
           else 'int(os.environ.get("CAMBRIAN_GENERATION", "0"))')
    clock = "time.time()" if p["wall"] else "time.monotonic()"
    log = ('log.info(f"{request.method} {request.path} took {elapsed:.3f}s")' if p["fstring"]
           else 'log.info("%s %s took %.3fs", request.method, request.path, elapsed)')
    parse = ("    files = []\n    try:\n        files = parse_blocks(payload.get(\"text\", \"\"))\n"
             "    except Exception:\n        pass\n" if p["swallow"] else
             "    try:\n        files = parse_blocks(payload.get(\"text\", \"\"))\n"
             "    except ValueError as exc:\n        return web.json_response({\"error\": str(exc)}, status=422)\n")
    return f'''"""Prime, generation {n}: the HTTP service."""
import logging
import os
import time
from pathlib import Path

from aiohttp import web

WORKSPACE = Path("/workspace")
OUTPUT_DIR = "/workspace/output"
log = logging.getLogger("prime")


def generation(){ret("int")}:
    return {gen}


def parse_blocks({ann("text", "str")}){ret("list")}:
    out = []
    for chunk in text.split("</file:end>"):
        if "<file path=" in chunk:
            head, _, body = chunk.partition(">")
            path = head.split('"')[1]
            if path.startswith("/") or ".." in path:
                raise ValueError("unsafe-path")
            out.append({{"path": path, "content": body.lstrip("\\n")}})
    return out


async def health({ann("request", "web.Request")}){ret("web.Response")}:
    started = {clock}
    response = web.json_response({{"status": "ok", "generation": generation()}})
    elapsed = {clock} - started
    {log}
    return response


async def parse({ann("request", "web.Request")}){ret("web.Response")}:
    payload = await request.json()
{parse}    return web.json_response({{"files": files}})


def make_app(){ret("web.Application")}:
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_post("/parse", parse)
    return app


if __name__ == "__main__":
    WORKSPACE.joinpath("output").mkdir(parents=True, exist_ok=True)
    web.run_app(make_app(), port=int(os.environ.get("PORT", "8401")))
'''


def _tests(n: int, p: dict) -> str:
    extra = "    assert True\n" if p["trivial"] else '    assert files[0]["content"] == "x\\n"\n'
    return f'''from prime.server import parse_blocks


def test_parse_one_block():
    files = parse_blocks('<file path="a.py">\\nx\\n</file:end>\\n')
    assert files[0]["path"] == "a.py"
{extra}

def test_generation_{n}_rejects_absolute_paths():
    try:
        parse_blocks('<file path="/etc/passwd">\\nroot\\n</file:end>\\n')
    except ValueError as exc:
        assert str(exc) == "unsafe-path"
    else:
        raise AssertionError("accepted an absolute path")
'''


def _artifact_hash(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + files[path])
    return "sha256:" + h.hexdigest()


def artifact_files(n: int) -> tuple[dict[str, bytes], dict]:
    """(files without manifest.json, manifest) of generation ``n`` in the original's form."""
    p = PLAN[n]
    files = {
        "prime/__init__.py": b"",
        "prime/server.py": _server(n, p).encode(),
        "tests/test_server.py": _tests(n, p).encode(),
        "requirements.txt": b"aiohttp==3.9.5\npytest==8.2.0\n",
        "spec/prime.md": SPEC_TEXT.encode(),
    }
    m1 = p.get("m1", False)
    listed = sorted([*files, "manifest.json"])
    if p.get("duplicate"):
        listed.append("spec/prime.md")  # the original sometimes listed the spec copy twice
    manifest = {
        "cambrian-version": 1,
        "generation": n,
        "parent-generation": n - 1,
        "spec-hash": "sha256:" + hashlib.sha256(SPEC_TEXT.encode()).hexdigest(),
        "artifact-hash": _artifact_hash(files),
        "producer-model": "claude-sonnet-4-6",
        "token-usage": {"input": 11000 + 37 * n, "output": 9000 + 53 * n},
        "files": listed,
        ("created_at" if m1 else "created-at"): f"2025-03-11T10:{n:02d}:00Z",
        "entry": {
            "build": "pip install -r requirements.txt" if m1 else "uv pip install -r requirements.txt",
            "test": "python -m pytest tests/ -v",
            "start": "python -m prime.server",
            "health": "http://localhost:8401/health",
        },
    }
    return files, manifest


def _report(n: int, viable: bool) -> dict:
    checks = {"manifest": {"passed": True, "duration_ms": 3},
              "build": {"passed": True, "duration_ms": 2100 + 10 * n}}
    if viable:
        checks["test"] = {"passed": True, "duration_ms": 900 + 7 * n, "tests_run": 2, "tests_passed": 2}
        checks["start"] = {"passed": True, "duration_ms": 400}
        checks["health"] = {"passed": True, "duration_ms": 12}
    else:
        checks["test"] = {"passed": False, "duration_ms": 950, "tests_run": 2, "tests_passed": 1}
    return {"generation": n, "status": "viable" if viable else "non-viable",
            "failure_stage": "none" if viable else "test", "checks": checks,
            "fitness": {"tests_run": checks["test"]["tests_run"], "tests_passed": checks["test"]["tests_passed"],
                        "build_ms": checks["build"]["duration_ms"], "test_ms": checks["test"]["duration_ms"]},
            "completed_at": f"2025-03-11T10:{n:02d}:30Z"}


def write_tree(root: Path) -> Path:
    """Write the campaign in the original layout under ``root``; returns its folder."""
    base = root / "gen-0-campaigns" / CAMPAIGN
    records = []
    for n, p in PLAN.items():
        files, manifest = artifact_files(n)
        folder = base / (f"gen-{n}" if p["viable"] else f"failed/gen-{n}")
        for rel, data in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
        records.append({
            "generation": n, "parent": n - 1, "spec-hash": manifest["spec-hash"],
            "artifact-hash": manifest["artifact-hash"], "outcome": "promoted" if p["viable"] else "failed",
            "created": manifest.get("created-at") or manifest.get("created_at"),
            "container-id": f"lab-gen-{n}", "campaign-id": CAMPAIGN, "viability": _report(n, p["viable"]),
        })
    summary = {
        "campaign_id": CAMPAIGN, "spec_path": "spec/prime.md", "spec_hash": records[0]["spec-hash"],
        "model": "claude-sonnet-4-6", "supervisor_url": "http://localhost:8400", "start_generation": 1,
        "generations": len(records), "viable": sum(1 for p in PLAN.values() if p["viable"]), "records": records,
    }
    base.mkdir(parents=True, exist_ok=True)
    (base / "summary.json").write_text(json.dumps(summary, indent=2))
    return base


def load_history(store, root: Path, campaign_id: str | None = None) -> str:
    """Store the campaign under ``root`` (original layout) with its recorded verdicts:
    one campaign, one generation per record, the artifact as its folder holds it."""
    base = next((root / "gen-0-campaigns").iterdir())
    summary = json.loads((base / "summary.json").read_text())
    records = summary["records"]
    first = records[0]["generation"]
    folder = base / f"gen-{first}" if (base / f"gen-{first}").is_dir() else base / f"failed/gen-{first}"
    spec = store.add_spec((folder / "spec/prime.md").read_text(), label=f"original:{summary['campaign_id']}")
    cid = campaign_id or f"original-{summary['campaign_id']}"
    try:
        store.campaign(cid)
    except KeyError:
        store.create_campaign(cid, spec.hash, {"provider": "original", "model": summary["model"],
                                               "generations": summary["generations"]}, kind="import")
        store.set_campaign_state(cid, "completed", f"loaded from {base}")
    for rec in records:
        n = rec["generation"]
        folder = base / f"gen-{n}" if (base / f"gen-{n}").is_dir() else base / f"failed/gen-{n}"
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        g = store.create_generation(spec_hash=spec.hash, campaign_id=cid)
        store.record_artifact(g.number, files)
        report = rec["viability"]
        store.record_report(g.number, report)
        store.set_outcome(g.number, "promoted" if report["status"] == "viable" else "failed",
                          f"original {summary['campaign_id']} gen-{n}: {rec['outcome']}")
    return cid


def main(argv: list[str] | None = None) -> int:
    from core.home import db_path
    from core.store import Store

    ap = argparse.ArgumentParser(prog="python -m tests.distill.original")
    ap.add_argument("--home", required=True)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args(argv)
    root = Path(args.dir or tempfile.mkdtemp(prefix="cambrian-original-"))
    write_tree(root)
    with Store.open(db_path(Path(args.home))) as store:
        print(load_history(store, root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
