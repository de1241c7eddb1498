"""The one report: a self-contained HTML file of what retention earned at an as-of date.

Sections (each drawn by a function taking the frame it shows, so each can be checked alone):
the cohort heat map (:func:`cohort_heatmap_section`), LTV curves by acquisition channel
(:func:`ltv_curves_section`), unit economics (:func:`unit_economics_section`), gains and
reliability (:func:`model_section`), the effect by channel over time with its intervals
(:func:`effect_section`), drift (:func:`drift_section`) and the segment matrix
(:func:`segments_section`). A section without its data says so and how to get it: a report
never invents a figure.

The file holds everything it shows: inline CSS, inline SVG charts (``serving.charts``, the
registered model's backtest too, in the reader's language) and, for a model trained before its
backtest points were kept, its PNG plots as ``data:`` URIs. No script, no font, no request to
anything: it opens from a mail attachment or a shared folder where the network
reaches nothing, and ``/ui/report`` serves it under a Content-Security-Policy that allows
nothing else.

:func:`build_report` gathers the frames (transactions before ``as_of``, the customers table,
the costs file, the score store, the contacts log or a measured effect); :func:`render_report`
turns them into the page in English or Russian (``serving.ui_text``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape
from typing import Any

import numpy as np
import polars as pl

from retain.analytics.cohorts import (
    Cohorts,
    UnmatchedSpend,
    cohorts_of_orders,
    shown_names,
    unmatched_spend,
)
from retain.serving import charts
from retain.serving.labels import Language, label
from retain.serving.ui_text import text

__all__ = [
    "SECTIONS",
    "ReportParts",
    "backtest_charts",
    "build_report",
    "cohort_heatmap_section",
    "drift_section",
    "effect_section",
    "gains_points",
    "ltv_curves_section",
    "model_section",
    "prediction_outcomes",
    "registered_backtest",
    "reliability_points",
    "render_report",
    "segments_section",
    "unit_economics_section",
]

# (id, heading key) in the order the page shows them.
SECTIONS = (
    ("cohorts", "report.cohorts"), ("ltv", "report.ltv"), ("unit", "report.unit"),
    ("model", "report.model"), ("effect", "report.effect"), ("drift", "report.drift"),
    ("segments", "report.segments"),
)
# The heat map's size: the newest cohorts and the first months since their first purchase.
MAX_COHORTS, MAX_MONTHS = 24, 24
EFFECT_MONTHS = 6
# An LTV curve's month needs this many customers observed that long (and 5% of the channel).
MIN_CURVE_CUSTOMERS = 20
GAINS_POINTS = 20


@dataclass
class ReportParts:
    """The frames the report shows; None where the data was not given or not measured."""

    as_of: date
    month_cohorts: Cohorts | None = None
    channel_cohorts: Cohorts | None = None
    costs_given: bool = False
    outcomes: pl.DataFrame | None = None
    outcome_run: dict | None = None
    backtest_images: dict[str, bytes] = field(default_factory=dict)
    # The same plots' points (``chart, series, x, y``, as ``retain train`` logs them): drawn
    # here in the reader's language in place of the images.
    backtest_points: pl.DataFrame | None = None
    calibration: pl.DataFrame | None = None
    model_version: str | None = None
    effect: pl.DataFrame | None = None
    effect_confidence: float = 0.9
    drift: pl.DataFrame | None = None
    matrix: pl.DataFrame | None = None
    run: dict | None = None
    version: str = ""
    # The first day of the transactions when the as-of date is on or before it: the sections
    # say so instead of "no transactions were given".
    data_from: date | None = None


# ---------------------------------------------------------------------------------------------
# Formatting


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _number(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    return f"{value:,.{digits}f}".replace(",", "\u00a0")


def _percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _section(css_id: str, lang: Language, body: str, note: str | None = None) -> str:
    heading = text(dict(SECTIONS)[css_id], lang)
    note_html = f'<p class="note">{_e(note)}</p>' if note else ""
    return (f'<section id="{css_id}"><h2>{_e(heading)}</h2>{note_html}{body}</section>')


def _missing(css_id: str, lang: Language, key: str) -> str:
    return _section(css_id, lang, f'<p class="missing" data-missing="{css_id}">'
                    f'{_e(text(key, lang))}</p>')


def _table(frame: pl.DataFrame, columns: list[tuple[str, str, Callable[[Any], str]]],
           css_class: str = "figures", row_class: Callable[[dict], str] | None = None) -> str:
    head = "".join(f"<th>{_e(heading)}</th>" for _, heading, _ in columns)
    rows = []
    for row in frame.iter_rows(named=True):
        extra = f' class="{_e(row_class(row))}"' if row_class else ""
        cells = "".join(f"<td>{_e(show(row[name]))}</td>" for name, _, show in columns)
        rows.append(f"<tr{extra}>{cells}</tr>")
    return (f'<table class="{css_class}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


# ---------------------------------------------------------------------------------------------
# Sections


def cohort_heatmap_section(curves: pl.DataFrame | None, summary: pl.DataFrame | None,
                           lang: Language, missing: str = "report.no_transactions") -> str:
    """First-purchase month cohorts x months since: the share who bought in each month
    (``curves`` of month cohorts) and the cohorts' figures (``summary``); ``missing``: the
    text key said without them."""
    if curves is None or summary is None or summary.height == 0:
        return _missing("cohorts", lang, missing)
    shown = sorted(summary["cohort"].to_list())[-MAX_COHORTS:]
    later = curves.filter(pl.col("month") > 0)["active_share"].max()
    top = float(later) if isinstance(later, float) and later > 0 else 1.0
    cells = (curves.filter(pl.col("cohort").is_in(shown) & (pl.col("month") < MAX_MONTHS))
             .rename({"cohort": "row", "month": "column", "active_share": "value"}))
    cells = cells.with_columns(
        (pl.col("value") * 100).round(0).cast(pl.Int64).cast(pl.String).alias("text"),
        # Coloured against the largest share after month 0 (month 0 is everyone, 100%, and
        # would wash the rest out); a month not over yet is drawn pale: its share still grows.
        (pl.col("value") / top).clip(0, 1)
        * pl.when(pl.col("complete")).then(1.0).otherwise(0.35),
        pl.col("value").alias("share"))

    def tip(row: dict) -> str:
        return text("report.cell_tip", lang, cohort=row["row"], month=row["column"],
                    buyers=_number(row["buyers"]), customers=_number(row["customers"]),
                    share=_percent(row["share"]),
                    revenue=_number(row["cumulative_revenue_per_customer"]))

    months = list(range(min(int(curves["month"].max() or 0) + 1, MAX_MONTHS)))
    svg = charts.grid_heatmap(cells, shown, months, text("report.cohorts", lang),
                              "chart-cohorts", text("report.cohort", lang),
                              text("report.months_since", lang), tooltip=tip)
    table = _table(summary.sort("cohort", descending=True), [
        ("cohort", text("col.cohort", lang), str),
        ("customers", text("col.customers", lang), _number),
        ("repeat_rate", text("col.repeat_rate", lang), _percent),
        ("aov", text("col.aov", lang), _number),
        ("revenue_per_customer", text("col.revenue_per_customer", lang), _number),
        ("predicted_clv_12m", text("col.predicted_clv_12m", lang), _number),
    ])
    body = (f'<div class="chart">{svg}</div><details><summary>'
            f'{_e(text("report.cohort_table", lang))}</summary>{table}</details>')
    return _section("cohorts", lang, body, text("report.cohorts_note", lang))


def ltv_curves_section(curves: pl.DataFrame | None, source: str | None,
                       lang: Language, missing: str = "report.no_transactions") -> str:
    """Cumulative revenue per customer by month since the first purchase, one line per
    acquisition channel (``curves`` of channel cohorts)."""
    if curves is None or curves.height == 0:
        return _missing("ltv", lang, missing)
    order = (curves.filter(pl.col("month") == 0).sort("customers", descending=True)["cohort"]
             .to_list())[:len(charts.SERIES_COLOURS)]
    # A month seen for a handful of the channel's customers only is noise: left out.
    enough = pl.col("customers") >= pl.max_horizontal(
        pl.lit(MIN_CURVE_CUSTOMERS), pl.col("customers").first().over("cohort") * 0.05)
    points = (curves.filter(pl.col("cohort").is_in(order)).sort("cohort", "month")
              .filter(enough)
              .select(pl.col("cohort").alias("series"), pl.col("month").alias("x"),
                      pl.col("cumulative_revenue_per_customer").alias("y")))
    svg = charts.lines(points, text("report.ltv", lang), "chart-ltv",
                       text("report.months_since", lang), text("report.ltv_axis", lang),
                       number=_number, x_number=lambda v: f"{v:g}", series_order=order)
    where = text("report.source_customers" if source == "customers.acquisition_channel"
                 else "report.source_orders", lang)
    return _section("ltv", lang, f'<div class="chart">{svg}</div>',
                    text("report.ltv_note", lang, source=where))


def unit_economics_section(summary: pl.DataFrame | None, costs_given: bool,
                           lang: Language, missing: str = "report.no_transactions",
                           unmatched: list[UnmatchedSpend] | None = None) -> str:
    """Per acquisition channel: customers, repeat rate, AOV, first order, revenue per
    customer, predicted CLV, and CAC, LTV and LTV/CAC when a costs file was given;
    ``unmatched``: what of the costs file matched no customer (``analytics.cohorts``)."""
    if summary is None or summary.height == 0:
        return _missing("unit", lang, missing)
    columns: list[tuple[str, str, Callable[[Any], str]]] = [
        ("cohort", text("col.cohort", lang), str),
        ("customers", text("col.customers", lang), _number),
        ("repeat_rate", text("col.repeat_rate", lang), _percent),
        ("aov", text("col.aov", lang), _number),
        ("first_order_value", text("col.first_order_value", lang), _number),
        ("revenue_per_customer", text("col.revenue_per_customer", lang), _number),
        ("predicted_clv_12m", text("col.predicted_clv_12m", lang), _number),
    ]
    if costs_given:
        columns += [("cac", text("col.cac", lang), _number), ("ltv", text("col.ltv", lang), _number),
                    ("ltv_cac", text("col.ltv_cac", lang), lambda v: _number(v, 2))]

    def verdict(row: dict) -> str:
        ratio = row.get("ltv_cac")
        return "" if ratio is None else "good" if ratio >= 3 else "bad" if ratio < 1 else ""

    body = _table(summary, columns, row_class=verdict if costs_given else None)
    if costs_given and summary["cac"].is_not_null().any():
        measures = [(c, text(f"col.{c}", lang)) for c in ("ltv_cac", "cac", "ltv")]
        svg = charts.bars(summary.filter(pl.col("cac").is_not_null()), "cohort", measures,
                          lambda k: k or "", lambda v: _number(v, 2 if v and v < 100 else 0),
                          text("report.unit", lang), "chart-unit")
        body = f'<div class="chart">{svg}</div>{body}'
    if not costs_given:
        body += f'<p class="missing" data-missing="costs">{_e(text("report.no_costs", lang))}</p>'
    body += "".join(f'<p class="note" data-note="costs">{_e(_costs_note(said, lang))}</p>'
                    for said in unmatched or [])
    return _section("unit", lang, body, text("report.unit_note", lang))


def _costs_note(said: UnmatchedSpend, lang: Language) -> str:
    """One unmatched-costs sentence in the reader's language."""
    key = ("report.costs_channel" if said.kind == "channel" else
           "report.costs_month_counted" if said.counted else "report.costs_month_left")
    names = shown_names(said.names, text("report.and_more", lang))
    return text(key, lang, names=names, spend=_number(said.spend), months=said.months)


