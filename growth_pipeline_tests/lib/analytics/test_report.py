"""The customer report's HTML (lib/analytics/report.py and its Jinja2 template), without a pipeline run; the
report of a real pipeline run, opened in a browser, is tested in integration/test_daily_pipeline.py."""

from datetime import UTC, date, datetime

import polars as pl

from growth_pipeline.lib.analytics import report


def _content(**kw) -> report.ReportContent:
    c = report.ReportContent(
        customer="acme",
        name="Acme <script>alert(1)</script>",
        as_of=date(2026, 5, 1),
        scores_day=date(2026, 5, 2),
        generated_at=datetime(2026, 5, 2, 6, 0, tzinfo=UTC),
        **kw,
    )
    c.scores.append(report.ScoreSummary("churn", 1000, 0.25, {"high": 100, "medium": 200, "low": 700}))
    c.top_risk = pl.DataFrame({"user_key": ["u<1>"], "score": [0.9], "revenue_at_risk": [1234.5]}).with_columns(
        reason_1=pl.lit("a & b"), reason_2=pl.lit(None, pl.Utf8), reason_3=pl.lit("x")
    )
    c.revenue_at_risk = 1234.5
    return c


def test_band_sentence_follows_the_configured_percentiles():
    assert "the top 10% of scores, <b>medium</b> = the next 20%" in " ".join(report.render_html(_content()).split())
    page = " ".join(report.render_html(_content(high_band_percentile=97.5, medium_band_percentile=80)).split())
    assert "the top 2.5% of scores, <b>medium</b> = the next 17.5%" in page


def test_text_from_data_is_escaped():
    page = report.render_html(_content())
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "u&lt;1&gt;" in page and "a &amp; b" in page
    assert "<td>1,234</td>" in page  # numbers formatted as before: whole numbers from 100 on


def test_write_puts_charts_page_and_index_in_place(tmp_path):
    c = _content()
    c.charts["churn_score_distribution.png"] = b"\x89PNG fake"
    index = report.write(c, tmp_path / "acme")
    assert index == tmp_path / "acme" / "index.html" and index.read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "acme" / "charts" / "churn_score_distribution.png").read_bytes() == b"\x89PNG fake"
    assert (tmp_path / "acme" / "report.json").exists()
    assert not [p for p in (tmp_path / "acme").rglob("*.tmp")]
