"""raw.events loading of bad input: every bad record is rejected alone, with its reason, while the rest of its
day loads; a file that breaks off loads what precedes the break and marks the day incomplete."""

import gzip
import json
import random
import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from growth_pipeline.config import IngestSettings
from growth_pipeline.lib.ingest.raw_checks import day_checks
from growth_pipeline.lib.ingest.raw_events import TERMINATED_EARLY, ExportFileError, load_day

DAY = date(2026, 5, 1)
NOON = int(datetime(2026, 5, 1, 12, tzinfo=UTC).timestamp())  # 1777636800


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield c
    c.close()


def rec(event="Page View", distinct_id="u1", time=NOON, insert_id="i1", **props) -> str:
    p = {"time": time, "distinct_id": distinct_id, "$insert_id": insert_id, **props}
    return json.dumps({"event": event, "properties": p})


def write(path: Path, lines: list[str], newline: str = "\n", bom: bool = False) -> Path:
    data = ("\ufeff" if bom else "") + "".join(line + newline for line in lines)
    raw = data.encode("utf-8", "surrogateescape")  # "\udcff" in a line writes the byte 0xff
    path.write_bytes(gzip.compress(raw, mtime=0) if path.name.endswith(".gz") else raw)
    return path


def load(con, tmp_path, files, day=DAY, **kw):
    files = [files] if isinstance(files, Path) else files
    return load_day(con, day=day, files=files, root=tmp_path, timezone_name="UTC", timestamps="utc", **kw)


def loaded(con, cols="distinct_id"):
    return con.execute(f"SELECT {cols} FROM raw.events ORDER BY source_file, source_line").fetchall()


def rejected(con):
    return con.execute(
        "SELECT line_number, reason, raw_text FROM raw.rejected_events ORDER BY source_file, line_number"
    ).fetchall()


def one_bad_line_day(con, tmp_path, bad: str):
    """A day of a good record, the bad line, a good record: the good ones load, the bad one is rejected."""
    f = write(
        tmp_path / f"{DAY}.jsonl", [rec(distinct_id="g1", insert_id="g1"), bad, rec(distinct_id="g2", insert_id="g2")]
    )
    r = load(con, tmp_path, f)
    assert loaded(con) == [("g1",), ("g2",)] and r.loaded == 2 and r.rejected == 1
    [(line, reason, raw_text)] = rejected(con)
    assert line == 2 and raw_text == bad
    return reason


# ---- time: units by magnitude, finite numbers, a plausible instant ----------------------------------------


def test_nanosecond_epoch_loads_instead_of_failing_the_day(con, tmp_path):
    # the reproduction of the issue: an INT64 overflow failed the whole 3-line day
    ns = '{"event":"Page View","properties":{"time":1777593600000000000,"distinct_id":"ns","$insert_id":"x"}}'
    f = write(tmp_path / f"{DAY}.jsonl", [rec(distinct_id="a", insert_id="a"), ns, rec(distinct_id="b", insert_id="b")])
    r = load(con, tmp_path, f)
    assert (r.loaded, r.rejected) == (3, 0)
    assert ("ns", datetime(2026, 5, 1)) in loaded(con, "distinct_id, time")


def test_seconds_milliseconds_microseconds_nanoseconds_are_told_apart_by_magnitude(con, tmp_path):
    f = write(
        tmp_path / f"{DAY}.jsonl",
        [
            rec(distinct_id="s", insert_id="s", time=NOON),
            rec(distinct_id="s_frac", insert_id="sf", time=NOON + 0.25),
            rec(distinct_id="ms", insert_id="ms", time=NOON * 1000 + 250),
            rec(distinct_id="us", insert_id="us", time=NOON * 1_000_000 + 250_000),  # year 58299 on main
            rec(distinct_id="ns", insert_id="ns", time=NOON * 1_000_000_000 + 250_000_000),
            # the same event as the first, in microseconds: Mixpanel's dedup sees the same time
            rec(distinct_id="s", insert_id="s", time=NOON * 1_000_000),
        ],
    )
    r = load(con, tmp_path, f)
    assert (r.loaded, r.duplicates_in_day, r.rejected) == (5, 1, 0)
    q = datetime(2026, 5, 1, 12, 0, 0, 250000)
    assert dict(loaded(con, "distinct_id, time")) == {
        "s": datetime(2026, 5, 1, 12),
        "s_frac": q,
        "ms": q,
        "us": q,
        "ns": q,
    }