def prediction_outcomes(scores: pl.DataFrame, transactions: pl.DataFrame | pl.LazyFrame,
                        run_as_of: date, horizon_days: int) -> pl.DataFrame:
    """A past run's predictions beside what then happened: ``customer_id, predicted_revenue,
    churn_probability, revenue_h`` (net revenue in ``[run_as_of, run_as_of + horizon)``) and
    ``bought`` (a purchase in it), for every customer the run scored."""
    from retain.features.orders import orders, window

    after = orders(window(transactions, run_as_of, run_as_of + timedelta(days=horizon_days)))
    happened = (after.group_by("customer_id")
                .agg(pl.col("amount").sum().alias("revenue_h"),
                     pl.col("is_purchase").any().alias("bought")).collect())
    return (scores.select("customer_id", "predicted_revenue", "churn_probability")
            .join(happened, on="customer_id", how="left")
            .with_columns(pl.col("revenue_h").fill_null(0.0), pl.col("bought").fill_null(False)))


def gains_points(outcomes: pl.DataFrame, points: int = GAINS_POINTS) -> pl.DataFrame:
    """``x`` (share of customers, best predicted first) and ``y`` (their share of the
    horizon's revenue, refunds counted as none), from 0 to 1."""
    revenue = np.clip(outcomes["revenue_h"].to_numpy(), 0, None)
    predicted = outcomes["predicted_revenue"].fill_null(0.0).to_numpy()
    order = np.argsort(-predicted, kind="stable")
    total = max(float(revenue.sum()), 1e-9)
    captured = np.concatenate([[0.0], np.cumsum(revenue[order]) / total])
    share = np.linspace(0, 1, points + 1)
    at = np.round(share * len(revenue)).astype(int)
    return pl.DataFrame({"x": share, "y": captured[at]})


