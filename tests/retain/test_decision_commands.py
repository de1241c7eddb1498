"""The marketer's loop through the CLI: score with consents, the matrix, exports, the rules."""

from __future__ import annotations

import io
from datetime import date

import openpyxl
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from retain.cli import app
from retain.serving.labels import segment_label

runner = CliRunner()
AS_OF = "2026-07-01"


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A shop trained with its contacts log and scored with consents (once per module)."""
    workdir = tmp_path_factory.mktemp("decisions-cli")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
        patch.setenv("COLUMNS", "200")
        invoke("simulate", "--customers", "3000", "--seed", "13", "--as-of", AS_OF, "--out", "shop")
        invoke("train", "--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
               "--contacts", "shop/contacts.parquet", "--n-origins", "2", "--n-estimators", "60",
               "--learning-rate", "0.15")
        result = invoke("score", "--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
                        "--customers", "shop/customers.parquet", "--contacts",
                        "shop/contacts.parquet", "--lang", "ru", "--out", "scores.parquet")
    return workdir, result.output


@pytest.fixture
def env(scored, monkeypatch):
    workdir, _ = scored
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "200")
    return workdir


def test_score_writes_one_decision_per_customer(env, scored):
    scores = pl.read_parquet(env / "scores.parquet")
    for column in ("lifecycle_stage", "value_tier", "behaviour_type", "segment", "goal",
                   "channel", "send_at", "offer", "reason", "control_group"):
        assert column in scores.columns
    assert scores["reason"].null_count() == 0
    assert scores["reason"].str.contains("дн\\.|группе|клиент").any()  # --lang ru
    assert "goals: " in scored[1]
    control = scores.filter("control_group")
    assert control.height > 0 and set(control["goal"]) == {"control"}
    assert control["channel"].null_count() == control.height


def test_score_long_after_the_logs_end_says_so(env):
    """Everyone scored as lapsed is what a mistyped --as-of gives: the run says why."""
    result = invoke("score", "--transactions", "shop/transactions.parquet", "--as-of",
                    "2030-01-01", "--store-url", "sqlite:///far.db", "--out", "far.parquet")
    flat = " ".join(result.output.split())
    assert "note: the last transaction is dated 2026-06-30, 1,281 days before the as-of date " \
           "2030-01-01" in flat
    near = invoke("score", "--transactions", "shop/transactions.parquet", "--as-of",
                  "2026-08-01", "--store-url", "sqlite:///far.db", "--out", "far.parquet")
    assert "last transaction is dated" not in near.output


def test_score_writes_the_order_history_last(env):
    scores = pl.read_parquet(env / "scores.parquet")
    # Added after the existing columns (model_version stays where it was).
    assert scores.columns[-4:] == ["model_version", "first_order_date", "last_order_date",
                                   "orders"]
    assert scores.select("first_order_date", "last_order_date", "orders").null_count().row(0) \
        == (0, 0, 0)
    assert (scores["first_order_date"] <= scores["last_order_date"]).all()
    assert (scores["last_order_date"] < date.fromisoformat(AS_OF)).all()
    assert scores["orders"].min() >= 1


def test_crm_tables_with_their_own_names_decide_as_the_contract_tables_do(env):
    """A CRM's customers table (cp1251, Russian headers, ИСТИНА/ЛОЖЬ as Excel writes them,
    Да/нет as 1C does) and a mailing log spelling E-mail and СМС, mapped with --map
    customers.<column>= and contacts.<column>=, give the decisions of the contract's tables."""
    customers = pl.read_parquet(env / "shop/customers.parquet")
    consents = [c for c in customers.columns if c.startswith("consent_")]
    yes_no = [("ИСТИНА", "ЛОЖЬ"), ("Да", "нет"), ("1", "")]
    crm = customers.with_row_index("i").select(
        pl.col("customer_id").alias("Код клиента"),
        pl.col("signup_ts").dt.strftime("%d.%m.%Y %H:%M:%S").alias("Дата регистрации"),
        pl.col("acquisition_channel").alias("Источник"),
        *[pl.when(pl.col(c)).then(pl.col("i").map_elements(
            lambda i: yes_no[i % 3][0], return_dtype=pl.String)).otherwise(
            pl.col("i").map_elements(lambda i: yes_no[i % 3][1], return_dtype=pl.String))
          .alias(f"Согласие {c.removeprefix('consent_')}") for c in consents])
    (env / "crm.csv").write_bytes(crm.write_csv(separator=";").encode("cp1251"))
    spelled = {"email": "E-mail", "sms": "СМС", "whatsapp": "Whats App"}
    contacts = pl.read_parquet(env / "shop/contacts.parquet").rename({"ts": "Дата"})
    contacts.with_columns(pl.col("channel").replace(spelled)).write_csv(env / "mailings.csv")
    maps = [arg for pair in (
        ["customers.customer_id=Код клиента", "customers.signup_ts=Дата регистрации",
         "customers.acquisition_channel=Источник", "contacts.ts=Дата"]
        + [f"customers.{c}=Согласие {c.removeprefix('consent_')}" for c in consents])
        for arg in ("--map", pair)]
    result = invoke("score", "--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
                    "--customers", "crm.csv", "--contacts", "mailings.csv", "--lang", "ru",
                    "--store-url", "sqlite:///crm.db", "--out", "crm-scores.parquet", *maps)
    assert "rejected" not in result.output
    expected = pl.read_parquet(env / "scores.parquet")
    got = pl.read_parquet(env / "crm-scores.parquet")
    assert got["channel"].drop_nulls().len() > 0
    # Decisions, ids and text exactly; figures to 1e-9 (the batch/API bound): polars' parallel
    # float sums may differ in the last bit between two runs (pola-rs/polars#25163).
    assert_frame_equal(got, expected, rel_tol=1e-9, abs_tol=1e-12)
    # Unmapped, the hint names the table's own prefix, not the transactions' --map.
    bare = runner.invoke(app, ["score", "--transactions", "shop/transactions.parquet", "--as-of",
                               AS_OF, "--customers", "crm.csv", "--store-url",
                               "sqlite:///crm.db", "--out", "crm-scores.parquet"])
    assert bare.exit_code == 1
    assert "--map customers.customer_id=YOUR_COLUMN" in " ".join(bare.output.split())


