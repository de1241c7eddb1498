from __future__ import annotations

import sqlite3
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from retain.features.contract import (
    CANCELLED_STATUSES,
    RETURNED_STATUSES,
    DataError,
    ReadOptions,
    channel_name,
    load_contacts,
    load_customers,
    load_transactions,
    parse_column_map,
    status_key,
    status_kind,
    table_map,
)
from retain.features.customers import customer_features

HEADER = "customer_id,order_id,ts,amount,product_id\n"


def write(tmp_path: Path, text: str, name: str = "tx.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_clean_csv_is_typed_and_trimmed(tmp_path):
    path = write(tmp_path, HEADER + " c1 ,o1,2024-01-05 10:30:00,100.5,p1\nc2,,2024-01-06,7,\n")
    frame = load_transactions(path).frame
    assert frame["customer_id"].to_list() == ["c1", "c2"]
    assert frame.schema["ts"] == pl.Datetime("us") and frame.schema["amount"] == pl.Float64
    assert frame["ts"].to_list() == [datetime(2024, 1, 5, 10, 30), datetime(2024, 1, 6)]
    assert frame["order_id"][1].startswith("#row")  # missing order id: one order per row
    assert frame["quantity"].to_list() == [1.0, 1.0]


def test_missing_column_names_the_file_the_column_and_the_fix(tmp_path):
    path = write(tmp_path, "client,ts,amount\nc1,2024-01-01,5\n")
    with pytest.raises(DataError) as err:
        load_transactions(path)
    message = str(err.value)
    assert "tx.csv" in message and "'customer_id'" in message and "--map customer_id=" in message


def test_a_file_without_a_header_line_is_one_error_that_shows_no_data(tmp_path):
    """lifetimes' CDNOW_sample.txt has no header: its first line was read as column names,
    and the error listed a customer's id and amount as "found" columns; mapping to those
    "names" read on and dropped that customer's other lines as repeated headers."""
    lines = (" 00004 0001 19970101  2   29.33\r\n 00004 0001 19970118  2   29.73\r\n"
             " 00018 0002 19970101  1   14.96\r\n")
    path = write(tmp_path, lines, name="CDNOW_sample.txt")
    for column_map in ({}, {"customer_id": "00004", "ts": "19970101", "amount": "29.33"}):
        with pytest.raises(DataError) as err:
            load_transactions(path, column_map=column_map)
        message = str(err.value)
        assert "CDNOW_sample.txt: the first line looks like data, not a header" in message
        assert "add a header line" in message
        assert "00004" not in message and "29.33" not in message
    with_header = write(tmp_path, "customer_id sample_id ts quantity amount\r\n" + lines,
                        name="with-header.txt")
    assert load_transactions(with_header).frame["customer_id"].to_list() == ["00004", "00004",
                                                                             "00018"]
    # pandas names unnamed columns 0, 1, 2, ...: a real header, which --map addresses.
    numbered = write(tmp_path, "0,1,2\nc1,2024-01-01,5\n", name="numbered.csv")
    frame = load_transactions(numbered, column_map={"customer_id": "0", "ts": "1",
                                                    "amount": "2"}).frame
    assert frame.select("customer_id", "amount").row(0) == ("c1", 5.0)


def test_column_map_renames_the_shops_columns(tmp_path):
    path = write(tmp_path, "client_code,date,sum\nc1,2024-01-01,5\n")
    mapping = parse_column_map(["customer_id=client_code", "ts=date", "amount=sum"])
    frame = load_transactions(path, column_map=mapping).frame
    assert frame.select("customer_id", "amount").row(0) == ("c1", 5.0)


def test_bad_map_syntax_is_explained():
    with pytest.raises(DataError, match="CONTRACT_COLUMN=YOUR_COLUMN"):
        parse_column_map(["customer_id"])


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("c1,o1,yesterday,5,p1", "ts", "unparseable date"),
        ("c1,o1,2024-13-45,5,p1", "ts", "unparseable date"),
        ("c1,o1,2024-01-01,five,p1", "amount", "not a number"),
        (",o1,2024-01-01,5,p1", "customer_id", "missing customer id"),
    ],
)
def test_each_bad_row_is_named_by_column_and_line(tmp_path, row, column, reason):
    path = write(tmp_path, HEADER + "c0,o0,2024-01-01,1,p1\n" + row + "\n")
    with pytest.raises(DataError) as err:
        load_transactions(path, as_of=date(2025, 1, 1))
    message = str(err.value)
    assert "tx.csv" in message and f"column '{column}'" in message and reason in message
    assert "lines 3" in message  # header is line 1, the good row line 2


