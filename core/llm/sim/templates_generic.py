"""A service for any spec: it answers exactly what the spec's vectors and contract table say.

Routes come from the acceptance vectors (and ``spec-contract`` blocks), grouped by method
and path; requests that differ only by query or body are told apart by ``if`` branches.
Routes in the contract table (``| method | path | status | body |``) that no vector covers
answer the table's body when it is JSON. ``"$GENERATION"`` becomes the generation number
read from ``CAMBRIAN_GENERATION``. Tests are derived from what the code really answers, as
a model that believes its own code would write them.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from core.llm.sim import codegen as cg
from core.llm.sim.codegen import Ctx, HttpCase, dedent
from core.llm.sim.specinfo import GENERATION_TOKEN, row_body_json


@dataclass
class Answer:
    name: str
    method: str
    path: str
    query: dict[str, str]
    has_body: bool
    body: Any
    status: int
    response: Any
    full_path: str


@dataclass
class Route:
    method: str
    path: str
    answers: list[Answer] = field(default_factory=list)
    catch_all: bool = False

    @property
    def func(self) -> str:
        return "handle_" + cg.route_name(self.method, self.path)


def _answers(ctx: Ctx) -> list[Answer]:
    out = []
    for v in ctx.spec.vectors + ctx.spec.contracts:
        parts = urlsplit(v.path)
        response: Any = cg.vector_response_body(v)
        if not v.expect.has_body and not v.expect.body_contains and not v.expect.body_has_keys:
            response = {"error": "bad-request", "message": "invalid request"} if v.expect.status >= 400 else {}
        out.append(
            Answer(
                name=v.name,
                method=v.method,
                path=parts.path or "/",
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                has_body=v.has_request_body,
                body=v.body,
                status=v.expect.status,
                response=response,
                full_path=v.path,
            )
        )
    return out


def _drop_generation(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_generation(v) for k, v in value.items() if v != GENERATION_TOKEN}
    if isinstance(value, list):
        return [_drop_generation(v) for v in value]
    return value


def _apply_defects(ctx: Ctx, answers: list[Answer]) -> list[Route]:
    spec = ctx.spec
    if ctx.variants.get("generation") == "omit":
        for a in answers:
            a.response = _drop_generation(a.response)
    if ctx.has("health_body"):
        variant = ctx.pick("health_body", ["healthy", "flag"])
        for a in answers:
            if a.method == "GET" and a.path == spec.health_path and isinstance(a.response, dict):
                if variant == "flag" or "status" not in a.response:
                    a.response = {"healthy": True, **{k: v for k, v in a.response.items() if k != "status"}}
                else:
                    a.response = {**a.response, "status": "healthy"}
    if ctx.has("missing_keys"):
        keyed = [
            (a, v) for a, v in zip(answers, spec.vectors + spec.contracts) if v.expect.body_has_keys
        ]
        if keyed:
            a, v = ctx.rng.choice(keyed)
            key = ctx.rng.choice(list(v.expect.body_has_keys))
            if isinstance(a.response, dict):
                a.response = {k: val for k, val in a.response.items() if k != key}
            ctx.variants["missing_keys"] = key
    routes: dict[tuple[str, str], Route] = {}
    for a in answers:
        routes.setdefault((a.method, a.path), Route(a.method, a.path)).answers.append(a)
    # paths that only ever answer 404 need no route
    kept = [r for r in routes.values() if any(a.status != 404 for a in r.answers)]
    if ctx.has("error_status"):
        errors = [a for a in answers if 400 <= a.status < 500 and a.status != 404]
        if errors:
            target = ctx.rng.choice(errors)
            target.status = 200
            if isinstance(target.response, dict) and "error" in target.response:
                target.response = {"ok": True}
            ctx.variants["error_status"] = f"ok:{target.name}"
        else:
            kept.append(Route("*", "/{tail:.*}", catch_all=True))
            ctx.variants["error_status"] = "catch_all"
    # contract-table rows that no vector covers
    covered = {(r.method, r.path) for r in routes.values()}
    for row in spec.contract_rows:
        if (row.method, row.path) in covered or row.status >= 400 or not row.path.startswith("/"):
            continue
        if re.search(r"[{}:<>*]", row.path):
            continue
        body = row_body_json(row)
        answer = Answer(f"{row.method.lower()}-{row.path}", row.method, row.path, {}, False, None,
                        row.status, body if body is not None else {}, row.path)
        kept.append(Route(row.method, row.path, [answer]))
        covered.add((row.method, row.path))
    return kept


def _handler(route: Route) -> str:
    if route.catch_all:
        return dedent('''
            async def handle_any(request: web.Request) -> web.Response:
                """Anything else: list what exists instead of a bare 404."""
                return web.json_response({"path": request.path, "known": sorted(KNOWN_PATHS)})
            ''')
    answers = route.answers
    uses_query = any(a.query for a in answers) and len(answers) > 1
    uses_body = any(a.has_body for a in answers) and len(answers) > 1
    lines = [f"async def {route.func}(request: web.Request) -> web.Response:",
             f'    """{route.method} {route.path}."""']
    needs_settings = any(GENERATION_TOKEN in json.dumps(a.response) for a in answers)
    if needs_settings:
        lines.append("    settings = request.app[SETTINGS]")
    if uses_query:
        lines.append("    query = dict(request.query)")
    if uses_body:
        lines.append("    payload = await read_payload(request)")
    if len(answers) == 1:
        a = answers[0]
        lines.append(f"    return web.json_response({cg.py_literal(a.response)}, status={a.status})")
        return "\n".join(lines) + "\n"
    for a in answers:
        conds = []
        if uses_query:
            conds.append(f"query == {cg.py_literal(a.query)}")
        if uses_body:
            conds.append(f"payload == {cg.py_literal(a.body)}" if a.has_body else "payload is None")
        cond = " and ".join(conds) or "True"
        lines.append(f"    if {cond}:")
        lines.append(f"        return web.json_response({cg.py_literal(a.response)}, status={a.status})")
    lines.append('    return web.json_response({"error": "bad-request", "message": "unsupported request"}, status=400)')
    return "\n".join(lines) + "\n"


def app_module(ctx: Ctx, routes: list[Route]) -> str:
    handlers = "\n\n".join(_handler(r) for r in routes)
    known = sorted({r.path for r in routes if not r.catch_all})
    registrations = []
    for r in routes:
        if r.catch_all:
            continue
        registrations.append(f'    app.router.add_route("{r.method}", "{r.path}", {r.func})')
    registrations += [f'    app.router.add_route("*", "/{{tail:.*}}", handle_any)' for r in routes if r.catch_all]
    head = dedent('''
        """HTTP handlers of the @NAME@ service: ``make_app()``."""

        from __future__ import annotations

        import time
        from typing import Any, Awaitable, Callable

        __LOG_IMPORT__
        from aiohttp import web

        from @PKG@.config import Settings, load_settings

        __LOG_DEF__

        SETTINGS = web.AppKey("settings", Settings)
        KNOWN_PATHS = @KNOWN@
        Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


        async def read_payload(request: web.Request) -> Any:
            """The JSON body, or None when there is none or it is not JSON."""
            if not request.body_exists:
                return None
            try:
                return await request.json()
            except (ValueError, UnicodeDecodeError):
                return None


        @web.middleware
        async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
            """One log line per request; HTTP errors are answered as JSON."""
            __HABIT_REQUEST__
            started = time.monotonic()
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = web.json_response({"error": exc.reason.lower().replace(" ", "-")}, status=exc.status)
            log.info("request", method=request.method, path=request.path, status=response.status,
                     seconds=round(time.monotonic() - started, 4))
            return response
        ''')
    tail = (
        "\n\ndef make_app(settings: Settings | None = None) -> web.Application:\n"
        '    """The application (settings default to the environment)."""\n'
        "    app = web.Application(middlewares=[access_log])\n"
        "    app[SETTINGS] = settings if settings is not None else load_settings()\n"
        + "\n".join(registrations)
        + "\n    return app\n"
    )
    return (
        head.replace("@PKG@", ctx.pkg).replace("@NAME@", ctx.spec.name).replace("@KNOWN@", json.dumps(known))
        + "\n\n"
        + handlers
        + tail
    )


def _test_name(name: str, used: set[str]) -> str:
    base = re.sub(r"\W+", "_", name).strip("_").lower() or "route"
    if base[0].isdigit():
        base = "v_" + base
    n, k = base, 2
    while n in used:
        n, k = f"{base}_{k}", k + 1
    used.add(n)
    return n


def http_cases(ctx: Ctx, routes: list[Route], generation: Any) -> list[HttpCase]:
    cases: list[HttpCase] = []
    used: set[str] = set()
    for r in routes:
        for a in r.answers:
            resp = cg.substitute(a.response, generation)
            checks: list[tuple[str, str]] = []
            if isinstance(resp, dict):
                for k, v in list(resp.items())[:4]:
                    checks.append((f"data[{json.dumps(k)}]", cg.py_literal(v)))
            else:
                checks.append(("data", cg.py_literal(resp)))
            cases.append(
                HttpCase(_test_name(a.name, used), a.method, a.full_path, a.status, checks,
                         payload=a.body, has_payload=a.has_body)
            )
    if not any(r.catch_all for r in routes):
        cases.append(HttpCase(_test_name("unknown_path_is_404", used), "GET", "/no-such-path-xyz", 404, []))
    return cases


def build(ctx: Ctx) -> dict[str, str]:
    pkg = ctx.pkg
    files: dict[str, str] = {}
    files[f"{pkg}/__init__.py"] = f'"""{ctx.spec.name}: an HTTP service generated from its spec."""\n'
    files[f"{pkg}/config.py"] = cg.config_module(ctx)
    routes = _apply_defects(ctx, _answers(ctx))
    files[f"{pkg}/app.py"] = app_module(ctx, routes)
    if ctx.style.retry_helper and ctx.style.runner == "app_runner":
        files[f"{pkg}/retry.py"] = cg.retry_module(ctx)
    files[f"{pkg}/__main__.py"] = cg.main_module(ctx, "make_app(settings)")
    generation: Any = "7" if ctx.variants.get("generation") == "string" else 7
    http = http_cases(ctx, copy.deepcopy(routes), generation)
    config_tests = cg.config_unit_cases(ctx)
    if ctx.has("failing_test"):
        cg.sabotage(ctx, http, config_tests)
    gen_src = 'generation="7"' if generation == "7" else "generation=7"
    files["tests/test_app.py"] = cg.tests_api_module(
        ctx, http, f"make_app(Settings(port={ctx.spec.port}, {gen_src}))",
        [f"from {pkg}.app import make_app", f"from {pkg}.config import Settings"],
    )
    files["tests/test_config.py"] = cg.tests_unit_module(ctx, "Settings from the environment.", config_tests)
    return files
