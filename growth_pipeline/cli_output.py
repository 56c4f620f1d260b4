"""What the CLI shows on the terminal: one line per stage, an in-place progress line for long stages, and the
rest (Dagster's event log, library warnings, output of subprocesses such as pip) in a log file.

Runs execute in the CLI's own process (``dg.materialize``), so Dagster's console logger, Python warnings and
the subprocesses MLflow starts all write to file descriptors 1 and 2: ``quiet_terminal`` points both at the
log file for its duration and hands out a stream to the real terminal.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO

from growth_pipeline.config import Paths
from growth_pipeline.pipeline_shape import MODEL_ASSET_NAMES

# What the stage line shows of an asset's materialization metadata: (metadata key, what it counts).
COUNTS = {
    "raw_events": ("loaded", "events"),
    "identities": ("users", "users"),
    "event_catalog": ("event_names", "event names"),
    "user_daily": ("user_days", "user-days"),
    "user_features": ("users", "users"),
    "user_scores": ("users_scored", "users scored on the last day"),
}


def log_file(paths: Paths, command: str) -> Path:
    """A new log file for one command: ``GROWTH_HOME/logs/<command>-<YYYYmmdd-HHMMSS>-<pid>.log`` (commands
    started in the same second each get their own)."""
    folder = paths.home / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{command}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


@contextmanager
def quiet_terminal(log_path: Path) -> Iterator[TextIO]:
    """Send everything written to stdout and stderr (by Python or by a child process) to ``log_path``; yield a
    line-buffered stream to the terminal for the CLI's own lines. Both are restored on exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved_out), "w", buffering=1, encoding="utf-8", errors="replace")
    with open(log_path, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            terminal.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            terminal.close()


def send_stderr_to(log_path: Path) -> None:
    """Point file descriptor 2 at ``log_path`` for the rest of the process (its last words, e.g. native
    libraries' reports at interpreter exit, go to the log, not the terminal)."""
    sys.stderr.flush()
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(fd, 2)
    os.close(fd)


@contextmanager
def verbose_terminal() -> Iterator[TextIO]:
    """Everything on the terminal (``--verbose``): the CLI's lines go to stdout with the rest."""
    yield sys.stdout


class StageProgress:
    """One stage on one line. On a terminal, after ``delay_s`` a line rewritten in place every second shows the
    steps done (``poll``) and the seconds so far; ``finish`` replaces it with the stage's result line."""

    def __init__(
        self,
        out: TextIO,
        label: str,
        total_steps: int,
        poll: Callable[[], int] | None = None,
        delay_s: float = 3.0,
    ):
        self.out, self.label, self.total, self.poll, self.delay_s = out, label, total_steps, poll, delay_s
        self.t0 = time.perf_counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._drawn = False
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StageProgress:
        if _is_tty(self.out):
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._clear()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def _tick(self) -> None:
        if self._stop.wait(self.delay_s):
            return
        while not self._stop.is_set():
            done = 0
            if self.poll is not None:
                try:
                    done = min(self.poll(), self.total)
                except Exception:  # progress is a nicety: never let it break a run
                    self.poll = None
            width = 20
            filled = round(width * done / self.total) if self.total else 0
            bar = "#" * filled + "-" * (width - filled)
            with self._lock:
                self.out.write(f"\r{self.label} [{bar}] {done}/{self.total} steps {self.seconds:.0f} s\x1b[K")
                self.out.flush()
                self._drawn = True
            self._stop.wait(1.0)

    def _clear(self) -> None:
        with self._lock:
            if self._drawn:
                self.out.write("\r\x1b[K")
                self.out.flush()
                self._drawn = False

    def finish(self, text: str) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._clear()
        self.out.write(f"{self.label} {text} ({self.seconds:.1f} s)\n")
        self.out.flush()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain text table, columns padded to their widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _metadata(result, asset: str) -> dict:
    mats = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in mats[-1].metadata.items()} if mats else {}


def stage_counts(result, selected: list[str]) -> str:
    """What a stage produced, in a few numbers, e.g. '1,234,567 events'."""
    parts = []
    for asset in selected:
        key, what = COUNTS.get(asset, (None, None))
        value = _metadata(result, asset).get(key) if key else None
        if isinstance(value, int | float):
            parts.append(f"{value:,} {what}")
    return ", ".join(parts) or ", ".join(selected)


def stage_details(result, selected: list[str]) -> list[str]:
    """Lines under a stage's line: each model's outcome (a gate refusal is one line with its reason), the drift
    verdict of the last scored day, the report's path."""
    lines = []
    for asset in selected:
        meta = _metadata(result, asset)
        if asset in MODEL_ASSET_NAMES:
            outcome = meta.get("outcome", "failed")
            figure = next(
                (f"{k.removesuffix('_90pct_interval')} {v}" for k, v in meta.items() if k.endswith("_90pct_interval")),
                "",
            )
            family = str(meta.get("family", "")).split(":")[0]
            reason = meta.get("decision") or meta.get("reason") or ""
            lines.append(
                f"{asset}: {outcome}"
                + (f" ({family}, test {figure})" if family else "")
                + (f": {reason}" if reason else "")
            )
        elif asset == "model_drift":
            lines.extend(drift_lines(meta))
        elif asset == "customer_report" and meta.get("report"):
            lines.append(f"report: {meta['report']}")
    return lines


def drift_lines(meta: dict) -> list[str]:
    """What model_drift found on the last day of a run (the same table the Dagster UI shows)."""
    asked = meta.get("retrain") or {}
    lines = [
        f"drift: {customer}/{model} asks to be retrained: {reason}"
        for customer, models in asked.items()
        for model, reason in models.items()
    ]
    lines += [
        f"drift: {customer}/{model}: {status}"  # "retrain pending until <day>: <reasons>"
        for customer, models in (meta.get("retrain_pending") or {}).items()
        for model, status in models.items()
    ]
    return lines or ["drift: no model asks to be retrained"]
