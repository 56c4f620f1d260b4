"""Load one customer-day of Mixpanel raw export into ``raw.events``, keeping every record we cannot load.

The work is split so that the common case stays fast: Python only reads lines and numbers them; DuckDB checks
JSON validity, extracts typed columns, applies Mixpanel's dedup rule and writes the day in one transaction.
Python looks closer only at the few lines that are not valid JSON (to join a record split over two lines, or
to reject it with the parser's reason).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from growth_pipeline.lib.sql import run_sql, set_variables, transaction

TERMINATED_EARLY = "terminated early"
_MAX_RAW_TEXT = 10_000  # keep rejected text readable; a multi-megabyte line is cut, with a marker


@dataclass(frozen=True)
class DayLoad:
    """What happened to one customer-day: the numbers a person wants in the Dagster UI."""

    day: date
    files: int
    lines: int
    loaded: int
    duplicates_in_day: int
    duplicates_of_stored: int
    rejected: int
    rejected_reasons: dict[str, int]

    @property
    def duplicates(self) -> int:
        return self.duplicates_in_day + self.duplicates_of_stored

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.lines if self.lines else 0.0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["day"] = self.day.isoformat()
        return d


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its newline); blank lines are skipped but still counted."""
    with _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_RAW_TEXT else text[:_MAX_RAW_TEXT] + f"... [{len(text)} characters]"


def _json_error(text: str) -> str:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"malformed JSON: {exc.msg} at column {exc.colno}"
    return "malformed JSON" if obj is None else ""


def read_day(files: list[Path], root: Path) -> tuple[pa.Table, pa.Table, int]:
    """Read the day's files into (lines to parse, lines rejected before parsing, count of non-blank lines).

    A record split over two physical lines is joined back when neither half is JSON but the two together
    are; it keeps the first half's line number.
    """
    src_files: list[str] = []
    src_lines: list[int] = []
    texts: list[str] = []
    rej = {"source_file": [], "line_number": [], "reason": [], "raw_text": []}
    total = 0

    def reject(name: str, number: int, reason: str, text: str) -> None:
        rej["source_file"].append(name)
        rej["line_number"].append(number)
        rej["reason"].append(reason)
        rej["raw_text"].append(_clip(text))

    for path in files:
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        try:
            for number, raw in iter_lines(path):
                total += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    reject(name, number, f"not UTF-8 text: {exc.reason} at byte {exc.start}",
                           raw.decode("utf-8", "replace"))
                    continue
                src_files.append(name)
                src_lines.append(number)
                texts.append(text)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            # A truncated gzip keeps the lines read so far; the rest of the file is one rejected record.
            reject(name, -1, f"file unreadable after line {src_lines[-1] if src_lines else 0}: {exc}", "")
    lines = pa.table({"source_file": pa.array(src_files, pa.string()),
                      "source_line": pa.array(src_lines, pa.int64()),
                      "raw": pa.array(texts, pa.string())})
    rejects = pa.table({k: pa.array(v, pa.int64() if k == "line_number" else pa.string()) for k, v in rej.items()})
    return lines, rejects, total


def _repair_invalid(con: duckdb.DuckDBPyConnection, lines: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split lines into valid JSON and rejected ones, joining records split over two lines."""
    con.register("all_lines", lines)
    invalid = con.execute(
        "SELECT row_idx, source_file, source_line, raw FROM "
        "(SELECT row_number() OVER () - 1 AS row_idx, * FROM all_lines) WHERE NOT json_valid(raw) "
        "ORDER BY row_idx"
    ).fetchall()
    con.unregister("all_lines")
    if not invalid:
        return lines, pa.table({"source_file": pa.array([], pa.string()), "line_number": pa.array([], pa.int64()),
                                "reason": pa.array([], pa.string()), "raw_text": pa.array([], pa.string())})
    drop: set[int] = set()
    joined: dict[int, str] = {}
    rej: list[tuple[str, int, str, str]] = []
    i = 0
    while i < len(invalid):
        idx, f, n, text = invalid[i]
        nxt = invalid[i + 1] if i + 1 < len(invalid) else None
        if text.strip() == TERMINATED_EARLY:
            rej.append((f, n, "stray 'terminated early' line: the export was cut short, re-download the day", text))
            drop.add(idx)
            i += 1
            continue
        if nxt is not None and nxt[0] == idx + 1 and nxt[1] == f and not _json_error(text + nxt[3]):
            joined[idx] = text + nxt[3]  # the record continues on the next line: join it back
            drop.add(nxt[0])
            i += 2
            continue
        rej.append((f, n, _json_error(text) or "malformed JSON", text))
        drop.add(idx)
        i += 1
    raw_col = lines.column("raw").to_pylist() if joined else None
    if joined:
        for idx, text in joined.items():
            raw_col[idx] = text
        lines = lines.set_column(2, "raw", pa.array(raw_col, pa.string()))
    keep = pa.array([i not in drop for i in range(lines.num_rows)])
    rejects = pa.table({"source_file": pa.array([r[0] for r in rej], pa.string()),
                        "line_number": pa.array([r[1] for r in rej], pa.int64()),
                        "reason": pa.array([r[2] for r in rej], pa.string()),
                        "raw_text": pa.array([_clip(r[3]) for r in rej], pa.string())})
    return lines.filter(keep), rejects


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    run_sql(con, "raw_schema")


def load_day(con: duckdb.DuckDBPyConnection, *, day: date, files: list[Path], root: Path,
             timezone_name: str, timestamps: str, now: datetime | None = None) -> DayLoad:
    """Replace day ``day`` of ``raw.events`` with the content of ``files`` (atomic, idempotent)."""
    ensure_raw_schema(con)
    lines, pre_rejects, total = read_day(files, root)
    good, bad = _repair_invalid(con, lines)
    rejects = pa.concat_tables([pre_rejects, bad])
    ingested_at = (now or datetime.now(timezone.utc)).replace(tzinfo=None)

    con.register("day_lines", good)
    con.register("python_rejects", rejects)
    try:
        run_sql(con, "raw_stage_events", tz=timezone_name, timestamps=timestamps)
        set_variables(con, day=day, ingested_at=ingested_at, files=len(files), lines=total)
        with transaction(con):
            run_sql(con, "raw_replace_day")
        row = con.execute(
            "SELECT files, lines, loaded, duplicates_in_day, duplicates_of_stored, rejected "
            "FROM raw.day_loads WHERE event_date = ?", [day]).fetchall()[0]
        reasons = dict(con.execute(
            "SELECT regexp_replace(reason, ':.*', '') AS r, count(*) FROM raw.rejected_events "
            "WHERE event_date = ? GROUP BY r ORDER BY r", [day]).fetchall())
    finally:
        con.unregister("day_lines")
        con.unregister("python_rejects")
        con.execute("DROP TABLE IF EXISTS staged; DROP TABLE IF EXISTS staged_events; DROP TABLE IF EXISTS day_events")
    return DayLoad(day, *row, rejected_reasons=reasons)