def reliability_points(outcomes: pl.DataFrame, bins: int = 10) -> pl.DataFrame:
    """``x`` (mean predicted churn probability) and ``y`` (the share who did not buy) per
    decile bin of the probability, with ``customers`` per bin."""
    known = outcomes.filter(pl.col("churn_probability").is_not_null())
    which = (known["churn_probability"] * bins).floor().clip(0, bins - 1).cast(pl.Int32)
    return (known.with_columns(which.alias("bin"))
            .group_by("bin").agg(pl.col("churn_probability").mean().alias("x"),
                                 (~pl.col("bought")).mean().alias("y"),
                                 pl.len().alias("customers"))
            .sort("bin"))


def calibration_chart(calibration: pl.DataFrame | None, lang: Language) -> str:
    """Predicted against observed churn of every judged run, by its as-of date
    (``calibration``: ``analytics.calibration`` rows; decile 0 is a run's every customer);
    empty when fewer than one run was judged."""
    if calibration is None or calibration.height == 0:
        return ""
    whole = calibration.filter(pl.col("decile") == 0).sort("as_of")
    if whole.height < 2:  # one run is the reliability chart's already
        return ""
    day = pl.col("as_of").cast(pl.Date).cast(pl.Int32).cast(pl.Float64)
    points = pl.concat([
        whole.select(pl.lit(text("report.predicted_churn", lang)).alias("series"),
                     day.alias("x"), pl.col("predicted_churn").alias("y")),
        whole.select(pl.lit(text("report.observed_churn", lang)).alias("series"),
                     day.alias("x"), pl.col("observed_churn").alias("y"))])
    svg = charts.lines(points, text("report.calibration_title", lang), "chart-calibration",
                       text("report.calibration_x", lang), text("report.reliability_y", lang),
                       number=lambda v: f"{v * 100:.0f}%",
                       x_number=lambda v: str(date(1970, 1, 1) + timedelta(days=int(v))),
                       x_from_zero=False)
    return (f'<div class="chart">{svg}</div><p class="note">'
            f'{_e(text("report.calibration_note", lang, runs=whole.height))}</p>')


