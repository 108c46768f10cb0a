"""The generator's tables as HubSpot exports them: the contacts export (default property names,
picklist values, HubSpot's date format, the lifecycle date properties, and the roll-ups HubSpot
counts as of the export), engagements, form submissions and page views.

What a team would download from HubSpot for the same leads, so the shipped ``hubspot`` spec is proven
against the native folder (``tests/test_crm_specs.py``). Seeded: the same tables give the same bytes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

DATE = "%Y-%m-%d %H:%M"  # how HubSpot's CSV export writes a date-time property
EMPLOYEES = [0, 5, 25, 50, 100, 500, 1000, np.inf]  # HubSpot's "Number of Employees" picklist edges
EMPLOYEE_LABELS = ["1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+"]
SOURCES = {  # the generator's lead sources as HubSpot's "Original Source" values
    "Organic Search": "Organic Search",
    "Paid Search": "Paid Search",
    "Paid Social": "Paid Social",
    "Referral": "Referrals",
    "Direct": "Direct Traffic",
    "Webinar": "Other Campaigns",
    "Event": "Offline Sources",
    "Outbound": "Offline Sources",
    "Content Syndication": "Other Campaigns",
}
STAGES = {  # the generator's stages as HubSpot lifecycle stages
    "Inquiry": "Lead",
    "MQL": "Marketing Qualified Lead",
    "SAL": "Marketing Qualified Lead",
    "SQL": "Sales Qualified Lead",
    "Opportunity": "Opportunity",
    "Customer": "Customer",
    "Recycled": "Lead",
    "Disqualified": "Other",
}
PAGES = ["/", "/product", "/features", "/integrations", "/blog/lead-scoring", "/customers", "/about"]
FORMS = {  # the generator's form-like events as HubSpot form names
    "webinar_registration": "Webinar registration",
    "demo_request": "Request a demo",
    "consultation_request": "Contact sales",
}
DOWNLOADS = {"top": "Ebook download", "mid": "Buyer's guide download", "bottom": "Case study download"}
ENGAGEMENTS = {
    "email_open": "Opened: newsletter",
    "email_click": "Clicked: newsletter",
    "webinar_attendance": None,
}


def hubspot_tables(tables: dict[str, pa.Table], seed: int = 0) -> dict[str, pd.DataFrame]:
    """``contacts``, ``engagements``, ``form_submissions`` and ``page_views`` from the generator's
    ``leads``, ``events`` and ``stage_history``."""
    rng = np.random.default_rng(seed)
    leads = tables["leads"].to_pandas()
    events = tables["events"].to_pandas().sort_values(["occurred_at", "event_id"], kind="stable")
    history = tables["stage_history"].to_pandas()
    kind = events["event_type"].astype(str)
    page_views = _page_views(events[kind.isin(["web_visit", "pricing_page_view"])], rng)
    forms = _forms(events[kind.isin([*FORMS, "content_download"])])
    engagements = _engagements(events[kind.isin(list(ENGAGEMENTS))])
    contacts = _contacts(leads, history, rng)
    contacts = _with_rollups(contacts, leads, events, page_views, forms)
    return {
        "contacts": contacts,
        "engagements": engagements,
        "form_submissions": forms,
        "page_views": page_views,
    }


def _stamp(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series).dt.strftime(DATE).astype(object).where(series.notna(), None)


def _page_views(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    pricing = rows["event_type"].astype(str).to_numpy() == "pricing_page_view"
    pages = np.asarray(PAGES, dtype=object)[rng.integers(0, len(PAGES), len(rows))]
    url = np.where(pricing, "/pricing", pages)
    return pd.DataFrame(
        {
            "Contact ID": rows["lead_id"].to_numpy(),
            "Page URL": ["https://www.example.com" + u for u in url],
            "Timestamp": _stamp(rows["occurred_at"]).to_numpy(),
        }
    )


def _forms(rows: pd.DataFrame) -> pd.DataFrame:
    kind = rows["event_type"].astype(str)
    stage = rows["funnel_stage"].astype(object).map(DOWNLOADS)
    name = kind.map(FORMS).where(kind != "content_download", stage)
    page = np.where(
        kind == "demo_request", "/demo", np.where(kind == "consultation_request", "/contact", "/resources")
    )
    return pd.DataFrame(
        {
            "Contact ID": rows["lead_id"].to_numpy(),
            "Form Name": name.to_numpy(),
            "Page URL": ["https://www.example.com" + p for p in page],
            "Submitted At": _stamp(rows["occurred_at"]).to_numpy(),
        }
    )


def _engagements(rows: pd.DataFrame) -> pd.DataFrame:
    kind = rows["event_type"].astype(str)
    return pd.DataFrame(
        {
            "Engagement ID": np.arange(1, len(rows) + 1),
            "Contact ID": rows["lead_id"].to_numpy(),
            "Type": np.where(kind == "webinar_attendance", "MEETING", "EMAIL"),
            "Timestamp": _stamp(rows["occurred_at"]).to_numpy(),
            "Subject": kind.map(ENGAGEMENTS).fillna("Webinar").to_numpy(),
        }
    )


def _contacts(leads: pd.DataFrame, history: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    local = leads["email"].astype(str).str.split("@").str[0].str.rstrip("0123456789")
    first, last = local.str.split(".").str[0].str.title(), local.str.split(".").str[-1].str.title()
    employees = pd.cut(leads["employee_count"], EMPLOYEES, labels=EMPLOYEE_LABELS, right=False)
    ordered = history.sort_values("entered_at", kind="stable")
    became = {
        stage: ordered[ordered["stage"] == stage].groupby("lead_id")["entered_at"].first()
        for stage in ("SQL", "Opportunity", "Customer")
    }
    last_stage = ordered.groupby("lead_id")["stage"].last().map(STAGES)
    ids = leads["lead_id"]
    return pd.DataFrame(
        {
            "Record ID": ids.to_numpy(),
            "First Name": first.to_numpy(),
            "Last Name": last.to_numpy(),
            "Email": leads["email"].to_numpy(),
            "Phone Number": [f"+1 555 {n:07d}" for n in rng.integers(0, 10**7, len(leads))],
            "Job Title": leads["job_title"].to_numpy(),
            "Company Name": leads["company_name"].to_numpy(),
            "Industry": leads["industry"].to_numpy(),
            "Number of Employees": employees.astype(object).to_numpy(),
            "Country/Region": leads["country"].to_numpy(),
            "Original Source": leads["lead_source"].astype(str).map(SOURCES).to_numpy(),
            # a team's own properties, as HubSpot exports custom properties: by their labels
            "Seniority": leads["seniority"].to_numpy(),
            "Department": leads["department"].to_numpy(),
            "Tech Stack": leads["tech_stack"].to_numpy(),
            "Create Date": _stamp(leads["created_at"]).to_numpy(),
            "Lifecycle Stage": ids.map(last_stage).fillna("Lead").to_numpy(),
            "Became a Lead Date": _stamp(leads["created_at"]).to_numpy(),
            "Became a Marketing Qualified Lead Date": _stamp(leads["scored_at"]).to_numpy(),
            "Became a Sales Qualified Lead Date": _stamp(ids.map(became["SQL"])).to_numpy(),
            "Became an Opportunity Date": _stamp(ids.map(became["Opportunity"])).to_numpy(),
            "Became a Customer Date": _stamp(ids.map(became["Customer"])).to_numpy(),
        }
    )


def _with_rollups(
    contacts: pd.DataFrame,
    leads: pd.DataFrame,
    events: pd.DataFrame,
    page_views: pd.DataFrame,
    forms: pd.DataFrame,
) -> pd.DataFrame:
    """HubSpot's own counts, as of the export: every event, those after the scoring moment too."""
    ids = contacts["Record ID"]
    views = page_views.groupby("Contact ID").size()
    days = pd.to_datetime(page_views["Timestamp"]).dt.floor("D")
    sessions = page_views.assign(day=days).groupby("Contact ID")["day"].nunique()
    submissions = forms.groupby("Contact ID").size()
    last = events.groupby("lead_id")["occurred_at"].max()
    return contacts.assign(
        **{
            "Number of Pageviews": ids.map(views).fillna(0).astype(int).to_numpy(),
            "Number of Sessions": ids.map(sessions).fillna(0).astype(int).to_numpy(),
            "Number of Form Submissions": ids.map(submissions).fillna(0).astype(int).to_numpy(),
            "Last Activity Date": _stamp(ids.map(last)).to_numpy(),
        }
    )
