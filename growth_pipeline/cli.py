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
# In dependency order: (partitioning, assets). Day stages run as one run over the date range.
STAGES = [
    ("day", ["landed_exports", "raw_events"]),
    ("customer", ["identities", "event_catalog"]),
    ("day", ["user_daily"]),
    ("customer", ["user_features", *MODEL_ASSETS]),
]
ALL_ASSETS = [a for _, assets in STAGES for a in assets]


def prepare_dagster_home(paths: Paths) -> Path:
    """Point DAGSTER_HOME at GROWTH_HOME/dagster holding the repository's dagster.yaml (Dagster reads it only
    from DAGSTER_HOME)."""
    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    src = REPO_ROOT / "dagster.yaml"
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


def materialize_range(instance, customer: str, start: date, end: date, select: list[str] | None = None) -> bool:
    """Materialize the selected assets of one customer for days start..end (inclusive), stage by stage in
    dependency order: each day stage is one run over the whole range, each customer stage one run. Returns
    True when every run succeeded."""
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from growth_pipeline.definitions import defs

    assets = list(defs.assets)
    wanted = select or ALL_ASSETS
    unknown = sorted(set(wanted) - set(ALL_ASSETS))
    if unknown:
        raise SystemExit(f"unknown asset(s): {', '.join(unknown)}; choose from {', '.join(ALL_ASSETS)}")
    tags = {"growth/customer": customer}
    for shape, stage in STAGES:
        selected = [a for a in stage if a in wanted]
        if not selected:
            continue
        t0 = time.perf_counter()
        if shape == "day":
            run_tags = {**tags, ASSET_PARTITION_RANGE_START_TAG: f"{customer}|{start}",
                        ASSET_PARTITION_RANGE_END_TAG: f"{customer}|{end}"}
            result = dg.materialize(assets, selection=selected, instance=instance, resources=defs.resources,
                                    raise_on_error=False, tags=run_tags)
            what = f"{customer} {start}..{end}"
        else:
            result = dg.materialize(assets, selection=selected, instance=instance, resources=defs.resources,
                                    partition_key=customer, raise_on_error=False, tags=tags)
            what = customer
        refused = gate_refusals(result)
        ok = result.success or bool(refused) and refused == failed_steps(result)
        status = "succeeded" if result.success else (
            f"done; refused by the model gate: {', '.join(sorted(refused))}" if ok else "FAILED")
        print(f"{what}: {', '.join(selected)} {status} in {time.perf_counter() - t0:.1f} s (run {result.run_id})",
              flush=True)
        if not ok:
            return False
    return True


def failed_steps(result) -> set[str]:
    return {e.step_key for e in result.all_events if e.is_step_failure}


def gate_refusals(result) -> set[str]:
    """Model steps that failed only because their blocking beats_baselines check refused the new version: the
    champion/challenger gate doing its job, not an error of the run."""
    return {e.step_key for e in result.all_events if e.is_step_failure and e.step_key.endswith("_model")
            and e.event_specific_data.error.cls_name == "DagsterAssetCheckFailedError"}


def cmd_generate_demo(args) -> int:
    from growth_pipeline.lib.demo_data import DemoSpec, generate_demo

    paths = Paths()
    for customer in args.customers:
        t0 = time.perf_counter()
        spec = DemoSpec(customer=customer, n_users=args.users or DEMO_USERS[customer], start=args.start,
                        days=args.days, seed=args.seed)
        summary = generate_demo(spec, paths.demo_dir / customer)
        print(f"{customer}: {summary.events:,} events of {summary.users:,} users over {summary.days} days "
              f"in {summary.files} files -> {summary.out_dir} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_materialize(args) -> int:
    paths = Paths()
    registry = load_customers()
    registry.get(args.customer)  # a clear error for an unknown customer
    instance = _instance(paths)
    register_customers(instance, registry.ids)
    select = [s.strip() for s in args.select.split(",")] if args.select else None
    return 0 if materialize_range(instance, args.customer, args.start, args.end, select) else 1


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
    print(f"demo {'done' if ok else 'FAILED'} in {time.perf_counter() - t0:.0f} s. State in {paths.home}.\n"
          f"See it in the Dagster UI: growth-pipeline ui   (then open http://127.0.0.1:3000)")
    return 0 if ok else 1


def cmd_ui(args) -> int:
    paths = Paths()
    prepare_dagster_home(paths)
    cmd = ["dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    print(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']} {' '.join(cmd)}")
    return subprocess.call(cmd, cwd=REPO_ROOT)


def cmd_mlflow_ui(args) -> int:
    from growth_pipeline.lib.tracking import tracking_uri

    uri = tracking_uri(Paths())
    cmd = ["mlflow", "ui", "--backend-store-uri", uri, "--host", args.host, "--port", str(args.port)]
    print(" ".join(cmd))
    return subprocess.call(cmd, cwd=REPO_ROOT)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


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
    demo_args(sub.add_parser("generate-demo", help="write the demo customers' Mixpanel exports"))
    m = sub.add_parser("materialize", help="materialize one customer's partitions for a date range")
    m.add_argument("--customer", required=True)
    m.add_argument("--start", type=_date, required=True)
    m.add_argument("--end", type=_date, required=True)
    m.add_argument("--select", help=f"comma-separated assets (default: all of {', '.join(ALL_ASSETS)})")
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
    handler = {"demo": cmd_demo, "generate-demo": cmd_generate_demo, "materialize": cmd_materialize,
               "ui": cmd_ui, "mlflow-ui": cmd_mlflow_ui}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
