from aiohttp import web

PORT = 8401


def greeting(name: str) -> str:
    return f"hello, {name}"


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": "world"})


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/hello", hello)
    return app
