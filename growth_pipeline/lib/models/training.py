"""Training one model of one customer: a time-based split, every candidate family fitted on the same rows, the
best one on the pooled validation snapshots chosen to serve, every figure reported on the same test set with a
bootstrap 90% interval. No Dagster, no MLflow: the asset logs what this returns.

Split: test on the latest as-of date whose label window has matured; validate on the snapshot one horizon earlier
and a few before it (pooled), on a fixed quarter of the users that never train; train on the other users'
snapshots before those. Training and validation label windows end on or
before the test as-of date, so no label window of the test set overlaps the training data. Snapshots are weekly;
when the history is too short for enough weekly ones they come closer together (down to daily), and each row is
then weighted by one over the number of training snapshots its user appears in, so no user dominates.

Drift retrain (``shift_start`` given: the run's trigger is drift and carries when the shift began): the same test
snapshot (the latest matured one, post-drift), but training reaches the latest snapshot whose labels end on the
test date, so post-drift snapshots train; the pooled validation snapshots are the most recent ones (held-out users,
the same as-of dates as the latest training snapshots: a time-ordered validation on the newest data), and every
post-drift training row weighs POST_DRIFT_WEIGHT times a pre-drift one, through the same :func:`user_weights`.

Candidates (:mod:`growth_pipeline.lib.models.candidates`): CatBoost, a logistic (ltv: ridge) regression on the same
features, and for churn and ltv a buy-till-you-die model. The one serving is the best on the pooled validation
set among those that beat the one-feature rule on the test set (ltv: with its total within the gate's range);
the promotion gate then decides whether it may replace the champion.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

import numpy as np
import polars as pl

from growth_pipeline.lib.analytics import charts
from growth_pipeline.lib.features.user_features import Activity, build_features, feature_columns
from growth_pipeline.lib.models import candidates, purchase_models
from growth_pipeline.lib.models.calibration import Calibrator, choose_calibrator
from growth_pipeline.lib.models.labels import LabelSpec, attach_labels, population
from growth_pipeline.lib.models.metrics import (
    PRIMARY_METRIC,
    bootstrap_intervals,
    classifier_metrics,
    paired_bootstrap_difference,
    regression_metrics,
)
from growth_pipeline.lib.models.model_types import TrainedModel, model_input
from growth_pipeline.lib.models.promotion import decide
from growth_pipeline.lib.models.split import (
    POST_DRIFT_WEIGHT,
    NotEnoughData,
    split_dates,
    user_weights,
    validation_users,
    weighting_summary,
)

MIN_CLASS_ROWS = {"train": 30, "valid": 10, "test": 10}
MIN_SCALE_PAYERS = 50  # payers the latest validation window needs to set the ltv scale on its own
VALID_SNAPSHOT_TRIES = (3, 6, 10)  # more pooled validation snapshots while the pooled set is short of a class
INTERVAL_KEYS = {"classifier": ("roc_auc",), "ltv": ("normalized_gini", "rmse", "decile_mape", "total_ratio")}
RULES = {"churn": "recency_days", "conversion": "events_7d", "goal": "events_7d", "ltv": "lifetime_revenue"}

# Oracle: given the test frame, its as-of date and the label, the scores that the hidden truth gives
# (demo data only); keys become metric prefixes ("oracle", "oracle_traits").
OracleFn = Callable[[pl.DataFrame, date, LabelSpec], dict[str, np.ndarray]]


def model_features(act: Activity, as_of: date, spec: LabelSpec, features: pl.DataFrame | None = None) -> pl.DataFrame:
    """The feature frame a model of ``spec`` reads as of ``as_of``: every user's features, with the
    buy-till-you-die columns for the model's horizon (fitted on data up to ``as_of``). Training and scoring
    both build it here. ``features``: ``build_features(act, as_of)`` when the caller has it already."""
    features = build_features(act, as_of) if features is None else features
    return purchase_models.add_features(features, act, as_of, spec.horizon_days)


def labelled_snapshot(act: Activity, as_of: date, spec: LabelSpec) -> pl.DataFrame:
    features = model_features(act, as_of, spec)
    if features.is_empty():
        return features
    # sorted: joins do not keep row order, and CatBoost's result depends on it (same data, same model)
    return attach_labels(population(features, spec), act.daily, as_of, spec).sort("user_key")


def outcome_words(spec: LabelSpec) -> tuple[str, str]:
    """(positives, negatives) of a model's label in words, for reasons a reader can act on."""
    h = f"{spec.horizon_days}-day window"
    return {
        "churn": (
            f"users who stopped (no activity in a {h})"
            if not spec.use_churn_event
            else f"users who sent the churn event in a {h}",
            f"users who stayed active in a {h}",
        ),
        "conversion": (f"users who converted in a {h}", f"users who did not convert in a {h}"),
        "goal": (f"users who reached the goal in a {h}", f"users who did not reach it in a {h}"),
        "ltv": (f"users with revenue in a {h}", f"users without revenue in a {h}"),
    }[spec.model]


