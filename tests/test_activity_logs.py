"""Several activity logs: a generated activity log split into the tables a CRM exports (web activity,
emails, a webinar registrations table of one kind, a product-usage log keyed by email), read through
``events:`` as named logs: every declared feature equals the native folder's, lead for lead, on the
single machine, in the service's per-lead engine and inside Spark; bad keys are one line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.checking import validate_export
from leadscore.data.folders import read_leads
from leadscore.data.synthetic import write_dataset
from leadscore.features.rollups import rollups_for_lead
from leadscore.spec import DatasetSpec, load_spec
from tests.helpers import make_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

WEB = ("web_visit", "pricing_page_view", "content_download")
EMAIL = ("email_open", "email_click")
USAGE = ("webinar_attendance", "demo_request", "consultation_request")
LOG_OF = {  # each of the shipped spec's definitions, by the log that now carries its event type
    "web_visits_30d": "web",
    "return_visits_7d": "web",
    "pricing_page_views_7d": "web",
    "pricing_page_views_total": "web",
    "downloads_top": "web",
    "downloads_mid": "web",
    "downloads_bottom": "web",
    "email_opens_30d": "mail",
    "email_clicks_30d": "mail",
    "webinars_registered": "webinars",
    "webinars_attended": "usage",
    "demo_requests": "usage",
    "consultation_requests": "usage",
}


def _spec_doc() -> dict[str, Any]:
    """The synthetic spec over four named logs; its one cross-log feature (days since any activity)
    left out, as a named log's definitions read that log only."""
    return {
        "extends": "synthetic",
        "name": "crm-logs",
        "events": {
            "web": {"table": "web_activity", "id": "Contact ID", "time": "Timestamp", "type": "Activity"},
            "mail": {"table": "emails", "id": "lead", "time": "at", "type": "kind"},
            "webinars": {"id": "Contact ID", "time": "Registered At", "type_value": "webinar_registration"},
            "usage": {"table": "product_usage", "email": "User Email", "time": "When", "type": "Event"},
        },
        "engagement": {
            **{name: {"log": log} for name, log in LOG_OF.items() if log != "web"},
            "days_since_last_activity": None,
        },
    }


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("logs")
    native = root / "native"
    write_dataset(make_tables(1500, 23, fault_rate=0.0), native)
    crm = root / "crm"
    crm.mkdir()
    leads = pd.read_parquet(native / "leads.parquet")
    leads.to_parquet(crm / "leads.parquet")
    pd.read_parquet(native / "stage_history.parquet").to_parquet(crm / "stage_history.parquet")
    events = pd.read_parquet(native / "events.parquet")
    kind = events["event_type"].astype(str)
    web = events[kind.isin(WEB)].rename(
        columns={"lead_id": "Contact ID", "occurred_at": "Timestamp", "event_type": "Activity"}
    )
    web.to_csv(crm / "web_activity.csv", index=False)
    mail = events[kind.isin(EMAIL)].rename(
        columns={"lead_id": "lead", "occurred_at": "at", "event_type": "kind"}
    )
    mail[["lead", "at", "kind"]].to_parquet(crm / "emails.parquet")
    webinars = events[kind == "webinar_registration"].rename(
        columns={"lead_id": "Contact ID", "occurred_at": "Registered At"}
    )
    webinars[["Contact ID", "Registered At"]].to_csv(crm / "webinars.csv", index=False)
    usage = events[kind.isin(USAGE)].merge(leads[["lead_id", "email"]], on="lead_id")
    # The same person as the CRM writes them, and as the product does: case and spaces differ.
    shouted = "  " + usage["email"].astype(str).str.upper() + " "
    usage = usage.assign(**{"User Email": shouted.where(np.arange(len(usage)) % 2 == 0, usage["email"])})
    usage = usage.rename(columns={"occurred_at": "When", "event_type": "Event"})
    strangers = usage.head(5).assign(**{"User Email": "nobody@example.org"})  # match no lead
    pd.concat([usage, strangers])[["User Email", "When", "Event"]].to_csv(
        crm / "product_usage.csv", index=False
    )
    spec_path = root / "crm-logs.yaml"
    spec_path.write_text(yaml.safe_dump(_spec_doc(), sort_keys=False))
    spec = load_spec(str(spec_path))
    web_only = {n: d for n, d in spec.declared.items() if LOG_OF[n] == "web"}
    assert all(d.log is None for d in web_only.values())  # no log named: the first, web
    return {"root": root, "native": native, "crm": crm, "spec": spec, "spec_path": spec_path}


