"""Exporting a model: the bundle as a complete MLflow pyfunc model, swapped into ``models/<dataset>/`` atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, Schema

from leadscore.config import get_settings
from leadscore.scoring.batch import score_output
from leadscore.scoring.bundle import ModelBundle, write_checksums
from leadscore.scoring.meta import BundleMeta, Registered
from leadscore.tracking.store import quiet

PIP_REQUIREMENTS = [
    "lightgbm>=4.3",
    "numpy>=2.0",
    "pandas>=3.0",
    "scikit-learn>=1.5",
    "pyyaml>=6",
    "pydantic>=2.6",
]


class LeadScorePyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]  # mlflow.pyfunc is untyped
    """The bundle as an MLflow pyfunc: strings in, calibrated P(SQL), MQL flag and grade out."""

    def load_context(self, context: Any) -> None:
        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        explain = int((params or {}).get("explain", 0))
        return score_output(self.bundle, model_input, explain=explain)


def input_example(bundle: ModelBundle, frame: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in bundle.fields if c in frame.columns]
    routing = bundle.reader.by if bundle.reader is not None else []  # a routing bundle's segment columns
    extra = [
        c
        for c in dict.fromkeys((bundle.id_column, bundle.encoder.time_col, *routing))
        if c and c in frame.columns and c not in cols
    ]
    example = frame[[*extra, *cols]].head(5).copy()
    for col in example.columns:
        kind = bundle.encoder.field(col).kind if col in bundle.fields else "text"
        if kind == "numeric":
            example[col] = pd.to_numeric(example[col], errors="coerce").astype("float64")
        else:
            example[col] = example[col].map(lambda v: None if v is None or v != v else str(v)).astype(object)
    return example


def signature(bundle: ModelBundle, example: pd.DataFrame) -> ModelSignature:
    """The pyfunc's signature: it takes what the service takes. Every input column is named and
    optional (a lead without ``department`` is scored with a warning, not refused) and of any scalar
    type: MLflow refuses int64 where a double is declared, and a CSV read by pandas gives ids,
    counts and codes as int64 (the bundle's own reader checks each value as the service does)."""
    inferred = infer_signature(example, score_output(bundle, example), params={"explain": 0})
    anything = AnyType()  # type: ignore[no-untyped-call]  # mlflow's AnyType.__init__ is unannotated
    inputs = Schema([ColSpec(anything, str(name), required=False) for name in example.columns])
    return ModelSignature(inputs=inputs, outputs=inferred.outputs, params=inferred.params)


@contextlib.contextmanager
def pyfunc_args(bundle: ModelBundle, example: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """What MLflow needs to write the bundle as a pyfunc model (logged or saved alike)."""
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = bundle.save(Path(tmp) / "bundle")
        yield {
            "python_model": LeadScorePyfunc(),
            "artifacts": {"bundle": str(bundle_dir)},
            "signature": signature(bundle, example),
            "input_example": example,
            "pip_requirements": PIP_REQUIREMENTS,
        }


def save_pyfunc(bundle: ModelBundle, example: pd.DataFrame, path: Path) -> None:
    """Write a complete MLflow model directory (servable with ``mlflow models serve``)."""
    with pyfunc_args(bundle, example) as args, quiet():
        mlflow.pyfunc.save_model(path=str(path), **args)


def challenger_folder(dataset: str) -> str:
    """Where a challenger is exported: beside the champion's folder, never in it."""
    return f"{dataset}@challenger"


def export(
    bundle: ModelBundle,
    example: pd.DataFrame,
    models_dir: str | Path | None = None,
    *,
    folder: str | None = None,
) -> Path:
    """Export to ``models/<dataset>/`` (or ``folder``) atomically: the old model stays until the new one
    is complete."""
    target = Path(models_dir or get_settings().models_dir) / (folder or bundle.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{bundle.name}.", dir=target.parent))
    try:
        save_pyfunc(bundle, example, staging / "model")
        swap_in(staging / "model", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def swap_in(ready: Path, target: Path) -> None:
    """Replace ``target`` by the complete folder ``ready`` (two renames; the old one is kept until then)."""
    old = target.parent / f".{target.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(ready, target)
    if old.exists():
        shutil.rmtree(old)


def export_version(name: str, version: str) -> Path:
    """Export a registered version to ``models/<dataset>/`` as logged, marked with its registry identity."""
    dataset = name.removeprefix("leadscore-")
    target = Path(get_settings().models_dir) / dataset
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dataset}.", dir=target.parent))
    try:
        with quiet():
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{name}/{version}", dst_path=str(staging / "model")
                )
            )
        meta_path = local / "artifacts" / "bundle" / "bundle.json"
        meta = BundleMeta.model_validate_json(meta_path.read_text(encoding="utf-8"))
        mv = MlflowClient().get_model_version(name, version)
        meta.registered = Registered(name=name, version=version, run_id=mv.run_id, aliases=sorted(mv.aliases))
        meta_path.write_text(meta.to_json(), encoding="utf-8")
        write_checksums(meta_path.parent)
        swap_in(local, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
