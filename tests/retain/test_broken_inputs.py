"""A corpus of broken inputs driven through the commands: each ends with its exit code, exactly
one ``error:`` line and never a traceback, and no password ever shows.

Most cases fail while the transactions load, before any model is fitted, so the whole module
runs in seconds. A shop where everyone bought once is refused only after a backtest fit (tens
of seconds on a shared machine), so it is tested with the model choice (tests/training)."""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from retain.cli import app

PASSWORD = "s3cretPassw0rd"
# Port 9 (discard) answers nothing on a test machine: a refused connection, at once.
DEAD_MLFLOW = f"http://retain:{PASSWORD}@127.0.0.1:9"
DEAD_STORE = f"postgresql+psycopg://retain:{PASSWORD}@127.0.0.1:9/retain"
GOOD = ("customer_id,order_id,ts,amount,product_id\n"
        "c1,o1,2024-01-05,100,p1\nc1,o2,2024-02-05,50,p1\nc2,o3,2024-03-01,10,p2\n"
        "c3,o4,2024-03-10,30,p2\nc2,o5,2024-03-20,12,p1\n")
TINY_TRAIN = ["--n-origins", "1", "--n-estimators", "10", "--no-register",
              "--horizon-days", "30", "--origin-step-days", "30"]

runner = CliRunner()
NEEDS_INSPECT = pytest.mark.skipif(
    "inspect" not in typer.main.get_command(app).commands,  # type: ignore[attr-defined]
    reason="retain inspect is not registered")


@dataclass
class Case:
    name: str
    build: Callable[[Path], list[str]]  # the arguments, given a directory for files
    code: int = 1
    env: dict[str, str] = field(default_factory=dict)
    marks: tuple = ()


def csv_file(text: str | bytes, name: str = "tx.csv") -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path
    return write


def features(source: Callable[[Path], Path | str], *extra: str,
             out: str = "f.parquet") -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        given = source(tmp)
        return ["features", "--transactions", str(given), "--out", str(tmp / out), *extra]
    return args


def good(tmp: Path) -> Path:
    return csv_file(GOOD)(tmp)


def parquet_file(kind: str) -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / "tx.parquet"
        frame = pl.read_csv(GOOD.encode(), try_parse_dates=True)
        if kind == "truncated":
            frame.write_parquet(path)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        elif kind == "csv-inside":
            path.write_text(GOOD)
        elif kind == "empty":
            frame.head(0).write_parquet(path)
        return path
    return write


def write_parquet(tmp: Path, frame: pl.DataFrame) -> Path:
    path = tmp / "tx.parquet"
    frame.write_parquet(path)
    return path


def command(*words: str, source: Callable[[Path], Path] = good) -> Callable[[Path], list[str]]:
    """A command over the good shop; ``{out}`` in ``words`` becomes a path in the directory."""
    def args(tmp: Path) -> list[str]:
        path = source(tmp)
        return [w.replace("{out}", str(tmp)).replace("{tx}", str(path)) for w in words]
    return args


def full_disk_out(suffix: str) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        link = tmp / f"full{suffix}"
        link.symlink_to("/dev/full")
        return ["features", "--transactions", str(good(tmp)), "--out", str(link)]
    return args


CP1251 = "client,order_id,ts,amount\nИван,o1,2024-01-05,10\nПетр,o2,2024-01-06,12\n".encode(
    "cp1251")
HEADER = "customer_id,order_id,ts,amount\n"
ONE_LINE = "customer_id,order_id,ts,amount\nc1,o1,2024-01-05,10\n"

