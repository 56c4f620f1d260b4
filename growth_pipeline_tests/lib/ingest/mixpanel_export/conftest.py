"""Every Mixpanel export test checks that the secret never reaches the logs."""

from __future__ import annotations

import logging

import pytest

from growth_pipeline_tests.lib.ingest.mixpanel_export.export_helpers import BASIC_TOKEN, SECRET


@pytest.fixture(autouse=True)
def _no_secret_in_logs(caplog):
    """Every test runs with DEBUG logging everywhere (urllib3 included); the secret must never show up."""
    caplog.set_level(logging.DEBUG)
    yield
    for rec in caplog.records:
        text = rec.getMessage() + (rec.exc_text or "")
        assert SECRET not in text, rec
        assert BASIC_TOKEN not in text, rec
    assert SECRET not in caplog.text
    assert BASIC_TOKEN not in caplog.text
