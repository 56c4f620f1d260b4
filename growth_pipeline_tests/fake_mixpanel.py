"""A local fake of Mixpanel's Raw Export API for tests (stdlib only).

    with FakeMixpanel({"2024-03-01": jsonl}, "sa-user", "sa-secret", "123") as fake:
        export_day(..., base_url=fake.base_url)
        fake.requests[0].query["from_date"]

Serves ``GET /api/2.0/export?project_id=&from_date=&to_date=`` over HTTP/1.1 with chunked transfer encoding,
concatenating the days of the (inclusive) range. Checks HTTP basic auth (401 ``{"error": ...}``), the
project id (400 when missing or wrong) and the dates (400). Gzip-encodes the body (``Content-Encoding: gzip``)
when the client sends ``Accept-Encoding: gzip`` (unless ``honour_gzip=False``).

``fail_with`` scripts failures, consumed one per request before anything else is checked: each item is
``(status, headers)`` or ``(status, headers, body)``; the status ``"cut"`` answers 200 and closes the
connection halfway through the body (no final chunk); ``"hang"`` accepts the request and never answers;
``"drip"`` answers 200 with a ``Content-Length`` of 1 GB and sends one byte every 0.1 s (both until the server
stops or the client goes away). ``terminated_early=True`` appends a ``terminated early`` line to every successful body.

Every request is recorded in ``.requests`` (path, query, headers with the Authorization value redacted,
whether auth was OK, the status answered).
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

EXPORT_PATH = "/api/2.0/export"
CUT = "cut"
HANG = "hang"
DRIP = "drip"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # Authorization's value replaced by "<redacted>"
    auth_ok: bool
    status: int | str


class FakeMixpanel:
    def __init__(
        self,
        days: dict[str, bytes | str],
        username: str = "sa-user",
        secret: str = "sa-secret",
        project_id: str = "123",
        *,
        fail_with: list[tuple] | None = None,
        terminated_early: bool = False,
        honour_gzip: bool = True,
        chunk_size: int = 64 * 1024,
    ):
        self.days = {k: (v.encode() if isinstance(v, str) else bytes(v)) for k, v in days.items()}
        self.username = username
        self.secret = secret
        self.project_id = str(project_id)
        self.terminated_early = terminated_early
        self.honour_gzip = honour_gzip
        self.chunk_size = chunk_size
        self._script: deque[tuple] = deque(fail_with or [])
        self._records: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()  # set by stop(): hanging handlers let go

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeMixpanel:
        fake = self
        self.stopping.clear()

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-mixpanel", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeMixpanel:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeMixpanel is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    # ------------------------------------------------------------------ helpers for the handler
    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._records.append(rec)

    def _next_failure(self) -> tuple | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _auth_ok(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[len("Basic ") :], validate=True).decode()
        except ValueError:
            return False
        user, sep, secret = decoded.partition(":")
        return bool(sep) and user == self.username and secret == self.secret

    def body_for(self, from_date: date, to_date: date) -> bytes:
        out = []
        d = from_date
        while d <= to_date:
            out.append(self.days.get(d.isoformat(), b""))
            d += timedelta(days=1)
        body = b"".join(out)
        if self.terminated_early:
            if body and not body.endswith(b"\n"):
                body += b"\n"
            body += b"terminated early\n"
        return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeMixpanel
    timeout = 10  # idle keep-alive connections give up

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, *, gzip_ok=False) -> None:
        headers = dict(headers or {})
        if gzip_ok:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        size = self.server_fake.chunk_size
        for i in range(0, len(body), size):
            piece = body[i : i + size]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_error_json(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        self._send(status, json.dumps({"error": message}).encode(), h)

    def _send_cut(self, body: bytes, gzip_ok: bool) -> None:
        if gzip_ok:
            body = gzip.compress(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if gzip_ok:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        half = body[: max(1, len(body) // 2)]
        self.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
        self.wfile.flush()
        self.close_connection = True  # no final chunk: the client sees the body end prematurely

    def _send_drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(10**9))  # not chunked: a client's reads block until 1 MiB or EOF
        self.end_headers()
        try:
            while not self.server_fake.stopping.wait(0.1):
                self.wfile.write(b" ")
                self.wfile.flush()
        except OSError:
            pass  # the client gave up
        self.close_connection = True

    def do_GET(self):  # noqa: N802 - http.server's naming
        fake = self.server_fake
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        auth_header = self.headers.get("Authorization")
        auth_ok = fake._auth_ok(auth_header)
        headers = {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in self.headers.items()}
        gzip_ok = fake.honour_gzip and "gzip" in (self.headers.get("Accept-Encoding") or "").lower()

        def record(status):
            fake._record(RecordedRequest("GET", parts.path, query, headers, auth_ok, status))

        failure = fake._next_failure()
        if failure is not None:
            status, extra = failure[0], dict(failure[1] if len(failure) > 1 else {})
            record(status)
            if status == CUT:
                self._send_cut(self._body_or_empty(query), gzip_ok)
                return
            if status == HANG:
                fake.stopping.wait()
                self.close_connection = True
                return
            if status == DRIP:
                self._send_drip()
                return
            if len(failure) > 2:
                body = failure[2].encode() if isinstance(failure[2], str) else failure[2]
                self._send(status, body, extra)
            else:
                self._send_error_json(status, f"scripted failure {status}", extra)
            return

        if parts.path != EXPORT_PATH:
            record(404)
            self._send_error_json(404, f"unknown path {parts.path}")
            return
        if not auth_ok:
            record(401)
            self._send_error_json(
                401, "Invalid service account credentials", {"WWW-Authenticate": 'Basic realm="Mixpanel"'}
            )
            return
        if not query.get("project_id"):
            record(400)
            self._send_error_json(400, "project_id is required when authenticating with a service account")
            return
        if query["project_id"] != fake.project_id:
            record(400)
            self._send_error_json(400, f"service account is not a member of project {query['project_id']}")
            return
        try:
            from_date = date.fromisoformat(query["from_date"])
            to_date = date.fromisoformat(query["to_date"])
        except (KeyError, ValueError):
            record(400)
            self._send_error_json(400, "from_date and to_date must be YYYY-MM-DD")
            return
        if from_date > to_date:
            record(400)
            self._send_error_json(400, "from_date must be on or before to_date")
            return
        record(200)
        self._send(200, fake.body_for(from_date, to_date), {"Content-Type": "text/plain"}, gzip_ok=gzip_ok)

    def _body_or_empty(self, query: dict[str, str]) -> bytes:
        try:
            return self.server_fake.body_for(
                date.fromisoformat(query["from_date"]), date.fromisoformat(query["to_date"])
            )
        except (KeyError, ValueError):
            return b""
