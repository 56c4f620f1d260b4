"""Generated demo exports shared by the tests of growth_pipeline.lib.demo (module-scoped: generated once per test
file)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec
from growth_pipeline_tests.lib.demo.demo_files import FD_SPEC, PP_SPEC, read_all


@pytest.fixture(scope="module")
def pp(tmp_path_factory):
    out = tmp_path_factory.mktemp("powerplay")
    summary = generate_demo(PP_SPEC, out)
    return summary, out, read_all(PP_SPEC, out), pl.read_parquet(out / "truth.parquet")


@pytest.fixture(scope="module")
def fd(tmp_path_factory):
    out = tmp_path_factory.mktemp("foodie")
    summary = generate_demo(FD_SPEC, out)
    return summary, out, read_all(FD_SPEC, out), pl.read_parquet(out / "truth.parquet")


@pytest.fixture(scope="module")
def oracle_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle")
    spec = DemoSpec("powerplay", n_users=4000, start=date(2024, 1, 1), days=75, seed=13)
    generate_demo(spec, out)
    return spec, out, pl.read_parquet(out / "truth.parquet")
