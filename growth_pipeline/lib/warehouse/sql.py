"""SQL that DuckDB runs lives in ``sql/`` as files; this loads them by name and binds variables safely.

- ``run_sql``: run a file's statements (DDL, writes);
- ``fetch`` / ``fetch_one`` / ``read_frame``: run a file's query and read its rows (tuples, one row, a Polars frame);
- ``table_exists``: whether ``schema.table`` is there yet;
- ``write_relations`` / ``replace_day``: Polars frames or Arrow tables made visible to a file's SQL under names,
  and the file run in one transaction (the way every table built in Python reaches the warehouse).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import cache
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from growth_pipeline.config import SQL_DIR

Relation = pl.DataFrame | pa.Table


@cache
def sql_text(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"SQL file not found: {path}")
    return path.read_text()


def set_variables(con: duckdb.DuckDBPyConnection, **values: Any) -> None:
    """Bind values as DuckDB variables (read in SQL with ``getvariable('name')``): no string formatting."""
    for name, value in values.items():
        if not name.isidentifier():
            raise ValueError(f"bad variable name {name!r}")
        con.execute(f"SET VARIABLE {name} = ?", [value])


def run_sql(con: duckdb.DuckDBPyConnection, name: str, **variables: Any) -> None:
    """Run every statement of ``sql/<name>.sql`` after binding ``variables``."""
    set_variables(con, **variables)
    con.execute(sql_text(name))


def fetch(con: duckdb.DuckDBPyConnection, name: str, **variables: Any) -> list[tuple]:
    """The rows of the query in ``sql/<name>.sql`` (its last statement), after binding ``variables``."""
    set_variables(con, **variables)
    return con.execute(sql_text(name)).fetchall()


def fetch_one(con: duckdb.DuckDBPyConnection, name: str, **variables: Any) -> tuple:
    """The first row of the query in ``sql/<name>.sql`` (an aggregate's one row)."""
    return fetch(con, name, **variables)[0]


def read_frame(con: duckdb.DuckDBPyConnection, name: str, **variables: Any) -> pl.DataFrame:
    """The result of the query in ``sql/<name>.sql`` (one SELECT) as a Polars frame."""
    set_variables(con, **variables)
    return pl.DataFrame(con.sql(sql_text(name)))


def table_exists(con: duckdb.DuckDBPyConnection, qualified_name: str) -> bool:
    """Whether table ``schema.table`` exists in the warehouse (many tables appear only with their first write)."""
    schema, _, table = qualified_name.rpartition(".")
    if not schema:
        raise ValueError(f"{qualified_name!r}: name the schema too, as in 'marts.user_scores'")
    return bool(fetch_one(con, "table_exists", schema_name=schema, table_name=table)[0])


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, **relations: Relation) -> Iterator[None]:
    """Polars frames or Arrow tables visible to SQL under the given names for the duration of the block."""
    for name, rel in relations.items():
        con.register(name, rel.to_arrow() if isinstance(rel, pl.DataFrame) else rel)
    try:
        yield
    finally:
        for name in relations:
            con.unregister(name)


def write_relations(
    con: duckdb.DuckDBPyConnection,
    name: str,
    relations: dict[str, Relation],
    *,
    schema: str | None = None,
    **variables: Any,
) -> None:
    """Run ``sql/<schema>.sql`` (the tables, idempotent) and ``sql/<name>.sql`` in one transaction, with
    ``relations`` visible to both by name and ``variables`` bound."""
    with registered(con, **relations), transaction(con):
        if schema:
            run_sql(con, schema)
        run_sql(con, name, **variables)


def replace_day(
    con: duckdb.DuckDBPyConnection, name: str, day: date, relations: dict[str, Relation], *, schema: str | None = None
) -> None:
    """Replace day ``day`` of the tables ``sql/<name>.sql`` writes (it deletes ``getvariable('day')`` and inserts
    the relations' rows) in one transaction: re-running a day gives the same rows, a crash leaves the old day."""
    write_relations(con, name, relations, schema=schema, day=day)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB transaction: committed when the block ends, rolled back if it raises (or the process dies)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
