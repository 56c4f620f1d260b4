"""Per-customer DuckDB warehouses: one file per customer, one writer at a time.

DuckDB lets a single process hold a database file read-write, and a second process fails at once with
"Could not set lock". The run queue in dagster.yaml keeps two runs of one customer apart; this file lock is the
second line: anything else that opens the warehouse (the CLI, a test, an engineer's notebook through
``open_warehouse``) waits its turn instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from growth_pipeline.config import Paths


class WarehouseBusy(RuntimeError):
    pass


class MissingInput(RuntimeError):
    """A table a step reads is not built yet: the message names the asset to materialize first."""


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


@contextmanager
def open_warehouse(
    db_path: Path,
    *,
    read_only: bool = False,
    wait_s: float = 3600.0,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a customer's DuckDB file, queueing behind any other process that has it open."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    if read_only and not db_path.exists():
        raise FileNotFoundError(f"{db_path}: no warehouse yet for this customer (load raw_events first)")
    lock = FileLock(str(lock_path(db_path)))
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise WarehouseBusy(f"{db_path}: still in use by another process after {wait_s:.0f} s") from None
    try:
        config: dict[str, str | int] = {}
        if threads:
            config["threads"] = threads
        if memory_limit:
            config["memory_limit"] = memory_limit
        con = duckdb.connect(str(db_path), read_only=read_only, config=config)
        try:
            yield con
        finally:
            con.close()
    finally:
        lock.release()


@dataclass(frozen=True)
class Warehouses:
    """Every customer's warehouse under one GROWTH_HOME, opened the same way (what the steps are handed)."""

    paths: Paths
    threads: int | None = None

    def open(self, customer_id: str, *, read_only: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """The customer's own DuckDB file; other processes queue behind this one."""
        return open_warehouse(self.paths.warehouse(customer_id), read_only=read_only, threads=self.threads)
