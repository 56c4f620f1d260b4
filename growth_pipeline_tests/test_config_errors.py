"""A wrong customers.yaml stops every command that reads it with one line per problem - the file, the customer and
the field - and exit status 2: no traceback, and never the offending value (a service-account secret pasted into
the wrong field must not reach a terminal, a log or a CI transcript). Run through the real CLI in a subprocess,
for each source kind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from growth_pipeline.config import REPO_ROOT, ConfigError, parse_customers

SECRET = "Zq7sK2mXw9LpR4tVb8NcYd3F"  # what a Mixpanel service-account secret looks like

GOOD = """\
customers:
  - id: acme
    name: Acme
    timezone: UTC
    source: {kind: local_folder, path: /data/acme}
    events: {signup: Sign Up, conversion: [Buy]}
  - id: oldco
    timezone: Asia/Kolkata
    source: {kind: object_storage, path: /data/oldco, project_id: "42"}
    events: {signup: Sign Up, conversion: [Buy]}
  - id: apico
    timezone: Europe/Berlin
    source: {kind: mixpanel_api, project_id: "777", region: eu, base_url: "http://127.0.0.1:9",
             username_env: TEST_MP_USER, secret_env: TEST_MP_SECRET}
    events: {signup: Sign Up, conversion: [Buy]}
