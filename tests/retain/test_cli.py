from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from retain.cli import app

runner = CliRunner()
CSV = (
    "client,order_id,ts,amount,product_id\n"
    "c1,o1,2024-01-05,100,p1\nc1,o2,2024-02-05,50,p1\nc2,o3,2024-03-01,10,p2\n"
    "c1,o4,2024-06-10,70,p1\n"
)


def shop_csv(tmp_path: Path, text: str = CSV) -> Path:
    path = tmp_path / "tx.csv"
    path.write_text(text)
    return path


def test_features_writes_customer_and_product_features(tmp_path):
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["features", "--transactions", str(shop_csv(tmp_path)),
                                 "--as-of", "2024-04-01", "--out", str(out),
                                 "--map", "customer_id=client", "--on-bad-rows", "skip"])
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out)
    assert frame["customer_id"].to_list() == ["c1", "c2"]
    assert frame.filter(customer_id="c1")["frequency"].item() == 1
    assert pl.read_parquet(tmp_path / "f.products.parquet").height == 2
    # The June row is after the as-of date: outside the window, counted, never a rejected row.
    assert "1 rows on or after the as-of date 2024-04-01 are not used" in result.output
    assert "rejected" not in result.output


def test_features_with_labels_uses_the_horizon(tmp_path):
    out = tmp_path / "f.csv"
    result = runner.invoke(app, ["features", "--transactions", str(shop_csv(tmp_path)),
                                 "--as-of", "2024-04-01", "--out", str(out), "--labels",
                                 "--horizon-days", "90", "--map", "customer_id=client"])
    assert result.exit_code == 0, result.output
    frame = pl.read_csv(out)
    assert frame.filter(customer_id="c1")["orders_h"].item() == 1
    assert frame.filter(customer_id="c2")["ordered_again"].item() is False


def test_features_labels_refuse_a_horizon_the_log_does_not_reach(tmp_path):
    """Labels past the log's end would call every customer churned: one error, no file."""
    out = tmp_path / "f.csv"
    result = runner.invoke(app, ["features", "--transactions", str(shop_csv(tmp_path)),
                                 "--as-of", "2024-07-01", "--out", str(out), "--labels",
                                 "--map", "customer_id=client"])
    assert result.exit_code == 1 and not out.exists()
    flat = " ".join(result.output.split())
    assert "no transactions in the 90-day horizon after the as-of date 2024-07-01" in flat
    # The latest as-of the log covers: the day after its last line (2024-06-10) minus 90 days.
    assert "--as-of 2024-03-13 or earlier" in flat and "Traceback" not in flat


def test_features_labels_say_when_the_log_ends_inside_the_horizon(tmp_path):
    result = runner.invoke(app, ["features", "--transactions", str(shop_csv(tmp_path)),
                                 "--as-of", "2024-04-01", "--out", str(tmp_path / "f.csv"),
                                 "--labels", "--map", "customer_id=client"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "note: the transactions end 2024-06-10, 19 days before the last day of the 90-day " \
           "horizon after 2024-04-01 (2024-06-29)" in flat
    # A log that goes on past the horizon covers it, quiet days or not.
    later = CSV + "c2,o9,2024-08-01,5,p2\n"
    result = runner.invoke(app, ["features", "--transactions", str(shop_csv(tmp_path, later)),
                                 "--as-of", "2024-04-01", "--out", str(tmp_path / "g.csv"),
                                 "--labels", "--map", "customer_id=client"])
    assert result.exit_code == 0 and "transactions end" not in result.output


def test_settings_come_from_the_environment(tmp_path):
    out = tmp_path / "f.parquet"
    env = {"RETAIN_TRANSACTIONS": str(shop_csv(tmp_path)), "RETAIN_AS_OF": "2024-07-01",
           "RETAIN_COLUMN_MAP": '{"customer_id": "client"}'}
    result = runner.invoke(app, ["features", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out).height == 2


def test_bad_input_is_one_clear_error_without_a_traceback(tmp_path):
    path = shop_csv(tmp_path, "customer_id,ts,amount\nc1,2024-01-01,abc\n")
    result = runner.invoke(app, ["features", "--transactions", str(path), "--out",
                                 str(tmp_path / "f.parquet")])
    assert result.exit_code == 1
    assert "tx.csv" in result.output and "column 'amount'" in result.output
    assert "line" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "f.parquet").exists()


def test_bad_date_flag_is_explained(tmp_path):
    result = runner.invoke(app, ["features", "--transactions", str(shop_csv(tmp_path)),
                                 "--as-of", "01/02/2024", "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 1 and "--as-of" in result.output


def test_an_empty_out_path_is_a_usage_error_naming_the_flag(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = shop_csv(tmp_path)
    for command in (["features", "--transactions", str(path)],
                    ["cohorts", "--transactions", str(path)]):
        result = runner.invoke(app, [*command, "--out", ""])
        assert result.exit_code == 2, result.output
        assert "'--out': an empty path" in result.output and "internal error" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tx.csv"]  # nothing written
