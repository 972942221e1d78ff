#!/bin/sh
# Cambrian rig image: runs inside the install container, which has no network.
# Arguments: VENV UID GID WORKSPACE RIGDIR WHEELS (all fixed by rig/image.py and part of
# the recipe hash). The wheels, requirements.txt (rig/organism.lock: every package with its
# hashes) and this script sit in /wheels.
set -eu
VENV="$1"; ORG_UID="$2"; ORG_GID="$3"; WORKSPACE="$4"; RIGDIR="$5"; WHEELS="$6"

echo "install: network interfaces: $(ls /sys/class/net | tr '\n' ' ')"
echo "install: $(python3 --version)"

python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install \
    --no-index --find-links /wheels --no-cache-dir --require-hashes --no-deps \
    --disable-pip-version-check --no-input --progress-bar off \
    -r /wheels/requirements.txt
# What was really installed (transitive versions included), for the record.
"$VENV/bin/python" -m pip freeze --all --disable-pip-version-check > "$VENV/cambrian-freeze.txt"

# A named, unprivileged organism user (getpass/pytest look the uid up).
grep -q "^organism:" /etc/group  || echo "organism:x:${ORG_GID}:" >> /etc/group
grep -q "^organism:" /etc/passwd || \
    echo "organism:x:${ORG_UID}:${ORG_GID}:Cambrian organism:${WORKSPACE}:/usr/sbin/nologin" >> /etc/passwd

mkdir -p "$WORKSPACE" "$RIGDIR"
chown "${ORG_UID}:${ORG_GID}" "$WORKSPACE"
chmod 0755 "$WORKSPACE" "$RIGDIR"

# The locked wheelhouse stays in the image: an artifact's own build line (`pip install -r
# requirements.txt`, `uv pip install ...`) resolves from it, offline (no network in the rig).
mkdir -p "$WHEELS"
mv /wheels/*.whl "$WHEELS"/
cp /wheels/requirements.txt "$WHEELS/organism.lock"
chmod -R a+rX "$WHEELS"
rm -rf /wheels /root/.cache /tmp/* 2>/dev/null || true
echo "install: done"
