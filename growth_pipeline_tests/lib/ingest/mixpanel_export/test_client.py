"""The Raw Export client (lib/ingest/mixpanel_export/client.py) against a local fake server. Fast and
deterministic: no real sleeping."""

from __future__ import annotations

import gzip
import json
import logging
import pickle
from datetime import datetime

import pytest
import requests

from growth_pipeline.lib.ingest.mixpanel_export.client import MixpanelExportError, backoff_seconds, export_day
from growth_pipeline.lib.ingest.mixpanel_export.rate_limit import RateLimiter
from growth_pipeline_tests.fake_mixpanel import CUT, FakeMixpanel
from growth_pipeline_tests.lib.ingest.mixpanel_export.export_helpers import (
    ACCOUNT,
    BASIC_TOKEN,
    BODY,
    DAY,
    PROJECT,
    SECRET,
    USER,
    FakeClock,
    Waits,
    events_body,
    export_from,
    listing,
)


def test_happy_path_writes_gzip_of_exact_body(tmp_path):
    dest = tmp_path / "landing" / "acme"
    with FakeMixpanel({"2024-03-01": BODY, "2024-03-02": events_body(3)}, USER, SECRET, PROJECT) as fake:
        waits = Waits()
        res = export_from(fake, dest, sleep=waits)
    assert res.path == dest / "2024-03-01.jsonl.gz"
    assert gzip.decompress(res.path.read_bytes()) == BODY
    assert res.lines == 25
    assert res.attempts == 1
    assert res.day == DAY
    assert res.terminated_early is False
    assert res.bytes_written == res.path.stat().st_size
    assert waits.calls == []
    assert listing(dest) == ["2024-03-01.jsonl.gz"]  # no temp file left
    [req] = fake.requests
    assert req.path == "/api/2.0/export"
    assert req.query == {"project_id": PROJECT, "from_date": "2024-03-01", "to_date": "2024-03-01"}
    assert "gzip" in req.headers["Accept-Encoding"]
    assert req.auth_ok
    assert req.headers["Authorization"] == "<redacted>"
    assert req.status == 200


def test_identity_wire_encoding_still_gzip_on_disk(tmp_path):
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, honour_gzip=False) as fake:
        res = export_from(fake, tmp_path)
    assert gzip.decompress(res.path.read_bytes()) == BODY
    assert res.lines == 25


def test_large_body_streams_across_many_chunks(tmp_path):
    body = events_body(6000, pad="x" * 300)  # ~2.5 MB: several 1 MiB client chunks, many 64 KiB server chunks
    assert len(body) > 2 * (1 << 20)
    with FakeMixpanel({"2024-03-01": body}, USER, SECRET, PROJECT) as fake:
        res = export_from(fake, tmp_path)
    assert gzip.decompress(res.path.read_bytes()) == body
    assert res.lines == 6000


def test_empty_day_gives_empty_gzip(tmp_path):
    with FakeMixpanel({}, USER, SECRET, PROJECT) as fake:
        res = export_from(fake, tmp_path)
    assert gzip.decompress(res.path.read_bytes()) == b""
    assert res.lines == 0
    assert res.terminated_early is False


def test_unterminated_last_line_is_counted(tmp_path):
    body = BODY + b'{"event": "Last", "properties": {}}'
    with FakeMixpanel({"2024-03-01": body}, USER, SECRET, PROJECT) as fake:
        res = export_from(fake, tmp_path)
    assert res.lines == 26
    assert gzip.decompress(res.path.read_bytes()) == body


def test_time_in_ms_is_passed(tmp_path):
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT) as fake:
        export_from(fake, tmp_path, time_in_ms=True)
    assert fake.requests[0].query["time_in_ms"] == "true"


def test_existing_file_is_replaced_on_success(tmp_path):
    (tmp_path / "2024-03-01.jsonl.gz").write_bytes(gzip.compress(b"old\n"))
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT) as fake:
        res = export_from(fake, tmp_path)
    assert gzip.decompress(res.path.read_bytes()) == BODY


