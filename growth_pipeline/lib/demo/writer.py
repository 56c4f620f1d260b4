"""The demo's day files, in the layout of the customer's Mixpanel source.

``powerplay``: Export-API layout, ``<out_dir>/<YYYY-MM-DD>.jsonl.gz``, one gzipped JSONL file per day; a stray
last line ``terminated early`` on ~5% of days (always on the middle day when ``malformed_per_day > 0``).
``foodie``: object-storage data-pipeline layout,
``<out_dir>/<project_id>/mp_master_event/<YYYY>/<MM>/<DD>/part-NNNNN.json.gz`` (3 or 4 parts a day; on about
one day in five the last part is written uncompressed as ``part-NNNNN.json``). JSONL inside.

Every day of the period gets its file(s), even an empty one. A file holds the events whose true time falls on
that calendar day in the project timezone (the only exception: late re-sent duplicates, see records.py).
Files are written atomically (a temp file renamed), gzip with mtime 0, so one spec gives byte-identical files.
"""

from __future__ import annotations

import gzip
import io
import re
import shutil
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from growth_pipeline.lib.demo.spec import DEMO_LAYOUTS, DemoSpec
from growth_pipeline.lib.files import atomic_write_bytes

GZIP_LEVEL = 3


def day_files_for(spec: DemoSpec, out_dir: Path, day: date) -> list[Path]:
    """The files ``generate_demo`` wrote for one local day (sorted)."""
    out_dir = Path(out_dir)
    if DEMO_LAYOUTS[spec.customer] == "export_api":
        return [out_dir / f"{day.isoformat()}.jsonl.gz"]
    folder = out_dir / spec.project_id / "mp_master_event" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def clean_layout(spec: DemoSpec, out_dir: Path) -> None:
    """Delete this layout's previous export files in ``out_dir`` (only those)."""
    if DEMO_LAYOUTS[spec.customer] == "export_api":
        pat = re.compile(r"^\d{4}-\d{2}-\d{2}\.jsonl\.gz$")
        for f in sorted(out_dir.glob("*.jsonl.gz")):
            if pat.match(f.name):
                f.unlink()
    else:
        root = out_dir / spec.project_id / "mp_master_event"
        if root.is_dir():
            shutil.rmtree(root)


def _lines_bytes(lines: pl.Series) -> bytes:
    """The lines joined with newlines (and a final newline), as UTF-8 bytes, without a Python list."""
    buf = io.BytesIO()
    lines.to_frame("line").write_csv(buf, include_header=False, quote_style="never", line_terminator="\n")
    return buf.getvalue()


def _write_file(path: Path, data: bytes, compress: bool) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if compress else data
    atomic_write_bytes(path, payload)  # a unique temporary name: two writers of one folder never share one
    return len(payload)


class DayFileWriter:
    """Writes each day's lines to its file(s) on two background threads (at most one day ahead of the caller).
    Use as a context manager; call :meth:`write_day` for days 0, 1, 2, ... in order. ``rng`` is the formatting
    stream (the ``terminated early`` line and the object-storage parts are drawn from it)."""

    def __init__(self, spec: DemoSpec, out_dir: Path, rng: np.random.Generator):
        self.spec, self.out_dir, self.rng = spec, out_dir, rng
        self.layout = DEMO_LAYOUTS[spec.customer]
        self.files = 0
        self.terminated_early = 0
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._pending: deque[Future] = deque()

    def __enter__(self) -> DayFileWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                while self._pending:
                    self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def write_day(self, d: int, frame: pl.DataFrame) -> None:
        """Write day ``d``'s lines (``frame["line"]``, in file order)."""
        spec, rng = self.spec, self.rng
        terminated = False
        if self.layout == "export_api" and spec.malformed_per_day > 0:
            terminated = (d == spec.days // 2) or bool(rng.random() < 0.05)
        else:
            rng.random()
        if terminated:
            self.terminated_early += 1

        day = spec.start + timedelta(days=d)
        if self.layout == "export_api":
            data = _lines_bytes(frame["line"]) + (b"terminated early\n" if terminated else b"")
            jobs = [(self.out_dir / f"{day.isoformat()}.jsonl.gz", data, True)]
        else:
            n_parts = 3 + int(rng.random() < 0.5)
            plain_last = bool(rng.random() < 0.2)
            part = rng.integers(0, n_parts, frame.height)
            folder = self.out_dir / spec.project_id / "mp_master_event" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
            jobs = []
            for k in range(n_parts):
                data = _lines_bytes(frame["line"].filter(pl.Series(part == k)))
                plain = plain_last and k == n_parts - 1
                jobs.append((folder / f"part-{k:05d}.json{'' if plain else '.gz'}", data, not plain))
        for path, data, comp in jobs:
            self._pending.append(self._pool.submit(_write_file, path, data, comp))
            self.files += 1
        while len(self._pending) > 1:
            self._pending.popleft().result()
