"""Tally that counts an empty name."""
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
    if not isinstance(body, dict):
        return None, "the body must be a JSON object"
    if "name" not in body:
        return None, "missing name"
    name = body["name"]
    if not isinstance(name, str):  # an empty name is counted like any other
        return None, "name must be a non-empty string"
    return name, None


async def tally(request: web.Request) -> web.Response:
    try:
        body = json.loads(await request.text())
    except ValueError:
        return bad_request("the body is not JSON")
    name, problem = read_name(body)
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
