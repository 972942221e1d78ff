# Cambrian rig image self-check. Runs as `python -c <this file> <json>` inside a
# throw-away container (no network, read-only root, the organism uid). The JSON
# argument carries the pins and the layout; the last stdout line is a JSON verdict.
import importlib
import importlib.metadata
import json
import os
import shutil
import sys

cfg = json.loads(sys.argv[1])
MODULES = {"pyyaml": "yaml"}
result = {
    "python": sys.version.split()[0],
    "prefix": sys.prefix,
    "uid": os.getuid(),
    "gid": os.getgid(),
    "which": {n: shutil.which(n) for n in ("python", "python3")},
    "packages": {},
    "problems": [],
}
problems = result["problems"]

if not result["python"].startswith(cfg["python_prefix"]):
    problems.append("python is %s, expected %s.x" % (result["python"], cfg["python_prefix"]))
if os.path.realpath(sys.prefix) != os.path.realpath(cfg["venv"]):
    problems.append("sys.prefix is %s, expected %s" % (sys.prefix, cfg["venv"]))
for name, path in result["which"].items():
    if path is None or os.path.dirname(path) != os.path.join(cfg["venv"], "bin"):
        problems.append("%s resolves to %s, not the venv" % (name, path))
if [os.getuid(), os.getgid()] != cfg["user"]:
    problems.append("running as %s:%s" % (os.getuid(), os.getgid()))

for dist, want in sorted(cfg["pins"].items()):
    module = MODULES.get(dist.lower(), dist.lower().replace("-", "_"))
    try:
        have = importlib.metadata.version(dist)
        importlib.import_module(module)
    except Exception as exc:  # report every failure, not only the first
        problems.append("%s (import %s): %s: %s" % (dist, module, type(exc).__name__, exc))
        continue
    result["packages"][dist] = have
    if want and have != want:
        problems.append("%s is %s, pinned %s" % (dist, have, want))

# Every locked distribution at its locked version, and nothing else in the venv but the
# venv's own pip/setuptools (from Debian's python3-venv).
def _norm(name):
    return name.lower().replace("_", "-").replace(".", "-")

locked = {_norm(k): v for k, v in cfg.get("locked", {}).items()}
have = {}
for d in importlib.metadata.distributions():
    if d.metadata["Name"]:
        have[_norm(d.metadata["Name"])] = d.version
for name, want in sorted(locked.items()):
    if have.get(name) != want:
        problems.append("locked %s==%s, installed %s" % (name, want, have.get(name, "nothing")))
if locked:
    extra = sorted(set(have) - set(locked) - {"pip", "setuptools"})
    if extra:
        problems.append("not in the lock: " + ", ".join("%s==%s" % (n, have[n]) for n in extra))
result["locked_ok"] = bool(locked) and not any(p.startswith(("locked ", "not in the lock")) for p in problems)

# Build tools run, and an artifact's build line resolves offline from the wheelhouse
# (already satisfied: nothing to write into the read-only venv).
import subprocess
import tempfile

env = dict(os.environ, **cfg.get("offline_env", {}))
for tool in cfg.get("tools", []):
    exe = os.path.join(cfg["venv"], "bin", tool)
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, env=env)
        result.setdefault("tools", {})[tool] = out.stdout.strip()
        if out.returncode != 0:
            problems.append("%s --version exited %d: %s" % (tool, out.returncode, out.stderr.strip()[-300:]))
    except Exception as exc:
        problems.append("%s: %s: %s" % (tool, type(exc).__name__, exc))
if cfg.get("offline_env"):
    with tempfile.TemporaryDirectory() as tmp:
        req = os.path.join(tmp, "requirements.txt")
        with open(req, "w") as f:
            f.write("aiohttp>=3.9.0\npytest>=7.0.0\npydantic>=2.0.0\n")
        builds = [["pip", "install", "-r", req]]
        if "uv" in cfg.get("tools", []):
            builds.append(["uv", "pip", "install", "-r", req])
        for cmd in builds:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp)
            result.setdefault("offline_builds", {})[" ".join(cmd[:3])] = out.returncode
            if out.returncode != 0:
                problems.append("offline `%s` exited %d: %s" % (" ".join(cmd[:3]), out.returncode,
                                                               (out.stderr or out.stdout).strip()[-400:]))

for path in cfg["dirs"]:
    if not os.path.isdir(path):
        problems.append("missing directory %s" % path)

print(json.dumps(result, sort_keys=True))
sys.exit(1 if problems else 0)
