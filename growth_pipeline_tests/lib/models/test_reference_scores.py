"""Reference scores for the demo's customers, only through the customer's hook
(growth_pipeline.lib.models.reference_scores)."""

from __future__ import annotations

import pytest

from growth_pipeline.config import Paths


def test_reference_scores_come_only_from_the_customers_hook(tmp_path):
    from growth_pipeline.config import REPO_ROOT, customer_like, load_customers
    from growth_pipeline.lib.models.reference_scores import load_hook, reference_oracle

    pp = customer_like(load_customers(REPO_ROOT / "customers.yaml").get("powerplay"), "pp", tmp_path)
    assert pp.models.reference_scores is not None  # the demo customers opt in, in customers.yaml
    assert reference_oracle(pp, Paths(tmp_path)) is None  # no truth file in the source folder: no references
    plain = pp.model_copy(update={"models": pp.models.model_copy(update={"reference_scores": None})})
    assert reference_oracle(plain, Paths(tmp_path)) is None
    with pytest.raises(ValueError, match="cannot be imported"):
        load_hook("growth_pipeline.nowhere:oracle")
