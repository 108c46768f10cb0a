"""The HTML reports, rendered in headless Chromium: no errors, nothing fetched, the expected texts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.scoring.bundle import ModelBundle
from tests.helpers import OpenPage, Page, Trained, make_leads

pytestmark = pytest.mark.e2e


def run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_clean(page: Page) -> None:
    assert page.console_errors == []
    assert page.failed_requests == []
    assert page.outside_requests == []
    shot = page.screenshot
    assert shot.stat().st_size > 20_000  # a real rendering, not a blank page
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def an_mql(trained: Trained, synthetic_dir: Path) -> tuple[str, dict[str, Any]]:
    """The id and the scored answer of the highest-scored lead of the last week (an MQL)."""
    bundle = ModelBundle.load(trained["model_path"])
    leads = pd.read_parquet(synthetic_dir / "leads.parquet")
    scored = bundle.score_frame(leads)
    best = int(scored.p_sql.argmax())
    assert scored.mql[best]
    return str(leads["lead_id"].iloc[best]), bundle.score_record(leads.iloc[best].to_dict(), explain=5)


def test_lead_report_shows_score_reasons_activity_and_response_time(
    trained: Trained, synthetic_dir: Path, tmp_path: Path, open_page: OpenPage
) -> None:
    lead_id, answer = an_mql(trained, synthetic_dir)
    out = tmp_path / "lead.html"
    run(
        "report",
        "lead",
        "--model",
        str(trained["model_path"]),
        "--data",
        str(synthetic_dir),
        "--lead-id",
        lead_id,
        "--out",
        str(out),
    )
    page = open_page(out)
    assert_clean(page)
    text = page.text
    assert f"Lead {lead_id}" in text and "MQL" in text
    assert f"{answer['p_sql']:.1%}" in text  # the same score as the service gives
    assert answer["grade"] in text
    for reason in answer["reasons"]["positive"] + answer["reasons"]["negative"]:
        assert reason["text"] in text
    assert "Suggested talking points" in text and "Recent activity" in text
    assert "In the last 30 days" in text  # the best-scored MQL was active: its activity is told
    phrases = {"1h": "within 1 hour", "24h": "within 24 hours"}
    said = phrases.pop(answer["respond_within"])  # the service level the service answered, only it
    assert said in text and all(other not in text for other in phrases.values())
    assert page.svg_count >= 2  # the score gauge and the reasons chart
    html = out.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "first score" in text  # nothing in the score log yet

    # Scored lower last week (in the store's score log): the report shows the trend.
    from datetime import datetime

    from leadscore.store.db import open_store
    from leadscore.store.scores import write_scores

    before = max(0.0, float(answer["p_sql"]) - 0.2)
    row = {
        "lead_id": lead_id, "scored_at": datetime(2026, 11, 17, 9, 0), "model_name": "synthetic",
        "model_version": "1", "cutoff_version": "c", "p_sql": before, "mql": False, "grade": "C3",
        "fit": 0.0, "engagement": 0.0, "reasons": [], "inputs": {}, "request_id": None, "source": "api",
    }  # fmt: skip
    write_scores(open_store(), [row])
    run("report", "lead", "--model", str(trained["model_path"]), "--data", str(synthetic_dir),
        "--lead-id", lead_id, "--out", str(out))  # fmt: skip
    text = open_page(out).text
    assert "improving" in text and f"was {before:.1%} (C3) on 2026-11-17" in text
    assert "crossed the MQL cutoff" in text


def test_lead_report_escapes_crm_text(
    trained: Trained, synthetic_dir: Path, tmp_path: Path, open_page: OpenPage
) -> None:
    leads = pd.read_parquet(synthetic_dir / "leads.parquet").head(50)
    leads["job_title"] = leads["job_title"].astype("object")
    leads.loc[0, "job_title"] = "<script>alert('x')</script><img src=http://example.com/x.png>"
    data = tmp_path / "leads.csv"
    leads.to_csv(data, index=False)
    out = tmp_path / "lead.html"
    run(
        "report",
        "lead",
        "--model",
        str(trained["model_path"]),
        "--data",
        str(data),
        "--lead-id",
        str(leads["lead_id"].iloc[0]),
        "--out",
        str(out),
    )
    page = open_page(out)
    assert_clean(page)  # the markup stayed text: no script ran, nothing was fetched
    assert "<script>alert('x')</script>" in page.text
    assert "The data has no event history" in page.text


def test_the_specs_display_fields_name_the_lead_and_are_never_learned(
    trained: Trained, synthetic_dir: Path, tmp_path: Path, open_page: OpenPage
) -> None:
    """``display: [first_name, last_name, company_name]``: the lead report's heading and the queue
    name the person and the company (escaped), and no display field can be a feature."""
    from leadscore.scoring.bundle import ModelBundle
    from leadscore.spec import DatasetSpec

    bundle = ModelBundle.load(trained["model_path"])
    display = ["first_name", "last_name", "company_name"]
    spec = {**bundle.spec.model_dump(mode="json"), "display": display}
    shown = ModelBundle(bundle.meta.model_copy(update={"spec": spec}), bundle.booster_text).save(
        tmp_path / "m"
    )
    leads = pd.read_parquet(synthetic_dir / "leads.parquet").head(300)
    leads = leads.assign(first_name="Dana", last_name="Ortiz", company_name="Acme <b>GmbH</b>")
    data = tmp_path / "leads.csv"
    leads.to_csv(data, index=False)
    lead_id = str(leads["lead_id"].iloc[0])
    out = tmp_path / "lead.html"
    run("report", "lead", "--model", str(shown), "--data", str(data), "--lead-id", lead_id, "--out", str(out))
    page = open_page(out)
    assert_clean(page)
    assert f"Dana Ortiz · Acme <b>GmbH</b> lead {lead_id}" in page.text  # the markup stayed text
    queue = tmp_path / "queue.html"
    run("report", "queue", "--model", str(shown), "--data", str(data), "--days", "400", "--out", str(queue))
    assert "Dana Ortiz · Acme <b>GmbH</b>" in open_page(queue).text
    fields = {**bundle.spec.model_dump(), "display": ["industry"]}
    with pytest.raises(ValueError, match=r"display\[0\]: 'industry' is also a feature"):
        DatasetSpec.model_validate(fields)


def test_queue_lists_mqls_best_first_with_reasons(
    trained: Trained, synthetic_dir: Path, tmp_path: Path, open_page: OpenPage
) -> None:
    out = tmp_path / "queue.html"
    summary = run(
        "report",
        "queue",
        "--model",
        str(trained["model_path"]),
        "--data",
        str(synthetic_dir),
        "--days",
        "14",
        "--out",
        str(out),
    )
    assert int(summary["mql"]) > 0
    page = open_page(out)
    assert_clean(page)
    assert "Today's MQL queue" in page.text and "leads scored" in page.text
    rows = [line for line in page.text.splitlines() if "%" in line and "\t" in line]
    scores = [float(cell[:-1]) for line in rows for cell in line.split("\t") if cell.endswith("%")]
    assert len(scores) == summary["mql"]
    assert scores == sorted(scores, reverse=True)
    assert "\tnew\t" in page.text and "improving" not in page.text  # nothing logged yet

    # Every lead was logged at 1% last week: the queue shows each MQL's trend.
    from datetime import datetime

    from leadscore.data.sources import read_table
    from leadscore.store.db import open_store
    from leadscore.store.scores import write_scores

    ids = read_table(synthetic_dir)["lead_id"].astype(str).unique()
    rows_logged = [
        {"lead_id": i, "scored_at": datetime(2026, 11, 17), "model_name": "synthetic", "model_version": "1",
         "cutoff_version": "c", "p_sql": 0.01, "mql": False, "grade": "D4", "fit": 0.0, "engagement": 0.0,
         "reasons": [], "inputs": {}, "request_id": None, "source": "batch"}
        for i in ids
    ]  # fmt: skip
    write_scores(open_store(), rows_logged)
    run("report", "queue", "--model", str(trained["model_path"]), "--data", str(synthetic_dir),
        "--days", "14", "--out", str(out))  # fmt: skip
    text = open_page(out).text
    assert text.count("improving (was 1.0%)") == len(scores) and "\tnew\t" not in text


def test_model_card_covers_the_quarterly_review(
    trained: Trained, tmp_path: Path, open_page: OpenPage
) -> None:
    out = tmp_path / "model.html"
    run("report", "model", "--model", str(trained["model_path"]), "--out", str(out))
    page = open_page(out)
    assert_clean(page)
    text = page.text
    for heading in (
        "Data and its validation",
        "Metrics against the baselines",
        "Calibration",
        "The cutoff contract",
        "What drives the score (global SHAP)",
        "Columns kept out",
    ):
        assert heading in text
    assert "points model" in text and "logistic regression" in text
    assert "call_duration_sec" in text and "leaks the outcome" in text
    payload = trained["payload"]
    assert payload["cutoff"]["review_by"] in text
    assert f"{payload['metrics']['roc_auc']:.3f}" in text
    assert page.svg_count >= 3  # calibration, gains, SHAP


def test_model_card_is_logged_to_the_mlflow_run(trained: Trained, tmp_path: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(trained["env"]["LEADSCORE_TRACKING_URI"])
    local = mlflow.artifacts.download_artifacts(
        run_id=trained["payload"]["run_id"],
        artifact_path="model_card.html",
        dst_path=str(tmp_path),
    )
    html = Path(local).read_text()
    assert "Model card: synthetic" in html and "The cutoff contract" in html


def test_report_errors_are_one_line(trained: Trained, synthetic_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lead.html"
    result = CliRunner().invoke(
        app,
        [
            "report",
            "lead",
            "--model",
            str(trained["model_path"]),
            "--data",
            str(synthetic_dir),
            "--lead-id",
            "no-such-lead",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {synthetic_dir}: no lead with lead_id = no-such-lead"
    assert not out.exists()
    result = CliRunner().invoke(
        app, ["report", "model", "--model", str(trained["model_path"]), "--out", str(tmp_path / "card.txt")]
    )
    assert result.exit_code == 2 and "must end in .html" in result.output


def test_monitor_report_shows_the_verdict_and_drift(
    trained: Trained, synthetic_dir: Path, tmp_path: Path, open_page: OpenPage
) -> None:
    from leadscore.data.synthetic import write_dataset
    from leadscore.monitoring.monitor import monitor
    from leadscore.reports.html import monitor_report, write_html
    from tests.helpers import make_tables

    write_dataset(make_tables(3000, 12, drift=True), tmp_path / "drifted")
    bundle = ModelBundle.load(trained["model_path"])
    result = monitor(bundle, synthetic_dir, tmp_path / "drifted")
    out = write_html(monitor_report(bundle, result), tmp_path / "monitor.html")
    page = open_page(out)
    assert_clean(page)
    # The drifted period is caught (a watch or a retrain: its matured outcomes' call) and named.
    assert result["verdict"] != "ok" and f"Verdict: {result['verdict']}" in page.text
    assert "lead_source" in page.text
    assert "AI Assistant" in page.text and "Sources by SQL share" in page.text
    assert page.svg_count >= 1


def test_values_are_formatted_for_people() -> None:
    from leadscore.reports.html import human_value

    assert human_value("days_since_last_activity", "numeric", "0.004") == "within the hour"
    assert human_value("days_since_last_activity", "numeric", "0.25") == "6 hours ago"
    assert human_value("days_since_last_activity", "numeric", "12.4") == "12 days ago"
    assert human_value("employee_count", "numeric", "12000") == "12,000"
    assert human_value("web_visits_30d", "numeric", "3") == "3"
    assert human_value("Page Views Per Visit", "numeric", "2.3333") == "2.33"
    assert human_value("industry", "categorical", "Software") == "Software"


def test_the_lead_report_shows_no_raw_model_values(trained: Trained, tmp_path: Path) -> None:
    from leadscore.reports.html import lead_context

    leads = make_leads(50, 77)
    leads.loc[0, "days_since_last_activity"] = 0.004
    src = tmp_path / "leads.parquet"
    leads.to_parquet(src)
    bundle = ModelBundle.load(trained["model_path"])
    context = lead_context(bundle, src, str(leads["lead_id"].iloc[0]))
    shown = {f["label"]: f["value"] for f in context["engagement_fields"]}
    assert shown["Last activity"] == "within the hour"
    texts = [
        r["text"] for r in context["result"]["reasons"]["positive"] + context["result"]["reasons"]["negative"]
    ]
    assert not any("0.0" in t for t in texts), texts


def test_the_activity_summary_reads_a_crms_own_event_types() -> None:
    """A HubSpot-style log (PAGE_VIEW, FORM_SUBMIT): the summary counts what the lead did in the
    spec's words or readable ones, never "opened emails only" for a lead with forms and page views."""
    from leadscore.reports.activity import activity, activity_summary

    day = 86_400_000
    events = pd.DataFrame(
        {
            "event_type": ["PAGE_VIEW", "PAGE_VIEW", "FORM_SUBMIT", "PAGE_VIEW", "email_open"],
            "t_ms": [10 * day, 11 * day, 12 * day, 13 * day, 14 * day],
            "funnel_stage": [None] * 5,
            "content_title": [None] * 5,
        }
    ).sort_values("t_ms", ascending=False)
    said = activity_summary(events, 20 * day)
    assert said == "In the last 30 days: page view 3 times, form submit once."
    labelled = activity_summary(events, 20 * day, {"FORM_SUBMIT": "Filled out a form"})
    assert labelled == "In the last 30 days: page view 3 times, filled out a form once."
    assert [a.text for a in activity(events)][:3] == ["Opened a marketing email", "Page view", "Form submit"]
    only_mail = events.loc[events["event_type"] == "email_open"]
    assert activity_summary(only_mail, 20 * day) == "In the last 30 days: opened emails only."


