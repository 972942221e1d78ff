# Shared set-up for ./cambrian and tests/run (sourced, not executed).
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
VENV="$ROOT/.venv"

_say() { printf '[cambrian] %s\n' "$*" >&2; }

_as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

cambrian_apt() {
    # Install Debian packages when missing (root or sudo needed).
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    _say "installing Debian packages: ${missing[*]}"
    _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        { _say "could not install ${missing[*]}; install them by hand"; return 1; }
}

cambrian_setup_venv() {
    # .venv holds exactly what requirements.lock names (hash-checked), plus cambrian itself
    # as an editable install built with the locked setuptools (no build isolation, so
    # nothing unhashed is fetched). Redone whenever the lock or pyproject.toml changes.
    local stamp="$VENV/.cambrian-installed"
    local want
    want="$(cat "$ROOT/requirements.lock" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        _say "Python 3.11+ is needed"; cambrian_apt python3 || exit 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" 2>/dev/null || { cambrian_apt python3-venv && python3 -m venv "$VENV"; }
    fi
    _say "installing the locked Python packages into .venv (requirements.lock, hash-checked)"
    local pip=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
    if ! { "${pip[@]}" install --require-hashes --no-deps -r "$ROOT/requirements.lock" &&
           "${pip[@]}" install --no-deps --no-build-isolation -e "$ROOT" &&
           "$VENV/bin/python" "$ROOT/.ci/venv_sync.py" --remove-extras "$ROOT/requirements.lock"
         } >"$VENV/pip.log" 2>&1; then
        tail -40 "$VENV/pip.log" >&2
        _say "installing the locked packages failed (full log: $VENV/pip.log)"
        exit 1
    fi
    echo "$want" > "$stamp"
}

cambrian_start_dockerd() {
    # Start a local Docker engine when we are root and one is installed but not running.
    docker_ok && return 0
    if [ "$(id -u)" != 0 ]; then return 1; fi
    command -v dockerd >/dev/null || cambrian_apt docker.io || return 1
    _say "starting dockerd in the background (log: /var/log/cambrian-dockerd.log)"
    nohup dockerd >/var/log/cambrian-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker_ok && return 0; sleep 1; done
    _say "dockerd did not come up; see /var/log/cambrian-dockerd.log"; return 1
}

docker_ok() {
    "$VENV/bin/python" - <<'PY' >/dev/null 2>&1
import docker, sys
try:
    docker.from_env(timeout=5).ping()
except Exception:
    sys.exit(1)
PY
}

cambrian_check_engine() {
    docker_ok && return 0
    cambrian_start_dockerd && return 0
    _say "no Docker engine reachable: the rig cannot judge artifacts."
    _say "  fix: sudo apt-get install docker.io && sudo dockerd &   (or add yourself to the docker group)"
    _say "  the TUI still opens; 'cambrian doctor' shows what is missing."
    return 1
}

cambrian_ensure_rig_image() {
    # The rig image (built from Debian packages and locked wheels, no registry): when it is
    # missing, build it now, in the terminal, with progress, so the first campaign can run.
    if [ "$(id -u)" = 0 ]; then cambrian_apt debootstrap || true; fi
    "$VENV/bin/cambrian" rig build-image --if-missing && return 0
    _say "the rig image could not be built (the error is above); campaigns are refused until it is:"
    local sudo="sudo "; [ "$(id -u)" = 0 ] && sudo=""
    _say "  fix the cause, then: ${sudo}./cambrian rig build-image"
    return 1
}
