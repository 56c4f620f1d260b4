"""A service account, export bodies, an injected sleep and clock, and a shortcut to export one day from the fake
server: shared by the tests of growth_pipeline.lib.ingest.mixpanel_export."""

from __future__ import annotations

import base64
import json
from datetime import date
from pathlib import Path

from growth_pipeline.lib.ingest.mixpanel_export.client import ExportResult, export_day
from growth_pipeline.lib.ingest.mixpanel_export.service_account import ServiceAccount
from growth_pipeline_tests.fake_mixpanel import FakeMixpanel

SECRET = "s3cr3t-DO-NOT-LEAK-7f3a9c"
USER = "growth-sa.1a2b3c.mp-service-account"
PROJECT = "2195193"
DAY = date(2024, 3, 1)
ACCOUNT = ServiceAccount(USER, SECRET)
BASIC_TOKEN = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()


def events_body(n: int, day: date = DAY, pad: str = "") -> bytes:
    rows = [
        {
            "event": "Signed Up" if i % 7 == 0 else "Viewed Page",
            "properties": {"time": 1709251200 + i, "distinct_id": f"u{i % 13}", "$insert_id": f"i{i}", "pad": pad},
        }
        for i in range(n)
    ]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


BODY = events_body(25)


class Waits:
    """An injected sleep that records instead of sleeping."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeClock:
    """A clock and a sleep that advances it; shared by limiters to simulate processes on one machine."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def export_from(fake: FakeMixpanel, dest: Path, **kw) -> ExportResult:
    kw.setdefault("sleep", Waits())
    kw.setdefault("rand", lambda: 0.5)
    return export_day(project_id=PROJECT, day=DAY, account=ACCOUNT, dest_dir=dest, base_url=fake.base_url, **kw)
