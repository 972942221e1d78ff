import asyncio

from aiohttp.test_utils import TestClient, TestServer

from app.server import make_app, shout_of


def _call(method, path, **kw):
    async def go():
        async with TestClient(TestServer(make_app())) as client:
            resp = await client.request(method, path, **kw)
            return resp.status, await resp.json()

    return asyncio.run(go())


def test_health():
    assert _call("GET", "/health") == (200, {"status": "ok"})


def test_shout():
    assert _call("GET", "/shout?text=abc") == (200, {"text": "abc", "shout": "ABC"})
    assert shout_of("a1b") == "A1B"


def test_tally_names_the_name():
    status, body = _call("POST", "/tally", json={"name": "ada"})
    assert status == 200 and body["name"] == "ada" and "count" in body


def test_tally_refuses_a_number():
    assert _call("POST", "/tally", json={"name": 5})[0] == 400
