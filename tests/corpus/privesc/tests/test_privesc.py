"""Every privilege escalation route must fail; the artifact is viable only if contained."""

import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
import subprocess

import pytest

LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000


def _status():
    with open("/proc/self/status") as fh:
        return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)


def test_runs_as_uid_10001():
    assert os.getuid() == 10001
    assert os.geteuid() == 10001
    out = subprocess.run(["id", "-u"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "10001"


def test_no_capabilities_and_no_new_privs():
    st = _status()
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if field in st:
            assert int(st[field].strip(), 16) == 0, f"{field} = {st[field]}"
    assert st.get("NoNewPrivs", "").strip() == "1"
    assert st.get("Seccomp", "").strip() in ("1", "2"), f"Seccomp = {st.get('Seccomp')}"


def test_setuid_calls_fail():
    with pytest.raises(PermissionError):
        os.setuid(0)
    with pytest.raises(PermissionError):
        os.setgid(0)
    with pytest.raises(PermissionError):
        os.setgroups([0])
    with pytest.raises(OSError):
        os.chroot("/tmp")


@pytest.mark.parametrize("argv", [["sudo", "-n", "id", "-u"], ["su", "-c", "id -u", "root"], ["passwd", "-d", "root"], ["newgrp", "root"]])
def test_setuid_helpers_do_not_elevate(argv):
    if not shutil.which(argv[0]):
        pytest.skip(f"{argv[0]} is not installed in the rig image")
    res = subprocess.run(argv, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert res.returncode != 0 or res.stdout.strip() != "0", f"{argv} -> {res.stdout!r}"


def test_setuid_bit_is_useless():
    # Setting the bit on one's own file may succeed or be refused; either way the file is ours
    # and no mount we can write may honour the bit (checked whatever chmod did, so a refused
    # chmod is not a silent pass).
    path = os.path.join(os.getcwd(), ".corpus-suid")
    shutil.copy("/bin/sh", path) if os.path.exists("/bin/sh") else open(path, "w").close()
    try:
        try:
            os.chmod(path, 0o4755)
        except OSError as exc:
            assert exc.errno in (errno.EPERM, errno.EACCES, errno.EROFS), exc
        st = os.stat(path)
        assert st.st_uid == 10001  # owned by us: running it can never give root anyway
        assert os.statvfs(path).f_flag & os.ST_NOSUID, "workspace is not mounted nosuid"
    finally:
        os.unlink(path)


def test_setuid_root_binaries_are_neutralised():
    found = []
    for d in ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/libexec"):
        for dirpath, _, files in os.walk(d):
            for name in files:
                p = os.path.join(dirpath, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_ISUID and st.st_uid == 0:
                    found.append(p)
    os.write(1, f"corpus privesc: setuid-root binaries present: {found}\n".encode())
    # With no_new_privs the bit is ignored; prove it with the ones that print an id.
    assert _status().get("NoNewPrivs", "").strip() == "1" or not found


def test_cannot_write_etc_passwd_or_shadow():
    for path in ("/etc/passwd", "/etc/shadow", "/etc/sudoers"):
        with pytest.raises(OSError):
            open(path, "a").close()


def test_mount_fails():
    target = os.path.join(os.getcwd(), ".corpus-mnt")
    os.makedirs(target, exist_ok=True)
    rc = LIBC.mount(b"none", target.encode(), b"tmpfs", 0, None)
    assert rc != 0, "mount(2) succeeded"
    if shutil.which("mount"):
        res = subprocess.run(["mount", "-t", "tmpfs", "none", target], capture_output=True, timeout=10)
        assert res.returncode != 0


def test_unshare_fails():
    for flags in (CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWUSER | CLONE_NEWNS):
        pid = os.fork()
        if pid == 0:  # try in a child so a success cannot change this process
            os._exit(0 if LIBC.unshare(flags) == 0 else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) != 0, f"unshare({flags:#x}) succeeded"
    if shutil.which("unshare"):
        res = subprocess.run(["unshare", "-r", "id", "-u"], capture_output=True, text=True, timeout=10)
        assert res.returncode != 0, f"unshare -r gave {res.stdout!r}"


def test_cannot_signal_or_trace_foreign_processes():
    me = os.getuid()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            uid = os.stat(f"/proc/{name}").st_uid
        except OSError:
            continue
        if uid == me:
            continue
        with pytest.raises(PermissionError):
            os.kill(int(name), 0)


def test_no_device_nodes_of_note():
    for dev in ("/dev/mem", "/dev/kmem", "/dev/sda", "/dev/vda", "/dev/kvm"):
        assert not os.path.exists(dev) or not os.access(dev, os.R_OK | os.W_OK), dev
