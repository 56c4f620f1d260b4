"""Load one customer-day of Mixpanel raw export into ``raw.events``, keeping every record we cannot load.

The work is split so that the common case stays fast: Python only decompresses the files and cuts them into
lines in blocks of megabytes (NumPy finds the line breaks, Arrow checks UTF-8: no Python object per line);
DuckDB checks JSON validity, the type and range of every key field, extracts typed columns, applies Mixpanel's
dedup rule and writes the day in one transaction. Python looks closer only at the few lines DuckDB cannot parse
(to strip a
stray byte-order mark, to join a record split over two lines, or to reject the line with the parser's reason).

No single record can stop a day: a bad record is rejected alone, with its reason, in ``raw.rejected_events``.
Only a file that is not what its name says (a ``.gz`` that is not gzip) is an error; a gzip file cut short or
corrupt in the middle loads the records before the damage and marks the day incomplete (``raw.day_loads``).
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from growth_pipeline.lib.warehouse.sql import fetch, fetch_one, registered, run_sql, set_variables, transaction

TERMINATED_EARLY = "terminated early"
# No event of any customer is older than this: Mixpanel was founded in 2009; earlier times are broken clocks
# or zero-ish epochs. A customer's first day of history, once the configuration has one, is a tighter bound.
EARLIEST_PLAUSIBLE_DAY = date(1990, 1, 1)

# Compressed bytes fed to zlib at once: zlib drops the output of a call that meets corrupt data, so a small
# feed loses little before the damage (and locates it to 4 KiB). 25,000 calls for 100 MB of gzip: cheap.
_READ_BYTES = 1 << 12
_BLOCK_BYTES = 8 << 20  # uncompressed bytes cut into lines at once
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
# A line that opens a record: the start of a record of its own (cut short), never the rest of the line before.
_RECORD_START = re.compile(r'\s*\{\s*"(?:event|properties)"\s*:')

_REJECT_SCHEMA = pa.schema(
    [("source_file", pa.string()), ("line_number", pa.int64()), ("reason", pa.string()), ("raw_text", pa.string())]
)
_LINE_SCHEMA = pa.schema(
    [("row_idx", pa.int64()), ("source_file", pa.string()), ("source_line", pa.int64()), ("raw", pa.large_string())]
)


class ExportFileError(ValueError):
    """An export file that cannot be read at all (a ``.gz`` file that is not gzip): the day is not loaded."""


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
    # None when every file was read to its end; else which file broke off where (truncated or corrupt gzip)
    incomplete: str | None = None

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


class _Damaged(Exception):
    """The file's compressed data ends or breaks before its end: what was decompressed so far is kept."""


# --------------------------------------------------------------------------------------------------------
# Reading: files -> blocks of bytes -> lines


def _gzip_blocks(fh, name: str, size: int) -> Iterator[bytes]:
    """The decompressed content of a gzip file (all members), block by block.

    Raises ExportFileError before yielding anything when the file is not gzip, and _Damaged (after yielding
    everything decompressed so far) when it is cut short or corrupt, with the compressed byte offset."""
    data = fh.read(_READ_BYTES)
    if data[:2] != _GZIP_MAGIC:
        what = "an empty file" if not data else f"starts with {data[:8]!r}"
        raise ExportFileError(
            f"{name}: not a gzip file ({what}); an export named .gz must be gzip-compressed "
            "(if it is plain JSONL, rename it without .gz)"
        )
    pos = 0  # compressed offset of the start of `data`
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    in_member = True
    while data:
        if not in_member:
            # between members: gzip allows zero padding; anything else must be the next member
            stripped = data.lstrip(b"\0")
            pos += len(data) - len(stripped)
            data = stripped
            if not data:
                data = fh.read(_READ_BYTES)
                continue
            d, in_member = zlib.decompressobj(16 + zlib.MAX_WBITS), True
        try:
            out = d.decompress(data)
        except zlib.error as exc:
            raise _Damaged(
                f"corrupt gzip data ({exc}) in compressed bytes {pos:,}-{pos + len(data):,} of {size:,}"
            ) from None
        if out:
            yield out
        if d.eof:
            rest = d.unused_data
            pos += len(data) - len(rest)
            data, in_member = rest, False
            if not data:
                data = fh.read(_READ_BYTES)
            continue
        pos += len(data)
        data = fh.read(_READ_BYTES)
    if in_member and not d.eof:
        tail = d.flush()
        if tail:
            yield tail
        raise _Damaged(f"truncated gzip: the compressed data ends at byte {pos:,} before the end of the stream")


