"""Writing anywhere outside the workspace and the scratch tmpfs must fail."""

import os
import sys
import sysconfig

import pytest

SCRATCH = ("/proc", "/sys", "/dev")


def _workspace():
    return os.path.realpath(os.getcwd())


def _allowed(path):
    path = os.path.realpath(path)
    if path.startswith(SCRATCH) or path in ("/tmp", "/dev/shm") or path.startswith(("/tmp/", "/dev/shm/")):
        return True
    return path == _workspace() or path.startswith(_workspace() + "/")


def _try_write(directory):
    probe = os.path.join(directory, ".corpus-write-probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        return exc
    os.close(fd)
    os.unlink(probe)
    return None


@pytest.mark.parametrize("directory", ["/", "/etc", "/usr", "/usr/local/bin", "/rig", "/opt", "/root", "/var", "/home", "/bin"])
def test_cannot_write(directory):
    if not os.path.isdir(directory):
        pytest.skip(f"{directory} does not exist in the rig image")
    err = _try_write(directory)
    os.write(1, f"corpus write {directory}: {err!r}\n".encode())
    assert err is not None, f"wrote a file into {directory}"


def test_no_writable_directory_outside_workspace():
    writable = []
    for top in sorted(os.listdir("/")):
        root = "/" + top
        if root in SCRATCH or _allowed(root) or not os.path.isdir(root) or os.path.islink(root):
            continue
        for dirpath, dirnames, _ in os.walk(root):
            if _allowed(dirpath):
                dirnames[:] = []
                continue
            if os.access(dirpath, os.W_OK) and _try_write(dirpath) is None:
                writable.append(dirpath)
    assert not writable, f"writable outside the workspace: {writable[:20]}"


def test_interpreter_and_packages_are_read_only():
    targets = [sys.executable, os.path.realpath(sys.executable), sysconfig.get_paths()["purelib"], pytest.__file__]
    for target in targets:
        if os.path.isdir(target):
            assert _try_write(target) is not None, f"can write into {target}"
        else:
            try:
                with open(target, "ab"):
                    pass
            except OSError:
                continue
            pytest.fail(f"can open {target} for writing")


def test_cannot_modify_etc_passwd():
    with pytest.raises(OSError):
        with open("/etc/passwd", "a") as fh:
            fh.write("corpus::0:0::/:/bin/sh\n")
