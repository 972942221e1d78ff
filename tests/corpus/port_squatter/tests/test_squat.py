"""A test leaves behind a daemon that serves a perfect /health and /hello on 8401."""

import json
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

ANSWERS = {"/health": {"status": "ok"}, "/hello": {"hello": "world"}}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps(ANSWERS.get(self.path, {"squatter": True})).encode()
        self.send_response(200 if self.path in ANSWERS else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _squat():
    if os.fork():
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        HTTPServer(("0.0.0.0", 8401), Handler).serve_forever()
    finally:
        os._exit(0)


def test_squat_port_8401():
    _squat()
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", 8401), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("squatter did not come up")