def test_duplicated_lines_are_reported_and_kept_unless_dropped(tmp_path):
    path = write(tmp_path, HEADER + "c1,o1,2024-01-01,5,p1\nc1,o1,2024-01-01,5,p1\n"
                 "c2,o2,2024-01-02,7,p1\n")
    kept = load_transactions(path)
    assert kept.frame.height == 3 and kept.report.rows_rejected == 0
    assert kept.report.duplicates == 1 and kept.report.duplicate_lines == [3]
    assert any("1 duplicated lines" in note and "kept" in note for note in kept.report.notes())
    dropped = load_transactions(path, options=ReadOptions(drop_duplicates=True))
    assert dropped.frame.height == 2 and dropped.report.duplicates_dropped == 1


def test_lines_on_or_after_the_as_of_date_are_outside_the_window_never_rejected(tmp_path):
    path = write(tmp_path, HEADER + "c1,o1,2024-01-01,5,p1\nc1,o2,2031-01-01,5,p1\n"
                 "c1,o3,2031-02-03,bad,p1\n")
    loaded = load_transactions(path, as_of=date(2030, 1, 1))
    assert loaded.frame["order_id"].to_list() == ["o1"]
    report = loaded.report
    assert report.rows_rejected == 0 and report.after_as_of == 2
    assert (report.after_as_of_first, report.after_as_of_last) == (date(2031, 1, 1), date(2031, 2, 3))
    assert ("2 rows on or after the as-of date 2030-01-01 are not used (dated 2031-01-01 to "
            "2031-02-03: outside the window)") in report.notes()
    # With the horizon wanted (labels), the window ends at its end.
    labelled = load_transactions(path, as_of=date(2030, 1, 1), window_end=date(2031, 1, 15))
    assert labelled.frame["order_id"].to_list() == ["o1", "o2"] and labelled.report.after_as_of == 1


def test_all_problems_come_in_one_error_with_the_first_rows(tmp_path):
    bad = "".join(f"c{i},o{i},bad-date,5,p\n" for i in range(12)) + "c,o,2024-01-01,x,p\n"
    with pytest.raises(DataError) as err:
        load_transactions(write(tmp_path, HEADER + bad))
    message = str(err.value)
    assert "13 bad row(s)" in message
    assert "lines 2, 3, 4, 5, 6 and 7 more" in message and "column 'amount'" in message


def test_skip_writes_every_rejected_row_with_its_reason_and_keeps_the_rest(tmp_path):
    path = write(
        tmp_path,
        HEADER + "c1,o1,2024-01-01,5,p1\nc1,o2,nope,5,p1\nc2,o3,2024-01-02,abc,p2\nc3,o4,2024-01-03,1,p\n",
    )
    rejects = tmp_path / "out" / "rejected.csv"
    loaded = load_transactions(path, on_bad_rows="skip", rejects_path=rejects)
    assert loaded.frame["customer_id"].to_list() == ["c1", "c3"]
    assert loaded.report.rows_read == 4 and loaded.report.rows_kept == 2
    assert loaded.report.rejected == {"ts: unparseable date": 1, "amount: not a number": 1}
    side = pl.read_csv(rejects, infer_schema=False)
    assert side["line"].to_list() == ["3", "4"]
    assert side["reason"].to_list() == ["ts: unparseable date", "amount: not a number"]
    assert side["ts"].to_list() == ["nope", "2024-01-02"]


@pytest.mark.parametrize("text", ["", HEADER])
def test_empty_files_are_refused(tmp_path, text):
    with pytest.raises(DataError, match="tx.csv: (the file is empty|no rows)"):
        load_transactions(write(tmp_path, text))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nothing.csv: file not found"):
        load_transactions(tmp_path / "nothing.csv")