@pytest.mark.parametrize(
    "literal, reason",
    [
        ("NaN", "properties.time not finite: time NaN is not a finite number"),
        ("Infinity", "properties.time not finite: time Infinity is not a finite number"),
        ("-Infinity", "properties.time not finite: time -Infinity is not a finite number"),
        ("1e400", "properties.time not finite: time 1e400 is not a finite number"),
        ("-5", "properties.time negative: time -5 is negative"),
        ("0", "properties.time out of range: time 1970-01-01 00:00:00 (0 seconds) is before 1990-01-01"),
        (
            "473385600",
            "properties.time out of range: time 1985-01-01 00:00:00 (473385600 seconds) is before 1990-01-01",
        ),
        (
            "32472144000",
            "properties.time out of range: time 2999-01-01 00:00:00 (32472144000 seconds) is after the "
            "export day 2026-05-01 + 1",
        ),
        # main read microseconds as milliseconds: this one as the year 10000, which broke every downstream asset
        ("253402300800000", "time 1978-01-11 21:31:40 (253402300800000 microseconds) is before 1990-01-01"),
        ("9223372036854775807", "time 2262-04-11 23:47:16 (9223372036854775807 nanoseconds) is after the export day"),
        ("9223372036854775808", "(9223372036854775808 nanoseconds) is after the export day 2026-05-01 + 1"),
        ("18446744073709551616", "(18446744073709551616 nanoseconds) is after the export day 2026-05-01 + 1"),
        ("1e30", "time beyond the year 294000 (1e30 nanoseconds) is after the export day 2026-05-01 + 1"),
        ('"1777636800"', "properties.time is not a number: 1777636800"),
        ("true", "properties.time is not a number: true"),
    ],
)
def test_a_time_that_is_not_a_plausible_instant_is_rejected_alone(con, tmp_path, literal, reason):
    bad = '{"event":"Page View","properties":{"time":' + literal + ',"distinct_id":"bad","$insert_id":"x"}}'
    got = one_bad_line_day(con, tmp_path, bad)
    assert reason in got


def test_a_huge_time_on_a_record_rejected_for_another_reason_does_not_fail_the_day(con, tmp_path):
    bad = '{"event":5,"properties":{"time":9223372036854775808,"distinct_id":"bad"}}'
    assert one_bad_line_day(con, tmp_path, bad) == "event is not a string: 5"
    bad = '{"event":"E","properties":{"time":1e400,"distinct_id":{"x":1}}}'
    assert one_bad_line_day(con, tmp_path, bad).startswith("properties.time not finite")


def test_the_plausibility_window_runs_from_the_earliest_day_to_the_end_of_the_day_after(con, tmp_path):
    end = int(datetime(2026, 5, 3, tzinfo=UTC).timestamp())  # midnight ending the day after
    f = write(
        tmp_path / f"{DAY}.jsonl",
        [
            rec(distinct_id="last", insert_id="a", time=end - 1),
            rec(distinct_id="too_late", insert_id="b", time=end),
            rec(distinct_id="march", insert_id="c", time=NOON - 40 * 86400),
        ],
    )
    load(con, tmp_path, f)
    assert loaded(con) == [("last",), ("march",)]
    load(con, tmp_path, f, earliest=date(2026, 4, 1))  # e.g. the customer's first day of history
    assert loaded(con) == [("last",)]
    reasons = [r[1] for r in rejected(con)]
    assert reasons == [
        "properties.time out of range: time 2026-05-03 00:00:00 (1777766400 seconds) is after the "
        "export day 2026-05-01 + 1",
        "properties.time out of range: time 2026-03-22 12:00:00 (1774180800 seconds) is before 2026-04-01",
    ]


