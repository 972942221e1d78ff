"""A loopback TCP proxy that keeps what the server sent, to check what a client made of it.

``RecordingProxy(port)`` listens on 127.0.0.1 and forwards every connection to
``127.0.0.1:port``, recording the server's bytes per connection. :meth:`responses` parses
them as HTTP/1.1 responses (Content-Length or chunked bodies, keep-alive) and returns their
bodies, in order, so a test can read the usage a server reported in its own words.
"""

from __future__ import annotations

import socket
import threading


class RecordingProxy:
    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.received: list[bytearray] = []  # per connection, server -> client
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name="recording-proxy").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=30)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            buf = bytearray()
            with self.lock:
                self.received.append(buf)
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, buf), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, record: bytearray | None) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record is not None:
                    with self.lock:
                        record.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.server.close()

    def responses(self) -> list[tuple[int, bytes]]:
        """(status, body) of every complete response, in the order they were sent."""
        out: list[tuple[int, bytes]] = []
        with self.lock:
            streams = [bytes(b) for b in self.received]
        for data in streams:
            out.extend(_parse(data))
        return out


def _parse(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    pos = 0
    while pos < len(data):
        head_end = data.find(b"\r\n\r\n", pos)
        if head_end < 0:
            break
        lines = data[pos:head_end].decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        pos = head_end + 4
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    return out  # incomplete
                size = int(data[pos:eol].split(b";")[0], 16)
                pos = eol + 2
                if size == 0:
                    pos = data.find(b"\r\n", pos) + 2  # (no trailers)
                    break
                body.extend(data[pos:pos + size])
                pos += size + 2
            out.append((status, bytes(body)))
        else:
            n = int(headers.get("content-length", "0"))
            out.append((status, data[pos:pos + n]))
            pos += n
    return out
