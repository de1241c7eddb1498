"""``retain inspect``: the data report of a real-shaped export and of CDNOW as shipped."""

from __future__ import annotations

import json
from datetime import date

from typer.testing import CliRunner

from retain.cli import app
from retain.features.samples import lifetimes_dataset_path
from tests.fixtures import ONLINE_RETAIL_MAP, write_online_retail

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.replace("│", " ").split())  # table cells as running text


def test_an_online_retail_export_is_described_before_training(tmp_path):
    export = write_online_retail(tmp_path / "invoices.csv")
    as_of = date(2011, 12, 1)
    out = run("inspect", "--transactions", str(export.path), "--as-of", str(as_of),
              *ONLINE_RETAIL_MAP, "--on-bad-rows", "skip", "--rejects",
              str(tmp_path / "rejected.csv"), "--json", str(tmp_path / "report.json"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rows_read"] == export.lines
    # Guest lines inside the window are rejected; those after it are outside the window.
    guests = report["rejected"].pop("customer_id: missing customer id")
    assert 0 < guests < export.guest_lines and report["rejected"] == {}
    assert report["duplicated_lines"] == export.duplicated_lines > 0
    assert report["float_ids_rewritten"] > 0 and report["encoding"] == "utf-8"
    assert report["lines_after_as_of"] > 0 and report["after_as_of_range"][0] >= str(as_of)
    assert report["refund_orders"] > 0 and report["zero_price_lines"] > 0
    assert report["customers"] == 120 and report["has_products"]
    # 120 customers are too few for LightGBM: the plan says so.
    assert report["plan"].startswith("probabilistic")
    assert any("repeat buyers" in reason for reason in report["reasons"])
    for shown in (f"{export.duplicated_lines:,}", "retain will train", "probabilistic",
                  "missing customer id"):
        assert shown in out


def test_cdnow_as_shipped_with_the_textbook_horizon_gets_the_fallback_and_a_horizon():
    cdnow = str(lifetimes_dataset_path("CDNOW_master.txt"))
    out = run("inspect", "--transactions", cdnow, "--as-of", "1997-10-01", "--horizon-days",
              "273", "--map", "ts=date", "--map", "amount=dollar_value",
              "--map", "quantity=number_of_cds")
    assert "69,659" in out and "20,573" in out and "23,500" in out
    assert "no training origin has a known 273-day outcome" in out
    assert "suggested horizon 90 days" in out
