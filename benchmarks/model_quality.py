"""Model quality on the demo data: each customer's latest run per model, its primary metric against the
baselines and against the best achievable (the generator's hidden truth: see lib/oracle.py for the three
oracle references, and benchmarks/behaviour_bound.py for what behaviour alone can reveal).

    .venv/bin/python benchmarks/model_quality.py      # after ./dev demo
"""

from __future__ import annotations

import mlflow

from growth_pipeline.config import Paths
from growth_pipeline.lib.tracking import tracking_uri

COLUMNS = {
    "classifier": ("roc_auc", ["model", "logistic", "rule", "oracle_observed", "oracle_traits", "oracle"]),
    "ltv": ("normalized_gini", ["model", "linear", "historical_average", "rule", "oracle_observed", "oracle_traits",
                                "oracle"]),
}


def main() -> None:
    mlflow.set_tracking_uri(tracking_uri(Paths()))
    runs = mlflow.search_runs(search_all_experiments=True, order_by=["attributes.start_time DESC"])
    if runs.empty:
        raise SystemExit("no MLflow runs: run ./dev demo first")
    latest = runs.drop_duplicates(subset=["tags.customer", "tags.model"])
    print("| customer | model | metric | catboost | baselines | oracle (traits, state from silence) | "
          "oracle (traits + churned) | oracle (traits + hidden state) | gap to traits oracle | extra |")
    print("|---|---|---|---:|---|---:|---:|---:|---:|---|")
    for _, r in latest.sort_values(["tags.customer", "tags.model"]).iterrows():
        kind = r["tags.kind"]
        metric, who = COLUMNS[kind]
        v = {w: r.get(f"metrics.{w}.{metric}", float("nan")) for w in who}
        v = {w: float("nan") if x is None else float(x) for w, x in v.items()}
        base = ", ".join(f"{w} {v[w]:.3f}" for w in who[1:-3] if v[w] == v[w])
        extra = (f"total ratio {r['metrics.model.total_ratio']:.2f}, rmse {r['metrics.model.rmse']:.0f} vs "
                 f"hist. avg {r['metrics.historical_average.rmse']:.0f}" if kind == "ltv"
                 else f"ECE {r['metrics.model.ece']:.3f}, top-decile lift {r['metrics.model.top_decile_lift']:.2f}")
        print(f"| {r['tags.customer']} | {r['tags.model']} | {metric} | {v['model']:.3f} | {base} | "
              f"{v['oracle_observed']:.3f} | {v['oracle_traits']:.3f} | {v['oracle']:.3f} | "
              f"{v['oracle_traits'] - v['model']:+.3f} | {extra} |")


if __name__ == "__main__":
    main()
