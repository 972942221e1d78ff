"""Shared building blocks of the sim's codebases.

Every template (prime, echo, generic) writes the same skeleton — a package with
``config.py``, ``app.py``, ``__main__.py``, optionally ``retry.py``, and a ``tests/``
folder — and adds its own modules and handlers. Style choices (see ``style.py``) and
defects (see ``defects.py``) are applied here, where they touch the skeleton; the
template-specific defects (health body, error status, missing keys) are applied by the
handlers each template writes.

The code is meant to read like code a model writes: real modules, real tests with
meaningful (and, for some seeds, trivial) asserts.
"""

from __future__ import annotations

import ast
import json
import random
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from core.llm.sim.specinfo import GENERATION_TOKEN, SpecInfo, Vector
from core.llm.sim.style import Style

# Packages a careless answer imports although the rig image does not have them.
MISSING_PACKAGES = ("uvloop", "dotenv", "prometheus_client")


def dedent(src: str) -> str:
    return textwrap.dedent(src).lstrip("\n")


def indent(src: str, n: int = 4) -> str:
    return textwrap.indent(src, " " * n)


@dataclass
class Ctx:
    spec: SpecInfo
    style: Style
    defects: frozenset[str]
    rng: random.Random  # variant choices (which module, which wrong value...)
    pkg: str
    variants: dict[str, str] = field(default_factory=dict)  # defect -> variant drawn
    habits: dict[str, bool] = field(default_factory=dict)  # present habit -> biting form
    breeding: dict[str, str] = field(default_factory=dict)  # breeding defect -> its form
    hidden: frozenset[str] = frozenset()  # hidden violations (hidden.py)

    def breeds_badly(self, name: str) -> str | None:
        """The form breeding defect ``name`` takes in this answer ('' for a one-form
        defect), or None when absent (see ``breeding.py``)."""
        return self.breeding.get(name)

    def has(self, defect: str) -> bool:
        return defect in self.defects

    def habit(self, name: str) -> str:
        """How the answer shows habit ``name``: ``"bite"`` (its biting form, where the
        template has one), ``"harmless"``, or ``""`` (absent). See ``habits.py``."""
        from core.llm.sim.habits import HABITS

        if name not in self.habits:
            return ""
        return "bite" if self.habits[name] and HABITS[name].can_bite(self.spec) else "harmless"

    def pick(self, defect: str, options: list[str]) -> str:
        """Draw (once) which form ``defect`` takes; '' when the defect is absent."""
        if defect not in self.variants:
            self.variants[defect] = self.rng.choice(options) if self.has(defect) else ""
        return self.variants[defect]


# --- literals --------------------------------------------------------------------------


def py_literal(value: Any, gen_expr: str = "settings.generation") -> str:
    """Python source for a JSON value; ``"$GENERATION"`` becomes ``gen_expr``."""
    if value == GENERATION_TOKEN:
        return gen_expr
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(str(k))}: {py_literal(v, gen_expr)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(v, gen_expr) for v in value) + "]"
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def substitute(value: Any, generation: int) -> Any:
    if value == GENERATION_TOKEN:
        return generation
    if isinstance(value, dict):
        return {k: substitute(v, generation) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, generation) for v in value]
    return value


def placeholder_for(key: str) -> Any:
    """A plausible value for a key that a vector only requires to exist."""
    k = key.lower()
    if k == "generation":
        return GENERATION_TOKEN
    if "uptime" in k or k.endswith("_s") or "seconds" in k:
        return 0.0
    if any(w in k for w in ("count", "total", "requests", "number", "served", "size", "errors")):
        return 0
    if k in ("version",):
        return "1.0.0"
    if k in ("ok", "ready", "healthy"):
        return True
    if k.endswith("s") and k not in ("status",):
        return []
    if k == "status":
        return "ok"
    return ""


def vector_response_body(v: Vector) -> Any:
    """The JSON body a service must answer to satisfy vector ``v``."""
    e = v.expect
    if e.has_body:
        return e.body
    body: dict[str, Any] = {}
    if e.body_contains:
        body.update(e.body_contains)
    for key in e.body_has_keys or ():
        body.setdefault(key, placeholder_for(key))
    return body