def test_a_customers_table_whose_ids_match_nobody_is_said(env):
    # Ids written another way in the CRM (here a prefix; in life +7 (912)... against 8912...)
    # left every customer without consent, and no channel, without a word.
    customers = pl.read_parquet(env / "shop/customers.parquet")
    customers.with_columns(("crm-" + pl.col("customer_id")).alias("customer_id")).write_csv(
        env / "other-ids.csv")
    half = customers.head(customers.height // 2)
    half.write_csv(env / "half.csv")
    common = ["score", "--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
              "--store-url", "sqlite:///ids.db", "--out", "ids.parquet"]
    nobody = " ".join(invoke(*common, "--customers", "other-ids.csv").output.split())
    scored = pl.read_parquet(env / "ids.parquet").height
    assert (f"note: {scored:,} of {scored:,} scored customers are not in other-ids.csv: no "
            "consent is known for them, so they get no channel; no id matches") in nobody
    some = " ".join(invoke(*common, "--customers", "half.csv").output.split())
    missing = pl.read_parquet(env / "ids.parquet").filter(
        ~pl.col("customer_id").is_in(half["customer_id"].implode())).height
    assert 0 < missing < scored
    assert f"note: {missing:,} of {scored:,} scored customers are not in half.csv" in some
    assert "no id matches" not in some
    assert "scored customers are not in" not in " ".join(invoke(
        *common, "--customers", "shop/customers.parquet").output.split())


def test_segments_prints_and_saves_the_matrix(env):
    result = invoke("segments", "--as-of", AS_OF)
    matrix = pl.read_csv(env / f"segments-{AS_OF}.csv")
    scores = pl.read_parquet(env / "scores.parquet")
    assert matrix["customers"].sum() == scores.height
    assert matrix.columns == ["segment", "goal", "channel", "customers", "predicted_revenue",
                              "expected_incremental_revenue", "contact_cost"]
    assert "customers in" in result.output and matrix["segment"][0] in result.output


def test_segments_for_a_date_without_a_run_says_what_to_do(env):
    result = runner.invoke(app, ["segments", "--as-of", "2020-01-01"])
    assert result.exit_code == 1 and "retain score --as-of 2020-01-01" in result.output


def test_reading_a_store_that_is_not_there_creates_none(tmp_path, monkeypatch):
    """A mistyped --store-url (or a command run in the wrong folder) says so, and leaves no
    empty retain.db behind for the next command to read as 'no run'."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RETAIN_STORE_URL", raising=False)
    typo = tmp_path / "retian.db"
    for args in (["segments", "--store-url", f"sqlite:///{typo}"],
                 ["export", "--goal", "replenish", "--out", "x.csv"], ["drift"]):
        result = runner.invoke(app, args)
        flat = " ".join(result.output.split())
        assert result.exit_code == 1 and "no score store at" in flat, (args, flat)
        assert "run `retain score ...` first" in flat
    assert not typo.exists() and not (tmp_path / "retain.db").exists()
    assert not (tmp_path / "x.csv").exists()


def test_export_filters_and_opens_in_excel(env):
    scores = pl.read_parquet(env / "scores.parquet")
    invoke("export", "--goal", "replenish", "--excel", "--out", "replenish.csv")
    raw = (env / "replenish.csv").read_bytes()
    assert raw.startswith("\ufeff".encode())
    exported = pl.read_csv(raw[3:], separator=";", infer_schema=False)
    expected = scores.filter(pl.col("goal") == "replenish").sort("customer_id")
    assert exported["customer_id"].to_list() == expected["customer_id"].to_list()
    assert exported["reason"].to_list() == expected["reason"].to_list()  # Cyrillic intact
    segment = scores["segment"][0]
    invoke("export", "--segment", segment, "--format", "parquet", "--out", "segment.parquet")
    assert pl.read_parquet(env / "segment.parquet").height == scores.filter(
        pl.col("segment") == segment).height
    invoke("export", "--channel", "none", "--out", "none.csv")
    assert pl.read_csv(env / "none.csv").height == scores["channel"].null_count()


@pytest.mark.parametrize(("args", "says"), [
    (["--segment", "nope"], "unknown segment"),
    (["--goal", "sell"], "unknown goal"),
    (["--format", "xls"], "--format"),
    (["--sep", "|"], "--sep"),
    (["--lang", "de"], "--lang"),
    (["--format", "xlsx", "--excel"], "--excel"),
])
def test_export_refuses_bad_flags_clearly(env, args, says):
    result = runner.invoke(app, ["export", "--out", "x.csv", *args])
    assert result.exit_code == 1 and says in result.output


def test_rules_are_shown_copied_and_checked(env):
    assert "control_group:" in invoke("rules").output
    invoke("rules", "--out", "rules.yaml")
    assert "lifecycle:" in (env / "rules.yaml").read_text()
    refused = runner.invoke(app, ["rules", "--out", "rules.yaml"])
    assert refused.exit_code == 1 and "exists" in refused.output
    (env / "bad.yaml").write_text("lifecycle:\n  sleeping_after_days: 400\n")
    bad = runner.invoke(app, ["rules", "--check", "bad.yaml"])
    assert bad.exit_code == 1 and "bad.yaml" in bad.output and "lifecycle" in bad.output
    (env / "mine.yaml").write_text("control_group:\n  share: 0.1\n")
    checked = invoke("rules", "--check", "mine.yaml").output
    # --check says what the file changes, as its help promises.
    assert "mine.yaml: valid; it changes 1 value(s)" in checked
    assert "control_group.share: 0.075 -> 0.1" in checked
    assert "changes nothing" in invoke("rules", "--check", "rules.yaml").output


def test_export_xlsx_in_russian_opens_as_a_typed_workbook(env):
    scores = pl.read_parquet(env / "scores.parquet")
    segment = scores["segment"].mode().sort()[0]
    result = invoke("export", "--segment", segment, "--format", "xlsx", "--lang", "ru",
                    "--out", "vip.xlsx")
    expected = scores.filter(pl.col("segment") == segment).sort("customer_id")
    assert f"{expected.height:,} customers" in result.output
    workbook = openpyxl.load_workbook(env / "vip.xlsx")
    sheet = workbook.active
    assert sheet.title == segment and sheet.freeze_panes == "A2"
    rows = list(sheet.iter_rows())
    headers = [c.value for c in rows[0]]
    assert headers[:3] == ["Клиент", "На дату", "Горизонт, дней"]
    column = {name: [row[headers.index(name)] for row in rows[1:]] for name in headers}
    assert [c.value for c in column["Клиент"]] == expected["customer_id"].to_list()
    assert {c.value for c in column["Сегмент"]} == {segment_label(segment, "ru")}
    churn = column["Вероятность ухода за горизонт"]
    assert all(c.data_type == "n" and c.number_format == "0.0%" for c in churn)
    assert [c.value for c in churn] == pytest.approx(expected["churn_probability"].to_list())
    assert all(c.is_date for c in column["На дату"])


def test_export_excel_csv_has_rounded_numbers_with_a_decimal_comma(env):
    scores = pl.read_parquet(env / "scores.parquet").sort("customer_id")
    invoke("export", "--excel", "--out", "people.csv")
    raw = (env / "people.csv").read_bytes()
    parsed = pl.read_csv(raw[3:], separator=";", decimal_comma=True, try_parse_dates=True,
                         infer_schema_length=None)
    assert parsed["churn_probability"].to_list() == pytest.approx(
        scores["churn_probability"].round(4).to_list(), abs=1e-12)
    assert parsed["predicted_revenue"].to_list() == pytest.approx(
        scores["predicted_revenue"].round(2).to_list(), abs=1e-9)
    assert parsed["as_of"].dtype == pl.Date
    # Plain CSV (for scripts) keeps full precision and the decimal point.
    invoke("export", "--out", "script.csv")
    plain = pl.read_csv(env / "script.csv", infer_schema_length=None)
    assert plain["predicted_revenue"].to_list() == pytest.approx(
        scores["predicted_revenue"].to_list(), rel=1e-15)


def test_the_matrix_never_cuts_a_number_at_80_columns():
    """An 80-column terminal folds a wide figure onto a second line instead of '1,788…'."""
    from rich.console import Console

    from retain.commands.decisions import matrix_table

    matrix = pl.DataFrame({"segment": ["sleeping-high-occasional"], "goal": ["reactivate"],
                           "channel": ["telegram"], "customers": [12345],
                           "predicted_revenue": [7454209.4],
                           "expected_incremental_revenue": [17774.0],
                           "contact_cost": [3900.0]})
    screen = Console(width=80, record=True, file=io.StringIO())
    screen.print(matrix_table(matrix, "Segments"))
    text = screen.export_text()
    assert "…" not in text
    body = text.split("┡", 1)[1].splitlines()[1:-1]  # the one row, folded or not
    cells = [line.split("│")[1:-1] for line in body]
    for column, figure in zip(range(3, 7), (12345, 7454209, 17774, 3900), strict=True):
        whole = "".join(cell[column].strip() for cell in cells).replace(",", "")
        assert whole == str(figure), (figure, text)
