"""Phrases (growth_pipeline.lib.scoring.phrases): each feature's value in plain words."""

from __future__ import annotations

import math

import pytest

from growth_pipeline.lib.scoring.phrases import describe, fmt_number

# ------------------------------------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    "feature, value, expected",
    [
        # recency
        ("recency_days", 12, "no activity for 12 days"),
        ("recency_days", 12.0, "no activity for 12 days"),
        ("recency_days", 2, "no activity for 2 days"),
        ("recency_days", 1, "last active yesterday"),
        ("recency_days", 0, "active today"),
        ("recency_days", None, "never active"),
        ("recency_days", float("nan"), "never active"),
        # windows
        ("events_7d", 3, "3 events in the last 7 days"),
        ("events_7d", 1, "1 event in the last 7 days"),
        ("events_7d", 0, "no events in the last 7 days"),
        ("events_7d", None, "no events in the last 7 days"),
        ("events_1d", 2, "2 events in the last day"),
        ("events_90d", 12345, "12,345 events in the last 90 days"),
        ("sessions_28d", 1, "1 session in the last 28 days"),
        ("sessions_28d", 4, "4 sessions in the last 28 days"),
        ("active_days_28d", 2, "active on 2 of the last 28 days"),
        ("active_days_28d", 0, "not active in the last 28 days"),
        ("active_days_1d", 1, "active in the last day"),
        ("revenue_90d", 1250.0, "1,250 revenue in the last 90 days"),
        ("revenue_90d", 12.34, "12.3 revenue in the last 90 days"),
        ("revenue_7d", 0.0, "no revenue in the last 7 days"),
        ("purchases_90d", 0, "no purchases in the last 90 days"),
        ("purchases_90d", 1, "1 purchase in the last 90 days"),
        # trends
        ("trend_events_7v21", 1 / 3, "3x fewer events than the 3 weeks before"),
        ("trend_events_7v21", 0.5, "2x fewer events than the 3 weeks before"),
        ("trend_events_7v21", 2.5, "2.5x more events than the 3 weeks before"),
        ("trend_events_7v21", 1.5, "1.5x more events than the 3 weeks before"),
        ("trend_events_7v21", 1.0, "events steady against the 3 weeks before"),
        ("trend_events_7v21", 0.8, "events steady against the 3 weeks before"),
        ("trend_events_7v21", 0.0, "no events in the last 7 days after an active 3 weeks"),
        ("trend_events_7v21", None, "no events in the last 4 weeks"),
        ("trend_events_7v21", math.inf, "events in the last 7 days after none in the 3 weeks before"),
        ("trend_task_created_7v21", 0.25, "4x fewer task created than the 3 weeks before"),
        # per-event counts and shares
        ("n_task_created_28d", 4, "4 task created in the last 28 days"),
        ("n_task_created_28d", 0, "no task created in the last 28 days"),
        ("share_task_created_28d", 0.35, "35% of activity is task created"),
        ("share_task_created_28d", 0.001, "<1% of activity is task created"),
        ("share_task_created_28d", None, "no activity in the last 28 days"),
        # lifetime
        ("days_since_signup", 40, "signed up 40 days ago"),
        ("days_since_signup", 1, "signed up yesterday"),
        ("days_since_signup", 0, "signed up today"),
        ("days_since_first_seen", 40, "first seen 40 days ago"),
        ("lifetime_active_days", 25, "active on 25 days in total"),
        ("lifetime_active_days", 1, "active on 1 day in total"),
        ("lifetime_revenue", 2400, "2,400 revenue to date"),
        ("lifetime_revenue", 0, "no revenue to date"),
        ("lifetime_purchases", 3, "3 purchases to date"),
        ("lifetime_purchases", 1, "1 purchase to date"),
        ("days_since_last_purchase", 20, "last purchase 20 days ago"),
        ("days_since_last_purchase", None, "never purchased"),
        ("days_since_last_purchase", float("nan"), "never purchased"),
        ("converted", 1, "already a paying customer"),
        ("converted", 0, "not yet a paying customer"),
        ("converted", True, "already a paying customer"),
        ("goals_lifetime", 2, "reached the goal 2 times"),
        ("goals_lifetime", 1, "reached the goal once"),
        ("goals_lifetime", 0, "has not reached the goal yet"),
        # categoricals
        ("channel", "facebook", "came from facebook"),
        ("channel", "missing", "channel unknown"),
        ("channel", None, "channel unknown"),
        ("platform", "android", "uses android"),
        ("country", "IN", "in IN"),
        ("city", "Pune", "in Pune"),
        ("city", "missing", "city unknown"),
        ("prop_plan_type", "pro", "plan type is pro"),
        ("prop_plan_type", "missing", "plan type unknown"),
        # anything else
        ("weird_score", 3.14159, "weird score = 3.1"),
        ("weird_score", 1234567.0, "weird score = 1,234,567"),
        ("weird_score", None, "weird score unknown"),
        ("weird_flag", "yes", "weird flag = yes"),
    ],
)
def test_describe(feature, value, expected):
    assert describe(feature, value) == expected


def test_describe_labels():
    labels = {"trend_task_created_7v21": "tasks created", "task_created": "tasks created", "prop_plan": "plan"}
    assert describe("trend_task_created_7v21", 1 / 3, labels) == "3x fewer tasks created than the 3 weeks before"
    assert describe("trend_task_created_7v21", 3.0, labels) == "3x more tasks created than the 3 weeks before"
    assert describe("trend_task_created_7v21", 1.1, labels) == "tasks created steady against the 3 weeks before"
    # a label keyed by the slug applies to every feature of that event
    assert describe("n_task_created_28d", 4, labels) == "4 tasks created in the last 28 days"
    assert describe("share_task_created_28d", 0.35, labels) == "35% of activity is tasks created"
    assert describe("prop_plan", "pro", labels) == "plan is pro"
    assert describe("prop_plan", "missing", labels) == "plan unknown"
    # trend_events always reads "events"
    assert describe("trend_events_7v21", 0.25, {"events": "things"}) == "4x fewer events than the 3 weeks before"


def test_fmt_number():
    assert fmt_number(1250.0) == "1,250"
    assert fmt_number(2.25) in ("2.2", "2.3")
    assert fmt_number(3.04) == "3"
    assert fmt_number(-1500.5) == "-1,500.5"
    assert fmt_number(0.01) == "<0.1"
    assert fmt_number(0) == "0"
