"""Model quality on the demo data: each customer's latest run per model, the candidate serving and every
candidate's test figure (90% bootstrap interval) against the trivial baselines and the best achievable (the
generator's hidden truth, which the demo customers' ``models.reference_scores`` in customers.yaml hands to training:
see lib/demo/oracle.py for the three oracle references, lib/models/reference_scores.py for the hook, and
benchmarks/behaviour_bound.py for what behaviour alone can reveal).

    .venv/bin/python benchmarks/model_quality.py      # after ./dev demo
"""

from __future__ import annotations

import math

import mlflow

from growth_pipeline.config import Paths
from growth_pipeline.lib.models.mlflow_store import tracking_uri

METRIC = {"classifier": "roc_auc", "ltv": "normalized_gini"}
CANDIDATES = ("catboost", "logistic", "linear", "btyd")
REFERENCES = ("rule", "historical_average", "oracle_observed", "oracle_traits", "oracle")


def _num(r, key: str) -> float:
    v = r.get(f"metrics.{key}")
    return float("nan") if v is None else float(v)


def _cell(r, who: str, metric: str) -> str:
    v = _num(r, f"{who}.{metric}")
    if math.isnan(v):
        return ""
    lo, hi = _num(r, f"{who}.{metric}_lo90"), _num(r, f"{who}.{metric}_hi90")
    return f"{v:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if not math.isnan(lo) else "")


def main() -> None:
    mlflow.set_tracking_uri(tracking_uri(Paths()))
    runs = mlflow.search_runs(search_all_experiments=True, order_by=["attributes.start_time DESC"])
    if runs.empty:
        raise SystemExit("no MLflow runs: run ./dev demo first")
    latest = runs.drop_duplicates(subset=["tags.customer", "tags.model"])
    print("| customer | model | serving | decision | " + " | ".join(CANDIDATES) + " | " + " | ".join(REFERENCES) + " |")
    print("|---|---|---|---|" + "---:|" * (len(CANDIDATES) + len(REFERENCES)))
    for _, r in latest.sort_values(["tags.customer", "tags.model"]).iterrows():
        kind = r.get("tags.kind") or ("ltv" if r["tags.model"] == "ltv" else "classifier")
        metric = METRIC[kind]
        cells = [_cell(r, w, metric) for w in (*CANDIDATES, *REFERENCES)]
        print(
            f"| {r['tags.customer']} | {r['tags.model']} | {r.get('tags.family') or ''} | "
            f"{r.get('tags.promotion.decision') or ''} | " + " | ".join(cells) + " |"
        )


if __name__ == "__main__":
    main()
