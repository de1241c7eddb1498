"""`--engine spark` gives what the local engine gives: the same features, scores and decisions
(sorted by customer_id, to 1e-9), the same notes and the same one-line errors, on the simulated
shop and on real-export shapes (tests/fixtures.py). Spark runs in local[2]; Java comes from
RETAIN_TEST_JAVA or JAVA_HOME (scripts/java.sh), else the module is skipped (failed under CI)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from retain.cli import app
from tests.conftest import _ci
from tests.fixtures import CP1251_MAP, write_cp1251, write_online_retail

runner = CliRunner()
AS_OF = "2026-07-01"
SPARK = ["--engine", "spark", "--spark-master", "local[2]", "--partitions", "3"]
RETAIL_MAP = ["--map", "customer_id=CustomerID", "--map", "order_id=InvoiceNo",
              "--map", "ts=InvoiceDate", "--map", "price=UnitPrice", "--map", "quantity=Quantity",
              "--map", "product_id=StockCode"]


def _java_home() -> str | None:
    given = os.environ.get("RETAIN_TEST_JAVA", "").strip() or os.environ.get("JAVA_HOME", "")
    if given and os.access(Path(given) / "bin" / "java", os.X_OK):
        return given
    found = shutil.which("java")
    return str(Path(os.path.realpath(found)).parent.parent) if found else None


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark", reason="PySpark is not installed (the dev extra has it)")
    home = _java_home()
    if home is None:
        reason = ("no Java found: run `export RETAIN_TEST_JAVA=$(scripts/java.sh)` (or `make "
                  "test`) to run the Spark tests")
        if _ci():
            pytest.fail(reason + "; CI must run the Spark tests")
        pytest.skip(reason)
    os.environ["JAVA_HOME"] = home
    from retain.spark import session

    spark = session("local[2]", 3)
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, spark):
    path = tmp_path_factory.mktemp("spark")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path / 'mlflow.db'}")
        patch.setenv("COLUMNS", "200")
        invoke("simulate", "--customers", "400", "--seed", "21", "--as-of", AS_OF, "--out", "shop")
    return path


@pytest.fixture
def env(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    return workdir


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def parts(path: Path) -> pl.DataFrame:
    """A Parquet directory written by Spark, in the local engine's order."""
    frame = pl.read_parquet(path / "*.parquet")
    keys = [c for c in ("customer_id", "product_id") if c in frame.columns]
    return frame.sort(keys)


def assert_same(local: pl.DataFrame, spark: pl.DataFrame) -> None:
    assert spark.height == local.height > 0
    assert_frame_equal(local, spark.select(local.columns), check_dtypes=True, rtol=0, atol=1e-9)


def notes(output: str) -> list[str]:
    return sorted(line for line in output.splitlines() if line.startswith("note:"))


def test_features_on_spark_equal_the_local_engine_on_the_simulated_shop(env):
    invoke("features", "--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
           "--out", "local_plain.parquet")
    result = invoke("features", "--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
                    "--out", "spark.parquet", *SPARK)
    assert_same(pl.read_parquet("local_plain.parquet"), parts(env / "spark.parquet"))
    assert_same(pl.read_parquet("local_plain.products.parquet"),
                parts(env / "spark.products.parquet"))
    assert "customers," in result.output and "Traceback" not in result.output


def test_labels_past_the_logs_end_are_refused_on_spark_as_locally(env):
    """The shop's log ends the day before AS_OF: no horizon after it has an outcome."""
    args = ["features", "--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
            "--labels", "--products-out", "none"]
    local = runner.invoke(app, [*args, "--out", "no_labels.parquet"])
    spark = runner.invoke(app, [*args, "--out", "no_labels_spark.parquet", *SPARK])
    for result in (local, spark):
        flat = " ".join(result.output.split())
        assert result.exit_code == 1 and "no transactions in the 90-day horizon" in flat, flat
        assert "Traceback" not in flat
    assert not (env / "no_labels_spark.parquet").exists()


