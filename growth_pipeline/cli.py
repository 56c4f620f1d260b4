"""The ``growth-pipeline`` command: the demo, demo data, and materializing partitions from a terminal.

Runs execute in this process against the Dagster instance in ``GROWTH_HOME/dagster`` (configured by the
repository's dagster.yaml), so ``dagster dev`` shows them afterwards with all their metadata. A date range of
one customer is one run, not one run per day: start-up is paid once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from growth_pipeline.config import REPO_ROOT, Paths, load_customers

DEMO_START = date(2026, 1, 1)
DEMO_DAYS = 300
DEMO_USERS = {"powerplay": 8000, "foodie": 12000}

MODEL_ASSETS = ["churn_model", "conversion_model", "goal_model", "ltv_model"]
SCORE_DAYS = 15  # scored days at the end of a range: enough for the 14-day models' realised performance
# In dependency order: (partitioning, assets). Day stages run as one run over the date range; "score" stages
# over the last days of it (--score-days).
STAGES = [
    ("day", ["landed_exports", "raw_events"]),
    ("customer", ["identities", "event_catalog"]),
    ("day", ["user_daily"]),
    ("customer", ["user_features", *MODEL_ASSETS]),
    ("score", ["user_scores", "model_drift"]),
    ("customer", ["channels", "top_users", "channel_ltv", "cohort_retention", "campaign_lift", "customer_report"]),
]
ALL_ASSETS = [a for _, assets in STAGES for a in assets]


def prepare_dagster_home(paths: Paths) -> Path:
    """Point DAGSTER_HOME at GROWTH_HOME/dagster holding the repository's dagster.yaml (Dagster reads it only
    from DAGSTER_HOME). ``GROWTH_DAGSTER_YAML`` names another instance file to copy instead, e.g.
    ``deploy/postgres/dagster.yaml`` for an instance stored in PostgreSQL."""
    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    raw = os.environ.get("GROWTH_DAGSTER_YAML", "").strip()
    src = Path(raw).expanduser().resolve() if raw else REPO_ROOT / "dagster.yaml"
    if not src.is_file():
        raise SystemExit(f"GROWTH_DAGSTER_YAML: {src}: no such file")
    dst = home / "dagster.yaml"
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _instance(paths: Paths):
    import dagster as dg

    prepare_dagster_home(paths)
    return dg.DagsterInstance.get()


def register_customers(instance, customer_ids: list[str]) -> list[str]:
    from growth_pipeline.defs.partitions import customer_partitions

    known = set(instance.get_dynamic_partitions(customer_partitions.name))
    new = [c for c in customer_ids if c not in known]
    if new:
        instance.add_dynamic_partitions(customer_partitions.name, new)
    return new


def materialize_range(
    instance,
    customer: str,
    start: date,
    end: date,
    select: list[str] | None = None,
    score_days: int = SCORE_DAYS,
    train: bool = True,
) -> bool:
    """Materialize the selected assets of one customer for days start..end (inclusive), stage by stage in
    dependency order: each day stage is one run over the whole range, each customer stage one run, scoring and
    drift one run over the last ``score_days`` days. ``train=False`` leaves the models as they are (daily
    operation: the drift sensor decides when to retrain). Returns True when every run succeeded."""
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from growth_pipeline.definitions import defs

    assets = list(defs.assets)
    wanted = select or ALL_ASSETS
    unknown = sorted(set(wanted) - set(ALL_ASSETS))
    if unknown:
        raise SystemExit(f"unknown asset(s): {', '.join(unknown)}; choose from {', '.join(ALL_ASSETS)}")
    if not train:
        wanted = [a for a in wanted if a not in MODEL_ASSETS]
    if score_days <= 0:
        wanted = [a for a in wanted if a not in ("user_scores", "model_drift")]
    tags = {"growth/customer": customer}
    for shape, stage in STAGES:
        selected = [a for a in stage if a in wanted]
        if not selected:
            continue
        t0 = time.perf_counter()
        if shape in ("day", "score"):
            first = start if shape == "day" else max(start, end - timedelta(days=score_days - 1))
            run_tags = {
                **tags,
                ASSET_PARTITION_RANGE_START_TAG: f"{customer}|{first}",
                ASSET_PARTITION_RANGE_END_TAG: f"{customer}|{end}",
            }
            result = dg.materialize(
                assets,
                selection=selected,
                instance=instance,
                resources=defs.resources,
                raise_on_error=False,
                tags=run_tags,
            )
            what = f"{customer} {first}..{end}"
        else:
            result = dg.materialize(
                assets,
                selection=selected,
                instance=instance,
                resources=defs.resources,
                partition_key=customer,
                raise_on_error=False,
                tags=tags,
            )
            what = customer
        refused = gate_refusals(result)
        ok = result.success or bool(refused) and refused == failed_steps(result)
        status = (
            "succeeded"
            if result.success
            else (f"done; refused by the model gate: {', '.join(sorted(refused))}" if ok else "FAILED")
        )
        print(
            f"{what}: {', '.join(selected)} {status} in {time.perf_counter() - t0:.1f} s (run {result.run_id})",
            flush=True,
        )
        if not ok:
            return False
        if "model_drift" in selected:
            report_drift(result)
    return True


def report_drift(result) -> None:
    """Print what model_drift found on the last day of a run (the same table the Dagster UI shows)."""
    mats = result.asset_materializations_for_node("model_drift")
    if not mats:
        return
    retrain = mats[-1].metadata.get("retrain")
    asked = retrain.value if retrain is not None else {}
    for customer, models in asked.items():
        for model, reason in models.items():
            print(f"  drift: {customer}/{model} asks to be retrained: {reason}")
    if not asked:
        print("  drift: no model asks to be retrained")


def failed_steps(result) -> set[str]:
    return {e.step_key for e in result.all_events if e.is_step_failure}


def gate_refusals(result) -> set[str]:
    """Model steps that failed only because their blocking beats_baselines check refused the new version: the
    champion/challenger gate doing its job, not an error of the run."""
    return {
        e.step_key
        for e in result.all_events
        if e.is_step_failure
        and e.step_key.endswith("_model")
        and e.event_specific_data.error.cls_name == "DagsterAssetCheckFailedError"
    }


def cmd_generate_demo(args) -> int:
    from growth_pipeline.lib.demo.generator import DemoSpec, generate_demo

    paths = Paths()
    for customer in args.customers:
        t0 = time.perf_counter()
        spec = DemoSpec(
            customer=customer,
            n_users=args.users or DEMO_USERS[customer],
            start=args.start,
            days=args.days,
            seed=args.seed,
            behaviour_change=getattr(args, "behaviour_change", None),
        )
        summary = generate_demo(spec, paths.demo_dir / customer)
        print(
            f"{customer}: {summary.events:,} events of {summary.users:,} users over {summary.days} days "
            f"in {summary.files} files -> {summary.out_dir} ({time.perf_counter() - t0:.1f} s)"
        )
    return 0


def cmd_materialize(args) -> int:
    paths = Paths()
    registry = load_customers()
    registry.get(args.customer)  # a clear error for an unknown customer
    instance = _instance(paths)
    register_customers(instance, registry.ids)
    select = [s.strip() for s in args.select.split(",")] if args.select else None
    score_days = (
        args.score_days
        if args.score_days is not None
        else ((args.end - args.start).days + 1 if (args.end - args.start).days < 31 else SCORE_DAYS)
    )
    ok = materialize_range(
        instance, args.customer, args.start, args.end, select, score_days=score_days, train=not args.no_train
    )
    return 0 if ok else 1


def cmd_retrain_on_drift(args) -> int:
    """Evaluate the retrain_on_drift sensor once, in this process, and run what it requests (what the Dagster
    daemon does every minute when `dagster dev` runs). Its cursor is kept under GROWTH_HOME/state."""
    import dagster as dg

    from growth_pipeline.definitions import defs
    from growth_pipeline.defs.automation import retrain_on_drift

    paths = Paths()
    instance = _instance(paths)
    register_customers(instance, load_customers().ids)
    cursor_file = paths.state_dir / "retrain_on_drift.cursor"
    cursor = cursor_file.read_text() if cursor_file.exists() else None
    with dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=cursor) as ctx:
        result = retrain_on_drift(ctx)
    cursor_file.parent.mkdir(parents=True, exist_ok=True)
    cursor_file.write_text(result.cursor or "")
    if not result.run_requests:
        print("retrain-on-drift: no model needs retraining (or its cooldown has not passed)")
        return 0
    ok = True
    for req in result.run_requests:
        assets = [k.to_user_string() for k in req.asset_selection]
        print(f"retrain-on-drift: {req.partition_key}: {', '.join(assets)}: {req.tags['growth/retrain_reason']}")
        res = dg.materialize(
            list(defs.assets),
            selection=assets,
            instance=instance,
            resources=defs.resources,
            partition_key=req.partition_key,
            tags=req.tags,
            raise_on_error=False,
        )
        for asset in assets:
            mats = res.asset_materializations_for_node(asset)
            outcome = mats[0].metadata["outcome"].value if mats else "failed"
            decision = mats[0].metadata["decision"].value if mats else ""
            print(f"  {asset}: {outcome}: {decision}")
        ok &= res.success or bool(gate_refusals(res)) and gate_refusals(res) == failed_steps(res)
    return 0 if ok else 1


def cmd_demo(args) -> int:
    paths = Paths()
    t0 = time.perf_counter()
    cmd_generate_demo(args)
    registry = load_customers()
    instance = _instance(paths)
    register_customers(instance, registry.ids)
    end = args.start + timedelta(days=args.days - 1)
    ok = True
    for customer in args.customers:
        registry.get(customer)
        ok &= materialize_range(instance, customer, args.start, end)
    print(
        f"demo {'done' if ok else 'FAILED'} in {time.perf_counter() - t0:.0f} s. State in {paths.home}.\n"
        f"See it in the Dagster UI: growth-pipeline ui   (then open http://127.0.0.1:3000)"
    )
    return 0 if ok else 1


def cmd_ui(args) -> int:
    paths = Paths()
    prepare_dagster_home(paths)
    cmd = ["dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    print(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']} {' '.join(cmd)}")
    return subprocess.call(cmd, cwd=REPO_ROOT)


def cmd_mlflow_ui(args) -> int:
    from growth_pipeline.lib.models.mlflow_store import tracking_uri

    uri = tracking_uri(Paths())
    if uri.lower().startswith(("http://", "https://")):
        print(f"MLFLOW_TRACKING_URI is a tracking server ({uri}): open its own UI there")
        return 0
    cmd = ["mlflow", "ui", "--backend-store-uri", uri, "--host", args.host, "--port", str(args.port)]
    print(" ".join(cmd))
    return subprocess.call(cmd, cwd=REPO_ROOT)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _behaviour_change(text: str):
    from growth_pipeline.lib.demo.generator import BehaviourChange

    try:
        day, event, factor = text.split(":")
        return BehaviourChange(date.fromisoformat(day), event, float(factor))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected DAY:EVENT:FACTOR, e.g. '2026-10-01:Task Created:0.5'; got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="growth-pipeline", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def demo_args(sp):
        sp.add_argument("--customers", nargs="+", default=list(DEMO_USERS), choices=list(DEMO_USERS))
        sp.add_argument("--users", type=int, default=None, help="users per demo customer (default: per customer)")
        sp.add_argument("--start", type=_date, default=DEMO_START)
        sp.add_argument("--days", type=int, default=DEMO_DAYS)
        sp.add_argument("--seed", type=int, default=7)

    demo_args(sub.add_parser("demo", help="generate the demo data and materialize every asset for it"))
    g = sub.add_parser("generate-demo", help="write the demo customers' Mixpanel exports")
    demo_args(g)
    g.add_argument(
        "--behaviour-change",
        type=_behaviour_change,
        default=None,
        metavar="DAY:EVENT:FACTOR",
        help="from DAY on, the rate of EVENT is multiplied by FACTOR, e.g. '2026-10-01:Task Created:0.5' "
        "(the days before DAY stay byte-identical)",
    )
    m = sub.add_parser("materialize", help="materialize one customer's partitions for a date range")
    m.add_argument("--customer", required=True)
    m.add_argument("--start", type=_date, required=True)
    m.add_argument("--end", type=_date, required=True)
    m.add_argument("--select", help=f"comma-separated assets (default: all of {', '.join(ALL_ASSETS)})")
    m.add_argument(
        "--no-train",
        action="store_true",
        help="leave the models as they are (daily operation; retraining is the drift sensor's call)",
    )
    m.add_argument(
        "--score-days",
        type=int,
        default=None,
        help=f"score the last N days of the range (default: every day of a range under 31 days, "
        f"else the last {SCORE_DAYS})",
    )
    sub.add_parser("retrain-on-drift", help="evaluate the retrain_on_drift sensor once and run what it requests")
    ui = sub.add_parser("ui", help="start the Dagster UI (dagster dev) on this deployment's instance")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    mu = sub.add_parser("mlflow-ui", help="start the MLflow UI on this deployment's tracking store")
    mu.add_argument("--host", default="127.0.0.1")
    mu.add_argument("--port", type=int, default=5000)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "end", None) and args.end < args.start:
        print(f"--end {args.end} is before --start {args.start}", file=sys.stderr)
        return 2
    handler = {
        "demo": cmd_demo,
        "generate-demo": cmd_generate_demo,
        "materialize": cmd_materialize,
        "retrain-on-drift": cmd_retrain_on_drift,
        "ui": cmd_ui,
        "mlflow-ui": cmd_mlflow_ui,
    }[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
