"""Hand-written organisms shared by the rig and engine tests.

* the hello service: a minimal viable aiohttp service (1 test, a spec with 2 vectors);
* the breeder: a hello service whose ``POST /generate`` calls the model through the anthropic
  SDK (``ANTHROPIC_BASE_URL``: the engine's LLM gateway), tries other ways out (which must all
  fail), looks for the real key in every process's environment it can read, and writes an
  offspring of its own (the hello service it carries in ``hello.json``) with a manifest.
"""

from __future__ import annotations

import json

HELLO_PORT = 8080

HELLO_APP = '''\
import os

from aiohttp import web

GENERATION = int(os.environ.get("CAMBRIAN_GENERATION", "0"))


async def health(request):
    return web.json_response({"status": "ok", "generation": GENERATION})


async def hello(request):
    return web.json_response({"message": "hello", "generation": GENERATION})


def make_app():
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/hello", hello)
    return app


if __name__ == "__main__":
    print("serving on port 8080", flush=True)
    web.run_app(make_app(), host="127.0.0.1", port=8080, print=None)
'''

HELLO_TEST = '''\
from app import make_app


async def test_hello(aiohttp_client):
    client = await aiohttp_client(make_app())
    resp = await client.get("/hello")
    assert resp.status == 200
    data = await resp.json()
    assert data["message"] == "hello"
'''

HELLO_SPEC = '''\
# Hello

A service that says hello.

## Acceptance vectors

<!-- BEGIN FROZEN: acceptance-vectors -->
```spec-vector
name: health-ok
method: GET
path: /health
expect:
  status: 200
  body_contains: {status: ok}
```

```spec-vector
name: hello-generation
method: GET
path: /hello
expect:
  status: 200
  body: {message: hello, generation: $GENERATION}
```
<!-- END FROZEN: acceptance-vectors -->
'''


def hello_files() -> dict[str, str]:
    return {"app.py": HELLO_APP, "tests/test_app.py": HELLO_TEST,
            "pytest.ini": "[pytest]\nasyncio_mode = auto\n", "spec/hello.md": HELLO_SPEC}


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


def breeder_entry(calls: int = 1) -> dict[str, str]:
    """The breeder's manifest entry; ``calls``: how many model calls its /generate makes."""
    return {"build": "python -m compileall -q app.py", "test": "python -m pytest -q",
            "start": f"BREEDER_CALLS={calls} python app.py", "health": f"http://localhost:{HELLO_PORT}/health"}


def breeder_files(offspring: dict[str, str] | None = None, *, spec: bool = True) -> dict[str, str]:
    """The breeder's files. ``offspring``: the files it writes for its own offspring (default
    the hello service); ``spec``: include its spec copy (an engine writes its own)."""
    files = hello_files()
    child = offspring or {"app.py": files["app.py"], "tests/test_app.py": files["tests/test_app.py"],
                          "pytest.ini": files["pytest.ini"]}
    files["hello.json"] = json.dumps(child)
    files["app.py"] = BREEDER
    if spec:
        files["spec/hello.md"] = FRONT + HELLO_SPEC
    else:
        del files["spec/hello.md"]
    return files


def breeder_spec(calls: int = 1) -> str:
    """A spec whose organism is the breeder: it declares ``reproduce`` and its entry starts
    the breeder (``calls`` model calls per /generate), so an engine's manifest runs it."""
    entry = breeder_entry(calls)
    lines = "".join(f"  {k}: {v}\n" for k, v in entry.items())
    body = HELLO_SPEC.replace("## Acceptance vectors", "## System Prompt\n\nWrite the breeder.\n\n"
                                                       "## Acceptance vectors", 1)
    return FRONT[: -len("---\n")] + "entry:\n" + lines + "---\n" + body


class GatewayThread:
    """The engine's LLM gateway for a breeder under test: the sim provider, ledgered in
    memory (``sink.calls``), served on a loop of its own at ``dir / "gw.sock"``."""

    def __init__(self, tmp_path, caps=None):
        import asyncio
        import threading

        from core.llm.base import make_provider
        from core.llm.gateway import Gateway
        from core.llm.ledger import LedgeredProvider, MemorySink

        self.sink = MemorySink()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.dir = tmp_path / "gw"
        self.gw = Gateway(LedgeredProvider(make_provider("sim"), self.sink), model="sim-1",
                          socket_path=self.dir / "gw.sock", caps=caps, metadata={"generation": 3})
        asyncio.run_coroutine_threadsafe(self.gw.start(), self.loop).result(30)

    def close(self):
        import asyncio

        asyncio.run_coroutine_threadsafe(self.gw.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
