"""The generator's tables as a Salesforce org exports them: the standard objects with their API field
names (``Lead``, ``LeadHistory``, ``Task``, ``CampaignMember`` and ``Campaign``) and Account
Engagement (Pardot) visitor activity keyed by the prospect's email, with Salesforce's date formats,
18-character record ids and its default lead statuses beside an org's own ("Marketing Qualified",
"Sales Qualified").

What a team would export for the same leads, so the shipped ``salesforce`` spec is proven against the
native folder (``tests/test_crm_specs.py``). Seeded: the same tables give the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.data.synthetic.hubspot import DOWNLOADS, FORMS, PAGES

STATUSES = {  # the generator's stages as an org's lead statuses (Salesforce's defaults and its own)
    "Inquiry": "Open - Not Contacted",
    "MQL": "Marketing Qualified",
    "SAL": "Working - Contacted",
    "SQL": "Sales Qualified",
    "Opportunity": "Closed - Converted",
    "Recycled": "Recycled",
    "Disqualified": "Closed - Not Converted",
}
SOURCES = {  # the generator's lead sources as Salesforce's LeadSource picklist
    "Organic Search": "Web",
    "Paid Search": "Advertisement",
    "Paid Social": "Advertisement",
    "Referral": "External Referral",
    "Direct": "Web",
    "Webinar": "Seminar - Internal",
    "Event": "Trade Show",
    "Outbound": "Other",
    "Content Syndication": "Partner",
}
CAMPAIGN_ID = "7015e000000WbNrAAK"  # the webinar programme's Campaign record


def record_id(prefix: str, numbers: pd.Series | np.ndarray) -> np.ndarray:
    """Salesforce-like 18-character ids (``00Q`` leads, ``00T`` tasks ...)."""
    return np.asarray([f"{prefix}{int(n):015d}" for n in np.asarray(numbers)], dtype=object)


def _iso(series: pd.Series) -> pd.Series:
    """Date-times as Salesforce exports them: ``2024-01-03T14:27:43.000Z``."""
    stamped = pd.to_datetime(series).dt.strftime("%Y-%m-%dT%H:%M:%S.000Z").astype(object)
    return stamped.where(series.notna(), None)


def salesforce_tables(tables: dict[str, pa.Table], seed: int = 0) -> dict[str, pd.DataFrame]:
    """``Lead``, ``LeadHistory``, ``Task``, ``CampaignMember``, ``Campaign`` and ``VisitorActivity``."""
    rng = np.random.default_rng(seed)
    leads = tables["leads"].to_pandas()
    events = tables["events"].to_pandas().sort_values(["occurred_at", "event_id"], kind="stable")
    history = tables["stage_history"].to_pandas().sort_values(["lead_id", "entered_at"], kind="stable")
    kind = events["event_type"].astype(str)
    webinars = events[kind.isin(["webinar_registration", "webinar_attendance"])]
    return {
        "Lead": _lead(leads, history),
        "LeadHistory": _history(history, rng),
        "Task": _tasks(leads),
        "CampaignMember": _members(webinars),
        "Campaign": pd.DataFrame({"Id": [CAMPAIGN_ID], "Type": ["Webinar"], "Name": ["Product webinars"]}),
        "VisitorActivity": _visitor_activity(events[~kind.isin(webinars["event_type"].unique())], leads, rng),
    }


def _lead(leads: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    local = leads["email"].astype(str).str.split("@").str[0].str.rstrip("0123456789")
    status = history.groupby("lead_id")["stage"].last().map(STATUSES)
    converted = history[history["stage"] == "Opportunity"].groupby("lead_id")["entered_at"].first()
    ids = leads["lead_id"]
    return pd.DataFrame(
        {
            "Id": record_id("00Q", ids),
            "FirstName": local.str.split(".").str[0].str.title().to_numpy(),
            "LastName": local.str.split(".").str[-1].str.title().to_numpy(),
            "Email": leads["email"].to_numpy(),
            "Company": leads["company_name"].to_numpy(),
            "Title": leads["job_title"].to_numpy(),
            "Industry": leads["industry"].to_numpy(),
            "NumberOfEmployees": leads["employee_count"].to_numpy(),
            "Country": leads["country"].to_numpy(),
            "LeadSource": leads["lead_source"].astype(str).map(SOURCES).to_numpy(),
            "Status": ids.map(status).fillna("Open - Not Contacted").to_numpy(),
            # the marketing platform creates the Lead in Salesforce when it scores it (an MQL sync)
            "CreatedDate": _iso(leads["scored_at"]).to_numpy(),
            "IsConverted": ids.isin(converted.index).map({True: "true", False: "false"}).to_numpy(),
            "ConvertedDate": pd.to_datetime(ids.map(converted)).dt.strftime("%Y-%m-%d").to_numpy(),
            # an org's own fields
            "Seniority__c": leads["seniority"].to_numpy(),
            "Department__c": leads["department"].to_numpy(),
            "Tech_Stack__c": leads["tech_stack"].to_numpy(),
        }
    )


def _history(history: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Every status change as LeadHistory rows of Field Status, with another field's changes beside."""
    status = history["stage"].astype(str).map(STATUSES)
    previous = status.groupby(history["lead_id"].to_numpy()).shift(1)
    rows = pd.DataFrame(
        {
            "LeadId": record_id("00Q", history["lead_id"]),
            "Field": "Status",
            "OldValue": previous.to_numpy(),
            "NewValue": status.to_numpy(),
            "CreatedDate": _iso(history["entered_at"]).to_numpy(),
        }
    )
    rating = rows.sample(frac=0.3, random_state=int(rng.integers(0, 2**31))).assign(
        Field="Rating",
        OldValue="Cold",
        NewValue="Sales Qualified",  # a decoy: not a status
    )
    return pd.concat([rows, rating], ignore_index=True)


