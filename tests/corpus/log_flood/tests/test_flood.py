import os

MiB = 1 << 20


def test_flood_stdout_lines():
    block = (b"A" * 1023 + b"\n") * 64  # 64 KiB of 1 KiB lines
    for _ in range(640 * 16):  # 640 MiB
        os.write(1, block)


def test_flood_stderr_single_line():
    block = b"B" * MiB  # 256 MiB without a single newline
    for _ in range(256):
        os.write(2, block)
    os.write(2, b"\n")