def _plain_blocks(fh) -> Iterator[bytes]:
    while block := fh.read(_BLOCK_BYTES):
        yield block


def _strip_newline(line):
    """A line as it was written: lines are read with their newline kept (see _FileReader.add)."""
    return line[:-1] if line.endswith(b"\n" if isinstance(line, bytes) else "\n") else line


@dataclass
class _FileReader:
    """Cuts one file into numbered non-blank lines (Arrow arrays), with the lines that are not UTF-8 apart."""

    name: str
    row_base: int  # row_idx of the file's first kept line in the day
    tables: list[pa.Table] = field(default_factory=list)
    rejects: list[tuple[str, int, str, str]] = field(default_factory=list)
    lines_seen: int = 0  # physical lines so far, blank ones included (line numbers)
    kept: int = 0  # non-blank lines so far (UTF-8 or not)

    def add(self, body: bytes) -> None:
        """Lines of ``body``: complete lines (it ends with a line break) or the file's last line."""
        if not self.lines_seen and body.startswith(_BOM):  # a UTF-8 byte-order mark starting the file
            body = body[3:]
        if b"\r" in body:  # CRLF and CR-only files: every CRLF, CR or LF ends a line
            body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        # One Arrow string per line over the block's own bytes (no copy, no Python object per line). Each
        # line keeps its "\n": JSON allows the whitespace, and it is removed wherever a line is shown.
        ends = np.flatnonzero(np.frombuffer(body, np.uint8) == 10) + 1
        if not len(ends) or ends[-1] != len(body):
            ends = np.append(ends, len(body))
        n = len(ends)
        offsets = np.concatenate([[0], ends]).astype(np.int64)
        pieces = pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(body)])
        numbers = np.arange(self.lines_seen + 1, self.lines_seen + 1 + n, dtype=np.int64)
        self.lines_seen += n
        try:
            texts = pieces.cast(pa.large_string())
        except pa.ArrowInvalid:  # some line is not UTF-8: sort the block's lines one by one (rare)
            self._add_slowly([_strip_newline(b) for b in pieces.to_pylist()], numbers)
            return
        keep = pc.not_equal(pc.ascii_trim_whitespace(texts), "")  # blank lines count, but are skipped
        if not pc.all(keep).as_py():
            texts, numbers = texts.filter(keep), numbers[keep.to_numpy(zero_copy_only=False)]
        self._append(texts, numbers)

    def _add_slowly(self, raws: list[bytes], numbers: np.ndarray) -> None:
        good, good_numbers = [], []
        for raw, number in zip(raws, numbers.tolist(), strict=False):
            if not raw.strip():
                continue
            try:
                good.append(raw.decode("utf-8"))
                good_numbers.append(number)
            except UnicodeDecodeError as exc:
                self.rejects.append(
                    (
                        self.name,
                        number,
                        f"not UTF-8 text: {exc.reason} at byte {exc.start} (raw_text shows the bytes as \\xNN)",
                        raw.decode("utf-8", "backslashreplace"),
                    )
                )
                self.kept += 1
        self._append(pa.array(good, pa.large_string()), np.array(good_numbers, dtype=np.int64))

    def _append(self, texts: pa.Array, numbers: np.ndarray) -> None:
        n = len(texts)
        if not n:
            return
        start = self.row_base + len(self)
        self.tables.append(
            pa.table(
                {
                    "row_idx": np.arange(start, start + n, dtype=np.int64),
                    "source_file": pa.array([self.name], pa.string()).take(np.zeros(n, dtype=np.int32)),
                    "source_line": numbers,
                    "raw": texts,
                },
                schema=_LINE_SCHEMA,
            )
        )
        self.kept += n

    def __len__(self) -> int:
        return sum(t.num_rows for t in self.tables)


