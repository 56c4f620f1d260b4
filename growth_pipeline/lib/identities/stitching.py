"""Identity resolution: every anonymous distinct_id and device id mapped to its canonical user.

Both of Mixpanel's schemes are followed, so one person's events before and after sign-up count as one user:

- simplified ID merge: an anonymous user's distinct_id is ``$device:<device_id>``; the first event carrying
  both ``$device_id`` and ``$user_id`` merges the device into that user (a device later used by someone
  else stays with its first user, as Mixpanel does);
- the original API: ``$identify`` (``$anon_distinct_id`` -> ``$identified_id``; an anonymous id is merged
  once), ``$create_alias`` (``alias`` <-> ``distinct_id``) and ``$merge`` (every id of ``$distinct_ids``).

The canonical user of a cluster is its earliest-seen identified id (a real user id), or, for people who
never signed up, an id the app chose over a bare ``$device:`` id, else the earliest-seen one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb
import pyarrow as pa

from growth_pipeline.lib.warehouse.sql import fetch, fetch_one, run_sql, write_relations

# One edge as produced by sql/identity_edges.sql.
Edge = tuple[str, str, str | None, datetime, datetime, bool]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent.setdefault(x, x)
        root = x
        while parent != root:
            root, parent = parent, self.parent[parent]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def resolve(edges: Iterable[Edge]) -> list[tuple]:
    """Rows of core.identities (id, id_type, user_key, is_identified, resolved_by, first_seen, last_seen),
    from edges ordered by first time."""
    uf = _UnionFind()
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    identified: set[str] = set()
    joined_by: dict[str, str] = {}
    device_owner: dict[str, str] = {}
    anon_merged: set[str] = set()
    weak_device: list[tuple[str, str]] = []

    def seen(x: str, t0: datetime, t1: datetime) -> None:
        uf.find(x)
        if x not in first or t0 < first[x]:
            first[x] = t0
        if x not in last or t1 > last[x]:
            last[x] = t1

    def link(a: str, b: str, how: str) -> None:
        joined_by.setdefault(a, how)
        joined_by.setdefault(b, how)
        uf.union(a, b)

    for kind, a, b, t0, t1, ident in edges:
        if a is None:
            continue
        seen(a, t0, t1)
        if kind == "seen":
            if ident:
                identified.add(a)
            continue
        if b is None:
            continue
        seen(b, t0, t1)
        if kind == "device":
            if not ident:  # an event with a device id but no $user_id: used only for devices with no user
                weak_device.append((a, b))
            elif a not in device_owner:  # the first user the device merged into keeps it
                device_owner[a] = b
                identified.add(b)
                link(a, b, "simplified")
        elif kind == "identify":
            identified.add(b)
            if a not in anon_merged:
                anon_merged.add(a)
                link(a, b, "identify")
        elif kind == "alias":
            identified.add(a)
            link(a, b, "alias")
        elif kind == "merge":
            identified.add(b)
            link(a, b, "merge")
    for device, other in weak_device:
        if device not in device_owner:
            device_owner[device] = other
            link(device, other, "simplified")

    members: dict[str, list[str]] = {}
    for x in uf.parent:
        members.setdefault(uf.find(x), []).append(x)
    rows = []
    for ids in members.values():
        known = [x for x in ids if x in identified]
        # a real user id first; then an id the app chose over a bare device id; then the earliest
        key = min(ids, key=lambda x: (x not in identified, x.startswith("$device:"), first[x], x))
        for x in sorted(ids):
            rows.append(
                (
                    x,
                    "device_id" if x.startswith("$device:") else "distinct_id",
                    key,
                    bool(known),
                    "self" if x == key else joined_by.get(x, "simplified"),
                    first.get(x),
                    last.get(x),
                )
            )
    return rows


def ensure_identities_table(con: duckdb.DuckDBPyConnection) -> None:
    run_sql(con, "identities_schema")


def build_identities(con: duckdb.DuckDBPyConnection) -> dict:
    """Rebuild core.identities from raw.events; returns counts for the Dagster UI."""
    edges = fetch(con, "identity_edges")
    rows = resolve(edges)
    cols = list(zip(*rows, strict=False)) if rows else [[]] * 7
    resolved = pa.table(
        {
            "id": pa.array(cols[0], pa.string()),
            "id_type": pa.array(cols[1], pa.string()),
            "user_key": pa.array(cols[2], pa.string()),
            "is_identified": pa.array(cols[3], pa.bool_()),
            "resolved_by": pa.array(cols[4], pa.string()),
            "first_seen": pa.array(cols[5], pa.timestamp("us")),
            "last_seen": pa.array(cols[6], pa.timestamp("us")),
        }
    )
    write_relations(con, "identities_replace", {"resolved": resolved}, schema="identities_schema")
    stats = fetch_one(con, "identities_summary")
    by = dict(fetch(con, "identities_resolved_by"))
    return {"ids": stats[0], "users": stats[1], "identified_users": stats[2], "ids_merged": stats[3], "resolved_by": by}
