"""The champion/challenger rule: may a newly trained model replace the one in service? (pure, no I/O)

Every figure is read from the flat metrics dict of one training run (``"<who>.<metric>"``), all computed on the
SAME test set: the new model (``model.*``), its baselines, and, when a champion exists, the champion scored by
the caller on that same test set (``champion.*``). Comparing against the champion's metrics from its own,
older test set would compare two different populations.

The rule, in order:

1. **Baselines.** The primary metric (``roc_auc`` for classifiers, ``normalized_gini`` for ltv, higher is
   better for both) of the model (whichever candidate family serves) must be strictly greater than that of every
   trivial baseline that is present: the one-feature ``rule``. The other candidates (CatBoost, logistic /
   linear, buy-till-you-die) and the historical average (ltv) are reported next to it, not gates: the
   training step chose the one to serve among the candidates on the validation set. Absent (or NaN)
   baselines are ignored, but at least one
   must be present: a model that was compared with nothing is refused.
2. **ltv totals.** An ltv model must also predict the total revenue of the test users within 15%
   (``model.total_ratio`` in ``[0.85, 1.15]``); a good ordering with a wrong total would mislead anyone
   summing predictions. On a small test set, where a few large spenders decide the actual total, a ratio outside
   the range passes when its bootstrap 90% interval (``model.total_ratio_lo90`` / ``_hi90``) contains 1.
   MAE is never used: on zero-inflated revenue it rewards predicting zero for everyone.
3. **Champion.** If a champion exists, the model must be strictly better than ``champion.<primary>`` and
   clearly so: on at least ``MIN_WIN_RATE`` (90%) of paired bootstrap resamples of the test set
   (``champion.new_win_rate``, when the caller computed it). A retrain on unchanged data, or a gain of 0.0005 AUC
   on a few thousand users, keeps the champion: the registry does not churn on noise.

Failing 1 or 2 refuses the model (``beats_baselines=False``); failing 3 keeps the champion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from growth_pipeline.lib.models.metrics import PRIMARY_METRIC

BASELINES: dict[str, tuple[str, ...]] = {
    "classifier": ("rule",),
    "ltv": ("rule",),
}
LTV_TOTAL_RATIO_RANGE = (0.85, 1.15)
MIN_WIN_RATE = 0.9


@dataclass(frozen=True)
class Decision:
    promote: bool
    beats_baselines: bool
    reason: str
    primary_metric: str
    new_value: float
    champion_value: float | None

    @property
    def outcome(self) -> str:
        """``promoted``, ``kept`` (good model, the champion stays) or ``refused`` (not good enough to serve)."""
        if self.promote:
            return "promoted"
        return "kept" if self.beats_baselines else "refused"


def _value(metrics: dict[str, Any], key: str) -> float | None:
    """The metric as a float, or None when absent, None, NaN or not a number."""
    v = metrics.get(key)
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _fmt(a: float, b: float | None = None) -> tuple[str, str]:
    """Both numbers with 3 decimals, or more when 3 would print two different numbers alike."""
    if b is None:
        return f"{a:.3f}", ""
    for digits in (3, 4, 5, 6):
        sa, sb = f"{a:.{digits}f}", f"{b:.{digits}f}"
        if (sa != sb) == (a != b):
            return sa, sb
    return repr(a), repr(b)


def decide(
    kind: Literal["classifier", "ltv"],
    metrics: dict[str, float],
    has_champion: bool,
    champion_version: str | int | None = None,
) -> Decision:
    """Apply the rule of this module to one run's ``metrics``; ``champion_version`` only names it in the reason."""
    if kind not in BASELINES:
        raise ValueError(f"unknown model kind {kind!r}; expected 'classifier' or 'ltv'")
    primary = PRIMARY_METRIC[kind]
    new = _value(metrics, f"model.{primary}")
    champ = _value(metrics, f"champion.{primary}") if has_champion else None

    def refuse(reason: str) -> Decision:
        return Decision(
            promote=False,
            beats_baselines=False,
            reason=reason,
            primary_metric=primary,
            new_value=new if new is not None else float("nan"),
            champion_value=champ,
        )

    if new is None:
        return refuse(f"model.{primary} is missing or NaN: nothing to compare")

    present = [(b, v) for b in BASELINES[kind] if (v := _value(metrics, f"{b}.{primary}")) is not None]
    if not present:
        wanted = ", ".join(f"{b}.{primary}" for b in BASELINES[kind])
        return refuse(f"no baseline to compare with (none of {wanted} is present): refused")

    failed = []
    for name, value in present:
        if not new > value:
            s_new, s_base = _fmt(new, value)
            failed.append(f"model {primary} {s_new} does not beat {name} {s_base}")
    if failed:
        return refuse("; ".join(failed))

    if kind == "ltv":
        ratio = _value(metrics, "model.total_ratio")
        lo, hi = LTV_TOTAL_RATIO_RANGE
        if ratio is None:
            return refuse(
                "model.total_ratio is missing or NaN (no actual revenue in the test window?): "
                "cannot check the predicted total"
            )
        if not lo <= ratio <= hi:
            r_lo, r_hi = _value(metrics, "model.total_ratio_lo90"), _value(metrics, "model.total_ratio_hi90")
            if r_lo is None or r_hi is None or not r_lo <= 1.0 <= r_hi:
                return refuse(f"predicted total is {ratio:.3f} x the actual total, outside [{lo}, {hi}]")
            # a small test set: a few large spenders decide the actual total, and the ratio's 90% interval says
            # the model's total cannot be told from the actual one; the ordering then decides
            ratio_note = f" (outside [{lo}, {hi}], but its 90% interval [{r_lo:.2f}, {r_hi:.2f}] contains 1)"
        else:
            ratio_note = ""

    beaten = ", ".join(f"{name} {_fmt(v)[0]}" for name, v in present)
    if kind == "ltv":
        beaten += f"; total ratio {ratio:.3f}{ratio_note}"
    who = f"champion v{champion_version}" if champion_version is not None else "champion"
    if has_champion:
        if champ is None:
            return Decision(
                promote=False,
                beats_baselines=True,
                primary_metric=primary,
                new_value=new,
                champion_value=None,
                reason=f"{who} exists but champion.{primary} is missing or NaN: it was not scored on "
                f"this test set, so the champion keeps",
            )
        if new <= champ:
            s_champ, s_new = _fmt(champ, new)
            return Decision(
                promote=False,
                beats_baselines=True,
                primary_metric=primary,
                new_value=new,
                champion_value=champ,
                reason=f"{who} keeps: {s_champ} >= {s_new}",
            )
        s_new, s_champ = _fmt(new, champ)
        win = _value(metrics, "champion.new_win_rate")
        if win is not None and win < MIN_WIN_RATE:
            return Decision(
                promote=False,
                beats_baselines=True,
                primary_metric=primary,
                new_value=new,
                champion_value=champ,
                reason=f"{who} keeps: model {primary} {s_new} against {s_champ} is not clearly better "
                f"(higher on {win:.0%} of paired bootstrap resamples of the test set; "
                f"{MIN_WIN_RATE:.0%} needed)",
            )
        return Decision(
            promote=True,
            beats_baselines=True,
            primary_metric=primary,
            new_value=new,
            champion_value=champ,
            reason=f"model {primary} {s_new} beats {who} {s_champ}"
            + (f" (on {win:.0%} of paired bootstrap resamples)" if win is not None else "")
            + f" and baselines ({beaten})",
        )
    return Decision(
        promote=True,
        beats_baselines=True,
        primary_metric=primary,
        new_value=new,
        champion_value=None,
        reason=f"no champion yet; model {primary} {_fmt(new)[0]} beats baselines ({beaten})",
    )
