"""Fixtures shared by the unit tests of lib/features and lib/models."""

from datetime import date

import pytest

from growth_pipeline.config import REPO_ROOT, Paths, customer_like, load_customers
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec

START = date(2026, 1, 1)


@pytest.fixture(scope="module")
def small_customer(tmp_path_factory):
    root = tmp_path_factory.mktemp("pit")
    generate_demo(DemoSpec("powerplay", n_users=500, start=START, days=120, seed=3), root / "src")
    customer = customer_like(load_customers(REPO_ROOT / "customers.yaml").get("powerplay"), "pp", root / "src")
    return customer, Paths(root / "home"), root
