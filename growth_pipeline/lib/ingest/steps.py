"""The ingestion steps: what the ``landed_exports`` and ``raw_events`` assets do, callable without Dagster.

- ``land_exports``: each customer-day's export files found (downloaded first for an Export API source);
- ``load_raw_events``: each customer-day loaded into ``raw.events`` and checked; ``load_customer_days`` is the
  same for one customer on an open warehouse (what test builders and benchmarks call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from growth_pipeline.config import Customer, CustomerRegistry, MixpanelApiSource, Paths
from growth_pipeline.lib.ingest import raw_checks
from growth_pipeline.lib.ingest.raw_checks import CheckOutcome
from growth_pipeline.lib.ingest.raw_events import DayLoad, load_day
from growth_pipeline.lib.ingest.sources import day_files
from growth_pipeline.lib.warehouse.connection import Warehouses
from growth_pipeline.lib.warehouse.sql import fetch

FIRST_REJECTS_PER_DAY = 5
Log = Callable[[str], None]


@dataclass(frozen=True)
class LandedDay:
    customer_id: str
    day: date
    root: Path
    files: list[Path]
    bytes: int
    download: dict | None = None  # what the Export API download did, for a Mixpanel API source


@dataclass(frozen=True)
class LandedExports:
    days: list[LandedDay]

    @property
    def files(self) -> int:
        return sum(len(d.files) for d in self.days)

    @property
    def bytes(self) -> int:
        return sum(d.bytes for d in self.days)

    def markdown(self) -> str:
        rows = []
        for d in self.days:
            names = ", ".join(f"`{f.relative_to(d.root)}`" for f in d.files) or "(none)"
            extra = f" (downloaded in {d.download['attempts']} attempt(s))" if d.download else ""
            rows.append(f"| {d.customer_id} | {d.day} | {len(d.files)} | {d.bytes:,} | {names}{extra} |")
        return "| customer | day | files | bytes | names |\n|---|---|---:|---:|---|\n" + "\n".join(rows)


def land_exports(
    registry: CustomerRegistry,
    pairs: list[tuple[str, date]],
    paths: Paths,
    download: Callable[[Customer, date], dict],
) -> LandedExports:
    """Each (customer, day)'s export files in place for loading; ``download`` fetches a day first when the
    customer's source is the Mixpanel Export API."""
    days = []
    for customer_id, day in pairs:
        customer = registry.get(customer_id)
        downloaded = download(customer, day) if isinstance(customer.source, MixpanelApiSource) else None
        root, files = day_files(customer, day, paths)
        days.append(LandedDay(customer_id, day, root, files, sum(f.stat().st_size for f in files), downloaded))
    return LandedExports(days)


@dataclass
class RawEventsLoad:
    """The loads of one or more customer-days, their check outcomes and first rejected records."""

    loads: list[tuple[str, DayLoad]] = field(default_factory=list)
    checks: dict[str, list[tuple[str, date, CheckOutcome]]] = field(default_factory=dict)
    first_rejects: list[tuple] = field(default_factory=list)  # (customer, day, file, line, reason)
    warehouse_files: dict[str, str] = field(default_factory=dict)

    def extend(self, other: RawEventsLoad) -> None:
        self.loads += other.loads
        for name, results in other.checks.items():
            self.checks.setdefault(name, []).extend(results)
        self.first_rejects += other.first_rejects
        self.warehouse_files.update(other.warehouse_files)

    def metadata(self) -> dict:
        """The load's figures (markdown strings under ``first_rejects`` and, for ranges, ``per_day``)."""
        return raw_checks.load_metadata(self.loads, self.first_rejects, self.warehouse_files)


def load_customer_days(
    con: duckdb.DuckDBPyConnection, customer: Customer, days: list[date], paths: Paths, log: Log | None = None
) -> RawEventsLoad:
    """Load each day of one customer into ``raw.events`` (each day replaced in one transaction) and check it."""
    out = RawEventsLoad()
    for day in days:
        root, files = day_files(customer, day, paths)
        load = load_day(
            con, day=day, files=files, root=root, timezone_name=customer.timezone, timestamps=customer.timestamps
        )
        for check in raw_checks.day_checks(con, day, load, customer.ingest):
            out.checks.setdefault(check.name, []).append((customer.id, day, check))
        out.first_rejects += [
            (customer.id, day, *r) for r in fetch(con, "raw_first_rejects", day=day, n=FIRST_REJECTS_PER_DAY)
        ]
        if log:
            log(
                f"{customer.id} {day}: loaded {load.loaded}, duplicates {load.duplicates}, "
                f"rejected {load.rejected} of {load.lines} lines"
            )
        out.loads.append((customer.id, load))
    return out


def load_raw_events(
    warehouses: Warehouses,
    registry: CustomerRegistry,
    days_by_customer: Mapping[str, list[date]],
    log: Log | None = None,
) -> RawEventsLoad:
    """Load the days of each customer, one warehouse connection per customer for the whole range (opening a
    DuckDB file costs ~50 ms)."""
    out = RawEventsLoad()
    for customer_id, days in days_by_customer.items():
        with warehouses.open(customer_id) as con:
            out.extend(load_customer_days(con, registry.get(customer_id), days, warehouses.paths, log))
        out.warehouse_files[customer_id] = str(warehouses.paths.warehouse(customer_id))
    return out
