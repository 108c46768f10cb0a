"""Shared fixtures: seeded factories for synthetic leads and the real X Education file."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
XEDUCATION = SHARED_DATA / "xeducation" / "Leads.csv"


@functools.lru_cache(maxsize=8)
def make_tables(n: int, seed: int, fault_rate: float = 0.02, drift: bool = False) -> dict[str, pa.Table]:
    """Seeded synthetic tables (cached: generation is deterministic)."""
    return generate(GeneratorConfig(leads=n, seed=seed, fault_rate=fault_rate, drift=drift))


def make_leads(n: int, seed: int, fault_rate: float = 0.02, drift: bool = False) -> pd.DataFrame:
    """A fresh copy of the seeded leads table."""
    return make_tables(n, seed, fault_rate, drift)["leads"].to_pandas()


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generator folder of 6,000 leads (Parquet), written once per session."""
    out = tmp_path_factory.mktemp("synthetic")
    write_dataset(make_tables(6000, 7), out)
    return out


@pytest.fixture(scope="session")
def xeducation_path() -> Path:
    if not XEDUCATION.is_file():
        pytest.fail(f"real data missing: {XEDUCATION} (tests on real data read ../shared/data)")
    return XEDUCATION


@pytest.fixture()
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private MLflow store, artifact root and models folder for one test."""
    from leadscore.config import get_settings

    monkeypatch.setenv("LEADSCORE_TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    monkeypatch.setenv("LEADSCORE_ARTIFACT_ROOT", str(tmp_path / "mlruns" / "artifacts"))
    monkeypatch.setenv("LEADSCORE_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@contextlib.contextmanager
def private_env(env: dict[str, str]) -> Iterator[None]:
    """Set LEADSCORE_* variables (a private MLflow store ...) for a block, then restore them."""
    import os

    from leadscore.config import get_settings

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, synthetic_dir: Path) -> dict[str, object]:
    """One real training run on synthetic data, logged to a private MLflow store (session-wide)."""
    import json

    from typer.testing import CliRunner

    from leadscore.cli import app

    root = tmp_path_factory.mktemp("trained")
    env = {
        "LEADSCORE_TRACKING_URI": f"sqlite:///{root}/mlruns/mlflow.db",
        "LEADSCORE_ARTIFACT_ROOT": str(root / "mlruns" / "artifacts"),
        "LEADSCORE_MODELS_DIR": str(root / "models"),
    }
    with private_env(env):
        result = CliRunner().invoke(app, ["train", str(synthetic_dir), "--spec", "synthetic", "--json"])
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
    return {"root": root, "env": env, "payload": payload, "model_path": Path(payload["model_path"])}
