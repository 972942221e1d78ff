"""Tally whose 400 for a missing name has no `error` field."""
import json
from collections import Counter

from aiohttp import web

PORT = 8401


def bad_request(message: str) -> web.Response:
    return web.json_response({"error": "bad-request", "message": message}, status=400)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def shout_of(text: str) -> str:
    return text.upper()


async def shout(request: web.Request) -> web.Response:
    text = request.query.get("text", "")
    return web.json_response({"text": text, "shout": shout_of(text)})


def read_name(body):
    """The name of a tally request, or the 400's message."""
    if not isinstance(body, dict) or "name" not in body:
        return None, None
    name = body["name"]
    if not isinstance(name, str) or not name:
        return None, "name must be a non-empty string"
    return name, None


async def tally(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.text())
    except ValueError:
        return bad_request("the body is not JSON")
    name, problem = read_name(body)
    if name is None and problem is None:
        # a missing name or a non-object body: a 400 without the `error` field
        return web.json_response({"message": "name is required"}, status=400)
    if problem:
        return bad_request(problem)
    counts = request.app["counts"]
    counts[name] += 1
    return web.json_response({"name": name, "count": counts[name]})


def make_app() -> web.Application:
    app = web.Application()
    app["counts"] = Counter()
    app.router.add_get("/health", health)
    app.router.add_get("/shout", shout)
    app.router.add_post("/tally", tally)
    return app