def _read_file(path: Path, name: str, row_base: int) -> tuple[_FileReader, str | None]:
    """The file's lines, and what broke it off (None when it was read to its end)."""
    reader = _FileReader(name, row_base)
    damage = None

    def cut_lines(buf: bytes) -> bytes:
        """Hand the complete lines of ``buf`` to the reader; return the rest (a line not ended yet)."""
        # cut after the last line break; a CR at the very end may be half of a CRLF: keep it for later
        end = len(buf) - 1 if buf.endswith(b"\r") else len(buf)
        cut = max(buf.rfind(b"\n", 0, end), buf.rfind(b"\r", 0, end))
        if cut < 0:
            return buf
        reader.add(buf[: cut + 1])
        return buf[cut + 1 :]

    pending: list[bytes] = [b""]
    size = produced = 0
    with open(path, "rb", buffering=1 << 20) as fh:
        blocks = _gzip_blocks(fh, name, path.stat().st_size) if path.name.endswith(".gz") else _plain_blocks(fh)
        try:
            for block in blocks:
                pending.append(block)
                size += len(block)
                produced += len(block)
                if size >= _BLOCK_BYTES:
                    pending, size = [cut_lines(b"".join(pending))], 0
        except _Damaged as exc:
            damage = exc
    carry = cut_lines(b"".join(pending))
    if damage is not None:
        where = f"in line {reader.lines_seen + 1:,}" if carry.strip() else f"after line {reader.lines_seen:,}"
        damage = (
            f"{name}: {damage}; the lines before it are loaded, the rest of the file is lost (the break "
            f"comes {where}, after {produced:,} bytes of JSON)"
        )
    if carry:
        reader.add(carry)
    return reader, damage


def read_day(files: list[Path], root: Path) -> tuple[pa.Table, pa.Table, int, str | None]:
    """Read the day's files: (lines to check, lines rejected before parsing, count of non-blank lines,
    what broke off a file, if anything). Lines are numbered from 1 in their file; ``row_idx`` numbers the
    day's kept lines in order, so two consecutive lines of a file have consecutive ``row_idx``."""
    tables: list[pa.Table] = []
    rejects: list[tuple[str, int, str, str]] = []
    damages: list[str] = []
    total = rows = 0
    for path in files:
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        reader, damage = _read_file(path, name, rows)
        tables += reader.tables
        rows += len(reader)
        rejects += reader.rejects
        total += reader.kept
        if damage:
            damages.append(damage)
    lines = pa.concat_tables(tables) if tables else _LINE_SCHEMA.empty_table()
    return lines, _rejects_table(rejects), total, "; ".join(damages) or None


def _rejects_table(rows: list[tuple[str, int, str, str]]) -> pa.Table:
    cols = list(zip(*rows, strict=False)) if rows else [[], [], [], []]
    return pa.table([pa.array(c, t.type) for c, t in zip(cols, _REJECT_SCHEMA, strict=False)], schema=_REJECT_SCHEMA)


# --------------------------------------------------------------------------------------------------------
# Lines DuckDB cannot parse: a byte-order mark, a record split over two lines, or a reject with the reason


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list) -> None:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKey(next(k for k in keys if keys.count(k) > 1))


