"""Scores back into the CRM as its own bulk import file (issue 32's write-back, from a score file)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from tests.helpers import API_KEY, Trained, make_leads, private_env

runner = CliRunner()
SALESFORCE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")  # Bulk API 2.0's


@pytest.fixture(scope="module")
def scored(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("writeback")
    leads = make_leads(300, 93)
    leads.to_csv(folder / "export.csv", index=False)
    out = folder / "scores.csv"
    _score(trained, folder / "export.csv", out, "--explain", "3")
    return out


def _score(trained: Trained, export: Path, out: Path, *extra: str) -> None:
    """``leadscore score`` of ``export`` by the trained model into ``out``."""
    command = ["score", str(export), "--model", str(trained["model_path"]), "--out", str(out), *extra]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output


def _rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert b"\r\n" not in raw and raw.decode("utf-8")  # UTF-8, linefeed line endings (the default job)
    return list(csv.reader(raw.decode("utf-8").splitlines()))


def test_salesforce_gets_a_bulk_api_2_csv(trained: Trained, scored: Path, tmp_path: Path) -> None:
    scores = pd.read_csv(scored)
    again = scores.head(1).assign(p_sql=0.5)  # the first lead scored once more, later in the file
    doubled = tmp_path / "scores.csv"
    pd.concat([scores, again], ignore_index=True).to_csv(doubled, index=False)
    out = tmp_path / "lead-scores.csv"
    args = [
        "writeback",
        str(doubled),
        "--to",
        "salesforce",
        "--out",
        str(out),
        "--model",
        str(trained["model_path"]),
    ]
    result = runner.invoke(app, [*args, "--scored-at", "2026-12-05T10:30:00.250Z", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    rows = _rows(out)
    header, body = rows[0], rows[1:]
    assert header == [
        "Id",
        "Lead_Score__c",
        "Lead_Grade__c",
        "MQL__c",
        "Score_Reasons__c",
        "Score_Date__c",
        "Score_Model__c",
    ]
    assert payload["fields"] == header and payload["rows"] == len(body) == len(scores)
    assert any("Score_Trend__c is left out" in w for w in payload["warnings"])  # scored without --log
    # a lead scored twice in the file is one record: its last score
    assert "1 leads appear more than once: the last score of each is written" in payload["warnings"]
    last = pd.concat([scores.iloc[1:], again], ignore_index=True)
    assert [r[0] for r in body] == last["lead_id"].astype(str).tolist()
    assert [float(r[1]) for r in body] == pytest.approx(last["p_sql"].tolist(), abs=1e-6)
    assert {r[3] for r in body} == {"true", "false"}
    assert [r[3] == "true" for r in body] == last["mql"].tolist()
    assert all(SALESFORCE_DATETIME.match(r[5]) for r in body) and body[0][5] == "2026-12-05T10:30:00.250Z"
    assert all(len(r[4]) <= 255 for r in body) and body[0][4].count("; ") == 2  # three reasons, joined
    assert {r[6] for r in body} == {payload_version(trained)}


def payload_version(trained: Trained) -> str:
    from leadscore.tracking.loading import load_bundle

    return load_bundle(str(trained["model_path"])).model_version


def test_hubspot_gets_a_contacts_import(scored: Path, tmp_path: Path) -> None:
    out = tmp_path / "contacts.csv"
    result = runner.invoke(
        app, ["writeback", str(scored), "--to", "hubspot", "--out", str(out), "--scored-at", "2026-12-05"]
    )
    assert result.exit_code == 0, result.output
    header, *body = _rows(out)
    assert header == [
        "Record ID",
        "leadscore_p_sql",
        "leadscore_grade",
        "leadscore_mql",
        "leadscore_reasons",
        "leadscore_scored_at",
    ]
    assert {r[5] for r in body} == {"2026-12-05"} and {r[3] for r in body} == {"true", "false"}
    assert "leadscore_model_version is left out" in result.output


def test_a_teams_mapping_and_field_lengths_come_from_its_spec(scored: Path, tmp_path: Path) -> None:
    spec = tmp_path / "ours.yaml"
    spec.write_text(
        "extends: synthetic\nname: ours\n"
        "writeback: {salesforce: {object: Contact, fields: {p_sql: Score__c, reasons: Why__c}, lengths: {reasons: 20}}}\n",
        encoding="utf-8",
    )
    out = tmp_path / "contact-scores.csv"
    result = runner.invoke(
        app,
        ["writeback", str(scored), "--to", "salesforce", "--out", str(out), "--spec", str(spec), "--json"],
    )
    assert result.exit_code == 0, result.output
    header, *body = _rows(out)
    assert header == ["Id", "Score__c", "Why__c"] and all(len(r[2]) <= 20 for r in body)
    long = sum(
        len("; ".join(x for x in row if isinstance(x, str))) > 20
        for row in pd.read_csv(scored)[["reason_1", "reason_2", "reason_3"]].itertuples(False)
    )
    assert long > 0
    assert (
        f"Why__c: {long} values cut to 20 characters (the field's length)"
        in json.loads(result.stdout)["warnings"]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--to", "pipedrive"], "--to: 'pipedrive' is not a CRM leadscore writes for"),
        (["--to", "hubspot", "--scored-at", "someday"], "--scored-at: 'someday' is not a date"),
    ],
)
def test_bad_write_back_input_is_one_line(
    scored: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    result = runner.invoke(app, ["writeback", str(scored), "--out", str(tmp_path / "x.csv"), *extra])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.csv").exists()


def test_a_file_that_is_not_scores_or_a_wrong_mapping_is_one_line(scored: Path, tmp_path: Path) -> None:
    other = tmp_path / "leads.csv"
    make_leads(20, 1).to_csv(other, index=False)
    result = runner.invoke(
        app, ["writeback", str(other), "--to", "salesforce", "--out", str(tmp_path / "x.csv")]
    )
    assert result.exit_code == 2 and "SCORES: no column 'p_sql'" in result.output
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "extends: synthetic\nname: bad\nwriteback: {hubspot: {fields: {score: hs_score}}}\n", encoding="utf-8"
    )
    result = runner.invoke(
        app,
        ["writeback", str(scored), "--to", "hubspot", "--out", str(tmp_path / "x.csv"), "--spec", str(spec)],
    )
    assert (
        result.exit_code == 2
        and "spec key 'writeback.hubspot.fields': 'score' is not a score column" in result.output
    )
    assert not (tmp_path / "x.csv").exists()


def test_changed_only_writes_what_moved_since_the_last_write(
    scored: Path, tmp_path: Path, database_url: str
) -> None:
    """A daily job within the CRMs' API limits: the second run of the same scores writes nothing; a
    lead is written again when its MQL flag or grade changed or its P(SQL) moved by more than the step."""
    out = tmp_path / "sf.csv"
    args = [
        "writeback",
        "--to",
        "salesforce",
        "--out",
        str(out),
        "--changed-only",
        "--store",
        database_url,
        "--json",
    ]

    def run(path: Path, *extra: str) -> tuple[dict[str, Any], list[list[str]]]:
        result = runner.invoke(app, [*args[:1], str(path), *args[1:], *extra])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout), _rows(out)[1:]

    first, body = run(scored)
    unique = pd.read_csv(scored)["lead_id"].astype(str).drop_duplicates(keep="last")
    assert first["rows"] == len(body) == len(unique)
    second, body = run(scored)
    assert second["rows"] == 0 and body == []  # nothing moved: nothing written (the header only)
    moved = pd.read_csv(scored).drop_duplicates("lead_id", keep="last").reset_index(drop=True)
    moved.loc[0:2, "p_sql"] += 0.05  # three moved by more than the step
    moved.loc[3, "p_sql"] += 0.01  # one by less
    moved.loc[4, "mql"] = not moved.loc[4, "mql"]  # one crossed the cutoff
    moved.loc[5, "grade"] = "Z9"  # one changed grade
    changed_file = tmp_path / "scores2.csv"
    moved.to_csv(changed_file, index=False)
    third, body = run(changed_file)
    assert sorted(r[0] for r in body) == sorted(moved.loc[[0, 1, 2, 4, 5], "lead_id"].astype(str))
    assert third["rows"] == 5
    # another CRM has its own memory; another step its own threshold
    hub = tmp_path / "hub.csv"
    result = runner.invoke(
        app,
        [
            "writeback",
            str(changed_file),
            "--to",
            "hubspot",
            "--out",
            str(hub),
            "--changed-only",
            "--store",
            database_url,
        ],
    )
    assert result.exit_code == 0 and len(_rows(hub)) - 1 == len(unique)
    fourth, body = run(changed_file, "--step", "0.005")
    assert [r[0] for r in body] == [str(moved.loc[3, "lead_id"])]


def test_since_writes_each_leads_last_logged_answer(
    trained: Trained, tmp_path: Path, database_url: str
) -> None:
    """The daily job without a score file: what the service and `score --log` logged since a date,
    each lead's last answer with its own time and model version."""
    from tests.helpers import private_env

    leads = make_leads(120, 94)
    leads.to_csv(tmp_path / "export.csv", index=False)
    with private_env({"LEADSCORE_DATABASE_URL": database_url}):
        for _ in range(2):  # logged twice: the last answer of each lead is written
            _score(trained, tmp_path / "export.csv", tmp_path / "s.csv", "--log")
    out = tmp_path / "sf.csv"
    base = ["writeback", "--to", "salesforce", "--out", str(out), "--store", database_url, "--json"]
    result = runner.invoke(app, [*base, "--since", "2000-01-01"])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    header, body = rows[0], rows[1:]
    ids = leads["lead_id"].astype(str).drop_duplicates()
    assert sorted(r[0] for r in body) == sorted(ids) and json.loads(result.stdout)["rows"] == len(ids)
    got = dict(zip(header, body[0], strict=True))
    assert SALESFORCE_DATETIME.match(got["Score_Date__c"]) and got["Score_Model__c"]
    assert float(got["Lead_Score__c"]) >= 0 and got["MQL__c"] in ("true", "false")
    scores = pd.read_csv(tmp_path / "s.csv").set_index("lead_id")
    for row in body[:20]:
        cells = dict(zip(header, row, strict=True))
        assert abs(float(cells["Lead_Score__c"]) - scores.loc[int(cells["Id"]), "p_sql"]) < 1e-6
    # nothing logged after a day in the future; both sources at once is one line
    result = runner.invoke(app, [*base, "--since", "2999-01-01"])
    assert result.exit_code == 0 and _rows(out) == [header]
    result = runner.invoke(app, [*base[:1], str(tmp_path / "s.csv"), *base[1:], "--since", "2000-01-01"])
    assert result.exit_code == 2 and "not both" in result.output