def test_excel_style_csv_semicolons_bom_decimal_commas_and_russian_dates(tmp_path):
    text = "\ufeffcustomer_id;ts;amount\nКлиент 1;05.02.2024;1 234,50\nc2;05.02.2024 14:30;10\n"
    frame = load_transactions(write(tmp_path, text, encoding="utf-8")).frame
    assert frame["customer_id"].to_list() == ["Клиент 1", "c2"]
    assert frame["amount"].to_list() == [1234.5, 10.0]
    assert frame["ts"].to_list() == [datetime(2024, 2, 5), datetime(2024, 2, 5, 14, 30)]


def test_aware_timestamps_become_utc_and_naive_ones_are_utc(tmp_path):
    text = HEADER + "c1,o1,2024-03-01T10:00:00+03:00,5,p\nc1,o2,2024-03-01T10:00:00,5,p\n"
    frame = load_transactions(write(tmp_path, text)).frame
    assert frame["ts"].to_list() == [datetime(2024, 3, 1, 7), datetime(2024, 3, 1, 10)]


def test_rows_after_as_of_are_allowed_up_to_allow_until(tmp_path):
    path = write(tmp_path, HEADER + "c1,o1,2024-01-01,5,p\nc1,o2,2024-02-15,5,p\n")
    loaded = load_transactions(path, as_of=date(2024, 2, 1), allow_until=date(2024, 5, 1))
    assert loaded.frame.height == 2


def test_parquet_with_typed_and_aware_columns(tmp_path):
    path = tmp_path / "tx.parquet"
    pl.DataFrame({
        "customer_id": [1, 2],
        "ts": [datetime(2024, 1, 1, 12), datetime(2024, 1, 2)],
        "amount": [5, 6],
    }).with_columns(pl.col("ts").dt.replace_time_zone("Asia/Tashkent")).write_parquet(path)
    frame = load_transactions(path).frame
    assert frame["customer_id"].to_list() == ["1", "2"]
    assert frame["ts"][0] == datetime(2024, 1, 1, 7)  # Tashkent is UTC+5


def test_parquet_bad_rows_are_reported_as_rows(tmp_path):
    path = tmp_path / "tx.parquet"
    pl.DataFrame({"customer_id": ["a", "b"], "ts": ["2024-01-01", "?"], "amount": [1.0, 2.0]}).write_parquet(path)
    with pytest.raises(DataError, match=r"(?s)tx.parquet: .* at rows 2"):
        load_transactions(path)


def test_parquet_quantities_integer_missing_read_as_one_and_a_float_nan_is_rejected(tmp_path):
    path = tmp_path / "tx.parquet"
    base = {"customer_id": ["a", "b"], "ts": [datetime(2024, 1, 1)] * 2, "amount": [1.0, 2.0]}
    pl.DataFrame({**base, "quantity": [3, None]}).write_parquet(path)
    loaded = load_transactions(path)
    assert loaded.frame["quantity"].to_list() == [3.0, 1.0] and not loaded.report.rejected
    pl.DataFrame({**base, "quantity": [3.0, float("nan")]}).write_parquet(path)
    with pytest.raises(DataError, match="column 'quantity': not a number at rows 2"):
        load_transactions(path)


def test_sql_query_against_a_sqlite_database(tmp_path):
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE sales (client TEXT, ts TEXT, amount REAL)")
        con.executemany("INSERT INTO sales VALUES (?, ?, ?)",
                        [("c1", "2024-01-01 10:00:00", 5.0), ("c2", "2024-01-02", 7.5)])
    frame = load_transactions(
        f"sqlite:///{db}", query="SELECT client, ts, amount FROM sales",
        column_map={"customer_id": "client"},
    ).frame
    assert frame.select("customer_id", "amount").rows() == [("c1", 5.0), ("c2", 7.5)]


def test_failing_query_is_reported_without_credentials():
    with pytest.raises(DataError) as err:
        load_transactions("sqlite:///:memory:", query="SELECT * FROM missing_table")
    assert "query failed" in str(err.value)


