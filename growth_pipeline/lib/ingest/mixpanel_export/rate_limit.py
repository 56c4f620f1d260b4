"""Mixpanel's per-project query budget (3 queries/s, 60 queries/h) kept across processes, in a small JSON file
guarded by a ``filelock.FileLock``."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import filelock

from growth_pipeline.lib.files import atomic_write_bytes

logger = logging.getLogger(__name__)


class RateLimitTimeout(TimeoutError):
    """:meth:`RateLimiter.acquire` would have had to wait longer than its ``timeout_s``."""


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
        atomic_write_bytes(self.state_path, json.dumps(data, separators=(",", ":")).encode())

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
