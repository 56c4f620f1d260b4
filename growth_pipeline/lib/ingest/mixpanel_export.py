"""Client for Mixpanel's Raw Export API (``GET /api/2.0/export``): one project-day to one gzip file.

Pure Python (``requests`` + ``filelock``), no Dagster import.

* :func:`export_day` streams one day of raw events to ``<dest_dir>/<YYYY-MM-DD>.jsonl.gz``, gzip-compressed
  on disk whatever the wire encoding, via a hidden temp file in the same folder and ``os.replace``: a crash
  or a failed download never leaves a partial file under the final name (nor, except after a hard kill,
  a temp file).
* Retries 408/429/5xx and connection errors (also a body cut mid-stream) with exponential backoff plus
  jitter, honouring ``Retry-After``; 400/401/403/404 (and any other status) fail at once.
* :class:`RateLimiter` keeps Mixpanel's per-project budget (3 queries/s, 60 queries/h) across processes,
  in a small JSON file guarded by a ``filelock.FileLock``.

Credentials travel only in the ``Authorization`` header (HTTP basic auth), never in the URL; they are never
logged, and every message built from a server reply or a ``requests`` exception is scrubbed of the secret.
"""

from __future__ import annotations

import base64
import email.utils
import gzip
import ipaddress
import json
import logging
import math
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import filelock
import requests

logger = logging.getLogger(__name__)

REGION_HOSTS = {
    "us": "https://data.mixpanel.com",
    "eu": "https://data-eu.mixpanel.com",
    "in": "https://data-in.mixpanel.com",
}
EXPORT_PATH = "/api/2.0/export"

#: Statuses worth retrying; every other non-200 status fails at once.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
#: requests exceptions worth retrying (connection refused/reset, timeouts, a body cut mid-stream).
RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,  # includes ConnectTimeout, SSLError, ProxyError
    requests.Timeout,  # includes ReadTimeout
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

CHUNK_BYTES = 1 << 20  # read/write 1 MiB at a time: memory stays flat whatever the day's size
GZIP_LEVEL = 6
TERMINATED_EARLY_MARKER = b"terminated early"
_TAIL_BYTES = 4096  # how much of the end of the body is kept to find the last line
_ERROR_BODY_BYTES = 64 * 1024  # at most this much of an error reply is read
_CONNECT_TIMEOUT_CAP_S = 30.0
_PROJECT_ID_RE = re.compile(r"^[0-9]{1,20}$")
_USER_AGENT = "growth_pipeline-mixpanel-export/1"