def test_terminated_early_is_kept_and_flagged(tmp_path, caplog):
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, terminated_early=True) as fake:
        res = export_from(fake, tmp_path)
    assert res.terminated_early is True
    data = gzip.decompress(res.path.read_bytes())
    assert data == BODY + b"terminated early\n"
    assert res.lines == 26  # the marker is a line of the file; the loader rejects it
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "terminated early" in r.getMessage()]
    assert warnings and PROJECT in warnings[0].getMessage()


# ----------------------------------------------------------------------------------------------- retries


def test_retry_after_then_503_then_success(tmp_path):
    waits = Waits()
    fail = [(429, {"Retry-After": "2"}), (503, {})]
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, fail_with=fail) as fake:
        res = export_from(fake, tmp_path, sleep=waits, rand=lambda: 0.5, backoff_base_s=5.0, jitter=0.25)
    assert res.attempts == 3
    assert gzip.decompress(res.path.read_bytes()) == BODY
    assert [r.status for r in fake.requests] == [429, 503, 200]
    assert waits.calls[0] == 2.0  # Retry-After, exactly, no jitter
    # second retry: no Retry-After -> backoff 5 * 2**1 = 10 s, stretched by jitter 0.25 * rand 0.5
    assert waits.calls[1] == pytest.approx(10.0 * 1.125)
    assert waits.calls[1] == backoff_seconds(2, base_s=5.0, max_s=300.0, jitter=0.25, rand=lambda: 0.5)
    assert len(waits.calls) == 2
    assert listing(tmp_path) == ["2024-03-01.jsonl.gz"]


def test_backoff_grows_and_is_capped():
    waits = [backoff_seconds(k, base_s=5, max_s=60, jitter=0.25, rand=lambda: 0.0) for k in range(1, 7)]
    assert waits == [5, 10, 20, 40, 60, 60]
    assert backoff_seconds(6, base_s=5, max_s=60, jitter=0.25, rand=lambda: 0.99) == 60


def test_persistent_500_gives_up_without_leaving_files(tmp_path):
    dest = tmp_path / "landing"
    waits = Waits()
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, fail_with=[(500, {})] * 10) as fake:
        with pytest.raises(MixpanelExportError) as ei:
            export_from(fake, dest, max_retries=3, sleep=waits, rand=lambda: 0.0)
    err = ei.value
    assert len(fake.requests) == 4  # 1 + max_retries
    assert err.attempts == 4 and err.status == 500 and err.retryable is True
    msg = str(err)
    assert PROJECT in msg and "2024-03-01" in msg and "500" in msg and "scripted failure 500" in msg
    assert waits.calls == [5.0, 10.0, 20.0]
    assert listing(dest) == []  # neither a final file nor a stray temp file


def test_failure_keeps_previous_file_intact(tmp_path):
    old = gzip.compress(b"previous complete download\n")
    (tmp_path / "2024-03-01.jsonl.gz").write_bytes(old)
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, fail_with=[(CUT, {})] * 5) as fake:
        with pytest.raises(MixpanelExportError):
            export_from(fake, tmp_path, max_retries=2)
    assert (tmp_path / "2024-03-01.jsonl.gz").read_bytes() == old
    assert listing(tmp_path) == ["2024-03-01.jsonl.gz"]


def test_body_cut_mid_stream_is_retried(tmp_path):
    waits = Waits()
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, fail_with=[(CUT, {})]) as fake:
        res = export_from(fake, tmp_path, sleep=waits)
    assert res.attempts == 2
    assert gzip.decompress(res.path.read_bytes()) == BODY
    assert len(waits.calls) == 1
    assert listing(tmp_path) == ["2024-03-01.jsonl.gz"]


def test_connection_refused_is_retried_then_fails(tmp_path):
    with FakeMixpanel({}, USER, SECRET, PROJECT) as fake:
        url = fake.base_url  # the port is closed once the server stops
    waits = Waits()
    with pytest.raises(MixpanelExportError) as ei:
        export_day(
            project_id=PROJECT,
            day=DAY,
            account=ACCOUNT,
            dest_dir=tmp_path,
            base_url=url,
            max_retries=2,
            sleep=waits,
            rand=lambda: 0.0,
            timeout_s=5,
        )
    assert ei.value.status is None and ei.value.attempts == 3 and ei.value.retryable
    assert "no HTTP reply" in str(ei.value) and SECRET not in str(ei.value)
    assert waits.calls == [5.0, 10.0]
    assert listing(tmp_path) == []


