import os
import time

from app.daemonize import heartbeat_age, spawn_daemon

HEARTBEAT = os.path.join(os.getcwd(), ".test-stage-daemon")


def test_spawn_daemon():
    spawn_daemon(HEARTBEAT)
    time.sleep(0.5)
    age = heartbeat_age(HEARTBEAT)
    assert age is not None and age < 1.0
