"""Identity resolution (both Mixpanel ID-merge schemes: lib/identities/stitching.py), on a real DuckDB file."""

from growth_pipeline.lib.identities.stitching import build_identities
from growth_pipeline_tests.conftest import epoch, event
from growth_pipeline_tests.warehouse_builder import load_records


def user_of(con):
    return dict(con.execute("SELECT id, user_key FROM core.identities").fetchall())


def test_simplified_id_merge_maps_device_and_anonymous_events_to_the_user(con, tmp_path):
    t = epoch(2024, 3, 1, 8)
    load_records(
        con,
        tmp_path,
        [
            event("App Open", "$device:dev1", t, "1", __device_id="dev1"),
            event("Sign Up", "alice", t + 60, "2", __device_id="dev1", __user_id="alice"),
            event("Task Created", "alice", t + 120, "3", __user_id="alice", __device_id="dev1"),
            # the same phone later used by bob after a log-out: the device stays alice's (first merge wins)
            event("Sign Up", "bob", t + 600, "4", __device_id="dev1", __user_id="bob"),
            event("App Open", "$device:dev2", t, "5", __device_id="dev2"),  # never signs up
        ],
    )
    stats = build_identities(con)
    m = user_of(con)
    assert m["$device:dev1"] == "alice" and m["alice"] == "alice" and m["bob"] == "bob"
    assert m["$device:dev2"] == "$device:dev2"
    assert stats["users"] == 3 and stats["identified_users"] == 2
    n_users = con.execute(
        "SELECT count(DISTINCT i.user_key) FROM raw.events e JOIN core.identities i ON i.id = e.distinct_id"
    ).fetchall()[0][0]
    assert n_users == 3  # alice's anonymous and identified events count as one user


def test_original_api_identify_alias_and_merge(con, tmp_path):
    t = epoch(2024, 3, 1, 8)
    load_records(
        con,
        tmp_path,
        [
            event("Page View", "anon-1", t, "1"),
            event("$identify", "carol", t + 10, "2", __anon_distinct_id="anon-1", __identified_id="carol"),
            event("Page View", "anon-2", t, "3"),
            event("$create_alias", "anon-2", t + 20, "4", alias="dave"),
            event("Buy", "dave", t + 30, "5"),
            event("Page View", "x-1", t, "6"),
            event("Page View", "x-2", t + 1, "7"),
            event("$merge", "erin", t + 40, "8", __distinct_ids=["x-1", "x-2"]),
        ],
    )
    build_identities(con)
    m = user_of(con)
    assert m["anon-1"] == m["carol"] == "carol"
    assert m["anon-2"] == m["dave"] == "dave"
    assert m["x-1"] == m["x-2"] == m["erin"]
    by = dict(con.execute("SELECT id, resolved_by FROM core.identities").fetchall())
    assert by["anon-1"] == "identify" and by["anon-2"] == "alias" and by["x-1"] == "merge"


def test_rebuild_is_idempotent(con, tmp_path):
    load_records(con, tmp_path, [event("Sign Up", "u", epoch(2024, 3, 1), "1", __device_id="d", __user_id="u")])
    build_identities(con)
    first = con.execute("SELECT * FROM core.identities ORDER BY ALL").fetchall()
    build_identities(con)
    assert con.execute("SELECT * FROM core.identities ORDER BY ALL").fetchall() == first
