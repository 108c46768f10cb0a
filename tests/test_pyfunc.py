"""The exported MLflow model takes what the service takes: a CSV read by pandas, a partial lead,
and ``mlflow models serve``; its answers are the bundle's (issue 29, item 19)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from leadscore.scoring.bundle import ModelBundle
from tests.helpers import Trained, free_port, make_leads, stop


def test_the_pyfunc_scores_a_csv_read_by_pandas_as_the_bundle_does(trained: Trained, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    make_leads(200, 61, fault_rate=0.0).to_csv(path, index=False)
    frame = pd.read_csv(path)  # what a data scientist types first: ids and counts come as int64
    assert frame["lead_id"].dtype == np.int64 and frame["demo_requests"].dtype == np.int64
    model = mlflow.pyfunc.load_model(str(trained["model_path"]))
    out = model.predict(frame)
    bundle = ModelBundle.load(trained["model_path"])
    np.testing.assert_allclose(out["p_sql"].to_numpy(), bundle.score_frame(frame).p_sql, atol=1e-6)
    texts = frame.assign(lead_id=frame["lead_id"].astype(str))  # ids as text: the same scores
    np.testing.assert_allclose(model.predict(texts)["p_sql"].to_numpy(), out["p_sql"].to_numpy())


def test_the_pyfunc_scores_a_partial_lead_as_the_service_does(trained: Trained) -> None:
    lead = {"lead_id": 7, "job_title": "CTO", "employee_count": 300, "demo_requests": 1}  # no department
    model = mlflow.pyfunc.load_model(str(trained["model_path"]))
    out = model.predict(pd.DataFrame([lead]))
    answer = ModelBundle.load(trained["model_path"]).score_record(lead)
    assert out["p_sql"].iloc[0] == pytest.approx(answer["p_sql"], abs=1e-6)
    assert bool(out["mql"].iloc[0]) == answer["mql"] and out["grade"].iloc[0] == answer["grade"]


@pytest.mark.slow
def test_mlflow_models_serve_answers_as_the_bundle_does(trained: Trained, tmp_path: Path) -> None:
    port = free_port()
    bin_dir = Path(sys.executable).parent  # mlflow execs uvicorn from the PATH
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [str(bin_dir / "mlflow"), "models", "serve", "-m", str(trained["model_path"]), "--env-manager",
         "local", "-p", str(port), "-h", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        env={**os.environ, **trained["env"], "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    leads = make_leads(20, 62, fault_rate=0.0)
    leads = leads.drop(columns=["department"])  # a partial export
    body = {"dataframe_split": json.loads(leads.to_json(orient="split", index=False, date_format="iso"))}
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow models serve did not start"
            time.sleep(0.5)
        answer = httpx.post(f"{url}/invocations", json=body, timeout=60)
        assert answer.status_code == 200, answer.text[:500]
    finally:
        stop(proc)
        log.close()
    served = pd.DataFrame(answer.json()["predictions"])
    bundle = ModelBundle.load(trained["model_path"])
    expected = bundle.score_frame(
        pd.read_json(io.StringIO(leads.to_json(orient="records", date_format="iso")))
    )
    np.testing.assert_allclose(served["p_sql"].to_numpy(), expected.p_sql, atol=1e-6)
