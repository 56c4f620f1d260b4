"""One request to the export endpoint: the URL for a region (or a proxy/test server) and the day's parameters,
and what came of it: the day written to a temp file (see day_file.py), or a failure and whether it is worth
retrying (408/429/5xx and connection errors, also a body cut mid-stream; ``Retry-After`` read) with Mixpanel's
error text, bounded and scrubbed of the secret."""

from __future__ import annotations

import email.utils
import json
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import requests

from growth_pipeline.lib.ingest.mixpanel_export.day_file import WrittenBody, stream_to_temp
from growth_pipeline.lib.ingest.mixpanel_export.endpoint import REGION_HOSTS, export_url  # noqa: F401 - re-exported
from growth_pipeline.lib.ingest.mixpanel_export.service_account import ServiceAccount

#: Statuses worth retrying; every other non-200 status fails at once.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
#: requests exceptions worth retrying (connection refused/reset, timeouts, a body cut mid-stream).
RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,  # includes ConnectTimeout, SSLError, ProxyError
    requests.Timeout,  # includes ReadTimeout
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

_ERROR_BODY_BYTES = 64 * 1024  # at most this much of an error reply is read
_USER_AGENT = "growth_pipeline-mixpanel-export/1"
_OUT_OF_TIME = "the body was still arriving when the time allowed for the day ran out"


def export_params(project_id: str, day: date, *, time_in_ms: bool = False) -> dict[str, str]:
    """Query parameters for one day (``from_date`` = ``to_date`` = ``day``, both inclusive)."""
    params = {"project_id": project_id, "from_date": day.isoformat(), "to_date": day.isoformat()}
    if time_in_ms:
        params["time_in_ms"] = "true"
    return params


def _parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date); None if absent/invalid."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - now
        return max(0.0, seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


@dataclass
class Failure:
    status: int | None
    error_text: str
    retryable: bool
    retry_after_s: float | None = None


def _error_text(resp: requests.Response, account: ServiceAccount) -> str:
    """Mixpanel's error message from an error reply (``{"error": ...}`` or text), bounded and scrubbed."""
    raw = b""
    try:
        for chunk in resp.iter_content(chunk_size=8192):
            raw += chunk
            if len(raw) >= _ERROR_BODY_BYTES:
                break
    except requests.RequestException:
        pass
    text = raw[:_ERROR_BODY_BYTES].decode("utf-8", errors="replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("error"):
        text = str(payload["error"])
    text = " ".join(text.split())
    if len(text) > 500:
        text = text[:500] + "..."
    return account.scrub(text or (resp.reason or "").strip() or "no error text")


def _describe_exception(exc: BaseException, account: ServiceAccount) -> str:
    return account.scrub(f"{type(exc).__name__}: {exc}")


def _socket_of(resp: requests.Response) -> socket.socket | None:
    """The response's socket (urllib3 2.x keeps the connection on the response while streaming), or None."""
    raw = getattr(resp, "raw", None)
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:
        sock = getattr(getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class _Watchdog:
    """Shuts the response's socket down once ``seconds`` have passed, so a body that trickles in (each read
    within the read timeout, the whole never done) cannot outlive the deadline: the blocked read returns and
    the download fails as cut."""

    def __init__(self, resp: requests.Response, seconds: float):
        self.fired = False
        self._resp = resp
        self._timer = threading.Timer(max(0.0, seconds), self._fire) if math.isfinite(seconds) else None
        if self._timer is not None:
            self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = _socket_of(self._resp)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> _Watchdog:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()


def attempt(
    session: requests.Session,
    *,
    url: str,
    params: dict[str, str],
    account: ServiceAccount,
    connect_timeout_s: float,
    read_timeout_s: float,
    remaining_s: float,
    dest_dir: Path,
    final_name: str,
    wall_clock: Callable[[], float],
) -> WrittenBody | Failure:
    """One request, given at most ``remaining_s`` seconds in all: connecting waits at most ``connect_timeout_s``,
    each read at most ``read_timeout_s`` (both capped by ``remaining_s``), and the body is cut when
    ``remaining_s`` runs out. Returns what was written, or why not; raises only for local errors (disk, ...)."""
    t0 = time.monotonic()
    try:
        resp = session.get(
            url,
            params=params,
            auth=requests.auth.HTTPBasicAuth(account.username, account.secret),
            headers={"Accept": "text/plain", "Accept-Encoding": "gzip", "User-Agent": _USER_AGENT},
            timeout=(min(connect_timeout_s, remaining_s), min(read_timeout_s, remaining_s)),
            stream=True,
            allow_redirects=False,  # the Authorization header goes to the export host and nowhere else
        )
    except RETRYABLE_EXCEPTIONS as exc:
        return Failure(None, _describe_exception(exc, account), retryable=True)
    except requests.RequestException as exc:
        return Failure(None, _describe_exception(exc, account), retryable=False)

    with resp:
        if resp.status_code != 200:
            return Failure(
                resp.status_code,
                _error_text(resp, account),
                retryable=resp.status_code in RETRYABLE_STATUSES,
                retry_after_s=_parse_retry_after(resp.headers.get("Retry-After"), now=wall_clock()),
            )
        with _Watchdog(resp, remaining_s - (time.monotonic() - t0)) as watchdog:
            try:
                written = stream_to_temp(resp, dest_dir, final_name)
            except Exception as exc:
                if watchdog.fired:
                    return Failure(200, _OUT_OF_TIME, retryable=True)
                if isinstance(exc, RETRYABLE_EXCEPTIONS):
                    return Failure(200, f"body cut mid-stream ({_describe_exception(exc, account)})", retryable=True)
                if isinstance(exc, requests.RequestException):
                    why = f"reading the body failed ({_describe_exception(exc, account)})"
                    return Failure(200, why, retryable=False)
                raise  # a local error (disk full, ...)
        if watchdog.fired:  # a body without a length ends "cleanly" when its socket is shut: not complete
            written.tmp_path.unlink(missing_ok=True)
            return Failure(200, _OUT_OF_TIME, retryable=True)
        return written
