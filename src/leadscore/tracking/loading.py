"""Loading a model from wherever it lives: a bundle folder, ``models/<dataset>/`` or an MLflow URI."""

from __future__ import annotations

from pathlib import Path

from leadscore.errors import UserError
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.meta import Registered


def is_mlflow_uri(source: str | Path) -> bool:
    text = str(source)
    return "://" in text or text.startswith(("models:/", "runs:/"))


def load_bundle(source: str | Path) -> ModelBundle:
    """Load a model: a folder as is; a ``models:/name@alias`` URI pinned to its version before download.

    The registry identity travels in the bundle (``meta.registered``), so every answer names the
    version that gave it even after the alias has moved on.
    """
    if not is_mlflow_uri(source):
        return ModelBundle.load(source)
    text = str(source)
    registered = registry_identity(text)
    pinned = f"models:/{registered.name}/{registered.version}" if registered else text
    bundle = ModelBundle.load(_download(pinned))
    if registered is not None:
        bundle.meta.registered = registered
    return bundle


def _download(uri: str) -> Path:
    import mlflow
    from mlflow.exceptions import MlflowException

    from leadscore.tracking.store import configure, quiet

    configure()
    try:
        with quiet():
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri)
    except MlflowException as exc:
        raise UserError(f"{uri}: cannot load from MLflow ({str(exc).splitlines()[0]})") from exc
    return Path(local)


def registry_identity(uri: str) -> Registered | None:
    """Name, version, run and aliases of a ``models:/name/N`` or ``models:/name@alias`` URI."""
    if not uri.startswith("models:/"):
        return None
    from mlflow.exceptions import MlflowException

    from leadscore.tracking.store import client

    registry = client()
    ref = uri.removeprefix("models:/").rstrip("/")
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = registry.get_model_version_by_alias(name, alias)
        else:
            name, _, version = ref.rpartition("/")
            if not version.isdigit():
                return None
            mv = registry.get_model_version(name, version)
    except MlflowException:
        return None
    return Registered(name=name, version=str(mv.version), run_id=mv.run_id, aliases=sorted(mv.aliases))