def test_the_lead_report_as_of_a_day_shows_its_stage_and_no_clock_past_mql(
    trained: Trained, synthetic_dir: Path, tmp_path: Path, open_page: OpenPage
) -> None:
    """``report lead --as-of``: the lead's activity until that day, its stage then, and no response
    clock once sales has it (the history says SQL); before that, its MQL stage and the clock."""
    history = pd.read_parquet(synthetic_dir / "stage_history.parquet")
    sql = history.loc[history["stage"] == "SQL"].sort_values("entered_at").iloc[0]
    mql = history.loc[(history["lead_id"] == sql["lead_id"]) & (history["stage"] == "MQL")]
    assert len(mql)
    lead_id = str(sql["lead_id"])
    pages = {}
    for name, day in (
        ("before", mql["entered_at"].iloc[0] + pd.Timedelta(minutes=1)),
        ("after", sql["entered_at"] + pd.Timedelta(days=1)),
    ):
        out = tmp_path / f"{name}.html"
        args = [
            "--data",
            str(synthetic_dir),
            "--lead-id",
            lead_id,
            "--out",
            str(out),
            "--as-of",
            day.isoformat(),
        ]
        run("report", "lead", "--model", str(trained["model_path"]), *args)
        pages[name] = open_page(out)
        assert_clean(pages[name])
    assert "Stage: MQL since" in pages["before"].text and "no response clock" not in pages["before"].text
    assert f"Stage: SQL since {sql['entered_at'].date()}" in pages["after"].text
    assert f"already SQL since {sql['entered_at'].date()}: no response clock" in pages["after"].text
    assert "call within the hour" not in pages["after"].text
