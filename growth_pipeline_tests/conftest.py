"""Shared fixtures: a throw-away GROWTH_HOME and customers.yaml per test, and small Mixpanel export files."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from growth_pipeline.config import Paths, load_customers


def event(name: str, distinct_id: str | None, ts: float | str | None, insert_id: str | None = None, **props) -> dict:
    properties = {k.replace("__", "$"): v for k, v in props.items()}
    if ts is not None:
        properties["time"] = ts
    if distinct_id is not None:
        properties["distinct_id"] = distinct_id
    if insert_id is not None:
        properties["$insert_id"] = insert_id
    return {"event": name, "properties": properties}


def epoch(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> int:
    return int(datetime(y, m, d, hh, mm, tzinfo=UTC).timestamp())


def write_export(path: Path, records: list, gz: bool | None = None) -> Path:
    """Write JSONL; a str record is written verbatim (for malformed lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    gz = path.name.endswith(".gz") if gz is None else gz
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


CUSTOMERS_YAML = """
customers:
  - id: acme
    timezone: UTC
    source: {{kind: local_folder, path: {root}/sources/acme}}
    events: {{signup: Sign Up, conversion: [Buy], revenue_property: price}}
    ingest: {{max_rejected_share: 0.2, min_rejected_to_fail: 2}}
  - id: oldco
    timezone: Asia/Kolkata
    timestamps: project_timezone
    source: {{kind: object_storage, path: {root}/sources/oldco, project_id: "42"}}
    events: {{signup: Sign Up, conversion: [Buy]}}
  - id: apico
    timezone: Europe/Berlin
    source: {{kind: mixpanel_api, project_id: "777", region: eu, base_url: "{{base_url}}",
              username_env: TEST_MP_USER, secret_env: TEST_MP_SECRET}}
    events: {{signup: Sign Up, conversion: [Buy]}}
"""


@pytest.fixture
def growth_env(tmp_path, monkeypatch):
    """GROWTH_HOME and GROWTH_CUSTOMERS pointing into tmp_path; returns (Paths, root)."""
    home = tmp_path / "home"
    monkeypatch.setenv("GROWTH_HOME", str(home))
    cfg = tmp_path / "customers.yaml"
    cfg.write_text(CUSTOMERS_YAML.format(root=tmp_path).replace("{base_url}", "http://127.0.0.1:9"))
    monkeypatch.setenv("GROWTH_CUSTOMERS", str(cfg))
    return Paths(home), tmp_path


@pytest.fixture
def registry(growth_env):
    return load_customers()


D1 = date(2024, 3, 1)
D2 = date(2024, 3, 2)
