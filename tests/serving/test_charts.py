"""retain's own SVG charts: what they draw matches the frame, and no text from the data can
break out of the SVG (codes come from the shop's files)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import polars as pl

from retain.serving import charts

HOSTILE = '<script>alert("x")</script>&"\''
SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML: nothing escaped its element
    assert root.tag == f"{SVG}svg"
    assert all(el.tag != f"{SVG}script" for el in root.iter())
    return root


def test_lifecycle_value_sums_the_matrix_by_the_segment_codes_first_two_parts():
    matrix = pl.DataFrame({
        "segment": ["lost-low-occasional", "lost-low-hedonist", "new-vip-stock_up", "зимняя-акция"],
        "customers": [3, 2, 5, 7], "expected_incremental_revenue": [1.0, 2.0, 4.0, 8.0]})
    cells = charts.lifecycle_value(matrix).sort("lifecycle_stage")
    assert cells.rows() == [("lost", "low", 5, 3.0), ("new", "vip", 5, 4.0)]


def test_a_heatmap_cell_per_stage_and_tier_with_its_count_and_escaped_tooltip():
    cells = pl.DataFrame({"lifecycle_stage": ["new", "lost"], "value_tier": ["vip", "low"],
                          "customers": [5, 1_200]})
    svg = charts.heatmap(cells, ["new", "lost"], ["vip", "low"], lambda c: HOSTILE + c,
                         lambda c: c.upper(), lambda row: f"{HOSTILE} {row['customers']}",
                         HOSTILE)
    root = parse(svg)
    found = {(g.get("data-stage"), g.get("data-tier")): int(g.get("data-customers"))
             for g in root.iter(f"{SVG}g") if g.get("class") == "heat-cell"}
    assert found == {("new", "vip"): 5, ("new", "low"): 0, ("lost", "vip"): 0,
                     ("lost", "low"): 1_200}
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert f"{HOSTILE} 1200" in titles and root.get("aria-label") == HOSTILE
    assert "<script>" not in svg
    # The most crowded cell is the darkest.
    fills = {g.get("data-customers"): g.find(f"{SVG}rect").get("fill")
             for g in root.iter(f"{SVG}g") if g.get("class") == "heat-cell"}
    assert fills["1200"] == "#1f5fbf" and fills["0"] == "#ffffff"


def test_bars_are_scaled_per_measure_and_escape_their_keys():
    frame = pl.DataFrame({"channel": ["sms", HOSTILE, None], "customers": [10, 40, 20],
                          "contact_cost": [30.0, 4.0, 0.0]})
    svg = charts.bars(frame, "channel", [("customers", "Customers"), ("contact_cost", "Cost")],
                      lambda k: k or "none", str, "t", "chart-x")
    root = parse(svg)
    widths = {(g.get("data-key"), g.get("data-measure")): float(g.find(f"{SVG}rect").get("width"))
              for g in root.iter(f"{SVG}g") if g.get("class") == "bar"}
    assert widths[(HOSTILE, "customers")] > widths[("", "customers")] > widths[("sms", "customers")]
    assert widths[("sms", "contact_cost")] > widths[(HOSTILE, "contact_cost")]
    assert widths[("", "contact_cost")] == 0
    keys = [g.get("data-key") for g in root.iter(f"{SVG}g") if g.get("class") == "bar"]
    assert keys[0] == HOSTILE  # largest first


def test_model_quality_puts_the_difference_left_or_right_of_zero_by_its_verdict():
    rows = [{"label": "Churn", "ours": 0.81, "best": {"name": HOSTILE, "value": 0.74},
             "diff": 0.07, "lo": 0.03, "hi": 0.11, "verdict": "better", "digits": 3},
            {"label": "Timing", "ours": 21.5, "best": {"name": "median", "value": 19.0},
             "diff": -2.5, "lo": -3.5, "hi": -1.5, "verdict": "worse", "digits": 1}]
    root = parse(charts.model_quality(rows, "retain", ("worse", "better"),
                                      lambda v, d: f"{v:.{d}f}", "t"))
    zero = float(next(root.iter(f"{SVG}line")).get("x1"))
    diffs = [g for g in root.iter(f"{SVG}g") if g.get("class") == "model-diff"]
    assert [g.get("data-verdict") for g in diffs] == ["better", "worse"]
    better, worse = (float(g.find(f"{SVG}circle").get("cx")) for g in diffs)
    assert better > zero > worse


def test_the_timeline_orders_as_of_band_and_marks_on_one_axis():
    svg = charts.timeline(date(2026, 7, 1), [("expected", date(2026, 7, 20), "Expected"),
                                             ("due", date(2026, 8, 30), HOSTILE)],
                          (date(2026, 7, 10), date(2026, 8, 15), "Likely"), "As of", "t",
                          past=[date(2026, 5, 1), date(2026, 6, 1)])
    root = parse(svg)
    groups = {g.get("class"): g for g in root.iter(f"{SVG}g")}
    as_of = float(groups["as-of"].find(f"{SVG}line").get("x1"))
    band = groups["band"].find(f"{SVG}rect")
    expected = float(groups["mark-expected"].find(f"{SVG}circle").get("cx"))
    past = [float(c.get("cx")) for c in root.iter(f"{SVG}circle") if c.get("class") == "past-order"]
    assert past[0] < past[1] < as_of < float(band.get("x")) < expected
    assert expected < float(band.get("x")) + float(band.get("width"))
    assert f"{HOSTILE}: 2026-08-30" in [t.text for t in root.iter(f"{SVG}title")]


def test_the_timeline_draws_the_order_history_before_as_of_band_and_due_product():
    history = charts.OrderHistory(date(2025, 3, 14), date(2026, 5, 28), f"{HOSTILE} 9",
                                  HOSTILE + "first", HOSTILE + "last")
    svg = charts.timeline(date(2026, 7, 1), [("expected", date(2026, 7, 20), "Expected"),
                                             ("due", date(2026, 8, 30), "Runs out")],
                          (date(2026, 7, 10), date(2026, 8, 15), "Likely"), "As of", "t",
                          history=history)
    root = parse(svg)
    groups = {g.get("class"): g for g in root.iter(f"{SVG}g")}
    line = groups["history"].find(f"{SVG}line")
    first = float(groups["first-order"].find(f"{SVG}circle").get("cx"))
    last = float(groups["last-order"].find(f"{SVG}circle").get("cx"))
    as_of = float(groups["as-of"].find(f"{SVG}line").get("x1"))
    band = float(groups["band"].find(f"{SVG}rect").get("x"))
    due = float(groups["mark-due"].find(f"{SVG}rect").get("x"))
    # first order -> last order -> as-of -> band -> due product, on one axis.
    assert (float(line.get("x1")), float(line.get("x2"))) == (first, last)
    assert first < last < as_of < band < due
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert f"{HOSTILE} 9" in texts  # the count, escaped (parse() proved nothing broke out)
    assert f"{HOSTILE}first: 2025-03-14" in texts and f"{HOSTILE}last: 2026-05-28" in texts
    # A history over a year still gets readable month ticks: not one label per month.
    ticks = [t for t in texts if t and len(t) == 7 and t[4] == "-"]
    assert 3 <= len(ticks) <= 12, ticks
    # Every label lies inside the picture, the band's too though the long history pushes the
    # band to the right edge (centred labels: ~7 px a character at font size 12).
    height, width = float(root.get("height")), float(root.get("width"))
    assert all(float(t.get("y")) < height for t in root.iter(f"{SVG}text"))
    band_text = groups["band"].find(f"{SVG}text")
    half = len(band_text.text) * 3.5
    assert half <= float(band_text.get("x")) <= width - half


def test_one_order_is_one_dot_and_no_history_draws_nothing():
    one = charts.OrderHistory(date(2026, 6, 2), date(2026, 6, 2), "Orders: 1", "First", "Last")
    root = parse(charts.timeline(date(2026, 7, 1), [], (None, None, "Likely"), "As of", "t",
                                 history=one))
    groups = {g.get("class"): g for g in root.iter(f"{SVG}g")}
    assert groups["first-order"].find(f"{SVG}circle").get("cx") == \
        groups["last-order"].find(f"{SVG}circle").get("cx")
    bare = charts.timeline(date(2026, 7, 1), [], (None, None, "Likely"), "As of", "t")
    assert 'class="history"' not in bare and "order" not in bare


# --- the report's charts (serving/report.py) -------------------------------------------------


def test_a_grid_heatmap_draws_only_the_cells_it_has_and_escapes_their_names():
    cells = pl.DataFrame({"row": [HOSTILE, HOSTILE, "2025-02"], "column": [0, 1, 0],
                          "value": [1.0, 0.25, 0.0], "text": ["100", "25", "0"]})
    root = parse(charts.grid_heatmap(cells, [HOSTILE, "2025-02"], [0, 1], HOSTILE, "c"))
    found = {(g.get("data-row"), g.get("data-column")): float(g.get("data-value"))
             for g in root.iter(f"{SVG}g") if g.get("class") == "grid-cell"}
    # 2025-02's month 1 is not observed yet: no cell at all, not a zero.
    assert found == {(HOSTILE, "0"): 1.0, (HOSTILE, "1"): 0.25, ("2025-02", "0"): 0.0}


def test_a_grid_heatmaps_row_names_and_heading_fit_left_of_the_grid():
    cells = pl.DataFrame({"row": ["paid_search"], "column": [0], "value": [1.0], "text": ["100"]})
    root = parse(charts.grid_heatmap(cells, ["paid_search"], [0], "t", "c",
                                     "Первая покупка", "Месяцев после первой покупки"))
    heading = next(t for t in root.iter(f"{SVG}text") if t.text == "Первая покупка")
    # Right-aligned at x: it needs about 7.5 px a letter to its left.
    assert float(heading.get("x")) >= 7.5 * len("Первая покупка")


def test_lines_draw_each_series_through_its_points_in_order():
    points = pl.DataFrame({"series": ["b", "a", "a", HOSTILE], "x": [0, 2, 1, 0],
                           "y": [1.0, 4.0, 2.0, 3.0]})
    root = parse(charts.lines(points, HOSTILE, "c", "x", "y"))
    series = {g.get("data-series"): g for g in root.iter(f"{SVG}g") if g.get("class") == "series"}
    assert set(series) == {"a", "b", HOSTILE} and series["a"].get("data-points") == "2"
    xs = [float(p.split(",")[0]) for p in
          series["a"].find(f"{SVG}polyline").get("points").split()]
    assert xs == sorted(xs)  # x = 1 before x = 2, whatever the frame's order


def test_intervals_are_green_above_zero_red_below_and_grey_across():
    frame = pl.DataFrame({"group": ["email"] * 3, "period": ["2025-01", "2025-02", "2025-03"],
                          "estimate": [5.0, -5.0, 1.0], "low": [1.0, -9.0, -2.0],
                          "high": [9.0, -1.0, 4.0]})
    root = parse(charts.intervals(frame, "t", "c"))
    colours = {g.get("data-period"): g.find(f"{SVG}circle").get("fill")
               for g in root.iter(f"{SVG}g") if g.get("class") == "interval"}
    assert colours == {"2025-01": charts.GOOD, "2025-02": charts.BAD, "2025-03": charts.MUTED}