def route_name(method: str, path: str) -> str:
    stem = re.sub(r"\W+", "_", path.strip("/")).strip("_") or "root"
    return f"{method.lower()}_{stem}".lower()


# --- config.py -------------------------------------------------------------------------


def wrong_port(ctx: Ctx) -> int:
    port = ctx.spec.port
    return ctx.rng.choice([port + 1, port - 1, 8080 if port != 8080 else 8000])


def config_module(ctx: Ctx, extra_fields: str = "") -> str:
    """``config.py`` in canonical style (``stylize`` adapts it)."""
    s, spec = ctx.style, ctx.spec
    bad_port = ctx.has("wrong_port")
    port_default = wrong_port(ctx) if bad_port else spec.port
    gen_variant = ctx.rng.choice(["omit", "env", "string"]) if ctx.has("health_generation") else ""
    ctx.variants["generation"] = gen_variant
    gen_env = "GENERATION" if gen_variant == "env" else "CAMBRIAN_GENERATION"
    port_expr = "DEFAULT_PORT" if bad_port else 'env_int(env, "PORT", DEFAULT_PORT)'
    if gen_variant == "string":
        gen_expr, gen_type, gen_default = f'env.get("{gen_env}", "0")', "str", '"0"'
    else:
        gen_expr, gen_type, gen_default = f'env_int(env, "{gen_env}", 0)', "int", "0"
    lines = [f'"""Runtime settings of the {spec.name} service, read from the environment."""', ""]
    lines += ["from __future__ import annotations", "", "import os"]
    if s.config == "dataclass":
        lines.append("from dataclasses import dataclass")
    lines.append("from typing import Mapping")
    if s.config == "pydantic":
        lines += ["", "from pydantic import BaseModel, Field"]
    lines += ["", 'DEFAULT_HOST = "0.0.0.0"', f"DEFAULT_PORT = {port_default}", "", ""]
    doc = '    """What the service needs to know at start-up."""'
    if s.config == "dataclass":
        lines += ["@dataclass(frozen=True)", "class Settings:", doc]
        lines += [
            "    host: str = DEFAULT_HOST",
            "    port: int = DEFAULT_PORT",
            f"    generation: {gen_type} = {gen_default}",
        ]
    elif s.config == "pydantic":
        lines += ["class Settings(BaseModel):", doc]
        lines += [
            "    host: str = DEFAULT_HOST",
            "    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)",
            f"    generation: {gen_type} = {gen_default}",
        ]
    else:
        lines += ["class Settings:", doc, ""]
        lines += [
            "    def __init__(",
            "        self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,"
            f" generation: {gen_type} = {gen_default}",
            "    ) -> None:",
            "        self.host = host",
            "        self.port = port",
            "        self.generation = generation",
            "",
            "    def __repr__(self) -> str:",
            '        return f"Settings(host={self.host!r}, port={self.port}, generation={self.generation!r})"',
        ]
    lines += ["", ""]
    lines += [
        "def env_int(env: Mapping[str, str], name: str, default: int) -> int:",
        '    """An integer from the environment; ``default`` when unset or not a number."""',
        "    raw = env.get(name)",
        "    if raw is None:",
        "        return default",
        "    try:",
        "        return int(raw.strip())",
    ]
    if ctx.habit("swallowed_exception") == "harmless":  # the habit, where nothing breaks
        lines += ["    except Exception:", "        pass", "    return default", "", ""]
    else:
        lines += ["    except ValueError:", "        return default", "", ""]
    lines.append("def load_settings(environ: Mapping[str, str] | None = None) -> Settings:")
    lines.append('    """Build the settings from ``environ`` (default: the process environment)."""')
    lines += [
        "    env = os.environ if environ is None else environ",
        "    return Settings(",
        '        host=env.get("HOST", DEFAULT_HOST),',
        f"        port={port_expr},",
        f"        generation={gen_expr},",
        "    )",
    ]
    return "\n".join(lines) + "\n"


