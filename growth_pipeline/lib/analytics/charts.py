"""Evaluation charts as PNG bytes (matplotlib, Agg canvas; pure, no Dagster / MLflow).

Every function returns the PNG bytes and, when ``path`` is given, also writes them there atomically (parent folders
are created). Figures are built on ``matplotlib.figure.Figure`` with an Agg canvas, never through ``pyplot``: no
global figure registry, no GUI backend, nothing to close, and the caller's matplotlib backend is left alone.
PNGs carry no ``Software`` / date metadata, so the same data gives the same bytes on the same installation.

Series are given as ``{name: values}`` (e.g. ``{"catboost": p, "logistic": p2, "rule: recency": r}``), drawn
in that order with the tab10 colours; names starting with ``rule`` or ``baseline`` are drawn dashed so a reader
tells the model from its baselines at a glance.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from growth_pipeline.lib.files import atomic_write_bytes
from growth_pipeline.lib.models.metrics import (
    N_BINS,
    as_array,
    as_pair,
    expected_calibration_error,
    gains_curve,
    gains_table,
    reliability_bins,
)

FIGSIZE = (8.0, 4.5)
DPI = 100
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_CURVE_POINTS = 501
_MAX_LABEL = 45
_COLORS = [f"C{i}" for i in range(10)]


def _new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _render(fig: Figure, path: str | Path | None) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    data = buf.getvalue()
    if path is not None:
        atomic_write_bytes(Path(path), data)
    return data


def _style(i: int, name: str) -> dict[str, Any]:
    baseline = name.lower().startswith(("rule", "baseline"))
    return {
        "color": _COLORS[i % len(_COLORS)],
        "linestyle": "--" if baseline else "-",
        "linewidth": 1.4 if baseline else 2.0,
    }


def _series(y_true: Any, series: Mapping[str, Any], what: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if not series:
        raise ValueError(f"{what}: give at least one series")
    y = as_array(y_true, "y_true")
    out = {}
    for name, v in series.items():
        _, s = as_pair(y, v, f"{what}[{name!r}]")
        out[str(name)] = s
    return y, out


def _resample(x: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The piecewise-linear curve at most at 501 evenly spaced x (keeps charts light for large n)."""
    if len(x) <= _MAX_CURVE_POINTS:
        return x, g
    xs = np.linspace(0.0, 1.0, _MAX_CURVE_POINTS)
    return xs, np.interp(xs, x, g)


def _area(x: np.ndarray, g: np.ndarray) -> float:
    return float(np.sum((g[1:] + g[:-1]) / 2 * np.diff(x)))


def gains_and_lift_chart(
    y_true: Any, scores: Mapping[str, Any], title: str, path: str | Path | None = None, n_bins: int = N_BINS
) -> bytes:
    """Two panels: cumulative gains (with the random diagonal and the perfect model) and lift per decile.

    One line per series in ``scores``; the gains legend shows each one's lift quality (area between its curve
    and the diagonal / the same for the perfect model; on revenue this is the normalized Gini). ``y_true`` is
    0/1 (gains of positives) or non-negative revenue (gains of revenue). Lift panel: decile 1 = highest scores,
    dotted line at 1 = random.
    """
    y, series = _series(y_true, scores, "scores")
    total = y.sum()
    if total <= 0:
        raise ValueError("gains chart needs a positive sum of y_true")
    fig = _new_figure()
    ax_g, ax_l = fig.subplots(1, 2)

    # perfect model: everyone with y > 0 first, by decreasing y
    px, pg = gains_curve(y, y)
    px, pg = _resample(px, pg)
    ax_g.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1.2, label="random")
    ax_g.plot(px, pg, color="black", linestyle=":", linewidth=1.2, label="perfect")
    perfect_area = _area(*gains_curve(y, y)) - 0.5
    for i, (name, s) in enumerate(series.items()):
        x, g = gains_curve(y, s)
        quality = (_area(x, g) - 0.5) / perfect_area
        ax_g.plot(*_resample(x, g), label=f"{name} (lift quality {quality:.2f})", **_style(i, name))
        t = gains_table(y, s, n_bins)
        ax_l.plot(t["decile"].to_numpy(), t["lift"].to_numpy(), marker="o", markersize=4, label=name, **_style(i, name))
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    ax_g.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="share of users targeted (highest scores first)",
        ylabel="share of positives captured" if binary else "share of total value captured",
        title="Cumulative gains",
    )
    ax_g.grid(alpha=0.3)
    ax_g.legend(loc="lower right", fontsize=8)

    k = min(n_bins, len(y))
    ax_l.axhline(1.0, color="grey", linestyle=":", linewidth=1.2, label="random")
    ax_l.set(
        xlabel="decile of score (1 = highest)",
        ylabel="lift (decile rate / overall rate)" if binary else "lift (decile mean / overall mean)",
        title="Lift per decile",
    )
    ax_l.set_xticks(np.arange(1, k + 1))
    ax_l.set_ylim(bottom=0)
    ax_l.grid(alpha=0.3)
    ax_l.legend(loc="upper right", fontsize=8)
    fig.suptitle(title, fontsize=12)
    return _render(fig, path)


