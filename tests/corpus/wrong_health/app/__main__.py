from aiohttp import web

from app.server import PORT, hello


async def health(request):
    # The deployed entry point diverges from the tested app: health is degraded.
    return web.json_response({"status": "degraded"})


if __name__ == "__main__":
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/hello", hello)
    web.run_app(app, host="0.0.0.0", port=PORT, print=None)
