"""The reproduction stage in the real rig: a viable offspring of a spec that declares
`reproduce` is asked to breed. Its model calls reach the engine's LLM gateway through the
rig's forwarder (the container keeps no network), it holds only a placeholder key, and the
artifact it writes is collected for judging.

The offspring here is a small hand-written "breeder": its POST /generate calls the model
through the anthropic SDK (ANTHROPIC_BASE_URL), then tries other ways out (which must all
fail), looks for the real key in every process's environment it can read, and writes a
small artifact of its own (the hello service) with a manifest.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from conftest import HELLO_SPEC, hello_files, write_artifact  # tests/rig/conftest.py
from core.llm.base import make_provider
from core.llm.gateway import Caps, Gateway
from core.llm.ledger import LedgeredProvider, MemorySink
from rig.api import Channel, run_artifact

pytestmark = pytest.mark.docker

REAL_KEY = "sk-ant-REAL-KEY-must-never-enter-a-container-93c1"

FRONT = ("---\nname: breeder\nspec-format: 1\nport: 8080\n"
         "reproduce: {path: /generate, output-env: OUT_DIR, model-env: BREEDER_MODEL}\n---\n")

BREEDER = r'''
import hashlib, json, os, socket
from pathlib import Path

from aiohttp import web

GENERATION = int(os.environ.get("CAMBRIAN_GENERATION", "0"))
HELLO = json.loads(Path(__file__).with_name("hello.json").read_text())


def try_out(host, port):
    try:
        with socket.create_connection((host, port), timeout=2):
            return "connected"
    except OSError as exc:
        return type(exc).__name__


NEEDLE = "-".join(["sk", "ant", "REAL"]).encode()  # built at run time: no file may hold it


def key_seen():
    for pid in os.listdir("/proc"):
        for name in ("environ", "cmdline"):
            try:
                data = open(f"/proc/{pid}/{name}", "rb").read()
            except OSError:
                continue
            if NEEDLE in data:
                return f"{pid}/{name}"
    for root, _dirs, files in os.walk("/"):
        if root.startswith(("/proc", "/sys", "/dev")):
            continue
        for f in files:
            try:
                if NEEDLE in open(os.path.join(root, f), "rb").read(1_000_000):
                    return os.path.join(root, f)
            except OSError:
                continue
    return None


async def health(request):
    return web.json_response({"status": "ok", "generation": GENERATION})


async def hello(request):
    return web.json_response({"message": "hello", "generation": GENERATION})


async def generate(request):
    body = await request.json()
    import anthropic
    client = anthropic.AsyncAnthropic(max_retries=0)  # base URL and key from the environment
    calls = int(os.environ.get("BREEDER_CALLS", "1"))
    answers, errors = [], []
    for _ in range(calls):
        try:
            msg = await client.messages.create(
                model=os.environ.get("BREEDER_MODEL", "x"), max_tokens=2000,
                messages=[{"role": "user", "content": body["spec"][:2000]}])
            answers.append(msg.content[0].text[:80])
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
    n = int(body["generation"])
    files = {k: v.encode() for k, v in HELLO.items()}
    files["spec/hello.md"] = body["spec"].encode()
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(p.encode() + b"\0" + files[p])
    manifest = {"cambrian-version": 1, "generation": n, "parent-generation": GENERATION,
                "spec-hash": "sha256:" + hashlib.sha256(files["spec/hello.md"]).hexdigest(),
                "artifact-hash": "sha256:" + h.hexdigest(), "producer-model": os.environ.get("BREEDER_MODEL", "?"),
                "token-usage": {"input": 0, "output": 0}, "files": sorted(list(files) + ["manifest.json"]),
                "created-at": "2026-12-06T00:00:00+00:00",
                "entry": {"build": "python -m compileall -q app.py", "test": "python -m pytest -q",
                          "start": "python app.py", "health": "http://localhost:8080/health"}}
    out = Path(os.environ["OUT_DIR"]) / f"gen-{n}"
    for p, data in files.items():
        (out / p).parent.mkdir(parents=True, exist_ok=True)
        (out / p).write_bytes(data)
    (out / "manifest.json").write_text(json.dumps(manifest))
    report = {"answers": answers, "errors": errors, "key_seen": key_seen(),
              "outside": {"public": try_out("8.8.8.8", 53), "host_docker0": try_out("172.17.0.1", 2375)},
              "base_url": os.environ.get("ANTHROPIC_BASE_URL"), "key": os.environ.get("ANTHROPIC_API_KEY")}
    return web.json_response({"generation": n, "files": sorted(files), "manifest": manifest,
                              "repair-calls": 0, "breeder": report})


def make_app():
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/hello", hello)
    app.router.add_post("/generate", generate)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8080, print=None)
'''


def breeder(tmp_path, calls: int = 1):
    files = hello_files()
    hello = {"app.py": files["app.py"], "tests/test_app.py": files["tests/test_app.py"],
             "pytest.ini": files["pytest.ini"]}
    files["hello.json"] = json.dumps(hello)
    files["app.py"] = BREEDER
    files["spec/hello.md"] = FRONT + HELLO_SPEC
    entry = {"build": "python -m compileall -q app.py", "test": "python -m pytest -q",
             "start": f"BREEDER_CALLS={calls} python app.py", "health": "http://localhost:8080/health"}
    return write_artifact(tmp_path / "breeder", files, entry=entry)


class GatewayThread:
    def __init__(self, tmp_path, caps=None):
        self.sink = MemorySink()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.dir = tmp_path / "gw"
        self.gw = Gateway(LedgeredProvider(make_provider("sim"), self.sink), model="sim-1",
                          socket_path=self.dir / "gw.sock", caps=caps, metadata={"generation": 3})
        asyncio.run_coroutine_threadsafe(self.gw.start(), self.loop).result(30)

    def close(self):
        asyncio.run_coroutine_threadsafe(self.gw.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def gateway(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", REAL_KEY)  # the engine's real key, outside
    made = []

    def make(**kw):
        g = GatewayThread(tmp_path, **kw)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()


def test_a_viable_offspring_breeds_through_the_gateway_and_nowhere_else(tmp_path, rig_image, gateway):
    gw = gateway()
    res = run_artifact(breeder(tmp_path), channel=Channel(str(gw.dir), model="sim-1", timeout=120))
    rep = res.report.to_wire()
    assert rep["status"] == "viable", rep.get("diagnostics")
    repro = rep["reproduction"]
    assert repro["offered"] is True and repro["status"] == 200 and repro["generation"] == 4
    b = repro["body"]["breeder"]
    assert b["errors"] == [] and len(b["answers"]) == 1            # the gateway answered
    assert set(b["outside"]) == {"public", "host_docker0"}
    assert "connected" not in b["outside"].values(), b["outside"]  # no other way out
    assert b["key_seen"] is None and b["key"] != REAL_KEY           # the key stayed outside
    assert b["base_url"].startswith("http://127.0.0.1:")
    assert [c.purpose for c in gw.sink.calls] == ["reproduction"]   # ledgered
    # the artifact it wrote was collected, ready to be judged in a fresh run
    files = res.offspring_files
    assert files and "manifest.json" in files and json.loads(files["manifest.json"])["generation"] == 4
    child = tmp_path / "child"
    for p, data in files.items():
        (child / p).parent.mkdir(parents=True, exist_ok=True)
        (child / p).write_bytes(data)
    assert run_artifact(child).viable


def test_a_runaway_organism_is_cut_off_and_the_reason_kept(tmp_path, rig_image, gateway):
    gw = gateway(caps=Caps(calls=2))
    res = run_artifact(breeder(tmp_path, calls=6), channel=Channel(str(gw.dir), timeout=120))
    b = res.report.to_wire()["reproduction"]["body"]["breeder"]
    assert len(b["answers"]) == 2 and len(b["errors"]) == 4
    assert all("call cap reached" in e for e in b["errors"])
    assert gw.gw.log.cut_off.startswith("call cap reached (2 calls")
    assert len(gw.sink.calls) == 2


def test_no_reproduction_for_a_spec_that_does_not_declare_it(tmp_path, rig_image, gateway):
    from conftest import make_hello_artifact

    gw = gateway()
    rep = run_artifact(make_hello_artifact(tmp_path / "h"), channel=Channel(str(gw.dir))).report.to_wire()
    assert rep["status"] == "viable"
    assert rep["reproduction"]["offered"] is False and "declares no reproduction" in rep["reproduction"]["why"]
    assert gw.sink.calls == []
