"""The one-customer scoring path's engine steps: numpy for a request's few values, polars for a
shop, the same answers either way (the rules themselves are tested with the pipeline)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_series_equal

from retain.decisions import arrays
from retain.decisions.arrays import Column, float_series, text_columns
from retain.models import pipeline
from retain.models.pipeline import _runs, _sorted_lookup, days_after


@pytest.fixture(params=["numpy", "polars"])
def engine(request, monkeypatch) -> str:
    if request.param == "polars":  # every size through the shop's path
        monkeypatch.setattr(pipeline, "NUMPY_MAX_LINES", -1)
        monkeypatch.setattr(arrays, "_LISTED_MAX", -1)
    return request.param


def test_due_product_rows_are_found_for_each_requested_id_and_missing_ids_are_not(engine):
    ids = pl.Series("customer_id", ["A", "C", "é", "ü"])  # sorted by code point
    wanted = pl.Series("customer_id", ["0", "A", "B", "C", "z", "é", "ü", "ÿ"])
    found, has = _sorted_lookup(ids, wanted)
    assert has.tolist() == [False, True, False, True, False, True, True, False]
    assert found[has].tolist() == [0, 1, 2, 3]


def test_no_due_product_rows_find_nothing(engine):
    found, has = _sorted_lookup(pl.Series("customer_id", [], pl.String),
                                pl.Series("customer_id", ["A", "B"]))
    assert not has.any()
    assert len(found) == 2


def test_runs_start_at_each_new_customer_and_nulls_are_one_run(engine):
    values = pl.Series(["a", "a", None, None, "b", "a"])
    assert _runs(values).tolist() == [True, False, True, False, True, True]


def test_dates_after_round_half_to_even_and_nan_is_null():
    days = np.array([0.5, 1.5, 2.49, -3.5, np.nan])
    out = days_after(date(2026, 7, 1), days, "next_order_date")
    assert out.name == "next_order_date"
    assert out.dtype == pl.Date
    assert out.to_list() == [date(2026, 7, 1), date(2026, 7, 3), date(2026, 7, 3),
                             date(2026, 6, 27), None]


def test_whole_days_after_are_dates_without_nulls():
    out = days_after(date(2026, 7, 1), np.array([0.0, 30.0]))
    assert out.to_list() == [date(2026, 7, 1), date(2026, 7, 31)]


def test_a_column_knows_its_nulls_apart_from_its_nans(engine):
    column = Column.of(pl.Series([1.0, None, float("nan"), 4.0]))
    assert column.ok.tolist() == [True, False, True, True]
    assert column.values[1] == 0.0  # a null holds no NaN
    assert np.isnan(column.values[2])


def test_float_series_keeps_nan_and_nulls_where_invalid():
    values = np.array([1.0, np.nan, 3.0])
    assert_series_equal(float_series("x", values), pl.Series("x", [1.0, float("nan"), 3.0]))
    with_null = float_series("x", values, np.array([True, True, False]))
    assert with_null.null_count() == 1
    assert np.isnan(with_null[1])


def test_text_columns_keep_order_names_and_nulls():
    first = np.array(["a", None], dtype=object)
    second = np.array([None, "b"], dtype=object)
    out = text_columns(("goal", "channel"), [first, second])
    assert [s.name for s in out] == ["goal", "channel"]
    assert [s.to_list() for s in out] == [["a", None], [None, "b"]]
    assert all(s.dtype == pl.String for s in out)
