"""The score store on SQLite and PostgreSQL (``store_db_url`` in tests/conftest.py): round trips,
atomic runs (raised and SIGKILLed midway), history, pruning, streaming, migrations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from retain.models.pipeline import SCORE_COLUMNS, empty_scores
from retain.serving.store import MIGRATIONS, Migration, RunNotFound, ScoreStore, mask_url

AS_OF = date(2026, 7, 1)
ROOT = Path(__file__).resolve().parents[2]


def make_scores(n: int, seed: int = 0, start: int = 0, as_of: date = AS_OF) -> pl.DataFrame:
    """``n`` customers C<start>.. with the pipeline's columns and dtypes, some nulls."""
    rng = np.random.default_rng(seed)
    days = pl.Series(rng.integers(0, 200, n))
    missing = pl.Series(rng.random(n) < 0.3)
    frame = pl.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(start, start + n)],
        "as_of": pl.Series([as_of] * n, dtype=pl.Date),
        "horizon_days": pl.Series([90] * n, dtype=pl.Int32),
        "p_alive": rng.random(n),
        "churn_probability": rng.random(n),
        "expected_orders": rng.random(n) * 5,
        "predicted_revenue": rng.random(n) * 1000,
        "clv_12m": rng.random(n) * 3000,
        "overdue_days": rng.random(n) * 30,
    })
    day = pl.lit(as_of)
    return frame.with_columns(
        (day + pl.duration(days=days)).alias("next_order_date"),
        (day + pl.duration(days=days // 2)).alias("next_order_p10"),
        (day + pl.duration(days=days * 2)).alias("next_order_p90"),
        pl.when(missing).then(None).otherwise(pl.format("P{}", days)).alias("due_product_id"),
        pl.when(missing).then(None).otherwise(day + pl.duration(days=days))
        .alias("due_product_date"),
        pl.lit(f"gbm-{seed}").alias("score_source"),
    ).select(SCORE_COLUMNS)


def stored(frame: pl.DataFrame, model_version: str) -> pl.DataFrame:
    """What the store gives back for ``frame``: model_version added, the columns it lacks as
    nulls, ordered by customer."""
    schema = ScoreStore().empty_frame().schema
    return (frame.with_columns(pl.lit(model_version).alias("model_version"))
            .with_columns(pl.lit(None, dtype).alias(name) for name, dtype in schema.items()
                          if name not in frame.columns and name != "model_version")
            .select(list(schema)).sort("customer_id"))


def rows_of_run(url: str, run_id: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.text("SELECT count(*) FROM scores WHERE run_id = :r"),
                               {"r": run_id})
    finally:
        engine.dispose()


@pytest.fixture
def store(store_db_url):
    with ScoreStore(store_db_url) as opened:
        yield opened


# -- round trip -------------------------------------------------------------------------------


def test_round_trip_every_column_and_dtype(store):
    frame = pl.DataFrame({
        "customer_id": ["a", "b,c", 'q"uote', "new\nline", "ünï 客户", " padded ", "0042"],
        "as_of": [AS_OF] * 7,
        "horizon_days": pl.Series([90, None, 30, 90, 90, 90, 90], dtype=pl.Int32),
        "p_alive": [0.1 + 0.2, None, 1e-300, 1.0, 0.0, 0.5, float("nan")],
        "churn_probability": [1 / 3, 2 / 3, None, 0.0, 1.0, 0.25, 0.75],
        "expected_orders": [1e12, 0.0, 3.5, None, 2.0, 1.0, 0.5],
        "predicted_revenue": [-12.34, 1234.5678901234567, 0.0, 1e-9, None, 5.0, 6.0],
        "clv_12m": [2.5, None, None, None, None, None, 7.0],
        "next_order_date": [date(2026, 7, 2), None, date(1999, 12, 31), date(2100, 1, 1),
                            AS_OF, AS_OF, AS_OF],
        "next_order_p10": [AS_OF, None, AS_OF, AS_OF, AS_OF, AS_OF, AS_OF],
        "next_order_p90": [date(2027, 2, 28), None, AS_OF, AS_OF, AS_OF, AS_OF, AS_OF],
        "overdue_days": [0.0, 12.0, None, 400.5, 0.0, 0.0, 0.0],
        "due_product_id": ["", None, "P,1", "P\n2", "P'3", "ТОВАР", None],
        "due_product_date": [date(2026, 7, 5), None, AS_OF, None, AS_OF, AS_OF, None],
        "score_source": ["gbm", "btyd", None, "gbm", "gbm", "gbm", "gbm"],
    }).select(SCORE_COLUMNS)
    run_id = store.write_run(frame, model_version="7", as_of=AS_OF)

    back = store.scores()
    expected = stored(frame, "7").with_columns(pl.col("p_alive").fill_nan(None))
    assert back.columns == store.columns
    assert_frame_equal(back, expected)  # values, nulls, dtypes (dates stay dates)
    assert {c: back.schema[c] for c in SCORE_COLUMNS} == dict(empty_scores().schema)
    assert_frame_equal(store.scores(run_id), expected)

    row = store.latest("b,c")
    assert row["run_id"] == run_id
    assert row["model_version"] == "7"
    assert row["as_of"] == AS_OF and type(row["as_of"]) is date
    assert row["next_order_date"] is None and row["due_product_id"] is None
    assert row["horizon_days"] is None and row["clv_12m"] is None
    assert row["predicted_revenue"] == 1234.5678901234567
    first = store.latest("a")
    assert first["p_alive"] == 0.1 + 0.2 and first["due_product_id"] == ""
    assert first["due_product_date"] == date(2026, 7, 5)
    assert store.latest("new\nline")["due_product_id"] == "P\n2"


def test_missing_columns_are_stored_as_nulls(store):
    frame = make_scores(5).drop("due_product_id", "due_product_date", "as_of")
    store.write_run(frame, model_version="1", as_of=AS_OF)
    back = store.scores()
    assert back["due_product_id"].null_count() == 5
    assert back["due_product_date"].dtype == pl.Date
    assert back["as_of"].to_list() == [AS_OF] * 5


def test_empty_store_and_unknown_customer(store):
    assert store.latest_run() is None
    assert store.runs() == []
    assert store.latest("C000001") is None
    assert store.scores().height == 0
    assert store.scores().schema == store.empty_frame().schema
    assert list(store.iter_scores()) == []
    store.write_run(make_scores(10), model_version="1", as_of=AS_OF)
    assert store.latest("nobody") is None
    with pytest.raises(RunNotFound):
        store.scores("no-such-run")
    with pytest.raises(RunNotFound):
        store.iter_scores("no-such-run")  # raised by the call, before streaming


def test_bad_frames_raise_clear_errors_and_write_nothing(store):
    frame = make_scores(5)
    with pytest.raises(ValueError, match=r"\['mood', 'colour'\].*not in the score"):
        store.write_run(frame.with_columns(mood=pl.lit("x"), colour=pl.lit("y")),
                        model_version="1", as_of=AS_OF)
    with pytest.raises(ValueError, match="not unique"):
        store.write_run(pl.concat([frame, frame.head(1)]), model_version="1", as_of=AS_OF)
    with pytest.raises(ValueError, match="no customer_id"):
        store.write_run(frame.with_columns(customer_id=pl.lit(None, pl.String)),
                        model_version="1", as_of=AS_OF)
    with pytest.raises(ValueError, match="'as_of' differs"):
        store.write_run(frame, model_version="1", as_of=date(2026, 1, 1))
    with pytest.raises(ValueError, match="'p_alive'"):
        store.write_run(frame.with_columns(p_alive=pl.lit("high")), model_version="1",
                        as_of=AS_OF)
    assert store.runs() == []


# -- history and reads ------------------------------------------------------------------------


def test_latest_picks_newest_complete_run_and_history_is_kept(store):
    first = store.write_run(make_scores(30, seed=1, as_of=date(2026, 6, 1)), model_version="1",
                            as_of=date(2026, 6, 1))
    # The second run lacks the first ten customers and has ten new ones.
    second_frame = make_scores(30, seed=2, start=10)
    second = store.write_run(second_frame, model_version="2", as_of=AS_OF)

    runs = store.runs()
    assert [r["run_id"] for r in runs] == [second, first]
    assert [r["status"] for r in runs] == ["complete", "complete"]
    assert [r["rows"] for r in runs] == [30, 30]
    assert runs[1]["as_of"] == date(2026, 6, 1) and runs[0]["model_version"] == "2"
    assert runs[0]["started_at"].tzinfo is not None
    assert runs[0]["finished_at"] >= runs[0]["started_at"]
    assert store.runs(limit=1) == runs[:1]
    assert store.latest_run() == runs[0]

    assert store.latest("C000015")["run_id"] == second
    assert store.latest("C000015")["score_source"] == "gbm-2"
    # A customer only the older run has: that run's row.
    assert store.latest("C000003")["run_id"] == first
    assert store.latest("C000035")["model_version"] == "2"
    assert_frame_equal(store.scores(), stored(second_frame, "2"))
    assert store.scores(first)["model_version"].unique().to_list() == ["1"]


def test_iter_scores_covers_the_run_exactly_once_in_chunks(store):
    frame = make_scores(1_050, seed=3)
    store.write_run(make_scores(200, seed=9), model_version="0", as_of=AS_OF)
    run_id = store.write_run(frame, model_version="1", as_of=AS_OF, chunk_size=128)
    chunks = list(store.iter_scores(chunk_size=100))
    assert [c.height for c in chunks] == [100] * 10 + [50]
    assert all(c.schema == store.empty_frame().schema for c in chunks)
    assert_frame_equal(pl.concat(chunks), stored(frame, "1"))
    assert sum(c.height for c in store.iter_scores(run_id, chunk_size=1_000)) == 1_050


def test_pages_walk_a_run_once_in_customer_order_and_seek_by_key(store, store_db_url):
    frame = make_scores(1_050, seed=4).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(pl.lit("replenish"))
        .otherwise(pl.lit("none")).alias("goal"))
    store.write_run(make_scores(200, seed=9), model_version="0", as_of=AS_OF)
    run_id = store.write_run(frame, model_version="1", as_of=AS_OF)
    seen: list[str] = []
    after = None
    while page := store.page(run_id, after=after, limit=100):
        assert len(page) <= 100 and all(row["run_id"] == run_id for row in page)
        seen += [row["customer_id"] for row in page]
        after = page[-1]["customer_id"]
    assert seen == sorted(frame["customer_id"])
    # A filter keeps pages in order and holds only matching rows.
    goals = store.page(run_id, limit=1_000, filters={"goal": "replenish"})
    assert len(goals) == 350 and {row["goal"] for row in goals} == {"replenish"}
    assert store.page(run_id, after="C000999", limit=10, filters={"channel": None})[0][
        "customer_id"] == "C001000"
    with pytest.raises(RunNotFound):
        store.page("0" * 32)
    if store.is_sqlite:
        # The seek walks the primary key: no scan of the run and no sort, whatever the page.
        engine = sa.create_engine(store_db_url)
        with engine.connect() as conn:
            plan = " ".join(str(row[-1]) for row in conn.execute(sa.text(
                "EXPLAIN QUERY PLAN SELECT * FROM scores WHERE run_id = :r AND "
                "customer_id > :c ORDER BY customer_id LIMIT 100"), {"r": run_id, "c": "C0005"}))
        engine.dispose()
        assert "USING INDEX sqlite_autoindex_scores_1" in plan or "pk_scores" in plan, plan
        assert "customer_id>?" in plan.replace(" ", ""), plan
        assert "TEMP B-TREE" not in plan, plan


# -- atomic runs ------------------------------------------------------------------------------


def test_a_run_becomes_visible_all_at_once(store, store_db_url):
    before = make_scores(100, seed=1)
    first = store.write_run(before, model_version="1", as_of=AS_OF)
    seen = []
    with ScoreStore(store_db_url) as reader:
        def look(rows_written: int) -> None:
            seen.append((rows_written, reader.latest_run()["run_id"],
                         reader.latest("C000010")["model_version"], reader.latest("C000150"),
                         reader.scores().height))

        store._on_chunk = look
        second = store.write_run(make_scores(200, seed=2), model_version="2", as_of=AS_OF,
                                 chunk_size=50)
        del store._on_chunk
        assert seen == [(n, first, "1", None, 100) for n in (50, 100, 150, 200)]
        assert reader.latest_run()["run_id"] == second
        assert reader.latest("C000150")["model_version"] == "2"
        assert reader.scores().height == 200


def test_a_run_that_raises_midway_leaves_the_previous_scores(store, store_db_url):
    before = make_scores(100, seed=1)
    first = store.write_run(before, model_version="1", as_of=AS_OF)

    def boom(rows_written: int) -> None:
        if rows_written >= 100:
            raise RuntimeError("disk on fire")

    store._on_chunk = boom
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.write_run(make_scores(300, seed=2), model_version="2", as_of=AS_OF, chunk_size=50)
    del store._on_chunk

    failed = store.runs()[0]
    assert failed["status"] == "failed" and failed["model_version"] == "2"
    assert failed["finished_at"] is not None
    assert rows_of_run(store_db_url, failed["run_id"]) == 0
    assert store.latest_run()["run_id"] == first
    assert_frame_equal(store.scores(), stored(before, "1"))
    assert store.latest("C000250") is None
    # The store still takes the next run.
    store.write_run(make_scores(10, seed=3), model_version="3", as_of=AS_OF)
    assert store.latest_run()["model_version"] == "3"


# Imports only the store (models.pipeline takes seconds to import).
KILLED_WRITER = """
import sys, time
from datetime import date
import polars as pl
from retain.serving.store import ScoreStore

store = ScoreStore(sys.argv[1]).open()
def slowly(rows_written):
    print(rows_written, flush=True)
    time.sleep(0.02)
store._on_chunk = slowly
frame = pl.DataFrame({"customer_id": [f"C{i:06d}" for i in range(20_000)],
                      "p_alive": [0.5] * 20_000})
store.write_run(frame, model_version="killed", as_of=date(2026, 7, 1), chunk_size=500)
print("done", flush=True)
"""


def test_a_run_killed_midway_leaves_the_previous_scores(store, store_db_url):
    before = make_scores(1_000, seed=1)
    first = store.write_run(before, model_version="1", as_of=AS_OF)

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, store_db_url], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        written = 0
        while written < 5_000:
            line = child.stdout.readline()
            assert line and line.strip() != "done", f"the writer ended early: {child.stderr.read()}"
            written = int(line)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()

    killed = store.runs()[0]
    assert killed["model_version"] == "killed" and killed["status"] == "running"
    assert rows_of_run(store_db_url, killed["run_id"]) == 0
    assert store.latest_run()["run_id"] == first
    assert_frame_equal(store.scores(), stored(before, "1"))
    assert store.latest("C000010")["model_version"] == "1"
    assert store.latest("C015000") is None

    # Nothing is left locked: the next run goes through, and prune clears the dead one.
    store.write_run(make_scores(10, seed=3), model_version="3", as_of=AS_OF)
    assert store.latest_run()["model_version"] == "3"
    store.stale_running_after = timedelta(0)
    assert store.prune(keep_runs=1) == 2
    assert [r["model_version"] for r in store.runs()] == ["3"]