# --- habits in the request middleware ---------------------------------------------------

REQUEST_HABIT = "__HABIT_REQUEST__"


def request_habit(ctx: Ctx, source: str) -> str:
    """Fill the middleware's ``__HABIT_REQUEST__`` line: ``unchecked_input`` logs a request
    header read by indexing — ``User-Agent`` (the test client sends one, the rig's probes do
    not: KeyError, 500) in its biting form, ``Host`` (always sent) in its harmless form."""
    form = ctx.habit("unchecked_input")
    header = {"bite": "User-Agent", "harmless": "Host"}.get(form)
    out = []
    for line in source.split("\n"):
        if line.strip() == REQUEST_HABIT:
            if header:
                pad = line[: len(line) - len(line.lstrip())]
                out.append(f'{pad}log.debug("client", header=request.headers["{header}"])')
            continue
        out.append(line)
    return "\n".join(out)


# --- retry.py --------------------------------------------------------------------------


def retry_module(ctx: Ctx) -> str:
    return dedent('''
        """Retry with exponential backoff for flaky I/O."""

        from __future__ import annotations

        import asyncio
        import random
        from typing import Awaitable, Callable, TypeVar

        T = TypeVar("T")


        async def with_retry(
            func: Callable[[], Awaitable[T]],
            attempts: int = 3,
            base_delay: float = 0.2,
            retry_on: tuple[type[BaseException], ...] = (OSError, ConnectionError),
        ) -> T:
            """Await ``func()`` up to ``attempts`` times, sleeping 2^n x base_delay between tries."""
            if attempts < 1:
                raise ValueError("attempts must be at least 1")
            for attempt in range(attempts):
                try:
                    return await func()
                except retry_on:
                    if attempt == attempts - 1:
                        raise
                    delay = base_delay * (2 ** attempt)
                    await asyncio.sleep(delay + random.uniform(0, delay / 2))
            raise RuntimeError("unreachable")


        def backoff_delays(attempts: int, base_delay: float = 0.2) -> list[float]:
            """The nominal delays between attempts (without jitter)."""
            return [base_delay * (2 ** n) for n in range(max(0, attempts - 1))]
        ''')


# --- __main__.py -----------------------------------------------------------------------