# The backtest's series keys (training.plots.backtest_points) and their words.
BACKTEST_SERIES = {"retain": "report.retain", "bgnbd_gg": "report.bgnbd_gg",
                   "formula": "report.formula", "random": "report.random"}


def _gains_chart(points: pl.DataFrame, lang: Language) -> str:
    """``series, x, y`` (series already in the reader's words) as the gains chart."""
    return charts.lines(points, text("report.gains_title", lang), "chart-gains",
                        text("report.gains_x", lang), text("report.gains_y", lang),
                        number=lambda v: f"{v * 100:.0f}%",
                        x_number=lambda v: f"{v * 100:.0f}%", plot_width=330)


def _reliability_chart(points: pl.DataFrame, lang: Language) -> str:
    return charts.lines(points, text("report.reliability_title", lang), "chart-reliability",
                        text("report.reliability_x", lang), text("report.reliability_y", lang),
                        number=lambda v: f"{v * 100:.0f}%", x_number=lambda v: f"{v * 100:.0f}%",
                        diagonal=True, plot_width=330)


def backtest_charts(points: pl.DataFrame, lang: Language) -> str:
    """The registered model's backtest (``points``: ``chart, series, x, y`` as
    ``training.plots.backtest_points`` gives them) as the report's own gains and reliability
    charts: titles, axes and legends from the report's words, in ``lang``. The reliability
    chart draws its perfect diagonal itself."""
    known = [key for key in BACKTEST_SERIES if key in set(points["series"].to_list())]
    named = points.filter(pl.col("series").is_in(known)).with_columns(
        pl.col("series").replace_strict({k: text(BACKTEST_SERIES[k], lang) for k in known}))
    # As many steps as the report's own gains (GAINS_POINTS): one tooltip per point.
    steps = pl.col("x") * GAINS_POINTS
    gains = named.filter((pl.col("chart") == "gains") & ((steps.round() - steps).abs() < 1e-6)
                         ).select("series", "x", "y")
    reliability = named.filter(pl.col("chart") == "reliability").select("series", "x", "y")
    return (_gains_chart(gains, lang) if gains.height else "") + \
        (_reliability_chart(reliability, lang) if reliability.height else "")