# -- housekeeping -----------------------------------------------------------------------------


def test_prune_keeps_the_newest_complete_runs(store, store_db_url):
    old = store.write_run(make_scores(20, seed=1), model_version="1", as_of=AS_OF)

    def boom(rows_written: int) -> None:
        raise RuntimeError("failed run")

    store._on_chunk = boom
    with pytest.raises(RuntimeError):
        store.write_run(make_scores(20, seed=2), model_version="2", as_of=AS_OF)
    del store._on_chunk
    kept = [store.write_run(make_scores(20, seed=s), model_version=str(s), as_of=AS_OF)
            for s in (3, 4)]
    store._on_chunk = boom
    with pytest.raises(RuntimeError):
        store.write_run(make_scores(20, seed=5), model_version="5", as_of=AS_OF)
    del store._on_chunk
    late_failure = store.runs()[0]["run_id"]

    assert store.prune(keep_runs=2) == 2  # the oldest complete run and the older failure
    assert [r["run_id"] for r in store.runs()] == [late_failure, *reversed(kept)]
    assert rows_of_run(store_db_url, old) == 0
    assert store.latest_run()["run_id"] == kept[1]
    assert store.prune(keep_runs=2) == 0
    assert store.prune(keep_runs=1) == 1
    assert [r["status"] for r in store.runs()] == ["failed", "complete"]
    with pytest.raises(ValueError):
        store.prune(keep_runs=0)


