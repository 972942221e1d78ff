from aiohttp import web

from app.server import PORT, health


async def hello(request):
    return web.json_response({"hello": "mars"})


if __name__ == "__main__":
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/hello", hello)
    web.run_app(app, host="0.0.0.0", port=PORT, print=None)