def test_labels_on_spark_equal_the_local_engine(env):
    # The shop's future too, so that the labels' horizon has lines in it and after it.
    pl.concat([pl.read_parquet("shop/transactions.parquet"),
               pl.read_parquet("shop/future_transactions.parquet")]).write_parquet("all.parquet")
    local = invoke("features", "--transactions", "all.parquet", "--as-of", AS_OF, "--labels",
                   "--horizon-days", "60", "--products-out", "none", "--out", "labels.parquet")
    spark = invoke("features", "--transactions", "all.parquet", "--as-of", AS_OF, "--labels",
                   "--horizon-days", "60", "--products-out", "none", "--out",
                   "labels_spark.parquet", *SPARK)
    assert_same(pl.read_parquet("labels.parquet"), parts(env / "labels_spark.parquet"))
    assert not (env / "labels_spark.products.parquet").exists()
    assert notes(spark.output) == notes(local.output) and notes(local.output)  # after the horizon


def test_online_retail_export_on_spark_equals_the_local_engine(env):
    """Text columns as the CSV holds them (float ids, C-invoices, month-first slash dates,
    guest lines, duplicates), written to Parquet as they are."""
    retail = write_online_retail(env / "retail.csv", customers=80, seed=3, vouchers=5)
    pl.read_csv(retail.path, infer_schema=False).write_parquet("retail.parquet")
    args = ["--transactions", "retail.parquet", "--as-of", "2011-12-01", "--on-bad-rows", "skip",
            *RETAIL_MAP]
    local = invoke("features", *args, "--out", "retail_local.parquet")
    spark = invoke("features", *args, "--out", "retail_spark.parquet", *SPARK)
    assert_same(pl.read_parquet("retail_local.parquet"), parts(env / "retail_spark.parquet"))
    assert_same(pl.read_parquet("retail_local.products.parquet"),
                parts(env / "retail_spark.products.parquet"))
    # The same notes (float ids, duplicates with their rows, lines after the as-of date) and
    # the same rejected rows, with their rows and reasons.
    assert notes(spark.output) == notes(local.output)
    assert any("written as floats" in n for n in notes(local.output))
    rejected_local = pl.read_csv("retail_local.rejected.csv", infer_schema=False)
    rejected_spark = pl.read_csv("retail_spark.rejected.csv", infer_schema=False)
    assert rejected_spark.height == rejected_local.height > 0
    assert rejected_spark["row"].to_list() == rejected_local["row"].to_list()


def test_a_cp1251_export_converted_to_parquet_gives_the_same_features(env):
    from retain.features.contract import decode_text

    text, _ = decode_text(write_cp1251(env / "1c.csv").read_bytes(), "1c.csv", "cp1251")
    pl.read_csv(text.encode(), separator=";", infer_schema=False).write_parquet("1c.parquet")
    local = invoke("features", "--transactions", "1c.parquet", *CP1251_MAP,
                   "--products-out", "none", "--out", "1c_local.parquet")
    invoke("features", "--transactions", "1c.parquet", *CP1251_MAP, "--products-out", "none",
           "--out", "1c_spark.parquet", *SPARK)
    spark = parts(env / "1c_spark.parquet")
    assert_same(pl.read_parquet("1c_local.parquet"), spark)
    assert set(spark["customer_id"]) == {"Иван", "Петр"} and "error" not in local.output


def test_bad_rows_give_the_local_engines_one_error(env):
    bad = pl.DataFrame({"customer_id": ["a", "b", "c", "d"],
                        "ts": ["2024-01-02", "yesterday", "2024-01-03", "2024-01-04"],
                        "amount": ["10", "5", "abc", "7"]})
    bad.write_parquet("bad.parquet")
    local = runner.invoke(app, ["features", "--transactions", "bad.parquet", "--out", "b.parquet"])
    spark = runner.invoke(app, ["features", "--transactions", "bad.parquet", "--out",
                                "bs.parquet", *SPARK])
    assert local.exit_code == spark.exit_code == 1
    error = local.output[local.output.index("error:"):]
    assert spark.output[spark.output.index("error:"):] == error
    assert "rows 2" in error and "'yesterday'" in error


