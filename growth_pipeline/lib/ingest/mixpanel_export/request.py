"""One request to the export endpoint: the URL for a region (or a proxy/test server) and the day's parameters,
and what came of it: the day written to a temp file (see day_file.py), or a failure and whether it is worth
retrying (408/429/5xx and connection errors, also a body cut mid-stream; ``Retry-After`` read) with Mixpanel's
error text, bounded and scrubbed of the secret."""

from __future__ import annotations

import email.utils
import ipaddress
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import requests

from growth_pipeline.lib.ingest.mixpanel_export.day_file import WrittenBody, stream_to_temp
from growth_pipeline.lib.ingest.mixpanel_export.service_account import ServiceAccount

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

_ERROR_BODY_BYTES = 64 * 1024  # at most this much of an error reply is read
_CONNECT_TIMEOUT_CAP_S = 30.0
_USER_AGENT = "growth_pipeline-mixpanel-export/1"


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


def attempt(
    session: requests.Session,
    *,
    url: str,
    params: dict[str, str],
    account: ServiceAccount,
    timeout_s: float,
    dest_dir: Path,
    final_name: str,
    wall_clock: Callable[[], float],
) -> WrittenBody | Failure:
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
        try:
            return stream_to_temp(resp, dest_dir, final_name)
        except RETRYABLE_EXCEPTIONS as exc:
            return Failure(200, f"body cut mid-stream ({_describe_exception(exc, account)})", retryable=True)
        except requests.RequestException as exc:
            return Failure(200, f"reading the body failed ({_describe_exception(exc, account)})", retryable=False)