def test_customers_table_with_consents(tmp_path):
    text = ("customer_id,signup_ts,acquisition_channel,consent_email,consent_sms\n"
            "c1,2024-01-01,seo,true,0\nc2,,paid_search,да,\n")
    frame = load_customers(write(tmp_path, text, "customers.csv")).frame
    assert frame.select("customer_id", "consent_email", "consent_sms").rows() == [
        ("c1", True, False), ("c2", True, False)
    ]


def test_consents_as_russian_excel_and_1c_write_them(tmp_path):
    # Excel in a Russian locale saves TRUE/FALSE as ИСТИНА/ЛОЖЬ; such rows were rejected whole.
    text = ("customer_id;Consent_E-mail;consent_SMS;consent_Telegram\n"
            "c1;ИСТИНА;ДА ;1\nc2;ЛОЖЬ;Нет;\nc3; истина ;нет;0\n")
    loaded = load_customers(write(tmp_path, text, "customers.csv"))
    assert loaded.report.rows_rejected == 0
    assert loaded.frame.select("customer_id", "consent_email", "consent_sms",
                               "consent_telegram").rows() == [
        ("c1", True, True, True), ("c2", False, False, False), ("c3", True, False, False)]


def test_two_consent_columns_for_one_channel_are_one_error(tmp_path):
    text = "customer_id,consent_email,consent_e-mail\nc1,1,0\n"
    with pytest.raises(DataError, match=r"customers.csv: columns 'consent_email', "
                                        r"'consent_e-mail' are consents to the same channel"):
        load_customers(write(tmp_path, text, "customers.csv"))


def test_contacts_channels_are_one_name_however_the_crm_spells_them(tmp_path):
    # "E-mail" beside "email" was measured as a channel of its own, matching no consent_email.
    spellings = ["E-mail", "email", "Email ", "е-mail", "Эл. почта", "SMS", "СМС", "Whats App",
                 "Телеграм", "ВКонтакте", "Web-push", "Viber"]
    text = "customer_id,ts,channel\n" + "".join(f"c{i},2024-01-01,{c}\n"
                                                for i, c in enumerate(spellings))
    frame = load_contacts(write(tmp_path, text, "contacts.csv")).frame
    assert frame["channel"].to_list() == ["email"] * 5 + ["sms", "sms", "whatsapp", "telegram",
                                                         "vk", "push", "viber"]
    assert [channel_name(c) for c in spellings] == frame["channel"].to_list()


def test_one_map_names_the_columns_of_every_table(tmp_path):
    column_map = {"customer_id": "Код контрагента", "ts": "Дата",
                  "customers.customer_id": "Код клиента", "customers.consent_sms": "Согласие SMS",
                  "contacts.ts": "Дата отправки", "costs.spend": "Расход"}
    assert table_map(column_map) == {"customer_id": "Код контрагента", "ts": "Дата"}
    assert table_map(column_map, "customers") == {"customer_id": "Код клиента",
                                                  "consent_sms": "Согласие SMS"}
    assert table_map(column_map, "contacts") == {"ts": "Дата отправки"}
    tx = write(tmp_path, "Код контрагента;Дата;amount\n7.0;01.03.2024;1 200,50\n", "tx.csv")
    assert load_transactions(tx, column_map=column_map).frame["customer_id"].to_list() == ["7"]
    crm = write(tmp_path, "Код клиента;Согласие SMS\n7.0;ИСТИНА\n", "crm.csv")
    loaded = load_customers(crm, column_map=table_map(column_map, "customers"))
    assert loaded.frame.select("customer_id", "consent_sms").rows() == [("7", True)]
    with pytest.raises(DataError, match=r"map them: --map customers.customer_id=YOUR_COLUMN"):
        load_customers(crm)
    with pytest.raises(DataError, match=r"--map customer.customer_id=Код клиента: no table "
                                        r"'customer'; .* customers.<column>"):
        load_transactions(tx, column_map={**column_map, "customer.customer_id": "Код клиента"})


