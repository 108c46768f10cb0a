"""The MLflow store this project uses: where it is, experiments by name, quiet calls."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from leadscore.config import get_settings
from leadscore.data.sources import process_alive

OWNER_HOST = "leadscore.host"
OWNER_PID = "leadscore.pid"


def configure() -> str:
    """Point MLflow at the project's local store (sqlite + artifacts under mlruns/)."""
    settings = get_settings()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def experiment_id(name: str) -> str:
    client = MlflowClient()
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    root = Path(get_settings().artifact_root).resolve() / name
    return str(client.create_experiment(name, artifact_location=root.as_uri()))


def registered_name(dataset: str) -> str:
    """The registered model of a dataset's lineage: ``leadscore-<dataset>``."""
    return f"leadscore-{dataset}"


def client() -> MlflowClient:
    """A client on the project's store (tracking and registry alike)."""
    uri = configure()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """MLflow prints progress bars and hints on stdout; keep stdout for --json."""
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def owner_tags() -> dict[str, str]:
    """Which process owns a run, so a run left RUNNING by a killed process can be told apart."""
    return {OWNER_HOST: socket.gethostname(), OWNER_PID: str(os.getpid())}


def fail_abandoned_runs(registry: MlflowClient, experiment: str) -> list[str]:
    """End as FAILED the runs of this host whose process is gone (killed with -9 mid-run)."""
    host = socket.gethostname()
    ended = []
    runs = registry.search_runs([experiment], filter_string="attributes.status = 'RUNNING'", max_results=200)
    for run in runs:
        tags = run.data.tags
        if tags.get(OWNER_HOST) != host or not tags.get(OWNER_PID, "").isdigit():
            continue
        if not process_alive(int(tags[OWNER_PID])):
            registry.set_terminated(run.info.run_id, status="FAILED")
            registry.set_tag(run.info.run_id, "leadscore.ended_because", "its process was gone (killed)")
            ended.append(run.info.run_id)
    return ended
