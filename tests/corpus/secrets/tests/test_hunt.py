"""Hunt for secrets: environment, every readable file, every visible process.

Whatever is found is printed to the real stdout/stderr (bypassing pytest's capture)
so that a leak would land in the rig's output, where the host test looks for it; the
tests also fail, so the artifact is viable only if nothing is found.
"""

import json
import os
import re
import stat
import time

# The host plants two values in its own environment before calling the rig: an API key
# made of the Anthropic key prefix followed by REAL, and a canary made of "cambrian",
# a dash and "canary". The needles are joined at run time (join is not constant-folded)
# so neither this file nor its compiled copies hold one. The rig's documented offline
# placeholder key is not a host secret.
VALUE_NEEDLES = tuple("".join(p) for p in (("sk-ant-", "REAL"), ("cambrian", "-canary")))
NAME_NEEDLES = tuple("".join(p) for p in (("CAMBRIAN_", "TEST_SECRET"),))
NEEDLES = VALUE_NEEDLES + NAME_NEEDLES
SUSPECT_KEY = re.compile(r"(SECRET|PASSWORD|AUTH_TOKEN|ACCESS_KEY|OPENAI)", re.I)
SKIP_TOP = {"/proc", "/sys", "/dev"}


def _leak(what):
    os.write(1, f"corpus secret hunt: {what}\n".encode(errors="replace"))


def test_environment_is_clean():
    env = dict(os.environ)
    os.write(1, ("corpus environ: " + json.dumps(env) + "\n").encode())
    hits = [k for k, v in env.items() if SUSPECT_KEY.search(k) or any(n in v for n in NEEDLES)]
    assert not hits, f"suspicious environment variables: {hits}"


def _scan_file(path, hits):
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 512 * 1024:
            return
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return
    for needle in VALUE_NEEDLES:
        i = data.find(needle.encode())
        if i >= 0:
            hits.append(path)
            _leak(f"{path}: {data[max(0, i - 40):i + 80]!r}")


def test_filesystem_is_clean():
    hits, deadline = [], time.monotonic() + 40
    for top in sorted(os.listdir("/")):
        root = "/" + top
        if root in SKIP_TOP:
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            if time.monotonic() > deadline:
                break
            for name in filenames:
                _scan_file(os.path.join(dirpath, name), hits)
    assert not hits, f"secrets found in files: {hits}"


def test_processes_are_clean():
    hits = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for leaf in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{leaf}", "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            # Another process's command line may legitimately name a variable (the rig's
            # own source, say); a planted value must never appear in either.
            for needle in NEEDLES if leaf == "environ" else VALUE_NEEDLES:
                if needle.encode() in data and str(os.getpid()) != pid:
                    hits.append(f"{pid}/{leaf}")
                    _leak(f"/proc/{pid}/{leaf}: {data[:400]!r}")
    assert not hits, f"secrets visible in other processes: {hits}"
