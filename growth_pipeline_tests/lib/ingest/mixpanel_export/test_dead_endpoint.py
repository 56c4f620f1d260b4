"""A dead Export API endpoint costs a bounded, configurable time per day (``deadline_s``), whatever way it is
dead: nothing listening, a server that accepts and never answers, a body that trickles in for ever. Real time,
real sockets: each case allows a couple of seconds and asserts the total stays within the setting plus a
little scheduling slack. The error names the customer and the day, never the secret."""

from __future__ import annotations

import base64
import logging
import socket
import time
from datetime import date
from pathlib import Path

import pytest

from growth_pipeline.config import MixpanelApiSource, parse_customers
from growth_pipeline.lib.ingest.mixpanel_export.client import MixpanelExportError, export_day
from growth_pipeline.lib.ingest.mixpanel_export.endpoint import DEADLINE_S
from growth_pipeline.lib.ingest.mixpanel_export.service_account import ServiceAccount
from growth_pipeline_tests.fake_mixpanel import DRIP, HANG, FakeMixpanel

SECRET = "dead-endpoint-S3CRET-4f9e1b"
USER = "growth-sa.dead.mp-service-account"
PROJECT = "2195193"
DAY = date(2024, 3, 1)
ACCOUNT = ServiceAccount(USER, SECRET)
BASIC_TOKEN = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
DEADLINE = 2.0
SLACK = 1.0  # scheduling on a loaded 2-core machine


@pytest.fixture(autouse=True)
def _no_secret_in_logs(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    assert SECRET not in caplog.text and BASIC_TOKEN not in caplog.text


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _export_until_it_gives_up(base_url: str, dest: Path, **kw) -> tuple[MixpanelExportError, float]:
    kw.setdefault("deadline_s", DEADLINE)
    t0 = time.monotonic()
    with pytest.raises(MixpanelExportError) as ei:
        export_day(
            project_id=PROJECT,
            day=DAY,
            account=ACCOUNT,
            dest_dir=dest,
            base_url=base_url,
            customer="apico",
            max_retries=1000,  # only the deadline stops it
            backoff_base_s=0.2,
            backoff_max_s=0.5,
            **kw,
        )
    return ei.value, time.monotonic() - t0


def _names_customer_and_day_not_secret(err: MixpanelExportError) -> None:
    msg = str(err)
    assert "customer 'apico'" in msg and "2024-03-01" in msg and PROJECT in msg
    assert "deadline_s" in msg and f"{DEADLINE:g} s allowed" in msg
    assert SECRET not in msg and BASIC_TOKEN not in msg and SECRET not in repr(err)
    assert err.retryable and err.day == DAY


def test_a_port_nothing_listens_on_fails_within_the_deadline(tmp_path):
    err, elapsed = _export_until_it_gives_up(f"http://127.0.0.1:{_closed_port()}", tmp_path)
    assert elapsed <= DEADLINE + SLACK
    assert err.attempts > 1 and err.status is None  # it did retry, and stopped on time
    _names_customer_and_day_not_secret(err)
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_never_answers_fails_within_the_deadline_not_the_read_timeout(tmp_path):
    with FakeMixpanel({}, USER, SECRET, PROJECT, fail_with=[(HANG, {})] * 50) as fake:
        err, elapsed = _export_until_it_gives_up(fake.base_url, tmp_path, timeout_s=60)
        assert len(fake.requests) >= 1
    assert elapsed <= DEADLINE + SLACK
    _names_customer_and_day_not_secret(err)
    assert list(tmp_path.iterdir()) == []


def test_a_body_that_trickles_in_for_ever_is_cut_at_the_deadline(tmp_path):
    """Every read gets a byte within the read timeout, so only the deadline can end it; no partial file stays."""
    with FakeMixpanel({}, USER, SECRET, PROJECT, fail_with=[(DRIP, {})] * 50) as fake:
        err, elapsed = _export_until_it_gives_up(fake.base_url, tmp_path, timeout_s=60)
    assert elapsed <= DEADLINE + SLACK
    _names_customer_and_day_not_secret(err)
    assert "still arriving" in str(err)
    assert list(tmp_path.iterdir()) == []


def test_the_deadline_is_a_customers_yaml_setting_that_the_download_uses(tmp_path, monkeypatch):
    """customers.yaml's source.deadline_s reaches the download (through the Dagster resource, as a run does)."""
    from growth_pipeline.config import Paths
    from growth_pipeline.defs.resources import MixpanelExportResource

    default = parse_customers(_yaml("http://127.0.0.1:9", extra="")).get("apico").source
    assert isinstance(default, MixpanelApiSource) and default.deadline_s == DEADLINE_S == 600.0
    monkeypatch.setenv("TEST_MP_USER", USER)
    monkeypatch.setenv("TEST_MP_SECRET", SECRET)
    with FakeMixpanel({}, USER, SECRET, PROJECT, fail_with=[(HANG, {})] * 50) as fake:
        customer = parse_customers(_yaml(fake.base_url, extra=f", deadline_s: {DEADLINE}")).get("apico")
        t0 = time.monotonic()
        with pytest.raises(MixpanelExportError) as ei:
            MixpanelExportResource().download_day(customer, DAY, Paths(tmp_path), logging.getLogger("test"))
        elapsed = time.monotonic() - t0
    assert elapsed <= DEADLINE + SLACK
    _names_customer_and_day_not_secret(ei.value)


def _yaml(base_url: str, extra: str) -> str:
    return f"""
customers:
  - id: apico
    timezone: UTC
    source: {{kind: mixpanel_api, project_id: "{PROJECT}", base_url: "{base_url}",
              username_env: TEST_MP_USER, secret_env: TEST_MP_SECRET{extra}}}
    events: {{signup: Sign Up, conversion: [Buy]}}
"""
