"""The pickled pipeline and the code the logged model carries."""

from __future__ import annotations

import pickle
import subprocess
import sys
import types

import pytest

from retain.models.pipeline import PIPELINE_FORMAT, ScoringPipeline
from retain.models.pyfunc import (
    CODE_PACKAGES,
    code_paths,
    input_schema,
    load_pipeline,
    save_pipeline,
    transactions_frame,
)


def _bare_pipeline(format_version: int) -> ScoringPipeline:
    pipeline = object.__new__(ScoringPipeline)
    pipeline.format_version = format_version
    return pipeline


def test_a_pipeline_of_this_format_loads_back(tmp_path):
    path = save_pipeline(_bare_pipeline(PIPELINE_FORMAT), tmp_path / "pipeline.pkl")
    assert vars(load_pipeline(path))["format_version"] == PIPELINE_FORMAT


def test_a_pipeline_of_another_format_is_refused_with_retrain(tmp_path):
    path = save_pipeline(_bare_pipeline(PIPELINE_FORMAT - 1), tmp_path / "pipeline.pkl")
    with pytest.raises(ValueError, match="retrain it with `retain train`"):
        load_pipeline(path)


def test_a_pipeline_pickled_under_the_old_top_level_names_is_refused_unimported(
        tmp_path, monkeypatch):
    # Before the one namespace, pipelines were pickled as `models.pipeline.ScoringPipeline`.
    old = types.ModuleType("models.pipeline")
    ScoringPipelineOld = type("ScoringPipeline", (), {"__module__": "models.pipeline"})
    old.ScoringPipeline = ScoringPipelineOld
    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    monkeypatch.setitem(sys.modules, "models.pipeline", old)
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps(ScoringPipelineOld()))
    # Even with a `models.pipeline` importable (a user's own), it is not what loads.
    with pytest.raises(ValueError, match="names 'models.pipeline'.*retrain it with `retain train`"):
        load_pipeline(path)


def test_the_model_carries_retain_code_under_its_one_name(tmp_path):
    (package,) = code_paths(tmp_path / "code")
    found = {p.name for p in (tmp_path / "code" / "retain").iterdir() if p.is_dir()}
    assert found == set(CODE_PACKAGES)
    assert not list((tmp_path / "code").rglob("__pycache__"))
    # The copy alone imports the scoring code (the CLI and the server are not in it).
    check = "import retain.models.pyfunc, retain.decisions.rules; print(retain.__file__)"
    result = subprocess.run([sys.executable, "-P", "-c", check], cwd=tmp_path, text=True,
                            env={"PYTHONPATH": str(tmp_path / "code")}, capture_output=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().startswith(package)


def test_a_status_column_in_the_models_input_is_read_by_the_contracts_rule():
    import pandas as pd
    import polars as pl

    given = pd.DataFrame({
        "customer_id": ["A", "A", "A", "B"], "order_id": ["1", "2", "1", "3"],
        "ts": pd.to_datetime(["2026-01-01", "2026-01-05", "2026-01-09", "2026-02-01"]),
        "amount": [100.0, 900.0, 40.0, 20.0], "status": ["Доставлен", "Отменён", "Возврат", None]})
    frame = transactions_frame(given)
    assert frame.columns == transactions_frame(given.drop(columns="status")).columns
    assert frame["order_id"].to_list() == ["1", "1", "3"]
    assert frame["amount"].to_list() == [100.0, -40.0, 20.0]
    assert frame["quantity"].to_list() == [1.0, -1.0, 1.0]
    assert frame.schema["ts"] == pl.Datetime("us")
    assert "status" in input_schema().input_names()
    assert "status" not in input_schema().required_input_names()