# ---- event, distinct_id, $insert_id: non-empty strings ----------------------------------------------------


@pytest.mark.parametrize(
    "field, value, reason",
    [
        ("distinct_id", {"id": 1}, 'properties.distinct_id is not a string: {"id":1}'),
        ("distinct_id", ["a"], 'properties.distinct_id is not a string: ["a"]'),
        ("distinct_id", True, "properties.distinct_id is not a string: true"),
        ("distinct_id", 42, "properties.distinct_id is not a string: 42"),
        ("distinct_id", 4.5, "properties.distinct_id is not a string: 4.5"),
        ("distinct_id", "", 'properties.distinct_id is blank: ""'),
        ("distinct_id", " \t ", 'properties.distinct_id is blank: " \\t "'),
        ("distinct_id", "\u00a0\u3000", 'properties.distinct_id is blank: "\u00a0\u3000"'),
        ("distinct_id", None, "missing field: properties.distinct_id"),
        ("event", {"name": "x"}, 'event is not a string: {"name":"x"}'),
        ("event", 7, "event is not a string: 7"),
        ("event", ["x"], 'event is not a string: ["x"]'),
        ("event", False, "event is not a string: false"),
        ("event", "  ", 'event is blank: "  "'),
        ("insert_id", {"a": 1}, 'properties.$insert_id is not a string: {"a":1}'),
        ("insert_id", ["a"], 'properties.$insert_id is not a string: ["a"]'),
        ("insert_id", 12, "properties.$insert_id is not a string: 12"),
        ("insert_id", True, "properties.$insert_id is not a string: true"),
    ],
)
def test_a_key_field_that_is_not_a_non_empty_string_is_rejected_alone(con, tmp_path, field, value, reason):
    assert one_bad_line_day(con, tmp_path, rec(**{field: value})) == reason


def test_a_null_insert_id_is_an_event_without_insert_id(con, tmp_path):
    f = write(tmp_path / f"{DAY}.jsonl", [rec(insert_id=None), rec(insert_id=None)])
    r = load(con, tmp_path, f)
    assert (r.loaded, r.duplicates, r.rejected) == (2, 0, 0)


# ---- JSON that Python or DuckDB cannot parse -------------------------------------------------------------


@pytest.mark.parametrize("bad", ["[" * 100_000, '{"a":' * 5_000, '{"event":"E","properties":' + "[" * 20_000])
def test_unterminated_json_nested_very_deep_is_rejected_alone(con, tmp_path, bad):
    assert one_bad_line_day(con, tmp_path, bad).startswith("malformed JSON: nested deeper than about")


def test_a_lone_surrogate_is_rejected_alone_even_in_a_split_record(con, tmp_path):
    head = '{"event":"Login","properties":{"time":' + str(NOON) + ',"distinct_id":"s1","note":"\\ud800'
    tail = ' left alone","$insert_id":"s1"}}'
    f = write(
        tmp_path / f"{DAY}.jsonl",
        [rec(distinct_id="g1", insert_id="g1"), head, tail, head + tail, rec(distinct_id="g2", insert_id="g2")],
    )
    r = load(con, tmp_path, f)
    assert loaded(con) == [("g1",), ("g2",)] and r.rejected == 3
    got = rejected(con)
    assert [g[0] for g in got] == [2, 3, 4] and [g[2] for g in got] == [head, tail, head + tail]
    assert got[0][1].startswith("malformed JSON: Invalid \\uXXXX escape")
    assert got[2][1] == "malformed JSON: a string holds a lone UTF-16 surrogate \\ud800"


def test_a_raw_control_character_in_a_string_is_rejected_alone(con, tmp_path):
    assert one_bad_line_day(con, tmp_path, rec(note="a\x01b").replace("\\u0001", "\x01")).startswith(
        "malformed JSON: Invalid control character"
    )


# ---- split records --------------------------------------------------------------------------------------