def test_a_damaged_parquet_file_is_one_error_without_a_java_stack_trace(env, capfd):
    Path("broken.parquet").write_bytes(b"PAR1" + b"\x00" * 40)
    result = runner.invoke(app, ["features", "--transactions", "broken.parquet", "--out",
                                 "x.parquet", *SPARK])
    assert result.exit_code == 1
    assert "error: broken.parquet" in " ".join(result.output.split())
    printed = result.output + "".join(capfd.readouterr())  # the JVM writes to the real stderr
    for leak in ("Traceback", "at org.apache", "Py4J", "JVM", "Exception"):
        assert leak not in printed
    Path("tx.csv").write_text("customer_id,ts,amount\na,2024-01-02,5\n")
    csv = runner.invoke(app, ["features", "--transactions", "tx.csv", "--out", "x.parquet",
                              *SPARK])
    assert csv.exit_code == 1 and "Parquet" in csv.output


def test_score_on_spark_equals_the_local_engine(env):
    invoke("train", "--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
           "--contacts", "shop/contacts.parquet", "--n-origins", "2", "--n-estimators", "40", "--learning-rate", "0.2")
    common = ["--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
              "--customers", "shop/customers.parquet", "--contacts", "shop/contacts.parquet"]
    invoke("score", *common, "--out", "scores_local.parquet", "--store-url",
           f"sqlite:///{env / 'local.db'}")
    result = invoke("score", *common, "--out", "scores_spark.parquet", "--store-url",
                    f"sqlite:///{env / 'spark.db'}", *SPARK)
    local = pl.read_parquet("scores_local.parquet").sort("customer_id")
    spark = parts(env / "scores_spark.parquet")
    assert_same(local, spark)
    assert local["channel"].drop_nulls().len() > 0  # consents reached the decisions
    assert local["send_at"].drop_nulls().len() > 0  # and the contacts' frequency cap
    assert "customers scored; store run" in result.output
    from retain.serving.store import ScoreStore

    with ScoreStore(f"sqlite:///{env / 'spark.db'}") as store:
        stored = store.scores().sort("customer_id")
    assert stored.height == local.height
    assert stored["goal"].to_list() == local["goal"].to_list()


def test_crm_named_side_tables_on_spark_decide_as_the_contract_tables_do(env):
    # After test_score_on_spark_equals_the_local_engine (the model and its local scores).
    customers = pl.read_parquet("shop/customers.parquet")
    renamed = {"customer_id": "Код клиента"} | {
        c: "Consent_" + {"email": "E-mail"}.get(c[8:], c[8:]).upper()
        for c in customers.columns if c.startswith("consent_")}
    customers.rename(renamed).write_parquet("crm.parquet")
    contacts = pl.read_parquet("shop/contacts.parquet")
    contacts.rename({"ts": "Дата"}).with_columns(
        pl.col("channel").replace({"email": "E-mail", "sms": "СМС"})).write_parquet("log.parquet")
    invoke("score", "--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
           "--customers", "crm.parquet", "--contacts", "log.parquet",
           "--map", "customers.customer_id=Код клиента", "--map", "contacts.ts=Дата",
           "--out", "scores_crm.parquet", "--store-url", f"sqlite:///{env / 'crm.db'}", *SPARK)
    local = pl.read_parquet("scores_local.parquet").sort("customer_id")
    assert_same(local, parts(env / "scores_crm.parquet"))