class MixpanelExportError(RuntimeError):
    """An export that failed for good. The message names the project, the day, the HTTP status (if any) and
    Mixpanel's error text; never the secret.

    Attributes: ``project_id``, ``day``, ``status`` (``None`` for a connection error), ``error_text``,
    ``attempts`` (requests made), ``retryable`` (True when it gave up on a transient failure - 429, 5xx,
    network - that a later run may get past; False for a request Mixpanel refused: bad credentials, bad
    project, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        project_id: str | None = None,
        day: date | None = None,
        status: int | None = None,
        error_text: str | None = None,
        attempts: int = 0,
        retryable: bool = False,
    ):
        super().__init__(message)
        self.project_id = project_id
        self.day = day
        self.status = status
        self.error_text = error_text
        self.attempts = attempts
        self.retryable = retryable

    def __reduce__(self):  # keep the attributes across pickling (multiprocess executors)
        return (
            _rebuild_error,
            (str(self), self.project_id, self.day, self.status, self.error_text, self.attempts, self.retryable),
        )


def _rebuild_error(message, project_id, day, status, error_text, attempts, retryable) -> MixpanelExportError:
    return MixpanelExportError(
        message,
        project_id=project_id,
        day=day,
        status=status,
        error_text=error_text,
        attempts=attempts,
        retryable=retryable,
    )


class RateLimitTimeout(TimeoutError):
    """:meth:`RateLimiter.acquire` would have had to wait longer than its ``timeout_s``."""


@dataclass(frozen=True)
class ServiceAccount:
    """A Mixpanel service account (HTTP basic auth). ``repr``/``str`` never show the secret."""

    username: str
    secret: str = field(repr=False)

    def __post_init__(self):
        if not isinstance(self.username, str) or not self.username.strip():
            raise ValueError("ServiceAccount.username must be a non-empty string")
        if not isinstance(self.secret, str) or not self.secret:
            raise ValueError(f"ServiceAccount {self.username!r}: the secret is empty")

    def scrub(self, text: str) -> str:
        """``text`` with the secret (and the basic-auth token made from it) replaced by ``***``."""
        token = base64.b64encode(f"{self.username}:{self.secret}".encode()).decode("ascii")
        for s in (token, self.secret):
            if s:
                text = text.replace(s, "***")
        return text


@dataclass(frozen=True)
class ExportResult:
    """One day written.

    ``bytes_written``: size of the gzip file on disk. ``lines``: lines in the (uncompressed) body - newlines,
    plus one for an unterminated last line - including a ``terminated early`` marker line when there is one.
    ``attempts``: requests made (1 = no retry).
    """

    path: Path
    day: date
    bytes_written: int
    lines: int
    attempts: int
    terminated_early: bool


# --------------------------------------------------------------------------------------------------- URLs


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def export_url(*, region: str = "us", base_url: str | None = None) -> str:
    """The export endpoint for ``region`` (``us``/``eu``/``in``), or under ``base_url`` when given (a proxy
    or a test server; the region is still checked). ``base_url`` must be ``https://`` (plain ``http://`` only
    to a loopback address) and carry no credentials, query or fragment."""
    if not isinstance(region, str) or region.strip().lower() not in REGION_HOSTS:
        raise ValueError(f"unknown Mixpanel region {region!r}; allowed: {', '.join(sorted(REGION_HOSTS))}")
    if base_url is None:
        return REGION_HOSTS[region.strip().lower()] + EXPORT_PATH
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    if parts.username is not None or parts.password is not None:
        # never echo it: it holds credentials
        raise ValueError("base_url must not contain credentials; pass a ServiceAccount instead")
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not have a query or fragment, got {base_url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"base_url {base_url!r} is plain http to a non-local host: the service account secret would travel "
            "in clear; use https"
        )
    return base_url.strip().rstrip("/") + EXPORT_PATH


def export_params(project_id: str, day: date, *, time_in_ms: bool = False) -> dict[str, str]:
    """Query parameters for one day (``from_date`` = ``to_date`` = ``day``, both inclusive)."""
    params = {"project_id": project_id, "from_date": day.isoformat(), "to_date": day.isoformat()}
    if time_in_ms:
        params["time_in_ms"] = "true"
    return params


def _check_project_id(project_id: str) -> str:
    if isinstance(project_id, int) and not isinstance(project_id, bool):
        project_id = str(project_id)
    if not isinstance(project_id, str) or not _PROJECT_ID_RE.match(project_id.strip()):
        raise ValueError(
            f"Mixpanel project_id must be the numeric project id (Project Settings > Overview), got {project_id!r}"
            " (a project token or an API secret is not a project id)"
        )
    return project_id.strip()


def _check_day(day: date) -> date:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"day must be a datetime.date (not a datetime), got {type(day).__name__}")
    return day


# ------------------------------------------------------------------------------------------ retries / waits


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


def backoff_seconds(retry: int, *, base_s: float, max_s: float, jitter: float, rand: Callable[[], float]) -> float:
    """Wait before retry number ``retry`` (1-based): ``min(max_s, base_s * 2**(retry-1))`` stretched by up to
    ``jitter`` (a fraction) times ``rand()`` in [0, 1), never above ``max_s``."""
    backoff = min(max_s, base_s * (2 ** (retry - 1)))
    return min(max_s, backoff * (1.0 + jitter * rand()))


# ----------------------------------------------------------------------------------------------- export


@dataclass
class _Failure:
    status: int | None
    error_text: str
    retryable: bool
    retry_after_s: float | None = None


@dataclass
class _Written:
    tmp_path: Path
    bytes_written: int
    lines: int
    terminated_early: bool
    body_bytes: int


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


def _stream_to_temp(resp: requests.Response, dest_dir: Path, final_name: str) -> _Written:
    """Write the (decoded) body gzip-compressed to a hidden temp file in ``dest_dir``. On any error the temp
    file is removed and the error propagates."""
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{final_name}.", suffix=".part")
    tmp_path = Path(tmp_name)
    lines = 0
    body_bytes = 0
    tail = b""
    try:
        with os.fdopen(fd, "wb") as raw_f:
            # filename="" and mtime=0: no temp name in the gzip header, same bytes for the same body
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw_f, compresslevel=GZIP_LEVEL, mtime=0) as gz:
                # iter_content undoes the wire's Content-Encoding (gzip) chunk by chunk
                for chunk in resp.iter_content(chunk_size=CHUNK_BYTES):
                    if not chunk:
                        continue
                    gz.write(chunk)
                    body_bytes += len(chunk)
                    lines += chunk.count(b"\n")
                    tail = (tail + chunk[-_TAIL_BYTES:])[-_TAIL_BYTES:]
            raw_f.flush()
            os.fsync(raw_f.fileno())
        if tail and not tail.endswith(b"\n"):
            lines += 1
        last_line = tail.rstrip().rsplit(b"\n", 1)[-1].strip()
        return _Written(
            tmp_path=tmp_path,
            bytes_written=tmp_path.stat().st_size,
            lines=lines,
            terminated_early=last_line.lower() == TERMINATED_EARLY_MARKER,
            body_bytes=body_bytes,
        )
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _attempt(
    session: requests.Session,
    *,
    url: str,
    params: dict[str, str],
    account: ServiceAccount,
    timeout_s: float,
    dest_dir: Path,
    final_name: str,
    wall_clock: Callable[[], float],
) -> _Written | _Failure:
    """One request. Returns what was written, or why not; raises only for local errors (disk, ...)."""
    try:
        resp = session.get(
            url,
            params=params,
            auth=requests.auth.HTTPBasicAuth(account.username, account.secret),
            headers={"Accept": "text/plain", "Accept-Encoding": "gzip", "User-Agent": _USER_AGENT},
            timeout=(min(_CONNECT_TIMEOUT_CAP_S, timeout_s), timeout_s),
            stream=True,
            allow_redirects=False,  # the Authorization header goes to the export host and nowhere else
        )
    except RETRYABLE_EXCEPTIONS as exc:
        return _Failure(None, _describe_exception(exc, account), retryable=True)
    except requests.RequestException as exc:
        return _Failure(None, _describe_exception(exc, account), retryable=False)

    with resp:
        if resp.status_code != 200:
            return _Failure(
                resp.status_code,
                _error_text(resp, account),
                retryable=resp.status_code in RETRYABLE_STATUSES,
                retry_after_s=_parse_retry_after(resp.headers.get("Retry-After"), now=wall_clock()),
            )
        try:
            return _stream_to_temp(resp, dest_dir, final_name)
        except RETRYABLE_EXCEPTIONS as exc:
            return _Failure(200, f"body cut mid-stream ({_describe_exception(exc, account)})", retryable=True)
        except requests.RequestException as exc:
            return _Failure(200, f"reading the body failed ({_describe_exception(exc, account)})", retryable=False)


_HINTS = {
    400: "check project_id {project} and the dates (Mixpanel refused the request)",
    401: "check the service account for project {project}: its username and secret, and that it is not expired",
    403: "check the service account for project {project}: it must be a member of the project with access to "
    "raw data export",
    404: "check project {project} and the region/base_url (the project may live in another data residency "
    "region: us, eu or in)",
}


def export_day(
    *,
    project_id: str,
    day: date,
    account: ServiceAccount,
    dest_dir: Path,
    region: str = "us",
    base_url: str | None = None,
    max_retries: int = 6,
    timeout_s: float = 300,
    rate_limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    session: requests.Session | None = None,
    time_in_ms: bool = False,
    backoff_base_s: float = 5.0,
    backoff_max_s: float = 300.0,
    jitter: float = 0.25,
    rand: Callable[[], float] = random.random,
    max_retry_after_s: float = 3600.0,
) -> ExportResult:
    """Download one day of raw events of ``project_id`` to ``<dest_dir>/<YYYY-MM-DD>.jsonl.gz``.

    Makes at most ``1 + max_retries`` requests. Before each one, ``rate_limiter.acquire(project_id)`` if a
    limiter is given. Retries 408/429/5xx and connection errors (incl. a body cut mid-stream), waiting
    ``Retry-After`` seconds when the reply has it (capped at ``max_retry_after_s``), else
    :func:`backoff_seconds` (``backoff_base_s`` doubling, capped at ``backoff_max_s``, plus up to ``jitter``
    x ``rand()``). Any other failure raises :class:`MixpanelExportError` at once. An existing file for the
    day is replaced only when the new download is complete. ``timeout_s`` is the read timeout: the longest
    silence between two reads, not a limit on the whole download.

    A body whose last line is ``terminated early`` is kept as is (the loader rejects that line) and flagged
    with ``terminated_early=True`` and a warning.
    """
    project_id = _check_project_id(project_id)
    day = _check_day(day)
    if not isinstance(account, ServiceAccount):
        raise TypeError("account must be a ServiceAccount")
    url = export_url(region=region, base_url=base_url)
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    if not timeout_s or timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    params = export_params(project_id, day, time_in_ms=time_in_ms)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final_name = f"{day.isoformat()}.jsonl.gz"
    final_path = dest_dir / final_name
    where = f"project {project_id}, day {day.isoformat()}"

    own_session = session is None
    if own_session:
        session = requests.Session()
    try:
        attempts = 0
        while True:
            attempts += 1
            if rate_limiter is not None:
                rate_limiter.acquire(project_id)
            logger.info("mixpanel export %s: attempt %d/%d, GET %s", where, attempts, max_retries + 1, url)
            outcome = _attempt(
                session,
                url=url,
                params=params,
                account=account,
                timeout_s=timeout_s,
                dest_dir=dest_dir,
                final_name=final_name,
                wall_clock=time.time,
            )
            if isinstance(outcome, _Written):
                os.replace(outcome.tmp_path, final_path)
                _fsync_dir(dest_dir)
                if outcome.terminated_early:
                    logger.warning(
                        "mixpanel export %s: the export ends with a %r line (Mixpanel cut it short); kept in %s, "
                        "the loader will reject that line",
                        where,
                        TERMINATED_EARLY_MARKER.decode(),
                        final_path,
                    )
                logger.info(
                    "mixpanel export %s: HTTP 200 after %d attempt(s), %d lines, %d bytes (%d gzip) -> %s",
                    where,
                    attempts,
                    outcome.lines,
                    outcome.body_bytes,
                    outcome.bytes_written,
                    final_path,
                )
                return ExportResult(
                    path=final_path,
                    day=day,
                    bytes_written=outcome.bytes_written,
                    lines=outcome.lines,
                    attempts=attempts,
                    terminated_early=outcome.terminated_early,
                )

            status_txt = f"HTTP {outcome.status}" if outcome.status is not None else "no HTTP reply"
            if not outcome.retryable:
                hint = _HINTS.get(outcome.status or -1, "")
                hint = f"; {hint.format(project=project_id)}" if hint else ""
                logger.error("mixpanel export %s: %s: %s (not retried)", where, status_txt, outcome.error_text)
                raise MixpanelExportError(
                    f"Mixpanel export failed for {where}: {status_txt}: {outcome.error_text}{hint}",
                    project_id=project_id,
                    day=day,
                    status=outcome.status,
                    error_text=outcome.error_text,
                    attempts=attempts,
                    retryable=False,
                )
            if attempts > max_retries:
                logger.error(
                    "mixpanel export %s: %s: %s; giving up after %d attempts",
                    where,
                    status_txt,
                    outcome.error_text,
                    attempts,
                )
                raise MixpanelExportError(
                    f"Mixpanel export failed for {where} after {attempts} attempts; last error: "
                    f"{status_txt}: {outcome.error_text}",
                    project_id=project_id,
                    day=day,
                    status=outcome.status,
                    error_text=outcome.error_text,
                    attempts=attempts,
                    retryable=True,
                )
            if outcome.retry_after_s is not None:
                wait = min(outcome.retry_after_s, max_retry_after_s)
                why = "Retry-After"
            else:
                wait = backoff_seconds(attempts, base_s=backoff_base_s, max_s=backoff_max_s, jitter=jitter, rand=rand)
                why = "backoff"
            logger.warning(
                "mixpanel export %s: attempt %d/%d: %s: %s; retrying in %.2fs (%s)",
                where,
                attempts,
                max_retries + 1,
                status_txt,
                outcome.error_text,
                wait,
                why,
            )
            sleep(wait)
    finally:
        if own_session:
            session.close()


def _fsync_dir(path: Path) -> None:
    """Make the rename durable (best effort; not possible on every platform)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------ rate limiting