def test_a_split_record_is_joined_when_neither_half_is_a_record_of_its_own(con, tmp_path):
    whole = rec(distinct_id="split", insert_id="s", plan="pro")
    cut = whole.index('"properties": ') + len('"properties": ')  # the second half opens {"time": ...
    f = write(tmp_path / f"{DAY}.jsonl", [whole[:cut], whole[cut:], rec(distinct_id="g", insert_id="g")])
    r = load(con, tmp_path, f)
    assert loaded(con, "distinct_id, source_line, properties->>'plan'") == [("split", 1, "pro"), ("g", 3, None)]
    assert (r.lines, r.loaded, r.rejected) == (3, 2, 0)


def test_halves_of_two_different_records_are_not_joined(con, tmp_path):
    # 1) a record cut short after a key, then a record followed by the closing braces of the first: joined
    #    they parse (the second record becomes a property of the first), but the second line opens a record.
    cut_short = rec(distinct_id="r1", insert_id="r1")[:-2] + ', "context": '
    with_tail = rec(distinct_id="r2", insert_id="r2") + "}}"
    # 2) the head of one record and the tail of another: joined they parse, but hold distinct_id twice
    head = rec(distinct_id="r3", insert_id="r3")
    head = head[: head.index('"$insert_id"')]
    tail = rec(distinct_id="r4", insert_id="r4")
    tail = tail[tail.index('"distinct_id"') :]
    lines = [cut_short, with_tail, head, tail, rec(distinct_id="g", insert_id="g")]
    for a, b in ((0, 1), (2, 3)):
        json.loads(lines[a] + lines[b])  # main joined these into events that never existed
    f = write(tmp_path / f"{DAY}.jsonl", lines)
    r = load(con, tmp_path, f)
    assert loaded(con) == [("g",)] and r.rejected == 4
    assert [g[0] for g in rejected(con)] == [1, 2, 3, 4]
    assert all(g[1].startswith("malformed JSON") for g in rejected(con))


def test_a_record_cut_short_before_a_split_record(con, tmp_path):
    whole = rec(distinct_id="split", insert_id="s")
    cut = whole.index('"distinct_id"')
    f = write(tmp_path / f"{DAY}.jsonl", [rec(distinct_id="lost")[:30], whole[:cut], whole[cut:]])
    r = load(con, tmp_path, f)
    assert loaded(con, "distinct_id, source_line") == [("split", 2)]
    assert [g[0] for g in rejected(con)] == [1] and r.rejected == 1


# ---- raw text, byte-order marks, line endings ----------------------------------------------------------


def test_raw_text_keeps_the_whole_line(con, tmp_path):
    long_bad = '{"event": "Big", "properties": {"blob": "' + "x" * 50_000  # cut short: malformed
    long_typed = rec(distinct_id=7, blob="y" * 30_000)  # valid JSON, bad distinct_id
    f = write(tmp_path / f"{DAY}.jsonl", [long_bad, long_typed], newline="\r\n")
    load(con, tmp_path, f)
    assert [g[2] for g in rejected(con)] == [long_bad, long_typed]


def test_non_utf8_bytes_are_rejected_alone_with_the_bytes_shown(con, tmp_path):
    f = tmp_path / f"{DAY}.jsonl"
    f.write_bytes(rec(distinct_id="g1").encode() + b"\n" + b'{"event": "\xff\xfe"}\n' + rec(distinct_id="g2").encode())
    r = load(con, tmp_path, f)
    assert loaded(con) == [("g1",), ("g2",)] and r.rejected == 1
    [(line, reason, raw_text)] = rejected(con)
    assert line == 2 and reason.startswith("not UTF-8 text: invalid start byte at byte 11")
    assert raw_text == '{"event": "\\xff\\xfe"}'


@pytest.mark.parametrize("name", [f"{DAY}.jsonl", f"{DAY}.jsonl.gz"])
def test_a_utf8_byte_order_mark_is_stripped(con, tmp_path, name):
    f = write(
        tmp_path / name, [rec(distinct_id="first", insert_id="a"), rec(distinct_id="second", insert_id="b")], bom=True
    )
    r = load(con, tmp_path, f)
    assert (r.loaded, r.rejected) == (2, 0) and loaded(con) == [("first",), ("second",)]


