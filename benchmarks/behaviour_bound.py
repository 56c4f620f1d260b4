"""How much of the traits oracle can any model recover from behaviour? A Bayes bound for the foodie demo.

The traits oracles (lib/oracle.py) score users with their exact hidden traits (engagement e, price sensitivity s,
sociability c, favourite cuisine). A model only sees behaviour, and a user who signed up a week ago has shown a
handful of events. This script computes, for the same test set as the trained model, the *posterior* probability
of the outcome given what the warehouse holds on the as-of date:

    P(outcome | behaviour) = sum over a grid of traits  P(outcome | traits, silence) * P(traits | behaviour)

with the generator's own prior on the traits (by channel and platform) and a likelihood of the user's lifetime
behaviour up to the last active day: sessions (Poisson in e), activity events per session (Poisson in e), Like
against Meal Viewed (binomial in s and c), the cuisine of every cuisine-tagged event (the favourite on 55%, else
uniform), and the days in the population without the outcome (survival under its hazard). The days of silence
since the last event are the same evidence oracle_observed uses (engaged, fading or churned; lib/oracle.py).

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
from growth_pipeline.lib.demo_data import (CUISINES, FADE_OUTCOME_FACTOR, GRADUAL_FADE_EXIT_HAZARD, GRADUAL_SHARE,
                                          first_outcome_probability)
from growth_pipeline.lib.features import read_customer_activity
from growth_pipeline.lib.labels import label_specs
from growth_pipeline.lib.metrics import classifier_metrics
from growth_pipeline.lib.oracle import truth_oracle
from growth_pipeline.lib.tracking import tracking_uri
from growth_pipeline.lib.training import labelled_snapshot, split_dates

E = np.linspace(0.01, 0.99, 41)
S = np.linspace(0.025, 0.975, 20)
C = np.linspace(0.025, 0.975, 20)
FAV_PRIOR = np.array([16, 15, 10, 6, 22, 18, 13], dtype=float) / 100.0
FAV_TAG = 0.55   # share of cuisine-tagged events that carry the user's favourite (the rest: uniform)
BASE = {"Android": (0.62, 0.24), "iOS": (0.60, 0.26), "web": (0.58, 0.18)}   # (Meal Viewed, Like) weights


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _logit(p):
    return np.log(p / (1 - p))


def _prior(grid: np.ndarray, a: float, b: float, shift: float, rng) -> np.ndarray:
    x = _sigmoid(_logit(np.clip(rng.beta(a, b, 400_000), 1e-9, 1 - 1e-9)) + shift)
    edges = np.concatenate([[0], (grid[1:] + grid[:-1]) / 2, [1]])
    h = np.histogram(x, edges)[0].astype(float) + 1e-3
    return h / h.sum()


def _hazards(ch: str, plat: str):
    """Daily hazards on the (e, s, c, fav) grid for a channel and platform (the generator's formulas)."""
    e, s, c, fav = np.meshgrid(E, S, C, np.arange(7), indexing="ij")
    mobile = plat != "web"
    churn = 0.004 + 0.035 * (1 - e) ** 3
    churn = churn * np.where((ch == "pinterest") & mobile & (e < 0.35), 3.0, 1.0)
    churn = churn * np.where(c > 0.6, 0.5, 1.0) * (1.5 if ch == "twitter" else 1.0)
    conv = 0.004 * (1 + 5 * e ** 2) * (1.5 - s)
    conv = conv * np.where((ch == "reddit") & np.isin(fav, [0, 2]) & (s < 0.45), 4.0, 1.0)
    conv = conv * (1.8 if ch == "facebook" else 1.0) * (0.5 if (ch == "twitter" and mobile) else 1.0)
    goal = (0.01 + 0.08 * c ** 2) * np.where((ch in ("reddit", "pinterest")) & (c > 0.5), 2.5, 1.0)
    return np.clip(churn, 0.001, 0.25), np.clip(conv, 1e-4, 0.08), np.clip(goal, 0.002, 0.3)


def _outcome(p: np.ndarray, hz: np.ndarray, horizon: int, q: float, start_in_b: bool) -> np.ndarray:
    """P(outcome in the horizon) from the engaged (A) or fading (B) state, fade exit hazard q."""
    engaged = np.zeros_like(p) if start_in_b else np.ones_like(p)
    return first_outcome_probability(engaged, 1.0 - engaged, p, q, hz, FADE_OUTCOME_FACTOR, horizon)


def _silence(p: np.ndarray, rate: np.ndarray, q: float, days: int):
    """From the end of the user's last active day (engaged), ``days`` days without any event: the likelihood
    of that silence and the state (A, B, dead) at its end, unnormalised. Fading users keep half their rate."""
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
    ev = (act.events.filter(pl.col("day") <= as_of).group_by("user_key", "event").agg(pl.col("n").sum())
          .pivot(on="event", index="user_key", values="n"))
    daily = act.daily.filter(pl.col("day") <= as_of).group_by("user_key").agg(
        pl.col("sessions").sum().alias("sessions"), pl.col("events").sum().alias("events"))
    cz = (act.categories.filter(pl.col("day") <= as_of).group_by("user_key", "value").agg(pl.col("n").sum())
          .pivot(on="value", index="user_key", values="n"))
    out = users.join(daily, on="user_key", how="left").join(ev, on="user_key", how="left").join(
        cz, on="user_key", how="left")
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
    t = truth.select(pl.col("user_id").alias("user_key"), "engagement", "price_sensitivity", "sociability",
                     "favourite_cuisine", pl.col("channel").alias("true_channel"),
                     pl.col("platform").alias("true_platform"))
    users = test.select("user_key", "label", "days_since_signup", "recency_days")
    frame = behaviour(act, split.test, users).join(t, on="user_key", how="left")
    rng = np.random.default_rng(0)
    tables, priors = {}, {}
    post_p = np.zeros(frame.height)
    exact_p = np.zeros(frame.height)
    rate = np.broadcast_to((0.15 + 1.2 * E ** 1.5)[:, None, None, None], (len(E), len(S), len(C), 7))
    fade = ((GRADUAL_FADE_EXIT_HAZARD, GRADUAL_SHARE), (1.0, 1 - GRADUAL_SHARE))
    for i, r in enumerate(frame.iter_rows(named=True)):
        ch, plat = r["true_channel"], r["true_platform"]
        key = (ch, plat)
        if key not in tables:
            churn, conv, goal = _hazards(ch, plat)
            hz = conv if model == "conversion" else goal
            outs = {q: (_outcome(churn, hz, spec.horizon_days, q, start_in_b=False),
                        _outcome(churn, hz, spec.horizon_days, q, start_in_b=True)) for q, _ in fade}
            tables[key] = (churn, outs, np.log1p(-hz))
            pe = _prior(E, 2.0, 2.5, 0.5 * (ch == "reddit") + 0.3 * (ch == "pinterest" and plat == "web"), rng)
            ps = _prior(S, 2.0, 2.0, 0.3 * (ch == "twitter"), rng)
            pc = _prior(C, 2.0, 3.0, 0.8 * (ch == "reddit") + 0.4 * (ch == "pinterest"), rng)
            priors[key] = np.log(pe)[:, None, None, None] + np.log(ps)[None, :, None, None] \
                + np.log(pc)[None, None, :, None] + np.log(FAV_PRIOR)[None, None, None, :]
        churn, outs, log_surv = tables[key]
        seen = r["days_since_signup"] - r["recency_days"]   # days from sign-up to the last active day
        days = seen + 0.5
        mobile = plat != "web"
        n_sess = r["App Open"] if mobile else r["sessions"]
        n_follow = max(r["events"] - n_sess - 1, 0)   # minus the sign-up
        rate1 = 0.15 + 1.2 * E ** 1.5
        ll_e = n_sess * np.log(days * rate1) - days * rate1 + n_follow * np.log(max(n_sess, 1) * (1 + 2 * E)) \
            - max(n_sess, 1) * (1 + 2 * E)
        w_meal, w_like = BASE[plat]
        wl = w_like * (0.3 + 2 * C)[None, :]
        wm = w_meal * (0.7 + 0.9 * S)[:, None]
        pl_ = wl / (wl + wm)
        ll_sc = r["Like"] * np.log(pl_) + r["Meal Viewed"] * np.log1p(-pl_)
        counts = np.array([r[k] for k in CUISINES], dtype=float)
        tag = np.full((7, 7), (1 - FAV_TAG) / 7) + FAV_TAG * np.eye(7)
        ll_fav = (np.log(tag) * counts[None, :]).sum(1)
        ll = priors[key] + ll_e[:, None, None, None] + ll_sc[None, :, :, None] + ll_fav[None, None, None, :] \
            + (seen + 1) * log_surv
        w = np.exp(ll - ll.max())
        fav = CUISINES.index(r["favourite_cuisine"])
        at = (np.abs(E - r["engagement"]).argmin(), np.abs(S - r["price_sensitivity"]).argmin(),
              np.abs(C - r["sociability"]).argmin(), fav)
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
    return {"customer": customer_id, "model": model, "test_as_of": split.test, "users": frame.height,
            "positives": int(y.sum()),
            "bayes_bound.roc_auc": classifier_metrics(y, post_p)["roc_auc"],
            "traits_on_grid.roc_auc": classifier_metrics(y, exact_p)["roc_auc"],
            "oracle_observed.roc_auc": classifier_metrics(y, np.clip(oracle["oracle_observed"], 0, 1))["roc_auc"],
            "oracle_traits.roc_auc": classifier_metrics(y, np.clip(oracle["oracle_traits"], 0, 1))["roc_auc"]}


def main() -> None:
    mlflow.set_tracking_uri(tracking_uri(Paths()))
    runs = mlflow.search_runs(search_all_experiments=True, order_by=["attributes.start_time DESC"])
    latest = runs.drop_duplicates(subset=["tags.customer", "tags.model"]).set_index(["tags.customer", "tags.model"])
    models = sys.argv[1:] or ["conversion", "goal"]
    print("| customer | model | test users (positives) | catboost | logistic | behaviour bound (Bayes) | "
          "traits on the grid, state from silence | oracle_observed | oracle_traits | catboost - bound |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in models:
        b = bound("foodie", m)
        r = latest.loc[("foodie", m)]
        print(f"| foodie | {m} | {b['users']} ({b['positives']}) | {r['metrics.model.roc_auc']:.3f} | "
              f"{r['metrics.logistic.roc_auc']:.3f} | {b['bayes_bound.roc_auc']:.3f} | "
              f"{b['traits_on_grid.roc_auc']:.3f} | {b['oracle_observed.roc_auc']:.3f} | "
              f"{b['oracle_traits.roc_auc']:.3f} | "
              f"{r['metrics.model.roc_auc'] - b['bayes_bound.roc_auc']:+.3f} |")


if __name__ == "__main__":
    main()
