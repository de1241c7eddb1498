"""Exports are safe to open in a spreadsheet: no text cell runs as a formula (CSV injection)."""

from __future__ import annotations

import csv
import io

import polars as pl

from retain.commands.common import write_frame
from serving.export import csv_chunks, formula_safe

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
