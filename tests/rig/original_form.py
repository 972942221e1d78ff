"""Artifacts in the original Cambrian's form (M2 era: `uv pip install -r requirements.txt`,
`python -m pytest tests/ -v`, `python -m src.prime`, port 8401; M1 era: `pip install`,
`created_at`), written from the published facts, with switches for the cases where our
verdict rules are stricter than the original's."""

from __future__ import annotations

import json
from pathlib import Path

from rig.hashing import artifact_hash_of, sha256_hex

SPEC = '''# CAMBRIAN-SPEC-005 (test excerpt)

A service that reports its health and its generation.

## Acceptance vectors

<!-- BEGIN FROZEN: acceptance-vectors -->
```spec-vector
name: sv-health-liveness
method: GET
path: /health
expect:
  status: 200
```

```spec-vector
name: sv-stats-generation
method: GET
path: /stats
expect:
  status: 200
  body_contains: {generation: $GENERATION}
```
<!-- END FROZEN: acceptance-vectors -->
'''

PRIME = '''import os
from pathlib import Path

from aiohttp import web

GENERATION = int(os.environ.get("CAMBRIAN_GENERATION", "0"))
WORKSPACE = Path("/workspace")  # hard-coded, as the original artifacts do
HEALTH_STATUS = {health_status}


async def health(request):
    return web.json_response({{"status": "healthy", "generation": GENERATION}}, status=HEALTH_STATUS)


async def stats(request):
    return web.json_response({{"generation": GENERATION, "status": "idle",
                              "spec_present": (WORKSPACE / "spec").is_dir()}})


def make_app():
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/stats", stats)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="0.0.0.0", port=8401, print=None)
'''

TESTS = '''from src.prime import make_app


async def test_stats_reports_generation(aiohttp_client):
    client = await aiohttp_client(make_app())
    resp = await client.get("/stats")
    assert resp.status == 200
    assert "generation" in await resp.json()


def test_arithmetic_still_works():
    assert {expr}
'''

REQUIREMENTS = ("aiohttp>=3.9.0\nanthropic>=0.25.0\npydantic>=2.0.0\nstructlog>=23.0.0\n"
                "pytest>=7.0.0\npytest-asyncio>=0.23.0\npytest-aiohttp>=1.0.0\n")


def write_original(root: Path, *, generation: int = 31, era: str = "m2",
                   broken_module: bool = False, failing_test: bool = False,
                   test_cmd: str | None = None, health_status: int = 200,
                   health_path: str = "/health",
                   duplicate_path: bool = False, spec_front: str = "",
                   extra_test: str = "") -> Path:
    files = {
        "src/__init__.py": "",
        "src/prime.py": PRIME.format(health_status=health_status),
        "tests/__init__.py": "",
        "tests/test_prime.py": TESTS.format(expr="1 + 1 == 3" if failing_test else "1 + 1 == 2")
                               + extra_test,
        "pytest.ini": "[pytest]\nasyncio_mode = auto\n",
        "requirements.txt": REQUIREMENTS,
        "spec/CAMBRIAN-SPEC-005.md": spec_front + SPEC,
    }
    if broken_module:  # never imported by the tests or the service: only a parser sees it
        files["src/legacy_notes.py"] = "def unfinished(:\n    pass\n"
    data = {k: v.encode() for k, v in files.items()}
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in data.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    listed = sorted(list(data) + ["manifest.json"])
    if duplicate_path:
        listed.append("spec/CAMBRIAN-SPEC-005.md")
    build = "uv pip install -r requirements.txt" if era == "m2" else "pip install -r requirements.txt"
    manifest = {
        "cambrian-version": 1, "generation": generation, "parent-generation": generation - 1,
        "spec-hash": sha256_hex(data["spec/CAMBRIAN-SPEC-005.md"]),
        "artifact-hash": artifact_hash_of(data), "producer-model": "claude-sonnet-4-6",
        "token-usage": {"input": 59430, "output": 18701}, "files": listed,
        "entry": {"build": build, "test": test_cmd or "python -m pytest tests/ -v",
                  "start": "python -m src.prime", "health": f"http://localhost:8401{health_path}"},
    }
    manifest["created-at" if era == "m2" else "created_at"] = "2026-04-04T05:49:48.134619+00:00"
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root