def model_section(outcomes: pl.DataFrame | None, run: dict | None, images: dict[str, bytes],
                  model_version: str | None, lang: Language,
                  calibration: pl.DataFrame | None = None,
                  points: pl.DataFrame | None = None) -> str:
    """Gains and reliability of a past run's scores against what happened (``outcomes``, as
    :func:`prediction_outcomes`); else the registered model's backtest, drawn from its points
    (``points``, :func:`backtest_charts`) or, for a model trained before they were kept, its
    PNG plots (bytes by name: ``gains``, ``reliability``; in English); and each judged run's
    churn, predicted against observed, over time (``calibration``,
    :func:`calibration_chart`)."""
    over_time = calibration_chart(calibration, lang)
    if outcomes is not None and run is not None and outcomes.height:
        gains = gains_points(outcomes)
        gain_lines = pl.concat([
            gains.select(pl.lit(text("report.retain", lang)).alias("series"), "x", "y"),
            pl.DataFrame({"series": [text("report.random", lang)] * 2, "x": [0.0, 1.0],
                          "y": [0.0, 1.0]})])
        reliability = reliability_points(outcomes)
        svg_gains = _gains_chart(gain_lines, lang)
        svg_reliability = _reliability_chart(
            reliability.select(pl.lit(text("report.retain", lang)).alias("series"), "x", "y"),
            lang)
        note = text("report.model_note", lang, as_of=run["as_of"], days=run["horizon_days"],
                    customers=_number(outcomes.height))
        return _section("model", lang, f'<div class="chart">{svg_gains}{svg_reliability}</div>'
                        f'{over_time}', note)
    drawn = backtest_charts(points, lang) if points is not None and points.height else ""
    if drawn:
        return _section("model", lang, f'<div class="chart">{drawn}</div>{over_time}',
                        text("report.model_backtest", lang, version=model_version or "?"))
    if images:
        pictures = "".join(
            f'<img class="backtest" id="img-{_e(name)}" alt="{_e(name)}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'
            for name, data in images.items())
        note = text("report.model_backtest", lang, version=model_version or "?")
        if lang != "en":  # drawn by matplotlib at training, with English words
            note += " " + text("report.backtest_images_en", lang)
        return _section("model", lang, f'<div class="chart">{pictures}</div>{over_time}', note)
    if over_time:
        return _section("model", lang, over_time)
    return _missing("model", lang, "report.no_model")


EFFECT_METRIC = "revenue"
# Where PSI reads "shifted" (retain.analytics.drift.SHIFTED; analytics is not imported at
# module level here): the drift bars are scaled to it at least.
PSI_SHIFTED = 0.25


def effect_section(effect: pl.DataFrame | None, lang: Language, confidence: float = 0.9) -> str:
    """The effect per channel and period with its interval (``effect``: the columns of
    ``retain effect --split channel``: ``period, split, metric, difference, ci_low, ci_high,
    ...``): the revenue rows drawn, every row of them in a table."""
    if effect is None or effect.height == 0:
        return _missing("effect", lang, "report.no_effect")
    metric = EFFECT_METRIC if (effect["metric"] == EFFECT_METRIC).any() else effect["metric"][0]
    rows = effect.filter(pl.col("metric") == metric).sort("split", "period")
    frame = rows.select(pl.col("split").alias("group"), pl.col("period").cast(pl.String),
                        pl.col("difference").alias("estimate"), pl.col("ci_low").alias("low"),
                        pl.col("ci_high").alias("high"))
    svg = charts.intervals(frame, text("report.effect", lang), "chart-effect",
                           number=lambda v: _number(v, 0 if metric == "revenue" else 3))
    optional = [c for c in ("relative_lift", "incremental_revenue", "cost", "romi")
                if c in rows.columns]
    shows: dict[str, Callable[[Any], str]] = {
        "relative_lift": _percent, "incremental_revenue": _number, "cost": _number,
        "romi": lambda v: _number(v, 2)}
    # The difference as measured beside CUPED's estimate, as `retain effect` prints them (on a
    # thin period they differ even in sign); a row too small for an interval shows a dash.
    measured = ([("raw_difference", text("col.raw_difference", lang), lambda v: _number(v, 2))]
                if {"treated_mean", "control_mean"} <= set(rows.columns) else [])
    if measured and "raw_difference" not in rows.columns:
        from retain.analytics.effect import with_raw_difference  # effect rows came from there

        rows = with_raw_difference(rows)
    table = _table(
        rows.with_columns(pl.struct("ci_low", "ci_high").alias("interval")),
        [("period", text("col.period", lang), str), ("split", text("col.split", lang), str),
         *measured,
         ("difference", text("col.difference", lang), lambda v: _number(v, 2)),
         ("interval", text("col.interval", lang), _interval),
         *[(c, text(f"col.{c}", lang), shows[c]) for c in optional]])
    note = text("report.effect_note", lang, confidence=f"{confidence:.0%}")
    what = (text(f"effect.metric.{metric}", lang)
            if metric in ("revenue", "orders", "buyers") else metric)
    return _section("effect", lang, f'<div class="chart">{svg}</div><details><summary>'
                    f'{_e(text("model.table", lang))} · {_e(what)}'
                    f'</summary>{table}</details>', note)


def _interval(bounds: dict) -> str:
    low, high = bounds["ci_low"], bounds["ci_high"]
    if low is None or high is None:  # fewer customers than --min-group on a side
        return "—"
    return f"{_number(low, 2)} … {_number(high, 2)}"