# -- migrations -------------------------------------------------------------------------------


NEWEST = len(MIGRATIONS)


class StoreV1(ScoreStore):
    migrations = MIGRATIONS[:1]


class StoreNext(ScoreStore):
    migrations = (*MIGRATIONS, Migration(NEWEST + 1, "next fields (test)", add_score_columns=(
        ("campaign_note", pl.String), ("sent_at", pl.Datetime("us", "UTC")),
        ("opted_out", pl.Boolean), ("priority", pl.Int64))))


def schema_rows(url: str) -> list[tuple]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(
                sa.text("SELECT version, name FROM schema_version ORDER BY version"))]
    finally:
        engine.dispose()


def test_migrations_are_idempotent_and_concurrent_opens_are_safe(store_db_url):
    errors = []
    barrier = threading.Barrier(4)

    def open_once() -> None:
        try:
            barrier.wait()
            with ScoreStore(store_db_url) as opened:
                assert opened.schema_version == NEWEST
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_once) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with ScoreStore(store_db_url) as first:
        assert first.schema_version == NEWEST
    with ScoreStore(store_db_url) as again:
        assert again.schema_version == NEWEST
    assert schema_rows(store_db_url) == [(m.version, m.name) for m in MIGRATIONS]


def test_a_new_migration_adds_columns_to_an_existing_store(store_db_url):
    with StoreV1(store_db_url) as v1:
        assert v1.schema_version == 1
        v1.write_run(make_scores(5, seed=1), model_version="1", as_of=AS_OF)
    with ScoreStore(store_db_url) as current:  # migration 2: the decision fields
        assert current.schema_version == NEWEST
        old = current.scores()
        assert old.height == 5 and old["goal"].null_count() == 5
        assert old["send_at"].dtype == pl.Date and old["control_group"].dtype == pl.Boolean
    with StoreNext(store_db_url) as nxt:
        assert nxt.schema_version == NEWEST + 1
        old = nxt.scores()
        assert old["campaign_note"].null_count() == 5
        assert old["sent_at"].dtype == pl.Datetime("us", "UTC")
        frame = make_scores(3, seed=2).with_columns(
            campaign_note=pl.Series(["loyal", None, "at risk"]),
            sent_at=pl.Series([datetime(2026, 7, 2, 9, 30, 15, 123456, tzinfo=UTC), None,
                               datetime(2026, 7, 3, 12, tzinfo=timezone(timedelta(hours=3)))]),
            opted_out=pl.Series([True, False, None]),
            priority=pl.Series([1, None, 2 ** 40]),
        )
        nxt.write_run(frame, model_version="2", as_of=AS_OF)
        back = nxt.scores()
        assert back["sent_at"].to_list() == [datetime(2026, 7, 2, 9, 30, 15, 123456, tzinfo=UTC),
                                             None, datetime(2026, 7, 3, 9, tzinfo=UTC)]
        assert back["opted_out"].to_list() == [True, False, None]
        assert back["priority"].to_list() == [1, None, 2 ** 40]
        row = nxt.latest("C000002")
        assert row["sent_at"] == datetime(2026, 7, 3, 9, tzinfo=UTC)
        assert row["campaign_note"] == "at risk" and row["opted_out"] is None
    with StoreNext(store_db_url) as again:
        assert again.schema_version == NEWEST + 1
    assert [v for v, _ in schema_rows(store_db_url)] == list(range(1, NEWEST + 2))
    with pytest.raises(RuntimeError, match=f"schema version {NEWEST + 1}, newer"):
        ScoreStore(store_db_url).open()


