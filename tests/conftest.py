"""Shared fixtures: a generated folder, the real X Education file, private settings, one trained model."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# `make test` runs two workers on two cores: one compute thread per process (LightGBM, OpenMP,
# BLAS), so that no process's threads spin waiting for a core another process holds (three
# processes of two OpenMP threads each took five times as long). Set before anything loads them;
# servers and kernels the tests start inherit it.
for _name in ("LEADSCORE_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
# Two trials of the capacity search per training, for the module- and session-scoped fixtures too
# (they are set up before any test's own fixtures: a module's trained model ran the full budget,
# 45 s instead of 11 s); the search's own tests run its full budget.
os.environ.setdefault("LEADSCORE_SEARCH_TRIALS", "2")

from leadscore.data.synthetic import write_dataset  # noqa: E402
from tests.helpers import (  # noqa: E402
    XEDUCATION,
    PostgresServer,
    Trained,
    current_contract,
    make_tables,
    mlflow_env,
    private_env,
)


@pytest.fixture(autouse=True)
def _private_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own SQLite store (nothing is written to the checkout's data/) and a small
    capacity search."""
    from leadscore.config import get_settings

    monkeypatch.setenv("LEADSCORE_DATABASE_URL", f"sqlite:///{tmp_path}/store/leadscore.db")
    # Two trials of the capacity search per training keep the suite within its time; the search's
    # own tests run its full budget.
    monkeypatch.setenv("LEADSCORE_SEARCH_TRIALS", "2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (Debian's package; `make test` installs it)."""
    try:
        server = PostgresServer()
    except Exception as exc:  # not skipped: the store's tests must run against PostgreSQL too
        pytest.fail(f"cannot start PostgreSQL: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store on each database the project supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db/leadscore.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


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
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private MLflow store, artifact root and models folder for one test."""
    from leadscore.config import get_settings

    for key, value in mlflow_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, synthetic_dir: Path) -> Trained:
    """One real training run on synthetic data, logged to a private MLflow store (session-wide)."""
    import json

    from typer.testing import CliRunner

    from leadscore.cli import app

    root = tmp_path_factory.mktemp("trained")
    env = {"LEADSCORE_SEARCH_TRIALS": "2", **mlflow_env(root)}
    contract, review_by = current_contract(root)  # never overdue, whatever day the tests run
    with private_env(env):
        result = CliRunner().invoke(
            app, ["train", str(synthetic_dir), "--spec", "synthetic", "--cutoff", str(contract), "--json"]
        )
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
    return {
        "root": root,
        "env": env,
        "payload": payload,
        "model_path": Path(payload["model_path"]),
        "review_by": review_by,
    }


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A local Spark session of two cores for one test module (stopped after it)."""
    import sys

    from leadscore.spark.session import spark_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")  # Debian's, from `make browser`


def chromium_path() -> str:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium not found: run `make browser` (installs Debian's chromium)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=chromium_path(),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
            ],
        )
        yield chromium
        chromium.close()
