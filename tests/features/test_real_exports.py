"""Real exports, as they come: each shape read by the data contract, and what features and labels
make of it (tests/fixtures.py writes the files)."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from retain.features.contract import (
    GUEST_HINT,
    MAX_ABS_AMOUNT,
    DataError,
    ReadOptions,
    customer_id_expr,
    load_customers,
    load_transactions,
    normalize_customer_id,
)
from retain.features.customers import customer_features
from retain.features.labels import labels
from tests.fixtures import (
    ONLINE_RETAIL_COLUMN_MAP,
    write_cdnow_like,
    write_cp1251,
    write_online_retail,
)

AS_OF = date(2011, 12, 1)


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    return write_online_retail(tmp_path_factory.mktemp("retail") / "Online Retail.csv")


@pytest.fixture(scope="module")
def retail_tx(retail):
    loaded = load_transactions(retail.path, column_map=ONLINE_RETAIL_COLUMN_MAP,
                               on_bad_rows="skip", rejects_path=retail.path.with_suffix(".rej.csv"))
    return loaded


def test_online_retail_export_reads_with_every_quirk_reported(retail, retail_tx):
    report, frame = retail_tx.report, retail_tx.frame
    assert report.rows_read == retail.lines
    assert report.rejected == {"customer_id: missing customer id": retail.guest_lines}
    assert report.amount_from_price and report.float_ids_rewritten == retail.float_id_lines
    assert report.duplicates == retail.duplicated_lines and report.duplicates_dropped == 0
    assert not frame["customer_id"].str.ends_with(".0").any()
    assert frame.filter(pl.col("customer_id") == "12347").height > 0
    cancelled = frame.filter(pl.col("order_id").str.starts_with("C"))
    assert cancelled.height == retail.cancellations and (cancelled["amount"] < 0).all()
    # amount = UnitPrice x Quantity
    line = frame.filter(pl.col("order_id") == "A563186")
    assert line["amount"].to_list() == [-1.5]
    assert frame["ts"].min() >= retail.start and frame["ts"].max() < datetime(2012, 6, 1)


def test_guest_lines_fail_with_the_count_and_the_hint(retail):
    with pytest.raises(DataError) as err:
        load_transactions(retail.path, column_map=ONLINE_RETAIL_COLUMN_MAP)
    assert f"{retail.guest_lines} bad row(s)" in str(err.value)
    assert GUEST_HINT in str(err.value)
    assert "values:" not in str(err.value)  # "(values: None, None, ...)" said nothing


def test_cancellations_refunds_and_adjustments_are_netted_never_visits(retail_tx):
    tx = retail_tx.frame.drop("_row")
    features = customer_features(tx, AS_OF)
    positive = (tx.filter(pl.col("ts") < datetime(2011, 12, 1))
                .group_by("customer_id", "order_id").agg(pl.col("amount").sum())
                .filter(pl.col("amount") > 0).group_by("customer_id").len())
    joined = features.join(positive, on="customer_id")
    assert joined.height == features.height
    assert (joined["orders"] == joined["len"]).all()
    # Revenue is net of every cancellation and adjustment.
    net = (tx.filter(pl.col("ts") < datetime(2011, 12, 1)).group_by("customer_id")
           .agg(pl.col("amount").sum().alias("net")))
    both = features.join(net, on="customer_id")
    assert ((both["revenue"] - both["net"]).abs() < 1e-6).all()
    assert features.filter(pl.col("customer_id") == "12346")["refunds"].item() >= 1


def test_labels_survive_non_purchase_orders_in_the_horizon(retail_tx):
    tx = retail_tx.frame.drop("_row")
    out = labels(tx, date(2011, 6, 1), 90)
    assert out.height > 0 and out["ordered_again"].any()
    # The next product comes from a purchase, never from a cancellation invoice.
    future = tx.filter((pl.col("ts") >= datetime(2011, 6, 1)) & (pl.col("ts") < datetime(2011, 8, 30)))
    cancelled_only = set(future.filter(pl.col("order_id").str.starts_with("C"))["customer_id"])
    assert cancelled_only  # the fixture has cancellations in the horizon
    assert out.filter(pl.col("ordered_again").not_())["next_product_id"].is_null().all()


def test_a_customer_with_only_a_cancellation_in_the_horizon():
    tx = pl.DataFrame({
        "customer_id": ["a", "a", "a", "a"],
        "order_id": ["1", "C9", "2", "3"],
        "ts": [datetime(2024, 1, 5), datetime(2024, 2, 2), datetime(2024, 2, 1), datetime(2024, 2, 9)],
        "amount": [10.0, -30.0, 0.0, 12.0],
        "product_id": ["p", "p", "q", "r"],
        "quantity": [1.0, -3.0, 1.0, 1.0],
        "channel": [None] * 4,
    }, schema_overrides={"channel": pl.String})
    out = labels(tx, date(2024, 2, 1), 30)
    # The zero-price order (2) and the refund larger than the order (C9) are not visits.
    assert out.row(0, named=True) == {
        "customer_id": "a", "ordered_again": True, "orders_h": 1, "revenue_h": -18.0,
        "days_to_next_order": 8, "next_product_id": "r"}


def test_the_one_customer_path_equals_the_batch_on_an_invoice_export(retail_tx):
    tx = retail_tx.frame.drop("_row")
    some = tx.filter(pl.col("customer_id").is_in(["12346", "12347", "12350", "12351"]))
    alone = [customer_features(some.filter(pl.col("customer_id") == c), AS_OF)
             for c in ["12346", "12347", "12350", "12351"]]
    assert_frame_equal(pl.concat(alone), customer_features(some, AS_OF),
                       check_exact=False, rel_tol=1e-9)


def test_float_ids_are_one_rule_everywhere():
    assert normalize_customer_id(" 17850.0 ") == "17850" == normalize_customer_id("17850")
    assert normalize_customer_id("17850.5") == "17850.5" and normalize_customer_id("A.0") == "A.0"
    ids = pl.DataFrame({"customer_id": ["17850.0", "17850", "007.00", "1e5"]})
    assert ids.select(customer_id_expr())["customer_id"].to_list() == ["17850", "17850", "007", "1e5"]


def test_cp1251_is_detected_never_lossy(tmp_path):
    path = write_cp1251(tmp_path / "1c.csv")
    column_map = {"customer_id": "Клиент", "ts": "Дата", "amount": "Сумма"}
    loaded = load_transactions(path, column_map=column_map)
    assert sorted(loaded.frame["customer_id"].unique()) == ["Иван", "Петр"]
    assert loaded.frame["amount"].sum() == pytest.approx(2450.5)
    assert loaded.report.encoding == "cp1251" and loaded.report.separator == ";"
    assert any("cp1251" in note for note in loaded.report.notes())
    explicit = load_transactions(path, column_map=column_map, options=ReadOptions(encoding="cp1251"))
    assert_frame_equal(explicit.frame, loaded.frame)


def test_an_unknown_encoding_is_one_error_naming_the_flag(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("customer_id,ts,amount\ncafé,2024-01-01,5\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.csv: not UTF-8 .*--encoding cp1251"):
        load_transactions(path)
    loaded = load_transactions(path, options=ReadOptions(encoding="latin-1"))
    assert loaded.frame["customer_id"].to_list() == ["café"]


def test_encoding_is_for_files_not_in_utf8_so_a_utf8_table_is_never_mojibake(tmp_path):
    # One --encoding for a command's every table: a UTF-8 export read as latin-1 was silent
    # mojibake ("ÐÐ¾Ð¼ÐµÑ" for "Номер"), and a side table ignored the flag altogether.
    utf8 = tmp_path / "ozon.csv"
    utf8.write_text("Покупатель;Дата;Сумма\nИван;01.03.2024;5\n", encoding="utf-8")
    latin = tmp_path / "crm.csv"
    latin.write_bytes("customer_id,consent_email\ncafé,1\n".encode("latin-1"))
    options = ReadOptions(encoding="latin-1")
    loaded = load_transactions(utf8, options=options, column_map={
        "customer_id": "Покупатель", "ts": "Дата", "amount": "Сумма"})
    assert loaded.frame["customer_id"].to_list() == ["Иван"]
    assert loaded.report.encoding == "utf-8"
    customers = load_customers(latin, options=options)
    assert customers.frame["customer_id"].to_list() == ["café"]
    assert f"{latin}: read as latin-1 (not UTF-8)" in customers.report.notes()
    with pytest.raises(DataError, match=r"not UTF-8 .*--encoding latin-1"):
        load_customers(latin)
    with pytest.raises(DataError, match=r"unknown encoding 'klingon'"):
        load_transactions(utf8, options=ReadOptions(encoding="klingon"))


def test_a_latin1_online_retail_is_refused_not_read_as_cp1251(tmp_path):
    # The real UCI log's only non-ASCII is the pound sign of its gift vouchers; saved in
    # Latin-1 it decodes as cp1251 too (``£20`` -> ``Ј20``), which once passed for Russian.
    utf8 = write_online_retail(tmp_path / "utf8.csv", customers=20, vouchers=6)
    latin = write_online_retail(tmp_path / "latin.csv", customers=20, vouchers=6, encoding="latin-1")
    assert b"\xa3" in latin.path.read_bytes()
    with pytest.raises(DataError, match=r"latin.csv: not UTF-8 .*--encoding latin-1"):
        load_transactions(latin.path, column_map=ONLINE_RETAIL_COLUMN_MAP, on_bad_rows="skip")
    read = load_transactions(latin.path, column_map=ONLINE_RETAIL_COLUMN_MAP, on_bad_rows="skip",
                             options=ReadOptions(encoding="latin-1"))
    expected = load_transactions(utf8.path, column_map=ONLINE_RETAIL_COLUMN_MAP, on_bad_rows="skip")
    assert read.report.encoding == "latin-1" and expected.report.encoding == "utf-8"
    assert_frame_equal(read.frame, expected.frame)
    # The vouchers are guest lines, rejected as such in both.
    assert read.report.rows_rejected == expected.report.rows_rejected == utf8.guest_lines


def test_two_digit_years_are_this_century_not_the_first(tmp_path):
    # The same UCI log as Excel saves it (12/1/10 8:26) was read as the years 10 and 11 AD.
    full = write_online_retail(tmp_path / "full.csv", customers=20)
    short = write_online_retail(tmp_path / "short.csv", customers=20, two_digit_years=True)
    assert ",12/1/10 " in short.path.read_text() or ",12/2/10 " in short.path.read_text()
    expected = load_transactions(full.path, as_of=AS_OF, column_map=ONLINE_RETAIL_COLUMN_MAP,
                                 on_bad_rows="skip")
    read = load_transactions(short.path, as_of=AS_OF, column_map=ONLINE_RETAIL_COLUMN_MAP,
                             on_bad_rows="skip")
    assert read.frame["ts"].min().year == 2010
    assert_frame_equal(read.frame, expected.frame)
    assert read.report.after_as_of == expected.report.after_as_of > 0


@pytest.mark.parametrize(("value", "expected"), [
    ("01.03.24 10:00", datetime(2024, 3, 1, 10, 0)),
    ("01.03.24", datetime(2024, 3, 1)),
    ("12/1/10", datetime(2010, 12, 1)),
    ("12/1/10 8:26:05", datetime(2010, 12, 1, 8, 26, 5)),
    ("2010/12/01", datetime(2010, 12, 1)),
])
def test_short_years_in_dotted_and_slash_dates(tmp_path, value, expected):
    path = tmp_path / "tx.csv"
    path.write_text(f"customer_id,ts,amount\na,{value},5\n", encoding="utf-8")
    assert load_transactions(path).frame["ts"].to_list() == [expected]


def test_cdnow_layout_reads_with_its_own_column_names(tmp_path):
    path = write_cdnow_like(tmp_path / "CDNOW_sample.txt")
    loaded = load_transactions(path, as_of=date(1997, 10, 1), column_map={
        "ts": "date", "amount": "dollar_value", "quantity": "number_of_cds"})
    report = loaded.report
    assert report.separator == "whitespace" and report.rows_kept == 9
    assert report.after_as_of == 1 and report.after_as_of_first == date(1997, 11, 15)
    assert report.duplicates == 1 and report.duplicate_lines == [11]
    assert loaded.frame["customer_id"][0] == "00001"


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-03-01T10:15:00Z", datetime(2024, 3, 1, 10, 15)),
    ("2024-03-01T10:15:00.250Z", datetime(2024, 3, 1, 10, 15, 0, 250000)),
    ("2024-03-01T10:15:00+03:00", datetime(2024, 3, 1, 7, 15)),
    ("3/1/2024 8:26", datetime(2024, 3, 1, 8, 26)),
])
def test_timestamps_as_exports_write_them(tmp_path, value, expected):
    path = tmp_path / "tx.csv"
    path.write_text(f"customer_id,ts,amount\nc1,{value},5\n")
    assert load_transactions(path).frame["ts"].to_list() == [expected]


def test_day_first_slash_dates_and_an_explicit_format(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ts,amount\nc1,25/12/2023,5\nc1,03/01/2024,5\n")
    assert load_transactions(path).frame["ts"].to_list() == [datetime(2023, 12, 25), datetime(2024, 1, 3)]
    other = tmp_path / "tx2.csv"
    other.write_text("customer_id,ts,amount\nc1,2024|01|03,5\n")
    loaded = load_transactions(other, options=ReadOptions(date_format="%Y|%m|%d"))
    assert loaded.frame["ts"].to_list() == [datetime(2024, 1, 3)]


def test_an_absurd_amount_is_a_bad_row_as_in_the_api(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ts,amount\nc1,2024-01-01,5\nc2,2024-01-02,1e308\n")
    with pytest.raises(DataError, match="amount beyond"):
        load_transactions(path)
    loaded = load_transactions(path, on_bad_rows="skip", rejects_path=tmp_path / "r.csv")
    assert loaded.frame["customer_id"].to_list() == ["c1"] and MAX_ABS_AMOUNT == 1e12


@pytest.mark.parametrize(("name", "content", "says"), [
    ("empty.csv", b"", "the file is empty"),
    ("header.csv", b"customer_id,ts,amount\n", "no rows"),
    ("blank.csv", b"\n\n", "empty"),
    ("binary.csv", b"\x00\x01\x02PK\x03\x04" * 50, "binary"),
    ("dup.csv", b"customer_id,ts,amount,amount\nc,2024-01-01,1,2\n", "'amount' appear more than once"),
    ("ragged.csv", b"customer_id,ts,amount\nc,2024-01-01,1\nc,2024-01-02,1,9,9\n", "cannot be read as CSV"),
    ("pipe.csv", b"customer_id:ts:amount\nc:2024-01-01:1\n", "separator was not recognised"),
    ("truncated.parquet", None, "cannot be read as Parquet (truncated"),
    ("text.parquet", b"customer_id,ts,amount\nc,2024-01-01,1\n", "not a Parquet file"),
    ("parquet.csv", None, "Parquet file; name it .parquet"),
    # A damaged workbook, a text file named .xlsx, a password-protected one (Excel encrypts it
    # into an OLE file holding an EncryptedPackage stream), a workbook renamed to .csv.
    ("sales.xlsx", b"PK\x03\x04" + b"\x00" * 60, "cannot be read as a workbook (truncated or damaged"),
    ("sales.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 60, "cannot be read as a workbook"),
    ("text.xlsx", b"customer_id,ts,amount\nc,2024-01-01,1\n", "not a workbook"),
    ("locked.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500
     + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 500, "password-protected"),
    ("sales.csv", b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 60, "an Excel workbook saved under a CSV name"),
])
def test_each_broken_file_is_one_data_error_naming_it(tmp_path, name, content, says):
    path = tmp_path / name
    if content is None:
        whole = tmp_path / "whole.parquet"
        pl.DataFrame({"customer_id": ["c"] * 100, "ts": [datetime(2024, 1, 1)] * 100,
                      "amount": [1.0] * 100}).write_parquet(whole)
        data = whole.read_bytes()
        content = data[: len(data) // 2] if name.endswith(".parquet") else data
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        load_transactions(path)
    assert name in str(err.value) and says in str(err.value)
    assert "\n" not in str(err.value)  # one line, no traceback


@pytest.mark.parametrize("padding", ["", ";;"])
def test_a_report_saved_with_its_title_lines_reads_from_its_header(tmp_path, padding):
    # 1C and Excel reports put a title, the period and the organisation above the header
    # (Excel pads them to the table's width); they were taken for the header.
    text = (f"Отчет о продажах за период 01.01.2026 - 31.05.2026{padding}\r\n"
            f"Организация: ООО Ромашка{padding}\r\n{padding}\r\n"
            "Клиент;Дата;Сумма\r\n1;01.03.2026 9:05:00;1 200,50\r\n2;02.03.2026;800\r\n"
            "2;вчера;100\r\n")
    path = tmp_path / "report.csv"
    path.write_bytes(text.encode("cp1251"))
    column_map = {"customer_id": "Клиент", "ts": "Дата", "amount": "Сумма"}
    with pytest.raises(DataError, match=r"unparseable date at lines 7 "):  # the file's line
        load_transactions(path, column_map=column_map)
    loaded = load_transactions(path, column_map=column_map, on_bad_rows="skip",
                               rejects_path=tmp_path / "r.csv")
    assert loaded.frame["amount"].to_list() == [1200.5, 800.0]
    assert any("3 line(s) above the header skipped" in note and "Отчет о продажах" in note
               for note in loaded.report.notes())
    assert pl.read_csv(tmp_path / "r.csv")["line"].to_list() == [7]


# A Wildberries-shaped sales report as the seller downloads it (.xlsx only): a title row and a
# blank row above Russian headers, date cells beside dates typed as text, amounts as number
# cells and as decimal-comma text, ids as a spreadsheet's float cells (17850.0).
WB_TITLE = "Отчет о продажах по реализации № 123456 за период с 01.03.2026 по 31.03.2026"
WB_HEADER = ["Код покупателя", "Дата продажи", "Сумма продажи, руб.", "Кол-во", "Артикул WB"]
WB_MAP = {"customer_id": "Код покупателя", "ts": "Дата продажи",
          "amount": "Сумма продажи, руб.", "quantity": "Кол-во", "product_id": "Артикул WB"}
# (cell values, the same row as Excel in a Russian locale saves it as CSV)
WB_ROWS = [
    ((17850.0, datetime(2026, 3, 1, 10, 0), "1 234,50 ₽", 2, 146_012_345),
     "17850;01.03.2026 10:00;1 234,50 ₽;2;146012345"),
    (("17851", "02.03.2026 11:30", 990, 1, 146_012_346),
     "17851;02.03.2026 11:30;990;1;146012346"),
    ((17850.0, datetime(2026, 3, 9), "-1 234,50", -2, 146_012_345),
     "17850;09.03.2026;-1 234,50;-2;146012345"),
    ((17852, date(2026, 3, 10), 450.5, 1, 146_012_347),
     "17852;10.03.2026;450,5;1;146012347"),
    ((17851, datetime(2026, 3, 20, 18, 45), "2 000,00", 1, 146_012_348),
     "17851;20.03.2026 18:45;2 000,00;1;146012348"),
    (("17850", "25.03.2026 09:15", "800", 1, 146_012_346),
     "17850;25.03.2026 09:15;800;1;146012346"),
]


def write_wb_report(path, rows=WB_ROWS, sheets=()):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Продажи"
    sheet.append([WB_TITLE])
    sheet.append([])
    sheet.append(WB_HEADER)
    for cells, _ in rows:
        sheet.append(list(cells))
    for column in (2,):  # date cells shown as Excel shows them in Russian
        for (cell,) in sheet.iter_rows(min_row=4, min_col=column, max_col=column):
            cell.number_format = "dd.mm.yyyy hh:mm"
    for name in sheets:
        other = book.create_sheet(name)
        other.append(["customer_id", "ts", "amount"])
        other.append(["c9", datetime(2026, 3, 5), -990])
    book.save(path)
    return path


def write_wb_csv_twin(path, rows=WB_ROWS):
    width = ";" * (len(WB_HEADER) - 1)
    lines = [WB_TITLE + width, width, ";".join(WB_HEADER), *(line for _, line in rows)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())  # Excel's "CSV UTF-8"
    return path


def test_a_wildberries_workbook_gives_the_features_of_the_same_report_saved_as_csv(tmp_path):
    book = load_transactions(write_wb_report(tmp_path / "wb.xlsx"), column_map=WB_MAP)
    csv = load_transactions(write_wb_csv_twin(tmp_path / "wb.csv"), column_map=WB_MAP)
    # Date cells are their dates (not serials such as 46082), ids as the CSV's, amounts read.
    assert book.frame["ts"].to_list()[:3] == [datetime(2026, 3, 1, 10), datetime(2026, 3, 2, 11, 30),
                                              datetime(2026, 3, 9)]
    assert book.frame["customer_id"].to_list() == ["17850", "17851", "17850", "17852", "17851",
                                                   "17850"]
    assert book.frame["amount"].to_list() == [1234.5, 990.0, -1234.5, 450.5, 2000.0, 800.0]
    assert_frame_equal(book.frame.drop("order_id"), csv.frame.drop("order_id"))
    as_of = date(2026, 4, 1)
    assert_frame_equal(customer_features(book.frame, as_of), customer_features(csv.frame, as_of))
    assert any("2 row(s) above the header skipped" in note and "Отчет о продажах" in note
               for note in book.report.notes())


def test_a_bad_row_of_a_workbook_is_named_by_its_sheet_row(tmp_path):
    rows = [*WB_ROWS[:4], (("17853", "вчера", 100, 1, 1), ""), (("17854", "26.03.2026", "сто", 1, 1), "")]
    path = write_wb_report(tmp_path / "wb.xlsx", rows)
    # Title row 1, blank row 2, header row 3: the fifth data row is sheet row 8, as Excel shows.
    with pytest.raises(DataError) as err:
        load_transactions(path, column_map=WB_MAP)
    message = str(err.value)
    assert "wb.xlsx" in message
    assert "column 'ts': unparseable date at sheet rows 8 (values: 'вчера')" in message
    assert "column 'amount': not a number at sheet rows 9 (values: 'сто')" in message
    loaded = load_transactions(path, column_map=WB_MAP, on_bad_rows="skip",
                               rejects_path=tmp_path / "r.csv")
    assert loaded.frame.height == 4
    assert pl.read_csv(tmp_path / "r.csv")["sheet_row"].to_list() == [8, 9]


def test_a_sheet_starting_below_and_right_of_a1_keeps_excels_row_numbers(tmp_path):
    # A 1C report saved to Excel leaves margins: row 1 and column A blank.
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet["B2"] = "Продажи за март"
    sheet.append([None, "Клиент", "Дата", "Сумма"])
    sheet.append([None, 1, datetime(2026, 3, 1), 100])
    sheet.append([None, 2, "потом", 200])
    book.save(tmp_path / "1c.xlsx")
    with pytest.raises(DataError, match=r"unparseable date at sheet rows 5 "):
        load_transactions(tmp_path / "1c.xlsx",
                          column_map={"customer_id": "Клиент", "ts": "Дата", "amount": "Сумма"})


def test_the_first_sheet_is_read_and_another_by_its_name(tmp_path):
    path = write_wb_report(tmp_path / "wb.xlsx", sheets=["Возвраты"])
    loaded = load_transactions(path, column_map=WB_MAP)
    assert loaded.frame.height == len(WB_ROWS)
    assert any("sheet 'Продажи' read" in note and "'Возвраты'" in note
               and "wb.xlsx#Возвраты" in note for note in loaded.report.notes())
    returns = load_transactions(f"{path}#Возвраты")
    assert returns.frame["customer_id"].to_list() == ["c9"]
    assert returns.frame["amount"].to_list() == [-990.0]
    with pytest.raises(DataError, match=r"no sheet 'Итоги' \(sheets: 'Продажи', 'Возвраты'\)"):
        load_transactions(f"{path}#Итоги")


def test_customers_and_contacts_read_from_workbooks(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["customer_id", "signup_ts", "consent_email"])
    book.active.append([17850.0, datetime(2025, 1, 5), True])
    book.active.append(["17851", "06.01.2025", "ЛОЖЬ"])
    book.save(tmp_path / "customers.xlsx")
    customers = load_customers(tmp_path / "customers.xlsx").frame
    assert customers["customer_id"].to_list() == ["17850", "17851"]
    assert customers["consent_email"].to_list() == [True, False]
    assert customers["signup_ts"].to_list() == [datetime(2025, 1, 5), datetime(2025, 1, 6)]


def test_an_opendocument_sheet_reads_as_the_xlsx_does(tmp_path):
    # LibreOffice's own format, written here by hand: a title row, a date cell and a text
    # date, a number cell and decimal-comma text.
    import zipfile

    def cell(kind: str, shown: str, value: str = "") -> str:
        attribute = {"float": f' office:value="{value}"',
                     "date": f' office:date-value="{value}"'}.get(kind, "")
        return (f'<table:table-cell office:value-type="{kind}"{attribute}>'
                f"<text:p>{shown}</text:p></table:table-cell>")

    rows = [[cell("string", "Отчет о продажах")],
            [cell("string", name) for name in ("customer_id", "ts", "amount")],
            [cell("float", "17850", "17850"), cell("date", "01.03.2026 10:00", "2026-03-01T10:00:00"),
             cell("string", "1 234,50")],
            [cell("string", "17851"), cell("string", "02.03.2026"), cell("float", "99,5", "99.5")]]
    body = "".join(f"<table:table-row>{''.join(row)}</table:table-row>" for row in rows)
    content = ('<?xml version="1.0" encoding="UTF-8"?><office:document-content '
               'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
               f'<office:body><office:spreadsheet><table:table table:name="Продажи">{body}'
               "</table:table></office:spreadsheet></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
                '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" manifest:media-type='
                '"application/vnd.oasis.opendocument.spreadsheet"/></manifest:manifest>')
    with zipfile.ZipFile(tmp_path / "sales.ods", "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
    frame = load_transactions(tmp_path / "sales.ods").frame
    assert frame["customer_id"].to_list() == ["17850", "17851"]
    assert frame["ts"].to_list() == [datetime(2026, 3, 1, 10), datetime(2026, 3, 2)]
    assert frame["amount"].to_list() == [1234.5, 99.5]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_excels_unicode_text_is_read_not_called_binary(tmp_path, encoding):
    # Excel's "Unicode text" (UTF-16 with a byte order mark, tab separated) was "a binary file".
    text = "Клиент\tДата\tСумма\r\nИван\t01.03.2024\t1 200,50\r\nПетр\t02.03.2024\t800\r\n"
    data = text.encode("utf-16") if encoding == "utf-16" else b"\xfe\xff" + text.encode(encoding)
    path = tmp_path / "unicode.txt"
    path.write_bytes(data)
    loaded = load_transactions(path, column_map={"customer_id": "Клиент", "ts": "Дата",
                                                 "amount": "Сумма"})
    assert loaded.frame["customer_id"].to_list() == ["Иван", "Петр"]
    assert loaded.frame["amount"].to_list() == [1200.5, 800.0]
    assert f"{path}: read as utf-16 (not UTF-8)" in loaded.report.notes()


def test_amounts_as_excel_writes_currency_cells(tmp_path):
    # A currency-formatted column saved as CSV keeps its sign: every line was "not a number".
    values = ["1 200,50 ₽", "800 руб.", "(150,00)", "−150,00", "1\u00a0234,50р.", "₸ 5 000",
              "12 сом", "100 USD", "-5,5 ₽"]
    text = "customer_id;ts;amount\n" + "".join(f"c{i};2024-01-01;{v}\n"
                                               for i, v in enumerate(values))
    path = tmp_path / "currency.csv"
    path.write_text(text, encoding="utf-8-sig")
    assert load_transactions(path).frame["amount"].to_list() == [
        1200.5, 800.0, -150.0, -150.0, 1234.5, 5000.0, 12.0, 100.0, -5.5]
    path.write_text("customer_id;ts;amount\nc1;2024-01-01;1.234,50\nc2;2024-01-01;5 шт\n")
    with pytest.raises(DataError, match=r"not a number at lines 2, 3"):
        load_transactions(path)


def test_a_header_with_an_unnamed_index_column_is_still_the_header(tmp_path):
    path = tmp_path / "pandas.csv"
    path.write_text(",customer_id,ts,amount\n0,c1,2024-01-01,5\n1,c2,2024-01-02,6\n")
    loaded = load_transactions(path)
    assert loaded.frame["customer_id"].to_list() == ["c1", "c2"]
    assert not any("above the header" in note for note in loaded.report.notes())


def test_a_format_first_seen_after_the_sample_is_still_read(tmp_path):
    # Formats are chosen on a sample of the values; a file switching format later (an export
    # appended to another) must read every line all the same.
    lines = [f"c{i},2024-01-{1 + i % 28:02d},5" for i in range(3000)] + ["c9,31.01.2024 10:00,7"]
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ts,amount\n" + "\n".join(lines) + "\n")
    loaded = load_transactions(path)
    assert loaded.frame.height == 3001 and loaded.frame["ts"][-1] == datetime(2024, 1, 31, 10, 0)


def test_side_tables_read_float_ids_as_the_transactions_do(tmp_path):
    from retain.features.contract import load_contacts, load_customers

    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,consent_email\n17850.0,yes\n 12346 ,no\n")
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("customer_id,ts,channel\n17850.0,2024-01-01T09:00:00Z,Email\n")
    assert load_customers(customers).frame["customer_id"].to_list() == ["17850", "12346"]
    assert load_contacts(contacts).frame["customer_id"].to_list() == ["17850"]


@pytest.mark.parametrize("totals", [
    [None, "Итого", 4240.5, 6, None],        # Wildberries: the word beside the sums, no id
    ["Итого по отчету:", None, 4240.5, 6, None],  # 1C: the word in the id column
    ["Итого по клиенту Иванов И.И.:", None, 4240.5, 6, None],
    ["Всего", None, 4240.5, None, None],
])
def test_a_reports_empty_rows_and_totals_row_are_no_customer_purchase_or_bad_row(tmp_path, totals):
    import openpyxl

    path = write_wb_report(tmp_path / "wb.xlsx")
    book = openpyxl.load_workbook(path)
    sheet = book.active
    sheet.insert_rows(6)  # a blank row between groups, inside the table (sheet row 6)
    sheet.append([])
    sheet.append(totals)
    book.save(path)
    loaded = load_transactions(path, column_map=WB_MAP)  # the default: fail on any bad row
    plain = load_transactions(write_wb_report(tmp_path / "plain.xlsx"), column_map=WB_MAP)
    assert loaded.frame["customer_id"].to_list() == plain.frame["customer_id"].to_list()
    assert loaded.frame["amount"].sum() == plain.frame["amount"].sum() == 4240.5
    notes = loaded.report.notes()
    assert any("2 empty sheet row(s) skipped (sheet rows 6, 11)" in n for n in notes), notes
    # Shown by its word: what follows may name someone.
    shown = "Итого …" if totals[0] and totals[0].startswith("Итого по") else totals[0] or totals[1]
    assert any(f"1 totals row(s) skipped (sheet row 12: {shown!r})" in n for n in notes), notes
    assert not any("Иванов" in n for n in notes)
    assert not any("duplicated" in n for n in notes)


def test_a_csvs_empty_lines_and_totals_line_are_left_out_with_a_note(tmp_path):
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,ts,amount\nc1,2024-01-01,5\n\nc2,2024-01-02,7\n,,\n"
                    "Total,,12\nTotal Gym,2024-01-03,3\n")
    loaded = load_transactions(path)
    # "Total Gym" is an id like any other: only a cell that is the word alone is a total.
    assert loaded.frame["customer_id"].to_list() == ["c1", "c2", "Total Gym"]
    notes = loaded.report.notes()
    assert any("2 empty line(s) skipped (lines 3, 5)" in n for n in notes), notes
    assert any("1 totals row(s) skipped (line 6: 'Total')" in n for n in notes), notes
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,consent_email\nc1,да\nc2,нет\nИтого: 2,\n"
                         "Всего клиентов: 2,\n")
    assert load_customers(customers).frame["customer_id"].to_list() == ["c1", "c2"]


def test_a_header_drawn_over_two_rows_with_merged_cells_names_every_column(tmp_path):
    # 1C's layout: "Код покупателя" and "Дата" merged down over two rows, "Продажа" and
    # "Возврат" each merged across their "Сумма" and "Кол-во".
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet["A1"] = "Продажи по клиентам за март 2026"
    sheet.merge_cells("A1:F1")
    for cell, value in (("A3", "Код покупателя"), ("B3", "Дата"), ("C3", "Продажа"),
                        ("E3", "Возврат"), ("C4", "Сумма"), ("D4", "Кол-во"), ("E4", "Сумма"),
                        ("F4", "Кол-во")):
        sheet[cell] = value
    for cells in ("A3:A4", "B3:B4", "C3:D3", "E3:F3"):
        sheet.merge_cells(cells)
    sheet.append([17850, datetime(2026, 3, 1), 1200, 2, None, None])
    sheet.append([17851, "вчера", 990, 1, None, None])  # sheet row 6
    sheet.append(["Итого", None, 2190, 3, None, None])
    book.save(tmp_path / "1c.xlsx")
    wanted = {"customer_id": "Код покупателя", "ts": "Дата", "amount": "Продажа Сумма",
              "quantity": "Продажа Кол-во"}
    with pytest.raises(DataError, match=r"unparseable date at sheet rows 6 "):
        load_transactions(tmp_path / "1c.xlsx", column_map=wanted)
    loaded = load_transactions(tmp_path / "1c.xlsx", column_map=wanted, on_bad_rows="skip",
                               rejects_path=tmp_path / "r.csv")
    assert loaded.frame["amount"].to_list() == [1200.0]
    assert any("sheet rows 3 and 4 read as one header" in n for n in loaded.report.notes())
    assert any("totals row(s) skipped (sheet row 7" in n for n in loaded.report.notes())


def test_a_first_data_row_with_a_gap_is_data_not_a_second_header_row(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["customer_id", "ts", "amount", None])  # an unnamed fourth column
    sheet.append(["c1", datetime(2026, 3, 1), 10, None])
    sheet.append(["c2", datetime(2026, 3, 2), 20, "x"])
    book.save(tmp_path / "plain.xlsx")
    assert load_transactions(tmp_path / "plain.xlsx").frame["customer_id"].to_list() == ["c1", "c2"]


def test_a_hidden_first_sheet_is_passed_over_for_the_sheet_excel_shows(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    service = book.active
    service.title = "Служебный"
    service.append(["x", "y"])
    service.sheet_state = "hidden"
    sales = book.create_sheet("Продажи")
    sales.append(["customer_id", "ts", "amount"])
    sales.append(["c1", datetime(2026, 1, 1), 10])
    book.active = 1
    book.save(tmp_path / "wb.xlsx")
    loaded = load_transactions(tmp_path / "wb.xlsx")
    assert loaded.frame["customer_id"].to_list() == ["c1"]
    assert any("sheet 'Продажи' read, the workbook's first visible" in n
               for n in loaded.report.notes())
    with pytest.raises(DataError, match="Служебный: no rows"):  # asked for by name, it is read
        load_transactions(f"{tmp_path / 'wb.xlsx'}#Служебный")