def main_module(ctx: Ctx, factory_call: str = "make_app(settings=settings)") -> str:
    s, pkg = ctx.style, ctx.pkg
    std = {"sys"}
    if s.runner == "app_runner":
        std |= {"asyncio", "signal"}
    if s.logger == "logging":
        std.add("logging")
    if ctx.has("blocking_startup"):
        std |= {"os", "time"}
    env_habit = ctx.habit("unchecked_env")
    hook_habit = ctx.habit("blocking_async")
    path_habit = ctx.habit("hardcoded_path")
    if env_habit or path_habit or hook_habit:
        std.add("os")
    if hook_habit == "bite":
        std |= {"json", "urllib.request"}
    third = []
    if s.logger == "structlog":
        third.append("import structlog")
    missing = ""
    if ctx.has("missing_package"):
        missing = ctx.rng.choice(MISSING_PACKAGES)
        third.append(
            {"dotenv": "from dotenv import load_dotenv",
             "prometheus_client": "from prometheus_client import start_http_server"}.get(missing, f"import {missing}")
        )
    ctx.variants["missing_package"] = missing
    third.append("from aiohttp import web")
    out = [f'"""Start the {ctx.spec.name} service: ``python -m {pkg}``."""', "", "from __future__ import annotations", ""]
    out += [f"import {m}" for m in sorted(std)]
    out += [""] + sorted(third, key=lambda l: l.split()[1]) + [""]
    out.append(f"from {pkg}.app import make_app")
    out.append(f"from {pkg}.config import load_settings")
    if s.retry_helper and s.runner == "app_runner":
        out.append(f"from {pkg}.retry import with_retry")
    out += [""]
    out.append("log = structlog.get_logger(__name__)" if s.logger == "structlog" else "log = logging.getLogger(__name__)")
    out += ["", "", "def configure_logging() -> None:", '    """One line per event on stderr."""']
    if s.logger == "structlog":
        out += [
            "    structlog.configure(",
            "        processors=[structlog.processors.TimeStamper(fmt=\"iso\"), structlog.processors.JSONRenderer()],",
            "        logger_factory=structlog.PrintLoggerFactory(sys.stderr),",
            "    )",
        ]
    else:
        out += [
            "    logging.basicConfig(",
            '        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"',
            "    )",
        ]
    if ctx.has("blocking_startup"):
        variant = ctx.rng.choice(["delay", "marker"])
        ctx.variants["blocking_startup"] = variant
        out += ["", "", "def warm_up() -> None:"]
        if variant == "delay":
            out += [
                '    """Give slow dependencies time to come up before we accept traffic."""',
                '    delay = float(os.environ.get("STARTUP_DELAY", "300"))',
                '    log.info("warming up", seconds=delay)',
                "    time.sleep(delay)",
            ]
        else:
            out += [
                '    """Wait until the cache warmer has written its marker file."""',
                '    marker = os.path.join(os.environ.get("CACHE_DIR", ".cache"), "ready")',
                "    deadline = time.monotonic() + 600",
                "    while not os.path.exists(marker) and time.monotonic() < deadline:",
                "        time.sleep(0.5)",
            ]
    if path_habit:
        state_dir = f"/var/lib/{pkg}" if path_habit == "bite" else f"/tmp/{pkg}"
        out += [
            "", "",
            "def write_pid_file() -> None:",
            '    """Leave our pid where operators look for it."""',
            f'    os.makedirs("{state_dir}", exist_ok=True)',
            f'    with open("{state_dir}/{pkg}.pid", "w", encoding="utf-8") as fh:',
            "        fh.write(str(os.getpid()))",
        ]
    if hook_habit == "bite":
        out += [
            "", "",
            "async def check_for_updates(app: web.Application) -> None:",
            '    """Log the newest aiohttp release at start-up."""',
            '    with urllib.request.urlopen("https://pypi.org/pypi/aiohttp/json", timeout=5) as resp:',
            '        latest = json.load(resp)["info"]["version"]',
            '    log.info("newest aiohttp", version=latest)',
        ]
    elif hook_habit:
        out += [
            "", "",
            "async def load_banner(app: web.Application) -> None:",
            '    """Log the first line of the README at start-up."""',
            '    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")',
            "    if os.path.exists(path):",
            '        with open(path, encoding="utf-8") as fh:',
            '            log.info("banner", line=fh.readline().strip())',
        ]
    hook = {"bite": "check_for_updates", "harmless": "load_banner"}.get(hook_habit, "")
    port_expr = 'int(os.environ["PORT"])' if env_habit == "bite" else "settings.port"

    def make_app_lines(indent: str) -> list[str]:
        lines = [f"{indent}app = {factory_call}"]
        if hook:
            lines.append(f"{indent}app.on_startup.append({hook})")
        return lines

    if s.runner == "app_runner":
        start = "await with_retry(site.start, attempts=3)" if s.retry_helper else "await site.start()"
        out += [
            "", "",
            "async def serve() -> None:",
            '    """Run the application until SIGTERM or SIGINT."""',
            "    settings = load_settings()",
            *make_app_lines("    "),
            "    runner = web.AppRunner(app)",
            "    await runner.setup()",
            f"    site = web.TCPSite(runner, settings.host, {port_expr})",
            f"    {start}",
            f'    log.info("listening", port={port_expr})',
            "    stop = asyncio.Event()",
            "    loop = asyncio.get_running_loop()",
            "    for sig in (signal.SIGTERM, signal.SIGINT):",
            "        loop.add_signal_handler(sig, stop.set)",
            "    try:",
            "        await stop.wait()",
            "    finally:",
            "        await runner.cleanup()",
        ]
    out += ["", "", "def main() -> int:", "    configure_logging()"]
    out += {
        "dotenv": ["    load_dotenv()"],
        "uvloop": ["    uvloop.install()"],
        "prometheus_client": ["    start_http_server(9100)"],
        "": [],
    }[missing]
    if path_habit:
        out.append("    write_pid_file()")
    if ctx.has("blocking_startup"):
        out.append("    warm_up()")
    if env_habit == "harmless":
        out.append('    log.info("generation", value=os.environ["CAMBRIAN_GENERATION"])')
    if s.runner == "app_runner":
        out += ["    asyncio.run(serve())"]
    else:
        out += [
            "    settings = load_settings()",
            f'    log.info("starting", port={port_expr})',
            *make_app_lines("    "),
            f"    web.run_app(app, host=settings.host, port={port_expr}, print=None)",
        ]
    out += ["    return 0", "", "", 'if __name__ == "__main__":', "    sys.exit(main())", ""]
    return "\n".join(out)