def _why_invalid(text: str) -> str:
    """The reason to reject a line DuckDB's JSON parser refused."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:  # "Invalid control character at", "Expecting value", ...
        return f"malformed JSON: {exc.msg.removesuffix(' at')} at column {exc.colno}"
    except RecursionError:
        return f"malformed JSON: nested deeper than about {sys.getrecursionlimit():,} levels (the rest unchecked)"
    try:  # Python parsed what DuckDB refused: a lone UTF-16 surrogate (\ud800) is the known difference
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"malformed JSON: a string holds a lone UTF-16 surrogate \\u{ord(exc.object[exc.start]):04x}"
    except RecursionError:
        return f"malformed JSON: nested deeper than about {sys.getrecursionlimit():,} levels"
    return "malformed JSON: refused by DuckDB's JSON parser"


def _may_join(first: str, second: str) -> bool:
    """Whether two consecutive lines can be one record split in two (checked by Python; DuckDB checks last).

    The join must parse, and the halves must not each be records of their own: a second line that opens a
    record (``{"event": ...``) is a record cut short, not the rest of the first; a join in which some object
    holds a key twice is made of two records (Mixpanel never writes a key twice)."""
    if second.strip() == TERMINATED_EARLY or _RECORD_START.match(second) or not first.lstrip().startswith("{"):
        return False
    try:
        json.loads(first + second, object_pairs_hook=_no_duplicate_keys)
    except (json.JSONDecodeError, RecursionError, _DuplicateKey):
        return False
    return True


def _duckdb_valid(con: duckdb.DuckDBPyConnection, texts: list[str]) -> list[bool]:
    if not texts:
        return []
    candidates = pa.table({"i": np.arange(len(texts)), "t": pa.array(texts, pa.string())})
    with registered(con, candidate_texts=candidates):
        valid = fetch(con, "raw_json_valid")
    return [bool(v) for (v,) in valid]


def _repair_invalid(con: duckdb.DuckDBPyConnection) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Sort the lines of ``all_lines`` that are not valid JSON: (rows to drop, repaired lines, rejects).

    A line that starts with a byte-order mark loads without it; two consecutive lines that are one record
    split in two are joined (the record keeps the first line's number); every other line is rejected."""
    invalid = [(idx, name, number, _strip_newline(raw)) for idx, name, number, raw in fetch(con, "raw_invalid_lines")]
    texts = [t[1:] if t.startswith("\ufeff") else t for _, _, _, t in invalid]
    # candidates, validated by DuckDB in one query: lines without their mark, joins of consecutive lines
    unmarked = [i for i, row in enumerate(invalid) if row[3].startswith("\ufeff")]
    # the two halves of a split record are consecutive lines of one file (no blank or non-UTF-8 line between)
    pairs = [
        i
        for i in range(len(invalid) - 1)
        if invalid[i + 1][0] == invalid[i][0] + 1
        and invalid[i + 1][2] == invalid[i][2] + 1
        and invalid[i + 1][1] == invalid[i][1]
        and _may_join(texts[i], texts[i + 1])
    ]
    valid = _duckdb_valid(con, [texts[i] for i in unmarked] + [texts[i] + texts[i + 1] for i in pairs])
    unmarked_ok = {i for i, ok in zip(unmarked, valid, strict=False) if ok}
    join_ok = {i for i, ok in zip(pairs, valid[len(unmarked) :], strict=False) if ok}

    repaired: list[tuple[str, int, str]] = []
    rejects: list[tuple[str, int, str, str]] = []
    i = 0
    while i < len(invalid):
        _, name, number, raw = invalid[i]
        text = texts[i]
        if i in unmarked_ok:
            repaired.append((name, number, text))
        elif text.strip() == TERMINATED_EARLY:
            rejects.append(
                (name, number, "stray 'terminated early' line: the export was cut short, re-download the day", raw)
            )
        elif i in join_ok and i + 1 not in unmarked_ok:
            repaired.append((name, number, text + texts[i + 1]))  # the record continues on the next line
            i += 1
        else:
            rejects.append((name, number, _why_invalid(text), raw))
        i += 1
    dropped = pa.table({"row_idx": pa.array([r[0] for r in invalid], pa.int64())})
    fixed = pa.table(
        {
            "source_file": pa.array([r[0] for r in repaired], pa.string()),
            "source_line": pa.array([r[1] for r in repaired], pa.int64()),
            "raw": pa.array([r[2] for r in repaired], pa.string()),
        }
    )
    return dropped, fixed, _rejects_table(rejects)


# --------------------------------------------------------------------------------------------------------


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    run_sql(con, "raw_schema")


def load_day(
    con: duckdb.DuckDBPyConnection,
    *,
    day: date,
    files: list[Path],
    root: Path,
    timezone_name: str,
    timestamps: str,
    now: datetime | None = None,
    earliest: date = EARLIEST_PLAUSIBLE_DAY,
) -> DayLoad:
    """Replace day ``day`` of ``raw.events`` with the content of ``files`` (atomic, idempotent).

    A record whose time falls before ``earliest`` or after the end of the day after ``day`` is rejected.
    Raises ExportFileError, before writing anything, when a file cannot be read at all."""
    ensure_raw_schema(con)
    lines, pre_rejects, total, incomplete = read_day(files, root)
    ingested_at = (now or datetime.now(UTC)).replace(tzinfo=None)

    con.register("all_lines", lines)
    try:
        dropped, repaired, bad = _repair_invalid(con)
        con.register("dropped_rows", dropped)
        con.register("repaired_lines", repaired)
        con.register("python_rejects", pa.concat_tables([pre_rejects, bad]))
        run_sql(con, "raw_stage_events", tz=timezone_name, timestamps=timestamps, day=day, earliest=earliest)
        set_variables(con, day=day, ingested_at=ingested_at, files=len(files), lines=total, incomplete=incomplete)
        with transaction(con):
            run_sql(con, "raw_replace_day")
        row = fetch_one(con, "raw_day_load", day=day)
        reasons = dict(fetch(con, "raw_reject_reasons", day=day))
    finally:
        for name in ("all_lines", "dropped_rows", "repaired_lines", "python_rejects"):
            try:
                con.unregister(name)
            except Exception:  # noqa: BLE001 - not registered when an earlier step failed
                pass
        run_sql(con, "raw_drop_staging")
    return DayLoad(day, *row[:6], rejected_reasons=reasons, incomplete=row[6])
