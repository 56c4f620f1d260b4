"""Reading a generated demo export back (files, records, dirt, per-user events) for the tests of
growth_pipeline.lib.demo."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from growth_pipeline.lib.demo.spec import DemoSpec
from growth_pipeline.lib.demo.writer import day_files_for

PP_SPEC = DemoSpec("powerplay", n_users=500, start=date(2024, 1, 1), days=30, seed=11)
# spans the US daylight-saving switch of 2024-03-10 (a 23-hour local day)
FD_SPEC = DemoSpec("foodie", n_users=400, start=date(2024, 3, 5), days=12, seed=5)


def physical_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8")
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1] if text else []


def seconds(t: int) -> int:
    return t // 1000 if t >= 100_000_000_000 else t


class Day:
    """One day's files read back: valid records (with their raw line) and malformed lines by kind."""

    def __init__(self, day: date, files: list[Path]):
        self.day = day
        self.records: list[tuple[dict, str, str]] = []  # (record, line, file name)
        self.bad: Counter = Counter()
        self.split_joined: list[str] = []
        for f in files:
            lines = physical_lines(f)
            i = 0
            while i < len(lines):
                ln = lines[i]
                if ln == "terminated early":
                    self.bad["terminated_early"] += 1
                    i += 1
                    continue
                try:
                    rec = json.loads(ln)
                except ValueError:
                    if i + 1 < len(lines):
                        try:
                            json.loads(ln + lines[i + 1])
                        except ValueError:
                            pass
                        else:
                            self.bad["split"] += 1
                            self.split_joined.append(ln + lines[i + 1])
                            i += 2
                            continue
                    self.bad["truncated"] += 1
                    i += 1
                    continue
                props = rec["properties"]
                if "distinct_id" not in props:
                    self.bad["missing_distinct_id"] += 1
                elif isinstance(props["time"], str):
                    self.bad["string_time"] += 1
                else:
                    self.records.append((rec, ln, f.name))
                i += 1


def read_all(spec: DemoSpec, out: Path) -> list[Day]:
    return [
        Day(spec.start + timedelta(days=k), day_files_for(spec, out, spec.start + timedelta(days=k)))
        for k in range(spec.days)
    ]


def dedup_key(rec: dict) -> tuple:
    p = rec["properties"]
    return rec["event"], p["distinct_id"], p["time"], p["$insert_id"]


def local_date(t: int, tz: str) -> date:
    return datetime.fromtimestamp(seconds(t), ZoneInfo(tz)).date()


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Rank-based AUC (Mann-Whitney U) with average ranks for ties."""
    y = np.asarray(y, dtype=bool)
    ranks = pl.Series(score).rank("average").to_numpy()
    n1, n0 = y.sum(), (~y).sum()
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def user_events(days: list[Day], truth: pl.DataFrame) -> dict[str, list[tuple[int, str, dict]]]:
    """Events per user id (identified and anonymous ids mapped), each (time s, event, properties)."""
    anon_to_user = dict(zip(truth["anon_distinct_id"], truth["user_id"], strict=False))
    out: dict[str, list] = defaultdict(list)
    for d in days:
        for rec, _, _ in d.records:
            p = rec["properties"]
            uid = anon_to_user.get(p["distinct_id"], p["distinct_id"])
            out[uid].append((seconds(p["time"]), rec["event"], p))
    return out


def realised(truth: pl.DataFrame, probs: pl.DataFrame, col: str, as_of: date, h: int) -> np.ndarray:
    j = probs.join(truth.select("user_id", col), on="user_id", how="left", maintain_order="left")
    return (j[col].is_not_null() & (j[col] > as_of) & (j[col] <= as_of + timedelta(days=h))).to_numpy()
