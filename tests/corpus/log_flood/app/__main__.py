import os
import threading

from aiohttp import web

from app.server import PORT, make_app


def flood():
    block = (b"C" * 511 + b"\n") * 256  # 128 KiB
    for _ in range(1024):  # 128 MiB
        os.write(1, block)


if __name__ == "__main__":
    threading.Thread(target=flood, daemon=True).start()
    web.run_app(make_app(), host="0.0.0.0", port=PORT, print=None)
