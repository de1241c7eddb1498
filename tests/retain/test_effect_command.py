"""`retain effect` as a user runs it: a simulated shop's files, the table, the files written."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from retain.analytics.effect import EFFECT_COLUMNS, PERIOD_DATES, RAW_DIFFERENCE
from retain.cli import app
from retain.serving.effect_store import latest_effect
from retain.serving.store import ScoreStore
from retain.simulate import simulate_shop, write_shop

runner = CliRunner()
SPAN = ("--from", "2026-04-01", "--to", "2026-07-01")


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory):
    where = tmp_path_factory.mktemp("effect-cli")
    shop = simulate_shop(1500, seed=4, history_days=300, future_days=90, control_share=0.2)
    write_shop(shop, where / "shop")
    return where


@pytest.fixture
def env(shop_dir, monkeypatch):
    monkeypatch.chdir(shop_dir)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("RETAIN_STORE_URL", raising=False)
    return shop_dir


def effect(*args: str):
    return runner.invoke(app, ["effect", "--transactions", "shop/transactions.parquet",
                               "--contacts", "shop/contacts.parquet", *args])


def test_effect_by_channel_writes_one_row_per_period_channel_and_metric(env):
    result = effect(*SPAN, "--by", "quarter", "--split", "channel", "--out", "effect.csv")
    assert result.exit_code == 0, result.output
    rows = pl.read_csv(env / "effect.csv")
    assert rows.columns == [*EFFECT_COLUMNS, *PERIOD_DATES, RAW_DIFFERENCE]
    assert set(rows["period"]) == {"2026-Q2"}
    assert set(rows["period_start"]) == {"2026-04-01"} and set(rows["period_end"]) == {"2026-06-30"}
    assert set(rows["split"]) == {"email", "sms", "push", "whatsapp", "telegram"}
    assert rows.height == 5 * 3
    assert rows.select("period", "split", "metric").is_unique().all()
    assert (rows["ci_low"] <= rows["difference"]).all()
    assert (rows["difference"] <= rows["ci_high"]).all()
    assert "difference estimate [90% CI]" in result.output and "kept in sqlite:///retain.db" in result.output
    with ScoreStore("sqlite:///retain.db").open() as store:
        about, kept = latest_effect(store, "channel")
    assert about["by"] == "quarter" and about["date_from"] == date(2026, 4, 1)
    assert pl.DataFrame(kept).with_columns(pl.col(PERIOD_DATES).cast(pl.String)).equals(rows)


def test_effect_json_holds_the_api_answer_by_month(env):
    result = effect(*SPAN, "--out", "effect.json", "--confidence", "0.8")
    assert result.exit_code == 0, result.output
    body = json.loads((env / "effect.json").read_text())
    assert body["split_by"] == "none" and body["by"] == "month"
    assert [row["period"] for row in body["rows"]] == [
        p for p in ("2026-04", "2026-05", "2026-06") for _ in range(3)]
    assert {row["split"] for row in body["rows"]} == {"all"}
    assert "difference estimate [80% CI]" in result.output


def test_effect_by_segment_reads_the_score_stores_run(env):
    contacts = pl.read_parquet(env / "shop" / "contacts.parquet")
    ids = contacts["customer_id"].unique().sort()
    control = set(contacts.filter("control")["customer_id"])
    scores = pl.DataFrame({
        "customer_id": ids,
        "segment": ["active-mid-occasional" if i % 2 else "at_risk-low-hedonist"
                    for i in range(ids.len())],
        "goal": ["control" if c in control else "cross_sell" for c in ids],
        "lifecycle_stage": "active", "value_tier": "mid", "churn_probability": 0.5,
    })
    with ScoreStore("sqlite:///segments.db").open() as store:
        store.write_run(scores, model_version="1", as_of=date(2026, 3, 1))
    result = effect(*SPAN, "--by", "quarter", "--split", "goal",
                    "--store-url", "sqlite:///segments.db", "--out", "goal.csv")
    assert result.exit_code == 0, result.output
    rows = pl.read_csv(env / "goal.csv")
    # Control customers get the goal the rules would have given them: cross-sell here.
    assert set(rows["split"]) == {"cross_sell"} and (rows["control_customers"] > 0).all()
    result = effect(*SPAN, "--by", "quarter", "--split", "segment",
                    "--store-url", "sqlite:///segments.db", "--out", "segment.csv")
    assert result.exit_code == 0, result.output
    assert set(pl.read_csv(env / "segment.csv")["split"]) == {
        "active-mid-occasional", "at_risk-low-hedonist"}


@pytest.mark.parametrize(("args", "says"), [
    (("--to", "2026-07-01"), "--from and --to are required"),
    (("--from", "2026-07-01", "--to", "2026-04-01"), "must be after --from"),
    ((*SPAN, "--by", "week"), "--by: expected month or quarter"),
    ((*SPAN, "--split", "campaign"), "--split: expected goal, channel or segment"),
    ((*SPAN, "--out", "effect.xlsx"), "unknown output type"),
    ((*SPAN, "--split", "goal", "--store-url", "sqlite:///empty.db"), "run `retain score` first"),
    (("--from", "2026-08-01", "--to", "2026-09-01"), "no message sent between"),
])
def test_effect_refuses_what_it_cannot_answer_in_one_line(env, args, says):
    result = effect(*args)
    assert result.exit_code == 1, result.output
    assert says in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_a_log_without_control_rows_is_refused_with_the_reason(env):
    contacts = pl.read_parquet(env / "shop" / "contacts.parquet")
    contacts.filter(~pl.col("control")).drop("control").write_csv(env / "sent_only.csv")
    result = runner.invoke(app, ["effect", "--transactions", "shop/transactions.parquet",
                                 "--contacts", "sent_only.csv", *SPAN])
    assert result.exit_code == 1
    assert "no control customer" in " ".join(result.output.split())


def test_a_no_store_trial_is_not_served(env):
    assert effect(*SPAN, "--split", "channel").exit_code == 0
    with ScoreStore("sqlite:///retain.db").open() as store:
        before, _ = latest_effect(store)
    result = effect(*SPAN, "--no-cuped", "--no-store")
    assert result.exit_code == 0, result.output
    assert "not kept for GET /v1/effect (--no-store)" in " ".join(result.output.split())
    with ScoreStore("sqlite:///retain.db").open() as store:
        after, _ = latest_effect(store)
    assert after["effect_id"] == before["effect_id"]


def test_effect_says_how_many_log_customers_have_no_transaction(env):
    contacts = pl.read_parquet(env / "shop" / "contacts.parquet")
    # 4 ids in 5 renamed: customers the transactions do not know.
    strangers = contacts.with_columns(
        pl.when(pl.col("customer_id").cast(pl.String).hash() % 5 != 0)
        .then("X" + pl.col("customer_id").cast(pl.String))
        .otherwise(pl.col("customer_id").cast(pl.String)).alias("customer_id"))
    strangers.write_parquet(env / "strangers.parquet")
    result = runner.invoke(app, ["effect", "--transactions", "shop/transactions.parquet",
                                 "--contacts", "strangers.parquet", *SPAN, "--no-store"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "control customers have no transaction before 2026-07-01" in said
    assert "counted with zero revenue" in said


def test_channels_with_ids_matching_no_customer_says_ids(env):
    contacts = pl.read_parquet(env / "shop" / "contacts.parquet")
    contacts.with_columns(("X" + pl.col("customer_id").cast(pl.String)).alias("customer_id")) \
        .write_parquet(env / "all_strangers.parquet")
    result = runner.invoke(app, ["channels", "--transactions", "shop/transactions.parquet",
                                 "--contacts", "all_strangers.parquet", *SPAN])
    assert result.exit_code == 1, result.output
    assert "same ids" in " ".join(result.output.split())


def test_a_span_before_every_transaction_names_from_and_to_not_as_of(env):
    result = effect("--from", "2020-01-01", "--to", "2020-07-01")
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "--as-of" not in said
    assert "choose --from and --to within the transactions' dates" in said


def test_effect_contacts_help_does_not_speak_of_the_frequency_cap():
    said = " ".join(runner.invoke(app, ["effect", "--help"]).output.split())
    assert "frequency cap" not in said


def test_channels_without_control_rows_is_refused_like_effect(env):
    contacts = pl.read_parquet(env / "shop" / "contacts.parquet")
    contacts.filter(~pl.col("control")).write_csv(env / "sent_only_channels.csv")
    result = runner.invoke(app, ["channels", "--transactions", "shop/transactions.parquet",
                                 "--contacts", "sent_only_channels.csv", *SPAN])
    assert result.exit_code == 1, result.output
    assert "no control customer" in " ".join(result.output.split())
    assert "internal error" not in result.output and "Traceback" not in result.output


def test_the_channels_table_shows_nulls_as_dashes():
    from retain.analytics.channels_over_time import OVER_TIME_COLUMNS
    from retain.commands.effect import channels_table

    row = dict.fromkeys(OVER_TIME_COLUMNS)
    row.update(period="2026-Q1", channel="email", status="active")
    table = channels_table(pl.DataFrame([row]), "t")
    assert table.row_count == 1


def test_figures_are_never_cut_in_an_80_column_terminal():
    # Cut to fit, "-3,861.62 [...]" showed as "-3,8…" and a cost of 1,884 as "1,8…".
    from rich.console import Console

    from retain.analytics.channels_over_time import OVER_TIME_COLUMNS
    from retain.commands.effect import channels_table, effect_table

    effect_row = dict.fromkeys(EFFECT_COLUMNS) | {
        "period": "2026-Q1", "split": "whatsapp", "metric": "revenue",
        "treated_customers": 24_117, "control_customers": 1_916, "difference": -3_861.62,
        "ci_low": -12_345.0, "ci_high": 4_567.0, "relative_lift": -0.39,
        "incremental_revenue": -930_651.0, "cost": 1_884_512.0, "romi": -309.5,
        "raw_difference": -4_100.37}
    channel_row = dict.fromkeys(OVER_TIME_COLUMNS) | {
        "period": "2026-Q1", "channel": "whatsapp", "reach": 12_345, "response_rate": 0.2081,
        "control_rate": 0.1911, "uplift": 0.0213, "incremental_revenue_per_contact": 1_234.5,
        "cost": 1_884_512.0, "return_per_cost": 4.4, "status": "active",
        "raw_uplift": -0.0041}
    for table, figures in (
            (effect_table(pl.DataFrame([effect_row]), "t", 0.9),
             ["24,117/1,916", "-4,100", "-3,862 [-12,345, 4,567]", "-930,651", "1,884,512",
              "-309.5"]),
            (channels_table(pl.DataFrame([channel_row]), "t"),
             ["12,345", "20.8%", "-0.4%", "2.1%", "1,234.5", "1,884,512", "4.4"])):
        console = Console(width=80, record=True)
        console.print(table)
        text = console.export_text()
        assert "…" not in text.split("┡", 1)[1]
        # Each column's lines joined (a folded figure continues on the next line).
        cells = ["".join(parts) for parts in zip(*[
            [cell.replace(" ", "") for cell in line.split("│")[1:-1]]
            for line in text.split("┡", 1)[1].splitlines()[1:]
            if line.startswith("│")], strict=True)]
        for figure in figures:
            assert figure.replace(" ", "") in cells, (figure, cells)


def test_channels_prints_each_channel_per_period_and_the_next_split(env):
    result = runner.invoke(app, ["channels", "--transactions", "shop/transactions.parquet",
                                 "--contacts", "shop/contacts.parquet", "--from", "2025-10-01",
                                 "--to", "2026-07-01", "--by", "quarter", "--out",
                                 "channels.json"])
    assert result.exit_code == 0, result.output
    body = json.loads((env / "channels.json").read_text())
    assert {row["period"] for row in body["rows"]} == {"2025-Q4", "2026-Q1", "2026-Q2"}
    assert {row["period_start"] for row in body["rows"]} == {"2025-10-01", "2026-01-01",
                                                             "2026-04-01"}
    shares = [row["recommended_share"] for row in body["split"]]
    assert sum(shares) == pytest.approx(1.0) and min(shares) > 0
    assert "Split of the messages after 2026-Q2" in result.output
    assert body["default_uplift"] == 0.02 and body["prior_messages"] == 2000
    for row in body["rows"]:
        assert row["raw_uplift"] == pytest.approx(row["response_rate"] - row["control_rate"])
    refused = runner.invoke(app, ["channels", "--transactions", "shop/transactions.parquet",
                                  "--contacts", "shop/contacts.parquet", "--from", "2026-08-01",
                                  "--to", "2026-09-01"])
    assert refused.exit_code == 1 and "could be judged" in refused.output


def test_a_real_log_with_a_placebo_control_group_shows_no_effect(tmp_path, monkeypatch):
    """CDNOW as published (`--map`), with a contacts log that wrote to everyone but a random
    10% and changed nothing: every interval holds zero."""
    from datetime import datetime

    from retain.decisions.control import control_group
    from retain.features.contract import load_transactions
    from retain.features.samples import lifetimes_dataset_path

    monkeypatch.chdir(tmp_path)
    cdnow = str(lifetimes_dataset_path("CDNOW_master.txt"))
    mapping = {"ts": "date", "amount": "dollar_value", "quantity": "number_of_cds"}
    first = (load_transactions(cdnow, column_map=mapping).frame
             .group_by("customer_id").agg(pl.col("ts").min().alias("first")).sort("customer_id"))
    first = first.with_columns(control_group(first["customer_id"], share=0.1, salt="placebo"))
    campaigns = pl.DataFrame({"ts": [datetime(1997, month, 5, 10) for month in range(4, 10)]})
    (first.join(campaigns, how="cross").filter(pl.col("first") < pl.col("ts"))
     .select("customer_id", "ts", pl.lit("email").alias("channel"),
             pl.when("control_group").then(0.0).otherwise(0.1).alias("cost"),
             pl.col("control_group").alias("control"))
     .write_csv("contacts.csv"))
    result = runner.invoke(app, [
        "effect", "--transactions", cdnow, *(f"--map={k}={v}" for k, v in mapping.items()),
        "--contacts", "contacts.csv", "--from", "1997-04-01", "--to", "1997-10-01",
        "--by", "quarter", "--out", "effect.csv"])
    assert result.exit_code == 0, result.output
    rows = pl.read_csv("effect.csv")
    assert rows.height == 2 * 3
    assert (rows["treated_customers"] > 20_000).all() and (rows["control_customers"] > 2_000).all()
    assert ((rows["ci_low"] <= 0) & (rows["ci_high"] >= 0)).all()


def write_placebo_log(where) -> None:
    """``placebo.csv``: a log that wrote to every customer of the shop each month, 2025-10 to
    2026-06, but a random 10% (the shop's orders are blind to it: messages that change
    nothing)."""
    from datetime import datetime

    from retain.decisions.control import control_group

    tx = pl.read_parquet(where / "shop" / "transactions.parquet")
    first = (tx.group_by("customer_id").agg(pl.col("ts").min().alias("first"))
             .sort("customer_id"))
    first = first.with_columns(control_group(first["customer_id"], share=0.1, salt="placebo"))
    campaigns = pl.DataFrame({"ts": [datetime(2025 + (m > 12), (m - 1) % 12 + 1, 5, 10)
                                     for m in range(10, 19)]})
    (first.join(campaigns, how="cross").filter(pl.col("first") < pl.col("ts"))
     .select("customer_id", "ts", pl.lit("email").alias("channel"),
             pl.when("control_group").then(0.0).otherwise(0.1).alias("cost"),
             pl.col("control_group").alias("control"))
     .write_csv(where / "placebo.csv"))


def test_a_placebo_log_shows_the_measured_uplift_below_zero_beside_the_shrunk_estimate(env):
    """Messages that change nothing: a log that wrote to every customer each month but a
    random 10% (the simulated shop's orders, blind to this log). The estimate the decisions
    use is shrunk toward the default 2% and stays positive; the measured column beside it
    shows the quarters where the messaged customers ordered less than the control group."""
    write_placebo_log(env)
    result = runner.invoke(app, ["channels", "--transactions", "shop/transactions.parquet",
                                 "--contacts", "placebo.csv", "--from", "2025-10-01",
                                 "--to", "2026-07-01", "--by", "quarter",
                                 "--out", "placebo_channels.csv"])
    assert result.exit_code == 0, result.output
    rows = pl.read_csv(env / "placebo_channels.csv")
    assert rows.height == 3 and (rows["uplift"] > 0).all()
    assert ((rows["raw_uplift"] - (rows["response_rate"] - rows["control_rate"])).abs()
            < 1e-12).all()
    below = rows.filter((pl.col("raw_uplift") < 0) & (pl.col("uplift") > 0))
    assert below.height >= 1, rows
    said = " ".join(result.output.split())
    assert "uplift measured" in said and "uplift estimate" in said
    assert "shrunk toward the default 2.0% as if 2,000 more messages had shown it" in said
    # The measured figure as printed: a negative percentage in the quarter it fell below.
    assert f"{below['raw_uplift'][0]:.1%}" in said


def test_a_placebo_logs_effect_shows_the_measured_difference_beside_cupeds_estimate(env):
    """The same placebo log by month: where CUPED's estimate is above zero and the contacted
    customers spent less than the control group, the measured difference says so; and the
    ROMI's margin is said to be the built-in rules' assumption."""
    write_placebo_log(env)
    placebo = ["effect", "--transactions", "shop/transactions.parquet", "--contacts",
               "placebo.csv", "--from", "2025-10-01", "--to", "2026-07-01", "--no-store",
               "--resamples", "200"]
    result = runner.invoke(app, [*placebo, "--out", "placebo_effect.csv"])
    assert result.exit_code == 0, result.output
    rows = pl.read_csv(env / "placebo_effect.csv")
    assert ((rows[RAW_DIFFERENCE] - (rows["treated_mean"] - rows["control_mean"])).abs()
            < 1e-9).all()
    flipped = rows.filter((pl.col("metric") == "revenue") & (pl.col(RAW_DIFFERENCE) < 0)
                          & (pl.col("difference") > 0))
    assert flipped.height >= 1, rows
    said = " ".join(result.output.split())
    assert "difference measured" in said and "adjusted by CUPED" in said
    assert "margin 0.3 for ROMI: the built-in rules' assumption, not measured" in said
    plain = runner.invoke(app, [*placebo, "--no-cuped", "--out", "plain.csv"])
    assert plain.exit_code == 0, plain.output
    unadjusted = pl.read_csv(env / "plain.csv")
    assert ((unadjusted[RAW_DIFFERENCE] - unadjusted["difference"]).abs() < 1e-9).all()


def test_a_row_below_min_group_says_too_few_beside_its_estimate():
    # rich read a bare "[too few]" as a style tag: the estimate showed alone, no reason.
    from rich.console import Console

    from retain.commands.effect import effect_table

    row = dict.fromkeys(EFFECT_COLUMNS) | {
        "period": "2026-Q2", "split": "push", "metric": "revenue", "treated_customers": 342,
        "control_customers": 28, "difference": 39.77, "relative_lift": 0.02, "cost": 25.0,
        "raw_difference": 957.89}
    console = Console(width=200, record=True)
    console.print(effect_table(pl.DataFrame([row]), "t", 0.9))
    assert "39.77 [too few]" in console.export_text()


def _header_cells(output: str) -> list[str]:
    """The tables' header cells as printed (the lines between ┏ and ┡)."""
    return [cell.strip() for line in output.splitlines() if line.startswith("┃")
            for cell in line.strip("┃").split("┃") if cell.strip()]


def _body_cells(output: str) -> list[str]:
    return [cell.strip() for line in output.splitlines() if line.startswith("│")
            for cell in line.strip("│").split("│") if cell.strip()]


def test_channels_in_russian_prints_russian_words_and_writes_the_same_file(env):
    def channels(*args: str):
        return runner.invoke(app, ["channels", "--transactions", "shop/transactions.parquet",
                                   "--contacts", "shop/contacts.parquet", "--from", "2025-10-01",
                                   "--to", "2026-07-01", "--by", "quarter", *args])

    english = channels("--out", "channels_en.csv")
    russian = channels("--lang", "ru", "--out", "channels_ru.csv")
    assert english.exit_code == 0 and russian.exit_code == 0, russian.output
    headers = _header_cells(russian.output)
    for word in ("Период", "Канал", "Охват", "Отклик", "Аплифт: измерено", "Аплифт: оценка",
                 "Затраты", "Отдача / затраты", "Статус", "Прошлый период", "Следующий период"):
        assert word in headers, (word, headers)
    # Not one English word in a header, nor a status or channel code in a cell.
    assert not [h for h in headers if any("a" <= c.lower() <= "z" for c in h)], headers
    cells = _body_cells(russian.output)
    assert "активен" in cells and "Push-уведомление" in cells
    assert not {"active", "maintenance", "unmeasured", "push"} & set(cells)
    assert "Каналы по кварталам" in russian.output
    assert "Распределение сообщений после 2026-Q2" in russian.output
    assert "uplift measured" not in russian.output and "Channels by" not in russian.output
    # CRM scripts read the file: the same columns and codes in both languages.
    assert (env / "channels_ru.csv").read_bytes() == (env / "channels_en.csv").read_bytes()
    assert "reach" in _header_cells(english.output)


def test_effect_in_russian_prints_russian_words_and_writes_the_same_file(env):
    english = effect(*SPAN, "--by", "quarter", "--split", "channel", "--no-store",
                     "--min-group", "200", "--out", "effect_en.csv")
    russian = effect(*SPAN, "--by", "quarter", "--split", "channel", "--no-store",
                     "--min-group", "200", "--lang", "ru", "--out", "effect_ru.csv")
    assert english.exit_code == 0 and russian.exit_code == 0, russian.output
    headers = _header_cells(russian.output)
    for word in ("Период", "Разрез", "Показатель", "Контакт/контроль", "Разница: измерено",
                 "Разница: оценка [90% интервал]", "Прирост", "Доп. выручка", "Затраты"):
        assert word in headers, (word, headers)
    # ROMI is the report's Russian word too.
    assert not [h for h in headers if h != "ROMI" and any("a" <= c.lower() <= "z" for c in h)]
    cells = _body_cells(russian.output)
    assert "выручка на клиента" in cells and "Push-уведомление" in cells
    assert any(cell.endswith("[мало клиентов]") for cell in cells), cells
    assert "too few" not in russian.output and "[too few]" in english.output
    assert "Эффект против глобальной контрольной группы" in russian.output
    assert "difference measured" not in russian.output
    # The same columns, codes and figures in both languages. Figures to 1e-9 only: a float sum
    # of the costs can differ in its last bits between two runs in one process, --lang or not.
    written = [pl.read_csv(env / name) for name in ("effect_en.csv", "effect_ru.csv")]
    assert written[0].columns == written[1].columns
    assert_frame_equal(written[0], written[1], check_exact=False, rtol=1e-9)


def test_lang_other_than_en_or_ru_is_refused_in_one_line(env):
    result = effect(*SPAN, "--lang", "de")
    assert result.exit_code == 1 and "--lang: expected en or ru, got 'de'" in result.output
