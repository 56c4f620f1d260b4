"""Per-customer DuckDB warehouses: one file per customer, one writer at a time.

DuckDB lets a single process hold a database file read-write, and a second process fails at once with
"Could not set lock". The run queue in dagster.yaml keeps two runs of one customer apart; this file lock is the
second line: anything else that opens the warehouse (the CLI, a test, an engineer's notebook through
``open_warehouse``) waits its turn instead of failing.

Every connection gets a memory limit and a spill folder, so a big step (a Powerplay-size join or sort) writes to
disk instead of growing until the machine kills it. DuckDB's own default is 80% of the machine's memory per
connection, which several runs at once (dagster.yaml allows four) would overcommit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from growth_pipeline.config import Paths

# Four runs at once (dagster.yaml's max_concurrent_runs) at a fifth of the memory each leaves a fifth for the
# Python side of the steps (Polars frames, CatBoost).
MEMORY_SHARE = 0.2
MEMORY_LIMIT_ENV = "GROWTH_DUCKDB_MEMORY_LIMIT"
TEMP_DIRECTORY_ENV = "GROWTH_DUCKDB_TEMP_DIRECTORY"


class WarehouseBusy(RuntimeError):
    pass


def default_memory_limit() -> str:
    """``GROWTH_DUCKDB_MEMORY_LIMIT`` (any DuckDB size, e.g. ``6GB``) or a fifth of the machine's memory."""
    configured = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if configured:
        return configured
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return f"{max(256, int(total * MEMORY_SHARE / 2**20))}MiB"


def default_temp_directory(paths: Paths, customer_id: str) -> Path:
    """``GROWTH_DUCKDB_TEMP_DIRECTORY``/<customer> or GROWTH_HOME/tmp/duckdb/<customer>: spill files hold the
    customer's rows, so they stay in a folder of their own that only this deployment reads."""
    configured = os.environ.get(TEMP_DIRECTORY_ENV, "").strip()
    root = Path(configured).expanduser() if configured else paths.home / "tmp" / "duckdb"
    return root / customer_id


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
    temp_directory: Path | None = None,
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
        if temp_directory:
            Path(temp_directory).mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = str(temp_directory)
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
    memory_limit: str | None = None  # None: default_memory_limit()
    temp_directory: Path | None = None  # a root; each customer spills into its own folder below it

    def open(self, customer_id: str, *, read_only: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """The customer's own DuckDB file, with a memory limit and a spill folder; other processes queue behind."""
        temp = (
            Path(self.temp_directory) / customer_id
            if self.temp_directory
            else default_temp_directory(self.paths, customer_id)
        )
        return open_warehouse(
            self.paths.warehouse(customer_id),
            read_only=read_only,
            threads=self.threads,
            memory_limit=self.memory_limit or default_memory_limit(),
            temp_directory=temp,
        )
