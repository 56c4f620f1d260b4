"""What concept drift costs the old champion, estimated with the demo's truth (docs/demo.md, "Drift scenarios").

Generates powerplay (300 days from 2026-01-01, seed 7) without and with ``--outcome-change 2026-09-01:HAZARD:EVENT:
FACTOR`` and prints, for as-of dates around the change, the realised 14-day churn ROC-AUC of the old relationship
(the pre-change truth: with / without the hidden engaged-or-fading state) on users active in the last 28 days, in
the world without the change, with it, and of the true (post-change) relationship::

    python3 -m uv run --locked python benchmarks/outcome_change.py 8000 "Task Created" 5
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from sklearn.metrics import roc_auc_score

from growth_pipeline.lib.demo.generator import generate_demo
from growth_pipeline.lib.demo.spec import DemoSpec, OutcomeChange
from growth_pipeline.lib.demo.truth import true_outcome_probability

CHANGE, HORIZON = date(2026, 9, 1), 14
AS_OF = (date(2026, 8, 15), date(2026, 9, 1), date(2026, 9, 15), date(2026, 10, 1), date(2026, 10, 13))


def aucs(truth: pl.DataFrame, as_of: date, relationship: pl.DataFrame) -> tuple[dict[str, float], int, float]:
    """AUC (oracle / traits only) of ``relationship``'s churn probabilities against what happened in ``truth``."""
    pop = truth.filter(
        (pl.col("signup_date") <= as_of)
        & (pl.col("churn_date").is_null() | (pl.col("churn_date") > as_of - timedelta(days=27)))
    )
    y = (pop["churn_date"].is_not_null() & (pop["churn_date"] <= as_of + timedelta(days=HORIZON))).to_numpy()
    out = {}
    for who, hidden in (("oracle", True), ("traits", False)):
        p = true_outcome_probability(relationship, "churn", as_of, HORIZON, hidden_state=hidden)
        s = pop.select("user_id").join(p, on="user_id", how="left", maintain_order="left")["probability"]
        out[who] = roc_auc_score(y, s.fill_null(1.0).to_numpy())  # churned before as_of: certain
    return out, len(y), float(y.mean())


def main(users: int, event: str, factor: float, hazard: str = "churn") -> None:
    root = Path(tempfile.gettempdir()) / "outcome_change"
    kw = dict(customer="powerplay", n_users=users, start=date(2026, 1, 1), days=300, seed=7)
    t0 = time.perf_counter()
    worlds = {}
    for name, oc in (("base", None), ("changed", OutcomeChange(CHANGE, hazard, event, factor))):
        out = root / f"{name}_{users}_{event.replace(' ', '_')}_{factor}_{hazard}"
        if not (out / "truth.parquet").exists():
            generate_demo(DemoSpec(**kw, outcome_change=oc), out)
        worlds[name] = pl.read_parquet(out / "truth.parquet")
    changed = worlds["changed"]
    old = changed.drop([c for c in changed.columns if c.endswith("_after_change")])
    print(f"{time.perf_counter() - t0:.0f} s; users in the change: {changed['in_outcome_change'].mean():.2f}")
    print("as of | no change (oracle/traits) | changed, old relationship | changed, true relationship")
    for as_of in AS_OF:
        b, n_b, r_b = aucs(worlds["base"], as_of, worlds["base"])
        c_old, n_c, r_c = aucs(changed, as_of, old)
        c_new, _, _ = aucs(changed, as_of, changed)
        print(
            f"{as_of} | {b['oracle']:.3f}/{b['traits']:.3f} (n {n_b}, churn {r_b:.2f}) | "
            f"{c_old['oracle']:.3f}/{c_old['traits']:.3f} (n {n_c}, churn {r_c:.2f}) | "
            f"{c_new['oracle']:.3f}/{c_new['traits']:.3f}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), *sys.argv[4:5])
