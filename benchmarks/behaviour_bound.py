"""How much of the traits oracle can any model recover from behaviour? A Bayes bound for the foodie demo.

The traits oracles (lib/demo/oracle.py) score users with their exact hidden traits (engagement e, price sensitivity s,
sociability c, favourite cuisine). A model only sees behaviour, and a user who signed up a week ago has shown a
handful of events. This script computes, for the same test set as the trained model, the *posterior* probability
of the outcome given what the warehouse holds on the as-of date:

    P(outcome | behaviour) = sum over a grid of traits  P(outcome | traits, silence) * P(traits | behaviour)

with the generator's own prior on the traits (by channel and platform) and a likelihood of the user's lifetime
behaviour up to the last active day: sessions (Poisson in e), activity events per session (Poisson in e), Like
against Meal Viewed (binomial in s and c), the cuisine of every cuisine-tagged event (the favourite on 55%, else
uniform), and the days in the population without the outcome (survival under its hazard). The days of silence
since the last event are the same evidence oracle_observed uses (engaged, fading or churned; lib/demo/oracle.py).

It is what a model that knew the generator's formulas would get from the same data: the recoverable part of the
traits oracle. As a check of the formulas, the same computation at the *true* traits is printed next to
``oracle_observed`` (they should agree to about 0.002).

    .venv/bin/python benchmarks/behaviour_bound.py            # after ./dev demo (foodie conversion and goal)
"""

from __future__ import annotations

import sys
from datetime import date

import duckdb
import mlflow
import numpy as np
import polars as pl

from growth_pipeline.config import Paths, load_customers
from growth_pipeline.lib.demo.apps import CUISINES, customer_app
from growth_pipeline.lib.demo.oracle import truth_oracle
from growth_pipeline.lib.demo.population import parameters, profiles, user_mixes
from growth_pipeline.lib.demo.spec import (
    FADE_OUTCOME_FACTOR,
    FAVOURITE_CATEGORY_SHARE,
    GRADUAL_FADE_EXIT_HAZARD,
    GRADUAL_SHARE,
)
from growth_pipeline.lib.demo.truth import first_outcome_probability
from growth_pipeline.lib.features.user_features import read_customer_activity
from growth_pipeline.lib.models.labels import label_specs
from growth_pipeline.lib.models.metrics import classifier_metrics
from growth_pipeline.lib.models.mlflow_store import tracking_uri
from growth_pipeline.lib.models.split import split_dates
from growth_pipeline.lib.models.training import labelled_snapshot

E = np.linspace(0.01, 0.99, 41)
S = np.linspace(0.025, 0.975, 20)
C = np.linspace(0.025, 0.975, 20)
FOODIE = customer_app("foodie")
PLATFORMS = ("Android", "iOS", "web")


def _priors(n: int = 600_000) -> dict[tuple[str, str], np.ndarray]:
    """log P(e, s, c, favourite) on the grid per (channel, platform): marginal histograms of the generator's own
    profiles (the traits are independent given channel and platform)."""
    p = profiles(FOODIE, np.random.default_rng(0), n, 0, days=1)

    def hist(x, grid):
        h = np.histogram(x, np.concatenate([[0], (grid[1:] + grid[:-1]) / 2, [1]]))[0] + 1e-3
        return np.log(h / h.sum())

    out = {}
    for ch in np.unique(p["channel"]):
        for code, plat in enumerate(PLATFORMS):
            sel = (p["channel"] == ch) & (p["platform_code"] == code)
            fav = np.bincount(p["fav_code"][sel], minlength=len(CUISINES)) + 1e-3
            out[(str(ch), plat)] = (
                hist(p["engagement"][sel], E)[:, None, None, None]
                + hist(p["price_sensitivity"][sel], S)[None, :, None, None]
                + hist(p["sociability"][sel], C)[None, None, :, None]
                + np.log(fav / fav.sum())[None, None, None, :]
            )
    return out


