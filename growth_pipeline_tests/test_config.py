from datetime import date

import pytest

from growth_pipeline.config import (
    DEFAULT_FIRST_DAY,
    FIRST_DAY_ENV,
    ConfigError,
    MixpanelApiSource,
    Paths,
    first_partition_day,
    parse_customers,
    resolve_path,
)

LOCAL = '{kind: local_folder, path: "${GROWTH_HOME}/demo/acme"}'
GOOD = """
customers:
  - id: acme
    timezone: Asia/Kolkata
    source: {kind: local_folder, path: "${GROWTH_HOME}/demo/acme"}
    events: {signup: Sign Up, conversion: [Buy], channel_properties: [utm_source]}
"""


def test_good_file_parses_with_defaults():
    reg = parse_customers(GOOD)
    c = reg.get("acme")
    assert c.timestamps == "utc"
    assert c.events.channel_default == "direct"
    assert c.ingest.max_rejected_share == 0.01 and c.ingest.allow_empty_days is False


def test_growth_home_expands_in_paths(tmp_path):
    p = resolve_path("${GROWTH_HOME}/demo/acme", Paths(tmp_path))
    assert p == tmp_path / "demo" / "acme"


@pytest.mark.parametrize(
    "bad, field, words",
    [
        ("id: acme", "id: Acme Corp", "slug"),
        ("timezone: Asia/Kolkata", "timezone: Asia/Kolkatta", "unknown IANA timezone"),
        ("conversion: [Buy]", "conversion: []", "at least 1"),
        ("kind: local_folder", "kind: ftp", "kind"),
    ],
)
def test_wrong_entry_names_customer_and_field(bad, field, words):
    with pytest.raises(ConfigError) as err:
        parse_customers(GOOD.replace(bad, field))
    msg = str(err.value)
    assert "customers.yaml" in msg and words in msg
    # an invalid id is not repeated (it may be anything pasted there): the customer is named by its position
    assert "customer 'acme'" in msg or "customer #1" in msg


def test_unknown_field_is_refused_not_ignored():
    with pytest.raises(ConfigError, match=r"customer 'acme', field 'events.signup_event'"):
        parse_customers(GOOD.replace("signup: Sign Up", "signup: Sign Up, signup_event: X"))


def test_duplicate_ids_and_unknown_customer():
    twice = GOOD + GOOD.split("customers:")[1]
    with pytest.raises(ConfigError, match="declared twice"):
        parse_customers(twice)
    with pytest.raises(ConfigError, match="unknown customer 'nope'.*acme"):
        parse_customers(GOOD).get("nope")


def test_api_source_holds_env_names_not_secrets():
    reg = parse_customers(GOOD.replace(LOCAL, "{kind: mixpanel_api, project_id: '1', region: in}"))
    src = reg.get("acme").source
    assert isinstance(src, MixpanelApiSource)
    assert src.username_env == "MIXPANEL_SERVICE_ACCOUNT_USERNAME" and src.region == "in"
    with pytest.raises(ConfigError, match="region"):
        parse_customers(GOOD.replace(LOCAL, "{kind: mixpanel_api, project_id: '1', region: mars}"))


def test_history_start_gives_an_earlier_first_partition_day(monkeypatch):
    monkeypatch.delenv(FIRST_DAY_ENV, raising=False)
    old = GOOD + '    history_start: "1997-01-01"\n'
    assert parse_customers(old).get("acme").history_start == date(1997, 1, 1)
    assert first_partition_day(parse_customers(old)) == date(1997, 1, 1)
    # customers without history_start count from the default; when every customer starts later, so do partitions
    assert first_partition_day(parse_customers(GOOD)) == DEFAULT_FIRST_DAY
    late = GOOD + '    history_start: "2025-06-01"\n'
    assert first_partition_day(parse_customers(late)) == date(2025, 6, 1)
    assert first_partition_day(parse_customers(late + GOOD.split("customers:")[1].replace("acme", "beta"))) == (
        DEFAULT_FIRST_DAY
    )


def test_growth_first_day_wins_and_is_checked(monkeypatch):
    old = parse_customers(GOOD + '    history_start: "1997-01-01"\n')
    monkeypatch.setenv(FIRST_DAY_ENV, "2013-05-01")
    assert first_partition_day(old) == date(2013, 5, 1)
    monkeypatch.setenv(FIRST_DAY_ENV, "May 2013")
    with pytest.raises(ConfigError, match="GROWTH_FIRST_DAY"):
        first_partition_day(old)


def test_first_partition_day_without_a_customers_file(monkeypatch, tmp_path):
    monkeypatch.delenv(FIRST_DAY_ENV, raising=False)
    monkeypatch.setenv("GROWTH_CUSTOMERS", str(tmp_path / "missing.yaml"))
    assert first_partition_day() == DEFAULT_FIRST_DAY