def test_every_feature_from_named_logs_equals_the_native_folders(folders: dict[str, Any]) -> None:
    spec: DatasetSpec = folders["spec"]
    native = read_leads(folders["native"], load_spec("synthetic"), labels=True).set_index("lead_id")
    crm = read_leads(folders["crm"], spec, labels=True).set_index("lead_id")
    assert list(spec.logs) == ["web", "mail", "webinars", "usage"]
    assert spec.log_of()["web_visits_30d"] == "web" and spec.log_of()["demo_requests"] == "usage"
    for name in LOG_OF:
        a, b = native[name], crm.loc[native.index, name]
        assert np.array_equal(a.to_numpy(float), b.to_numpy(float)), name
        assert a.sum() > 0, name  # each compared a count, not zeros
    assert "days_since_last_activity" not in spec.declared
    assert crm[spec.label.column].equals(native.loc[crm.index, spec.label.column])


def test_the_service_engine_reads_each_event_by_its_log(folders: dict[str, Any]) -> None:
    spec: DatasetSpec = folders["spec"]
    crm = read_leads(folders["crm"], spec).set_index("lead_id")
    events = pd.read_parquet(folders["native"] / "events.parquet")
    busy = events["lead_id"].value_counts().index[:5]
    for lead in busy:
        rows = events[events["lead_id"] == lead]
        body = []
        for _, e in rows.iterrows():
            t = str(e["event_type"])
            log = next(name for name, types in _LOGS.items() if t in types)
            item = {
                "type": t,
                "time": pd.Timestamp(e["occurred_at"]).isoformat(),
                "funnel_stage": e["funnel_stage"],
            }
            body.append(item if log == "web" else {**item, "log": log})  # web: the first, the default
        scored = pd.Timestamp(crm.loc[lead, "scored_at"]).value // 1_000_000
        got = rollups_for_lead(body, scored, spec)
        for name in LOG_OF:
            assert got[name] == pytest.approx(float(crm.loc[lead, name])), (lead, name)


_LOGS = {"web": WEB, "mail": EMAIL, "webinars": ("webinar_registration",), "usage": USAGE}


def test_validate_counts_the_emails_that_match_no_lead(folders: dict[str, Any]) -> None:
    report = validate_export(folders["crm"], folders["spec"])
    usage = report.tables["events.usage"]
    assert usage["unknown_lead"] == 5
    lines = [p for p in report.problems if p.check == "unknown_email"]
    assert len(lines) == 1 and lines[0].count == 5 and "events.usage.email" in lines[0].message
    assert {"events.web", "events.mail", "events.webinars", "events.usage"} <= set(report.tables)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"engagement": {"demo_requests": {"log": "crm"}}}, "engagement.demo_requests.log: no log 'crm'"),
        ({"events": {"usage": {"table": "nowhere"}}}, "spec key 'events.usage.table'"),
        ({"events": {"mail": {"time": "sent"}}}, "spec key 'events.mail.time': column 'sent'"),
        ({"email": "Work Email"}, "spec key 'events.usage.email'"),
        ({"events": {"webinars": {"type": "Kind"}}}, "give exactly one of 'type'"),
    ],
)
def test_a_wrong_log_key_is_one_line(
    folders: dict[str, Any], tmp_path: Path, change: dict[str, Any], says: str
) -> None:
    from leadscore.spec import merged

    doc = merged(_spec_doc(), change)
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(app, ["validate", str(folders["crm"]), "--spec", str(path)])
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1, result.output


def test_spark_reads_the_named_logs_as_the_single_machine(
    folders: dict[str, Any], spark: SparkSession, tmp_path: Path
) -> None:
    from leadscore.spark.features import declared_frame
    from leadscore.spark.session import write_parquet

    spec: DatasetSpec = folders["spec"]
    single = read_leads(folders["crm"], spec, labels=True).set_index("lead_id")
    write_parquet(declared_frame(spark, str(folders["crm"]), spec, labels=True), str(tmp_path / "f"))
    got = pd.read_parquet(tmp_path / "f").set_index("lead_id").loc[single.index]
    for name in [*LOG_OF, spec.label.column]:
        assert np.array_equal(single[name].to_numpy(float), got[name].to_numpy(float)), name


