"""The README's commands work as written: every `retain ...` line of its ```bash and ```sh blocks
runs, in order, in a fresh directory on the shop `retain simulate` writes, so the README cannot
drift from the code.

Lines of make, mlflow, curl, docker and `export` are other tools' (a Makefile, an MLflow server, a
running API, a Docker stack) and are not run here; `retain serve` would block, so its flags are
parsed (with --help) instead. Optional parts written `[--flag value]` are left out. Two changes
keep the run short, and are the only ones: `retain simulate` writes fewer customers, and `retain
train` fits fewer origins and boosting rounds. The files the README names beside simulate's
(`shop.parquet`, `customers.csv`, `contacts.csv`, `sqlite:///shop.db` with a `sales` table) are
simulate's tables under those names.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from retain.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
OTHER_TOOLS = ("make", "mlflow", "curl", "docker", "export")
FENCE = re.compile(r"^\s*```(\w*)\s*$")
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
FAST = {"simulate_customers": "1500", "train": ["--n-origins", "2", "--n-estimators", "60"]}


def shell_lines(text: str) -> list[str]:
    """The command lines of the ```bash / ```sh blocks (indented ones too), continuation lines
    and quotes that run over lines joined."""
    lines: list[str] = []
    language: str | None = None
    pending = ""
    for raw in text.splitlines():
        fence = FENCE.match(raw)
        if fence:
            language = None if language is not None else fence.group(1)
            continue
        if language not in ("bash", "sh"):
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if not closed(line):  # a quoted argument goes on to the next line, as in a shell
            pending = line + "\n"
            continue
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def closed(line: str) -> bool:
    try:
        shlex.split(line, comments=True)
    except ValueError:
        return False
    return True


def retain_command(line: str) -> tuple[dict[str, str], list[str]] | None:
    """(environment, arguments after `retain`) of a line that runs retain, else None."""
    words = shlex.split(line, comments=True)
    env: dict[str, str] = {}
    while words and ASSIGNMENT.match(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    if not words or words[0] in OTHER_TOOLS or words[0] != "retain":
        return None
    # [--optional value] groups, written inside one or several words.
    args = " ".join(shlex.quote(word) for word in words[1:])
    args = re.sub(r"'?\[[^\]]*\]'?", " ", args)
    return env, shlex.split(args)


def test_the_readme_lines_are_found():
    commands = [retain_command(line) for line in shell_lines(README.read_text())]
    names = {found[1][0] for found in commands if found}
    assert {"simulate", "features", "train", "evaluate", "score", "promote", "segments", "export",
            "rules", "serve"} <= names
    env, args = retain_command('A_B=\'{"k": ["s"]}\' retain serve --port 8000  # docs') or ({}, [])
    assert env == {"A_B": '{"k": ["s"]}'} and args == ["serve", "--port", "8000"]
    assert retain_command("retain x --a 1 [--b 2] [--c]")[1] == ["x", "--a", "1"]  # type: ignore[index]


def shorter(args: list[str]) -> list[str]:
    if args[0] == "simulate" and "--customers" in args:
        args = list(args)
        args[args.index("--customers") + 1] = FAST["simulate_customers"]
    if args[0] == "train":
        args = [*args, *FAST["train"]]
    if args[0] == "serve":
        args = [*args, "--help"]
    return args


def files_the_readme_names(shop: Path, directory: Path) -> None:
    transactions = pl.read_parquet(shop / "transactions.parquet")
    transactions.write_parquet(directory / "shop.parquet")
    pl.read_parquet(shop / "customers.parquet").write_csv(directory / "customers.csv")
    pl.read_parquet(shop / "contacts.parquet").write_csv(directory / "contacts.csv")
    transactions.rename({"customer_id": "client"}).write_database(
        "sales", f"sqlite:///{directory / 'shop.db'}", if_table_exists="replace")


def test_every_readme_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("RETAIN_STORE_URL", "RETAIN_TRANSACTIONS", "RETAIN_AS_OF", "RETAIN_API_KEYS",
                 "RETAIN_COLUMN_MAP", "RETAIN_RULES"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    commands = [found for line in shell_lines(README.read_text())
                if (found := retain_command(line))]
    simulate = next(args for _, args in commands if args[0] == "simulate")
    shop = Path(simulate[simulate.index("--out") + 1])
    ran = []
    for env, args in commands:
        if args[0] != "simulate" and not (shop / "transactions.parquet").exists():
            runner.invoke(app, shorter(simulate))  # the README simulates first, further down
        if args[0] != "simulate" and not (tmp_path / "shop.parquet").exists():
            files_the_readme_names(shop, tmp_path)
        result = runner.invoke(app, shorter(args), env=env or None)
        assert result.exit_code == 0, f"retain {shlex.join(args)}\n{result.output[-3000:]}"
        ran.append(args[0])
    assert "train" in ran and "export" in ran


@pytest.mark.parametrize("block", ["```bash\nretain rules \\\n  --check x.yaml  # why\n```\n",
                                   "  ```sh\n  retain rules --check x.yaml\n  ```\n"])
def test_blocks_and_continuations_are_read(block):
    assert shell_lines(block) == ["retain rules --check x.yaml  # why"
                                  if "why" in block else "retain rules --check x.yaml"]


def test_the_readme_endpoint_table_lists_every_operation():
    """A CRM integrator reads the table, not the code: every operation the service answers is
    in it, with its scope, and nothing in it is missing from the service."""
    from pydantic import SecretStr

    from retain.config import Settings
    from retain.serving.main import create_app

    document = create_app(Settings(api_keys=SecretStr('{"k": ["score"]}'))).openapi()
    served = {(method.upper(), path) for path, operations in document["paths"].items()
              for method in operations}
    row = re.compile(r"^\| `(GET|POST) (/[^` ?]*)[^`]*` \| ([^|]+) \|", re.MULTILINE)
    table = {(method, path): scope.strip() for method, path, scope in row.findall(
        README.read_text())}
    assert served <= set(table), sorted(served - set(table))
    assert {path for _, path in table} - {path for _, path in served} <= {"/ui", "/ui/report"}
    for (method, path), operation in ((key, document["paths"][key[1]][key[0].lower()])
                                      for key in served):
        if operation.get("security"):  # the table names the scope the summary does
            assert f"scope: {table[(method, path)].strip('`')}" in operation["summary"], path
