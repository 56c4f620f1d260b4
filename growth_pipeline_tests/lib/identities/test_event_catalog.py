"""The event catalogue (lib/identities/event_catalog.py): counts, types and fill rates, on a real DuckDB file."""

import pytest

from growth_pipeline.lib.identities.event_catalog import build_event_catalog
from growth_pipeline_tests.conftest import epoch, event
from growth_pipeline_tests.warehouse_builder import load_records


def test_event_catalog_counts_types_and_fill_rates(con, tmp_path):
    t = epoch(2024, 3, 1, 8)
    recs = [
        event("Buy", f"u{i % 3}", t + i, str(i), price=10.5 if i % 2 == 0 else 12, cuisine="thai" if i < 3 else None)
        for i in range(6)
    ]
    recs.append(event("Login", "u0", t + 100, "x"))
    load_records(con, tmp_path, recs)
    summary = build_event_catalog(con)
    assert summary["event_names"] == 2 and summary["events"] == 7
    cat = {
        r[0]: r[1:]
        for r in con.execute("SELECT event, events, distinct_ids, days_seen FROM core.event_catalog").fetchall()
    }
    assert cat == {"Buy": (6, 3, 1), "Login": (1, 1, 1)}
    props = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT property, observed_types, fill_rate FROM core.event_properties WHERE event = 'Buy'"
        ).fetchall()
    }
    assert props["price"] == (["DOUBLE", "UBIGINT"], 1.0)
    assert props["cuisine"][0] == ["VARCHAR"] and props["cuisine"][1] == pytest.approx(0.5)
    assert "| Buy | 6 |" in summary["markdown"]
