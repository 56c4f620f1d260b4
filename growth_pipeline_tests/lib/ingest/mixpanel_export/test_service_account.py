"""The service account keeps its secret out of reprs and scrubs it from text
(lib/ingest/mixpanel_export/service_account.py)."""

from __future__ import annotations

import pytest

from growth_pipeline.lib.ingest.mixpanel_export.service_account import ServiceAccount
from growth_pipeline_tests.lib.ingest.mixpanel_export.export_helpers import ACCOUNT, BASIC_TOKEN, SECRET, USER


def test_service_account_hides_the_secret():
    assert SECRET not in repr(ACCOUNT) and SECRET not in str(ACCOUNT)
    assert USER in repr(ACCOUNT)
    with pytest.raises(ValueError):
        ServiceAccount(USER, "")
    assert ACCOUNT.scrub(f"x {SECRET} y {BASIC_TOKEN}") == "x *** y ***"