def test_card_links_go_to_their_field_signed_as_the_server_checks_them(scored: Path, tmp_path: Path) -> None:
    from urllib.parse import parse_qs, urlsplit

    from leadscore.config import get_settings
    from leadscore.service.auth import KeyRing
    from leadscore.web.sessions import Sessions

    out = tmp_path / "contacts.csv"
    base = ["writeback", str(scored), "--to", "hubspot", "--out", str(out), "--card-links"]
    with private_env({"LEADSCORE_API_KEYS": API_KEY, "LEADSCORE_PUBLIC_URL": ""}):
        refused = runner.invoke(app, base)
        assert refused.exit_code == 2 and "--base-url" in refused.output and "Traceback" not in refused.output
        result = runner.invoke(app, [*base, "--base-url", "https://leadscore.example.com/"])
        assert result.exit_code == 0, result.output
        settings = get_settings()
        sessions = Sessions(
            KeyRing.from_settings(API_KEY, "", ""), settings.session_secret, settings.session_hours
        )
    header, *rows = _rows(out)
    assert header[0] == "Record ID" and header[-1] == "leadscore_card"
    for row in rows[:20]:
        link = urlsplit(row[-1])
        assert (link.scheme, link.netloc) == ("https", "leadscore.example.com")
        assert link.path == f"/app/leads/{row[0]}/card"
        query = {k: v[0] for k, v in parse_qs(link.query).items()}
        assert sessions.card_link_ok(row[0], query) and not sessions.card_link_ok(rows[-1][0] + "9", query)
