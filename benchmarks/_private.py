"""The settings of a benchmark's private workspace: its own MLflow store, artifacts and models."""

from __future__ import annotations

import os
from pathlib import Path


def private_env(root: Path, **settings: str) -> dict[str, str]:
    """This process's environment with an MLflow store, artifact root and models folder under
    ``root``, plus ``settings`` (``LEADSCORE_*`` names)."""
    return {
        **os.environ,
        "LEADSCORE_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "LEADSCORE_ARTIFACT_ROOT": str(root / "artifacts"),
        "LEADSCORE_MODELS_DIR": str(root / "models"),
        **settings,
    }
