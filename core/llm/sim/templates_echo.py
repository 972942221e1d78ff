"""The Echo codebase the sim writes for ``spec/echo.md``: /health, /echo, /reverse."""

from __future__ import annotations

import json

from core.llm.sim import codegen as cg
from core.llm.sim.codegen import Ctx, HttpCase, dedent


def app_module(ctx: Ctx) -> str:
    gen_variant = ctx.variants.get("generation", "")
    body_variant = ctx.variants.get("health_body", "")
    err = ctx.variants.get("error_status", "")
    word = {"healthy": "healthy", "up": "up"}.get(body_variant, "ok")
    if body_variant == "flag":
        health = '{"healthy": True, "generation": settings.generation}'
    elif gen_variant == "omit":
        health = f'{{"status": "{word}"}}'
    else:
        health = f'{{"status": "{word}", "generation": settings.generation}}'
    if err == "default_empty":
        reverse = dedent('''
            async def reverse(request: web.Request) -> web.Response:
                """``?text=S`` -> the text and its code points in reverse order."""
                text = request.query.get("text", "")
                return web.json_response({"text": text, "reversed": text[::-1]})
            ''')
    else:
        reverse = dedent('''
            async def reverse(request: web.Request) -> web.Response:
                """``?text=S`` -> the text and its code points in reverse order."""
                text = request.query.get("text")
                if text is None:
                    return bad_request("query parameter 'text' is required")
                return web.json_response({"text": text, "reversed": text[::-1]})
            ''')
    catch_all = (
        '    app.router.add_route("*", "/{tail:.*}", fallback)\n' if err == "catch_all" else ""
    )
    fallback = (
        "\n\n" + dedent('''
            async def fallback(request: web.Request) -> web.Response:
                """Anything else: say what exists instead of a bare 404."""
                return web.json_response({"endpoints": ["/health", "/echo", "/reverse"]})
            ''')
        if err == "catch_all"
        else ""
    )
    src = dedent('''
        """The Echo web application: ``make_app()``."""

        from __future__ import annotations

        import json
        import time
        from typing import Awaitable, Callable

        __LOG_IMPORT__
        from aiohttp import web

        from @PKG@.config import Settings, load_settings

        __LOG_DEF__

        SETTINGS = web.AppKey("settings", Settings)
        Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


        def bad_request(message: str) -> web.Response:
            return web.json_response({"error": "bad-request", "message": message}, status=400)


        @web.middleware
        async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
            """Log each request; HTTP errors (404, 405) are answered as JSON too."""
            __HABIT_REQUEST__
            started = time.monotonic()
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = web.json_response(
                    {"error": exc.reason.lower().replace(" ", "-"), "message": exc.reason}, status=exc.status
                )
            log.info("request", path=request.path, status=response.status, seconds=time.monotonic() - started)
            return response


        async def health(request: web.Request) -> web.Response:
            settings = request.app[SETTINGS]
            return web.json_response(@HEALTH@)


        async def echo(request: web.Request) -> web.Response:
            """Answer the JSON body unchanged; a body that is not JSON is a 400."""
            raw = await request.text()
            try:
                payload = json.loads(raw)
            except json.JSONDecodeError as exc:
                return bad_request(f"body is not valid JSON: {exc.msg}")
            return web.json_response(payload)


        @REVERSE@@FALLBACK@

        def make_app(settings: Settings | None = None) -> web.Application:
            """The application (settings default to the environment)."""
            app = web.Application(middlewares=[json_errors])
            app[SETTINGS] = settings if settings is not None else load_settings()
            app.router.add_get("/health", health)
            app.router.add_post("/echo", echo)
            app.router.add_get("/reverse", reverse)
        @CATCHALL@    return app
        ''')
    return (
        src.replace("@PKG@", ctx.pkg)
        .replace("@HEALTH@", health)
        .replace("@REVERSE@", reverse)
        .replace("@FALLBACK@", fallback)
        .replace("@CATCHALL@    ", catch_all + "    ")
    )