def test_spark_says_the_local_notes_on_customers_without_a_purchase_and_a_log_ending_early(env):
    # After test_score_on_spark_equals_the_local_engine (the model). Three customers of the
    # shop's log bought nothing: a gift (a zero line), a refund alone, an order returned whole.
    shop = pl.read_parquet("shop/transactions.parquet")
    line = shop.head(1)

    def one(customer: str, order: str, amount: float) -> pl.DataFrame:
        return line.with_columns(customer_id=pl.lit(customer), order_id=pl.lit(order),
                                 amount=pl.lit(amount, dtype=shop.schema["amount"]))

    pl.concat([shop, one("gift", "g1", 0.0), one("refund", "r1", -25.0),
               one("returned", "o1", 30.0), one("returned", "o1", -30.0)]
              ).write_parquet("unbought.parquet")
    args = ["--transactions", "unbought.parquet", "--as-of", AS_OF]
    local = invoke("features", *args, "--products-out", "none", "--out", "unbought_local.parquet")
    spark = invoke("features", *args, "--products-out", "none", "--out", "unbought_spark.parquet",
                   *SPARK)
    said = f"note: 3 customers have no purchase before the as-of date {AS_OF}"
    assert any(n.startswith(said) and n.endswith("they get no features")
               for n in notes(local.output))
    assert notes(spark.output) == notes(local.output)
    assert_same(pl.read_parquet("unbought_local.parquet"), parts(env / "unbought_spark.parquet"))
    # Scored 200 days after the log's end, more than the model's 90-day horizon: said by both,
    # with the same customers left without scores.
    late = ["score", "--transactions", "unbought.parquet", "--as-of", "2027-01-17"]
    local = invoke(*late, "--out", "late_local.parquet", "--store-url",
                   f"sqlite:///{env / 'late_local.db'}")
    spark = invoke(*late, "--out", "late_spark.parquet", "--store-url",
                   f"sqlite:///{env / 'late_spark.db'}", *SPARK)
    flat = [" ".join(n.split()) for n in notes(local.output)]
    assert any("days before the as-of date 2027-01-17: every customer is scored as if nothing "
               "was bought since" in n for n in flat), flat
    assert any(n.startswith("note: 3 customers have no purchase before the as-of date "
                            "2027-01-17") and n.endswith("they get no scores") for n in flat)
    assert [" ".join(n.split()) for n in notes(spark.output)] == flat


def test_a_catalog_table_reads_like_its_parquet(env, spark):
    spark.read.parquet(str(env / "shop" / "transactions.parquet")).createOrReplaceTempView("shop_tx")
    invoke("features", "--transactions", "shop/transactions.parquet", "--as-of", AS_OF,
           "--products-out", "none", "--out", "table_local.parquet")
    invoke("features", "--transactions", "table:shop_tx", "--as-of", AS_OF,
           "--products-out", "none", "--out", "table_spark.parquet", *SPARK)
    assert_same(pl.read_parquet("table_local.parquet"), parts(env / "table_spark.parquet"))
    missing = runner.invoke(app, ["features", "--transactions", "table:no_such_table", "--out",
                                  "t.parquet", *SPARK])
    assert missing.exit_code == 1 and "table:no_such_table" in missing.output


def test_training_sample_on_spark_is_the_local_sample_and_trains_the_same_backtest(env, spark):
    # A sample smaller than the shop (400 customers): the customers Spark keeps, the strata
    # table and the backtest trained on the collected lines are the local run's.
    from datetime import date

    from retain.features.contract import load_transactions
    from retain.spark import load_transactions as spark_load
    from retain.spark import training_rfm, training_sample
    from retain.training.backtest import TrainConfig, customer_sample
    from retain.training.train import fit_chosen_pipeline

    as_of = date.fromisoformat(AS_OF)
    config = TrainConfig(sample_customers=150, n_origins=2, n_estimators=10)
    history = load_transactions("shop/transactions.parquet", as_of=as_of).frame.drop("_row")
    local = customer_sample(history, as_of, config)
    assert local is not None and 150 <= local.sampled < local.customers == 400
    loaded = spark_load(spark, "shop/transactions.parquet", partitions=3, as_of=as_of)
    drawn, lines = training_sample(loaded, config.horizon_days, config.sample_customers)
    assert drawn is not None
    assert drawn.customer_ids.to_list() == local.customer_ids.to_list()
    assert drawn.summary() == local.summary()
    # Only the sampled customers' lines reach the driver: exactly the local sample's lines.
    expected = local.of(history)
    assert_frame_equal(expected.sort(expected.columns), lines.sort(lines.columns))
    # The probabilistic models fit every customer's RFM summary, computed per bucket.
    rfm = training_rfm(loaded)
    assert rfm.height == 400
    local_pipeline, metrics_local, _ = fit_chosen_pipeline(history, as_of, config, lambda _: None)
    spark_pipeline, metrics_spark, _ = fit_chosen_pipeline(lines, as_of, config, lambda _: None,
                                                           sample=drawn, rfm=rfm)
    assert metrics_local["churn"]["retain"]["auc"] > 0.5
    assert metrics_spark == metrics_local
    local_params = local_pipeline.btyd.fitted_params()
    assert spark_pipeline.btyd.fitted_params() == pytest.approx(local_params, rel=1e-9)