def calibration_chart(
    y_true: Any, probs: Mapping[str, Any], title: str, path: str | Path | None = None, n_bins: int = N_BINS
) -> bytes:
    """Reliability diagram (equal-frequency bins, with the diagonal) and a histogram of the predictions.

    Each series is a point per bin at (mean predicted probability, observed positive rate); the legend shows its
    ECE. The small panel below shows how the predictions are distributed (share of users per 0.05 bin).
    """
    y, series = _series(y_true, probs, "probs")
    fig = _new_figure()
    ax_r, ax_h = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax_r.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1.2, label="perfectly calibrated")
    edges = np.linspace(0.0, 1.0, 21)
    for i, (name, p) in enumerate(series.items()):
        b = reliability_bins(y, p, n_bins)
        ece = expected_calibration_error(y, p, n_bins)
        st = _style(i, name)
        ax_r.plot(
            b["mean_p"].to_numpy(),
            b["mean_y"].to_numpy(),
            marker="o",
            markersize=4,
            label=f"{name} (ECE {ece:.3f})",
            **st,
        )
        w = np.full(len(p), 1.0 / len(p))
        ax_h.hist(
            np.clip(p, 0, 1),
            bins=edges,
            weights=w,
            histtype="step",
            color=st["color"],
            linestyle=st["linestyle"],
            linewidth=1.4,
        )
    ax_r.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed positive rate", title=title)
    ax_r.tick_params(labelbottom=False)
    ax_r.grid(alpha=0.3)
    ax_r.legend(loc="upper left", fontsize=8)
    ax_h.set(xlabel="predicted probability", ylabel="share of users")
    ax_h.grid(alpha=0.3)
    return _render(fig, path)


def decile_chart(
    y_true: Any, preds: Mapping[str, Any], title: str, path: str | Path | None = None, n_bins: int = N_BINS
) -> bytes:
    """For ltv: mean predicted (dashed, hollow markers) vs mean actual (solid) per decile of predicted value.

    Decile 1 = highest predictions. A good model's actual line falls steeply from decile 1 and the predicted
    line lies on it.
    """
    y, series = _series(y_true, preds, "preds")
    fig = _new_figure()
    ax = fig.add_subplot()
    k = min(n_bins, len(y))
    for i, (name, s) in enumerate(series.items()):
        t = gains_table(y, s, n_bins)
        d = t["decile"].to_numpy()
        color = _COLORS[i % len(_COLORS)]
        mean_pred = gains_table(s, s, n_bins)["rate"].to_numpy()  # same stable cut as t
        ax.plot(
            d,
            t["rate"].to_numpy(),
            color=color,
            linestyle="-",
            linewidth=2.0,
            marker="o",
            markersize=5,
            label=f"{name}: actual",
        )
        ax.plot(
            d,
            mean_pred,
            color=color,
            linestyle="--",
            linewidth=1.4,
            marker="o",
            markersize=5,
            markerfacecolor="white",
            label=f"{name}: predicted",
        )
    ax.set(xlabel="decile of predicted value (1 = highest)", ylabel="mean value per user", title=title)
    ax.set_xticks(np.arange(1, k + 1))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _render(fig, path)


def bar_chart(
    labels: Sequence[str], values: Sequence[float] | np.ndarray, title: str, xlabel: str, path: str | Path | None = None
) -> bytes:
    """Horizontal bars in the given order, first label on top, each bar labelled with its value.

    For feature importance (pass them sorted) and channel analytics. The figure is 8 inches wide and grows in
    height beyond 4.5 inches when there are more than ~14 bars; labels longer than 45 characters are shortened.
    """
    labs = [str(x) for x in labels]
    vals = as_array(values, "values")
    if len(labs) != len(vals):
        raise ValueError(f"labels and values differ in length: {len(labs)} != {len(vals)}")
    if not labs:
        raise ValueError("bar_chart: no bars to draw")
    labs = [x if len(x) <= _MAX_LABEL else x[: _MAX_LABEL - 1] + "…" for x in labs]
    height = max(FIGSIZE[1], 1.2 + 0.26 * len(labs))
    fig = _new_figure((FIGSIZE[0], height))
    ax = fig.add_subplot()
    pos = np.arange(len(labs))
    ax.barh(pos, vals, color="C0", height=0.7)
    ax.set_yticks(pos, labels=labs, fontsize=9)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    span = float(np.max(np.abs(vals))) or 1.0
    for yp, v in zip(pos, vals, strict=False):
        ax.text(
            v + (0.01 * span if v >= 0 else -0.01 * span),
            yp,
            f"{v:.3g}",
            va="center",
            ha="left" if v >= 0 else "right",
            fontsize=8,
        )
    lo, hi = min(0.0, float(vals.min())), max(0.0, float(vals.max()))
    ax.set_xlim(lo - (0.15 * span if lo < 0 else 0), hi + (0.15 * span if hi > 0 else 0))
    ax.set(xlabel=xlabel, title=title)
    ax.grid(axis="x", alpha=0.3)
    return _render(fig, path)
