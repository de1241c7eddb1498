"""Charts for the marketers' page, drawn by retain itself as inline SVG strings.

No JavaScript, no chart library and nothing from a CDN: the page's Content-Security-Policy
(``default-src 'none'``) allows none of them, and the page must work where the shop's network
reaches nothing but retain. Each function takes a polars frame (or a plain row) already in the
shape it draws and returns one ``<svg>`` element; every piece of text in it is escaped, because
segment, product and channel codes come from the shop's own data. Tooltips are SVG ``<title>``
elements, which browsers show on hover without any script.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from html import escape
from typing import Any, NamedTuple

import polars as pl

__all__ = ["OrderHistory", "bars", "grid_heatmap", "heatmap", "intervals", "lifecycle_value",
           "lines", "model_quality", "timeline"]

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
INK, MUTED, LINE, SOFT = "#1d2430", "#5c6675", "#d9dee6", "#f4f6f9"
ACCENT, GOOD, BAD = "#1f5fbf", "#1c7c3c", "#b3261e"
# Heatmap colours run from LIGHT (few customers) to DARK (the most crowded cell).
LIGHT, DARK = (0xEE, 0xF4, 0xFF), (0x1F, 0x5F, 0xBF)
BAR_COLOURS = {"customers": ACCENT, "expected_incremental_revenue": GOOD, "contact_cost": "#c98a00"}


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _svg(width: float, height: float, body: Sequence[str], label: str, css_id: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="{_e(css_id)}" class="chart" '
            f'role="img" aria-label="{_e(label)}" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="{width:.0f}" height="{height:.0f}" font-family="{FONT}" font-size="13" '
            f'fill="{INK}"><title>{_e(label)}</title>' + "".join(body) + "</svg>")


def _text(x: float, y: float, text: Any, anchor: str = "start", **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{_e(v)}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{_e(text)}</text>'


def _mix(share: float) -> str:
    r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(LIGHT, DARK))
    return f"#{r:02x}{g:02x}{b:02x}"


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Lifecycle stage x value tier


def lifecycle_value(matrix: pl.DataFrame) -> pl.DataFrame:
    """The segment matrix (``segment, ..., customers, expected_incremental_revenue``) summed by
    the first two parts of the segment code (``<lifecycle>-<tier>-<behaviour>``): ``lifecycle_stage,
    value_tier, customers, expected_incremental_revenue``. Segments of another shape are left out."""
    parts = pl.col("segment").str.split_exact("-", 2)
    return (matrix.filter(pl.col("segment").str.count_matches("-") == 2)
            .with_columns(parts.struct.field("field_0").alias("lifecycle_stage"),
                          parts.struct.field("field_1").alias("value_tier"))
            .group_by("lifecycle_stage", "value_tier")
            .agg(pl.col("customers").sum(), pl.col("expected_incremental_revenue").sum()))


def heatmap(cells: pl.DataFrame, rows: Sequence[str], columns: Sequence[str],
            row_label: Callable[[str], str], column_label: Callable[[str], str],
            tooltip: Callable[[dict], str], title: str, css_id: str = "chart-heatmap") -> str:
    """Customers per (lifecycle stage, value tier) cell, coloured by count (square root, so a
    few crowded cells do not wash out the rest); each cell's tooltip comes from ``tooltip(row)``.

    ``cells`` has ``lifecycle_stage, value_tier, customers`` and whatever the tooltip reads.
    """
    found = {(r["lifecycle_stage"], r["value_tier"]): r for r in cells.iter_rows(named=True)}
    top = max((r["customers"] for r in found.values()), default=0) or 1
    left, head, cell_w, cell_h = 170, 28, 132, 40
    width, height = left + cell_w * len(columns) + 4, head + cell_h * len(rows) + 4
    body = [_text(left + cell_w * (j + 0.5), 18, column_label(code), "middle", fill=MUTED)
            for j, code in enumerate(columns)]
    for i, stage in enumerate(rows):
        y = head + cell_h * i
        body.append(_text(left - 10, y + cell_h / 2 + 5, _clip(row_label(stage), 22), "end"))
        for j, tier in enumerate(columns):
            x = left + cell_w * j
            row = found.get((stage, tier))
            count = row["customers"] if row else 0
            share = (count / top) ** 0.5
            fill = _mix(share) if count else "#ffffff"
            colour = "#ffffff" if share > 0.55 else INK
            tip = tooltip(row) if row else f"{row_label(stage)} · {column_label(tier)}: 0"
            body.append(
                f'<g class="heat-cell" data-stage="{_e(stage)}" data-tier="{_e(tier)}" '
                f'data-customers="{count}"><title>{_e(tip)}</title>'
                f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'rx="3" fill="{fill}" stroke="{LINE}"/>'
                + _text(x + cell_w / 2, y + cell_h / 2 + 5, f"{count:,}".replace(",", "\u00a0"),
                        "middle", fill=colour, font_weight="600") + "</g>")
    return _svg(width, height, body, title, css_id)


# ---------------------------------------------------------------------------------------------
# Bars by goal or channel


def bars(frame: pl.DataFrame, key: str, measures: Sequence[tuple[str, str]],
         key_label: Callable[[str | None], str], number: Callable[[Any], str], title: str,
         css_id: str, key_heading: str = "", scale_floor: Mapping[str, float] | None = None) -> str:
    """One row per value of ``key`` (largest first by the first measure), one panel of bars per
    ``(column, heading)`` in ``measures``, each panel scaled to its own largest value, or to
    ``scale_floor[column]`` when that is larger (PSI to 0.25, where "shifted" begins: a PSI of
    0.0004 is no full-width bar)."""
    first = measures[0][0]
    frame = frame.sort(first, descending=True, nulls_last=True)
    left, head, row_h, panel_w, gap = 220, 26, 24, 230, 24
    width = left + (panel_w + gap) * len(measures)
    height = head + row_h * max(frame.height, 1) + 4
    body = [_text(left - 10, 16, key_heading, "end", font_weight="600")] if key_heading else []
    tops = {column: max(float(frame[column].max() or 0), (scale_floor or {}).get(column, 0.0))
            or 1.0 for column, _ in measures}
    for m, (column, heading) in enumerate(measures):
        x0 = left + (panel_w + gap) * m
        body.append(_text(x0, 16, _clip(heading, 32), fill=MUTED, font_weight="600",
                          font_size="12"))
    for i, row in enumerate(frame.iter_rows(named=True)):
        y = head + row_h * i
        name = key_label(row[key])
        body.append(_text(left - 10, y + row_h / 2 + 4, _clip(name, 30), "end", font_size="12"))
        for m, (column, heading) in enumerate(measures):
            x0 = left + (panel_w + gap) * m
            value = float(row[column] or 0)
            w = max(panel_w * 0.62 * value / tops[column], 1.0 if value else 0.0)
            body.append(
                f'<g class="bar" data-key="{_e(row[key] if row[key] is not None else "")}" '
                f'data-measure="{_e(column)}" data-value="{value:.2f}">'
                f'<title>{_e(f"{name} · {heading}: {number(row[column])}")}</title>'
                f'<rect x="{x0}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" rx="2" '
                f'fill="{BAR_COLOURS.get(column, ACCENT)}"/>'
                + _text(x0 + w + 5, y + row_h / 2 + 4, number(row[column]), font_size="12")
                + "</g>")
    return _svg(width, height, body, title, css_id)


# ---------------------------------------------------------------------------------------------
# The model against the best other method


def model_quality(rows: Sequence[dict], retain_name: str, worse_better: tuple[str, str],
                  number: Callable[[Any, int], str], title: str,
                  css_id: str = "chart-model") -> str:
    """Per task, retain's backtest figure beside the best other method's (bars on a scale of
    their own), and the paired bootstrap difference with its 95% interval on an axis centred on
    zero (right of zero: retain better, whatever the direction of the metric).

    Each row: ``label, ours, best ({name, value} or None), diff, lo, hi, verdict, digits``.
    """
    left, head, row_h, bar_w, gap, diff_w = 220, 30, 58, 320, 30, 260
    width = left + bar_w + gap + diff_w + 10
    height = head + row_h * max(len(rows), 1)
    x_bars, x_diff = left, left + bar_w + gap
    centre = x_diff + diff_w / 2
    body = [_text(x_diff, 16, worse_better[0], fill=MUTED, font_size="12"),
            _text(x_diff + diff_w, 16, worse_better[1], "end", fill=MUTED, font_size="12"),
            (f'<line x1="{centre}" y1="{head - 6}" x2="{centre}" y2="{height}" '
            f'stroke="{MUTED}" stroke-dasharray="3 3"/>')]
    for i, row in enumerate(rows):
        y = head + row_h * i
        digits = row["digits"]
        body.append(_text(left - 12, y + 22, _clip(row.get("short") or row["label"], 26), "end",
                          font_weight="600", font_size="12"))
        best = row.get("best")
        pairs = [(retain_name, row.get("ours"), ACCENT)]
        if best:
            pairs.append((best["name"], best["value"], "#9aa4b2"))
        top = max((abs(v) for _, v, _ in pairs if v is not None), default=0) or 1.0
        for k, (name, value, fill) in enumerate(pairs):
            by = y + 6 + k * 22
            if value is None:
                continue
            w = max(bar_w * 0.45 * abs(value) / top, 1.0)
            body.append(f'<g class="model-bar"><title>{_e(f"{name}: {number(value, digits)}")}'
                        f'</title><rect x="{x_bars}" y="{by}" width="{w:.1f}" height="16" rx="2" '
                        f'fill="{fill}"/>'
                        + _text(x_bars + w + 5, by + 12.5,
                                f"{number(value, digits)} {_clip(name, 30)}", font_size="12")
                        + "</g>")
        lo, hi, diff = row.get("lo"), row.get("hi"), row.get("diff")
        if lo is None or hi is None:
            continue
        reach = max(abs(lo), abs(hi), abs(diff or 0)) or 1.0
        scale = (diff_w / 2 - 12) / reach
        colour = {"better": GOOD, "worse": BAD}.get(row.get("verdict") or "", MUTED)
        cy = y + 22
        tip = f"{row['label']}: {number(diff, digits)} [{number(lo, digits)}; {number(hi, digits)}]"
        body.append(f'<g class="model-diff" data-verdict="{_e(row.get("verdict") or "")}">'
                    f'<title>{_e(tip)}</title>'
                    f'<line x1="{centre + lo * scale:.1f}" y1="{cy}" x2="{centre + hi * scale:.1f}" '
                    f'y2="{cy}" stroke="{colour}" stroke-width="6" stroke-linecap="round" '
                    f'opacity="0.45"/>'
                    + (f'<circle cx="{centre + diff * scale:.1f}" cy="{cy}" r="5" fill="{colour}"/>'
                       if diff is not None else "")
                    + _text(centre + (lo + hi) / 2 * scale, cy - 9,
                            f"{number(lo, digits)} … {number(hi, digits)}", "middle",
                            fill=colour, font_size="11")
                    + "</g>")
    return _svg(width, height, body, title, css_id)


# ---------------------------------------------------------------------------------------------
# A customer's timeline


class OrderHistory(NamedTuple):
    """What a customer bought before as-of, as the timeline draws it: a line from the first
    to the last purchase carrying ``count_label`` (e.g. "Orders: 9"), a dot at each end."""

    first: date
    last: date
    count_label: str
    first_label: str
    last_label: str


def _inside(cx: float, text: str, low: float, high: float) -> float:
    """The centre of a label near ``cx`` that keeps it between ``low`` and ``high`` (a long
    history pushes the next-order band to the right edge, where its label was cut off)."""
    half = len(text) * 3.6  # ~7.2 px per character at font size 12
    return min(max(cx, low + half), high - half)


def _month_step(months: float, pixels: float) -> int:
    """Months between axis ticks so their labels (~60 px wide) do not run into each other."""
    per_month = pixels / max(months, 1.0)
    return next((step for step in (1, 2, 3, 6, 12, 24, 60) if per_month * step >= 60), 120)


def timeline(as_of: date, marks: Sequence[tuple[str, date | None, str]],
             band: tuple[date | None, date | None, str], as_of_label: str, title: str,
             past: Sequence[date] = (), css_id: str = "chart-timeline",
             history: OrderHistory | None = None) -> str:
    """A date axis from a little before ``as_of`` (or the first past order) to after the last
    date shown: the ``history`` (first to last purchase with the number of orders), past
    orders as dots, ``as_of`` as a line, ``band`` (p10 to p90 of the next order, with its
    label) as a shaded range, and each ``(kind, date, label)`` mark (``expected`` as a dot,
    ``due`` as a diamond) labelled below the axis; the history's dates are labelled on the rows
    below the marks."""
    first_last = (history.first, history.last) if history else ()
    dates = [as_of, *past, *first_last, *(d for _, d, _ in marks if d),
             *(d for d in band[:2] if d)]
    start = min(dates) - timedelta(days=7)
    end = max(max(dates), as_of + timedelta(days=14)) + timedelta(days=7)
    span = max((end - start).days, 1)
    left, right, width = 20, 20, 900
    rows = len(marks) + (2 if history else 0)
    axis_y, height = 70, max(150, 70 + 38 + 18 * rows + 8)

    def x(day: date) -> float:
        return left + (width - left - right) * (day - start).days / span

    body = [(f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="{LINE}" '
            f'stroke-width="2"/>')]
    # Month ticks (the first of each month, fewer over a long history) so dates can be read
    # off the axis.
    step = _month_step(span / 30.44, width - left - right)
    tick = date(start.year, start.month, 1)
    while tick <= end:
        shown = ((tick.year * 12 + tick.month - 1) % step == 0
                 and tick >= start and abs(x(tick) - x(as_of)) > 40)  # not under the as-of label
        if shown:
            body.append(f'<line x1="{x(tick):.1f}" y1="{axis_y - 4}" x2="{x(tick):.1f}" '
                        f'y2="{axis_y + 4}" stroke="{MUTED}"/>'
                        + _text(x(tick), axis_y + 18, tick.strftime("%Y-%m"), "middle",
                                fill=MUTED, font_size="11"))
        tick = date(tick.year + tick.month // 12, tick.month % 12 + 1, 1)
    if history:
        x1, x2 = x(history.first), x(history.last)
        rows_y = [axis_y + 38 + 18 * (len(marks) + k) for k in (0, 1)]
        body.append(f'<g class="history"><title>{_e(history.count_label)}: {_e(history.first)} … '
                    f'{_e(history.last)}</title>'
                    f'<line x1="{x1:.1f}" y1="{axis_y}" x2="{x2:.1f}" y2="{axis_y}" '
                    f'stroke="{MUTED}" stroke-width="4" stroke-linecap="round"/>'
                    + _text((x1 + x2) / 2, axis_y - 10, history.count_label, "middle",
                            fill=MUTED, font_size="12") + "</g>")
        for kind, cx, day, text, ly in (("first", x1, history.first, history.first_label, rows_y[0]),
                                        ("last", x2, history.last, history.last_label, rows_y[1])):
            anchor = "end" if cx > width * 0.7 else "start"
            body.append(f'<g class="{kind}-order"><title>{_e(f"{text}: {day}")}</title>'
                        f'<circle cx="{cx:.1f}" cy="{axis_y}" r="6" fill="{INK}"/>'
                        f'<line x1="{cx:.1f}" y1="{axis_y + 7}" x2="{cx:.1f}" y2="{ly - 4}" '
                        f'stroke="{LINE}"/>'
                        + _text(cx, ly + 8, f"{text}: {day}", anchor, font_size="12") + "</g>")
    p10, p90, band_label = band
    if p10 and p90:
        band_text = f"{band_label}: {p10} … {p90}"
        body.append(f'<g class="band"><title>{_e(f"{band_label}: {p10} … {p90}")}</title>'
                    f'<rect x="{x(p10):.1f}" y="{axis_y - 14}" width="{max(x(p90) - x(p10), 2):.1f}"'
                    f' height="28" rx="4" fill="{ACCENT}" opacity="0.18"/>'
                    + _text(_inside((x(p10) + x(p90)) / 2, band_text, left, width - right),
                            axis_y - 20, band_text, "middle", fill=ACCENT, font_size="12")
                    + "</g>")
    for day in past:
        body.append(f'<circle class="past-order" cx="{x(day):.1f}" cy="{axis_y}" r="4" '
                    f'fill="{MUTED}"><title>{_e(day)}</title></circle>')
    body.append(f'<g class="as-of"><line x1="{x(as_of):.1f}" y1="{axis_y - 30}" '
                f'x2="{x(as_of):.1f}" y2="{axis_y + 30}" stroke="{INK}" stroke-width="2"/>'
                + _text(x(as_of), axis_y - 34, f"{as_of_label}: {as_of}", "middle",
                        font_size="12") + "</g>")
    for n, (kind, day, text) in enumerate(marks):
        if day is None:
            continue
        cx, ly = x(day), axis_y + 38 + 18 * n
        shape = (f'<circle cx="{cx:.1f}" cy="{axis_y}" r="7" fill="{ACCENT}"/>' if kind == "expected"
                 else f'<rect x="{cx - 6:.1f}" y="{axis_y - 6}" width="12" height="12" '
                      f'transform="rotate(45 {cx:.1f} {axis_y})" fill="{GOOD}"/>')
        anchor = "end" if cx > width * 0.7 else "start"
        body.append(f'<g class="mark-{_e(kind)}"><title>{_e(f"{text}: {day}")}</title>{shape}'
                    f'<line x1="{cx:.1f}" y1="{axis_y + 8}" x2="{cx:.1f}" y2="{ly - 4}" '
                    f'stroke="{LINE}"/>'
                    + _text(cx, ly + 8, f"{text}: {day}", anchor, font_size="12") + "</g>")
    return _svg(width, height, body, title, css_id)


# ---------------------------------------------------------------------------------------------
# The report's charts (serving/report.py): a grid heat map, line charts and intervals

# Distinct hues for up to eight series; more reuse them (the legend still names each).
SERIES_COLOURS = ("#1f5fbf", "#c98a00", "#1c7c3c", "#b3261e", "#6b3fa0", "#00838f", "#7a5c3a",
                  "#5c6675")


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[low, high]``."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 10 ** -len(str(1 / raw).split(".")[0])
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = step * (low // step)
    ticks, value = [], first
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 10))
        value += step
    return ticks


def grid_heatmap(cells: pl.DataFrame, rows: Sequence[str], columns: Sequence[Any],
                 title: str, css_id: str, row_heading: str = "", column_heading: str = "",
                 tooltip: Callable[[dict], str] = lambda row: str(row["text"])) -> str:
    """A grid of ``rows`` x ``columns`` cells, each coloured by its ``value`` (0 to 1: white to
    the accent colour) and showing its ``text``: ``cells`` has ``row, column, value, text`` (and
    whatever ``tooltip`` reads). Cells not in the frame are left blank (not observed yet)."""
    found = {(r["row"], r["column"]): r for r in cells.iter_rows(named=True)}
    head, cell_w, cell_h = 44, 42, 24
    # Room for the longest row name and the heading, right-aligned at left - 8 (12 px text is
    # at most ~7.5 px a letter): a fixed 96 px cut "Первая покупка" to "ервая покупка".
    longest = max([len(row_heading)] + [min(len(str(n)), 14) for n in rows])
    left = max(96, 16 + round(7.5 * longest))
    width, height = left + cell_w * len(columns) + 4, head + cell_h * len(rows) + 4
    body = [_text(left - 8, 16, row_heading, "end", fill=MUTED, font_size="12"),
            _text(left, 16, column_heading, fill=MUTED, font_size="12")]
    body += [_text(left + cell_w * (j + 0.5), head - 8, code, "middle", fill=MUTED, font_size="11")
             for j, code in enumerate(columns)]
    for i, name in enumerate(rows):
        y = head + cell_h * i
        body.append(_text(left - 8, y + cell_h / 2 + 4, _clip(str(name), 14), "end",
                          font_size="12"))
        for j, column in enumerate(columns):
            row = found.get((name, column))
            if row is None:
                continue
            x = left + cell_w * j
            share = min(max(float(row["value"] or 0.0), 0.0), 1.0)
            colour = "#ffffff" if share > 0.55 else INK
            body.append(
                f'<g class="grid-cell" data-row="{_e(name)}" data-column="{_e(column)}" '
                f'data-value="{share:.4f}"><title>{_e(tooltip(row))}</title>'
                f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'rx="2" fill="{_mix(share) if share > 0 else "#ffffff"}" stroke="{LINE}"/>'
                + _text(x + cell_w / 2, y + cell_h / 2 + 4, row["text"], "middle", fill=colour,
                        font_size="11") + "</g>")
    return _svg(width, height, body, title, css_id)


def lines(points: pl.DataFrame, title: str, css_id: str, x_label: str, y_label: str,
          number: Callable[[float], str] = lambda v: f"{v:,.0f}",
          x_number: Callable[[float], str] = lambda v: f"{v:g}",
          diagonal: bool = False, series_order: Sequence[str] | None = None,
          plot_width: int = 520, x_from_zero: bool = True) -> str:
    """One line per ``series`` through its ``(x, y)`` points (``points``: ``series, x, y``),
    on axes from zero (or the lowest value; ``x_from_zero=False``: x from its lowest value,
    for dates) to the largest, with a legend; ``diagonal`` draws the dashed y = x line (a
    perfect calibration, a random ranking)."""
    left, right, top, bottom, plot_w, plot_h = 70, 150, 16, 44, plot_width, 260
    width, height = left + plot_w + right, top + plot_h + bottom
    names = list(series_order) if series_order is not None else \
        list(dict.fromkeys(points["series"].to_list()))
    xs = points["x"].cast(pl.Float64)
    ys = points["y"].cast(pl.Float64)
    x_lo, x_hi = float(xs.min() or 0.0), float(xs.max() or 1.0)
    x_lo = min(x_lo, 0.0) if x_from_zero else x_lo
    y_lo, y_hi = min(float(ys.min() or 0.0), 0.0), float(ys.max() or 1.0)
    if diagonal:
        x_hi = y_hi = max(x_hi, y_hi)
    x_hi, y_hi = (x_hi if x_hi > x_lo else x_lo + 1), (y_hi if y_hi > y_lo else y_lo + 1)

    def px(v: float) -> float:
        return left + plot_w * (v - x_lo) / (x_hi - x_lo)

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))

    body = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="{SOFT}"/>']
    for tick in _ticks(y_lo, y_hi):
        body.append(f'<line x1="{left}" y1="{py(tick):.1f}" x2="{left + plot_w}" '
                    f'y2="{py(tick):.1f}" stroke="{LINE}"/>'
                    + _text(left - 6, py(tick) + 4, number(tick), "end", fill=MUTED,
                            font_size="11"))
    distinct = sorted(set(xs.drop_nulls().to_list()))
    for tick in (distinct if not x_from_zero and len(distinct) <= 8 else _ticks(x_lo, x_hi, 8)):
        body.append(_text(px(tick), top + plot_h + 16, x_number(tick), "middle", fill=MUTED,
                          font_size="11"))
    body.append(_text(left + plot_w / 2, height - 6, x_label, "middle", fill=MUTED,
                      font_size="12"))
    body.append(f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" fill="{MUTED}" '
                f'font-size="12" transform="rotate(-90 14 {top + plot_h / 2:.1f})">'
                f'{_e(y_label)}</text>')
    if diagonal:
        lo = max(x_lo, y_lo)
        body.append(f'<line x1="{px(lo):.1f}" y1="{py(lo):.1f}" x2="{px(x_hi):.1f}" '
                    f'y2="{py(y_hi):.1f}" stroke="{MUTED}" stroke-dasharray="4 4"/>')
    for n, name in enumerate(names):
        own = points.filter(pl.col("series") == name).sort("x")
        if own.height == 0:
            continue
        colour = SERIES_COLOURS[n % len(SERIES_COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(own["x"].to_list(),
                                                                    own["y"].to_list()))
        dots = "".join(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}">'
            f'<title>{_e(f"{name} · {x_number(x)}: {number(y)}")}</title></circle>'
            for x, y in zip(own["x"].to_list(), own["y"].to_list()))
        ly = top + 14 + 18 * n
        body.append(f'<g class="series" data-series="{_e(name)}" data-points="{own.height}">'
                    f'<polyline points="{path}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"/>{dots}'
                    f'<line x1="{left + plot_w + 14}" y1="{ly - 4}" x2="{left + plot_w + 34}" '
                    f'y2="{ly - 4}" stroke="{colour}" stroke-width="3"/>'
                    + _text(left + plot_w + 40, ly, _clip(str(name), 18), font_size="12")
                    + "</g>")
    return _svg(width, height, body, title, css_id)


def intervals(frame: pl.DataFrame, title: str, css_id: str,
              number: Callable[[float], str] = lambda v: f"{v:,.2f}",
              group_order: Sequence[str] | None = None) -> str:
    """Estimates with their intervals over time, one row of panels per ``group`` (a channel):
    ``frame`` has ``group, period, estimate, low, high``; each period is a dot on its interval,
    green when the interval is above zero, red when below, grey when it crosses zero."""
    groups = list(group_order) if group_order is not None else \
        list(dict.fromkeys(frame["group"].to_list()))
    periods = sorted(set(frame["period"].cast(pl.String).to_list()))
    left, top, col_w, row_h = 140, 28, max(min(640 // max(len(periods), 1), 110), 56), 76
    width = left + col_w * max(len(periods), 1) + 16
    height = top + row_h * max(len(groups), 1) + 8
    body = [_text(left + col_w * (j + 0.5), 18, period, "middle", fill=MUTED, font_size="11")
            for j, period in enumerate(periods)]
    for i, group in enumerate(groups):
        own = frame.filter(pl.col("group") == group)
        y0 = top + row_h * i
        values = [v for c in ("estimate", "low", "high") for v in own[c].to_list() if v is not None]
        reach = max((abs(v) for v in values), default=1.0) or 1.0
        scale = (row_h / 2 - 10) / reach
        zero = y0 + row_h / 2
        body.append(_text(left - 10, zero + 4, _clip(str(group), 18), "end", font_weight="600",
                          font_size="12"))
        body.append(f'<line x1="{left}" y1="{zero:.1f}" x2="{width - 16}" y2="{zero:.1f}" '
                    f'stroke="{MUTED}" stroke-dasharray="3 3"/>')
        if i:
            body.append(f'<line x1="{left}" y1="{y0}" x2="{width - 16}" y2="{y0}" '
                        f'stroke="{LINE}"/>')
        for row in own.iter_rows(named=True):
            j = periods.index(str(row["period"]))
            cx = left + col_w * (j + 0.5)
            est, lo, hi = row["estimate"], row["low"], row["high"]
            if est is None:
                continue
            colour = (GOOD if lo is not None and lo > 0 else BAD if hi is not None and hi < 0
                      else MUTED)
            tip = f"{group} · {row['period']}: {number(est)}"
            if lo is not None and hi is not None:
                tip += f" [{number(lo)}; {number(hi)}]"
            bar = (f'<line x1="{cx:.1f}" y1="{zero - hi * scale:.1f}" x2="{cx:.1f}" '
                   f'y2="{zero - lo * scale:.1f}" stroke="{colour}" stroke-width="5" '
                   f'stroke-linecap="round" opacity="0.45"/>'
                   if lo is not None and hi is not None else "")
            body.append(f'<g class="interval" data-group="{_e(group)}" '
                        f'data-period="{_e(row["period"])}" data-estimate="{est:.4f}">'
                        f'<title>{_e(tip)}</title>{bar}'
                        f'<circle cx="{cx:.1f}" cy="{zero - est * scale:.1f}" r="4" '
                        f'fill="{colour}"/>'
                        + _text(cx + 8, zero - est * scale - 6, number(est), fill=colour,
                                font_size="10") + "</g>")
    return _svg(width, height, body, title, css_id)