CASES = [
    # -- the file itself ---------------------------------------------------------------------
    Case("empty file", features(csv_file(""))),
    Case("header only", features(csv_file("customer_id,order_id,ts,amount\n"))),
    # The delimiter is sniffed: a semicolon or tab export is read as it is.
    Case("semicolon delimiter", features(csv_file(GOOD.replace(",", ";"))), code=0),
    Case("tab delimiter", features(csv_file(GOOD.replace(",", "\t"))), code=0),
    Case("pipe delimiter", features(csv_file(GOOD.replace(",", "|"))), code=0),
    Case("ragged rows", features(csv_file(GOOD + "c9,o9,2024-01-01\nc8,o8,2024-01-02,1,p1,x,y\n"))),
    Case("binary file", features(csv_file(bytes(range(256)) * 8))),
    Case("one line, no newline", features(csv_file("customer_id,order_id,ts,amount"))),
    Case("a directory instead of a file", lambda tmp: ["features", "--transactions", str(tmp),
                                                        "--out", str(tmp / "f.parquet")]),
    Case("missing file", features(lambda tmp: tmp / "nope.csv")),
    Case("unknown file type", features(csv_file(GOOD, name="tx.xlsx"))),
    Case("truncated Parquet", features(parquet_file("truncated"))),
    Case("CSV text named .parquet", features(parquet_file("csv-inside"))),
    Case("Parquet without rows", features(parquet_file("empty"))),
    # cp1251 is detected and read as such (never lossily); declared wrongly, it is refused.
    Case("cp1251 file", features(csv_file(CP1251), "--map", "customer_id=client"), code=0),
    Case("cp1251 file declared UTF-8", features(csv_file(CP1251), "--encoding", "utf-8")),
    Case("unknown --encoding", features(good, "--encoding", "klingon")),
    # -- the columns and values ----------------------------------------------------------------
    Case("missing column", features(csv_file("customer_id,order_id,ts\nc1,o1,2024-01-05\n"))),
    Case("no customer column", features(csv_file("client,order_id,ts,amount\nc1,o1,2024-01-05,1\n"))),
    Case("duplicated column name", features(csv_file(
        "customer_id,order_id,ts,amount,amount\nc1,o1,2024-01-05,10,11\n"))),
    Case("bad dates", features(csv_file("customer_id,order_id,ts,amount\nc1,o1,05/13/2024x,10\n"))),
    Case("empty dates", features(csv_file("customer_id,order_id,ts,amount\nc1,o1,,10\n"))),
    Case("non-numeric amounts", features(csv_file("customer_id,order_id,ts,amount\nc1,o1,2024-01-05,ten\n"))),
    Case("amount 1e308", features(csv_file(GOOD + "c5,o9,2024-02-01,1e308,p1\n"))),
    Case("amount inf", features(csv_file(GOOD + "c5,o9,2024-02-01,inf,p1\n"))),
    Case("refunds only", features(csv_file(
        "customer_id,order_id,ts,amount\nc1,o1,2024-01-05,-10\nc2,o2,2024-01-06,-5\n"))),
    Case("guest lines only", features(csv_file("customer_id,order_id,ts,amount\n,o1,2024-01-05,10\n"))),
    Case("every line after --as-of", features(csv_file(GOOD), "--as-of", "2020-01-01")),
    Case("Z timestamps", features(csv_file(
        "customer_id,order_id,ts,amount\nc1,o1,2024-01-05T10:00:00Z,10\n"
        "c1,o2,2024-02-05T10:00:00Z,10\n")), code=0),
    Case("NUL bytes in a line", features(csv_file(HEADER + "c1,o1,2024-01-05,1\x000\n"))),
    Case("only blank lines", features(csv_file("\n\n\n"))),
    Case("an unclosed quote", features(csv_file(HEADER + 'c1,"o1,2024-01-05,10\n'))),
    # Read as Excel writes currency cells ($10, 1 200,50 ₽): not a broken input any more.
    Case("amounts with a currency sign", features(csv_file(HEADER + "c1,o1,2024-01-05,$10\n")),
         code=0),
    Case("Excel's Unicode text (UTF-16)", features(csv_file(
        (HEADER + "c1,o1,2024-01-05,10\n").encode("utf-16"), "tx.txt")), code=0),
    Case("NaN amount", features(csv_file(HEADER + "c1,o1,2024-01-05,NaN\n"))),
    Case("epoch seconds for dates", features(csv_file(HEADER + "c1,o1,1704412800,10\n"))),
    Case("UTF-8 BOM and CRLF", features(csv_file(
        ("\ufeff" + HEADER + "c1,o1,2024-01-05,10\n").replace("\n", "\r\n"))), code=0),
    Case("Parquet with a list amount", features(lambda tmp: write_parquet(tmp, pl.DataFrame({
        "customer_id": ["c1"], "order_id": ["o1"], "ts": [datetime(2024, 1, 5)],
        "amount": [[1.0]]})))),
    # -- the flags -----------------------------------------------------------------------------
    Case("bad --as-of", features(good, "--as-of", "2024-13-45")),
    Case("--as-of not a date", features(good, "--as-of", "yesterday")),
    Case("bad --map", features(good, "--map", "customer_id")),
    Case("--map to a missing column", features(good, "--map", "customer_id=client_code")),
    Case("--map of an unknown field", features(good, "--map", "shoe_size=amount")),
    # A value outside a flag's choices is a usage error (exit 2) listing them.
    Case("unknown --on-bad-rows (usage)", features(good, "--on-bad-rows", "ignore"), code=2),
    Case("bad RETAIN_COLUMN_MAP", features(good), env={"RETAIN_COLUMN_MAP": "{not json"}),
    Case("no --transactions", lambda tmp: ["features", "--out", str(tmp / "f.parquet")]),
    Case("missing --out (usage)", lambda tmp: ["features", "--transactions", str(good(tmp))],
         code=2),
    Case("non-integer --horizon-days (usage)", features(good, "--horizon-days", "soon"), code=2),
    Case("evaluate without --as-of", command("evaluate", "--transactions", "{tx}")),
    Case("simulate --format xml (usage)", command("simulate", "--format", "xml", "--out",
                                                  "{out}/shop"), code=2),
    Case("rules file missing", command("train", "--transactions", "{tx}", "--rules",
                                       "{out}/nope.yaml", *TINY_TRAIN)),
    Case("rules file not YAML", command("train", "--transactions", "{tx}", "--rules", "{tx}",
                                        *TINY_TRAIN)),
    # -- where the output goes -------------------------------------------------------------
    Case("unknown output type", features(good, out="f.xlsx")),
    Case("output on a full disk (CSV)", full_disk_out(".csv")),
    Case("output on a full disk (Parquet)", full_disk_out(".parquet")),
    Case("output under a file", lambda tmp: ["features", "--transactions", str(good(tmp)),
                                             "--out", "/dev/full/f.csv"]),
    # -- databases, the registry and the store (passwords must never show) ----------------
    Case("transactions URL unreachable, with a password",
         features(lambda tmp: DEAD_STORE)),
    Case("transactions sqlite without the table",
         features(lambda tmp: f"sqlite:///{tmp / 'empty.db'}")),
    Case("transactions query not SQL", lambda tmp: [
        "features", "--transactions", f"sqlite:///{tmp / 'empty.db'}", "--query", "SELEKT 1",
        "--out", str(tmp / "f.parquet")]),
    Case("train with an unreachable MLflow", command("train", "--transactions", "{tx}",
                                                     *TINY_TRAIN), env={"MLFLOW_TRACKING_URI": DEAD_MLFLOW}),
    Case("score with an unreachable MLflow", command("score", "--transactions", "{tx}", "--out",
                                                     "{out}/s.csv"), env={"MLFLOW_TRACKING_URI": DEAD_MLFLOW}),
    Case("evaluate with an unreachable MLflow", command(
        "evaluate", "--transactions", "{tx}", "--as-of", "2024-02-01"),
        env={"MLFLOW_TRACKING_URI": DEAD_MLFLOW}),
    Case("promote with an unreachable MLflow", command("promote", "--version", "1"),
         env={"MLFLOW_TRACKING_URI": DEAD_MLFLOW}),
    Case("score with no model registered", command("score", "--transactions", "{tx}", "--out",
                                                   "{out}/s.csv")),
    Case("segments from an unreachable store", command("segments", "--store-url", DEAD_STORE)),
    Case("export from an unreachable store", command("export", "--store-url", DEAD_STORE,
                                                     "--out", "{out}/e.csv")),
    Case("store URL of an unsupported database", command(
        "segments", "--store-url", f"mysql://retain:{PASSWORD}@localhost/retain")),
    Case("store in a directory that does not exist", command(
        "segments", "--store-url", "sqlite:////nonexistent/dir/retain.db")),
    Case("segments with an empty store", command("segments", "--store-url",
                                                 "sqlite:///{out}/retain.db")),
    # -- small shops: training is reached -------------------------------------------------------
    # -- retain inspect, once it is registered ---------------------------------------------------
    Case("inspect an empty file", command("inspect", "--transactions", "{tx}",
                                          source=csv_file("")), marks=(NEEDS_INSPECT,)),
    Case("inspect a missing file", lambda tmp: ["inspect", "--transactions", str(tmp / "no.csv")],
         marks=(NEEDS_INSPECT,)),
    Case("inspect with a bad --as-of", command("inspect", "--transactions", "{tx}", "--as-of",
                                               "2024-02-30"), marks=(NEEDS_INSPECT,)),
    Case("inspect writing JSON to a full disk", lambda tmp: [
        "inspect", "--transactions", str(good(tmp)), "--json", "/dev/full"],
        marks=(NEEDS_INSPECT,)),
    Case("one-line shop", command("train", "--transactions", "{tx}", *TINY_TRAIN,
                                  source=csv_file(ONE_LINE))),
]


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """Every case with its own empty registry, store and log directory, out of the way."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("RETAIN_STORE_URL", f"sqlite:///{tmp_path / 'retain.db'}")
    monkeypatch.setenv("RETAIN_LOG_DIR", str(tmp_path / "logs"))
    for name in ("RETAIN_TRANSACTIONS", "RETAIN_AS_OF", "RETAIN_COLUMN_MAP", "RETAIN_DEBUG",
                 "RETAIN_ON_BAD_ROWS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines()
            if re.match(r"\s*(error:|internal error)", line)]


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.marks) for c in CASES])
def test_a_broken_input_ends_in_one_message(case: Case, clean_env: Path):
    result = runner.invoke(app, case.build(clean_env), env=case.env)
    output = result.output
    assert "Traceback" not in output, output
    assert PASSWORD not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception)
    assert result.exit_code == case.code, output
    if case.code == 1:
        assert len(error_lines(output)) == 1, output
        assert not error_lines(output)[0].lstrip().startswith("internal"), output
    elif case.code == 0:
        assert error_lines(output) == [], output
    assert not list((clean_env / "logs").glob("*.log")), "an internal error was logged"


def test_an_unreachable_registry_is_named_so_with_its_password_masked(clean_env):
    result = runner.invoke(app, command("score", "--transactions", "{tx}", "--out",
                                        "{out}/s.csv")(clean_env),
                           env={"MLFLOW_TRACKING_URI": DEAD_MLFLOW})
    assert result.exit_code == 1
    assert "is unreachable" in result.output and "retain:***@127.0.0.1:9" in result.output
    assert "no model" not in result.output


def test_an_unreachable_store_is_named_with_its_password_masked(clean_env):
    result = runner.invoke(app, ["segments", "--store-url", DEAD_STORE])
    assert result.exit_code == 1
    assert "retain:***@127.0.0.1:9" in result.output, result.output
    assert PASSWORD not in result.output


def test_a_read_only_output_place_is_one_error(clean_env, monkeypatch):
    # Tests may run as root, for whom no directory is read-only: the file system's answer
    # is given by hand.
    def read_only(self, path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(pl.DataFrame, "write_parquet", read_only)
    result = runner.invoke(app, features(good)(clean_env))
    assert result.exit_code == 1, result.output
    says = (f"error: cannot write {clean_env / 'f.parquet'}: the file system is read-only: "
            "write elsewhere")
    assert error_lines(result.output) == [says]


def test_a_read_only_score_store_is_one_clear_error(tmp_path):
    from datetime import date

    from retain.serving.store import ScoreStore, StoreUnavailable

    path = tmp_path / "retain.db"
    ScoreStore(f"sqlite:///{path}").open().close()
    read_only = ScoreStore(f"sqlite:///file:{path}?mode=ro&uri=true").open()
    try:
        with pytest.raises(StoreUnavailable) as raised:
            read_only.write_run(pl.DataFrame({"customer_id": ["c1"]}), model_version="1",
                                as_of=date(2024, 1, 1))
    finally:
        read_only.close()
    assert "the store is read-only" in str(raised.value)
    assert "\n" not in str(raised.value)