class StoreV2(ScoreStore):
    migrations = MIGRATIONS[:2]


def test_a_store_from_before_the_order_history_reads_it_as_null(store_db_url):
    with StoreV2(store_db_url) as v2:
        assert "orders" not in v2.empty_frame().columns
        v2.write_run(make_scores(4, seed=1), model_version="1", as_of=AS_OF)
    with ScoreStore(store_db_url) as current:  # migration 3: the order history
        assert current.schema_version == NEWEST >= 3
        old = current.scores()
        assert old.height == 4
        for name, dtype in (("first_order_date", pl.Date), ("last_order_date", pl.Date),
                            ("orders", pl.Int32)):
            assert old[name].dtype == dtype and old[name].null_count() == 4
        assert current.latest("C000000")["orders"] is None
        frame = make_scores(2, seed=2).with_columns(
            first_order_date=pl.Series([date(2025, 1, 5), date(2026, 6, 30)]),
            last_order_date=pl.Series([date(2026, 5, 1), date(2026, 6, 30)]),
            orders=pl.Series([7, 1], dtype=pl.Int32),
        )
        current.write_run(frame, model_version="2", as_of=AS_OF)
        row = current.latest("C000000")
        assert (row["first_order_date"], row["last_order_date"], row["orders"]) == (
            date(2025, 1, 5), date(2026, 5, 1), 7)
        # The columns come last, after the decision fields.
        assert current.empty_frame().columns[-3:] == ["first_order_date", "last_order_date",
                                                      "orders"]


# -- URLs -------------------------------------------------------------------------------------


def test_urls_in_messages_hide_the_password():
    url = "postgresql+psycopg://retain:s3cret@127.0.0.1:1/retain_test"
    assert "s3cret" not in mask_url(url) and "***" in mask_url(url)
    store = ScoreStore(url)
    assert "s3cret" not in repr(store) and "s3cret" not in store.url
    with pytest.raises(ConnectionError) as raised:
        store.open()
    assert "s3cret" not in str(raised.value) and "***" in str(raised.value)
    with pytest.raises(ValueError, match="psycopg 3"):
        ScoreStore("postgresql+psycopg2://u:s3cret@h/db")
    with pytest.raises(ValueError) as unsupported:
        ScoreStore("mysql://u:s3cret@h/db")
    assert "s3cret" not in str(unsupported.value)
    assert ScoreStore("postgresql://u:p@h/db").url.startswith("postgresql+psycopg://")
    with pytest.raises(RuntimeError, match="not open"):
        store.latest("C1")


def test_default_url_is_a_sqlite_file_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ScoreStore() as store:
        store.write_run(make_scores(3), model_version="1", as_of=AS_OF)
    assert (tmp_path / "retain.db").exists()
