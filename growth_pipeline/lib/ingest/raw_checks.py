"""Quality checks of one loaded day of raw.events (the logic behind raw_events' asset checks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb

from growth_pipeline.config import IngestSettings
from growth_pipeline.lib.ingest.raw_events import DayLoad
from growth_pipeline.lib.warehouse.sql import fetch_one


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    metadata: dict = field(default_factory=dict)


def day_checks(
    con: duckdb.DuckDBPyConnection, day: date, load: DayLoad, settings: IngestSettings
) -> list[CheckOutcome]:
    dup_keys, null_keys = fetch_one(con, "raw_day_checks", day=day)
    share = load.rejected_share
    return [
        CheckOutcome("no_duplicate_keys", dup_keys == 0, {"duplicate_keys": dup_keys}),
        CheckOutcome("no_null_keys", null_keys == 0, {"rows_with_null_keys": null_keys}),
        CheckOutcome(
            "rejected_share_under_threshold",
            share <= settings.max_rejected_share or load.rejected < settings.min_rejected_to_fail,
            {
                "rejected": load.rejected,
                "lines": load.lines,
                "rejected_share": round(share, 6),
                "threshold": settings.max_rejected_share,
                "min_rejected_to_fail": settings.min_rejected_to_fail,
            },
        ),
        CheckOutcome(
            "day_not_empty",
            load.loaded > 0 or settings.allow_empty_days,
            {"loaded": load.loaded, "allow_empty_days": settings.allow_empty_days},
        ),
        CheckOutcome(
            "day_complete",
            load.incomplete is None or settings.allow_incomplete_days,
            {
                "incomplete": load.incomplete or "(every file read to its end)",
                "allow_incomplete_days": settings.allow_incomplete_days,
            },
        ),
    ]


def check_metadata(results: list[tuple[str, date, CheckOutcome]]) -> dict:
    """One check over one day, or over a range of days: the figures of the day (or of each failing day)."""
    if len(results) == 1:
        return results[0][2].metadata
    failing = [(c, d, o) for c, d, o in results if not o.passed]
    meta: dict = {"days_checked": len(results), "days_failing": len(failing)}
    if failing:
        meta["failing_days"] = "; ".join(f"{c} {d}: {o.metadata}" for c, d, o in failing[:20])
    return meta


def load_metadata(loads: list[tuple[str, DayLoad]], first_rejects: list[tuple], warehouses: dict[str, str]) -> dict:
    """What a person wants to see about a load of one day or a range of days."""
    total = lambda attr: sum(getattr(ld, attr) for _, ld in loads)  # noqa: E731
    reasons: dict[str, int] = {}
    for _, ld in loads:
        for r, n in ld.rejected_reasons.items():
            reasons[r] = reasons.get(r, 0) + n
    lines = total("lines")
    meta = {
        "days": len(loads),
        "files": total("files"),
        "lines": lines,
        "loaded": total("loaded"),
        "dagster/row_count": total("loaded"),
        "duplicates": total("duplicates_in_day") + total("duplicates_of_stored"),
        "duplicates_in_day": total("duplicates_in_day"),
        "duplicates_of_stored": total("duplicates_of_stored"),
        "rejected": total("rejected"),
        "rejected_share": round(total("rejected") / lines, 6) if lines else 0.0,
        "rejected_reasons": reasons,
        "incomplete": "; ".join(f"{c} {ld.day}: {ld.incomplete}" for c, ld in loads if ld.incomplete) or "(none)",
        "warehouse": ", ".join(sorted(set(warehouses.values()))),
        "first_rejects": "\n".join(f"- {c} {d} `{f}` line {n}: {r}" for c, d, f, n, r in first_rejects[:20])
        or "(none)",
    }
    if len(loads) > 1:
        meta["per_day"] = "\n".join(
            ["| customer | day | loaded | duplicates | rejected |", "|---|---|---:|---:|---:|"]
            + [f"| {c} | {ld.day} | {ld.loaded:,} | {ld.duplicates:,} | {ld.rejected:,} |" for c, ld in loads]
        )
    return meta
