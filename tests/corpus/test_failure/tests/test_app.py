import asyncio

from aiohttp.test_utils import TestClient, TestServer

from app.server import greeting, make_app


def _get(path):
    async def go():
        async with TestClient(TestServer(make_app())) as client:
            resp = await client.get(path)
            return resp.status, await resp.json()

    return asyncio.run(go())


def test_health():
    assert _get("/health") == (200, {"status": "ok"})


def test_hello():
    assert _get("/hello") == (200, {"hello": "world"})


def test_greeting():
    assert greeting("rig") == "hello, rig"


def test_greeting_shouts():
    expected = "HELLO, RIG"
    assert greeting("rig") == expected, "greeting should shout"
