"""A real DuckDB file per test for the identity and catalogue tests."""

import duckdb
import pytest


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield c
    c.close()