def test_a_customer_listed_twice_alike_is_said_and_twice_unlike_is_a_bad_row(tmp_path):
    text = ("customer_id;phone;consent_sms;consent_email\n"
            "931;+7 (912) 000-00-01;да;0\n931.0;8 912 000 00 01;Да;\nc2;;1;1\nc2;;0;1\n")
    path = tmp_path / "crm.csv"
    path.write_bytes(text.encode("cp1251"))
    with pytest.raises(DataError, match=r"customer_id': duplicated customer id with other "
                                        r"values at lines 5"):
        load_customers(path)
    loaded = load_customers(path, on_bad_rows="skip", rejects_path=tmp_path / "r.csv")
    assert loaded.frame.select("customer_id", "consent_sms").rows() == [("931", True),
                                                                       ("c2", True)]
    assert loaded.report.rows_rejected == 1
    assert loaded.report.notes() == [
        f"{path}: read as cp1251 (not UTF-8)",
        f"{path}: 1 customers listed again with the same values; the repeats are left out"]


def test_customers_table_rejects_unknown_consent_values(tmp_path):
    text = "customer_id,consent_email\nc1,maybe\n"
    with pytest.raises(DataError, match=r"(?s)customers.csv: .*column 'consent_email': not true/false at lines 2"):
        load_customers(write(tmp_path, text, "customers.csv"))


def test_contacts_log(tmp_path):
    text = "customer_id,ts,channel,campaign,cost,control\nc1,2024-01-01,Email,jan,0.1,false\nc2,2024-01-01,sms,jan,0,true\n"
    frame = load_contacts(write(tmp_path, text, "contacts.csv")).frame
    assert frame.select("channel", "cost", "control").rows() == [("email", 0.1, False), ("sms", 0.0, True)]
    assert "offer" not in frame.columns  # no offers in the log: none made up


def test_contacts_cost_that_is_not_a_number_is_one_error_naming_file_column_lines(tmp_path):
    lines = ["c1,2024-01-01,email,jan,0.5,false"] * 15 + ["c2,2024-01-01,sms,jan,abc,false"]
    text = "customer_id,ts,channel,campaign,cost,control\n" + "\n".join(lines) + "\n"
    with pytest.raises(DataError) as err:
        load_contacts(write(tmp_path, text, "contacts.csv"))
    message = str(err.value)
    assert "contacts.csv" in message and "cost" in message and "17" in message


def test_contacts_cost_reads_russian_numbers_and_says_blank_or_missing_costs(tmp_path):
    text = ("customer_id;ts;channel;campaign;cost;control\n"
            "c1;2024-01-01;email;jan;1 000,50;false\nc2;2024-01-01;sms;jan;;false\n")
    loaded = load_contacts(write(tmp_path, text, "contacts.csv"))
    assert loaded.frame["cost"].to_list() == [1000.5, 0.0]
    assert any("1 rows with a blank cost, read as 0" in note for note in loaded.report.notes())
    no_cost = "customer_id,ts,channel,control\nc1,2024-01-01,email,false\n"
    loaded = load_contacts(write(tmp_path, no_cost, "free.csv"))
    assert loaded.frame["cost"].to_list() == [0.0]
    assert any("no cost column" in note and "ROMI" in note for note in loaded.report.notes())


def test_contacts_log_offer_column_reads_blank_as_none(tmp_path):
    text = ("customer_id,ts,channel,control,offer\nc1,2024-01-01,email,false, Discount_10\n"
            "c2,2024-01-01,sms,false,\nc3,2024-01-01,push,true,none\n")
    frame = load_contacts(write(tmp_path, text, "contacts.csv")).frame
    assert frame["offer"].to_list() == ["discount_10", "none", "none"]


def test_sql_source_reads_the_same_on_sqlite_and_postgresql(store_db_url):
    """One code path for every database: a table written through SQLAlchemy, read back by query."""
    import sqlalchemy as sa

    engine = sa.create_engine(store_db_url)
    with engine.begin() as con:
        con.exec_driver_sql("CREATE TABLE sales (client TEXT, order_no TEXT, ts TIMESTAMP, amount FLOAT)")
        con.exec_driver_sql(
            "INSERT INTO sales VALUES ('c1', 'o1', '2024-01-01 10:00:00', 5.0), "
            "('c1', 'o1', '2024-01-01 10:00:00', -1.5), ('c2', 'o2', '2024-01-02 00:00:00', 7.5)"
        )
    engine.dispose()
    loaded = load_transactions(
        store_db_url, query="SELECT client, order_no, ts, amount FROM sales ORDER BY client, amount DESC",
        column_map={"customer_id": "client", "order_id": "order_no"}, as_of=date(2024, 2, 1),
    )
    assert loaded.frame.select("customer_id", "order_id", "ts", "amount").rows() == [
        ("c1", "o1", datetime(2024, 1, 1, 10), 5.0),
        ("c1", "o1", datetime(2024, 1, 1, 10), -1.5),
        ("c2", "o2", datetime(2024, 1, 2), 7.5),
    ]
    assert ":retain@" not in loaded.report.source  # the password never reaches a message