def http_cases(ctx: Ctx) -> list[HttpCase]:
    gen_variant = ctx.variants.get("generation", "")
    body_variant = ctx.variants.get("health_body", "")
    err = ctx.variants.get("error_status", "")
    gen = '"7"' if gen_variant == "string" else "7"
    health = []
    if body_variant == "flag":
        health.append(('data["healthy"]', "True"))
    else:
        health.append(('data["status"]', json.dumps({"healthy": "healthy", "up": "up"}.get(body_variant, "ok"))))
    if gen_variant != "omit":
        health.append(('data["generation"]', gen))
    obj = {"message": "hi", "nested": {"flag": True, "nothing": None}}
    cases = [
        HttpCase("health_reports_generation", "GET", "/health", 200, health),
        HttpCase("echo_returns_object", "POST", "/echo", 200, [("data", cg.py_literal(obj))], payload=obj,
                 has_payload=True, doc="An object comes back unchanged."),
        HttpCase("echo_returns_list", "POST", "/echo", 200, [("data", "[1, 2, 3]")], payload=[1, 2, 3],
                 has_payload=True),
        HttpCase("echo_rejects_invalid_json", "POST", "/echo", 400, [('data["error"]', '"bad-request"')],
                 payload="{not json", has_payload=True, raw=True),
        HttpCase("reverse_ascii", "GET", "/reverse?text=stressed", 200,
                 [('data["reversed"]', '"desserts"'), ('data["text"]', '"stressed"')]),
        HttpCase("reverse_non_ascii", "GET", "/reverse?text=%C3%A9t%C3%A9", 200, [('data["reversed"]', '"été"')],
                 doc="Code points, not bytes."),
        HttpCase("reverse_empty_text", "GET", "/reverse?text=", 200, [('data["reversed"]', '""')]),
    ]
    if err != "default_empty":
        cases.append(HttpCase("reverse_needs_text", "GET", "/reverse", 400, [('data["error"]', '"bad-request"')]))
    if err != "catch_all":
        cases.append(HttpCase("unknown_path_is_404", "GET", "/no-such-endpoint", 404, []))
        cases.append(HttpCase("wrong_method_is_405", "GET", "/echo", 405, []))
    return cases


def health_env_test(ctx: Ctx) -> str:
    gen_variant = ctx.variants.get("generation", "")
    var = "GENERATION" if gen_variant == "env" else "CAMBRIAN_GENERATION"
    expected = '"3"' if gen_variant == "string" else "3"
    check = "" if gen_variant == "omit" else f'    assert data["generation"] == {expected}\n'
    if ctx.style.test_client == "fixture":
        return dedent(f'''
            """/health reads CAMBRIAN_GENERATION at start-up."""

            from {ctx.pkg}.app import make_app


            async def test_health_generation_from_env(aiohttp_client, monkeypatch) -> None:
                monkeypatch.setenv("{var}", "3")
                client = await aiohttp_client(make_app())
                resp = await client.get("/health")
                data = await resp.json()
                assert resp.status == 200
            ''') + check
    return dedent(f'''
        """/health reads CAMBRIAN_GENERATION at start-up."""

        import asyncio

        from aiohttp.test_utils import TestClient, TestServer

        from {ctx.pkg}.app import make_app


        def test_health_generation_from_env(monkeypatch) -> None:
            monkeypatch.setenv("{var}", "3")

            async def go():
                async with TestClient(TestServer(make_app())) as client:
                    resp = await client.get("/health")
                    return resp.status, await resp.json()

            status, data = asyncio.run(go())
            assert status == 200
        ''') + check


def build(ctx: Ctx) -> dict[str, str]:
    pkg = ctx.pkg
    ctx.pick("health_body", ["healthy", "up", "flag"])
    ctx.pick("error_status", ["default_empty", "catch_all"])
    files: dict[str, str] = {}
    files[f"{pkg}/__init__.py"] = f'"""{ctx.spec.name.capitalize()}: a JSON echo service."""\n'
    files[f"{pkg}/config.py"] = cg.config_module(ctx)
    files[f"{pkg}/app.py"] = app_module(ctx)
    if ctx.style.retry_helper and ctx.style.runner == "app_runner":
        files[f"{pkg}/retry.py"] = cg.retry_module(ctx)
    files[f"{pkg}/__main__.py"] = cg.main_module(ctx, "make_app(settings)")
    http = http_cases(ctx)
    config_tests = cg.config_unit_cases(ctx)
    if ctx.has("failing_test"):
        cg.sabotage(ctx, http, config_tests)
    gen_src = 'generation="7"' if ctx.variants.get("generation") == "string" else "generation=7"
    files["tests/test_app.py"] = cg.tests_api_module(
        ctx, http, f"make_app(Settings(port={ctx.spec.port}, {gen_src}))",
        [f"from {pkg}.app import make_app", f"from {pkg}.config import Settings"],
    )
    files["tests/test_config.py"] = cg.tests_unit_module(ctx, "Settings from the environment.", config_tests)
    files["tests/test_health_env.py"] = health_env_test(ctx)
    return files