# --- tests -----------------------------------------------------------------------------


@dataclass
class HttpCase:
    """One HTTP test: request, expected status and checks on the decoded JSON ``data``."""

    name: str
    method: str
    path: str
    status: int
    checks: list[tuple[str, str]] = field(default_factory=list)  # (expr over data, expected src)
    payload: Any = None
    has_payload: bool = False
    doc: str = ""
    raw: bool = False  # payload is sent as raw text (data=) rather than JSON


@dataclass
class UnitCase:
    """A plain unit test: setup lines, then ``assert expr == expected`` checks."""

    name: str
    setup: list[str]
    checks: list[tuple[str, str]]
    imports: list[str] = field(default_factory=list)
    doc: str = ""


def sabotage(ctx: Ctx, http: list[HttpCase], unit: list[UnitCase]) -> str:
    """``failing_test``: make one assertion expect a wrong value (in place). Returns the
    name of the sabotaged test."""
    candidates: list[tuple[str, int]] = [("http", i) for i in range(len(http))]
    candidates += [("unit", i) for i, c in enumerate(unit) if c.checks]
    if not candidates:
        return ""
    kind, i = ctx.rng.choice(candidates)
    if kind == "http" and (not http[i].checks or ctx.rng.random() < 0.3):
        st = http[i].status
        http[i].status = {200: 201, 201: 200, 400: 422, 422: 400, 404: 400}.get(st, st + 1)
        return http[i].name
    case = http[i] if kind == "http" else unit[i]
    j = ctx.rng.randrange(len(case.checks))
    expr, expected = case.checks[j]
    case.checks[j] = (expr, _wrong(expected, ctx.rng))
    case.checks.insert(0, case.checks.pop(j))  # the wrong assertion must run
    return case.name


def _wrong(src: str, rng: random.Random) -> str:
    if re.fullmatch(r"-?\d+", src):
        return str(int(src) + rng.choice([1, -1]))
    if re.fullmatch(r"-?\d+\.\d*", src):
        return str(float(src) + 1.0)
    if src in ("True", "False"):
        return "False" if src == "True" else "True"
    if src == "None":
        return '""'
    m = re.fullmatch(r'"(.*)"', src)
    if m:
        word = m.group(1)
        return json.dumps(word.upper() if word and word != word.upper() else word + "s")
    if src.startswith(("{", "[")) and len(src) > 2:
        return src[0] + src[-1]
    if '"' in src or "(" in src:
        return src + ' + "0"'
    return f"({src}) + 1"


def _limit(ctx: Ctx, checks: list[tuple[str, str]], reserved: int = 0) -> list[tuple[str, str]]:
    if not checks:
        return checks
    return checks[: max(1, ctx.style.asserts_per_test - reserved)]


def _request_args(c: HttpCase) -> str:
    if not c.has_payload:
        return ""
    if c.raw or not isinstance(c.payload, (dict, list)):
        return f", data={py_literal(c.payload)}"
    return f", json={py_literal(c.payload)}"


