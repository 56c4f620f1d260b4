"""The best achievable scores on demo data: the generator's hidden truth turned into probabilities for a test
set, so model quality can be compared with what the true traits achieve. Used only when the customer's
source folder holds the generator's ``truth.parquet``.

Three references, by how much hidden state they know (metric prefixes in MLflow; oracle_observed can still
beat oracle_traits on churn, since it weighs up users who went quiet):

- ``oracle``: the traits and the hidden engaged/fading/churned state on the as-of date;
- ``oracle_traits``: the traits and whether the user has already churned (silently: a churned user sends
  nothing, so this knows who of a quiet population is gone), every live user treated as engaged;
- ``oracle_observed``: the traits, with the state inferred from what the model also sees: the days since the
  user's last event. From the end of that day the user is taken as engaged; each silent day the user may start
  to fade (churn hazard) and drop out (fade exit hazard), and the silence itself is evidence (no session under
  the user's session rate, decaying while fading). This is what the true traits achieve without a view of the
  hidden state.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from growth_pipeline.lib.demo.spec import FADE_ACTIVITY_DECAY
from growth_pipeline.lib.demo.truth import true_outcome_probability
from growth_pipeline.lib.models.labels import LabelSpec


def silence_posterior(
    churn_hazard: np.ndarray, exit_hazard: np.ndarray, session_rate: np.ndarray, silent_days: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(engaged), P(fading), P(churned) of users who were engaged at the end of their last active day and have
    sent nothing for ``silent_days`` days since, under the generator's daily process (per-user arrays)."""
    n = len(churn_hazard)
    horizon = int(silent_days.max()) if n else 0
    a = np.ones(n)
    b = np.zeros((n, horizon + 1))  # fading, by days spent fading (activity decays with it)
    dead = np.zeros(n)
    # P(no session in a day): engaged, and fading for 0, 1, 2 ... days (the rate decays 0.8 per day of fading)
    quiet_a = np.exp(-session_rate)
    quiet_b = np.exp(-session_rate[:, None] * FADE_ACTIVITY_DECAY ** np.arange(1, horizon + 2)[None, :])
    for day in range(1, horizon + 1):
        going = day <= silent_days  # users whose silence is not over yet
        b_next = np.zeros_like(b)
        b_next[:, 1:] = b[:, :-1]
        b_next[:, 0] = a * churn_hazard
        dying = b_next * exit_hazard[:, None]
        b_next = b_next - dying
        a_new = a * (1 - churn_hazard) * quiet_a
        b_new = b_next * quiet_b
        dead_new = dead + dying.sum(1)
        a = np.where(going, a_new, a)
        b = np.where(going[:, None], b_new, b)
        dead = np.where(going, dead_new, dead)
    b_total = b.sum(1)
    z = a + b_total + dead
    return a / z, b_total / z, dead / z


def observed_state_probability(truth: pl.DataFrame, test: pl.DataFrame, as_of: date, spec: LabelSpec) -> np.ndarray:
    """The ``oracle_observed`` score of each row of ``test`` (user_key, recency_days): the outcome from the
    engaged and the fading state weighted by the silence posterior; a churned user has churned (1), converts
    or reaches the goal with probability 0, and spends nothing."""
    kind = spec.model
    gone = 1.0 if kind == "churn" else 0.0  # the score of a user who has churned, or is unknown to the truth
    # the truth as if every signed-up user were alive and engaged / alive and fading on the as-of date
    alive = truth.with_columns(pl.lit(None, pl.Date).alias("churn_date"))
    engaged = alive.with_columns(pl.lit(None, pl.Date).alias("fade_start_date"))
    fading = alive.with_columns(pl.lit(as_of).alias("fade_start_date"))
    value = "expected_revenue" if kind == "ltv" else "probability"
    churn_hazard = pl.col("churn_hazard")
    if "churn_hazard_after_change" in truth.columns and truth.height and as_of >= truth["outcome_change_date"][0]:
        churn_hazard = pl.col("churn_hazard_after_change").alias("churn_hazard")  # after an outcome change
    rows = test.select("user_key", pl.col("recency_days").fill_null(0)).join(
        truth.select(pl.col("user_id").alias("user_key"), churn_hazard, "fade_exit_hazard", "sessions_per_day"),
        on="user_key",
        how="left",
        maintain_order="left",
    )
    for name, frame in (("from_a", engaged), ("from_b", fading)):
        t = true_outcome_probability(frame, kind, as_of, spec.horizon_days, hidden_state=True)
        rows = rows.join(
            t.select(pl.col("user_id").alias("user_key"), pl.col(value).alias(name)),
            on="user_key",
            how="left",
            maintain_order="left",
        )
    known = rows["churn_hazard"].is_not_null().to_numpy()
    out = np.full(rows.height, gone)
    if known.any():
        r = rows.filter(pl.Series(known))
        pa, pb, pd = silence_posterior(
            r["churn_hazard"].to_numpy(),
            r["fade_exit_hazard"].to_numpy(),
            r["sessions_per_day"].to_numpy(),
            r["recency_days"].to_numpy(),
        )
        # users the truth no longer counts as at risk (converted, goal reached) get the churned user's score
        from_a, from_b = (r[c].fill_null(gone).to_numpy() for c in ("from_a", "from_b"))
        out[known] = pa * from_a + pb * from_b + pd * gone
    return out


def truth_oracle(truth_file: Path):
    """An oracle function for training.train_model, or None when there is no truth file."""
    if not truth_file.exists():
        return None
    truth = pl.read_parquet(truth_file)

    def oracle(test: pl.DataFrame, as_of: date, spec: LabelSpec) -> dict[str, np.ndarray]:
        out = {}
        for who, hidden in (("oracle", True), ("oracle_traits", False)):
            t = true_outcome_probability(truth, spec.model, as_of, spec.horizon_days, hidden_state=hidden)
            value = t.columns[1]
            # users the truth no longer counts as at risk: already churned (churn certain, nothing else)
            fill = 1.0 if spec.model == "churn" else 0.0
            joined = test.select("user_key").join(
                t.rename({"user_id": "user_key"}), on="user_key", how="left", maintain_order="left"
            )
            out[who] = joined[value].fill_null(fill).to_numpy()
        out["oracle_observed"] = observed_state_probability(truth, test, as_of, spec)
        return out

    return oracle
