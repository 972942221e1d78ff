import asyncio

from aiohttp import web

from app.server import PORT, health


async def hello(request):
    # Slowloris in reverse: promise 1000 bytes, then trickle one byte per second. Each
    # read returns within any per-read socket timeout, so only an overall deadline ends it.
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                   "Content-Length": "1000"})
    await resp.prepare(request)
    for _ in range(1000):
        await resp.write(b" ")
        await asyncio.sleep(1)
    return resp


if __name__ == "__main__":
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/hello", hello)
    web.run_app(app, host="0.0.0.0", port=PORT, print=None)