def drift_section(drift: pl.DataFrame | None, lang: Language, top: int = 15) -> str:
    """PSI per watched column (``drift``: ``name, kind, psi, level``), the most shifted
    first."""
    if drift is None or drift.filter(pl.col("psi").is_not_null()).height == 0:
        return _missing("drift", lang, "report.no_drift")
    shown = (drift.filter(pl.col("psi").is_not_null()).sort("psi", descending=True).head(top)
             .with_columns(pl.format("{} ({})", pl.col("name"),
                                     pl.col("level").replace_strict(
                                         {k: text(f"drift.{k}", lang)
                                          for k in ("stable", "moderate", "shifted")},
                                         default=pl.col("level"))).alias("key")))
    svg = charts.bars(shown, "key", [("psi", "PSI")], lambda k: k or "", lambda v: f"{v:.3f}",
                      text("report.drift_title", lang), "chart-drift",
                      scale_floor={"psi": PSI_SHIFTED})
    return _section("drift", lang, f'<div class="chart">{svg}</div>',
                    text("report.drift_note", lang))


def segments_section(matrix: pl.DataFrame | None, run: dict | None, lang: Language) -> str:
    """The segment matrix of the scoring run (``matrix``: ``segment, goal, channel,
    customers, expected_incremental_revenue, ...``) as the lifecycle x value heat map."""
    from retain.decisions.segments import LIFECYCLE_STAGES, VALUE_TIERS

    if matrix is None or run is None or matrix.height == 0:
        return _missing("segments", lang, "report.no_segments")
    cells = charts.lifecycle_value(matrix)

    def tip(row: dict) -> str:
        return text("chart.heat_tip", lang,
                    stage=label("lifecycle_stage", row["lifecycle_stage"], lang),
                    tier=label("value_tier", row["value_tier"], lang),
                    customers=_number(row["customers"]),
                    revenue=_number(row["expected_incremental_revenue"]))

    def of(kind: str) -> Callable[[str], str]:
        return lambda code: label(kind, code, lang)

    svg = charts.heatmap(cells, LIFECYCLE_STAGES, VALUE_TIERS, of("lifecycle_stage"),
                         of("value_tier"), tip, text("chart.heatmap_title", lang),
                         "chart-segments")
    return _section("segments", lang, f'<div class="chart">{svg}</div>',
                    text("report.segments_note", lang, as_of=run["as_of"]))


# ---------------------------------------------------------------------------------------------
# The page

STYLE = """
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;
color:#1d2430;background:#f4f6f9}
header{background:#1d2430;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#c9d1dd;font-size:13px}
nav{padding:8px 28px;background:#fff;border-bottom:1px solid #d9dee6;font-size:13px}
nav a{color:#1f5fbf;margin-right:14px;text-decoration:none}
main{padding:10px 28px 40px;max-width:1180px}
section{background:#fff;border:1px solid #d9dee6;border-radius:6px;padding:14px 18px;
margin:16px 0}
h2{margin:0 0 6px;font-size:17px}.note{color:#5c6675;margin:0 0 10px;max-width:900px}
.missing{color:#5c6675;background:#f4f6f9;border-left:4px solid #c98a00;padding:8px 12px}
.chart{overflow-x:auto;margin:6px 0}.chart svg{display:inline-block;margin-right:18px}
table.figures{border-collapse:collapse;font-size:13px;margin:8px 0}
table.figures th,table.figures td{border-bottom:1px solid #d9dee6;padding:4px 10px;
text-align:right}
table.figures th:first-child,table.figures td:first-child{text-align:left}
tr.good td{background:#e8f4ec}tr.bad td{background:#fbeaea}
summary{cursor:pointer;color:#1f5fbf;margin-top:6px}img.backtest{max-width:48%;
margin-right:1%}
"""