def _grid(channel: str, platform: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The generator's daily parameters on the (e, s, c, favourite) grid for a channel and platform, and
    P(Like | Like or Meal Viewed) before the goal on the (s, c) grid."""
    e, s, c, fav = np.meshgrid(E, S, C, np.arange(len(CUISINES)), indexing="ij")
    n = e.size
    code = PLATFORMS.index(platform)
    p = {
        "engagement": e.ravel(),
        "price_sensitivity": s.ravel(),
        "sociability": c.ravel(),
        "fav_code": fav.ravel(),
        "channel": np.full(n, channel, dtype=object),
        "platform_code": np.full(n, code),
        "group": np.full(n, code),
    }
    par = {k: np.asarray(v, dtype=float).reshape(e.shape) for k, v in parameters(FOODIE, p, n).items()}
    pre, _ = user_mixes(FOODIE, p, n)
    mix = np.diff(pre, axis=1, prepend=0.0).reshape(*e.shape, -1)[0, :, :, 0]  # depends on s and c only
    like, meal = mix[..., FOODIE.activity.index("Like")], mix[..., FOODIE.activity.index("Meal Viewed")]
    return par, like / (like + meal)


def _outcome(p: np.ndarray, hz: np.ndarray, horizon: int, q: float, start_in_b: bool) -> np.ndarray:
    """P(outcome in the horizon) from the engaged (A) or fading (B) state, fade exit hazard q."""
    engaged = np.zeros_like(p) if start_in_b else np.ones_like(p)
    return first_outcome_probability(engaged, 1.0 - engaged, p, q, hz, FADE_OUTCOME_FACTOR, horizon)


def _silence(p: np.ndarray, rate: np.ndarray, q: float, days: int):
    """From the end of the user's last active day (engaged), ``days`` days without any event: the likelihood
    of that silence and the state (A, B, dead) at its end, unnormalised. Fading users keep half their rate: an
    approximation of lib/oracle.silence_posterior, which tracks the decay per day of fading but would hold a
    (grid x days) array per user here."""
    a, b, dead = np.ones_like(p), np.zeros_like(p), np.zeros_like(p)
    quiet_a, quiet_b = np.exp(-rate), np.exp(-0.5 * rate)
    for _ in range(days):
        to_b = b + a * p
        a = a * (1 - p)
        dead = dead + to_b * q
        b = to_b * (1 - q)
        a, b = a * quiet_a, b * quiet_b
    return a, b, dead


def behaviour(act, as_of: date, users: pl.DataFrame) -> pl.DataFrame:
    """Lifetime counts per user on the as-of date: sessions, activity events, Like, Meal Viewed, cuisines."""
    ev = (
        act.events.filter(pl.col("day") <= as_of)
        .group_by("user_key", "event")
        .agg(pl.col("n").sum())
        .pivot(on="event", index="user_key", values="n")
    )
    daily = (
        act.daily.filter(pl.col("day") <= as_of)
        .group_by("user_key")
        .agg(pl.col("sessions").sum().alias("sessions"), pl.col("events").sum().alias("events"))
    )
    cz = (
        act.categories.filter(pl.col("day") <= as_of)
        .group_by("user_key", "value")
        .agg(pl.col("n").sum())
        .pivot(on="value", index="user_key", values="n")
    )
    out = (
        users.join(daily, on="user_key", how="left")
        .join(ev, on="user_key", how="left")
        .join(cz, on="user_key", how="left")
    )
    for col in ("Like", "Meal Viewed", "App Open", *CUISINES):
        if col not in out.columns:
            out = out.with_columns(pl.lit(0).alias(col))
    return out.fill_null(0)


def bound(customer_id: str, model: str) -> dict:
    paths = Paths()
    customer = load_customers().get(customer_id)
    spec = label_specs(customer)[model]
    con = duckdb.connect(str(paths.warehouse(customer_id)), read_only=True)
    act = read_customer_activity(con, customer)
    split = split_dates(act.first_day, act.last_day, spec)
    test = labelled_snapshot(act, split.test, spec)
    truth = pl.read_parquet(customer.source_path(paths) / "truth.parquet")
    t = truth.select(
        pl.col("user_id").alias("user_key"),
        "engagement",
        "price_sensitivity",
        "sociability",
        "favourite_cuisine",
        pl.col("channel").alias("true_channel"),
        pl.col("platform").alias("true_platform"),
    )
    users = test.select("user_key", "label", "days_since_signup", "recency_days")
    frame = behaviour(act, split.test, users).join(t, on="user_key", how="left")
    priors = _priors()
    tables = {}
    post_p = np.zeros(frame.height)
    exact_p = np.zeros(frame.height)
    fade = ((GRADUAL_FADE_EXIT_HAZARD, GRADUAL_SHARE), (1.0, 1 - GRADUAL_SHARE))
    for i, r in enumerate(frame.iter_rows(named=True)):
        key = (r["true_channel"], r["true_platform"])
        if key not in tables:
            par, p_like = _grid(*key)
            hz = par["conversion_hazard" if model == "conversion" else "goal_hazard"]
            churn = par["churn_hazard"]
            outs = {
                q: (
                    _outcome(churn, hz, spec.horizon_days, q, start_in_b=False),
                    _outcome(churn, hz, spec.horizon_days, q, start_in_b=True),
                )
                for q, _ in fade
            }
            tables[key] = (par, p_like, outs, np.log1p(-hz))
        par, p_like, outs, log_surv = tables[key]
        churn, rate = par["churn_hazard"], par["sessions_per_day"]
        seen = r["days_since_signup"] - r["recency_days"]  # days from sign-up to the last active day
        days = seen + 0.5
        n_sess = r["App Open"] if r["true_platform"] != "web" else r["sessions"]
        n_follow = max(r["events"] - n_sess - 1, 0)  # minus the sign-up
        rate_e, eps_e = rate[:, 0, 0, 0], par["events_per_session"][:, 0, 0, 0]  # both depend on e only
        ll_e = (
            n_sess * np.log(days * rate_e)
            - days * rate_e
            + n_follow * np.log(max(n_sess, 1) * eps_e)
            - max(n_sess, 1) * eps_e
        )
        ll_sc = r["Like"] * np.log(p_like) + r["Meal Viewed"] * np.log1p(-p_like)
        counts = np.array([r[k] for k in CUISINES], dtype=float)
        tag = np.full((7, 7), (1 - FAVOURITE_CATEGORY_SHARE) / 7) + FAVOURITE_CATEGORY_SHARE * np.eye(7)
        ll_fav = (np.log(tag) * counts[None, :]).sum(1)
        ll = (
            priors[key]
            + ll_e[:, None, None, None]
            + ll_sc[None, :, :, None]
            + ll_fav[None, None, None, :]
            + (seen + 1) * log_surv
        )
        w = np.exp(ll - ll.max())
        fav = CUISINES.index(r["favourite_cuisine"])
        at = (
            np.abs(E - r["engagement"]).argmin(),
            np.abs(S - r["price_sensitivity"]).argmin(),
            np.abs(C - r["sociability"]).argmin(),
            fav,
        )
        num = den = num_t = den_t = 0.0
        for q, wq in fade:
            a, b, dead = _silence(churn, rate, q, int(r["recency_days"]))
            out_a, out_b = outs[q]
            num += wq * float((w * (a * out_a + b * out_b)).sum())
            den += wq * float((w * (a + b + dead)).sum())
            # the same formulas at the true traits: close to oracle_observed (a check of this script's formulas)
            num_t += wq * float(a[at] * out_a[at] + b[at] * out_b[at])
            den_t += wq * float(a[at] + b[at] + dead[at])
        post_p[i] = num / den
        exact_p[i] = num_t / den_t
    y = frame["label"].to_numpy()
    oracle = truth_oracle(customer.source_path(paths) / "truth.parquet")(test, split.test, spec)
    return {
        "customer": customer_id,
        "model": model,
        "test_as_of": split.test,
        "users": frame.height,
        "positives": int(y.sum()),
        "bayes_bound.roc_auc": classifier_metrics(y, post_p)["roc_auc"],
        "traits_on_grid.roc_auc": classifier_metrics(y, exact_p)["roc_auc"],
        "oracle_observed.roc_auc": classifier_metrics(y, np.clip(oracle["oracle_observed"], 0, 1))["roc_auc"],
        "oracle_traits.roc_auc": classifier_metrics(y, np.clip(oracle["oracle_traits"], 0, 1))["roc_auc"],
    }


def main() -> None:
    mlflow.set_tracking_uri(tracking_uri(Paths()))
    runs = mlflow.search_runs(search_all_experiments=True, order_by=["attributes.start_time DESC"])
    latest = runs.drop_duplicates(subset=["tags.customer", "tags.model"]).set_index(["tags.customer", "tags.model"])
    models = sys.argv[1:] or ["conversion", "goal"]
    print(
        "| customer | model | test users (positives) | catboost | logistic | behaviour bound (Bayes) | "
        "traits on the grid, state from silence | oracle_observed | oracle_traits | catboost - bound |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in models:
        b = bound("foodie", m)
        r = latest.loc[("foodie", m)]
        print(
            f"| foodie | {m} | {b['users']} ({b['positives']}) | {r['metrics.model.roc_auc']:.3f} | "
            f"{r['metrics.logistic.roc_auc']:.3f} | {b['bayes_bound.roc_auc']:.3f} | "
            f"{b['traits_on_grid.roc_auc']:.3f} | {b['oracle_observed.roc_auc']:.3f} | "
            f"{b['oracle_traits.roc_auc']:.3f} | "
            f"{r['metrics.model.roc_auc'] - b['bayes_bound.roc_auc']:+.3f} |"
        )


if __name__ == "__main__":
    main()
