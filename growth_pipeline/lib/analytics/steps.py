"""The analytics steps: what each analysis asset (channels, top_users, ...) and ``customer_report`` do, callable
without Dagster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from growth_pipeline.config import Customer
from growth_pipeline.lib.analytics import marts, report
from growth_pipeline.lib.warehouse.connection import MissingInput, Warehouses
from growth_pipeline.lib.warehouse.sql import transaction


def build_analysis(warehouses: Warehouses, customer: Customer, name: str) -> marts.Analysis:
    """One analysis as of the customer's latest loaded day (that day's marts rows replaced in one transaction),
    with its tables and charts."""
    with warehouses.open(customer.id) as con:
        as_of = marts.latest_day(con)
        if as_of is None:
            raise MissingInput(f"{customer.id}: core.user_daily is empty: load days first")
        with transaction(con):
            return marts.run_analysis(con, customer, name, as_of)


def table_markdown(frame: pl.DataFrame, n: int = 12) -> str:
    """The first ``n`` rows of a marts table as a markdown table (without its as_of column)."""
    if frame.is_empty():
        return "(empty)"
    head = frame.head(n)
    cols = [c for c in head.columns if c != "as_of"]

    def fmt(v):
        return f"{v:,.3f}" if isinstance(v, float) else str(v)

    return (
        "| "
        + " | ".join(cols)
        + " |\n|"
        + "---|" * len(cols)
        + "\n"
        + "\n".join("| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in head.iter_rows(named=True))
    )


@dataclass(frozen=True)
class PublishedReport:
    content: report.ReportContent
    path: Path  # the page, index.html


def publish_report(warehouses: Warehouses, customer: Customer, tracking_uri: str) -> PublishedReport:
    """The customer's report collected from its warehouse and the MLflow registry, written atomically."""
    with warehouses.open(customer.id, read_only=True) as con:
        content = report.collect(con, customer, tracking_uri)
    return PublishedReport(content, report.write(content, warehouses.paths.reports(customer.id)))
