"""Benchmark: daily scoring with reasons for 1,000,000 users on this machine.

    .venv/bin/python benchmarks/scoring.py --users 1000000

Trains real churn and ltv models on a small demo customer (as the pipeline does), then scores a population of
``--users`` users built by resampling that customer's feature rows (each numeric value jittered, so CatBoost and
SHAP see 1M distinct rows), exactly as the ``user_scores`` asset does: calibrated probability / predicted value,
percentile, band, SHAP top-3 reasons in words, revenue at risk, the write to ``marts.user_scores`` and the
atomic Parquet and CSV export. Prints seconds and peak resident memory per step. Target (2 cores): under 2
minutes for 1M users with reasons.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features_training import RESULTS, step  # noqa: E402  (same timing helper)

from growth_pipeline.config import REPO_ROOT, Paths, customer_like, load_customers  # noqa: E402
from growth_pipeline.lib.demo.generator import generate_demo  # noqa: E402
from growth_pipeline.lib.demo.spec import DemoSpec  # noqa: E402
from growth_pipeline.lib.features.user_features import build_features, read_customer_activity  # noqa: E402
from growth_pipeline.lib.models.labels import label_specs, population  # noqa: E402
from growth_pipeline.lib.models.training import train_model  # noqa: E402
from growth_pipeline.lib.scoring import scores as scoring  # noqa: E402
from growth_pipeline.lib.warehouse.connection import open_warehouse  # noqa: E402


class Champion:
    """A trained model in the shape scoring expects (as registry.LoadedModel)."""

    def __init__(self, name, tm):
        self.registered_name, self.version, self.kind = f"bench-{name}", "1", tm.kind
        self.model, self.feature_names, self.cat_features = tm.model, tm.feature_names, tm.cat_features
        self._tm = tm

    def predict(self, frame):
        return self._tm.predict(frame)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--train-users", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO_ROOT / "growth_pipeline_tests"))
    from warehouse_builder import load_days

    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        root = Path(tmp)
        start, days = date(2026, 1, 1), 120
        base = load_customers(REPO_ROOT / "customers.yaml").get("powerplay")
        customer = customer_like(
            base,
            "bench",
            root / "src",
            conversion={"enabled": False},
            goal={"enabled": False},
            ltv={"horizon_days": 14},
        )
        paths = Paths(root / "home")
        with step("train churn + ltv on a small customer"):
            generate_demo(DemoSpec("powerplay", n_users=args.train_users, start=start, days=days, seed=3), root / "src")
            with open_warehouse(paths.warehouse("bench")) as con:
                load_days(con, customer, paths, start, start + timedelta(days=days - 1))
                act = read_customer_activity(con, customer)
            specs = label_specs(customer)
            champions = {
                n: Champion(n, train_model(act, specs[n], "bench", thread_count=args.threads, log=lambda _: None))
                for n in ("churn", "ltv")
            }
        day = act.last_day
        with step(f"population of {args.users:,} users"):
            seed_rows = build_features(act, day)
            seed_rows = population(seed_rows, specs["ltv"])  # active users: both models' populations
            rng = np.random.default_rng(0)
            frame = seed_rows.sample(n=args.users, with_replacement=True, seed=0)
            numeric = [c for c, t in frame.schema.items() if t.is_numeric() and c not in ("identified",)]
            frame = frame.with_columns(
                [
                    (pl.col(c) * pl.Series(rng.uniform(0.9, 1.1, frame.height))).cast(frame.schema[c])
                    if frame.schema[c].is_float()
                    else pl.col(c)
                    for c in numeric
                ]
            ).with_columns(pl.Series("user_key", [f"u{i}" for i in range(frame.height)]))
        print(f"scoring {frame.height:,} users, {len(champions['churn'].feature_names)} features")
        per_model = []
        with step("total: score + reasons + write + export"):
            for name in ("churn", "ltv"):
                with step(f"  {name}: probability/value, percentile, band, reasons"):
                    per_model.append(
                        scoring.score_model(
                            name, champions[name], frame, specs[name], day, labels=act.labels, thread_count=args.threads
                        )
                    )
            with step("  revenue at risk (combine)"):
                scores = scoring.combine(per_model)
            with step("  write marts.user_scores (DuckDB)"):
                with open_warehouse(paths.warehouse("bench")) as con:
                    scoring.store_scores(con, scores, day)
            with step("  export Parquet + CSV (atomic)"):
                scoring.export_scores(scores, paths.exports("bench"), day)
        print(f"\n{scores.height:,} score rows for {frame.height:,} users and 2 models")
        total = next(s for n, s, _ in RESULTS if n.startswith("total"))
        peak = max(p for n, _, p in RESULTS if n.startswith("  "))  # nested steps reset the high-water mark
        print(f"peak RSS while scoring: {peak:.2f} GiB")
        print(
            f"target: scoring {args.users:,} users with reasons under 120 s: {total:.1f} s "
            f"({'met' if total < 120 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