"""
API = 'project_id: "777", region: eu, base_url: "http://127.0.0.1:9"'

# (what is wrong, the file's text, how the customer is named, the field)
CASES = [
    ("id with a trailing newline", GOOD.replace("id: acme", 'id: "acme\\n"'), "customer #1", "id"),
    ("id with a trailing space", GOOD.replace("id: acme", 'id: "acme "'), "customer #1", "id"),
    ("secret pasted as the id", GOOD.replace("id: oldco", f"id: {SECRET}"), "customer #2", "id"),
    ("id declared twice", GOOD.replace("id: oldco", "id: acme"), "customer 'acme'", "id"),
    ("local folder without path", GOOD.replace(", path: /data/acme", ""), "customer 'acme'", "source.path"),
    (
        "secret in an unknown local-folder field",
        GOOD.replace("path: /data/acme", f"path: /data/acme, token: {SECRET}"),
        "customer 'acme'",
        "source.token",
    ),
    (
        "secret pasted as the timezone",
        GOOD.replace("timezone: UTC", f"timezone: {SECRET}"),
        "customer 'acme'",
        "timezone",
    ),
    ("unknown source kind", GOOD.replace("kind: local_folder", f"kind: {SECRET}"), "customer 'acme'", "source"),
    (
        "secret as object-storage project_id",
        GOOD.replace('project_id: "42"', f'project_id: "{SECRET}"'),
        "customer 'oldco'",
        "source.project_id",
    ),
    (
        "secret as API project_id",
        GOOD.replace('project_id: "777"', f"project_id: {SECRET}"),
        "customer 'apico'",
        "source.project_id",
    ),
    (
        "API project_id with a trailing space",
        GOOD.replace('project_id: "777"', 'project_id: "777 "'),
        "customer 'apico'",
        "source.project_id",
    ),
    (
        "plain-http remote base_url",
        GOOD.replace("http://127.0.0.1:9", "http://mixpanel-proxy.example.com"),
        "customer 'apico'",
        "source.base_url",
    ),
    ("secret as base_url", GOOD.replace("http://127.0.0.1:9", SECRET), "customer 'apico'", "source.base_url"),
    (
        "base_url carrying the secret",
        GOOD.replace("http://127.0.0.1:9", f"https://svc:{SECRET}@data.mixpanel.com"),
        "customer 'apico'",
        "source.base_url",
    ),
    ("secret as secret_env", GOOD.replace("TEST_MP_SECRET", SECRET), "customer 'apico'", "source.secret_env"),
    ("empty secret_env", GOOD.replace("TEST_MP_SECRET", '""'), "customer 'apico'", "source.secret_env"),
    ("secret as the region", GOOD.replace("region: eu", f"region: {SECRET}"), "customer 'apico'", "source.region"),
    ("zero deadline", GOOD.replace(API, API + ", deadline_s: 0"), "customer 'apico'", "source.deadline_s"),
    (
        "secret as the name, another field wrong",
        GOOD.replace("name: Acme", f"name: {SECRET}").replace("conversion: [Buy]}", "conversion: []}", 1),
        "customer 'acme'",
        "events.conversion",
    ),
    (
        "secret as the name of an unknown setting",
        GOOD.replace("id: oldco", f"id: oldco\n    {SECRET}: x"),
        "customer 'oldco'",
        "<name not shown>",
    ),
]


def _cli(args: list[str], customers: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GROWTH_CUSTOMERS": str(customers), "GROWTH_HOME": str(home)}
    env.pop("GROWTH_FIRST_DAY", None)
    return subprocess.run(
        [sys.executable, "-m", "growth_pipeline.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


MATERIALIZE = ["materialize", "--customer", "acme", "--start", "2024-03-01", "--end", "2024-03-01"]


@pytest.mark.parametrize("what, text, customer, field", CASES, ids=[c[0] for c in CASES])
def test_a_bad_customers_file_is_one_line_naming_file_customer_and_field(tmp_path, what, text, customer, field):
    cfg = tmp_path / "customers.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        parse_customers(text, str(cfg))
    line = str(err.value)
    assert "\n" not in line, line
    assert line.startswith(f"{cfg}: {customer}, field '{field}': "), line
    assert SECRET not in line

    done = _cli(MATERIALIZE, cfg, tmp_path / "home")
    assert done.returncode == 2
    assert done.stderr == line + "\n"  # that line and nothing else: no traceback
    assert done.stdout == ""
    assert not (tmp_path / "home").exists() or SECRET not in " ".join(
        p.read_text(errors="replace") for p in (tmp_path / "home").rglob("*") if p.is_file()
    )


def test_broken_yaml_names_the_line_without_quoting_it(tmp_path):
    cfg = tmp_path / "customers.yaml"
    cfg.write_text(GOOD.replace("name: Acme", f"name: {SECRET}: [oops"))
    done = _cli(MATERIALIZE, cfg, tmp_path / "home")
    assert done.returncode == 2
    assert done.stderr.startswith(f"{cfg}: not valid YAML at line 3, column ") and done.stderr.count("\n") == 1
    assert SECRET not in done.stderr + done.stdout and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        MATERIALIZE,
        ["demo", "--customers", "foodie", "--days", "2", "--users", "10"],
        ["retrain-on-drift"],
    ],
    ids=["materialize", "demo", "retrain-on-drift"],
)
def test_every_command_that_reads_customers_stops_on_the_one_line(tmp_path, args):
    cfg = tmp_path / "customers.yaml"
    cfg.write_text(GOOD.replace('project_id: "777"', f"project_id: {SECRET}"))
    done = _cli(args, cfg, tmp_path / "home")
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr == f"{cfg}: customer 'apico', field 'source.project_id': " + (
        "must be the numeric Mixpanel project id (Project Settings > Overview), digits only; a project token or an "
        "API secret is not a project id\n"
    )
    assert SECRET not in done.stdout


def test_a_loopback_http_base_url_and_a_numeric_project_id_are_fine():
    """The tests' fake Mixpanel server listens on plain http on 127.0.0.1; YAML may give the project id as a
    number."""
    reg = parse_customers(GOOD.replace('project_id: "777"', "project_id: 777"))
    assert reg.get("apico").source.project_id == "777"
    for url in ("http://localhost:8080", "http://[::1]:8080/mp", "https://data-eu.mixpanel.com"):
        parse_customers(GOOD.replace("http://127.0.0.1:9", url))
