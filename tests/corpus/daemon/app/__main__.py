import os
import time

from aiohttp import web

from app.daemonize import heartbeat_age, spawn_daemon
from app.server import PORT, make_app

if __name__ == "__main__":
    time.sleep(0.3)
    age = heartbeat_age(os.path.join(os.getcwd(), ".test-stage-daemon"))
    alive = age is not None and age < 0.3
    print(f"corpus daemon: test-stage daemon alive at start: {alive} (age={age})", flush=True)
    spawn_daemon(os.path.join(os.getcwd(), ".start-stage-daemon"))
    web.run_app(make_app(), host="0.0.0.0", port=PORT, print=None)