def test_a_header_repeated_as_a_data_line_is_skipped_and_reported(tmp_path):
    from retain.features.contract import load_transactions

    path = tmp_path / "concatenated.csv"
    path.write_text("customer_id,ts,amount\ncustomer_id,date--,dollar_value\n"
                    "c1,2024-01-05,10\nCustomer_ID,ts,amount\nc2,2024-01-06,5\n")
    loaded = load_transactions(path, as_of=date(2024, 2, 1))
    assert loaded.frame["customer_id"].to_list() == ["c1", "c2"]
    assert loaded.report.header_lines == 2 and not loaded.report.rejected
    assert any("repeated header" in note for note in loaded.report.notes())


def test_a_mapped_header_with_spaces_and_punctuation_repeated_as_a_line_is_skipped(tmp_path):
    path = tmp_path / "concatenated.csv"
    path.write_text("Customer ID (CRM),ts,amount\nc1,2024-01-05,10\n  customer id (crm) ,ts,amount\n"
                    "customer id,2024-01-06,5\n")
    loaded = load_transactions(path, as_of=date(2024, 2, 1),
                               column_map={"customer_id": "Customer ID (CRM)"})
    # Only the column's own name is a header; "customer id" alone is a (strange) customer.
    assert loaded.frame["customer_id"].to_list() == ["c1", "customer id"]
    assert loaded.report.header_lines == 1


ROWS = ("customer_id;order_id;ts;amount;quantity\n"
        " Клиент 1 ;o1;05.02.2024;1 234,50;2\n17850.0;o2;2024-02-06 14:30;10;\nc3;;2024-02-07;7.5;1\n"
        "c3;;2024-02-07;7.5;1\n")


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_utf8_file_reads_as_the_same_lines_in_cp1251_or_with_old_mac_line_ends(tmp_path, line_end):
    """A plain UTF-8 file is read straight from disk by polars; a cp1251 file or one whose
    lines end in a lone CR goes through decoding: both give the same frame and report."""
    utf8 = write(tmp_path, "\ufeff" + ROWS.replace("\n", line_end), "utf8.csv")
    cp1251 = write(tmp_path, ROWS.replace("\n", line_end), "cp1251.csv", encoding="cp1251")
    old_mac = write(tmp_path, ROWS.replace("\n", "\r"), "mac.csv")
    loaded = [load_transactions(p, as_of=date(2024, 3, 1)) for p in (utf8, cp1251, old_mac)]
    frames = [one.frame.drop("order_id") for one in loaded]  # missing ids: keys by row
    assert frames[0].equals(frames[1]) and frames[0].equals(frames[2])
    assert frames[0]["customer_id"].to_list() == ["Клиент 1", "17850", "c3", "c3"]
    assert frames[0]["amount"].to_list() == [1234.5, 10.0, 7.5, 7.5]
    assert frames[0]["quantity"].to_list() == [2.0, 1.0, 1.0, 1.0]
    reports = [one.report for one in loaded]
    assert [r.encoding for r in reports] == ["utf-8", "cp1251", "utf-8"]
    assert {r.separator for r in reports} == {";"}
    assert {(r.float_ids_rewritten, r.duplicates, tuple(r.duplicate_lines)) for r in reports} \
        == {(1, 1, (5,))}


