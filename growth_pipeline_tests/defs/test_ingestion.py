"""The ingestion assets run as real Dagster materializations against real DuckDB files."""

import json

import dagster as dg
import duckdb
import pytest

from growth_pipeline.definitions import defs
from growth_pipeline.defs.customers import customer_registry
from growth_pipeline_tests.conftest import D1, D2, epoch, event, write_export
from growth_pipeline_tests.fake_mixpanel import FakeMixpanel

ASSETS = list(defs.assets)


def key(customer, day):
    return dg.MultiPartitionKey({"customer": customer, "day": str(day)})


@pytest.fixture
def instance(growth_env):
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("customer", ["acme", "oldco", "apico"])
        yield inst


def run(instance, selection, partition_key, **kw):
    return dg.materialize(
        ASSETS,
        selection=selection,
        instance=instance,
        partition_key=partition_key,
        resources=defs.resources,
        raise_on_error=False,
        **kw,
    )


def meta(result, asset):
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[0].metadata.items()}


def checks(result):
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}


def acme_day(root, day, records):
    write_export(root / "sources" / "acme" / f"{day}.jsonl.gz", records)


def set_acme_ingest(root, setting):
    cfg = root / "customers.yaml"
    cfg.write_text(cfg.read_text().replace("min_rejected_to_fail: 2}", f"min_rejected_to_fail: 2, {setting}}}"))


