"""The Export API client: :func:`export_day` streams one day of raw events to ``<dest_dir>/<YYYY-MM-DD>.jsonl.gz``,
gzip-compressed on disk whatever the wire encoding (see day_file.py). It retries 408/429/5xx and connection errors
(also a body cut mid-stream) with exponential backoff plus jitter, honouring ``Retry-After``; 400/401/403/404 (and
any other status) fail at once with :class:`MixpanelExportError`, whose message names what to check and never
the secret. A :class:`~growth_pipeline.lib.ingest.mixpanel_export.rate_limit.RateLimiter` keeps Mixpanel's
per-project budget when given.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import requests

from growth_pipeline.lib.ingest.mixpanel_export.day_file import TERMINATED_EARLY_MARKER, WrittenBody, fsync_dir
from growth_pipeline.lib.ingest.mixpanel_export.endpoint import (
    CONNECT_TIMEOUT_S,
    DEADLINE_S,
    READ_TIMEOUT_S,
    export_url,
    project_id_problem,
)
from growth_pipeline.lib.ingest.mixpanel_export.rate_limit import RateLimiter
from growth_pipeline.lib.ingest.mixpanel_export.request import attempt, export_params
from growth_pipeline.lib.ingest.mixpanel_export.service_account import ServiceAccount

logger = logging.getLogger(__name__)


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


def _check_project_id(project_id: str) -> str:
    if isinstance(project_id, int) and not isinstance(project_id, bool):
        project_id = str(project_id)
    problem = project_id_problem(project_id.strip() if isinstance(project_id, str) else project_id)
    if problem:  # never repeat the value: it may be a secret pasted into the wrong field
        raise ValueError(f"Mixpanel project_id {problem}")
    return project_id.strip()


def _check_day(day: date) -> date:
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"day must be a datetime.date (not a datetime), got {type(day).__name__}")
    return day


def backoff_seconds(retry: int, *, base_s: float, max_s: float, jitter: float, rand: Callable[[], float]) -> float:
    """Wait before retry number ``retry`` (1-based): ``min(max_s, base_s * 2**(retry-1))`` stretched by up to
    ``jitter`` (a fraction) times ``rand()`` in [0, 1), never above ``max_s``."""
    backoff = min(max_s, base_s * (2 ** (retry - 1)))
    return min(max_s, backoff * (1.0 + jitter * rand()))


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
    timeout_s: float = READ_TIMEOUT_S,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    deadline_s: float | None = DEADLINE_S,
    customer: str | None = None,
    rate_limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
    session: requests.Session | None = None,
    time_in_ms: bool = False,
    backoff_base_s: float = 5.0,
    backoff_max_s: float = 300.0,
    jitter: float = 0.25,
    rand: Callable[[], float] = random.random,
    max_retry_after_s: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
) -> ExportResult:
    """Download one day of raw events of ``project_id`` to ``<dest_dir>/<YYYY-MM-DD>.jsonl.gz``.

    Makes at most ``1 + max_retries`` requests. Before each one, ``rate_limiter.acquire(project_id)`` if a
    limiter is given. Retries 408/429/5xx and connection errors (incl. a body cut mid-stream), waiting
    ``Retry-After`` seconds when the reply has it (capped at ``max_retry_after_s``), else
    :func:`backoff_seconds` (``backoff_base_s`` doubling, capped at ``backoff_max_s``, plus up to ``jitter``
    x ``rand()``). Any other failure raises :class:`MixpanelExportError` at once. An existing file for the
    day is replaced only when the new download is complete.

    Time: ``connect_timeout_s`` bounds opening a connection, ``timeout_s`` (the read timeout) the longest
    silence between two reads, and ``deadline_s`` everything for the day - every attempt, the body included,
    and the waits between attempts, but not the time queued behind ``rate_limiter`` (Mixpanel's hourly budget
    is not a dead endpoint). When the deadline passes, or the next wait would end past it, the export fails
    with :class:`MixpanelExportError` (``retryable=True``). ``deadline_s=None``: no overall limit.
    ``customer`` (an id) is named in messages beside the project and the day.

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
    for name, value in (("timeout_s", timeout_s), ("connect_timeout_s", connect_timeout_s)):
        if not value or value <= 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if deadline_s is not None and deadline_s <= 0:
        raise ValueError(f"deadline_s must be > 0 or None, got {deadline_s!r}")
    params = export_params(project_id, day, time_in_ms=time_in_ms)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    final_name = f"{day.isoformat()}.jsonl.gz"
    final_path = dest_dir / final_name
    where = f"project {project_id}, day {day.isoformat()}"
    if customer:
        where = f"customer {customer!r} ({where})"
    started = clock()
    queued = 0.0  # time spent waiting for the rate limiter: not counted against the deadline

    def spent() -> float:
        return clock() - started - queued

    def give_up(outcome_txt: str, attempts: int) -> MixpanelExportError:
        logger.error("mixpanel export %s: out of time after %d attempt(s); last: %s", where, attempts, outcome_txt)
        return MixpanelExportError(
            f"Mixpanel export failed for {where}: gave up after {spent():.0f} s and {attempts} attempt(s), the "
            f"{deadline_s:g} s allowed for one day (deadline_s); last error: {outcome_txt}",
            project_id=project_id,
            day=day,
            status=last_status,
            error_text=outcome_txt,
            attempts=attempts,
            retryable=True,
        )

    own_session = session is None
    if own_session:
        session = requests.Session()
    try:
        attempts = 0
        last_status: int | None = None
        last_txt = "none"
        while True:
            attempts += 1
            if rate_limiter is not None:
                t_queue = clock()
                rate_limiter.acquire(project_id)
                queued += clock() - t_queue
            remaining = deadline_s - spent() if deadline_s is not None else float("inf")
            if remaining <= 0:  # (a wait that overran its end)
                raise give_up(last_txt, attempts - 1)
            logger.info("mixpanel export %s: attempt %d/%d, GET %s", where, attempts, max_retries + 1, url)
            outcome = attempt(
                session,
                url=url,
                params=params,
                account=account,
                connect_timeout_s=connect_timeout_s,
                read_timeout_s=timeout_s,
                remaining_s=remaining,
                dest_dir=dest_dir,
                final_name=final_name,
                wall_clock=time.time,
            )
            if isinstance(outcome, WrittenBody):
                os.replace(outcome.tmp_path, final_path)
                fsync_dir(dest_dir)
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
            last_status, last_txt = outcome.status, f"{status_txt}: {outcome.error_text}"
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
            if deadline_s is not None and spent() + wait >= deadline_s:
                raise give_up(last_txt, attempts)
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