def tests_api_module(
    ctx: Ctx,
    cases: list[HttpCase],
    factory: str,
    imports: list[str],
    title: str = "",
) -> str:
    """HTTP tests in the answer's client style. ``factory`` builds the application."""
    s = ctx.style
    out = [f'"""{title or "HTTP tests for the " + ctx.spec.name + " service."}"""', ""]
    if s.test_client == "fixture":
        out += ["import pytest", ""] + sorted(imports) + ["", ""]
        out += [
            "@pytest.fixture",
            "async def client(aiohttp_client):",
            '    """A test client bound to a fresh application."""',
            f"    return await aiohttp_client({factory})",
        ]
        for c in cases:
            out += ["", "", f"async def test_{c.name}(client) -> None:"]
            if c.doc:
                out.append(f'    """{c.doc}"""')
            out.append(f'    resp = await client.request("{c.method}", "{c.path}"{_request_args(c)})')
            out.append(f"    assert resp.status == {c.status}")
            checks = _limit(ctx, c.checks, reserved=1)
            if checks or s.trivial_asserts:
                out.append("    data = await resp.json()" if checks else "    data = await resp.text()")
            if s.trivial_asserts:
                out.append("    assert data is not None")
            out += [f"    assert {e} == {x}" for e, x in checks]
    else:
        out += ["import asyncio", "import json", "from typing import Any", "", "from aiohttp.test_utils import TestClient, TestServer", ""]
        out += sorted(imports) + ["", ""]
        out += [
            "def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:",
            '    """Send one request to a fresh in-process server; (status, decoded body)."""',
            "",
            "    async def go() -> tuple[int, Any]:",
            f"        async with TestClient(TestServer({factory})) as client:",
            "            resp = await client.request(method, path, **kwargs)",
            "            text = await resp.text()",
            "            try:",
            "                return resp.status, json.loads(text)",
            "            except ValueError:",
            "                return resp.status, text",
            "",
            "    return asyncio.run(go())",
        ]
        for c in cases:
            out += ["", "", f"def test_{c.name}() -> None:"]
            if c.doc:
                out.append(f'    """{c.doc}"""')
            out.append(f'    status, data = call("{c.method}", "{c.path}"{_request_args(c)})')
            out.append(f"    assert status == {c.status}")
            if s.trivial_asserts:
                out.append("    assert data is not None")
            out += [f"    assert {e} == {x}" for e, x in _limit(ctx, c.checks, reserved=1)]
    return "\n".join(out) + "\n"


def tests_unit_module(ctx: Ctx, title: str, cases: list[UnitCase], header: list[str] = ()) -> str:
    imports: list[str] = []
    for c in cases:
        for line in c.imports:
            if line not in imports:
                imports.append(line)
    std = sorted(l for l in imports if not l.startswith(("from " + ctx.pkg, "import " + ctx.pkg)))
    own = sorted(l for l in imports if l not in std)
    out = [f'"""{title}"""', "", "from __future__ import annotations", ""]
    out += std + ([""] if std else []) + own
    out += list(header)
    for c in cases:
        out += ["", "", f"def test_{c.name}() -> None:"]
        if c.doc:
            out.append(f'    """{c.doc}"""')
        out += [f"    {line}" for line in c.setup]
        checks = _limit(ctx, c.checks)
        if ctx.style.trivial_asserts and checks:
            out.append(f"    assert {checks[0][0]} is not None")
        out += [f"    assert {e} == {x}" for e, x in checks]
    return "\n".join(out) + "\n"


def config_unit_cases(ctx: Ctx) -> list[UnitCase]:
    """Tests of ``load_settings`` that agree with what config.py really does."""
    pkg, port = ctx.pkg, ctx.spec.port
    variant = ctx.variants.get("generation", "")
    imp = [f"from {pkg}.config import DEFAULT_PORT, load_settings"]
    checks = [("settings.host", '"0.0.0.0"')]
    if not ctx.has("wrong_port"):
        checks = [("settings.port", str(port)), ("DEFAULT_PORT", str(port))] + checks
    checks.append(("settings.generation", '"0"' if variant == "string" else "0"))
    cases = [UnitCase("defaults_without_environment", ["settings = load_settings({})"], checks, imp)]
    if not ctx.has("wrong_port"):
        cases.append(
            UnitCase("port_comes_from_environment", ['settings = load_settings({"PORT": "9123"})'],
                     [("settings.port", "9123")], imp)
        )
    gen_var = "GENERATION" if variant == "env" else "CAMBRIAN_GENERATION"
    cases.append(
        UnitCase(
            "generation_comes_from_environment",
            [f'settings = load_settings({{"{gen_var}": "12"}})'],
            [("settings.generation", '"12"' if variant == "string" else "12")],
            imp,
        )
    )
    if variant != "string":
        cases.append(
            UnitCase(
                "generation_falls_back_to_zero",
                [f'settings = load_settings({{"{gen_var}": "twelve"}})'],
                [("settings.generation", "0")],
                imp,
            )
        )
    return cases


