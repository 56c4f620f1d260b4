"""The best achievable scores on demo data: the generator's hidden truth turned into probabilities for a test
set, so model quality can be compared with what the true traits achieve. Used only when the customer's
source folder holds the generator's ``truth.parquet``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from growth_pipeline.lib.demo_data import true_outcome_probability
from growth_pipeline.lib.labels import LabelSpec


def truth_oracle(truth_file: Path):
    """An oracle function for training.train_model, or None when there is no truth file."""
    if not truth_file.exists():
        return None
    truth = pl.read_parquet(truth_file)

    def oracle(test: pl.DataFrame, as_of: date, spec: LabelSpec) -> dict[str, np.ndarray]:
        out = {}
        # "oracle": traits and the hidden engaged/fading state; "oracle_traits": the traits alone
        for who, hidden in (("oracle", True), ("oracle_traits", False)):
            t = true_outcome_probability(truth, spec.model, as_of, spec.horizon_days, hidden_state=hidden)
            value = t.columns[1]
            # users the truth no longer counts as at risk: already churned (churn certain, nothing else)
            fill = 1.0 if spec.model == "churn" else 0.0
            joined = test.select("user_key").join(t.rename({"user_id": "user_key"}), on="user_key", how="left")
            out[who] = joined[value].fill_null(fill).to_numpy()
        return out

    return oracle