class RateLimiter:
    """Mixpanel's per-project query budget (default 3/s and 60/h), shared by every process that uses the same
    ``state_path``.

    Request timestamps (wall clock: comparable across processes) are kept in ``state_path``, a small JSON file
    ``{"projects": {"<project_id>": [ts, ...]}}``, read and rewritten (atomically) under a ``filelock.FileLock``
    on ``<state_path>.lock``. The lock is never held while sleeping. Use one file per project, e.g.
    ``GROWTH_HOME/state/mixpanel_rate/<project_id>.json``; a shared file works too (keyed by project).

    ``clock`` and ``sleep`` are injectable so tests never wait. ``lock_timeout_s`` bounds the wait for the file
    lock itself (``filelock.Timeout`` past it).
    """

    def __init__(
        self,
        state_path: Path | str,
        *,
        per_second: int = 3,
        per_hour: int = 60,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        lock_timeout_s: float = 60.0,
    ):
        if per_second < 1 or per_hour < 1:
            raise ValueError("per_second and per_hour must be >= 1")
        self.state_path = Path(state_path)
        self.per_second = int(per_second)
        self.per_hour = int(per_hour)
        self._clock = clock
        self._sleep = sleep
        self._lock = filelock.FileLock(str(self.state_path) + ".lock", timeout=lock_timeout_s)

    # -- state file
    def _load(self) -> dict:
        try:
            raw = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"projects": {}}
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("projects"), dict):
                raise ValueError("no 'projects' object")
        except ValueError as exc:
            logger.warning("mixpanel rate state %s unreadable (%s); starting it afresh", self.state_path, exc)
            return {"projects": {}}
        return data

    def _save(self, data: dict) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.state_path.parent, prefix=f".{self.state_path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, self.state_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _recent(self, data: dict, project_id: str, now: float) -> list[float]:
        stamps = data["projects"].get(project_id, [])
        out = []
        for ts in stamps if isinstance(stamps, list) else []:
            if isinstance(ts, (int, float)) and math.isfinite(ts):
                out.append(min(float(ts), now))  # a clock that went back must not block for hours
        return sorted(ts for ts in out if ts > now - 3600.0)

    def wait_needed(self, stamps: list[float], now: float) -> float:
        """Seconds until one more request fits both windows, given the sorted recent ``stamps``."""
        wait = 0.0
        in_second = [ts for ts in stamps if ts > now - 1.0]
        if len(in_second) >= self.per_second:
            wait = max(wait, in_second[-self.per_second] + 1.0 - now)
        if len(stamps) >= self.per_hour:
            wait = max(wait, stamps[-self.per_hour] + 3600.0 - now)
        return wait

    def acquire(self, project_id: str, *, timeout_s: float | None = None) -> float:
        """Block until one more request for ``project_id`` is allowed, record it, and return the seconds
        waited. With ``timeout_s``, raise :class:`RateLimitTimeout` instead of waiting longer than that."""
        project_id = str(project_id)
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        waited = 0.0
        while True:
            with self._lock:
                data = self._load()
                now = self._clock()
                stamps = self._recent(data, project_id, now)
                wait = self.wait_needed(stamps, now)
                allowed = wait <= 1e-6  # (float rounding after sleeping exactly the computed wait)
                if allowed:
                    stamps.append(now)
                # saved even when waiting: keeps the file pruned, and pins stamps from a clock that went back
                data["projects"][project_id] = stamps[-max(self.per_hour, self.per_second) :]
                self._save(data)
                if allowed:
                    return waited
            if timeout_s is not None and waited + wait > timeout_s:
                raise RateLimitTimeout(
                    f"Mixpanel rate limit for project {project_id}: the next request is allowed in {wait:.0f}s, "
                    f"more than the {timeout_s:.0f}s allowed to wait ({self.per_second}/s, {self.per_hour}/h)"
                )
            logger.info(
                "mixpanel rate limit for project %s (%d/s, %d/h): waiting %.2fs",
                project_id,
                self.per_second,
                self.per_hour,
                wait,
            )
            self._sleep(wait)
            waited += wait