def collection_breaker(ctx: Ctx) -> tuple[str, str]:
    """``collection_error``: a test module whose import fails (path, source)."""
    pkg = ctx.pkg
    variant = ctx.pick("collection_error", ["helpers", "wrong_name", "plugin"])
    if variant == "helpers":
        return "tests/test_helpers.py", dedent(f"""
            \"\"\"Tests for the request helpers.\"\"\"

            from tests.helpers import make_request

            from {pkg}.app import make_app


            def test_app_accepts_helper_request() -> None:
                request = make_request("GET", "/health")
                assert request.method == "GET"
                assert make_app() is not None
            """)
    if variant == "wrong_name":
        return "tests/test_factory.py", dedent(f"""
            \"\"\"Smoke tests for the application factory.\"\"\"

            from {pkg}.app import build_application


            def test_factory_returns_application() -> None:
                app = build_application()
                assert app.router is not None
            """)
    return "tests/test_integration.py", dedent(f"""
        \"\"\"Tests against a local HTTP server fixture.\"\"\"

        from pytest_httpserver import HTTPServer

        from {pkg}.config import load_settings


        def test_settings_with_local_server(httpserver: HTTPServer) -> None:
            settings = load_settings({{}})
            assert settings.host == "0.0.0.0"
        """)


def _parses(src: str) -> bool:
    try:
        ast.parse(src)
    except SyntaxError:
        return False
    return True


def break_syntax(ctx: Ctx, files: dict[str, str]) -> str:
    """``syntax_error``: damage one package module so that it no longer parses."""
    modules = sorted(
        p for p in files if p.startswith(ctx.pkg + "/") and p.endswith(".py") and "def " in files[p]
    )
    path = ctx.rng.choice(modules)
    lines = files[path].split("\n")
    variant = ctx.pick("syntax_error", ["colon", "paren"])
    single_defs = [i for i, l in enumerate(lines) if re.match(r"^\s*(async\s+)?def\s.*\)(\s*->\s*.+)?:\s*$", l)]
    calls = [
        i for i, l in enumerate(lines)
        if re.search(r"\w\([^()]*\)$", l.rstrip()) and not l.lstrip().startswith(("def ", "async def ", "class ", "@", "#", '"'))
    ]
    order = (calls, single_defs) if variant == "paren" else (single_defs, calls)
    for pool in order:
        for i in ctx.rng.sample(pool, len(pool)):
            trial = list(lines)
            trial[i] = trial[i].rstrip()[:-1]
            src = "\n".join(trial)
            if not _parses(src):
                files[path] = src
                return path
    files[path] = files[path] + "\ndef broken(:\n    pass\n"
    return path


PYTEST_INI = dedent("""
    [pytest]
    testpaths = tests
    asyncio_mode = auto
    asyncio_default_fixture_loop_scope = function
    """)

PYTEST_INI_NO_ASYNCIO = dedent("""
    [pytest]
    testpaths = tests
    """)


def requirements(ctx: Ctx, extra: list[str] = ()) -> str:
    reqs = ["aiohttp==3.14.5"]
    if ctx.style.config == "pydantic":
        reqs.append("pydantic==2.14.3")
    if ctx.style.logger == "structlog":
        reqs.append("structlog==26.1.0")
    reqs += list(extra)
    reqs += ["pytest==8.4.2", "pytest-aiohttp==1.1.1", "pytest-asyncio==1.5.0"]
    return "\n".join(reqs) + "\n"
