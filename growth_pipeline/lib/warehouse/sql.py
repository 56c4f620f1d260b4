"""SQL that DuckDB runs lives in ``sql/`` as files; this loads them by name and binds variables safely."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import duckdb

from growth_pipeline.config import SQL_DIR


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
