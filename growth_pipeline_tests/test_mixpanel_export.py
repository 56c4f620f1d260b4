"""Mixpanel Raw Export client (lib/ingest/mixpanel_export/) against a local fake server. Fast and deterministic:
no real sleeping."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import multiprocessing
import pickle
from datetime import date, datetime
from pathlib import Path

import pytest
import requests

from growth_pipeline.lib.ingest.mixpanel_export.client import (
    ExportResult,
    MixpanelExportError,
    backoff_seconds,
    export_day,
)
from growth_pipeline.lib.ingest.mixpanel_export.rate_limit import RateLimiter, RateLimitTimeout
from growth_pipeline.lib.ingest.mixpanel_export.request import REGION_HOSTS, export_url
from growth_pipeline.lib.ingest.mixpanel_export.service_account import ServiceAccount
from growth_pipeline_tests.fake_mixpanel import CUT, FakeMixpanel

SECRET = "s3cr3t-DO-NOT-LEAK-7f3a9c"
USER = "growth-sa.1a2b3c.mp-service-account"
PROJECT = "2195193"
DAY = date(2024, 3, 1)
ACCOUNT = ServiceAccount(USER, SECRET)
BASIC_TOKEN = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()


def _events(n: int, day: date = DAY, pad: str = "") -> bytes:
    rows = [
        {
            "event": "Signed Up" if i % 7 == 0 else "Viewed Page",
            "properties": {"time": 1709251200 + i, "distinct_id": f"u{i % 13}", "$insert_id": f"i{i}", "pad": pad},
        }
        for i in range(n)
    ]
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


BODY = _events(25)


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


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _export(fake: FakeMixpanel, dest: Path, **kw) -> ExportResult:
    kw.setdefault("sleep", Waits())
    kw.setdefault("rand", lambda: 0.5)
    return export_day(project_id=PROJECT, day=DAY, account=ACCOUNT, dest_dir=dest, base_url=fake.base_url, **kw)


# ------------------------------------------------------------------------------------------- happy paths


def test_happy_path_writes_gzip_of_exact_body(tmp_path):
    dest = tmp_path / "landing" / "acme"
    with FakeMixpanel({"2024-03-01": BODY, "2024-03-02": _events(3)}, USER, SECRET, PROJECT) as fake:
        waits = Waits()
        res = _export(fake, dest, sleep=waits)
    assert res.path == dest / "2024-03-01.jsonl.gz"
    assert gzip.decompress(res.path.read_bytes()) == BODY
    assert res.lines == 25
    assert res.attempts == 1
    assert res.day == DAY
    assert res.terminated_early is False
    assert res.bytes_written == res.path.stat().st_size
    assert waits.calls == []
    assert _listing(dest) == ["2024-03-01.jsonl.gz"]  # no temp file left
    [req] = fake.requests
    assert req.path == "/api/2.0/export"
    assert req.query == {"project_id": PROJECT, "from_date": "2024-03-01", "to_date": "2024-03-01"}
    assert "gzip" in req.headers["Accept-Encoding"]
    assert req.auth_ok
    assert req.headers["Authorization"] == "<redacted>"
    assert req.status == 200


def test_identity_wire_encoding_still_gzip_on_disk(tmp_path):
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, honour_gzip=False) as fake:
        res = _export(fake, tmp_path)
    assert gzip.decompress(res.path.read_bytes()) == BODY
    assert res.lines == 25


def test_large_body_streams_across_many_chunks(tmp_path):
    body = _events(6000, pad="x" * 300)  # ~2.5 MB: several 1 MiB client chunks, many 64 KiB server chunks
    assert len(body) > 2 * (1 << 20)
    with FakeMixpanel({"2024-03-01": body}, USER, SECRET, PROJECT) as fake:
        res = _export(fake, tmp_path)
    assert gzip.decompress(res.path.read_bytes()) == body
    assert res.lines == 6000


def test_empty_day_gives_empty_gzip(tmp_path):
    with FakeMixpanel({}, USER, SECRET, PROJECT) as fake:
        res = _export(fake, tmp_path)
    assert gzip.decompress(res.path.read_bytes()) == b""
    assert res.lines == 0
    assert res.terminated_early is False


def test_unterminated_last_line_is_counted(tmp_path):
    body = BODY + b'{"event": "Last", "properties": {}}'
    with FakeMixpanel({"2024-03-01": body}, USER, SECRET, PROJECT) as fake:
        res = _export(fake, tmp_path)
    assert res.lines == 26
    assert gzip.decompress(res.path.read_bytes()) == body


def test_time_in_ms_is_passed(tmp_path):
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT) as fake:
        _export(fake, tmp_path, time_in_ms=True)
    assert fake.requests[0].query["time_in_ms"] == "true"


def test_existing_file_is_replaced_on_success(tmp_path):
    (tmp_path / "2024-03-01.jsonl.gz").write_bytes(gzip.compress(b"old\n"))
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT) as fake:
        res = _export(fake, tmp_path)
    assert gzip.decompress(res.path.read_bytes()) == BODY


def test_terminated_early_is_kept_and_flagged(tmp_path, caplog):
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, terminated_early=True) as fake:
        res = _export(fake, tmp_path)
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
        res = _export(fake, tmp_path, sleep=waits, rand=lambda: 0.5, backoff_base_s=5.0, jitter=0.25)
    assert res.attempts == 3
    assert gzip.decompress(res.path.read_bytes()) == BODY
    assert [r.status for r in fake.requests] == [429, 503, 200]
    assert waits.calls[0] == 2.0  # Retry-After, exactly, no jitter
    # second retry: no Retry-After -> backoff 5 * 2**1 = 10 s, stretched by jitter 0.25 * rand 0.5
    assert waits.calls[1] == pytest.approx(10.0 * 1.125)
    assert waits.calls[1] == backoff_seconds(2, base_s=5.0, max_s=300.0, jitter=0.25, rand=lambda: 0.5)
    assert len(waits.calls) == 2
    assert _listing(tmp_path) == ["2024-03-01.jsonl.gz"]


def test_backoff_grows_and_is_capped():
    waits = [backoff_seconds(k, base_s=5, max_s=60, jitter=0.25, rand=lambda: 0.0) for k in range(1, 7)]
    assert waits == [5, 10, 20, 40, 60, 60]
    assert backoff_seconds(6, base_s=5, max_s=60, jitter=0.25, rand=lambda: 0.99) == 60


def test_persistent_500_gives_up_without_leaving_files(tmp_path):
    dest = tmp_path / "landing"
    waits = Waits()
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, fail_with=[(500, {})] * 10) as fake:
        with pytest.raises(MixpanelExportError) as ei:
            _export(fake, dest, max_retries=3, sleep=waits, rand=lambda: 0.0)
    err = ei.value
    assert len(fake.requests) == 4  # 1 + max_retries
    assert err.attempts == 4 and err.status == 500 and err.retryable is True
    msg = str(err)
    assert PROJECT in msg and "2024-03-01" in msg and "500" in msg and "scripted failure 500" in msg
    assert waits.calls == [5.0, 10.0, 20.0]
    assert _listing(dest) == []  # neither a final file nor a stray temp file


def test_failure_keeps_previous_file_intact(tmp_path):
    old = gzip.compress(b"previous complete download\n")
    (tmp_path / "2024-03-01.jsonl.gz").write_bytes(old)
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, fail_with=[(CUT, {})] * 5) as fake:
        with pytest.raises(MixpanelExportError):
            _export(fake, tmp_path, max_retries=2)
    assert (tmp_path / "2024-03-01.jsonl.gz").read_bytes() == old
    assert _listing(tmp_path) == ["2024-03-01.jsonl.gz"]


def test_body_cut_mid_stream_is_retried(tmp_path):
    waits = Waits()
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, fail_with=[(CUT, {})]) as fake:
        res = _export(fake, tmp_path, sleep=waits)
    assert res.attempts == 2
    assert gzip.decompress(res.path.read_bytes()) == BODY
    assert len(waits.calls) == 1
    assert _listing(tmp_path) == ["2024-03-01.jsonl.gz"]


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
    assert _listing(tmp_path) == []


def test_rate_limiter_is_consulted_before_every_attempt(tmp_path):
    clock = FakeClock()
    limiter = RateLimiter(tmp_path / "state" / "rate.json", clock=clock, sleep=clock.sleep)
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT, fail_with=[(502, {}), (502, {})]) as fake:
        res = _export(fake, tmp_path / "landing", rate_limiter=limiter)
    assert res.attempts == 3
    state = json.loads((tmp_path / "state" / "rate.json").read_text())
    assert len(state["projects"][PROJECT]) == 3


# ----------------------------------------------------------------------------------- immediate failures


def test_401_fails_immediately_without_leaking_the_secret(tmp_path):
    waits = Waits()
    with FakeMixpanel({"2024-03-01": BODY}, USER, "the-right-secret", PROJECT) as fake:
        with pytest.raises(MixpanelExportError) as ei:
            _export(fake, tmp_path, sleep=waits)
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
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_client_errors_fail_immediately(tmp_path, status):
    with FakeMixpanel({}, USER, SECRET, PROJECT, fail_with=[(status, {})]) as fake:
        with pytest.raises(MixpanelExportError) as ei:
            _export(fake, tmp_path)
    assert len(fake.requests) == 1
    assert ei.value.status == status and not ei.value.retryable
    assert PROJECT in str(ei.value) and f"HTTP {status}" in str(ei.value)


def test_wrong_project_is_a_400_from_the_server(tmp_path):
    with FakeMixpanel({}, USER, SECRET, "999") as fake:
        with pytest.raises(MixpanelExportError) as ei:
            _export(fake, tmp_path)
    assert ei.value.status == 400 and "not a member of project" in str(ei.value)


def test_server_error_text_echoing_the_secret_is_scrubbed(tmp_path):
    fail = [(400, {}, json.dumps({"error": f"bad auth {SECRET} / Basic {BASIC_TOKEN}"}))]
    with FakeMixpanel({}, USER, SECRET, PROJECT, fail_with=fail) as fake:
        with pytest.raises(MixpanelExportError) as ei:
            _export(fake, tmp_path)
    assert SECRET not in str(ei.value) and BASIC_TOKEN not in str(ei.value)
    assert "bad auth ***" in str(ei.value)


# --------------------------------------------------------------------------------------- inputs and URLs


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
    assert _listing(tmp_path) == []


def test_unsafe_base_urls_are_refused():
    with pytest.raises(ValueError, match="credentials") as ei:
        export_url(base_url=f"https://{USER}:{SECRET}@data.mixpanel.com")
    assert SECRET not in str(ei.value)
    with pytest.raises(ValueError, match="plain http"):
        export_url(base_url="http://data.mixpanel.com")
    with pytest.raises(ValueError):
        export_url(base_url="ftp://data.mixpanel.com")


@pytest.mark.parametrize("bad", ["", "abc123def", "12 34", "-1"])
def test_bad_project_id_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="project_id"):
        export_day(project_id=bad, day=DAY, account=ACCOUNT, dest_dir=tmp_path)


def test_day_must_be_a_date(tmp_path):
    with pytest.raises(TypeError):
        export_day(project_id=PROJECT, day=datetime(2024, 3, 1, 12), account=ACCOUNT, dest_dir=tmp_path)
    with pytest.raises(TypeError):
        export_day(project_id=PROJECT, day="2024-03-01", account=ACCOUNT, dest_dir=tmp_path)


def test_service_account_hides_the_secret():
    assert SECRET not in repr(ACCOUNT) and SECRET not in str(ACCOUNT)
    assert USER in repr(ACCOUNT)
    with pytest.raises(ValueError):
        ServiceAccount(USER, "")
    assert ACCOUNT.scrub(f"x {SECRET} y {BASIC_TOKEN}") == "x *** y ***"


def test_caller_session_is_used_and_left_open(tmp_path):
    with FakeMixpanel({"2024-03-01": BODY}, USER, SECRET, PROJECT) as fake:
        with requests.Session() as s:
            res = _export(fake, tmp_path, session=s)
            res2 = export_day(
                project_id=PROJECT, day=DAY, account=ACCOUNT, dest_dir=tmp_path, base_url=fake.base_url, session=s
            )
    assert res.attempts == res2.attempts == 1
    assert "Authorization" not in s.headers  # credentials were per request, not stored on the session


# ------------------------------------------------------------------------------------------ RateLimiter


def test_rate_limiter_fourth_request_in_a_second_waits(tmp_path):
    clock = FakeClock()
    lim = RateLimiter(tmp_path / "rate.json", clock=clock, sleep=clock.sleep)
    t0 = clock.now
    for _ in range(3):
        assert lim.acquire(PROJECT) == 0.0
        clock.advance(0.1)
    waited = lim.acquire(PROJECT)  # at t0 + 0.3: must wait until t0 + 1.0
    assert waited == pytest.approx(0.7)
    assert clock.sleeps == [pytest.approx(0.7)]
    assert clock.now == pytest.approx(t0 + 1.0)


def test_rate_limiter_61st_request_in_an_hour_waits_for_the_oldest(tmp_path):
    clock = FakeClock()
    lim = RateLimiter(tmp_path / "rate.json", clock=clock, sleep=clock.sleep)
    t0 = clock.now
    for _ in range(60):
        lim.acquire(PROJECT)
        clock.advance(1.0)  # stays under 3/s
    assert clock.sleeps == []
    lim.acquire(PROJECT)  # at t0 + 60: the oldest (t0) leaves the window at t0 + 3600
    assert clock.sleeps == [pytest.approx(3540.0)]
    assert clock.now == pytest.approx(t0 + 3600.0)


def test_rate_limiter_projects_have_separate_budgets(tmp_path):
    clock = FakeClock()
    lim = RateLimiter(tmp_path / "rate.json", clock=clock, sleep=clock.sleep)
    for _ in range(3):
        lim.acquire("1")
    for _ in range(3):
        lim.acquire("2")
    assert clock.sleeps == []


def test_two_limiters_on_one_state_file_share_the_budget(tmp_path):
    clock = FakeClock()
    state = tmp_path / "state" / "mixpanel_rate" / f"{PROJECT}.json"
    a = RateLimiter(state, clock=clock, sleep=clock.sleep)
    b = RateLimiter(state, clock=clock, sleep=clock.sleep)
    a.acquire(PROJECT)
    b.acquire(PROJECT)
    a.acquire(PROJECT)
    assert clock.sleeps == []
    b.acquire(PROJECT)  # the 4th in the same second, whoever asks
    assert clock.sleeps == [pytest.approx(1.0)]

    clock2 = FakeClock()
    state2 = tmp_path / "hourly.json"
    a = RateLimiter(state2, clock=clock2, sleep=clock2.sleep, per_second=100, per_hour=5)
    b = RateLimiter(state2, clock=clock2, sleep=clock2.sleep, per_second=100, per_hour=5)
    for lim in (a, b, a, b, a):
        lim.acquire(PROJECT)
        clock2.advance(10)
    b.acquire(PROJECT)
    assert clock2.sleeps == [pytest.approx(3600 - 50)]


def test_rate_limiter_timeout_raises_instead_of_waiting(tmp_path):
    clock = FakeClock()
    lim = RateLimiter(tmp_path / "rate.json", clock=clock, sleep=clock.sleep, per_hour=1)
    lim.acquire(PROJECT)
    with pytest.raises(RateLimitTimeout, match=PROJECT):
        lim.acquire(PROJECT, timeout_s=60)
    assert clock.sleeps == []


def test_rate_limiter_survives_a_corrupt_state_file(tmp_path):
    state = tmp_path / "rate.json"
    state.write_text("{not json")
    clock = FakeClock()
    lim = RateLimiter(state, clock=clock, sleep=clock.sleep)
    assert lim.acquire(PROJECT) == 0.0
    assert json.loads(state.read_text())["projects"][PROJECT] == [clock.now]


def test_rate_limiter_clock_going_back_does_not_block_for_long(tmp_path):
    clock = FakeClock()
    lim = RateLimiter(tmp_path / "rate.json", clock=clock, sleep=clock.sleep, per_second=1)
    lim.acquire(PROJECT)
    clock.advance(-7200)  # wall clock stepped back two hours
    lim.acquire(PROJECT)
    assert clock.sleeps == [pytest.approx(1.0)]


class _Refused(Exception):
    pass


def _refuse(_seconds):
    raise _Refused


def _acquire_once_in_another_process(state: str, project: str, out) -> None:
    # Fixed clock: every process is "in the same second"; a limiter that would sleep refuses instead.
    lim = RateLimiter(state, clock=lambda: 1_700_000_000.0, sleep=_refuse)
    try:
        lim.acquire(project)
        out.put("ok")
    except _Refused:
        out.put("refused")


def test_rate_limiter_shares_budget_across_real_processes(tmp_path):
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")  # fork: fast on Linux
    out = ctx.Queue()
    state = str(tmp_path / "rate.json")
    procs = [ctx.Process(target=_acquire_once_in_another_process, args=(state, PROJECT, out)) for _ in range(6)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(results) == ["ok"] * 3 + ["refused"] * 3
    assert len(json.loads(Path(state).read_text())["projects"][PROJECT]) == 3
