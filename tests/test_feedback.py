"""Sales feedback: strict import, idempotent store, labels for the next training, service levels."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.labels import apply_labels
from leadscore.monitoring.feedback import load_store, sla_report
from leadscore.spec import load_spec


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def export(tmp_path: Path, rows: list[dict[str, object]], name: str = "fb.csv") -> Path:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


ROWS = [
    {
        "lead_id": 1,
        "decision": "Accepted",
        "reason": "",
        "mql_at": "2026-03-02 09:00",
        "decided_at": "2026-03-02 09:40",
        "rep": "Ana",
    },
    {
        "lead_id": 2,
        "decision": "rejected",
        "reason": "Not ICP",
        "mql_at": "2026-03-02 09:00",
        "decided_at": "2026-03-03 12:00",
        "rep": "Ana",
    },
    {
        "lead_id": 3,
        "decision": "REJECT",
        "reason": "dup",
        "mql_at": "2026-03-02 10:00",
        "decided_at": "2026-03-02 20:00",
        "rep": "Ben",
    },
    {
        "lead_id": 4,
        "decision": "accepted",
        "reason": None,
        "mql_at": "2026-03-02 10:00",
        "decided_at": "2026-03-02 13:00",
        "rep": "Ben",
    },
]


def test_import_is_idempotent_and_keeps_every_decision(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    first = export(tmp_path, ROWS)
    code, out = cli("feedback", "import", str(first), "--store", str(store), "--json")
    assert code == 0, out
    assert json.loads(out) == {
        "file": str(first),
        "store": f"sqlite:///{store}",
        "rows_in_file": 4,
        "new": 4,
        "already_known": 0,
        "total": 4,
    }
    code, out = cli("feedback", "import", str(first), "--store", str(store), "--json")
    assert code == 0 and json.loads(out)["new"] == 0 and json.loads(out)["already_known"] == 4
    assert len(load_store(store)) == 4  # nothing added twice

    # A later export repeats two decisions and adds a backward move: lead 1 rejected after acceptance.
    later = export(
        tmp_path,
        [
            *ROWS[:2],
            {
                "lead_id": 1,
                "decision": "rejected",
                "reason": "competitor",
                "mql_at": "2026-03-02 09:00",
                "decided_at": "2026-03-09 10:00",
                "rep": "Ana",
            },
        ],
        "later.csv",
    )
    code, out = cli("feedback", "import", str(later), "--store", str(store), "--json")
    assert json.loads(out)["new"] == 1 and json.loads(out)["total"] == 5
    stored = load_store(store)
    assert len(stored) == 5
    assert sorted(stored["reason"].dropna()) == ["competitor", "duplicate", "not ICP"]
    assert set(stored["decision"]) == {"accepted", "rejected"}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"decision": "maybe"}, "column 'decision', row 2: 'maybe' is not accepted or rejected"),
        (
            {"decision": "rejected", "reason": "too small"},
            "column 'reason', row 2: 'too small' is not a standard reason",
        ),
        ({"decision": "rejected", "reason": ""}, "column 'reason', row 2: a rejection needs a reason"),
        (
            {"decided_at": "yesterday-ish"},
            "column 'decided_at', row 2: 'yesterday-ish' is not a date and time",
        ),
        (
            {"decided_at": "2026-03-01 08:00"},
            "column 'decided_at', row 2: decided before the lead became an MQL",
        ),
    ],
)
def test_bad_feedback_is_refused_with_one_line_and_nothing_written(
    tmp_path: Path, row: dict[str, object], message: str
) -> None:
    store = tmp_path / "store.db"
    path = export(tmp_path, [{**ROWS[0], **row}])
    code, out = cli("feedback", "import", str(path), "--store", str(store))
    assert code == 2
    line = out.strip()
    assert line.startswith(f"error: {path}: {message}") and "\n" not in line
    assert not store.exists()


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = export(tmp_path, [{k: v for k, v in ROWS[0].items() if k != "decided_at"}])
    code, out = cli("feedback", "import", str(path), "--store", str(tmp_path / "s.db"))
    assert code == 2 and "column 'decided_at' is missing" in out


def test_decisions_become_labels_latest_decision_wins(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    cli("feedback", "import", str(export(tmp_path, ROWS)), "--store", str(store))
    later = [
        {
            "lead_id": 4,
            "decision": "rejected",
            "reason": "bad data",
            "mql_at": "2026-03-02 10:00",
            "decided_at": "2026-03-05 10:00",
        }
    ]
    cli("feedback", "import", str(export(tmp_path, later, "l.csv")), "--store", str(store))
    spec = load_spec("synthetic")
    frame = pd.DataFrame({"lead_id": [1, 2, 3, 4, 5], "sql_within_90d": [0, 1, 1, 1, 0]})
    labelled, changed = apply_labels(frame, spec, load_store(store))
    assert labelled["sql_within_90d"].tolist() == [1, 0, 0, 0, 0]
    assert changed == 4  # lead 5 has no decision and keeps its label


def test_service_levels_against_one_hour_and_a_day(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    cli("feedback", "import", str(export(tmp_path, ROWS)), "--store", str(store))
    leads = pd.DataFrame(
        {"lead_id": [1, 2, 3, 4], "demo_requests": [1, 0, 0, 0], "pricing_page_views_7d": [0, 0, 2, 0]}
    )
    report = sla_report(load_store(store), leads, load_spec("synthetic"))
    fast, other = report["lanes"]
    # Lead 1 (demo) answered in 40 min: met. Lead 3 (pricing) in 10 h: missed the 1 h target.
    assert (fast["decisions"], fast["within_target"]) == (2, 1)
    # Lead 2 in 27 h: missed; lead 4 in 3 h: met.
    assert (other["decisions"], other["within_target"]) == (2, 1)
    assert other["median_hours"] == pytest.approx(15.0)
    assert report["share_within_target"] == 0.5
    assert {r["rep"]: r["decisions"] for r in report["by_rep"]} == {"Ana": 2, "Ben": 2}
    code, out = cli("feedback", "sla", "--store", str(store), "--json")
    assert code == 0 and json.loads(out)["decisions"] == 4


def test_generated_feedback_imports_and_trains_as_labels(
    synthetic_dir: Path, tmp_path: Path, isolated_settings: Path
) -> None:
    store = tmp_path / "store.db"
    code, out = cli("feedback", "import", str(synthetic_dir), "--store", str(store), "--json")
    assert code == 0, out
    summary = json.loads(out)
    assert summary["new"] == summary["rows_in_file"] > 100
    reasons = set(load_store(store)["reason"].dropna())
    assert reasons == {"not ICP", "duplicate", "bad data", "student/research", "competitor"}
    trained = CliRunner().invoke(
        app, ["train", str(synthetic_dir), "--spec", "synthetic", "--feedback", str(store), "--json"]
    )
    assert trained.exit_code == 0, trained.output
    notes = json.loads(trained.stdout)["notes"]
    assert any(n.startswith(f"sales feedback from {store} set the label of ") for n in notes)


def test_the_old_parquet_store_is_refused_and_migrated_once(tmp_path: Path) -> None:
    old = tmp_path / "feedback.parquet"
    frame = pd.read_csv(export(tmp_path, ROWS))
    frame.to_parquet(old)
    code, out = cli("feedback", "import", str(export(tmp_path, ROWS)), "--store", str(old))
    assert code == 2 and f"leadscore store migrate-feedback {old}" in out and "\n" not in out.strip()
    db = tmp_path / "leadscore.db"
    code, out = cli("store", "migrate-feedback", str(old), "--store", str(db), "--json")
    assert code == 0 and json.loads(out)["new"] == 4, out
    code, out = cli("store", "migrate-feedback", str(old), "--store", str(db), "--json")
    assert code == 0 and json.loads(out)["new"] == 0 and json.loads(out)["total"] == 4