def render_report(parts: ReportParts, lang: Language = "en",
                  home: tuple[str, str] | None = None) -> str:
    """The whole page (one string of HTML) in ``lang``; ``home`` (href, text) adds a link back
    first in the navigation (``/ui/report`` links to the marketers' page)."""
    month = parts.month_cohorts
    channel = parts.channel_cohorts
    missing = "report.before_data" if parts.data_from else "report.no_transactions"
    sections = [
        cohort_heatmap_section(month.curves if month else None,
                               month.summary if month else None, lang, missing),
        ltv_curves_section(channel.curves if channel else None,
                           channel.channel_source if channel else None, lang, missing),
        unit_economics_section(channel.summary if channel else None, parts.costs_given, lang,
                               missing, unmatched_spend(channel.unmatched_costs if channel
                                                        else None)),
        model_section(parts.outcomes, parts.outcome_run, parts.backtest_images,
                      parts.model_version, lang, parts.calibration, parts.backtest_points),
        effect_section(parts.effect, lang, parts.effect_confidence),
        drift_section(parts.drift, lang),
        segments_section(parts.matrix, parts.run, lang),
    ]
    links = "".join(f'<a href="#{css_id}">{_e(text(key, lang))}</a>' for css_id, key in SECTIONS)
    if home is not None:
        links = f'<a class="home" href="{_e(home[0])}">← {_e(home[1])}</a>' + links
    title = text("report.title", lang)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{_e(title)} {parts.as_of}</title><style>{STYLE}</style></head><body>'
        f'<header><h1>{_e(text("report.heading", lang, as_of=parts.as_of))}</h1>'
        f'<p>{_e(text("report.generated", lang, version=parts.version, as_of=parts.as_of))}</p>'
        f'</header><nav aria-label="{_e(text("report.nav", lang))}">{links}</nav>'
        f'<main>{"".join(sections)}</main></body></html>')


# ---------------------------------------------------------------------------------------------
# Gathering the frames


def registered_backtest(alias: str = "champion"
                        ) -> tuple[str | None, dict[str, bytes], pl.DataFrame | None]:
    """The version ``alias`` points at, its backtest plots (``plots/gains.png``,
    ``plots/reliability.png``, as ``retain train`` logs them) and their points
    (``plots/backtest_points.json``: ``chart, series, x, y``; None for a model trained before
    ``retain train`` kept them), which the report draws in the reader's language
    (:func:`backtest_charts`); ``(None, {}, None)`` when there is no registry, no such model or
    it cannot be reached: the report goes on without them."""
    import os
    import tempfile
    from pathlib import Path

    # The registry's default (models.registry.tracking_uri), checked before importing it: that
    # import brings the models' libraries (seconds), for nothing when there is no registry.
    uri = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None, {}, None
    try:
        from mlflow import MlflowClient

        from retain.models.registry import MODEL_NAME, check_registry, configure_mlflow

        check_registry()
        configure_mlflow()
        client = MlflowClient()
        found = client.get_model_version_by_alias(MODEL_NAME, alias)
        images = {}
        with tempfile.TemporaryDirectory() as folder:
            for name in ("gains", "reliability"):
                path = client.download_artifacts(found.run_id, f"plots/{name}.png", folder)
                images[name] = Path(path).read_bytes()
            points = _backtest_points(client, found.run_id, folder)
        return str(found.version), images, points
    except Exception:  # noqa: BLE001 - no model, no plots or no server: the section says so
        return None, {}, None


def _backtest_points(client: Any, run_id: str, folder: str) -> pl.DataFrame | None:
    """The run's ``plots/backtest_points.json``, or None (an older run, or unreadable)."""
    try:
        path = client.download_artifacts(run_id, "plots/backtest_points.json", folder)
        points = pl.read_json(path)
        return points.select("chart", "series", pl.col("x", "y").cast(pl.Float64))
    except Exception:  # noqa: BLE001 - an older run: its PNGs are shown instead
        return None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("retain")
    except PackageNotFoundError:
        from retain import __version__

        return __version__


def _columns(store: Any, run_id: str, names: list[str]) -> pl.DataFrame:
    """These columns of a stored run, read in chunks (an empty run gives an empty frame)."""
    chunks = [c.select(names) for c in store.iter_scores(run_id, chunk_size=200_000)]
    return pl.concat(chunks) if chunks else store.empty_frame().select(names)


def _store_frames(store: Any, as_of: date, transactions: pl.DataFrame | None,
                  parts: ReportParts) -> pl.DataFrame | None:
    """The scoring run as of the date (matrix, CLV), the newest run old enough to be judged
    against what happened, and the run's drift when the store keeps it. Returns the run's
    ``customer_id, clv_12m``."""
    run = store.latest_run_through(as_of)
    if run is None:
        return None
    parts.run = run
    parts.matrix = store.segment_matrix(run["run_id"])
    scores = _columns(store, run["run_id"], ["customer_id", "clv_12m", "horizon_days"])
    drift = getattr(store, "drift", None)  # the drift table (analytics.drift), once kept
    if callable(drift):
        try:
            parts.drift = drift(run["run_id"])
        except Exception:  # noqa: BLE001 - a store without the table: the section says so
            parts.drift = None
    parts.calibration = _calibration(store, transactions)
    if transactions is not None:
        horizon = int(scores["horizon_days"].drop_nulls().first() or 90) if scores.height else 90
        judged = store.latest_run_through(as_of - timedelta(days=horizon))
        if judged is not None:
            past = _columns(store, judged["run_id"], ["customer_id", "predicted_revenue",
                                                      "churn_probability", "horizon_days"])
            days = int(past["horizon_days"].drop_nulls().first() or horizon)
            if past.height and judged["as_of"] + timedelta(days=days) <= as_of:
                parts.outcomes = prediction_outcomes(past, transactions, judged["as_of"], days)
                parts.outcome_run = {**judged, "horizon_days": days}
    return scores.select("customer_id", "clv_12m")


