"""The Definitions match the checked-in snapshot (growth_pipeline_tests/snapshots/definitions.txt): a change to
an asset's group, partitions, upstream assets or checks, or to a job, schedule or sensor, is a reviewed diff."""

from __future__ import annotations

import difflib

from growth_pipeline_tests.definitions_snapshot import SNAPSHOT, render


def test_definitions_match_the_snapshot():
    got, want = render(), SNAPSHOT.read_text()
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "snapshot", "definitions"))
    assert got == want, (
        f"the Definitions changed:\n{diff}\nIf this is intended, rewrite the snapshot and commit it with the change:\n"
        "  python3 -m uv run --locked python -m growth_pipeline_tests.definitions_snapshot --write"
    )