def test_rate_limiter_is_consulted_before_every_attempt(tmp_path):
    clock = FakeClock()
    limiter = RateLimiter(tmp_path / "state" / "rate.json", clock=clock, sleep=clock.sleep)
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, fail_with=[(502, {}), (502, {})]) as fake:
        res = export_from(fake, tmp_path / "landing", rate_limiter=limiter)
    assert res.attempts == 3
    state = json.loads((tmp_path / "state" / "rate.json").read_text())
    assert len(state["projects"][PROJECT]) == 3


# ----------------------------------------------------------------------------------- immediate failures


def test_401_fails_immediately_without_leaking_the_secret(tmp_path):
    waits = Waits()
    with FakeMixpanel({"2024-03-01": BODY}, USER, "the-right-secret", PROJECT) as fake:
        with pytest.raises(MixpanelExportError) as ei:
            export_from(fake, tmp_path, sleep=waits)
    err = ei.value
    assert len(fake.requests) == 1 and fake.requests[0].auth_ok is False
    assert waits.calls == []
    assert err.status == 401 and err.retryable is False and err.attempts == 1
    msg = str(err)
    assert PROJECT in msg and "2024-03-01" in msg and "401" in msg
    assert "check the service account for project" in msg
    assert "Invalid service account credentials" in msg  # Mixpanel's own text
    assert SECRET not in msg and BASIC_TOKEN not in msg
    assert SECRET not in repr(err) and SECRET not in str(pickle.loads(pickle.dumps(err)))
    assert listing(tmp_path) == []


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_client_errors_fail_immediately(tmp_path, status):
    with FakeMixpanel({}, USER, SECRET, PROJECT, fail_with=[(status, {})]) as fake:
        with pytest.raises(MixpanelExportError) as ei:
            export_from(fake, tmp_path)
    assert len(fake.requests) == 1
    assert ei.value.status == status and not ei.value.retryable
    assert PROJECT in str(ei.value) and f"HTTP {status}" in str(ei.value)


def test_wrong_project_is_a_400_from_the_server(tmp_path):
    with FakeMixpanel({}, USER, SECRET, "999") as fake:
        with pytest.raises(MixpanelExportError) as ei:
            export_from(fake, tmp_path)
    assert ei.value.status == 400 and "not a member of project" in str(ei.value)


def test_server_error_text_echoing_the_secret_is_scrubbed(tmp_path):
    fail = [(400, {}, json.dumps({"error": f"bad auth {SECRET} / Basic {BASIC_TOKEN}"}))]
    with FakeMixpanel({}, USER, SECRET, PROJECT, fail_with=fail) as fake:
        with pytest.raises(MixpanelExportError) as ei:
            export_from(fake, tmp_path)
    assert SECRET not in str(ei.value) and BASIC_TOKEN not in str(ei.value)
    assert "bad auth ***" in str(ei.value)


@pytest.mark.parametrize("bad", ["", "abc123def", "12 34", "-1"])
def test_bad_project_id_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="project_id"):
        export_day(project_id=bad, day=DAY, account=ACCOUNT, dest_dir=tmp_path)


def test_day_must_be_a_date(tmp_path):
    with pytest.raises(TypeError):
        export_day(project_id=PROJECT, day=datetime(2024, 3, 1, 12), account=ACCOUNT, dest_dir=tmp_path)
    with pytest.raises(TypeError):
        export_day(project_id=PROJECT, day="2024-03-01", account=ACCOUNT, dest_dir=tmp_path)


def test_caller_session_is_used_and_left_open(tmp_path):
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT) as fake:
        with requests.Session() as s:
            res = export_from(fake, tmp_path, session=s)
            res2 = export_day(
                project_id=PROJECT, day=DAY, account=ACCOUNT, dest_dir=tmp_path, base_url=fake.base_url, session=s
            )
    assert res.attempts == res2.attempts == 1
    assert "Authorization" not in s.headers  # credentials were per request, not stored on the session
