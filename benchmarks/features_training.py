"""Benchmark: features and training for a Powerplay-scale customer on this machine.

    .venv/bin/python benchmarks/features_training.py --users 200000 --days 90

Generates the demo exports, loads them (raw_events, identities, event catalogue, user_daily), then builds the
feature frame for one as-of date and trains each model, printing seconds and peak resident memory per step.
Targets (2 cores): features for one as-of date under 60 s; each model's training under 5 minutes.
90 days cannot hold the default 30- and 90-day horizons with their validation and test windows, so the models
here use 14-day horizons; the work per training row is the same.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from growth_pipeline.config import REPO_ROOT, Paths, customer_like, load_customers
from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec
from growth_pipeline.lib.features.steps import build_customer_daily
from growth_pipeline.lib.features.user_features import build_features, read_customer_activity
from growth_pipeline.lib.identities.steps import catalog_events, resolve_identities
from growth_pipeline.lib.ingest.steps import load_customer_days
from growth_pipeline.lib.models.labels import label_specs
from growth_pipeline.lib.models.split import NotEnoughData
from growth_pipeline.lib.models.training import train_model
from growth_pipeline.lib.warehouse.connection import open_warehouse

RESULTS: list[tuple[str, float, float]] = []


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


@contextmanager
def step(name: str):
    """Time a step and read its peak resident memory (Linux: the high-water mark, reset before the step)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass
    t0 = time.perf_counter()
    try:
        yield
    finally:
        secs = time.perf_counter() - t0
        peak = _status_kib("VmHWM") / 2**20
        RESULTS.append((name, secs, peak))
        print(f"{name:<40} {secs:8.1f} s   peak RSS {peak:6.2f} GiB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="growth-bench-"))
    start = date(2026, 1, 1)
    days = [start + timedelta(days=i) for i in range(args.days)]
    # the demo Powerplay customer of customers.yaml; 14-day horizons fit 90 days of data
    customer = customer_like(
        load_customers(REPO_ROOT / "customers.yaml").get("powerplay"),
        "bench",
        work / "src",
        conversion={"horizon_days": 14},
        goal={"horizon_days": 14},
        ltv={"horizon_days": 14},
    )
    paths = Paths(work / "home")
    print(f"benchmark: {args.users:,} users x {args.days} days, {args.threads} threads, in {work}")

    with step("generate exports"):
        s = generate_demo(DemoSpec("powerplay", n_users=args.users, start=start, days=args.days), work / "src")
    print(f"  {s.events:,} events, {s.duplicates:,} duplicates")
    with open_warehouse(paths.warehouse("bench"), threads=args.threads) as con:
        with step(f"raw_events ({args.days} days)"):
            load_customer_days(con, customer, days, paths)
        with step("identities + event_catalog"):
            resolve_identities(con)
            catalog_events(con)
        with step(f"user_daily ({args.days} days)"):
            build_customer_daily(con, customer, days)
        with step("read activity (features input)"):
            act = read_customer_activity(con, customer)
    with step("features for one as-of date"):
        frame = build_features(act, act.last_day)
    print(f"  {frame.height:,} users x {frame.width} columns")
    for name, spec in label_specs(customer).items():
        try:
            with step(f"train {name} (features for all snapshots + CatBoost + baselines + SHAP)"):
                tm = train_model(act, spec, "bench", thread_count=args.threads, log=lambda m: print("  " + m))
            print(f"  {name}: rows {tm.rows}, model {tm.primary_metric} {tm.metrics['model.' + tm.primary_metric]:.3f}")
        except NotEnoughData as exc:
            print(f"  {name}: not enough data: {exc}")
    print("\nstep | seconds | peak RSS GiB")
    for name, secs, gib in RESULTS:
        print(f"{name} | {secs:.1f} | {gib:.2f}")


if __name__ == "__main__":
    main()