def count_problem(name: str, frame: pl.DataFrame, spec: LabelSpec) -> str | None:
    """Why a split's rows cannot train or judge a model, in words naming what is missing; None when they can."""
    need = MIN_CLASS_ROWS[name]
    where = {
        "train": "the training snapshots",
        "valid": "the pooled validation snapshots",
        "test": "the test snapshot",
    }[name]
    if frame.is_empty():
        return f"{spec.model}: no users in the model's population in {where}"
    pos_words, neg_words = outcome_words(spec)
    if spec.kind == "classifier":
        pos = int(frame["label"].sum())
        neg = frame.height - pos
        if pos < need:
            return f"{spec.model}: fewer than {need} {pos_words} in {where} ({pos} of {frame.height} users)"
        if neg < need:
            return f"{spec.model}: fewer than {need} {neg_words} in {where} ({neg} of {frame.height} users)"
        return None
    payers = int((frame["label"] > 0).sum())
    if payers < need:
        return f"{spec.model}: fewer than {need} {pos_words} in {where} ({payers} of {frame.height} users)"
    return None


def catboost_params(kind: str, thread_count: int, seed: int = 0, **overrides) -> dict:
    base = dict(
        iterations=2000,
        learning_rate=0.05,
        depth=6,
        l2_leaf_reg=5.0,
        random_seed=seed,
        thread_count=thread_count,
        allow_writing_files=False,
        verbose=False,
        use_best_model=True,
        early_stopping_rounds=150,
    )
    if kind == "classifier":
        # early stopping on log loss, not AUC: AUC of a few hundred validation positives jumps from tree to tree
        # and stopped models after 20-50 trees (foodie goal: test AUC 0.708 with AUC, 0.716 with log loss);
        # log loss is also the proper score for the probabilities we publish
        base.update(loss_function="Logloss", eval_metric="Logloss")
    else:
        # revenue is zero for most users and skewed for the rest: a Tweedie loss models both at once
        base.update(loss_function="Tweedie:variance_power=1.5", eval_metric="Tweedie:variance_power=1.5")
    base.update(overrides)
    return base


def _rank01(x: np.ndarray) -> np.ndarray:
    """Scores of a rule as ranks in [0, 1] (only the order matters for AUC, lift and gains)."""
    order = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    return (order + 0.5) / len(x)


RULE_METRICS = ("roc_auc", "pr_auc", "top_decile_lift", "lift_quality")


