"""Exports are safe to open in a spreadsheet (no text cell runs as a formula) and open correctly
in Excel: a typed XLSX workbook, a decimal-comma CSV, labels in the reader's language."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta

import openpyxl
import polars as pl
import pytest
from openpyxl.cell import Cell
from openpyxl.utils import get_column_letter

from retain.commands.common import write_frame
from retain.serving.export import BOM, csv_chunks, export_scores, formula_safe
from retain.serving.labels import column_label, segment_label
from retain.serving.store import ScoreStore

HOSTILE = ["=HYPERLINK(\"http://x\",\"a\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
           "\tTAB=1", "\rCR=1"]
SAFE = ["17850", "c-1", "Иван", "a=b", ""]


def shop_frame() -> pl.DataFrame:
    ids = HOSTILE + SAFE
    return pl.DataFrame({"customer_id": ids, "due_product_id": list(reversed(ids)),
                         "churn_probability": [-0.5 + i / 10 for i in range(len(ids))]})


def spreadsheet_cells(data: bytes, separator: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""),
                               delimiter=separator))


def assert_no_formula(rows: list[dict[str, str]]) -> None:
    for row in rows:
        for column in ("customer_id", "due_product_id"):
            assert not row[column] or row[column][0] not in "=+-@\t\r", row[column]


def test_hostile_text_cells_get_an_apostrophe_and_the_rest_stays():
    safe = formula_safe(shop_frame())
    assert safe["customer_id"].to_list()[:len(HOSTILE)] == ["'" + v for v in HOSTILE]
    assert safe["customer_id"].to_list()[len(HOSTILE):] == SAFE
    # Numbers are typed: a negative number is a number, not a formula.
    assert safe["churn_probability"].equals(shop_frame()["churn_probability"])


def test_the_streamed_export_neutralises_every_text_column():
    for separator in (",", ";"):
        data = b"".join(csv_chunks(iter([shop_frame()]), shop_frame().columns,
                                   separator=separator, bom=True))
        rows = spreadsheet_cells(data, separator)
        assert len(rows) == shop_frame().height
        assert_no_formula(rows)
        assert rows[0]["customer_id"] == "'" + HOSTILE[0]


def test_score_out_csv_is_neutralised_too(tmp_path):
    write_frame(shop_frame(), tmp_path / "scores.csv")
    rows = spreadsheet_cells((tmp_path / "scores.csv").read_bytes())
    assert_no_formula(rows)
    assert [r["customer_id"] for r in rows][len(HOSTILE):] == SAFE
    # Parquet keeps the values exactly: it is read by programs, not spreadsheets.
    write_frame(shop_frame(), tmp_path / "scores.parquet")
    assert pl.read_parquet(tmp_path / "scores.parquet").equals(shop_frame())


# -- exports for people: XLSX, Excel CSV, labels ---------------------------------------------------

AS_OF = date(2026, 7, 1)


def store_frame(ids: list[str]) -> pl.DataFrame:
    """Stored scores and decisions of customers ``ids`` (hostile ones included)."""
    n = len(ids)
    return pl.DataFrame({
        "customer_id": ids, "as_of": [AS_OF] * n, "horizon_days": [90] * n,
        "p_alive": [1 - i / 7 for i in range(n)],
        "churn_probability": [i / 7 for i in range(n)],
        "expected_orders": [i / 3 for i in range(n)],
        "predicted_revenue": [1234.56789 * (i + 1) for i in range(n)],
        "clv_12m": [4000.123456 + i for i in range(n)],
        "next_order_date": [AS_OF + timedelta(days=i) for i in range(n)],
        "overdue_days": [i / 3 for i in range(n)],
        "due_product_id": list(reversed(ids)),
        "score_source": ["gbm"] * n,
        "lifecycle_stage": ["at_risk"] * n, "value_tier": ["vip"] * n,
        "behaviour_type": ["stock_up"] * n, "segment": [SEGMENT] * n,
        "goal": ["win_back" if i % 2 else "none" for i in range(n)],
        "channel": ["email" if i % 2 else None for i in range(n)],
        "reason": ["Клиент давно не покупал"] * n,
        "control_group": [i == 3 for i in range(n)],
        "contact_cost": [0.5] * n,
    })


SEGMENT = "at_risk-vip-stock_up"
IDS = HOSTILE + SAFE


@pytest.fixture
def store(tmp_path) -> Iterator[ScoreStore]:
    with ScoreStore(f"sqlite:///{tmp_path / 'scores.db'}").open() as opened:
        opened.write_run(store_frame(IDS), model_version="3", as_of=AS_OF)
        yield opened


def sheet_rows(path) -> tuple[openpyxl.Workbook, list[list[Cell]]]:
    workbook = openpyxl.load_workbook(path)
    return workbook, [list(row) for row in workbook.worksheets[0].iter_rows()]


def by_header(rows: list[list[Cell]]) -> dict[str, list[Cell]]:
    return {header.value: [row[i] for row in rows[1:]] for i, header in enumerate(rows[0])}


def test_xlsx_is_a_typed_workbook_with_a_frozen_filtered_header(store, tmp_path):
    path = tmp_path / "vip.xlsx"
    rows = export_scores(store, path, fmt="xlsx", filters={"segment": SEGMENT})
    assert rows == len(IDS)
    workbook, cells = sheet_rows(path)
    sheet = workbook.worksheets[0]
    assert sheet.title == SEGMENT
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{get_column_letter(len(store.columns))}{len(IDS) + 1}"
    assert [c.value for c in cells[0]] == store.columns  # codes without --lang
    columns = by_header(cells)
    expected = store_frame(IDS).sort("customer_id")
    churn = columns["churn_probability"]
    assert all(c.data_type == "n" and c.number_format == "0.0%" for c in churn)
    # Exact values: the format rounds what people see, not what a formula reads.
    assert [c.value for c in churn] == pytest.approx(expected["churn_probability"].to_list())
    assert all(c.number_format == "0.00" for c in columns["predicted_revenue"])
    assert all(c.number_format == "0.0" for c in columns["overdue_days"])
    assert all(c.number_format == "0" and c.value == 90 for c in columns["horizon_days"])
    assert all(c.is_date and c.number_format == "yyyy-mm-dd" for c in columns["as_of"])
    assert [c.value.date() for c in columns["next_order_date"]] == (
        expected["next_order_date"].to_list())
    assert [c.value for c in columns["control_group"]] == expected["control_group"].to_list()
    assert {c.data_type for c in columns["control_group"]} == {"b"}
    assert all(c.value is None for c in columns["next_order_p10"])  # stored null: empty cell
    assert all(c.value is None for c, goal in zip(columns["channel"], expected["goal"])
               if goal == "none")
    # Widths come from the header and the column's kind, not from a scan of the rows.
    widths = {cells[0][number - 1].value: dimension.width
              for dimension in sheet.column_dimensions.values()
              for number in range(dimension.min, dimension.max + 1)}
    assert widths["reason"] >= 60 > widths["customer_id"] >= 14
    assert all(width >= len(header) for header, width in widths.items()), widths


def test_xlsx_hostile_ids_are_text_cells_that_never_run(store, tmp_path):
    path = tmp_path / "all.xlsx"
    export_scores(store, path, fmt="xlsx")
    _, cells = sheet_rows(path)
    columns = by_header(cells)
    for name in ("customer_id", "due_product_id"):
        values = []
        for cell in columns[name]:
            if not cell.value:  # the empty id
                continue
            # The exact id (a join back to the shop's data still works), stored as a string
            # with Excel's quote-prefix flag when a spreadsheet would read it as a formula.
            # (XML escapes a CR as _x000D_; Excel reads it back, openpyxl does not.)
            value = cell.value.replace("_x000D_", "\r")
            assert cell.data_type == "s", value
            assert cell.quotePrefix == (value[0] in "=+-@\t\r"), value
            values.append(value)
        assert sorted(values) == sorted(v for v in IDS if v)
    raw = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in raw  # no formula anywhere in the sheet


def test_xlsx_in_russian_has_translated_headers_and_categories(store, tmp_path):
    path = tmp_path / "ru.xlsx"
    export_scores(store, path, fmt="xlsx", lang="ru")
    _, cells = sheet_rows(path)
    columns = by_header(cells)
    assert [c.value for c in cells[0]] == [column_label(n, "ru") for n in store.columns]
    assert {c.value for c in columns["Стадия жизненного цикла"]} == {"Под угрозой ухода"}
    assert {c.value for c in columns["Цель"]} == {"Вернуть", "Без действия"}
    assert {c.value for c in columns["Сегмент"]} == {segment_label(SEGMENT, "ru")}
    assert {c.value for c in columns["Канал"]} == {"Email", None}
    assert all(c.number_format == "0.0%" for c in columns["Вероятность ухода за горизонт"])


def test_xlsx_past_excels_row_limit_continues_on_a_second_sheet(store, tmp_path, monkeypatch):
    monkeypatch.setattr("retain.serving.export.SHEET_ROWS", 4)
    path = tmp_path / "many.xlsx"
    assert export_scores(store, path, fmt="xlsx") == len(IDS)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["scores", "scores (2)", "scores (3)"]
    ids = []
    for sheet, size in zip(workbook.worksheets, (4, 4, len(IDS) - 8)):
        rows = list(sheet.iter_rows(values_only=True))
        assert list(rows[0]) == store.columns and len(rows) == size + 1
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.endswith(str(size + 1))
        ids += [row[0].replace("_x000D_", "\r") for row in rows[1:]]
    assert ids == sorted(IDS)  # every row once, in order


def test_an_empty_export_is_a_header_only_workbook(store, tmp_path):
    path = tmp_path / "none.xlsx"
    assert export_scores(store, path, fmt="xlsx", filters={"goal": "keep_vip"}) == 0
    workbook = openpyxl.load_workbook(path)
    rows = list(workbook.active.iter_rows(values_only=True))
    assert rows == [tuple(store.columns)]


def test_excel_csv_is_rounded_with_a_decimal_comma_and_parses_back(store, tmp_path):
    path = tmp_path / "excel.csv"
    export_scores(store, path, fmt="csv", excel=True)
    raw = path.read_bytes()
    assert raw.startswith(BOM)
    rows = spreadsheet_cells(raw, ";")
    assert_no_formula(rows)
    expected = store_frame(IDS).sort("customer_id")
    assert [r["customer_id"] for r in rows] == formula_safe(expected)["customer_id"].to_list()
    parsed = pl.read_csv(raw[len(BOM):], separator=";", decimal_comma=True,
                         try_parse_dates=True)
    for name, places in (("churn_probability", 4), ("p_alive", 4), ("predicted_revenue", 2),
                         ("clv_12m", 2), ("contact_cost", 2), ("overdue_days", 1)):
        assert parsed[name].to_list() == expected[name].round(places).to_list(), name
        assert all(len(r[name].partition(",")[2]) <= places for r in rows)
    assert "1234,57" in raw.decode("utf-8-sig")  # a decimal comma, not a point
    assert parsed["as_of"].to_list() == [AS_OF] * len(IDS)
    assert {r["as_of"] for r in rows} == {"2026-07-01"}


def test_plain_csv_keeps_full_precision_for_scripts(store, tmp_path):
    path = tmp_path / "plain.csv"
    export_scores(store, path, fmt="csv")
    raw = path.read_bytes()
    assert not raw.startswith(BOM)
    parsed = pl.read_csv(raw, infer_schema_length=None)
    expected = store_frame(IDS).sort("customer_id")
    assert parsed["predicted_revenue"].to_list() == expected["predicted_revenue"].to_list()
    assert parsed["goal"].to_list() == expected["goal"].to_list()  # codes, not labels
    assert parsed.columns == store.columns


def test_csv_in_russian_has_labels_and_stays_neutralised(store, tmp_path):
    for excel in (False, True):
        path = tmp_path / f"ru-{excel}.csv"
        export_scores(store, path, fmt="csv", excel=excel, lang="ru")
        rows = spreadsheet_cells(path.read_bytes(), ";" if excel else ",")
        assert list(rows[0]) == [column_label(n, "ru") for n in store.columns]
        assert {r["Цель"] for r in rows} == {"Вернуть", "Без действия"}
        for row in rows:
            for column in ("Клиент", "Товар к пополнению"):
                assert not row[column] or row[column][0] not in "=+-@\t\r", row[column]


def test_parquet_export_keeps_the_stores_types(store, tmp_path):
    path = tmp_path / "all.parquet"
    assert export_scores(store, path, fmt="parquet") == len(IDS)
    frame = pl.read_parquet(path)
    assert frame.schema == store.empty_frame().schema
    assert frame["customer_id"].to_list() == sorted(IDS)  # exact values, no apostrophes
