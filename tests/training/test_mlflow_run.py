"""What one `retain train` run leaves in MLflow for the data scientists who read it: the
training input with its fingerprint, the probabilistic models' parameters, the source tags,
a description of the data and the choices, the diagnostics lifetimes users know, and a model
that carries its own code and real requirements (rebuilt in a fresh virtualenv: slow)."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import polars as pl
import pytest
from mlflow import MlflowClient
from packaging.requirements import Requirement
from packaging.version import Version

from retain.models.pyfunc import CODE_PACKAGES, REQUIREMENTS
from retain.models.registry import MODEL_NAME
from retain.training.backtest import TrainConfig
from retain.training.train import train

FAST = TrainConfig(n_origins=2, n_estimators=60, learning_rate=0.15)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shop, shop_history):
    """One run on 2,000 of the simulated shop's customers, in a fresh embedded MLflow."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ids = shop_history["customer_id"].unique().sort().head(2000).implode()
    history = shop_history.filter(pl.col("customer_id").is_in(ids))
    (root / "transactions.parquet").touch()  # the data report's source, a file that exists
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        result = train(history, shop.as_of, FAST, progress=lambda _: None,
                       data_report={"source": str(root / "transactions.parquet")})
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        yield result, client, root, history


def test_the_training_data_is_the_runs_input_with_the_fingerprint_as_digest(trained):
    result, client, root, history = trained
    inputs = client.get_run(result.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.digest == result.fingerprint["sha256_16"] and dataset.name == "transactions"
    assert {tag.key: tag.value for tag in inputs[0].tags}["mlflow.data.context"] == "training"
    assert str(root / "transactions.parquet") in dataset.source
    assert f'"num_rows": {history.height}' in dataset.profile
    assert "customer_id" in dataset.schema and "amount" in dataset.schema


def test_the_fitted_btyd_and_gamma_gamma_parameters_are_params(trained):
    result, client, _, _ = trained
    params = client.get_run(result.run_id).data.params
    btyd = result.pipeline.btyd
    names = ("r", "alpha", "s", "beta") if btyd.model == "pareto" else ("r", "alpha", "a", "b")
    for name in names:
        assert float(params[f"btyd.{name}"]) == pytest.approx(btyd.params_[name])
        assert float(params[f"btyd.{name}"]) > 0
    for name in ("p", "q", "v"):
        assert float(params[f"gg.{name}"]) == pytest.approx(btyd.spend_params_[name])
    # Gamma-Gamma's v is in money: its mean spend p v / (q - 1) is near the shop's repeat spend.
    p, q, v = (btyd.spend_params_[k] for k in ("p", "q", "v"))
    assert 0.3 < p * v / (q - 1) / btyd.mean_order_value_ < 3
    assert params["btyd.kind"] == btyd.model


def test_the_run_has_source_tags_and_a_description_the_version_shares(trained):
    result, client, _, history = trained
    tags = client.get_run(result.run_id).data.tags
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["mlflow.source.name"].endswith(os.path.join("training", "train.py"))
    assert tags["mlflow.source.git.commit"] == tags["git_commit"] and len(tags["git_commit"]) == 40
    assert tags["mlflow.user"]
    note = tags["mlflow.note.content"]
    assert f"{history.height:,} transaction lines" in note
    assert f"{history['customer_id'].n_unique():,} customers" in note
    assert str(history["ts"].min())[:10] in note and f"as of {result.pipeline.trained_as_of}" in note
    for task in ("churn", "revenue", "timing", "due_product"):
        assert any(line.startswith(f"- {task}") for line in note.splitlines()), (task, note)
    assert " vs " in note and "diff " in note
    version = client.get_model_version(MODEL_NAME, result.version)
    assert version.description.startswith(note) and "Alias: champion" in version.description


def test_the_logged_model_names_real_requirements_and_carries_retains_code(trained):
    result, _, root, _ = trained
    local = Path(mlflow.artifacts.download_artifacts(
        f"models:/{MODEL_NAME}/{result.version}", dst_path=str(root / "model-reqs"),
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}"))
    requirements = {(r := Requirement(line)).name.lower(): r.specifier
                    for line in (local / "requirements.txt").read_text().split()}
    assert "retain" not in requirements and set(REQUIREMENTS) <= set(requirements)
    # Ranges around the versions that fitted the model: the installed one in, the next
    # minor (packages pickled in the pipeline) or major out.
    for name, specifier in requirements.items():
        installed = Version(importlib.metadata.version(name))
        assert installed in specifier, (name, specifier)
    next_minor = Version(importlib.metadata.version("lightgbm")).minor + 1
    assert Version(f"{Version(importlib.metadata.version('lightgbm')).major}.{next_minor}") \
        not in requirements["lightgbm"]
    assert Version(f"{Version(importlib.metadata.version('pandas')).major + 1}") \
        not in requirements["pandas"]
    for package in CODE_PACKAGES:
        assert (local / "code" / "retain" / package / "__init__.py").exists()
    assert not list((local / "code").rglob("__pycache__"))


def _installer() -> list[str] | None:
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    return [uv] if Path(uv).exists() else None


def test_slow_the_model_loads_and_scores_in_a_fresh_virtualenv_from_its_requirements_only(
        trained, shop, tmp_path_factory):
    """SLOW (1-3 min, most of it installing packages; uv's cache makes reruns faster): a new
    virtualenv outside the repository, with nothing but the model's requirements.txt installed
    from the package index, loads the model by path and scores `retain simulate`'s
    transactions. Proves the model is self-contained: retain itself is not installed there."""
    result, _, root, _ = trained
    where = tmp_path_factory.mktemp("fresh-env")
    model_dir = Path(mlflow.artifacts.download_artifacts(
        f"models:/{MODEL_NAME}/{result.version}", dst_path=str(where / "model"),
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}"))
    ids = shop.transactions["customer_id"].unique().sort().head(30).implode()
    shop.transactions.filter(pl.col("customer_id").is_in(ids)).write_parquet(where / "tx.parquet")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    venv = where / "venv"
    started = time.perf_counter()
    uv = _installer()
    if uv:
        subprocess.run([*uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
                       check=True, env=env)
        install = [*uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
        install = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    done = subprocess.run([*install, "-r", str(model_dir / "requirements.txt")],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    installed = time.perf_counter() - started
    script = (
        "import importlib.util, sys, mlflow.pyfunc, pandas as pd\n"
        "assert importlib.util.find_spec('retain') is None and importlib.util.find_spec('models') is None\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "scores = model.predict(pd.read_parquet(sys.argv[2]), params={'as_of': sys.argv[3]})\n"
        "import retain\n"
        "print(len(scores), bool(scores['churn_probability'].between(0, 1).all()),\n"
        "      retain.__file__.startswith(sys.argv[1]))\n"
    )
    done = subprocess.run([str(venv / "bin" / "python"), "-c", script, str(model_dir),
                           str(where / "tx.parquet"), str(shop.as_of)],
                          capture_output=True, text=True, env=env, cwd=where, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["30", "True", "True"]
    print(f"env rebuilt in {installed:.0f} s, scored in {time.perf_counter() - started - installed:.0f} s")


def test_the_btyd_diagnostics_are_logged_as_pngs(trained):
    result, client, _, _ = trained
    logged = {a.path: a.file_size for a in client.list_artifacts(result.run_id, "diagnostics")}
    names = {"frequency_recency_matrix", "probability_alive_matrix", "period_transactions",
             "calibration_vs_holdout"}
    assert set(logged) == {f"diagnostics/{name}.png" for name in names}
    assert all(size > 10_000 for size in logged.values())


def test_retain_loading_its_model_keeps_its_own_code_and_sys_path(trained):
    """The API and the CLI load the model with the installed retain's packages, not the copy
    the model carries, and do not grow sys.path on each reload."""
    _, _, root, _ = trained
    repo = Path(__file__).resolve().parents[2]
    script = (
        "import sys\n"
        "from retain.models.registry import load_registered\n"
        "before = list(sys.path)\n"
        "loaded = [load_registered() for _ in range(2)][-1]\n"
        "import retain.decisions.segments, retain.features.orders, retain.models.pipeline\n"
        "from retain.models.pipeline import ScoringPipeline\n"
        "print(sys.path == before, type(loaded.pipeline) is ScoringPipeline,\n"
        "      all(m.__file__.startswith(sys.argv[1]) for m in (retain.decisions.segments,\n"
        "          retain.features.orders, retain.models.pipeline)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo),
           "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    done = subprocess.run([sys.executable, "-c", script, str(repo)], capture_output=True,
                          text=True, env=env, cwd=root, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "True", "True"]