def test_numbers_as_text_cast_directly_or_cleaned_give_the_same_values(tmp_path):
    plain = write(tmp_path, "customer_id,ts,amount\nc1,2024-01-05,1234.5\nc2,2024-01-05,-7\n",
                  "plain.csv")
    local = write(tmp_path, "customer_id;ts;amount\nc1;2024-01-05;1 234,50\nc2;2024-01-05;-7\n",
                  "local.csv")
    bad = write(tmp_path, "customer_id,ts,amount\nc1,2024-01-05,12x\nc2,2024-01-05,-7\n", "bad.csv")
    assert load_transactions(plain).frame["amount"].to_list() == [1234.5, -7.0]
    assert load_transactions(local).frame["amount"].to_list() == [1234.5, -7.0]
    with pytest.raises(DataError, match="column 'amount': not a number at lines 2"):
        load_transactions(bad)


@pytest.mark.parametrize("spaced", [None, " p7", "p7\u00a0", "\tweb"])
def test_ids_of_few_distinct_values_are_stripped_on_a_large_file(tmp_path, spaced):
    """Products and channels (few distinct values) are checked for spaces on their distinct
    values only, on large files: a spaced value is still stripped on every line."""
    from retain.features.contract import load_transactions

    n = 120_000
    frame = pl.DataFrame({
        "customer_id": [f"c{i % 5000}" for i in range(n)],
        "order_id": [f"o{i // 3}" for i in range(n)],
        "ts": [datetime(2026, 1, 1 + i % 28) for i in range(n)],
        "amount": [10.0] * n,
        "product_id": [f"p{i % 50}" for i in range(n)],
        "channel": ["web", "app", "store"] * (n // 3),
    })
    column = "channel" if spaced == "\tweb" else "product_id"
    if spaced is not None:
        frame = frame.with_columns(pl.when(pl.int_range(pl.len()) % 1000 == 7).then(pl.lit(spaced))
                                   .otherwise(pl.col(column)).alias(column))
    path = tmp_path / "lines.parquet"
    frame.write_parquet(path)
    loaded = load_transactions(path, as_of=date(2026, 7, 1)).frame
    expected = frame[column].str.strip_chars()
    assert loaded[column].to_list() == expected.to_list()
    assert loaded["customer_id"].to_list() == frame["customer_id"].to_list()


# -- order status ------------------------------------------------------------------------------

OZON_MAP = {"customer_id": "Покупатель", "order_id": "Номер заказа", "ts": "Дата",
            "amount": "Сумма", "quantity": "Количество", "product_id": "Артикул",
            "status": "Статус"}
OZON_HEADER = "Покупатель;Номер заказа;Дата;Сумма;Количество;Артикул;Статус\n"
OZON_SALES = [
    "A;1001;01.02.2026;1 200,50;1;SKU1;Доставлен",
    "A;1002;03.03.2026;800;2;SKU2;Доставлен",
    "B;1004;10.03.2026;300;1;SKU1;Доставлен",
    "B;1005;20.04.2026;450;1;SKU3;доставлен",
    "C;1007;02.05.2026;99;1;SKU2;Доставлен",
]
OZON_CANCELLED = [
    "A;1003;15.03.2026;5 000;1;SKU9;Отменён",
    "B;1006;25.04.2026;700;3;SKU1; ОТМЕНЕН ",  # case, spaces and е for ё do not matter
    "D;1008;05.05.2026;120;1;SKU2;Отменен",  # a customer who only cancelled
]


def test_cancelled_lines_of_an_ozon_export_are_as_if_never_in_the_file(tmp_path):
    full = write(tmp_path, OZON_HEADER + "\n".join(OZON_SALES[:2] + OZON_CANCELLED[:1]
                                                  + OZON_SALES[2:] + OZON_CANCELLED[1:]) + "\n")
    sales = write(tmp_path, OZON_HEADER + "\n".join(OZON_SALES) + "\n", name="sales.csv")
    with_cancelled = load_transactions(full, column_map=OZON_MAP)
    without = load_transactions(sales, column_map=OZON_MAP)
    as_of = date(2026, 6, 1)
    got = customer_features(with_cancelled.frame.drop("_row"), as_of)
    assert got.equals(customer_features(without.frame.drop("_row"), as_of))
    assert got["customer_id"].to_list() == ["A", "B", "C"]  # D only cancelled: no purchase
    assert got.filter(pl.col("customer_id") == "A")["revenue"].item() == 2000.5
    report = with_cancelled.report
    assert report.cancelled_lines == 3 and report.returned_lines == 0
    assert report.rows_read == 8 and report.rows_kept == 5 and report.rows_rejected == 0
    notes = [n for n in report.notes() if "cancelled" in n]
    assert notes == [("3 cancelled lines (status column) left out: a cancelled order is no "
                     "purchase and no revenue (--cancelled-status adds values)")]
    assert "SKU" not in notes[0] and "5 000" not in notes[0]  # counts only


def test_a_wildberries_return_with_a_positive_amount_is_a_refund_like_a_negative_line(tmp_path):
    header = "customer_id,order_id,ts,amount,quantity,status\n"
    sale = "W1,s1,2026-03-01,1000,2,Продажа\nW1,s2,2026-04-01,400,1,Продажа\n"
    # Wildberries writes the return of one of the two units as a positive line.
    wb = write(tmp_path, header + sale + "W1,s1,2026-03-05,500,1,Возврат\n", name="wb.csv")
    negative = write(tmp_path, header + sale + "W1,s1,2026-03-05,-500,-1,\n", name="neg.csv")
    as_of = date(2026, 6, 1)
    returned = load_transactions(wb)
    assert returned.frame["amount"].to_list() == [1000.0, 400.0, -500.0]
    assert returned.frame["quantity"].to_list() == [2.0, 1.0, -1.0]
    got = customer_features(returned.frame.drop("_row"), as_of)
    assert got.equals(customer_features(load_transactions(negative).frame.drop("_row"), as_of))
    assert got["revenue"].item() == 900.0 and got["orders"].item() == 2
    # A return written negative stays negative: the sign is the status's, not flipped twice.
    twice = write(tmp_path, header + sale + "W1,s1,2026-03-05,-500,-1,returned\n", name="t.csv")
    assert load_transactions(twice).frame["amount"].to_list() == [1000.0, 400.0, -500.0]
    assert returned.report.returned_lines == 1 and returned.report.cancelled_lines == 0
    assert any(n.startswith("1 returned lines (status column) read as refunds")
               for n in returned.report.notes())


def test_status_values_a_user_adds_extend_the_defaults(tmp_path):
    header = "customer_id,order_id,ts,amount,status\n"
    path = write(tmp_path, header + "A,1,2026-03-01,100,Выполнен\nA,2,2026-03-02,50,Не выкуплен\n"
                 "A,3,2026-03-03,70,Отменён\nA,4,2026-03-04,30,Возврат средств\n")
    plain = load_transactions(path)
    assert plain.frame["order_id"].to_list() == ["1", "2", "4"]  # unknown values: sales
    assert plain.frame["amount"].to_list() == [100.0, 50.0, 30.0]
    options = ReadOptions(cancelled_statuses=("НЕ ВЫКУПЛЕН",), returned_statuses=("возврат средств",))
    extended = load_transactions(path, options=options)
    assert extended.frame["order_id"].to_list() == ["1", "4"]  # the default Отменён still holds
    assert extended.frame["amount"].to_list() == [100.0, -30.0]
    assert (extended.report.cancelled_lines, extended.report.returned_lines) == (2, 1)


def test_the_status_rule_and_its_default_lists():
    for text in ("Отменён", "отменен", " Cancelled ", "CANCELED", "Аннулирован"):
        assert status_kind(text) == "cancelled", text
    for text in ("Возврат", "Возвращён", "returned", "Refunded", "return"):
        assert status_kind(text) == "returned", text
    for text in ("Доставлен", "Продажа", "completed", "", None, "Частичный возврат"):
        assert status_kind(text) == "sale", text
    # The lists are written as status_key writes them, so each of their values matches.
    assert all(status_key(v) == v for v in CANCELLED_STATUSES + RETURNED_STATUSES)
    assert not set(CANCELLED_STATUSES) & set(RETURNED_STATUSES)
    # A shop's own values come first: it may call a default spelling the other kind.
    assert status_kind("Возврат", ReadOptions(cancelled_statuses=("возврат",))) == "cancelled"


def test_a_file_whose_every_line_is_cancelled_is_one_error(tmp_path):
    path = write(tmp_path, "customer_id,ts,amount,status\nA,2026-03-01,10,Отменён\n")
    with pytest.raises(DataError, match="every line in the window is cancelled"):
        load_transactions(path)
