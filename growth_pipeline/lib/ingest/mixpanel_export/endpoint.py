"""The export endpoint: the regional hosts, and which ``base_url`` overrides are safe (stdlib only, so
growth_pipeline/config.py checks customers.yaml with the same rules the client applies).

No message here shows the value it refuses: a service-account secret pasted into the wrong field must not be
echoed into logs or errors."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

REGION_HOSTS = {
    "us": "https://data.mixpanel.com",
    "eu": "https://data-eu.mixpanel.com",
    "in": "https://data-in.mixpanel.com",
}
EXPORT_PATH = "/api/2.0/export"

#: Defaults for the time one day's download may take (customers.yaml overrides them per customer).
CONNECT_TIMEOUT_S = 10.0  # to open the connection
READ_TIMEOUT_S = 120.0  # the longest silence while waiting for the reply or a piece of the body
DEADLINE_S = 600.0  # everything for one day: every attempt and the waits between them (not the rate limiter's)

#: Mixpanel's numeric project id (Project Settings > Overview), nothing before or after it.
PROJECT_ID_RE = re.compile(r"[0-9]{1,20}")


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def project_id_problem(project_id: object) -> str | None:
    """Why ``project_id`` is not a Mixpanel project id (without repeating it), or None."""
    if isinstance(project_id, str) and PROJECT_ID_RE.fullmatch(project_id):
        return None
    return (
        "must be the numeric Mixpanel project id (Project Settings > Overview), digits only; a project token "
        "or an API secret is not a project id"
    )


def base_url_problem(base_url: object) -> str | None:
    """Why ``base_url`` is not a safe export host override (without repeating it), or None. It must be
    ``https://`` (plain ``http://`` only to a loopback address: a local test server) with a host, and carry no
    credentials, query, fragment or surrounding whitespace."""
    if not isinstance(base_url, str) or not base_url or base_url != base_url.strip():
        return "must be an https:// URL with a host, without spaces around it"
    try:
        parts = urlsplit(base_url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "must be an https:// URL with a host (this one does not parse)"
    if parts.scheme not in ("https", "http") or not host:
        return "must be an https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials (they belong in the environment variables username_env/secret_env)"
    if parts.query or parts.fragment:
        return "must not have a query or a fragment"
    if parts.scheme == "http" and not is_loopback(host):
        return "is plain http to a non-local host: the service account secret would travel in clear; use https"
    return None


def export_url(*, region: str = "us", base_url: str | None = None) -> str:
    """The export endpoint for ``region`` (``us``/``eu``/``in``), or under ``base_url`` when given (a proxy
    or a test server; the region is still checked). See :func:`base_url_problem` for what ``base_url`` may be."""
    if not isinstance(region, str) or region.strip().lower() not in REGION_HOSTS:
        raise ValueError(f"unknown Mixpanel region {region!r}; allowed: {', '.join(sorted(REGION_HOSTS))}")
    if base_url is None:
        return REGION_HOSTS[region.strip().lower()] + EXPORT_PATH
    problem = base_url_problem(base_url.strip() if isinstance(base_url, str) else base_url)
    if problem:
        raise ValueError(f"base_url {problem}")
    return base_url.strip().rstrip("/") + EXPORT_PATH