def _calibration(store: Any, transactions: pl.DataFrame | None) -> pl.DataFrame | None:
    """Every stored run whose horizon the transactions cover, judged now
    (``analytics.calibration``); without transactions, what the store kept of it."""
    try:
        if transactions is not None:
            from retain.analytics.calibration import calibration_over_time

            return calibration_over_time(store, transactions)[0]
        kept = getattr(store, "calibration", None)
        return kept() if callable(kept) else None
    except Exception:  # noqa: BLE001 - an older store or module: the chart is left out
        return None


def _stored_effect(store: Any, as_of: date) -> pl.DataFrame | None:
    """The latest ``retain effect --split channel`` the store keeps, if it ended by
    ``as_of`` (a measurement of later months is not this report's)."""
    try:
        from retain.analytics.effect import EFFECT_SCHEMA
        from retain.serving.effect_store import latest_effect

        about, rows = latest_effect(store, "channel")
    except Exception:  # noqa: BLE001 - no such table or module: the section says so
        return None
    if about is None or not rows or about["date_to"] > as_of:
        return None
    return pl.DataFrame(rows, schema=EFFECT_SCHEMA, orient="row")


def _measured_effect(transactions: pl.DataFrame, contacts: pl.DataFrame, as_of: date,
                     months: int, rules: Any = None) -> pl.DataFrame | None:
    """``analytics.effect.measure_effect`` by channel over the last ``months`` complete months
    (None where that module is not installed, or the log cannot answer), called as
    ``retain effect --split channel`` calls it with its defaults: the rules' margin (ROMI on
    gross profit) and response window, so the report and the command show the same rows."""
    try:
        from retain.analytics.effect import EffectError, measure_effect  # type: ignore[import-not-found]
    except ImportError:
        return None
    end = date(as_of.year, as_of.month, 1)
    back = end.year * 12 + end.month - 1 - months
    start = date(back // 12, back % 12 + 1, 1)
    if rules is None:
        from retain.decisions.rules import load_rules

        rules = load_rules(None)
    try:
        return measure_effect(transactions, contacts, start, end, by="month", split="channel",
                              margin=rules.offers.margin,
                              response_days=rules.channels.response_days)
    except EffectError:
        return None


def build_report(as_of: date, transactions: pl.DataFrame | None = None, *,
                 customers: pl.DataFrame | None = None, costs: pl.DataFrame | None = None,
                 store: Any = None, contacts: pl.DataFrame | None = None,
                 effect: pl.DataFrame | None = None, drift: pl.DataFrame | None = None,
                 backtest_images: dict[str, bytes] | None = None,
                 model_version: str | None = None, rules: Any = None) -> ReportParts:
    """Every frame of the report at ``as_of``: cohorts from ``transactions`` (contract-typed,
    only lines before ``as_of`` are read), the score store's run as of the date (``store``: a
    ``ScoreStore``), the effect (given, or measured from ``contacts``) and drift (given, or
    the store's). ``rules``: the decision rules (``decisions.rules.Rules``; default the
    built-in ones) whose margin and response window the measured effect uses."""
    parts = ReportParts(as_of=as_of, costs_given=costs is not None, version=_version(),
                        backtest_images=dict(backtest_images or {}), model_version=model_version)
    if transactions is not None:
        transactions = transactions.filter(pl.col("ts") < pl.lit(as_of).cast(pl.Datetime("us")))
    scores = _store_frames(store, as_of, transactions, parts) if store is not None else None
    if transactions is not None and transactions.height:
        from retain.features.orders import orders as net_orders

        orders = net_orders(transactions.lazy()).collect()  # the lines are before as_of already
        parts.month_cohorts = cohorts_of_orders(orders, as_of, "month", customers, costs, scores)
        parts.channel_cohorts = cohorts_of_orders(orders, as_of, "channel", customers, costs,
                                                  scores)
        if effect is None and contacts is not None:
            effect = _measured_effect(transactions, contacts, as_of, EFFECT_MONTHS, rules)
    if effect is None and store is not None:
        effect = _stored_effect(store, as_of)
    parts.effect = effect
    if drift is not None:
        parts.drift = drift
    return parts