def test_a_usage_log_keyed_by_email_adds_a_pql_feature_the_model_uses(tmp_path: Path) -> None:
    """Where the generator makes trial usage matter, the product's log (keyed by the user's email,
    typed as users type it) gives the model a product-qualified signal the CRM's own fields lack."""
    from leadscore.data.synthetic.usage import with_product_usage
    from leadscore.modeling.options import TrainOptions
    from leadscore.modeling.train import train_model
    from leadscore.scoring.contract import load_contract

    tables = make_tables(6000, 31, fault_rate=0.0, observed_until="uncut")
    leads, usage = with_product_usage(tables, 31)
    leads.to_parquet(tmp_path / "leads.parquet")
    pd.DataFrame(tables["events"].to_pandas()).to_parquet(tmp_path / "events.parquet")
    usage.to_csv(tmp_path / "product_usage.csv", index=False)
    activity = {"table": "events", "id": "lead_id", "time": "occurred_at", "type": "event_type"}
    pql = {
        "usage_events_14d": {"count": "any", "days": 14, "log": "usage"},
        "active_days_14d": {"distinct_days": "any", "days": 14, "log": "usage"},
        "invites_14d": {"count": "Invite Teammate", "days": 14, "log": "usage"},
    }
    runs = {}
    for name, logs, extra in (
        ("crm-only", {"activity": activity}, {}),
        (
            "with-usage",
            {
                "activity": activity,
                "usage": {
                    "table": "product_usage",
                    "email": "User Email",
                    "time": "Timestamp",
                    "type": "Event",
                },
            },
            pql,
        ),
    ):
        doc = {
            "extends": "synthetic",
            "name": name,
            "label": {"stages": None, "within_days": None},
            "events": logs,
            "engagement": extra,
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        options = TrainOptions(contract=load_contract()[0], search_trials=0)
        runs[name] = train_model(tmp_path, load_spec(str(path)), options)
    with_usage, crm_only = runs["with-usage"], runs["crm-only"]
    assert with_usage.metrics["roc_auc"] > crm_only.metrics["roc_auc"] + 0.01, (
        with_usage.metrics["roc_auc"],
        crm_only.metrics["roc_auc"],
    )
    bundle = with_usage.bundle
    gain = bundle.booster.feature_importance("gain")
    by_field: dict[str, float] = {}
    for field, g in zip(bundle.encoder.feature_fields, gain, strict=True):
        by_field[field] = by_field.get(field, 0.0) + float(g)
    # the product-usage fields carry a real part of what the model learned (a log joined wrongly
    # gives them nothing): by field, as reasons count them (a category's share is its field's)
    usage = sum(by_field[f] for f in pql) / sum(by_field.values())
    ranked = sorted(by_field, key=by_field.__getitem__, reverse=True)
    assert usage >= 0.08, (usage, ranked)
    assert ranked.index("usage_events_14d") < len(ranked) // 3, ranked


def test_a_joined_table_missing_its_key_column_names_the_key(tmp_path: Path) -> None:
    """A log's ``join.by`` column, or its joined table's ``id``, missing: one line naming that key."""
    from leadscore.data.activity import stacked_logs
    from leadscore.errors import UserError

    pd.DataFrame({"lead_id": [1, 2], "email": ["a@x.com", "b@x.com"]}).to_csv(
        tmp_path / "leads.csv", index=False
    )
    members = pd.DataFrame({"LeadId": [1], "CreatedDate": ["2026-01-01"], "Status": ["Sent"]})
    members.to_csv(tmp_path / "members.csv", index=False)
    pd.DataFrame({"Key": ["7015"], "Type": ["Webinar"]}).to_csv(tmp_path / "Campaign.csv", index=False)
    log = {"id": "LeadId", "time": "CreatedDate", "type": "Status"}
    for join, says in (
        (
            {"table": "Campaign", "by": "CampaignId", "id": "Id"},
            "spec key 'events.members.join.by': column 'CampaignId'",
        ),
        ({"table": "Campaign", "by": "LeadId", "id": "Id"}, "spec key 'events.members.join.id': column 'Id'"),
    ):
        doc = {
            "name": "j",
            "id": "lead_id",
            "time": "lead_id",
            "label": {"column": "x"},
            "events": {"members": {**log, "join": join}},
        }
        spec = DatasetSpec.model_validate(doc)
        with pytest.raises(UserError, match=re.escape(says)):
            stacked_logs(tmp_path, spec, pd.read_csv(tmp_path / "leads.csv"))


def test_an_event_time_is_read_by_the_one_date_rule_on_the_service_path() -> None:
    """The lead checker accepts any date the rule reads (a slash date too); the roll-ups read the
    event's time the same way (pandas' ISO 8601 parser raised on it: a 500 on /v1/score)."""
    from leadscore.spec import load_spec

    spec = load_spec("synthetic")
    scored = float(pd.Timestamp("2024-05-10").value // 1_000_000)
    slash = rollups_for_lead([{"type": "web_visit", "time": "05/03/2024"}], scored, spec)
    iso = rollups_for_lead([{"type": "web_visit", "time": "2024-05-03T00:00:00Z"}], scored, spec)
    assert slash == iso and slash["web_visits_30d"] == 1 and slash["days_since_last_activity"] == 7.0
