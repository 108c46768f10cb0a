"""Lineages: one registered model per dataset; a model of different data never joins another's line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from leadscore.errors import UserError
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.meta import BundleMeta
from leadscore.spec import DatasetSpec
from leadscore.tracking.champions import champion_version
from leadscore.tracking.store import client, quiet, registered_name

LINEAGE_TAG = "leadscore.lineage"
MIN_SHARED_FIELDS = 0.5  # of the fields of both models together


def lineage_of(bundle: ModelBundle) -> dict[str, Any]:
    """What makes two models comparable: the same id, the same label rule and mostly the same fields."""
    spec = bundle.spec
    return {
        "id": spec.id,
        "label": spec.label.column,
        "positive": sorted(str(v) for v in spec.label.positive),
        "fields": sorted(bundle.fields),
    }


def check_lineage(registry: MlflowClient, name: str, bundle: ModelBundle) -> None:
    """Refuse, in one line, to register a model whose data differs from its lineage's champion."""
    _refuse_other_data(registry, name, lineage_of(bundle))


def check_spec_lineage(spec: DatasetSpec) -> None:
    """The same check before training, on what the spec already says (id and label), to fail fast."""
    ours = {
        "id": spec.id,
        "label": spec.label.column,
        "positive": sorted(str(v) for v in spec.label.positive),
        "fields": None,
    }
    _refuse_other_data(client(), registered_name(spec.name), ours)


def _refuse_other_data(registry: MlflowClient, name: str, ours: dict[str, Any]) -> None:
    try:
        version = champion_version(registry, name)
    except MlflowException:
        return
    if version is None:
        return
    theirs = _champion_lineage(registry, name, version)
    why = differences(theirs, ours)
    if why:
        raise UserError(
            f"{name} holds models of other data ({why}, against champion version {version}); "
            f"name this dataset with --name NAME (it is then registered as leadscore-NAME)"
        )


def differences(theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    """Why two lineages differ, in words, or an empty string when they are the same data."""
    if theirs["label"] != ours["label"] or theirs["positive"] != ours["positive"]:
        return f"label '{ours['label']}' against '{theirs['label']}'"
    if theirs["id"] != ours["id"]:
        return f"id column '{ours['id']}' against '{theirs['id']}'"
    if ours["fields"] is None:  # not trained yet: fields unknown
        return ""
    a, b = set(theirs["fields"]), set(ours["fields"])
    shared = len(a & b) / max(len(a | b), 1)
    if shared < MIN_SHARED_FIELDS:
        return f"only {len(a & b)} of {len(a | b)} fields in common"
    return ""


def record_lineage(client: MlflowClient, name: str, version: str, bundle: ModelBundle) -> None:
    client.set_model_version_tag(name, version, LINEAGE_TAG, json.dumps(lineage_of(bundle)))


def _champion_lineage(client: MlflowClient, name: str, version: str) -> dict[str, Any]:
    tags = client.get_model_version(name, version).tags
    if LINEAGE_TAG in tags:
        return dict(json.loads(tags[LINEAGE_TAG]))
    # A champion registered before lineages were recorded: read its bundle.
    with tempfile.TemporaryDirectory() as tmp, quiet():
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=tmp
            )
        except MlflowException as exc:
            raise UserError(f"{name}: cannot read champion version {version} ({exc})") from exc
        meta = BundleMeta.model_validate_json(
            (Path(local) / "artifacts" / "bundle" / "bundle.json").read_text(encoding="utf-8")
        )
    spec = meta.spec
    label = spec.get("label", {})
    return {
        "id": spec.get("id"),
        "label": label.get("column"),
        "positive": sorted(str(v) for v in label.get("positive", [1])),
        "fields": sorted(f["name"] for f in meta.encoder.get("fields", [])),
    }
