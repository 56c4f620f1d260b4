"""Training one model of one customer: time-based split, CatBoost against two simple baselines, metrics on the
same test set, calibration, SHAP. No Dagster, no MLflow: the asset logs what this returns.

Split: test on the latest as-of date whose label window has matured, validate on the as-of date one horizon
earlier, train on weekly snapshots before that. Training and validation label windows end on or before the test
as-of date, so no label window of the test set overlaps the training data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import polars as pl

from growth_pipeline.lib import charts
from growth_pipeline.lib.calibration import Calibrator, choose_calibrator
from growth_pipeline.lib.features import Activity, build_features, feature_columns
from growth_pipeline.lib.labels import LabelSpec, attach_labels, population
from growth_pipeline.lib.metrics import classifier_metrics, regression_metrics
from growth_pipeline.lib.model_types import SplitDates, TrainedModel, model_input

MIN_HISTORY_DAYS = 28      # a snapshot needs this much history before its as-of date for 28-day features
MIN_CLASS_ROWS = {"train": 30, "valid": 10, "test": 10}
RULES = {"churn": "recency_days", "conversion": "events_7d", "goal": "events_7d", "ltv": "lifetime_revenue"}

# Oracle: given the test frame, its as-of date and the label, the scores that the hidden truth gives
# (demo data only); keys become metric prefixes ("oracle", "oracle_traits").
OracleFn = Callable[[pl.DataFrame, date, LabelSpec], dict[str, np.ndarray]]


class NotEnoughData(Exception):
    """Too little history, or too few positives or negatives, for a model worth having."""


def split_dates(first_day: date, last_day: date, spec: LabelSpec, step_days: int = 7,
                max_train: int = 26, valid_snapshots: int = 3) -> SplitDates:
    h = timedelta(days=spec.horizon_days)
    step = timedelta(days=step_days)
    test = last_day - h
    valid = test - h
    earliest = first_day + timedelta(days=MIN_HISTORY_DAYS)
    # validation: the latest snapshot whose window ends on the test date, and a few weekly ones before it
    valid_extra = tuple(d for k in range(1, valid_snapshots) if (d := valid - k * step) >= earliest)
    train = []
    d = (min(valid_extra) if valid_extra else valid) - step
    while d >= earliest and len(train) < max_train:
        train.append(d)
        d -= step
    if not train:
        need = MIN_HISTORY_DAYS + 2 * spec.horizon_days + valid_snapshots * step_days
        have = (last_day - first_day).days + 1
        raise NotEnoughData(f"{spec.model}: a {spec.horizon_days}-day horizon needs at least {need} days of data "
                            f"(history, training, validation and test windows); there are {have}")
    return SplitDates(train=tuple(sorted(train)), valid=valid, test=test, valid_extra=tuple(sorted(valid_extra)))


def labelled_snapshot(act: Activity, as_of: date, spec: LabelSpec) -> pl.DataFrame:
    features = build_features(act, as_of)
    if features.is_empty():
        return features
    # sorted: joins do not keep row order, and CatBoost's result depends on it (same data, same model)
    return attach_labels(population(features, spec), act.daily, as_of, spec).sort("user_key")


def _check_counts(name: str, frame: pl.DataFrame, spec: LabelSpec) -> None:
    need = MIN_CLASS_ROWS[name]
    if frame.is_empty():
        raise NotEnoughData(f"{spec.model}: no users in the {name} population")
    if spec.kind == "classifier":
        pos = int(frame["label"].sum())
        neg = frame.height - pos
        if pos < need or neg < need:
            raise NotEnoughData(f"{spec.model}: the {name} set has {pos} positives and {neg} negatives; "
                                f"at least {need} of each are needed")
    else:
        payers = int((frame["label"] > 0).sum())
        if payers < need:
            raise NotEnoughData(f"{spec.model}: the {name} set has {payers} users with revenue; at least {need} needed")


def catboost_params(kind: str, thread_count: int, seed: int = 0, **overrides) -> dict:
    base = dict(iterations=2000, learning_rate=0.05, depth=6, l2_leaf_reg=5.0, random_seed=seed,
                thread_count=thread_count, allow_writing_files=False, verbose=False, use_best_model=True,
                early_stopping_rounds=150)
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


def _fit_catboost(kind, params, x_tr, y_tr, x_va, y_va, cats):
    from catboost import CatBoostClassifier, CatBoostRegressor, Pool

    cls = CatBoostClassifier if kind == "classifier" else CatBoostRegressor
    model = cls(**params)
    model.fit(Pool(x_tr, y_tr, cat_features=cats), eval_set=Pool(x_va, y_va, cat_features=cats))
    return model


def _search(kind, thread_count, trials, seed, data, cats) -> tuple[dict, list[dict]]:
    """A bounded random search scored on the (time-based) validation set."""
    rng = np.random.default_rng(seed)
    x_tr, y_tr, x_va, y_va = data
    grid = {"depth": [4, 5, 6, 7, 8], "learning_rate": [0.02, 0.03, 0.05, 0.08, 0.12],
            "l2_leaf_reg": [1.0, 3.0, 5.0, 9.0, 15.0], "random_strength": [0.5, 1.0, 2.0]}
    tried = []
    for _ in range(trials):
        cand = {k: v[int(rng.integers(len(v)))] for k, v in grid.items()}
        model = _fit_catboost(kind, catboost_params(kind, thread_count, seed, **cand), x_tr, y_tr, x_va, y_va, cats)
        score = model.get_best_score()["validation"]
        metric = next(iter(score))
        value = -score[metric]   # both eval metrics (log loss, Tweedie deviance) are losses
        tried.append({**cand, "score": value})
    best = max(tried, key=lambda t: t["score"])
    return {k: v for k, v in best.items() if k != "score"}, tried


def _logistic_baseline(kind: str, feats: list[str], cats: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    nums = [f for f in feats if f not in cats]
    signed_log = FunctionTransformer(lambda a: np.sign(a) * np.log1p(np.abs(a)))
    pre = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                          ("log", signed_log), ("scale", StandardScaler())]), nums),
        ("cat", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20), cats),
    ])
    est = LogisticRegression(max_iter=3000, C=1.0) if kind == "classifier" else Ridge(alpha=1.0)
    return Pipeline([("prep", pre), ("model", est)])


def _rank01(x: np.ndarray) -> np.ndarray:
    """Scores of a rule as ranks in [0, 1] (only the order matters for AUC, lift and gains)."""
    order = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    return (order + 0.5) / len(x)


RULE_METRICS = ("roc_auc", "pr_auc", "top_decile_lift", "lift_quality")


def train_model(act: Activity, spec: LabelSpec, customer: str, *, thread_count: int = 2, step_days: int = 7,
                max_train: int = 26, valid_snapshots: int = 3, search: bool = False, search_trials: int = 20,
                seed: int = 0, catboost_overrides: dict | None = None, oracle: OracleFn | None = None,
                log: Callable[[str], None] = print) -> TrainedModel:
    """Train and evaluate one model; raises NotEnoughData when the customer's data cannot support it."""
    t0 = time.perf_counter()
    split = split_dates(act.first_day, act.last_day, spec, step_days, max_train, valid_snapshots)

    def stack(dates):
        frames = [s for d in dates if not (s := labelled_snapshot(act, d, spec)).is_empty()]
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    train = stack(split.train)
    valid = stack(split.valid_all)
    test = labelled_snapshot(act, split.test, spec)
    for name, frame in (("train", train), ("valid", valid), ("test", test)):
        _check_counts(name, frame, spec)
    feats, cats = feature_columns(train)
    log(f"{customer}/{spec.model}: {train.height} train rows over {len(split.train)} snapshots, "
        f"{valid.height} valid, {test.height} test, {len(feats)} features ({time.perf_counter() - t0:.1f} s)")

    x_tr, x_va, x_te = (model_input(f, feats, cats).to_pandas() for f in (train, valid, test))
    y_tr, y_va, y_te = (f["label"].to_numpy() for f in (train, valid, test))
    notes: list[str] = []
    overrides: dict = dict(catboost_overrides or {})
    if search:
        overrides, tried = _search(spec.kind, thread_count, search_trials, seed, (x_tr, y_tr, x_va, y_va), cats)
        notes.append(f"hyperparameter search over {len(tried)} candidates chose {overrides}")
    params = catboost_params(spec.kind, thread_count, seed, **overrides)
    model = _fit_catboost(spec.kind, params, x_tr, y_tr, x_va, y_va, cats)
    log(f"{customer}/{spec.model}: CatBoost stopped at {model.get_best_iteration()} trees "
        f"({time.perf_counter() - t0:.1f} s)")

    baseline = _logistic_baseline(spec.kind, feats, cats)
    baseline.fit(x_tr, y_tr)
    rule_feature = RULES[spec.model]
    rule_te = test[rule_feature].fill_null(0).to_numpy().astype(float)

    metrics: dict[str, float] = {}
    preds: dict[str, np.ndarray] = {}
    calibrator = None
    rows = {"train": train.height, "valid": valid.height, "test": test.height}
    if spec.kind == "classifier":
        p_va_raw = model.predict_proba(x_va)[:, 1]
        calibrator, report = choose_calibrator(p_va_raw, y_va, seed=seed)
        notes.append(f"calibration: {report.get('chosen')} ({report})")
        p_raw = model.predict_proba(x_te)[:, 1]
        p_model = calibrator.transform(p_raw)
        p_logit = baseline.predict_proba(x_te)[:, 1]
        rule_score = rule_te   # churn: longer silence, more risk; the others: more activity, more likely
        preds = {"model": p_model, "logistic": p_logit, f"rule: {rule_feature}": _rank01(rule_score)}
        metrics.update({f"model.{k}": v for k, v in classifier_metrics(y_te, p_model).items()})
        metrics["model.ece_uncalibrated"] = classifier_metrics(y_te, p_raw)["ece"]
        metrics.update({f"logistic.{k}": v for k, v in classifier_metrics(y_te, p_logit).items()})
        rule_m = classifier_metrics(y_te, _rank01(rule_score))
        metrics.update({f"rule.{k}": rule_m[k] for k in RULE_METRICS})
        for part, y in (("train", y_tr), ("valid", y_va), ("test", y_te)):
            rows[f"{part}_positives"] = int(y.sum())
    else:
        # the latest validation window fixes the scale of the totals (revenue per user drifts as the customer
        # grows, and trees do not extrapolate)
        latest = (valid["as_of"] == split.valid).to_numpy()   # the validation window closest to the test one
        calibrator = Calibrator("scale").fit(np.clip(model.predict(x_va[latest]), 0, None), y_va[latest])
        notes.append(f"ltv scale from validation: x{calibrator.factor:.3f}")
        pred_raw = np.clip(model.predict(x_te), 0, None)
        pred = calibrator.transform(pred_raw)
        lin = np.clip(baseline.predict(x_te), 0, None)
        hist = test["revenue_90d"].fill_null(0).to_numpy() / 90.0 * spec.horizon_days
        preds = {"model": pred, "linear": lin, "historical_average": hist, f"rule: {rule_feature}": rule_te}
        for who, p in (("model", pred), ("linear", lin), ("historical_average", hist)):
            metrics.update({f"{who}.{k}": v for k, v in regression_metrics(y_te, p).items()})
        metrics["model.total_ratio_unscaled"] = float(pred_raw.sum() / y_te.sum()) if y_te.sum() > 0 else float("nan")
        metrics["rule.normalized_gini"] = regression_metrics(y_te, rule_te)["normalized_gini"]
        for part, y in (("train", y_tr), ("valid", y_va), ("test", y_te)):
            rows[f"{part}_payers"] = int((y > 0).sum())
    metrics["model.best_iteration"] = float(model.get_best_iteration() or 0)
    metrics["train_seconds"] = time.perf_counter() - t0

    if oracle is not None:
        for who, scores in oracle(test, split.test, spec).items():
            if spec.kind == "classifier":
                metrics[f"{who}.roc_auc"] = classifier_metrics(y_te, np.clip(scores, 0, 1))["roc_auc"]
            else:
                metrics[f"{who}.normalized_gini"] = regression_metrics(y_te, scores)["normalized_gini"]
                metrics[f"{who}.rmse"] = regression_metrics(y_te, scores)["rmse"]

    importance = pl.DataFrame({"feature": feats, "importance": model.get_feature_importance()}).sort(
        "importance", descending=True)
    from growth_pipeline.lib.explain import reasons_frame, shap_matrix, top_reasons

    shap_rows = test.head(5000)
    shap = shap_matrix(model, shap_rows, feats, cats, thread_count=thread_count)
    reasons = reasons_frame(shap_rows["user_key"], top_reasons(shap, shap_rows, feats, labels=act.labels)).with_columns(
        pl.Series("score", preds["model"][: shap_rows.height]), pl.Series("label", y_te[: shap_rows.height])
    ).select("user_key", "score", "label", "reason_1", "reason_2", "reason_3").sort("score", descending=True)
    title = f"{customer} - {spec.model} (test as of {split.test})"
    chart_bytes = {"feature_importance.png": charts.bar_chart(
        importance["feature"].head(20).to_list(), importance["importance"].head(20).to_list(),
        f"{title}: feature importance", "importance (%)")}
    named = {("catboost" if k == "model" else k): v for k, v in preds.items()}
    if spec.kind == "classifier":
        chart_bytes["gains_and_lift.png"] = charts.gains_and_lift_chart(y_te, named, title)
        chart_bytes["calibration.png"] = charts.calibration_chart(
            y_te, {"catboost": preds["model"], "catboost uncalibrated": p_raw, "logistic": preds["logistic"]}, title)
    else:
        chart_bytes["gains_and_lift.png"] = charts.gains_and_lift_chart(y_te, named, title)
        chart_bytes["deciles.png"] = charts.decile_chart(y_te, {"catboost": pred, "linear": lin,
                                                                 "historical_average": hist}, title)
    return TrainedModel(
        customer=customer, model_name=spec.model, kind=spec.kind, model=model, feature_names=feats,
        cat_features=cats, calibrator=calibrator, label_definition=spec.as_dict(),
        catboost_params={**model.get_all_params(), **model.get_params()}, split=split, metrics=metrics, rows=rows,
        test_frame=test.select(["user_key", "label", *feats]), test_predictions=preds, importance=importance,
        shap_values=shap, charts=chart_bytes, reasons=reasons, notes=notes)
