"""The whole scoring pipeline as ONE MLflow pyfunc model: raw transactions in, scores out.

``mlflow.pyfunc.load_model("models:/retain@champion").predict(transactions, params={"as_of":
"2026-07-01"})`` gives the same frame as ``retain score``. The fitted
:class:`~retain.models.pipeline.ScoringPipeline` is one pickled artifact, read once in
``load_context``; ``predict`` does no I/O.
"""

from __future__ import annotations

import importlib.metadata
import pickle
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
import polars as pl

from retain.models.pipeline import PIPELINE_FORMAT, ScoringPipeline

PIPELINE_ARTIFACT = "pipeline"
TRANSACTION_SCHEMA = {
    "customer_id": pl.String, "order_id": pl.String, "ts": pl.Datetime("us"),
    "amount": pl.Float64, "product_id": pl.String, "quantity": pl.Float64, "channel": pl.String,
}


REQUIRED_COLUMNS = ("customer_id", "ts", "amount")

# The packages of this repository that loading and scoring import: the pyfunc wrapper and the
# estimators (models), the features they compute (features) and the shop-wide figures and
# channel measurements pickled in the pipeline (decisions). Logged as the model's code_paths,
# so the model loads where retain is not installed (retain itself is on no package index).
CODE_PACKAGES = ("features", "models", "decisions")

# The distributions scoring imports, and how far a newer release may go from the one that
# fitted the model: "minor" where the pipeline pickles that package's objects (LightGBM
# boosters, scikit-learn's isotonic calibration) or where a release's dependencies may be
# missing on the index (mlflow), "major" for the rest; lifetimes has had no release since
# 0.11.3 (2020) and stays pinned as in pyproject.
REQUIREMENTS = {
    "mlflow": "minor", "lightgbm": "minor", "scikit-learn": "minor", "lifetimes": "exact",
    "polars": "major", "pandas": "major", "numpy": "major", "pyarrow": "major",
    "scipy": "major", "pydantic": "major", "pyyaml": "major",
}


def _requirement(name: str, freedom: str) -> str:
    version = importlib.metadata.version(name)
    parts = [int(p) for p in version.split(".")[:3] if p.isdigit()]
    if freedom == "exact" or len(parts) < 2:
        return f"{name}=={version}"
    upper = f"{parts[0]}.{parts[1] + 1}" if freedom == "minor" else f"{parts[0] + 1}"
    return f"{name}>={version},<{upper}"


def model_requirements() -> list[str]:
    """The pip requirements of the logged model, from the versions installed here: e.g.
    ``lightgbm>=4.7.0,<4.8`` and ``pandas>=3.1.1,<4`` (see ``REQUIREMENTS``)."""
    return [_requirement(name, freedom) for name, freedom in REQUIREMENTS.items()]


def code_paths(staging: Path) -> list[str]:
    """A ``retain`` package under ``staging`` holding only ``CODE_PACKAGES`` (copied from this
    checkout or installation): the model's pickled classes are named ``retain.models...``,
    so its code must travel under that name, and the CLI and the server stay behind."""
    import retain

    package = staging / "retain"
    package.mkdir(parents=True, exist_ok=True)
    shutil.copy2(retain.__file__, package / "__init__.py")
    for name in CODE_PACKAGES:
        source = Path(importlib.import_module(f"retain.{name}").__path__[0])
        shutil.copytree(source, package / name, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return [str(package)]


def input_schema():
    """The model's honest input signature: the contract's required columns required, the
    optional ones optional, and numbers of any numeric type (a Parquet file's integer
    quantities are quantities too); ``transactions_frame`` types them."""
    from mlflow.types.schema import AnyType, ColSpec, Schema

    mlflow_types = {pl.String: "string", pl.Datetime("us"): "datetime", pl.Float64: AnyType()}
    return Schema([*(ColSpec(mlflow_types[dtype], name, required=name in REQUIRED_COLUMNS)
                     for name, dtype in TRANSACTION_SCHEMA.items()),
                   ColSpec("string", "status", required=False)])


def save_pipeline(pipeline: ScoringPipeline, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(pipeline, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


# Top-level packages retain had before its one namespace (format 6): a pipeline pickled then
# names classes such as ``models.pipeline.ScoringPipeline``, which would import whatever
# ``models`` the environment has.
_OLD_PACKAGES = frozenset({"features", "models", "training", "decisions", "serving"})


class _PipelineUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module.split(".")[0] in _OLD_PACKAGES:
            raise ValueError(
                f"this model was pickled by a retain older than pipeline format 6 (it names "
                f"'{module}'); this retain reads format {PIPELINE_FORMAT}: retrain it with "
                f"`retain train`")
        return super().find_class(module, name)


def load_pipeline(path: str | Path) -> ScoringPipeline:
    with Path(path).open("rb") as handle:
        pipeline = _PipelineUnpickler(handle).load()
    if not isinstance(pipeline, ScoringPipeline):
        raise TypeError(f"{path} does not hold a retain ScoringPipeline")
    found = vars(pipeline).get("format_version", 1)  # not the class default
    if found != PIPELINE_FORMAT:
        raise ValueError(
            f"this model was fitted by a retain with pipeline format {found}; this retain reads "
            f"format {PIPELINE_FORMAT}: retrain it with `retain train`"
        )
    return pipeline


def transactions_frame(model_input: pd.DataFrame | pl.DataFrame) -> pl.DataFrame:
    """Contract-typed transactions from a pyfunc input frame; optional columns may be absent.
    A ``status`` column is read by the contract's rule (``features.contract.apply_status``:
    cancelled lines left out, returned lines refunds), as the batch and the API read it."""
    frame = model_input if isinstance(model_input, pl.DataFrame) else pl.from_pandas(model_input)
    columns = []
    for name, dtype in TRANSACTION_SCHEMA.items():
        if name in frame.columns:
            columns.append(pl.col(name).cast(dtype))
        elif name == "order_id":
            columns.append(pl.int_range(pl.len()).cast(pl.String).alias(name))
        elif name == "quantity":
            columns.append(pl.lit(1.0).alias(name))
        else:
            columns.append(pl.lit(None, dtype).alias(name))
    if "status" in frame.columns:
        from retain.features.contract import apply_status

        typed = frame.select(*columns, pl.col("status").cast(pl.String))
        return apply_status(typed)[0].drop("status")
    return frame.select(columns)


class RetainModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper; ``params={"as_of": "YYYY-MM-DD"}`` (default: the day after the last
    transaction)."""

    def load_context(self, context: Any) -> None:
        self.pipeline = load_pipeline(context.artifacts[PIPELINE_ARTIFACT])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        transactions = transactions_frame(model_input)
        as_of_text = (params or {}).get("as_of") or ""
        as_of = (
            date.fromisoformat(as_of_text) if as_of_text
            else transactions["ts"].max().date() + timedelta(days=1)  # type: ignore[union-attr]
        )
        return self.pipeline.score(transactions, as_of).to_pandas()
