"""The notebooks run top to bottom on small synthetic data (a failing cell fails the suite)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

import leadscore
from tests.helpers import mlflow_env

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
pytestmark = pytest.mark.slow


def test_the_three_notebooks_are_there_and_stored_without_outputs() -> None:
    assert [p.name for p in NOTEBOOKS] == ["01-retrain.ipynb", "02-explain.ipynb", "03-cutoff.ipynb"]
    for path in NOTEBOOKS:
        book = json.loads(path.read_text())
        for cell in book["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
                for line in (
                    cell["source"].splitlines() if isinstance(cell["source"], str) else cell["source"]
                ):
                    if line.startswith(("import ", "from ")):
                        # Only the public API: `from leadscore import ...` of names in leadscore.__all__.
                        assert line.split()[1] == "leadscore", f"{path.name}: {line}"
                        names = line.partition(" import ")[2].replace(",", " ").split()
                        assert set(names) <= set(leadscore.__all__), f"{path.name}: {line}"


def test_the_notebooks_run_top_to_bottom(tmp_path: Path) -> None:
    """Each notebook in a kernel of its own, with a private MLflow store, models folder and
    database; the three run side by side (kernels are processes, and the suite otherwise keeps
    about one of two cores busy: one after another they took 70 s of the suite's time)."""
    books, envs, clients = {}, {}, {}
    for path in NOTEBOOKS:
        home = tmp_path / path.stem
        home.mkdir()
        envs[path] = {
            **os.environ,
            **mlflow_env(home),
            "LEADSCORE_DATABASE_URL": f"sqlite:///{home}/leadscore.db",
            "MPLBACKEND": "Agg",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            # One thread each (as every process of the suite, tests/conftest.py): three kernels
            # whose OpenMP threads spun waiting for each other on two cores took five times as long.
            "LEADSCORE_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
        }
        books[path] = nbformat.read(path, as_version=4)
        clients[path] = NotebookClient(
            books[path], timeout=600, kernel_name="python3", resources={"metadata": {"path": str(home)}}
        )

    async def timed(path: Path) -> float:
        start = time.perf_counter()
        await clients[path].async_execute(env=envs[path])  # the kernel's environment
        return time.perf_counter() - start

    async def all_of_them() -> list[float | BaseException]:
        return await asyncio.gather(*(timed(p) for p in NOTEBOOKS), return_exceptions=True)

    # on a loop of its own, in a thread: an earlier test may have left one running in this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        outcomes = pool.submit(asyncio.run, all_of_them()).result()
    for path, outcome in zip(NOTEBOOKS, outcomes, strict=True):
        assert not isinstance(outcome, BaseException), f"{path.name}: {outcome}"
        print(f"{path.name}: {outcome:.1f} s")
        errors = [
            o for c in books[path].cells for o in c.get("outputs", []) if o.get("output_type") == "error"
        ]
        assert errors == [], path.name
        # On the demo data the runs went to a temporary workspace, which the last cell removed: the
        # notebook's folder holds only what was there before, and the workspace is gone.
        home = tmp_path / path.stem
        assert sorted(p.name for p in home.iterdir()) == ["mlruns"]  # the store made before it ran
        said = "".join(o.get("text", "") for o in books[path].cells[-1].get("outputs", []))
        said += "".join(
            str(o.get("data", {}).get("text/plain", "")) for o in books[path].cells[-1].get("outputs", [])
        )
        removed = said.strip().strip("'").removeprefix("removed ")
        assert removed.startswith(tempfile.gettempdir()) and not Path(removed).exists(), said
        store = MlflowClient(tracking_uri=envs[path]["LEADSCORE_TRACKING_URI"])
        assert not store.search_runs([e.experiment_id for e in store.search_experiments()]), path.name
    figures = [
        o for c in books[NOTEBOOKS[1]].cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert len(figures) == 1  # the SHAP beeswarm shows as an image, not as "<Figure size ...>"


def test_a_notebook_runs_on_your_own_data_from_its_parameters_cell(
    tmp_path: Path, synthetic_dir: Path
) -> None:
    """As papermill would: the cell tagged ``parameters`` set to a data folder of one's own; the runs
    land in the project's MLflow store (here the test's) and nothing of the data is removed."""
    path = NOTEBOOKS[1]  # 02-explain
    book = nbformat.read(path, as_version=4)
    (cell,) = [c for c in book.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    cell.source = f'DATA = "{synthetic_dir}"\nSPEC = "synthetic"'
    home = tmp_path / "own"
    home.mkdir()
    env = {
        **os.environ,
        **mlflow_env(home),
        "LEADSCORE_DATABASE_URL": f"sqlite:///{home}/leadscore.db",
        "MPLBACKEND": "Agg",
        "LEADSCORE_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    before = sorted(p.name for p in synthetic_dir.iterdir())
    client = NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(home)}}
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, client.async_execute(env=env)).result()
    store = MlflowClient(tracking_uri=env["LEADSCORE_TRACKING_URI"])
    assert store.search_runs([e.experiment_id for e in store.search_experiments()])  # the project's store
    last = "".join(str(o.get("data", {}).get("text/plain", "")) for o in book.cells[-1].get("outputs", []))
    assert "nothing temporary to remove" in last and sorted(p.name for p in synthetic_dir.iterdir()) == before
