"""A classic double-fork daemon that outlives whoever started it."""

import os
import time


def spawn_daemon(heartbeat_path, seconds=3600):
    """Start a setsid daemon writing a heartbeat every 100 ms; return in the parent."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        try:
            with open(heartbeat_path, "w") as fh:
                fh.write(f"{os.getpid()} {n} {time.time()}\n")
        except OSError:
            pass
        time.sleep(0.1)
    os._exit(0)


def heartbeat_age(heartbeat_path):
    try:
        return time.time() - os.stat(heartbeat_path).st_mtime
    except OSError:
        return None