def _tasks(leads: pd.DataFrame) -> pd.DataFrame:
    """Sales calls logged the day after the lead was scored (after its moment: never a feature)."""
    called = leads[leads["call_duration_sec"].fillna(0) > 0]
    day = pd.to_datetime(called["scored_at"]).dt.floor("D") + pd.Timedelta(days=1)
    return pd.DataFrame(
        {
            "Id": record_id("00T", np.arange(1, len(called) + 1)),
            "WhoId": record_id("00Q", called["lead_id"]),
            "ActivityDate": day.dt.strftime("%Y-%m-%d").to_numpy(),
            "Type": "Call",
            "TaskSubtype": "Call",
            "Subject": "Discovery call",
        }
    )


def _members(rows: pd.DataFrame) -> pd.DataFrame:
    attended = rows["event_type"].astype(str).to_numpy() == "webinar_attendance"
    return pd.DataFrame(
        {
            "LeadId": record_id("00Q", rows["lead_id"]),
            "CampaignId": CAMPAIGN_ID,
            "Status": np.where(attended, "Attended", "Registered"),
            "HasResponded": np.where(attended, "true", "false"),
            "CreatedDate": _iso(rows["occurred_at"]).to_numpy(),
            "FirstRespondedDate": np.where(attended, _iso(rows["occurred_at"]).to_numpy(), None),
        }
    )


def _visitor_activity(rows: pd.DataFrame, leads: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    kind = rows["event_type"].astype(str)
    email = rows["lead_id"].map(leads.set_index("lead_id")["email"])
    pages = np.asarray(PAGES, dtype=object)[rng.integers(0, len(PAGES), len(rows))]
    visit = kind.isin(["web_visit", "pricing_page_view"]).to_numpy()
    form = kind.isin([*FORMS, "content_download"]).to_numpy()
    url = np.where(kind == "pricing_page_view", "/pricing", pages)
    name = kind.map(FORMS).where(
        kind != "content_download", rows["funnel_stage"].astype(object).map(DOWNLOADS)
    )
    details = np.where(
        visit, ["https://www.example.com" + u for u in url], np.where(form, name, "Newsletter")
    )
    kinds = np.where(
        visit, "Visit", np.where(form, "Form", np.where(kind == "email_open", "Email Open", "Email Click"))
    )
    return pd.DataFrame(
        {
            "id": np.arange(1, len(rows) + 1),
            "prospect_id": rows["lead_id"].to_numpy() + 100_000,
            "prospect_email": email.to_numpy(),
            "type": kinds,
            "details": details,
            "created_at": _iso(rows["occurred_at"]).to_numpy(),
        }
    )