def test_train_on_spark_describes_every_customer_not_the_sample(env, spark):
    """With a sample (150 of 400 customers) the data report, the eligibility and the shop-wide
    figures of segments come from every customer on Spark: the local engine's on the whole
    file, not the sample's."""
    from datetime import date

    import numpy as np

    from retain.decisions.segments import ShopReference
    from retain.features.contract import load_transactions
    from retain.spark import history_counts, shop_reference, training_rfm, training_sample
    from retain.spark import load_transactions as spark_load
    from retain.training.backtest import TrainConfig, check_eligibility, fit_pipeline
    from retain.training.data_report import data_report

    as_of = date.fromisoformat(AS_OF)
    config = TrainConfig(sample_customers=150, n_origins=2, n_estimators=10)
    local = load_transactions("shop/transactions.parquet", as_of=as_of)
    history = local.frame.drop("_row")
    loaded = spark_load(spark, "shop/transactions.parquet", partitions=3, as_of=as_of)
    drawn, lines = training_sample(loaded, config.horizon_days, config.sample_customers)
    assert drawn is not None and lines["customer_id"].n_unique() < 400
    whole = data_report(history, local.report, as_of, config).to_dict()
    on_spark = data_report(lines, loaded.report, as_of, config,
                           counts=history_counts(loaded)).to_dict()
    assert on_spark == whole and whole["customers"] == 400
    assert data_report(lines, loaded.report, as_of, config).to_dict() != whole  # the sample's
    rfm = training_rfm(loaded)
    assert check_eligibility(lines, as_of, rfm=rfm) == check_eligibility(history, as_of)
    # The shop-wide figures with one fitted pipeline: every customer's, through Spark's exact
    # percentiles, against ShopReference.fit on the whole history.
    pipeline = fit_pipeline(lines, as_of, config, lambda _: None, sample=drawn, rfm=rfm)
    frame, products = pipeline.features(history, as_of)
    expected = ShopReference.fit(pipeline.score_features(frame, products, as_of), frame)
    got = shop_reference(loaded, pipeline)
    for name in ("clv_quantiles", "revenue_quantiles"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-12,
                                   atol=1e-9)
    assert (got.median_aov, got.median_interval) == pytest.approx(
        (expected.median_aov, expected.median_interval), rel=1e-12)
    sampled, sampled_products = pipeline.features(lines, as_of)
    of_sample = ShopReference.fit(pipeline.score_features(sampled, sampled_products, as_of),
                                  sampled)
    assert not np.allclose(of_sample.revenue_quantiles, expected.revenue_quantiles)


def test_train_on_spark_logs_the_engine_and_backtests_as_the_local_engine(env):
    import mlflow

    common = ["--transactions", "shop/transactions.parquet", "--as-of", AS_OF, "--n-origins",
              "1", "--n-estimators", "10", "--no-register"]
    local = invoke("train", *common)
    result = invoke("train", *common, *SPARK)
    assert "collected from Spark" in result.output and "Traceback" not in result.output
    on_local, on_spark = (
        mlflow.MlflowClient().get_run(output.split("MLflow run ", 1)[1].split(";", 1)[0]).data
        for output in (local.output, result.output))
    assert on_spark.params["engine"] == "spark" and on_spark.tags["engine"] == "spark"
    assert on_local.params["engine"] == "local"
    backtest = {k: v for k, v in on_local.metrics.items() if k.startswith("backtest.")}
    assert backtest and {k: on_spark.metrics[k] for k in backtest} == backtest


