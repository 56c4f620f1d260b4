"""The demo's hidden truth: the ``truth.parquet`` frame (one row per signed-up user: observable attributes,
latent traits, the exact daily parameters and the realised outcome times), the ``truth.json`` metadata
(generator parameters and formulas), and the true probability of an outcome in a window.

Computing the true probability of an outcome in a window
--------------------------------------------------------
Condition on the user's state at the END of local day ``as_of`` read from the truth's realised dates:
alive iff ``signup_date <= as_of`` and (``churn_date`` is null or ``churn_date > as_of``); in B iff
``fade_start_date <= as_of``; converted iff ``conversion_date <= as_of``; cancelled iff ``cancel_date <= as_of``;
goal reached iff ``goal_date <= as_of``. The window is the days ``as_of+1 .. as_of+h``.

* churn, user in B:  P = 1 - (1-q)^h  with q = fade_exit_hazard.
* churn, user in A:  P = 1 - (1-p)^h - sum_{j=1..h} (1-p)^(j-1) p (1-q)^(h-j+1)   (p = churn_hazard),
  which is 1-(1-p)^h for abrupt churners (q = 1).
* conversion / goal / expected revenue: run the daily recursion of simulate.py forward over the state
  probabilities {A, B} x {not converted, converted, cancelled} (goal: {A, B} x {not reached}) for h days -- see
  ``true_outcome_probability``, which implements exactly that. Expected revenue = sum over days of
  P(subscriber in A)*purchase_rate*MOV + P(subscriber in B)*purchase_rate*f*MOV + P(converts that day)*MOV.

``true_outcome_probability(truth, kind, as_of, horizon_days)`` returns (user_id, probability) for kinds
"churn" (users alive at as_of), "conversion" (alive, not converted), "goal" (alive, goal not reached) and
(user_id, expected_revenue) for "ltv" (every user signed up by as_of; 0.0 if already churned).
With an outcome change (concept drift) truth.parquet also holds ``outcome_change_date`` and each hazard after
it (``churn_hazard_after_change``, ...): on the window's days from that date on the recursions use those.
Because the oracle knows the hidden A/B state, it is an upper reference: models only see the fade as a
noisy decline in activity (``hidden_state=False`` gives the weaker traits-only reference, every alive user
treated as in A). Measured on powerplay, 20k users, as_of day 90, 29-day churn: oracle AUC 0.75, traits-only
0.69; simple count/recency features reach ~0.68 (logistic regression) / ~0.70 (gradient boosting).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta

import numpy as np
import polars as pl

from growth_pipeline.lib.demo.apps import CustomerApp
from growth_pipeline.lib.demo.population import FORMULAS, MIX_MODIFIERS
from growth_pipeline.lib.demo.simulate import Simulation
from growth_pipeline.lib.demo.spec import (
    ALIAS_SHARE_OF_LEGACY,
    ANON_VISITOR_SHARE,
    DEMO_LAYOUTS,
    DEMO_TIMEZONES,
    FADE_ACTIVITY_DECAY,
    FADE_OUTCOME_FACTOR,
    GRADUAL_FADE_EXIT_HAZARD,
    GRADUAL_SHARE,
    LATE_DUPLICATE_SHARE,
    LEGACY_ID_MERGE_SHARE,
    DemoSpec,
    DemoSummary,
)


def truth_frame(app: CustomerApp, spec: DemoSpec, p: dict, par: dict[str, np.ndarray], sim: Simulation) -> pl.DataFrame:
    """One row per signed-up user (sorted by sign-up time): attributes, traits, parameters and realised times."""
    n, q_exit, midnights = spec.n_users, sim.q_exit, sim.midnights
    signup_t, signup_day, fade_day, churn_day = sim.signup_t, sim.signup_day, sim.fade_day, sim.churn_day
    conv_t, goal_t, cancel_t = sim.conv_t, sim.goal_t, sim.cancel_t

    def nullable(values: pl.Series, valid: np.ndarray) -> pl.Series:
        return pl.DataFrame({"v": values, "m": valid}).select(pl.when("m").then("v")).to_series()

    def ts(x: np.ndarray) -> pl.Series:
        s = pl.Series(np.where(x >= 0, x, 0).astype(np.int64) * 1_000_000).cast(pl.Datetime("us", "UTC"))
        return nullable(s, x >= 0)

    def local_date_of_day(k: np.ndarray) -> pl.Series:
        base = pl.Series(np.where(k >= 0, k, 0).astype(np.int32) + (spec.start - date(1970, 1, 1)).days)
        return nullable(base.cast(pl.Date), k >= 0)

    def day_of_time(t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(midnights, t, side="right") - 1
        return np.where(t >= 0, k, -1)

    churn_t = np.where(churn_day >= 0, midnights[np.maximum(churn_day, 0)], -1)
    fade_t = np.where(fade_day >= 0, midnights[np.maximum(fade_day, 0)], -1)
    cols: dict[str, pl.Series] = {
        "user_id": pl.Series(p["user_id"][:n].astype(str)),
        "device_id": pl.Series(p["device_id"][:n].astype(str)),
        "anon_distinct_id": pl.Series(p["anon_distinct_id"][:n].astype(str)),
        "id_merge": pl.Series(np.array(["simplified", "identify", "alias"])[p["id_merge_code"][:n]]),
        "signup_time": ts(signup_t),
        "signup_date": local_date_of_day(signup_day),
        "channel": pl.Series(p["channel"][:n].astype(str)),
        "campaign": nullable(pl.Series(p["campaign"][:n].astype(str)), p["campaign"][:n].astype(str) != ""),
        "platform": pl.Series(p["platform"][:n].astype(str)),
        "os": pl.Series(p["os"][:n].astype(str)),
        "city": pl.Series(p["city"][:n].astype(str)),
        "region": pl.Series(p["region"][:n].astype(str)),
    }
    if app.name == "powerplay":
        cols.update(
            company_size=pl.Series(p["company_size"][:n]),
            role=pl.Series(p["role"][:n].astype(str)),
            project_type=pl.Series(p["project_type"][:n].astype(str)),
            engagement=pl.Series(p["engagement"][:n]),
            price_sensitivity=pl.Series(p["price_sensitivity"][:n]),
            team_size=pl.Series(p["team_size"][:n]),
        )
    else:
        cols.update(
            favourite_cuisine=pl.Series(p["favourite_cuisine"][:n].astype(str)),
            engagement=pl.Series(p["engagement"][:n]),
            price_sensitivity=pl.Series(p["price_sensitivity"][:n]),
            sociability=pl.Series(p["sociability"][:n]),
        )
    for k in (
        "churn_hazard",
        "activity_rate",
        "sessions_per_day",
        "events_per_session",
        "conversion_hazard",
        "purchase_rate",
        "mean_order_value",
        "goal_hazard",
    ):
        cols[k] = pl.Series(np.asarray(par[k], dtype=np.float64))
    oc = spec.outcome_change
    if oc is not None:  # concept drift: the hazards from outcome_change_date on (equal to the above for others)
        cols["outcome_change_date"] = pl.Series([oc.start] * n, dtype=pl.Date)
        cols["in_outcome_change"] = pl.Series(sim.oc_segment.astype(bool))
        for k in ("churn_hazard", "conversion_hazard", "goal_hazard"):
            cols[f"{k}_after_change"] = pl.Series(np.asarray(sim.par_after[k], dtype=np.float64))
    cols["fade_exit_hazard"] = pl.Series(q_exit.astype(np.float64))
    cols["fade_outcome_factor"] = pl.Series(np.full(n, FADE_OUTCOME_FACTOR))
    cols["cancel_probability"] = pl.Series(np.full(n, float(app.cancel_probability)))
    cols.update(
        fade_start_time=ts(fade_t),
        fade_start_date=local_date_of_day(fade_day),
        churn_time=ts(churn_t),
        churn_date=local_date_of_day(churn_day),
        conversion_time=ts(conv_t),
        conversion_date=local_date_of_day(day_of_time(conv_t)),
        goal_time=ts(goal_t),
        goal_date=local_date_of_day(day_of_time(goal_t)),
        cancel_time=ts(cancel_t),
        cancel_date=local_date_of_day(day_of_time(cancel_t)),
    )
    df = pl.DataFrame({k: v.alias(k) for k, v in cols.items()})
    return df.sort("signup_time", "user_id")


def truth_meta(app: CustomerApp, spec: DemoSpec, summary: DemoSummary, truth: pl.DataFrame) -> dict:
    """The contents of truth.json."""
    spec_d = asdict(spec)
    return {
        "customer": spec.customer,
        "timezone": DEMO_TIMEZONES[spec.customer],
        "layout": DEMO_LAYOUTS[spec.customer],
        "timestamps": "project_timezone" if spec.time_in_project_timezone else "utc",
        "start": spec.start.isoformat(),
        "end": (spec.start + timedelta(days=spec.days - 1)).isoformat(),
        "spec": spec_d,
        "summary": {k: v for k, v in asdict(summary).items() if k not in ("out_dir", "seconds")},
        "events": app.events,
        "goal_event": app.goal_event,
        "conversion_event": app.conversion_event,
        "purchase_amount_property": app.amount_key,
        "currency": "INR" if spec.customer == "powerplay" else "USD",
        "cancel_event": app.cancel_event,
        "constants": {
            "fade_outcome_factor": FADE_OUTCOME_FACTOR,
            "gradual_fade_exit_hazard": GRADUAL_FADE_EXIT_HAZARD,
            "abrupt_fade_exit_hazard": 1.0,
            "gradual_share": GRADUAL_SHARE,
            "fade_activity_decay_per_day": FADE_ACTIVITY_DECAY,
            "cancel_probability": app.cancel_probability,
            "purchase_value_lognormal_sigma": app.amount_sigma,
            "anonymous_visitor_share": ANON_VISITOR_SHARE,
            "legacy_id_merge_share": LEGACY_ID_MERGE_SHARE,
            "alias_share_of_legacy": ALIAS_SHARE_OF_LEGACY,
            "late_duplicate_share": LATE_DUPLICATE_SHARE,
            "weekday_factors_mon_sun": [round(float(x), 4) for x in app.weekday_factors],
        },
        "activity_mix": {
            "columns": app.activity,
            "groups": "role (owner, site engineer, supervisor, purchase manager)"
            if spec.customer == "powerplay"
            else "platform (Android, iOS, web)",
            "per_user_modifiers": MIX_MODIFIERS[spec.customer],
            "before_goal": np.round(app.mix_pre, 4).tolist(),
            "after_goal": np.round(app.mix_post, 4).tolist(),
        },
        "formulas": FORMULAS[spec.customer],
        "process": [
            "Day 0 = sign-up day (state A, no transitions). Each later day: A->B w.p. churn_hazard (a subscriber "
            "cancels then w.p. cancel_probability); B->D (silent forever) w.p. fade_exit_hazard; "
            "churn_time = local midnight of the first silent day.",
            "While alive, m = 1 in A, fade_outcome_factor in B: convert w.p. conversion_hazard*m (if not "
            "converted); Poisson(purchase_rate*m) purchases (if converted before today and not cancelled); "
            "goal w.p. goal_hazard*m (if not reached); Poisson(sessions_per_day*weekday*decay) sessions, "
            "decay = fade_activity_decay^(days in B + 1) in B.",
            "Purchase value = mean_order_value * LogNormal(-sigma^2/2, sigma).",
        ],
        "oracle": {
            "state_at_as_of": "alive iff signup_date <= as_of < churn_date (or churn_date null); in B iff "
            "fade_start_date <= as_of; converted iff conversion_date <= as_of; cancelled iff "
            "cancel_date <= as_of; goal iff goal_date <= as_of",
            "churn_in_B": "1 - (1-q)^h",
            "churn_in_A": "1 - (1-p)^h - sum_{j=1..h} (1-p)^(j-1) p (1-q)^(h-j+1)",
            "other": "forward recursion over {A,B} x {not converted, converted, cancelled}: see "
            "growth_pipeline.lib.demo.truth.true_outcome_probability",
        },
        "outcome_change": None
        if spec.outcome_change is None
        else {
            "start": spec.outcome_change.start.isoformat(),
            "hazard": spec.outcome_change.hazard,
            "event": spec.outcome_change.event,
            "factor": spec.outcome_change.factor,
            "users": "expected daily count of the event before the goal (sessions_per_day * events_per_session * "
            "the user's mix share of it) at or above the population's median",
            "users_in_change": int(truth["in_outcome_change"].sum()),
            "after": f"{spec.outcome_change.hazard}_hazard_after_change = clip({spec.outcome_change.hazard}_hazard "
            f"* {spec.outcome_change.factor}) for them, from local day {spec.outcome_change.start} on",
        },
        "truth_rows": truth.height,
        "realised": {
            "churned": int(truth["churn_time"].is_not_null().sum()),
            "converted": int(truth["conversion_time"].is_not_null().sum()),
            "goal_reached": int(truth["goal_time"].is_not_null().sum()),
            "cancelled": int(truth["cancel_time"].is_not_null().sum()),
        },
    }


def _on_day(x, j: int):
    """Day ``j`` (0-based) of a hazard given either as one array for every day or as a list of per-day arrays."""
    return x[j] if isinstance(x, list) else x


def first_outcome_probability(
    engaged, fading, churn_hazard, exit_hazard, hazard, fade_factor, horizon_days: int
) -> np.ndarray:
    """P(a first outcome event, such as the goal or a conversion, in the next ``horizon_days`` days) of users
    engaged / fading now (probabilities, broadcastable arrays) under the daily process: each day the engaged may
    start to fade, the fading may drop out, and the live ones reach the outcome with ``hazard`` (times
    ``fade_factor`` while fading). ``churn_hazard`` and ``hazard`` may also be lists of per-day arrays (an
    outcome change inside the window)."""
    a, b = engaged, fading
    got = 0.0
    for j in range(horizon_days):
        p, hz = _on_day(churn_hazard, j), _on_day(hazard, j)
        b = (b + a * p) * (1 - exit_hazard)
        a = a * (1 - p)
        ga, gb = a * hz, b * np.minimum(hz * fade_factor, 1.0)
        got = got + ga + gb
        a, b = a - ga, b - gb
    return got


def true_outcome_probability(
    truth: pl.DataFrame, kind: str, as_of: date, horizon_days: int, *, hidden_state: bool = True
) -> pl.DataFrame:
    """The true probability of an outcome in days as_of+1 .. as_of+horizon_days, given the hidden state at the
    end of local day as_of (see the module docstring).

    kind "churn" | "conversion" | "goal" -> (user_id, probability) for the users at risk (alive; not yet
    converted / goal not yet reached); kind "ltv" -> (user_id, expected_revenue) for every user signed up by
    as_of (0.0 for users already churned). Rows follow the truth's order.

    ``hidden_state=False`` ignores the fading state (every alive user treated as engaged, state A): a weaker,
    "traits only" reference that shows how much of the oracle's edge comes from knowing who is already fading.
    """
    if kind not in ("churn", "conversion", "goal", "ltv"):
        raise ValueError(f"kind must be churn, conversion, goal or ltv, got {kind!r}")
    if horizon_days < 1:
        raise ValueError("horizon_days must be >= 1")

    def before(col: str) -> pl.Expr:
        return pl.col(col).is_not_null() & (pl.col(col) <= pl.lit(as_of))

    df = truth.filter(pl.col("signup_date") <= pl.lit(as_of)).with_columns(
        alive=~before("churn_date"),
        in_b=before("fade_start_date"),
        conv=before("conversion_date"),
        canc=before("cancel_date"),
        goal_done=before("goal_date"),
    )
    if kind == "churn":
        df = df.filter("alive")
    elif kind == "conversion":
        df = df.filter(pl.col("alive") & ~pl.col("conv"))
    elif kind == "goal":
        df = df.filter(pl.col("alive") & ~pl.col("goal_done"))

    def arr(c):
        return df[c].to_numpy().astype(np.float64)

    def by_day(c) -> list[np.ndarray]:
        """The hazard ``c`` on each day of the window: its value after an outcome change from the change date on."""
        before_change = arr(c)
        if f"{c}_after_change" not in df.columns or df.height == 0:
            return [before_change] * horizon_days
        start, after_change = df["outcome_change_date"][0], arr(f"{c}_after_change")
        return [
            after_change if as_of + timedelta(days=j) >= start else before_change for j in range(1, horizon_days + 1)
        ]

    p, q, f = by_day("churn_hazard"), arr("fade_exit_hazard"), arr("fade_outcome_factor")
    alive = df["alive"].to_numpy()
    in_b = df["in_b"].to_numpy() & alive & hidden_state
    in_a = alive & ~in_b
    if kind == "goal":
        got = first_outcome_probability(
            in_a.astype(float), in_b.astype(float), p, q, by_day("goal_hazard"), f, horizon_days
        )
        return pl.DataFrame({"user_id": df["user_id"], "probability": np.clip(got, 0.0, 1.0)})
    if kind == "churn":
        a, b = in_a.astype(float), in_b.astype(float)
        for j in range(horizon_days):
            b = (b + a * p[j]) * (1 - q)
            a = a * (1 - p[j])
        return pl.DataFrame({"user_id": df["user_id"], "probability": np.clip(1.0 - a - b, 0.0, 1.0)})

    chs, pr, mov, cp = (
        by_day("conversion_hazard"),
        arr("purchase_rate"),
        arr("mean_order_value"),
        arr("cancel_probability"),
    )
    conv = df["conv"].to_numpy()
    canc = df["canc"].to_numpy()
    a_nc = (in_a & ~conv).astype(float)
    a_c = (in_a & conv).astype(float)  # in A a subscriber cannot be cancelled
    b_nc = (in_b & ~conv).astype(float)
    b_c = (in_b & conv & ~canc).astype(float)
    b_x = (in_b & conv & canc).astype(float)
    conv_prob = np.zeros(len(df))
    revenue = np.zeros(len(df))
    for j in range(horizon_days):
        ch = chs[j]
        to_b_nc, to_b_c = a_nc * p[j], a_c * p[j]
        a_nc, a_c = a_nc - to_b_nc, a_c - to_b_c
        b_nc = (b_nc + to_b_nc) * (1 - q)
        b_x = (b_x + to_b_c * cp) * (1 - q)
        b_c = (b_c + to_b_c * (1 - cp)) * (1 - q)
        revenue += (a_c * pr + b_c * pr * f) * mov
        ca, cb = a_nc * ch, b_nc * np.minimum(ch * f, 1.0)
        conv_prob += ca + cb
        revenue += (ca + cb) * mov
        a_nc, b_nc = a_nc - ca, b_nc - cb
        a_c, b_c = a_c + ca, b_c + cb
    if kind == "conversion":
        return pl.DataFrame({"user_id": df["user_id"], "probability": np.clip(conv_prob, 0.0, 1.0)})
    return pl.DataFrame({"user_id": df["user_id"], "expected_revenue": revenue})
