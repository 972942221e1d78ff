import threading
import time

from aiohttp import web

from app.server import PORT, health
from app.slaughter import slaughter


async def hello(request):
    return web.json_response({"hello": "killer"})


def keep_killing():
    for _ in range(20):
        slaughter()
        time.sleep(0.5)


if __name__ == "__main__":
    slaughter()
    threading.Thread(target=keep_killing, daemon=True).start()
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/hello", hello)
    web.run_app(app, host="0.0.0.0", port=PORT, print=None)