STATUS_LINES = (  # an Ozon-like export: sales, cancellations, a return written positive
    "Покупатель,Заказ,Дата,Сумма,Статус\n"
    + "".join(f"K{c},{c}-{o},2026-0{1 + o}-1{c % 10},{100 + 10 * c + o},Доставлен\n"
              for c in range(12) for o in range(4))
    + "".join(f"K{c},{c}-9,2026-03-2{c % 10},777,Отменён\n" for c in range(0, 12, 2))
    + "".join(f"K{c},{c}-1,2026-04-2{c % 10},50,ВОЗВРАТ\n" for c in range(0, 12, 3))
    + "K5,5-8,2026-05-05,40,Не выкуплен\n"
)
STATUS_MAP = ["--map", "customer_id=Покупатель", "--map", "order_id=Заказ", "--map", "ts=Дата",
              "--map", "amount=Сумма", "--map", "status=Статус"]


def test_a_status_column_on_spark_gives_the_local_features_and_notes(env):
    (env / "status.csv").write_text(STATUS_LINES, encoding="utf-8")
    pl.read_csv(env / "status.csv", infer_schema=False).write_parquet("status.parquet")
    args = ["--transactions", "status.parquet", "--as-of", AS_OF, *STATUS_MAP,
            "--cancelled-status", "не выкуплен", "--products-out", "none"]
    local = invoke("features", *args, "--out", "status_local.parquet")
    spark = invoke("features", *args, "--out", "status_spark.parquet", *SPARK)
    assert_same(pl.read_parquet("status_local.parquet"), parts(env / "status_spark.parquet"))
    assert notes(spark.output) == notes(local.output)
    said = " ".join(notes(local.output))
    assert "7 cancelled lines" in said and "4 returned lines" in said


def test_validate_transactions_in_memory_equals_the_loader_on_the_file(tmp_path):
    """What each Spark bucket runs: the contract's loader on an Arrow batch instead of a file,
    with the same rows kept, the same normalisation and report, the same rejects and errors."""
    from datetime import date

    from retain.features.contract import DataError, load_transactions, validate_transactions

    retail = write_online_retail(tmp_path / "retail.csv", customers=40, seed=5, vouchers=3)
    table = pl.read_csv(retail.path, infer_schema=False)
    table.write_parquet(tmp_path / "retail.parquet")
    mapping = dict(pair.split("=", 1) for pair in RETAIL_MAP[1::2])
    options = {"as_of": date(2011, 12, 1), "column_map": mapping, "on_bad_rows": "skip"}
    on_file = load_transactions(tmp_path / "retail.parquet",
                                rejects_path=tmp_path / "file.csv", **options)
    in_memory = validate_transactions(table.to_arrow(), "retail.parquet",
                                      rejects_path=tmp_path / "memory.csv", **options)
    assert_frame_equal(on_file.frame, in_memory.frame)
    assert in_memory.report.float_ids_rewritten > 0 and in_memory.report.rows_rejected > 0
    file_report = {**vars(on_file.report), "source": "retail.parquet", "rejects_path": None}
    assert {**vars(in_memory.report), "rejects_path": None} == file_report
    assert (tmp_path / "memory.csv").read_text() == (tmp_path / "file.csv").read_text()
    # The one error names the given source and 1-based rows, even for a CSV-like name.
    bad = pl.DataFrame({"customer_id": ["a", " "], "ts": ["2024-01-02", "2024-01-03"],
                        "amount": ["1", "2"]})
    with pytest.raises(DataError) as raised:
        validate_transactions(bad, "orders.csv")
    assert str(raised.value).startswith("orders.csv: 1 bad row(s)")
    assert "column 'customer_id': missing customer id at rows 2\n" in str(raised.value)
    with pytest.raises(DataError, match="^orders.csv: missing column"):
        validate_transactions(bad.drop("amount"), "orders.csv")
