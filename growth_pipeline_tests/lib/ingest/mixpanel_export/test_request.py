"""Export URLs: regions and base URLs (lib/ingest/mixpanel_export/request.py)."""

from __future__ import annotations

import pytest

from growth_pipeline.lib.ingest.mixpanel_export.client import export_day
from growth_pipeline.lib.ingest.mixpanel_export.request import REGION_HOSTS, export_url
from growth_pipeline_tests.lib.ingest.mixpanel_export.export_helpers import ACCOUNT, DAY, PROJECT, SECRET, USER, listing


def test_region_hosts_and_url_building():
    assert export_url() == "https://data.mixpanel.com/api/2.0/export"
    assert export_url(region="eu") == "https://data-eu.mixpanel.com/api/2.0/export"
    assert export_url(region="in") == "https://data-in.mixpanel.com/api/2.0/export"
    assert export_url(region="EU") == REGION_HOSTS["eu"] + "/api/2.0/export"
    assert export_url(region="eu", base_url="http://127.0.0.1:8080/") == "http://127.0.0.1:8080/api/2.0/export"
    assert export_url(base_url="https://proxy.internal/mp") == "https://proxy.internal/mp/api/2.0/export"


def test_bad_region_raises_value_error_naming_the_allowed_ones(tmp_path):
    with pytest.raises(ValueError, match=r"'mars'.*eu, in, us"):
        export_url(region="mars")
    with pytest.raises(ValueError, match="allowed"):
        export_day(project_id=PROJECT, day=DAY, account=ACCOUNT, dest_dir=tmp_path, region="mars")
    assert listing(tmp_path) == []


def test_unsafe_base_urls_are_refused():
    with pytest.raises(ValueError, match="credentials") as ei:
        export_url(base_url=f"https://{USER}:{SECRET}@data.mixpanel.com")
    assert SECRET not in str(ei.value)
    with pytest.raises(ValueError, match="plain http"):
        export_url(base_url="http://data.mixpanel.com")
    with pytest.raises(ValueError):
        export_url(base_url="ftp://data.mixpanel.com")
