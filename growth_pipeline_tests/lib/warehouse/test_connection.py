"""Each warehouse connection is bounded: a memory limit and a spill folder of the customer's own."""

import os

import duckdb
import pytest

from growth_pipeline.config import Paths
from growth_pipeline.lib.warehouse.connection import MEMORY_LIMIT_ENV, TEMP_DIRECTORY_ENV, Warehouses

# a sort of ~3M rows of 32-character text: far more than 48 MB of working memory
BIG_SORT = (
    "CREATE OR REPLACE TABLE sorted AS SELECT h FROM (SELECT md5(i::VARCHAR) AS h FROM range(3000000) r(i)) ORDER BY h"
)


def _mib(setting: str) -> float:
    number, unit = setting.split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "TiB": 1024**2}[unit]


def test_a_connection_gets_the_configured_memory_limit_and_a_spill_folder_per_customer(tmp_path):
    paths = Paths(tmp_path / "home")
    with Warehouses(paths, memory_limit="200MB").open("acme") as con:
        limit, temp = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
    assert 180 < _mib(limit) < 200
    assert temp == str(paths.home / "tmp" / "duckdb" / "acme")


def test_without_configuration_the_limit_is_a_fifth_of_the_machine(tmp_path, monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    monkeypatch.delenv(TEMP_DIRECTORY_ENV, raising=False)
    total_mib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    with Warehouses(Paths(tmp_path)).open("acme") as con:
        (limit,) = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert _mib(limit) == pytest.approx(total_mib / 5, rel=0.02)


def test_the_environment_sets_limit_and_spill_root(tmp_path, monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "300MB")
    monkeypatch.setenv(TEMP_DIRECTORY_ENV, str(tmp_path / "scratch"))
    with Warehouses(Paths(tmp_path / "home")).open("foodie") as con:
        limit, temp = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
    assert 270 < _mib(limit) < 300
    assert temp == str(tmp_path / "scratch" / "foodie")


def test_a_step_bigger_than_the_limit_spills_instead_of_failing(tmp_path):
    paths = Paths(tmp_path)
    warehouses = Warehouses(paths, threads=1, memory_limit="48MB")
    with warehouses.open("big") as con:
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET temp_directory = ''")  # what an unbounded connection without a spill folder does
        with pytest.raises(duckdb.OutOfMemoryException):
            con.execute(BIG_SORT)
    with warehouses.open("big") as con:
        con.execute(BIG_SORT)
        assert con.execute("SELECT count(*) FROM sorted").fetchone() == (3_000_000,)
