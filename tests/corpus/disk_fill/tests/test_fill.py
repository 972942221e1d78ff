import errno
import os

import pytest

CHUNK = b"\0" * (1 << 20)
CAP = 8 << 30  # stop at 8 GiB whatever happens: the point is that a limit hits first


def fill(directory):
    """Write 1 MiB chunks into new files until the filesystem refuses; clean up."""
    written, files, err = 0, [], None
    try:
        i = 0
        while written < CAP and err is None:
            path = os.path.join(directory, f".corpus-fill-{os.getpid()}-{i}.bin")
            i += 1
            files.append(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                while written < CAP:
                    os.write(fd, CHUNK)
                    written += len(CHUNK)
            except OSError as exc:
                if exc.errno != errno.EFBIG:  # EFBIG: per-file limit, try a new file
                    err = exc.errno
            finally:
                os.close(fd)
    except OSError as exc:
        err = exc.errno
    finally:
        for path in files:
            try:
                os.unlink(path)
            except OSError:
                pass
    os.write(1, f"corpus disk fill: {directory}: {written >> 20} MiB, errno={err}\n".encode())
    return written, err


LIMIT_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


@pytest.mark.parametrize("where", ["workspace", "/tmp", "/dev/shm"])
def test_fill_is_bounded(where):
    directory = os.getcwd() if where == "workspace" else where
    if not os.path.isdir(directory):
        # reported skipped with its reason (a bare return would count as a pass)
        pytest.skip(f"{directory} does not exist in this sandbox: nothing to fill")
    written, err = fill(directory)
    assert err in LIMIT_ERRNOS, f"{directory}: wrote {written >> 20} MiB without hitting a limit"
