"""Reference scores: an optional hook that scores a model's test set from knowledge a model cannot have, so its
quality can be read against the best achievable (the demo's oracles). For comparison only: reference scores are
logged as metrics (``<who>.roc_auc``, ``<who>.normalized_gini``, ``<who>.rmse``) and never serve or gate.

Training never imports the demo. A customer opts in in customers.yaml; only the demo customers do, with the
generator's hidden truth::

    models:
      reference_scores:
        hook: growth_pipeline.lib.demo.oracle:truth_oracle
        file: truth.parquet         # relative to the customer's source folder

``hook`` (``module:function``) is imported when one of the customer's models trains and called with the path of
``file``; it returns an :data:`~growth_pipeline.lib.models.training.OracleFn` (test frame, as-of date, label spec
-> ``{"<who>": scores}``), or None when it has nothing to say (no such file: no reference scores). Benchmarks and
notebooks pass ``oracle=`` to :func:`~growth_pipeline.lib.models.training.train_model` directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from growth_pipeline.config import Customer, Paths
    from growth_pipeline.lib.models.training import OracleFn


def load_hook(hook: str) -> Callable[[Path], OracleFn | None]:
    """The function ``module:function`` names."""
    module, _, name = hook.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"reference_scores hook {hook!r} cannot be imported: {exc}") from exc


def reference_oracle(customer: Customer, paths: Paths) -> OracleFn | None:
    """The customer's reference scorer for train_model's ``oracle=``, or None when it has none configured."""
    settings = customer.models.reference_scores
    if settings is None:
        return None
    return load_hook(settings.hook)(customer.source_path(paths) / settings.file)
