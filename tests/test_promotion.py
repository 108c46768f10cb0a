"""Champion/challenger promotion, rollback and a service reload under load, on a real MLflow registry."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.synthetic import write_dataset
from leadscore.scoring.bundle import ModelBundle
from tests.helpers import (
    ADMIN_KEY,
    API_KEY,
    free_port,
    make_tables,
    mlflow_env,
    private_env,
    start_server,
    stop,
    wait_ready,
)

pytestmark = pytest.mark.slow
NAME = "leadscore-synthetic"
# A challenger that cannot see who the lead is or what they looked at: clearly worse.
BLINDFOLD = ["job_title", "seniority", "pricing_page_views_7d", "pricing_page_views_total", "demo_requests"]


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def trained_registry(tmp_path_factory: pytest.TempPathFactory, synthetic_dir: Path) -> Path:
    """A private store with three versions: 1 champion, 2 a worse challenger, 3 as good as 1 (trained
    once; each test gets its own copy)."""
    root = tmp_path_factory.mktemp("registry")
    with private_env(mlflow_env(root)):
        for extra in ([], [a for col in BLINDFOLD for a in ("--exclude", col)], ["--seed", "7"]):
            code, out = cli("train", str(synthetic_dir), "--spec", "synthetic", "--json", *extra)
            assert code == 0, out
    write_dataset(make_tables(4000, 11), root / "recent")
    return root


@pytest.fixture()
def registry(trained_registry: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """This test's own copy of the registry (its store and exported models; the run artifacts they
    point to are only read): what one test promotes or rolls back, the next never sees."""
    root = tmp_path / "registry"
    shutil.copytree(trained_registry, root)
    env = {**mlflow_env(root), "LEADSCORE_USER": "test-reviewer"}
    with private_env(env):
        assert champion() == "1"  # each test starts from the trained state
        yield {"root": root, "env": env, "recent": root / "recent"}


class Stream:
    """Clients posting one lead over and over until stopped, recording every status and version."""

    def __init__(self, url: str, lead: dict[str, object], clients: int) -> None:
        self.url, self.lead = url, lead
        self.statuses: list[int] = []
        self.versions: list[str] = []
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, headers={"X-API-Key": API_KEY}, timeout=30) as c:
            while not self.stop_flag.is_set():
                r = c.post("/v1/score", json=self.lead)
                self.statuses.append(r.status_code)
                if r.status_code == 200:
                    self.versions.append(r.json()["model_version"])

    def stop(self) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join()


def champion() -> str:
    return str(MlflowClient().get_model_version_by_alias(NAME, "champion").version)


def exported_version(registry: dict[str, Any]) -> str:
    bundle = ModelBundle.load(Path(str(registry["root"])) / "models" / "synthetic")
    assert bundle.meta.registered is not None
    return bundle.meta.registered.version


def test_promotion_refused_accepted_forced_and_rolled_back(registry: dict[str, Any]) -> None:
    recent = str(registry["recent"])
    assert champion() == "1"

    code, out = cli("promote", "--challenger", "2", "--data", recent)
    assert code == 1, out
    assert "not promoted" in out and "ROC AUC" in out
    assert champion() == "1"

    code, out = cli("promote", "--challenger", "2", "--force", "  ")
    assert code == 2 and "--force needs a reason" in out

    code, out = cli("promote", "--challenger", f"models:/{NAME}@challenger", "--data", recent, "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["promoted"] and result["champion_before"] == "1" and result["champion_after"] == "3"
    assert result["challenger_metrics"]["roc_auc"] >= result["champion"]["roc_auc"] - 0.005
    assert result["worse"] == []
    assert champion() == "3" and exported_version(registry) == "3"
    tags = MlflowClient().get_model_version(NAME, "3").tags
    assert tags["promoted_by"] == "test-reviewer"
    assert tags["promoted_because"] == "not worse than the champion within tolerance"
    assert tags["previous_champion"] == "1" and tags["promoted_at"].endswith("+00:00")

    code, out = cli(
        "promote", "--challenger", "2", "--force", "sales asked for the blind model", "--by", "ana"
    )
    assert code == 0, out
    tags = MlflowClient().get_model_version(NAME, "2").tags
    assert champion() == "2" and tags["promoted_by"] == "ana"
    assert tags["promoted_because"] == "forced: sales asked for the blind model"

    code, out = cli("promote", "--rollback", "--reason", "MQL->SQL rate fell", "--json")
    assert code == 0, out
    assert json.loads(out)["champion_after"] == "3" and champion() == "3"
    assert MlflowClient().get_model_version(NAME, "2").tags["rolled_back_because"] == "MQL->SQL rate fell"
    assert exported_version(registry) == "3"

    code, out = cli("promote", "--rollback")
    assert code == 0 and champion() == "1"
    code, out = cli("promote", "--rollback")
    assert code == 2 and "no earlier champion" in out and champion() == "1"


def test_running_service_picks_up_a_new_champion_without_dropping_requests(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    env = {**registry["env"], "LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_ADMIN_KEYS": ADMIN_KEY}
    proc = start_server(f"models:/{NAME}@champion", env, port, log=tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    lead = make_tables(4000, 11)["leads"].slice(0, 1).to_pylist()[0]
    lead = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in lead.items()}
    stream: Stream | None = None
    try:
        wait_ready(url, proc)
        with httpx.Client(base_url=url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as c:
            before = c.get("/v1/model").json()["model_version"]
            stream = Stream(url, lead, clients=3)
            time.sleep(0.5)
            code, out = cli("promote", "--challenger", "3", "--data", str(registry["recent"]))
            assert code == 0, out
            assert c.post("/v1/admin/reload").status_code == 200
            middle = c.get("/v1/model").json()["model_version"]
            time.sleep(0.5)
            code, out = cli("promote", "--rollback", "--reason", "back to the first")
            assert code == 0, out
            proc.send_signal(signal.SIGHUP)  # the same reload, by signal
            deadline = time.monotonic() + 30
            while c.get("/v1/model").json()["model_version"] == middle and time.monotonic() < deadline:
                time.sleep(0.1)
            after = c.get("/v1/model").json()["model_version"]
            time.sleep(0.3)
            stream.stop()
            assert c.post("/v1/admin/reload", headers={"X-API-Key": "wrong"}).status_code == 401
            assert (
                c.post("/v1/admin/reload", headers={"X-API-Key": API_KEY}).status_code == 403
            )  # scoring key
    finally:
        if stream is not None:
            stream.stop()
        stop(proc)
    assert (before, middle, after) == (f"{NAME}/1", f"{NAME}/3", f"{NAME}/1")
    assert len(stream.statuses) > 50 and set(stream.statuses) == {200}
    assert {f"{NAME}/1", f"{NAME}/3"} <= set(stream.versions)


def test_several_workers_are_replaced_on_reload_without_dropping_requests(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    env = {**registry["env"], "LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_ADMIN_KEYS": ADMIN_KEY}
    proc = start_server(f"models:/{NAME}@champion", env, port, "--workers", "2", log=tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    lead = {"lead_id": 1, "job_title": "CTO", "employee_count": 300, "demo_requests": 1}
    stream: Stream | None = None
    try:
        wait_ready(url, proc)
        assert champion() == "1"
        stream = Stream(url, lead, clients=2)
        code, out = cli("promote", "--challenger", "3", "--data", str(registry["recent"]))
        assert code == 0, out
        with httpx.Client(base_url=url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as c:
            answer = c.post("/v1/admin/reload")
            assert answer.status_code == 202 and answer.json()["status"] == "reloading workers"
            generation = answer.json()["generation"]
            deadline = time.monotonic() + 60
            status = c.get("/v1/admin/reload/status").json()
            while not status["complete"] and time.monotonic() < deadline:
                time.sleep(0.2)
                status = c.get("/v1/admin/reload/status").json()
            assert status["complete"] and status["generation"] == generation and not status["failed"], status
            assert len(status["workers"]) == 2
            assert {w["model_version"] for w in status["workers"]} == {f"{NAME}/3"}
        seen = stream.versions
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (len(seen) < 40 or set(seen[-40:]) != {f"{NAME}/3"}):
            time.sleep(0.2)
        stream.stop()
    finally:
        if stream is not None:
            stream.stop()
        stop(proc)
    assert set(seen[-40:]) == {f"{NAME}/3"}  # every worker now answers with the new champion
    assert f"{NAME}/1" in seen
    assert len(stream.statuses) > 50 and set(stream.statuses) == {200}