def _search(kind, thread_count, trials, seed, data, cats, weights=None) -> tuple[dict, list[dict]]:
    """A bounded random search of CatBoost's parameters scored on the (time-based) validation set."""
    rng = np.random.default_rng(seed)
    x_tr, y_tr, x_va, y_va = data
    grid = {
        "depth": [4, 5, 6, 7, 8],
        "learning_rate": [0.02, 0.03, 0.05, 0.08, 0.12],
        "l2_leaf_reg": [1.0, 3.0, 5.0, 9.0, 15.0],
        "random_strength": [0.5, 1.0, 2.0],
    }
    tried = []
    for _ in range(trials):
        cand = {k: v[int(rng.integers(len(v)))] for k, v in grid.items()}
        model = candidates.fit_catboost(
            kind, catboost_params(kind, thread_count, seed, **cand), x_tr, y_tr, x_va, y_va, cats, weights
        )
        score = model.get_best_score()["validation"]
        metric = next(iter(score))
        value = -score[metric]  # both eval metrics (log loss, Tweedie deviance) are losses
        tried.append({**cand, "score": value})
    best = max(tried, key=lambda t: t["score"])
    return {k: v for k, v in best.items() if k != "score"}, tried


class _Fitted:
    """One candidate during training: the estimator, its features, its calibrator and its raw test scores."""

    def __init__(self, family: str, kind: str, estimator, feats: list[str], cats: list[str]):
        self.family, self.kind, self.estimator, self.feats, self.cats = family, kind, estimator, feats, cats
        self.calibrator = None
        self.raw_test: np.ndarray | None = None

    def raw(self, frame: pl.DataFrame) -> np.ndarray:
        return candidates.raw_scores(self.family, self.kind, self.estimator, self.feats, self.cats, frame)


def _calibrate(c: _Fitted, raw: np.ndarray, y_va: np.ndarray, latest: np.ndarray, seed: int) -> str:
    """Fit ``c.calibrator`` on the candidate's raw validation scores. Classifiers: the calibration chosen on the
    pooled validation set. ltv: a scale that matches the total of the latest validation window (revenue per user
    drifts as the customer grows; trees do not extrapolate)."""
    if c.kind == "classifier":
        c.calibrator, report = choose_calibrator(raw, y_va, seed=seed)
        return f"{c.family} calibration: {report.get('chosen')} ({report})"
    # the latest window alone when it has enough payers to fix a total; a small customer's pools all windows
    rows = latest if int((y_va[latest] > 0).sum()) >= MIN_SCALE_PAYERS else np.ones_like(latest)
    c.calibrator = Calibrator("scale").fit(raw[rows], y_va[rows])
    return f"{c.family} ltv scale from validation ({int(rows.sum())} rows): x{c.calibrator.factor:.3f}"


def _passes_gate(kind: str, metrics: dict[str, float], who: str) -> bool:
    """Would candidate ``who`` pass the promotion gate's baseline rule (promotion.decide) on this test set?"""
    as_model = {f"model.{k.removeprefix(who + '.')}": v for k, v in metrics.items() if k.startswith(who + ".")}
    rule = {k: v for k, v in metrics.items() if k.startswith("rule.")}
    return decide(kind, {**as_model, **rule}, has_champion=False).beats_baselines


