"""The Export API rate limiter (lib/ingest/mixpanel_export/rate_limit.py), with a fake clock and across real
processes."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from growth_pipeline.lib.ingest.mixpanel_export.rate_limit import RateLimiter, RateLimitTimeout
from growth_pipeline_tests.lib.ingest.mixpanel_export.export_helpers import PROJECT, FakeClock


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
