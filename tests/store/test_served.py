"""Monitoring what was really served, and service levels timed from the score log."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.store.db import open_store
from leadscore.store.scores import first_mql_answers
from tests.helpers import Trained, make_tables, private_env


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_monitor_served_reads_the_score_log_joined_with_decisions(
    trained: Trained, synthetic_dir: Path, tmp_path: Path, database_url: str
) -> None:
    from leadscore.data.synthetic import write_dataset

    later = tmp_path / "later"
    write_dataset(make_tables(3000, 31, drift=True), later)
    with private_env({**trained["env"], "LEADSCORE_DATABASE_URL": database_url}):
        model = str(trained["model_path"])
        code, out = _cli(
            "score", str(later), "--model", model, "--out", str(tmp_path / "s.csv"), "--log", "--json"
        )
        assert code == 0, out
        assert _cli("feedback", "import", str(later))[0] == 0
        code, out = _cli(
            "monitor", "--model", model, "--reference", str(synthetic_dir), "--served", "2000-01-01",
            "--out", str(tmp_path / "served.html"), "--no-log", "--json",
        )  # fmt: skip
    result = json.loads(out)
    # The drifted world converts twice as often as the model expects: its outcomes decide (exit 3).
    assert code == 3 and result["verdict"] == "retrain", out
    assert any(r.startswith("retrain: calibration: ") for r in result["reasons"]), result["reasons"]
    served = result["served"]
    assert (
        served["answers"]
        == served["leads"]
        == len(pd.read_csv(tmp_path / "s.csv").drop_duplicates("lead_id"))
    )
    assert served["leads_with_outcome"] > 300 and served["store"] == open_store(database_url).shown
    (version,) = served["by_model_version"]
    assert version["model_version"].startswith("leadscore-synthetic/") and version["leads"] == served["leads"]
    assert abs(version["mql_share"] - served["mql_share_sent"]) < 1e-12
    assert result["current"]["source"].startswith("served since 2000-01-01")
    assert result["outcomes"]["leads_with_outcome"] == served["leads_with_outcome"]
    assert any(f["field"] == "lead_source" and f["band"] == "act" for f in result["fields"])  # drift seen
    assert (tmp_path / "served.html").is_file()

    # Without logged traffic or without --current/--served: one line, exit 2.
    with private_env({**trained["env"], "LEADSCORE_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"}):
        code, out = _cli(
            "monitor",
            "--model",
            model,
            "--reference",
            str(synthetic_dir),
            "--served",
            "2000-01-01",
            "--no-log",
        )
        assert code == 2 and "no scores logged since 2000-01-01" in out
        code, out = _cli("monitor", "--model", model, "--reference", str(synthetic_dir), "--no-log")
        assert code == 2 and "--current FILE" in out
        code, out = _cli("monitor", "--model", model, "--reference", str(synthetic_dir), "--served", "soon")
        assert code == 2 and "--served: 'soon' is not a date" in out


def test_feedback_sla_takes_mql_times_from_the_score_log(tmp_path: Path, database_url: str) -> None:
    from datetime import datetime

    from leadscore.store.scores import write_scores

    store = open_store(database_url)
    sent = datetime(2026, 3, 2, 9, 0)

    def row(lead: str, mql: bool, at: datetime, demo: int) -> dict[str, object]:
        return {
            "lead_id": lead, "scored_at": at, "model_name": "m", "model_version": "1", "cutoff_version": "c",
            "p_sql": 0.5, "mql": mql, "grade": "A1", "fit": 0.0, "engagement": 0.0, "reasons": [],
            "inputs": {"demo_requests": demo}, "request_id": None, "source": "api",
        }  # fmt: skip

    write_scores(
        store, [row("1", False, sent.replace(hour=8), 1), row("1", True, sent, 1), row("2", True, sent, 0)]
    )
    assert list(first_mql_answers(store)["mql_at"]) == [sent, sent]
    export = tmp_path / "decisions.csv"
    pd.DataFrame(
        {
            "lead_id": [1, 2],
            "decision": ["accepted", "rejected"],
            "reason": [None, "not ICP"],
            "decided_at": ["2026-03-02 09:30", "2026-03-03 12:00"],  # no mql_at in this export
        }
    ).to_csv(export, index=False)
    assert _cli("feedback", "import", str(export), "--store", database_url)[0] == 0
    code, out = _cli("feedback", "sla", "--store", database_url, "--json")
    assert code == 0, out
    report = json.loads(out)
    fast, other = report["lanes"]
    # Lead 1 asked for a demo (the logged fields say so): 30 minutes, within 1 h. Lead 2: 27 h, missed.
    assert (fast["decisions"], fast["within_target"]) == (1, 1)
    assert (other["decisions"], other["within_target"]) == (1, 0)