def test_a_byte_order_mark_inside_a_file_is_stripped_too(con, tmp_path):
    # two exports concatenated: the second one's mark starts a line in the middle of the file
    lines = [rec(distinct_id="a", insert_id="a"), "\ufeff" + rec(distinct_id="b", insert_id="b")]
    f = write(tmp_path / f"{DAY}.jsonl", lines)
    r = load(con, tmp_path, f)
    assert (r.loaded, r.rejected) == (2, 0) and loaded(con, "distinct_id, source_line") == [("a", 1), ("b", 2)]


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\n"])
@pytest.mark.parametrize("name", [f"{DAY}.jsonl", f"{DAY}.jsonl.gz"])
def test_cr_only_and_crlf_files_load_every_record(con, tmp_path, newline, name):
    lines = [rec(distinct_id=f"u{i}", insert_id=str(i)) for i in range(100)]
    lines[50] = ""  # a blank line is counted, not loaded
    lines[60] = "not json"  # and a bad one is rejected alone, with its own line number
    r = load(con, tmp_path, write(tmp_path / name, lines, newline=newline))
    assert (r.lines, r.loaded, r.rejected) == (99, 98, 1)
    assert [g[0] for g in rejected(con)] == [61]
    assert loaded(con, "source_line")[-1] == (100,)


def test_lines_longer_than_a_read_block_and_line_breaks_across_blocks(con, tmp_path, monkeypatch):
    import growth_pipeline.lib.ingest.raw_events as raw_events

    monkeypatch.setattr(raw_events, "_BLOCK_BYTES", 64)  # every line spans blocks; CRLF split across them
    monkeypatch.setattr(raw_events, "_READ_BYTES", 16)
    lines = [rec(distinct_id=f"u{i}", insert_id=str(i), pad="z" * (i * 7)) for i in range(40)]
    for name in (f"{DAY}.jsonl", f"{DAY}.jsonl.gz"):
        r = load(con, tmp_path, write(tmp_path / name, lines, newline="\r\n", bom=True))
        assert (r.lines, r.loaded, r.rejected) == (40, 40, 0)
        assert [x[0] for x in loaded(con, "source_line")] == list(range(1, 41))
        (tmp_path / name).unlink()


# ---- files that break off, files that are not what they say ---------------------------------------------


def _gzip_day(tmp_path, n=3000) -> tuple[Path, bytes, list[str]]:
    lines = [rec(distinct_id=f"u{i}", insert_id=str(i), pad=f"{i * 7919 % 10007}") for i in range(n)]
    path = write(tmp_path / f"{DAY}.jsonl.gz", lines)
    return path, path.read_bytes(), lines


def _recoverable(data: bytes) -> bytes:
    d = zlib.decompressobj(31)
    out = b""
    try:
        out = d.decompress(data)
    except zlib.error:
        pass
    return out + d.flush()


