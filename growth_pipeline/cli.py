"""The ``growth-pipeline`` command: the demo, demo data, and materializing partitions from a terminal.

Runs execute in this process against the Dagster instance in ``GROWTH_HOME/dagster`` (configured by the
repository's dagster.yaml), so ``dagster dev`` shows them afterwards with all their metadata. A date range of
one customer is one run, not one run per day: start-up is paid once.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import TextIO

from growth_pipeline import cli_output
from growth_pipeline.config import FIRST_DAY_ENV, REPO_ROOT, ConfigError, Paths, load_customers
from growth_pipeline.dagster_runs import (
    SCORE_DAYS,
    dagster_instance,
    failed_steps,
    gate_refusals,
    init_home,
    materialize_range,
    run_tags,
)
from growth_pipeline.lib.files import atomic_write_bytes
from growth_pipeline.pipeline_shape import (
    ALL_ASSETS,
    CUSTOMER_TAG,
)

DEMO_START = date(2026, 1, 1)
DEMO_DAYS = 300
DEMO_USERS = {"powerplay": 8000, "foodie": 12000}


def cmd_generate_demo(args, out: TextIO | None = None) -> int:
    from growth_pipeline.lib.demo.generator import generate_demo
    from growth_pipeline.lib.demo.spec import DemoSpec

    out = out or sys.stdout
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
            outcome_change=getattr(args, "outcome_change", None),
        )
        summary = generate_demo(spec, paths.demo_dir / customer)
        out.write(
            f"{customer:<10} {'demo data':<10} {summary.events:,} events of {summary.users:,} users over "
            f"{summary.days} days in {summary.files} files -> {summary.out_dir} ({time.perf_counter() - t0:.1f} s)\n"
        )
        out.flush()
    return 0


def range_error(customer: str, start: date, end: date) -> str | None:
    """Why Dagster would refuse the day partitions start..end, in one line naming what to set; None if it would
    not. (Dagster's own words: 'CheckError: Invariant failed ... before the partitions definition start time'.)"""
    with warnings.catch_warnings():  # Dagster's BetaWarnings on import: nothing a user can act on
        warnings.simplefilter("ignore")
        from growth_pipeline.defs.partitions import FIRST_DAY, day_partitions

    if start < FIRST_DAY:
        return (
            f"--start {start} is before the first day partition {FIRST_DAY}: set `history_start: {start}` for "
            f"customer {customer!r} in customers.yaml (or {FIRST_DAY_ENV}={start}) and run again"
        )
    last = day_partitions.get_last_partition_key()
    if last is not None and end > date.fromisoformat(last):
        return f"--end {end} is after the last day partition {last}: a day becomes a partition once it is over (UTC)"
    return None


@contextmanager
def _terminal(args, paths: Paths) -> Iterator[TextIO]:
    """The CLI's lines on the terminal; unless ``--verbose``, Dagster's log, warnings and the output of
    subprocesses in a log file under GROWTH_HOME (its path printed first; main() keeps stderr there until exit)."""
    if args.verbose:
        with cli_output.verbose_terminal() as out:
            yield out
        return
    log = args.log_path = cli_output.log_file(paths, args.command)
    with cli_output.quiet_terminal(log) as out:
        out.write(f"full log: {log}\n")
        yield out


def cmd_materialize(args) -> int:
    paths = Paths()
    registry = load_customers()
    registry.get(args.customer)  # a clear error for an unknown customer
    problem = range_error(args.customer, args.start, args.end)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    select = [s.strip() for s in args.select.split(",")] if args.select else None
    score_days = (
        args.score_days
        if args.score_days is not None
        else ((args.end - args.start).days + 1 if (args.end - args.start).days < 31 else SCORE_DAYS)
    )
    with _terminal(args, paths) as out:
        instance = dagster_instance(paths, registry, out)
        ok = materialize_range(
            instance,
            args.customer,
            args.start,
            args.end,
            select,
            score_days=score_days,
            train=not args.no_train,
            out=out,
        )
    return 0 if ok else 1


def cmd_retrain_on_drift(args) -> int:
    """Evaluate the retrain_on_drift sensor once, in this process, and run what it requests (what the Dagster
    daemon does every minute when `dagster dev` runs). Its cursor is kept under GROWTH_HOME/state; what was
    requested is recorded in GROWTH_HOME/state/retrain_requests.json, shared with the daemon's sensor, so a
    retrain is never requested twice for one shift."""
    load_customers()  # a wrong customers.yaml stops here, before Dagster is started
    import dagster as dg

    from growth_pipeline.definitions import defs
    from growth_pipeline.defs.automation import retrain_on_drift

    paths = Paths()
    instance = dagster_instance(paths)
    cursor_file = paths.state_dir / "retrain_on_drift.cursor"
    cursor = cursor_file.read_text() if cursor_file.exists() else None
    with dg.build_sensor_context(instance=instance, resources=defs.resources, cursor=cursor) as ctx:
        result = retrain_on_drift(ctx)
    atomic_write_bytes(cursor_file, (result.cursor or "").encode())  # a killed command leaves the old cursor
    if not result.run_requests:
        print(
            "retrain-on-drift: no model needs retraining (or it waits for post-drift labels, was already "
            "requested for this shift, or its cooldown has not passed)"
        )
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
            tags={**run_tags(req.partition_key, trains=True), **req.tags},
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
    from growth_pipeline.run_summary import model_rows, report_path

    paths = Paths()
    t0 = time.perf_counter()
    registry = load_customers()
    end = args.start + timedelta(days=args.days - 1)
    for customer in args.customers:
        problem = range_error(registry.get(customer).id, args.start, end)
        if problem:
            print(problem, file=sys.stderr)
            return 2
    with _terminal(args, paths) as out:
        cmd_generate_demo(args, out)
        instance = dagster_instance(paths, registry, out)
        ok = True
        for customer in args.customers:
            ok &= materialize_range(instance, customer, args.start, end, out=out)
        rows = [r for c in args.customers for r in model_rows(registry.get(c), paths)]
        out.write(f"\ndemo {'done' if ok else 'FAILED'} in {time.perf_counter() - t0:.0f} s; state in {paths.home}\n\n")
        out.write(
            cli_output.table(
                [[r.customer, r.model, r.serving, r.test_metric, r.scores] for r in rows],
                ["customer", "model", "serving (MLflow champion)", "test metric [90% interval]", "scores published"],
            )
            + "\n\n"
        )
        for r in rows:
            if r.why_none:
                out.write(f"{r.customer}/{r.model}: {r.why_none}\n")
        for customer in args.customers:
            out.write(f"report {customer}: {report_path(registry.get(customer), paths)}\n")
        out.write(
            "\nDagster UI:      ./dev ui          (then open http://127.0.0.1:3000)\n"
            "MLflow UI:       ./dev mlflow-ui   (then open http://127.0.0.1:5000)\n"
            "customer portal: not built yet\n"
        )
    return 0 if ok else 1


def cmd_init(args) -> int:
    """Initialise GROWTH_HOME (what every other command does first, under the same lock) and say what it did."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # not its "Creating initial MLflow database tables"
    paths = Paths()
    done = init_home(paths)
    instance = done.instance
    print(f"GROWTH_HOME {paths.home}: Dagster instance in {paths.dagster_home} ({type(instance.run_storage).__name__})")
    print(
        f"customers: {len(load_customers().ids)} registered"
        + (f", new: {', '.join(done.new_customers)}" if done.new_customers else "")
    )
    if done.mlflow_created:
        print(f"MLflow store created in {paths.mlflow_dir}")
    for run in done.failed_runs:
        print(f"marked failed: run {run.run_id} of {run.tags.get(CUSTOMER_TAG, '?')} (its process is gone)")
    instance.dispose()
    return 0


def cmd_ui(args) -> int:
    paths = Paths()
    init_home(paths).instance.dispose()
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
    from growth_pipeline.lib.demo.spec import BehaviourChange

    try:
        day, event, factor = text.split(":")
        return BehaviourChange(date.fromisoformat(day), event, float(factor))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected DAY:EVENT:FACTOR, e.g. '2026-10-01:Task Created:0.5'; got {text!r}"
        ) from None


def _outcome_change(text: str):
    from growth_pipeline.lib.demo.spec import OUTCOME_HAZARDS, OutcomeChange

    try:
        day, hazard, event, factor = text.split(":")
        if hazard not in OUTCOME_HAZARDS:
            raise ValueError(hazard)
        return OutcomeChange(date.fromisoformat(day), hazard, event, float(factor))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected DAY:HAZARD:EVENT:FACTOR with HAZARD one of {', '.join(OUTCOME_HAZARDS)}, "
            f"e.g. '2026-09-01:churn:Task Created:6'; got {text!r}"
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

    def verbose_arg(sp):
        sp.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="show Dagster's log and library output on the terminal (default: in a file under GROWTH_HOME/logs)",
        )

    d = sub.add_parser("demo", help="generate the demo data and materialize every asset for it")
    demo_args(d)
    verbose_arg(d)
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
    g.add_argument(
        "--outcome-change",
        type=_outcome_change,
        default=None,
        metavar="DAY:HAZARD:EVENT:FACTOR",
        help="concept drift: from DAY on, the daily HAZARD (churn, conversion or goal) of the users who do EVENT "
        "often is multiplied by FACTOR, e.g. '2026-09-01:churn:Task Created:6' (heavy task users lose their "
        "protection against churn; the days before DAY stay byte-identical)",
    )
    m = sub.add_parser("materialize", help="materialize one customer's partitions for a date range")
    m.add_argument("--customer", required=True)
    m.add_argument("--start", type=_date, required=True)
    m.add_argument("--end", type=_date, required=True)
    m.add_argument("--select", help=f"comma-separated assets (default: all of {', '.join(ALL_ASSETS)})")
    verbose_arg(m)
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
    sub.add_parser(
        "init",
        help="initialise GROWTH_HOME (Dagster instance, customers, MLflow store); every command does it first",
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
        "init": cmd_init,
        "retrain-on-drift": cmd_retrain_on_drift,
        "ui": cmd_ui,
        "mlflow-ui": cmd_mlflow_ui,
    }[args.command]
    try:
        rc = handler(args)
    except ConfigError as exc:
        # customers.yaml (or GROWTH_FIRST_DAY) is wrong: the message names file, customer and field, one line a
        # problem; a traceback would add nothing the operator can act on
        print(exc, file=sys.stderr)
        return 2
    if getattr(args, "log_path", None):
        # What the interpreter prints on its way out (native libraries' reference-leak reports) goes to the log.
        cli_output.send_stderr_to(args.log_path)
    return rc


if __name__ == "__main__":
    sys.exit(main())
