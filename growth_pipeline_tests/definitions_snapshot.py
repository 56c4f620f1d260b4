"""A readable snapshot of the Dagster Definitions: every asset (group, partitions, kinds, upstream assets, checks),
job (its assets), schedule and sensor. ``test_definitions_snapshot.py`` compares it with the checked-in
``snapshots/definitions.txt``, so a change to the pipeline's shape shows up in review as a diff of that file.

After an intended change, write the new snapshot and commit it with the change:

    python3 -m uv run --locked python -m growth_pipeline_tests.definitions_snapshot --write
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"


def _partitions(pd) -> str:
    if pd is None:
        return "none"
    import dagster as dg

    if isinstance(pd, dg.MultiPartitionsDefinition):
        return " x ".join(f"{d.name}:{_partitions(d.partitions_def)}" for d in pd.partitions_defs)
    if isinstance(pd, dg.DynamicPartitionsDefinition):
        return f"dynamic({pd.name})"
    if isinstance(pd, dg.TimeWindowPartitionsDefinition):
        return f"time({pd.cron_schedule}, {pd.timezone})"
    return type(pd).__name__


def render() -> str:
    """The snapshot text of ``growth_pipeline.definitions.defs``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from growth_pipeline.definitions import defs

        graph = defs.resolve_asset_graph()
        checks: dict[str, list[str]] = {}
        for ck in graph.asset_check_keys:
            spec = graph.get_check_spec(ck)
            checks.setdefault(ck.asset_key.to_user_string(), []).append(
                f"{ck.name}{' (blocking)' if spec.blocking else ''}"
            )
        lines = ["# assets: key  [group]  partitions  kinds  <- upstream  checks"]
        for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
            key = spec.key.to_user_string()
            ups = ", ".join(sorted(d.asset_key.to_user_string() for d in spec.deps)) or "-"
            kinds = ",".join(sorted(spec.kinds)) or "-"
            key_checks = ",".join(sorted(checks.get(key, []))) or "-"
            lines.append(
                f"{key}  [{spec.group_name}]  {_partitions(spec.partitions_def)}  kinds={kinds}  <- {ups}  "
                f"checks={key_checks}"
            )
        lines.append("")
        lines.append("# jobs: name: assets")
        for job in sorted(defs.jobs or [], key=lambda j: j.name):
            keys = sorted(k.to_user_string() for k in job.selection.resolve(graph))
            lines.append(f"{job.name}: {', '.join(keys)}")
        lines.append("")
        lines.append("# schedules: name: cron (timezone) -> job")
        for s in sorted(defs.schedules or [], key=lambda s: s.name):
            lines.append(f"{s.name}: {s.cron_schedule} ({s.execution_timezone or 'UTC'}) -> {s.job_name}")
        lines.append("")
        lines.append("# sensors: name: kind, every N s, default status")
        for s in sorted(defs.sensors or [], key=lambda s: s.name):
            lines.append(
                f"{s.name}: {type(s).__name__}, every {s.minimum_interval_seconds} s, {s.default_status.value.lower()}"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(render())
        print(f"wrote {SNAPSHOT}")
    else:
        sys.stdout.write(render())