def test_a_truncated_gzip_loads_the_records_before_the_cut_and_marks_the_day_incomplete(con, tmp_path):
    path, data, lines = _gzip_day(tmp_path)
    path.write_bytes(data[: len(data) // 2])
    prefix = _recoverable(data[: len(data) // 2]).decode()
    complete = prefix.count("\n")  # lines read to their end before the cut
    r = load(con, tmp_path, path)
    assert r.loaded == complete and 0 < complete < len(lines)
    assert [x[0] for x in loaded(con)] == [f"u{i}" for i in range(complete)]
    # the line cut in the middle is a rejected record; nothing else is
    assert [(g[0], g[1].split(":")[0]) for g in rejected(con)] == [(complete + 1, "malformed JSON")]
    assert r.incomplete.startswith(
        f"{DAY}.jsonl.gz: truncated gzip: the compressed data ends at byte {len(data) // 2:,}"
    )
    assert f"the break comes in line {complete + 1:,}, after {len(prefix.encode()):,} bytes of JSON" in r.incomplete
    stored = con.execute("SELECT incomplete FROM raw.day_loads").fetchall()
    assert stored == [(r.incomplete,)]
    outcome = {c.name: c for c in day_checks(con, DAY, r, IngestSettings(max_rejected_share=0.5))}
    assert not outcome["day_complete"].passed and outcome["day_complete"].metadata["incomplete"] == r.incomplete
    assert all(c.passed for name, c in outcome.items() if name != "day_complete")
    accepting = {c.name: c.passed for c in day_checks(con, DAY, r, IngestSettings(allow_incomplete_days=True))}
    assert accepting["day_complete"]


def test_a_gzip_corrupt_in_the_middle_loads_the_records_before_the_damage(con, tmp_path):
    path, data, lines = _gzip_day(tmp_path, n=20_000)
    middle = len(data) // 2
    path.write_bytes(data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 64]) + data[middle + 64 :])
    r = load(con, tmp_path, path)
    assert r.incomplete is not None and r.incomplete.startswith(f"{DAY}.jsonl.gz: corrupt gzip data")
    assert "compressed bytes" in r.incomplete and f"of {len(data):,}" in r.incomplete
    got = [x[0] for x in loaded(con)]
    assert len(got) > len(lines) // 4 and set(got) <= {f"u{i}" for i in range(len(lines))}
    assert got[: len(lines) // 4] == [f"u{i}" for i in range(len(lines) // 4)]
    assert not {c.name: c.passed for c in day_checks(con, DAY, r, IngestSettings())}["day_complete"]


def test_a_gz_file_that_is_not_gzip_is_an_error_naming_the_file_and_keeps_the_old_day(con, tmp_path):
    good = write(tmp_path / f"{DAY}.jsonl.gz", [rec()])
    load(con, tmp_path, good)
    for content in (b"".join(rec().encode() + b"\n" for _ in range(3)), b""):
        good.write_bytes(content)
        with pytest.raises(ExportFileError, match=rf"{DAY}\.jsonl\.gz: not a gzip file"):
            load(con, tmp_path, good)
        assert loaded(con) == [("u1",)]


def test_gzip_members_and_zero_padding_are_read_to_the_end(con, tmp_path):
    a = gzip.compress((rec(distinct_id="a", insert_id="a") + "\n").encode())
    b = gzip.compress((rec(distinct_id="b", insert_id="b") + "\n").encode())
    path = tmp_path / f"{DAY}.jsonl.gz"
    path.write_bytes(a + b + b"\0" * 100)
    r = load(con, tmp_path, path)
    assert (r.loaded, r.incomplete) == (2, None)
    path.write_bytes(a + b"garbage")
    r = load(con, tmp_path, path)
    assert r.loaded == 1 and r.incomplete.startswith(f"{DAY}.jsonl.gz: corrupt gzip data")


# ---- fuzz: thousands of lines, every kind of bad input, several days -------------------------------------


def _fuzz_day(
    rng: random.Random, day: date, file: str, n_lines: int
) -> tuple[list[str], dict[str, list[int]], set[int]]:
    """Lines of one file, its valid records (property k -> their line numbers), the lines to be rejected."""
    t0 = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    lines: list[str] = []
    valid: dict[str, list[int]] = {}
    bad: set[int] = set()
    serial = [0]

    def good_record(**over) -> tuple[str, str]:
        serial[0] += 1
        k = f"{day}-{file}-{serial[0]}"
        t = t0 + rng.random() * 86_399
        unit = rng.choice(["s", "s_int", "ms", "us", "ns"])
        time = {"s": round(t, 3), "s_int": int(t), "ms": int(t * 1e3), "us": int(t * 1e6), "ns": int(t * 1e9)}[unit]
        props = {
            "time": time,
            "distinct_id": rng.choice(["u", "$device:", "用户", "😀"]) + str(rng.randrange(500)),
            "k": k,
            "n": rng.random(),
            "nested": {"a": [1, {"b": None}], "s": 'x\ny"z'},
        }
        if rng.random() < 0.8:
            props["$insert_id"] = None if rng.random() < 0.05 else k
        props.update(over)
        event = rng.choice(["Page View", "Sign Up", "Buy", "Ünïcødé ✓", "$identify"])
        return json.dumps({"event": event, "properties": props}, ensure_ascii=rng.random() < 0.5), k

    def add_bad(*texts: str) -> None:
        for text in texts:
            lines.append(text)
            bad.add(len(lines))

    def add_good(k: str, *texts: str) -> None:
        lines.extend(texts)
        valid[k] = list(range(len(lines) - len(texts) + 1, len(lines) + 1))

    bad_kinds = [
        lambda: add_bad(good_record()[0][: rng.randrange(2, 60)]),  # cut short
        lambda: add_bad(TERMINATED_EARLY),
        lambda: add_bad("[1, 2, 3]"),
        lambda: add_bad(json.dumps({"properties": {"time": t0, "distinct_id": "x"}})),  # no event
        lambda: add_bad(
            json.dumps(
                {
                    "event": rng.choice([None, 5, {"a": 1}, [1], True, " ", ""]),
                    "properties": {"time": t0, "distinct_id": "x"},
                }
            )
        ),
        lambda: add_bad(json.dumps({"event": "E", "properties": rng.choice([None, 5, "p", [1]])})),
        lambda: add_bad(
            good_record(
                time=rng.choice(
                    [
                        None,
                        "yesterday",
                        True,
                        {"t": 1},
                        -5,
                        0,
                        2**63,
                        2**64,
                        1e30,
                        t0 + 3 * 86400,
                        473385600,
                        32472144000,
                    ]
                )
            )[0]
        ),
        lambda: add_bad(
            good_record()[0].replace(
                '"time": ',
                '"time": ' + rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]) + ', "was": ',
                1,
            )
        ),
        lambda: add_bad(
            good_record(distinct_id=rng.choice([None, 42, 4.5, True, {"a": 1}, ["a"], "", " \t", "\u00a0"]))[0]
        ),
        lambda: add_bad(good_record(**{"$insert_id": rng.choice([{"a": 1}, ["a"], 12, False])})[0]),
        lambda: add_bad("[" * rng.randrange(1_100, 30_000)),  # deep, unterminated
        lambda: add_bad(_with_lone_surrogate(good_record()[0])),  # lone surrogate
        lambda: add_bad(*_split(_with_lone_surrogate(good_record()[0]), "note")),  # split + lone surrogate
        lambda: add_bad(good_record()[0].replace('"k": ', '"ctl": "a\x01b", "k": ')),  # raw control character
        lambda: add_bad(good_record()[0][:-2] + ', "ctx": ', good_record()[0] + "}}"),  # two records, closers
        lambda: add_bad(*_head_and_foreign_tail(good_record()[0], good_record()[0])),  # two records, same key
        lambda: add_bad(rng.choice(["{", "}", "null", "42", '"text"', "{]", "garbage"])),
        lambda: add_bad(good_record()[0].replace('"k": ', '"bytes": "\udcff\udcfe", "k": ')),  # not UTF-8
    ]
    while len(lines) < n_lines:
        roll = rng.random()
        if roll < 0.55:
            text, k = good_record()
            add_good(k, text)
        elif roll < 0.62:  # a record split over two lines: joined
            text, k = good_record()
            add_good(k, *_split(text, rng.choice(["distinct_id", "k", "time"]), after_properties=rng.random() < 0.3))
        elif roll < 0.64:  # a byte-order mark starting a line
            text, k = good_record()
            add_good(k, "\ufeff" + text)
        elif roll < 0.66:
            lines.append(rng.choice(["", "   ", "\t"]))  # blank: counted, skipped
        else:
            rng.choice(bad_kinds)()
    return lines, valid, bad


def _with_lone_surrogate(text: str) -> str:
    return text.replace('"k": ', '"note": "\\ud800 alone", "k": ', 1)


def _split(text: str, key: str, after_properties: bool = False) -> list[str]:
    cut = text.index('"properties": ') + len('"properties": ') if after_properties else text.index(f'"{key}"')
    return [text[:cut], text[cut:]]


def _head_and_foreign_tail(a: str, b: str) -> list[str]:
    return [a[: a.index('"k": ')], b[b.index('"distinct_id": ') :]]


def test_fuzz_thousands_of_lines_every_valid_record_loads_every_bad_one_is_rejected(tmp_path):
    rng = random.Random(20260501)
    root = tmp_path / "src"
    root.mkdir()
    days = [DAY + timedelta(days=i) for i in range(6)]
    expected = {}  # day -> [(path, lines, valid records, bad lines, newline, bom, bytes recoverable or None)]
    total_lines = 0
    for i, day in enumerate(days):
        layout = [
            ("a.jsonl", "\n", False),
            ("b.jsonl.gz", "\r\n", True),
            ("c.jsonl", "\r", False),
            ("d.jsonl.gz", "\n", False),
            ("e.json", "\r\n", True),
            ("f.jsonl.gz", "\n", True),
        ][i]
        files = [layout] + ([("z.jsonl.gz", "\n", False)] if i in (3, 5) else [])
        expected[day] = []
        for j, (name, newline, bom) in enumerate(files):
            lines, valid, bad = _fuzz_day(rng, day, name, 1000 if j else 1800)
            total_lines += len(lines)
            path = write(root / f"{day}-{name}", lines, newline=newline, bom=bom)
            recoverable = None
            if name == "z.jsonl.gz":  # days 4 and 6 also have a file cut short in the middle
                data = path.read_bytes()
                path.write_bytes(data[: len(data) * 2 // 3])
                recoverable = len(_recoverable(data[: len(data) * 2 // 3]))
            expected[day].append((path, lines, valid, bad, newline, bom, recoverable))
    assert total_lines >= 10_000

    settings = IngestSettings(max_rejected_share=1.0)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        for day in days:
            files = [e[0] for e in expected[day]]
            r = load_day(con, day=day, files=files, root=root, timezone_name="UTC", timestamps="utc")
            got_keys = {
                k
                for (k,) in con.execute(
                    "SELECT properties->>'k' FROM raw.events WHERE event_date = ?", [day]
                ).fetchall()
            }
            got_rejects = con.execute(
                "SELECT source_file, line_number, reason FROM raw.rejected_events WHERE event_date = ?", [day]
            ).fetchall()
            assert all(reason for _, _, reason in got_rejects)
            want_keys: set[str] = set()
            broken = False
            for path, lines, valid, bad, newline, bom, recoverable in expected[day]:
                mine = {n for f, n, _ in got_rejects if f == path.name}
                if recoverable is None:
                    want_keys |= set(valid)
                    assert mine == bad, path.name
                    continue
                # the cut file: every line read to its end before the break loads or is rejected as it should
                broken = True
                ends, pos = [], 3 if bom else 0
                for line in lines:
                    pos += len((line + newline).encode("utf-8", "surrogateescape"))
                    ends.append(pos)
                cut = next(n for n, end in enumerate(ends, start=1) if end > recoverable)  # first line not whole
                assert 100 < cut < len(lines)
                keys_in = {k for k, numbers in valid.items() if max(numbers) < cut}
                assert keys_in <= got_keys
                want_keys |= keys_in
                assert {n for n in bad if n < cut} <= mine <= bad | {cut - 1, cut}
            extra = got_keys - want_keys
            assert len(extra) <= (1 if broken else 0)  # the cut file's last record, if read to its "}"
            assert r.loaded == len(got_keys)
            checks = {c.name: c.passed for c in day_checks(con, day, r, settings)}
            assert checks == {
                "no_duplicate_keys": True,
                "no_null_keys": True,
                "rejected_share_under_threshold": True,
                "day_not_empty": True,
                "day_complete": not broken,
            }
            if broken:
                assert f"{day}-z.jsonl.gz: truncated gzip" in r.incomplete and "byte" in r.incomplete
        lo, hi = con.execute("SELECT min(time), max(time) FROM raw.events").fetchall()[0]
        assert datetime(2026, 5, 1) <= lo and hi < datetime(2026, 5, 7)
