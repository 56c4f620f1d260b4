"""Realistic Mixpanel raw-export data for two demo customers, with the hidden truth written next to it.

Pure Python + numpy + polars (no Dagster). One call writes a customer's raw export files, ``truth.parquet``
(one row per signed-up user: observable attributes, latent traits, the exact daily parameters and the realised
outcome times) and ``truth.json`` (generator parameters and formulas)::

    summary = generate_demo(DemoSpec("powerplay", n_users=3000, start=date(2024, 1, 1), days=180), out_dir)

The steps, one module each: the customers' apps (apps.py) and population (population.py), the hidden daily
process (simulate.py), the JSON lines and their dirt (records.py), the day files (writer.py) and the truth files
(truth.py). Four independent random streams (profiles, simulation, formatting, behaviour change) keep the truth
independent of formatting and of a behaviour change. An outcome change (concept drift) only changes hazards from
its start day on, and draws nothing, so the files before that day are byte-identical with or without it.

Determinism: one spec + seed gives byte-identical files (gzip mtime 0, no set/dict-order randomness). Re-running
into the same directory first deletes this layout's previous export files (only those), then rewrites.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from growth_pipeline.lib.demo.apps import CustomerApp, customer_app
from growth_pipeline.lib.demo.population import check_vocabularies, parameters, profiles
from growth_pipeline.lib.demo.records import RecordFormatter
from growth_pipeline.lib.demo.simulate import Simulation, day_grid
from growth_pipeline.lib.demo.spec import ANON_VISITOR_SHARE, DEMO_TIMEZONES, OUTCOME_HAZARDS, DemoSpec, DemoSummary
from growth_pipeline.lib.demo.truth import truth_frame, truth_meta
from growth_pipeline.lib.demo.writer import DayFileWriter, clean_layout


def _check_spec(spec: DemoSpec, app: CustomerApp) -> None:
    if spec.n_users < 1 or spec.days < 1:
        raise ValueError("n_users and days must be >= 1")
    bc = spec.behaviour_change
    if bc is not None:
        allowed = sorted(
            set(app.activity) | {e for names, _ in app.start_events.values() for e in names} | set(app.anon_events[0])
        )
        if bc.event not in allowed:
            raise ValueError(
                f"behaviour_change.event must be one of the activity/session events {allowed}, got {bc.event!r}"
            )
        if bc.factor < 0:
            raise ValueError("behaviour_change.factor must be >= 0")
    oc = spec.outcome_change
    if oc is not None:
        if oc.hazard not in OUTCOME_HAZARDS:
            raise ValueError(f"outcome_change.hazard must be one of {sorted(OUTCOME_HAZARDS)}, got {oc.hazard!r}")
        usable = [a for a in app.activity if a != app.goal_event]  # the goal event is only repeated after the goal
        if oc.event not in usable:
            raise ValueError(f"outcome_change.event must be one of the activity events {usable}, got {oc.event!r}")
        if oc.factor < 0:
            raise ValueError("outcome_change.factor must be >= 0")


def generate_demo(spec: DemoSpec, out_dir: Path) -> DemoSummary:
    """Write the customer's raw export files plus truth.parquet / truth.json into out_dir."""
    t_start = time.perf_counter()
    app = customer_app(spec.customer)
    _check_spec(spec, app)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_layout(spec, out_dir)
    tz = ZoneInfo(DEMO_TIMEZONES[spec.customer])
    n, days = spec.n_users, spec.days
    n_anon = int(round(ANON_VISITOR_SHARE * n))

    ss = np.random.SeedSequence([spec.seed, 0 if spec.customer == "powerplay" else 1])
    rng_prof, rng_sim, rng_fmt, rng_bc = (np.random.default_rng(s) for s in ss.spawn(4))

    p = profiles(app, rng_prof, n, n_anon, days)
    par = parameters(app, p, n)
    midnights, offsets = day_grid(spec.start, days, tz)
    sim = Simulation(app, spec, p, par, midnights, rng_prof=rng_prof, rng_sim=rng_sim, rng_bc=rng_bc)
    check_vocabularies()
    formatter = RecordFormatter(app, spec, p, midnights, offsets, rng_fmt)
    with DayFileWriter(spec, out_dir, rng_fmt) as writer:
        for d in range(days):
            writer.write_day(d, formatter.format_day(d, sim.simulate_day(d)))

    truth = truth_frame(app, spec, p, par, sim)
    truth.write_parquet(out_dir / "truth.parquet", compression="zstd", statistics=False)
    summary = DemoSummary(
        customer=spec.customer,
        out_dir=out_dir,
        days=days,
        files=writer.files,
        events=formatter.events,
        users=n,
        duplicates=formatter.duplicates,
        malformed={**formatter.malformed, "terminated_early": writer.terminated_early},
        late_duplicates=formatter.late_duplicates,
        anonymous_visitors=n_anon,
        seconds=round(time.perf_counter() - t_start, 3),
    )
    meta = truth_meta(app, spec, summary, truth)
    (out_dir / "truth.json").write_text(json.dumps(meta, indent=2, sort_keys=False, default=str) + "\n")
    return summary
