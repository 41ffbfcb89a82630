"""A local HTTP server that serves files with byte ranges and injects faults on demand.

It speaks what remfile (``requests``) and fsspec's HTTP backend (``aiohttp``) use: ``HEAD`` with
``Content-Length`` and ``Accept-Ranges: bytes``; ``GET`` with ``Range: bytes=a-b`` / ``a-`` /
``-n`` answered ``206`` with ``Content-Range`` and the exact ``Content-Length``; ``416`` with
``Content-Range: bytes */size`` for an unsatisfiable range; HTTP/1.1 keep-alive.

Faults (queued with :meth:`FaultyRangeServer.inject`, consumed one per matching request, or
made permanent with ``times=None``):

- ``"status"``: answer ``status`` (503 by default) with an empty body;
- ``"drop"``: send the headers and half of the body, then close the connection;
- ``"reset"``: close the connection without answering;
- ``"slow"``: wait ``delay`` seconds (half before the headers, half within the body), then
  answer normally;
- ``"stall"``: wait ``delay`` seconds (longer than the client's timeout) before answering.

Every wait ends early when the server stops, and :meth:`FaultyRangeServer.stop` closes all
connections and joins every handler thread, so no test leaves a thread or socket behind.
"""

from __future__ import annotations

import re
import socket
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass
class Fault:
    kind: str
    on: str = "range"  # "range" (GET with Range), "get", "head" or "any"
    status: int = 503
    delay: float = 0.0
    times: int | None = 1  # None: every matching request, forever

    def matches(self, method: str, ranged: bool) -> bool:
        if self.on == "any":
            return True
        if self.on == "head":
            return method == "HEAD"
        if self.on == "get":
            return method == "GET"
        return method == "GET" and ranged


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    status: int | None
    fault: str | None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10  # socket timeout: an idle keep-alive connection cannot block a thread forever
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        with self.server.lock:
            self.server.connections.discard(self.connection)

    def _close_now(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _serve(self, method: str) -> None:
        owner: FaultyRangeServer = self.server.owner
        name = self.path.split("?", 1)[0].lstrip("/")
        header = self.headers.get("Range")
        fault = owner._take_fault(method, header is not None)
        record = Request(method, self.path, header, None, fault.kind if fault else None)
        owner._record(record)
        if fault is not None:
            if fault.kind == "reset":
                self._close_now()
                return
            if fault.kind == "stall":
                owner.stop_event.wait(fault.delay)
                if owner.stop_event.is_set():
                    self._close_now()
                    return
            if fault.kind == "status":
                record.status = fault.status
                self.send_response(fault.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if fault.kind == "slow":
                owner.stop_event.wait(fault.delay / 2)
        payload = owner.files.get(name)
        if payload is None:
            record.status = 404
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = len(payload)
        start, end, status = 0, size - 1, 200
        if header is not None and method == "GET":
            m = _RANGE_RE.fullmatch(header.strip())
            if m is None or (not m[1] and not m[2]):
                start, end, status = 0, -1, 416
            elif not m[1]:  # suffix range: the last n bytes
                start, end, status = max(0, size - int(m[2])), size - 1, 206
            else:
                start = int(m[1])
                end = min(int(m[2]), size - 1) if m[2] else size - 1
                status = 206 if start < size and start <= end else 416
        record.status = status
        if status == 416:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = payload[start : end + 1]
        self.send_response(status)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/x-hdf5")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if method == "HEAD":
            return
        if fault is not None and fault.kind == "drop":
            self.wfile.write(body[: len(body) // 2])
            self._close_now()
            return
        if fault is not None and fault.kind == "slow":
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            owner.stop_event.wait(fault.delay / 2)
            self.wfile.write(body[half:])
            return
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._serve("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve("HEAD")


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads

    def __init__(self, owner: FaultyRangeServer):
        self.owner = owner
        self.lock = threading.Lock()
        self.connections: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that timed out and left makes the handler's writes fail: expected here
        self.owner.handler_errors += 1


class FaultyRangeServer:
    """Serve ``files`` (name -> bytes) on ``http://127.0.0.1:<port>/<name>``."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.requests: list[Request] = []
        self.faults: deque[Fault] = deque()
        self.injected = 0
        self.handler_errors = 0
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FaultyRangeServer:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.stop_event.set()
        self._server.shutdown()
        with self._server.lock:
            connections = list(self._server.connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(5)
        self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def inject(
        self,
        kind: str,
        times: int | None = 1,
        *,
        on: str = "range",
        status: int = 503,
        delay: float = 0.0,
    ) -> None:
        """Queue a fault for the next ``times`` requests that match ``on`` (``None``: all)."""
        if kind not in ("status", "drop", "reset", "slow", "stall"):
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self.faults.append(Fault(kind, on=on, status=status, delay=delay, times=times))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str, ranged: bool) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, ranged):
                    self.injected += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def __enter__(self) -> FaultyRangeServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
