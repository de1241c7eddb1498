"""The pickled pipeline and the code the logged model carries."""

from __future__ import annotations

import pickle
import subprocess
import sys
import types

import pytest

from retain.models.pipeline import PIPELINE_FORMAT, ScoringPipeline
from retain.models.pyfunc import CODE_PACKAGES, code_paths, load_pipeline, save_pipeline


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