def test_raw_events_materialization_reports_counts_and_passes_checks(growth_env, instance):
    paths, root = growth_env
    t = epoch(2024, 3, 1, 9)
    acme_day(
        root,
        D1,
        [event("Login", "u1", t, "a"), event("Login", "u1", t, "a"), event("Buy", "u2", t, "b"), "{broken"]
        + [event("Login", f"v{i}", t + i, f"x{i}") for i in range(10)],
    )
    result = run(instance, ["landed_exports", "raw_events"], key("acme", D1))
    assert result.success
    m = meta(result, "raw_events")
    assert (m["loaded"], m["duplicates"], m["rejected"], m["lines"]) == (12, 1, 1, 14)
    assert m["rejected_reasons"] == {"malformed JSON": 1}
    assert "line 4" in m["first_rejects"]
    assert checks(result) == {
        "no_duplicate_keys": True,
        "no_null_keys": True,
        "rejected_share_under_threshold": True,
        "day_not_empty": True,
        "day_complete": True,
    }
    assert meta(result, "landed_exports")["files"] == 1
    with duckdb.connect(str(paths.warehouse("acme")), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.events").fetchall()[0][0] == 12
    # materialized twice: same table
    again = run(instance, ["raw_events"], key("acme", D1))
    assert meta(again, "raw_events")["loaded"] == 12
    with duckdb.connect(str(paths.warehouse("acme")), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.events").fetchall()[0][0] == 12


def test_too_many_rejects_fail_the_blocking_check(growth_env, instance):
    _, root = growth_env
    acme_day(root, D1, [event("Login", "u1", epoch(2024, 3, 1), "a")] + ["not json"] * 3)
    result = run(instance, ["raw_events"], key("acme", D1))
    evaluation = {c.check_name: c for c in result.get_asset_check_evaluations()}
    bad = evaluation["rejected_share_under_threshold"]
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.ERROR
    assert bad.metadata["rejected_share"].value == 0.75 and bad.metadata["threshold"].value == 0.2
    # the good record is still loaded and the rejects are kept
    assert meta(result, "raw_events")["loaded"] == 1 and meta(result, "raw_events")["rejected"] == 3


def test_missing_day_is_a_clear_failure(growth_env, instance):
    result = run(instance, ["landed_exports"], key("acme", D2))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    text = str(failure.event_specific_data.error)
    assert "no export file for 2024-03-02" in text and "allow_empty_days" in text


def test_object_storage_layout_and_project_timezone(growth_env, instance):
    paths, root = growth_env
    folder = root / "sources" / "oldco" / "42" / "mp_master_event" / "2024" / "03" / "01"
    # 09:30 local Kolkata wall-clock written as epoch by an old project
    write_export(folder / "part-0001.json.gz", [event("Login", "u1", epoch(2024, 3, 1, 9, 30), "a")])
    write_export(folder / "part-0002.json", [event("Login", "u2", epoch(2024, 3, 1, 10, 30), "b")])
    result = run(instance, ["landed_exports", "raw_events"], key("oldco", D1))
    assert result.success and meta(result, "landed_exports")["files"] == 2
    with duckdb.connect(str(paths.warehouse("oldco")), read_only=True) as con:
        got = con.execute(
            "SELECT distinct_id, strftime(time, '%H:%M'), source_file FROM raw.events ORDER BY 1"
        ).fetchall()
    assert got == [
        ("u1", "04:00", "42/mp_master_event/2024/03/01/part-0001.json.gz"),
        ("u2", "05:00", "42/mp_master_event/2024/03/01/part-0002.json"),
    ]


SECRET = "s3cr3t-ZX81-never-log-me"


def test_mixpanel_api_customer_downloads_then_loads_without_leaking_the_secret(growth_env, instance, monkeypatch):
    paths, root = growth_env
    body = (
        "\n".join(
            __import__("json").dumps(event("Login", f"u{i}", epoch(2024, 3, 1, 8) + i, str(i))) for i in range(25)
        )
        + "\n"
    )
    with FakeMixpanel(
        {str(D1): body}, username="svc.acct", secret=SECRET, project_id="777", fail_with=[(429, {"Retry-After": "0"})]
    ) as server:
        cfg = (root / "customers.yaml").read_text().replace("http://127.0.0.1:9", server.base_url)
        (root / "customers.yaml").write_text(cfg)
        monkeypatch.setenv("TEST_MP_USER", "svc.acct")
        monkeypatch.setenv("TEST_MP_SECRET", SECRET)
        result = run(instance, ["landed_exports", "raw_events"], key("apico", D1))
        assert result.success
        assert len(server.requests) == 2  # one 429, then the day
    assert (paths.landing("apico") / f"{D1}.jsonl.gz").exists()
    assert meta(result, "raw_events")["loaded"] == 25
    assert "2 attempt" in meta(result, "landed_exports")["landed"]
    everything = " ".join(str(e) for e in instance.all_logs(result.run_id))
    assert SECRET not in everything and "svc.acct:" not in everything


def test_mixpanel_api_customer_without_credentials_fails_naming_the_variables(growth_env, instance, monkeypatch):
    monkeypatch.delenv("TEST_MP_USER", raising=False)
    monkeypatch.delenv("TEST_MP_SECRET", raising=False)
    result = run(instance, ["landed_exports"], key("apico", D1))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "TEST_MP_USER" in str(failure.event_specific_data.error)


def test_customer_level_assets_read_every_day_of_their_customer(growth_env, instance):
    paths, root = growth_env
    acme_day(root, D1, [event("App Open", "$device:d1", epoch(2024, 3, 1), "1", __device_id="d1")])
    acme_day(root, D2, [event("Sign Up", "ann", epoch(2024, 3, 2), "2", __device_id="d1", __user_id="ann")])
    from growth_pipeline.pipeline_shape import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG

    ranged = dg.materialize(
        ASSETS,
        selection=["landed_exports", "raw_events"],
        instance=instance,
        resources=defs.resources,
        tags={PARTITION_RANGE_START_TAG: f"acme|{D1}", PARTITION_RANGE_END_TAG: f"acme|{D2}"},
    )
    assert ranged.success and meta(ranged, "raw_events")["days"] == 2
    # one run, two partitions materialized
    mats = instance.fetch_materializations(dg.AssetKey("raw_events"), limit=10).records
    assert sorted(str(r.partition_key) for r in mats) == [f"acme|{D1}", f"acme|{D2}"]
    result = run(instance, ["identities", "event_catalog"], "acme")
    assert result.success
    assert meta(result, "identities")["users"] == 1
    assert meta(result, "event_catalog")["event_names"] == 2


def test_registry_sensor_turns_customers_yaml_into_partitions(growth_env):
    with dg.instance_for_test() as inst:
        ctx = dg.build_sensor_context(instance=inst, resources={"growth": defs.resources["growth"]})
        result = customer_registry(ctx)
        req = result.dynamic_partitions_requests[0]
        assert req.partitions_def_name == "customer" and list(req.partition_keys) == ["acme", "oldco", "apico"]
        inst.add_dynamic_partitions("customer", list(req.partition_keys))
        again = customer_registry(
            dg.build_sensor_context(instance=inst, resources={"growth": defs.resources["growth"]})
        )
        assert not again.dynamic_partitions_requests


def test_a_few_rejects_on_a_small_day_are_not_a_failure(growth_env, instance):
    _, root = growth_env
    # 1 bad line of 4 is 25% (over the 20% threshold) but below min_rejected_to_fail (2): noise, not a failure
    acme_day(root, D1, [event("Login", f"u{i}", epoch(2024, 3, 1), str(i)) for i in range(3)] + ["not json"])
    result = run(instance, ["raw_events"], key("acme", D1))
    assert result.success and checks(result)["rejected_share_under_threshold"]


def test_a_truncated_gzip_loads_what_precedes_the_cut_and_fails_the_day_complete_check(growth_env, instance):
    paths, root = growth_env
    acme_day(root, D1, [event("Login", f"u{i}", epoch(2024, 3, 1) + i, str(i)) for i in range(3000)])
    path = root / "sources" / "acme" / f"{D1}.jsonl.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = run(instance, ["raw_events"], key("acme", D1))
    evaluation = {c.check_name: c for c in result.get_asset_check_evaluations()}
    complete = evaluation["day_complete"]
    assert not complete.passed and complete.severity == dg.AssetCheckSeverity.ERROR
    text = complete.metadata["incomplete"].value
    assert text.startswith(f"{D1}.jsonl.gz: truncated gzip: the compressed data ends at byte {len(data) // 2:,}")
    assert all(c.passed for name, c in evaluation.items() if name != "day_complete")
    m = meta(result, "raw_events")
    assert 0 < m["loaded"] < 3000 and f"acme {D1}: {D1}.jsonl.gz: truncated gzip" in m["incomplete"]
    with duckdb.connect(str(paths.warehouse("acme")), read_only=True) as con:
        assert con.execute("SELECT incomplete FROM raw.day_loads").fetchall() == [(text,)]
    # a customer that accepts incomplete days: the same day passes
    set_acme_ingest(root, "allow_incomplete_days: true")
    again = run(instance, ["raw_events"], key("acme", D1))
    assert again.success and checks(again)["day_complete"]
    assert meta(again, "raw_events")["loaded"] == m["loaded"]


def test_a_gz_export_that_is_not_gzip_fails_naming_the_file_even_when_empty_days_are_allowed(growth_env, instance):
    _, root = growth_env
    set_acme_ingest(root, "allow_empty_days: true")
    path = root / "sources" / "acme" / f"{D1}.jsonl.gz"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(event("Login", "u1", epoch(2024, 3, 1), "1")) + "\n")  # plain text, named .gz
    result = run(instance, ["raw_events"], key("acme", D1))
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert f"{D1}.jsonl.gz: not a gzip file" in str(failure.event_specific_data.error)
