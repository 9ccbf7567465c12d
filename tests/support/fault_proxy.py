"""An HTTP reverse proxy on 127.0.0.1, in front of the S3 server, that makes some requests fail.

Faults, each counted: 500 InternalError and 503 SlowDown answers (the server never sees the
request), a connection closed before the request is forwarded, a request held past the client's
timeout and then dropped (never forwarded), and the nastiest one: the request forwarded and
carried out, then the answer dropped, so the client retries something that already happened.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "expect", "te", "upgrade"}
REPLACED = {"server", "date", "content-length"}


class Fault(StrEnum):
    ERROR = "error"  # 500 InternalError
    SLOW_DOWN = "slow_down"  # 503 SlowDown (throttling)
    DROP_REQUEST = "drop_request"  # connection closed, nothing forwarded
    TIMEOUT = "timeout"  # held past the client's timeout, then dropped
    DROP_RESPONSE = "drop_response"  # forwarded and done, the answer lost


ERRORS = {Fault.ERROR: (500, "InternalError"), Fault.SLOW_DOWN: (503, "SlowDown")}


class FaultProxy:
    """Forwards to upstream (host:port); each request fails with probability `rate`."""

    def __init__(
        self,
        upstream: str,
        rate: float = 0.0,
        seed: int = 1,
        hold_s: float = 3.0,
        faults: tuple[Fault, ...] = (),
    ) -> None:
        self.upstream = upstream
        self.rate = rate
        self.hold_s = hold_s
        self.faults = faults or tuple(Fault)
        self.fail_all = False  # answer every request with 503 SlowDown: the server is "down"
        self.injected: Counter[Fault] = Counter()
        self.forwarded = 0
        self._queued: list[tuple[Fault, str]] = []  # (fault, method) for the next matching requests
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def once(self, fault: Fault, method: str) -> None:
        """Inject this fault into the next request with this HTTP method."""
        with self._lock:
            self._queued.append((fault, method))

    def choose(self, method: str) -> Fault | None:
        with self._lock:
            fault = self._pick(method)
            if fault is not None:
                self.injected[fault] += 1
            return fault

    def _pick(self, method: str) -> Fault | None:
        if self.fail_all:
            return Fault.SLOW_DOWN
        for index, (fault, wanted) in enumerate(self._queued):
            if wanted == method:
                del self._queued[index]
                return fault
        if self._random.random() < self.rate:
            return self._random.choice(self.faults)
        return None

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for clients that expect it

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET  # noqa: N815 - http.server's method names

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a test's output is its assertions."""

    @property
    def _proxy(self) -> FaultProxy:
        return self.server.proxy  # type: ignore[attr-defined,no-any-return]

    def _handle(self) -> None:
        body = self._read_body()
        fault = self._proxy.choose(self.command)
        if fault in ERRORS:
            self._error(*ERRORS[fault])
            return
        if fault is Fault.TIMEOUT:
            time.sleep(self._proxy.hold_s)
        if fault in (Fault.TIMEOUT, Fault.DROP_REQUEST):
            self.close_connection = True
            return
        status, headers, payload = self._forward(body)
        if fault is Fault.DROP_RESPONSE:
            self.close_connection = True
            return
        self._reply(status, headers, payload)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _read_chunked(self) -> bytes:
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        host, port = self._proxy.upstream.split(":")
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        if body or "Content-Length" in self.headers or "chunked" in self.headers.get("Transfer-Encoding", ""):
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | REPLACED]
            if self.command == "HEAD":
                kept.append(("Content-Length", response.getheader("Content-Length") or "0"))
            self._proxy.forwarded += 1
            return response.status, kept, payload
        finally:
            connection.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _error(self, status: int, code: str) -> None:
        payload = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>injected by the test proxy</Message><RequestId>fault</RequestId></Error>"
        ).encode()
        self._reply(status, [("Content-Type", "application/xml")], payload)