def _metrics_of(who: str, kind: str, y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    m = classifier_metrics(y, score) if kind == "classifier" else regression_metrics(y, score)
    out = {f"{who}.{k}": v for k, v in m.items()}
    for k, (lo, hi) in bootstrap_intervals(y, score, kind, INTERVAL_KEYS[kind]).items():
        out[f"{who}.{k}_lo90"], out[f"{who}.{k}_hi90"] = lo, hi
    return out


def train_model(
    act: Activity,
    spec: LabelSpec,
    customer: str,
    *,
    thread_count: int = 2,
    step_days: int = 7,
    max_train: int = 26,
    valid_snapshots: int = 3,
    search: bool = False,
    search_trials: int = 20,
    seed: int = 0,
    catboost_overrides: dict | None = None,
    oracle: OracleFn | None = None,
    families: tuple[str, ...] = candidates.FAMILIES,
    log: Callable[[str], None] = print,
    shift_start: date | None = None,
) -> TrainedModel:
    """Train every candidate of one model (of ``families``), choose the one to serve, evaluate all on the same
    test set; raises NotEnoughData, with what is missing in words, when the customer's data cannot support any
    model. ``shift_start``: a drift retrain (the drift split and post-drift weights, see the module text)."""
    t0 = time.perf_counter()
    snapshots: dict[date, pl.DataFrame] = {}

    def snapshot(d: date) -> pl.DataFrame:
        if d not in snapshots:
            snapshots[d] = labelled_snapshot(act, d, spec)
        return snapshots[d]

    def stack(dates):
        frames = [s for d in dates if not (s := snapshot(d)).is_empty()]
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    # the pooled validation set grows (from the training snapshots) while it is what lacks a class
    for n_valid in VALID_SNAPSHOT_TRIES:
        split = split_dates(act.first_day, act.last_day, spec, step_days, max_train, n_valid, shift_start)
        train, valid, test = stack(split.train), stack(split.valid_all), snapshot(split.test)
        if not train.is_empty() and not valid.is_empty():
            held = validation_users(pl.concat([train["user_key"], valid["user_key"]]).unique())
            train = train.filter(~pl.col("user_key").is_in(held))
            valid = valid.filter(pl.col("user_key").is_in(held))
        problems = {
            name: p
            for name, frame in (("test", test), ("valid", valid), ("train", train))
            if (p := count_problem(name, frame, spec))
        }
        if set(problems) != {"valid"}:
            break
    if problems:
        raise NotEnoughData(next(iter(problems.values())))
    feats, cats = feature_columns(train)
    per_user = split.step_days < 7
    weights = (
        user_weights(train, per_user=per_user, shift_start=shift_start) if per_user or shift_start is not None else None
    )
    weighting = weighting_summary(train, weights, shift_start, per_user) if weights is not None else {}
    how = [w for w, on in (("users weighted equally", per_user), ("post-drift rows weighted up", shift_start)) if on]
    if shift_start is not None:
        notes_drift = (
            f"drift retrain (shift began {shift_start}): {weighting['post_drift_rows']} of {train.height} training "
            f"rows post-drift, weighing x{POST_DRIFT_WEIGHT:g} ({weighting['post_drift_weight_share']:.0%} of the "
            f"weight); validation on the latest snapshots {', '.join(str(d) for d in split.valid_all)}"
        )
    log(
        f"{customer}/{spec.model}: {train.height} train rows over {len(split.train)} snapshots "
        f"({split.step_days}-day steps{', ' + ', '.join(how) if how else ''}), "
        f"{valid.height} valid over {len(split.valid_all)}, {test.height} test, {len(feats)} features "
        f"({time.perf_counter() - t0:.1f} s)"
    )

    x_tr, x_va = (model_input(f, feats, cats).to_pandas() for f in (train, valid))
    y_tr, y_va, y_te = (f["label"].to_numpy() for f in (train, valid, test))
    notes: list[str] = [notes_drift] if shift_start is not None else []
    fitted: list[_Fitted] = []
    cb = None
    if "catboost" in families:
        overrides: dict = dict(catboost_overrides or {})
        if search:
            overrides, tried = _search(
                spec.kind, thread_count, search_trials, seed, (x_tr, y_tr, x_va, y_va), cats, weights
            )
            notes.append(f"hyperparameter search over {len(tried)} candidates chose {overrides}")
        params = catboost_params(spec.kind, thread_count, seed, **overrides)
        cb = candidates.fit_catboost(spec.kind, params, x_tr, y_tr, x_va, y_va, cats, weights)
        fitted.append(_Fitted("catboost", spec.kind, cb, feats, cats))
        log(
            f"{customer}/{spec.model}: CatBoost stopped at {cb.get_best_iteration()} trees "
            f"({time.perf_counter() - t0:.1f} s)"
        )
    linear_family = candidates.LINEAR_FAMILY[spec.kind]
    if linear_family in families:
        fitted.append(
            _Fitted(
                linear_family,
                spec.kind,
                candidates.fit_linear(spec.kind, feats, cats, x_tr, y_tr, weights, seed),
                feats,
                cats,
            )
        )
    output = purchase_models.candidate_output(spec.model, spec.kind, spec.use_churn_event, spec.population)
    if output is not None and "btyd" in families:
        # the fits of the latest training date (made, and cached, when its snapshot was built); the medians its
        # explanations compare with come from the population of that date
        latest_train = max(split.train)
        fits = act.btyd_fits.get(latest_train) or purchase_models.fits_for(
            act, latest_train, build_features(act, latest_train)
        )
        try:
            bt = purchase_models.fit_candidate(
                output, spec.horizon_days, fits, train.filter(pl.col("as_of") == latest_train)
            )
            fitted.append(_Fitted("btyd", spec.kind, bt, bt.feature_names, []))
        except ValueError as exc:
            notes.append(f"no buy-till-you-die candidate: {exc}")
    if not fitted:
        raise ValueError(f"{spec.model}: none of the families {families} applies to this model")

    latest = (valid["as_of"] == split.valid).to_numpy()  # the validation window closest to the test one
    metrics: dict[str, float] = {}
    preds: dict[str, np.ndarray] = {}
    primary = PRIMARY_METRIC[spec.kind]
    for c in fitted:
        raw_va, c.raw_test = c.raw(valid), c.raw(test)
        notes.append(_calibrate(c, raw_va, y_va, latest, seed))
        # on raw scores: calibration keeps the order (the ltv scale is one factor), so it cannot change the choice
        score_of = classifier_metrics if spec.kind == "classifier" else regression_metrics
        metrics[f"valid.{c.family}.{primary}"] = score_of(y_va, raw_va)[primary]
        preds[c.family] = c.calibrator.transform(c.raw_test)
        metrics.update(_metrics_of(c.family, spec.kind, y_te, preds[c.family]))

    rule_feature = RULES[spec.model]
    rule_te = test[rule_feature].fill_null(0).to_numpy().astype(float)
    if spec.kind == "classifier":
        rule_m = classifier_metrics(y_te, _rank01(rule_te))
        metrics.update({f"rule.{k}": rule_m[k] for k in RULE_METRICS})
        preds[f"rule: {rule_feature}"] = _rank01(rule_te)
    else:
        hist = test["revenue_90d"].fill_null(0).to_numpy() / 90.0 * spec.horizon_days
        metrics.update(_metrics_of("historical_average", spec.kind, y_te, hist))
        metrics["rule.normalized_gini"] = regression_metrics(y_te, rule_te)["normalized_gini"]
        preds["historical_average"] = hist
        preds[f"rule: {rule_feature}"] = rule_te

    # serve the best on validation among the candidates that pass the gate's rule on the test set
    ranked = sorted(fitted, key=lambda c: -metrics[f"valid.{c.family}.{primary}"])
    served = next((c for c in ranked if _passes_gate(spec.kind, metrics, c.family)), ranked[0])
    order = ", ".join(f"{c.family} {metrics[f'valid.{c.family}.{primary}']:.3f}" for c in ranked)
    notes.append(f"validation {primary}: {order}; serving {served.family}")
    log(
        f"{customer}/{spec.model}: validation {primary} {order}: serving {served.family} "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    if "btyd" in preds:  # how far each candidate is ahead of the buy-till-you-die model, beyond noise or not
        for c in fitted:
            if c.family != "btyd":
                d, lo, hi = paired_bootstrap_difference(y_te, preds[c.family], preds["btyd"], spec.kind)
                key = f"{c.family}.{primary}_minus_btyd"
                metrics[key], metrics[f"{key}_lo90"], metrics[f"{key}_hi90"] = d, lo, hi
    metrics.update(
        {
            k.replace(f"{served.family}.", "model.", 1): v
            for k, v in list(metrics.items())
            if k.startswith(f"{served.family}.")
        }
    )
    preds["model"] = preds[served.family]
    if spec.kind == "classifier":
        metrics["model.ece_uncalibrated"] = classifier_metrics(y_te, served.raw_test)["ece"]
    else:
        raw_total = served.raw_test.sum()
        metrics["model.total_ratio_unscaled"] = float(raw_total / y_te.sum()) if y_te.sum() > 0 else float("nan")
    if cb is not None:
        metrics["catboost.best_iteration"] = float(cb.get_best_iteration() or 0)
    metrics["train_seconds"] = time.perf_counter() - t0
    rows = {"train": train.height, "valid": valid.height, "test": test.height}
    for part, y in (("train", y_tr), ("valid", y_va), ("test", y_te)):
        rows[f"{part}_positives" if spec.kind == "classifier" else f"{part}_payers"] = int((y > 0).sum())

    if oracle is not None:
        for who, scores in oracle(test, split.test, spec).items():
            if spec.kind == "classifier":
                metrics[f"{who}.roc_auc"] = classifier_metrics(y_te, np.clip(scores, 0, 1))["roc_auc"]
            else:
                metrics[f"{who}.normalized_gini"] = regression_metrics(y_te, scores)["normalized_gini"]
                metrics[f"{who}.rmse"] = regression_metrics(y_te, scores)["rmse"]

    from growth_pipeline.lib.scoring.explain import global_importance, reasons_frame, top_reasons

    shap_rows = test.head(5000)
    contrib = candidates.contributions(
        served.family, spec.kind, served.estimator, served.feats, served.cats, shap_rows, thread_count=thread_count
    )
    importance = global_importance(contrib, served.feats).select("feature", (pl.col("share") * 100).alias("importance"))
    reasons = (
        reasons_frame(shap_rows["user_key"], top_reasons(contrib, shap_rows, served.feats, labels=act.labels))
        .with_columns(
            pl.Series("score", preds["model"][: shap_rows.height]), pl.Series("label", y_te[: shap_rows.height])
        )
        .select("user_key", "score", "label", "reason_1", "reason_2", "reason_3")
        .sort("score", descending=True)
    )
    title = f"{customer} - {spec.model} (test as of {split.test})"
    chart_bytes = {
        "feature_importance.png": charts.bar_chart(
            importance["feature"].head(20).to_list(),
            importance["importance"].head(20).to_list(),
            f"{title}: feature importance ({served.family})",
            "share of mean |contribution| (%)",
        )
    }
    shown = {k: v for k, v in preds.items() if k != "model"}
    chart_bytes["gains_and_lift.png"] = charts.gains_and_lift_chart(y_te, shown, title)
    if spec.kind == "classifier":
        chart_bytes["calibration.png"] = charts.calibration_chart(
            y_te,
            {**{c.family: preds[c.family] for c in fitted}, f"{served.family} uncalibrated": served.raw_test},
            title,
        )
    else:
        chart_bytes["deciles.png"] = charts.decile_chart(
            y_te,
            {**{c.family: preds[c.family] for c in fitted}, "historical_average": preds["historical_average"]},
            title,
        )
    family_params = (
        served.estimator.to_dict()
        if served.family == "btyd"
        else {k: v for k, v in served.estimator.pipeline.get_params().items() if k.startswith("model__")}
        if served.family in ("logistic", "linear")
        else {}
    )
    return TrainedModel(
        customer=customer,
        model_name=spec.model,
        kind=spec.kind,
        model=served.estimator,
        family=served.family,
        feature_names=served.feats,
        cat_features=served.cats,
        calibrator=served.calibrator,
        label_definition=spec.as_dict(),
        catboost_params={**cb.get_all_params(), **cb.get_params()} if cb is not None else {},
        family_params=family_params,
        split=split,
        metrics=metrics,
        rows=rows,
        test_frame=test.select(
            ["user_key", "label", *[f for f in dict.fromkeys([*served.feats, *feats]) if f in test.columns]]
        ),
        test_predictions=preds,
        importance=importance,
        shap_values=contrib,
        charts=chart_bytes,
        reasons=reasons,
        notes=notes,
        weights=weights is not None,
        weighting=weighting,
    )
