"""The generator: determinism, realism and the faults it promises."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from leadscore.data.synthetic import (
    DISQUALIFY_REASONS,
    DRIFT_SOURCE,
    GeneratorConfig,
    generate,
    label_from_stages,
    write_dataset,
)
from leadscore.features import rollups_for_spec
from leadscore.scoring.points import load_rules
from leadscore.spec import load_spec
from tests.helpers import make_leads, make_tables

ENGAGEMENT_COLUMNS = list(load_spec("synthetic").declared)


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_same_seed_gives_identical_bytes(tmp_path: Path, fmt: str) -> None:
    for name in ("a", "b"):
        write_dataset(generate(GeneratorConfig(leads=1500, seed=11)), tmp_path / name, fmt)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert {p.name for p in (tmp_path / "a").iterdir()} == {
        f"{t}.{fmt}" for t in ("leads", "events", "stage_history", "accounts", "feedback")
    }


def test_different_seeds_give_different_data() -> None:
    a = make_leads(1500, 1)
    b = make_leads(1500, 2)
    assert not a["true_p_sql"].equals(b["true_p_sql"])


def test_leads_have_fit_engagement_truth_and_trap_columns() -> None:
    leads = make_leads(3000, 5)
    spec = load_spec("synthetic")
    for col in [
        *spec.fit,
        *ENGAGEMENT_COLUMNS,
        "lead_id",
        "sql_within_90d",
        "true_p_sql",
        "call_duration_sec",
    ]:
        assert col in leads.columns, col
    assert set(leads["sql_within_90d"].unique()) == {0, 1}
    assert leads["true_p_sql"].between(0, 1).all()
    assert leads["lead_id"].is_unique


def test_sql_rate_is_that_of_a_real_funnel() -> None:
    leads = make_leads(20000, 3)
    assert 0.05 <= leads["sql_within_90d"].mean() <= 0.15
    # The label is drawn from true_p_sql, so their means agree.
    assert abs(leads["sql_within_90d"].mean() - leads["true_p_sql"].mean()) < 0.01


def test_created_at_spans_at_least_18_months() -> None:
    leads = make_leads(5000, 3)
    span = leads["created_at"].max() - leads["created_at"].min()
    assert span >= pd.Timedelta(days=18 * 30)


def test_events_never_happen_before_the_lead_exists() -> None:
    tables = make_tables(4000, 9)
    events = tables["events"].to_pandas()
    leads = tables["leads"].to_pandas().drop_duplicates("lead_id")
    created = events["lead_id"].map(leads.set_index("lead_id")["created_at"])
    assert created.notna().all()
    assert (events["occurred_at"] >= created).all()
    assert set(events["event_type"].unique()) >= {
        "web_visit",
        "pricing_page_view",
        "webinar_registration",
        "webinar_attendance",
        "content_download",
        "email_open",
        "email_click",
        "demo_request",
        "consultation_request",
    }
    downloads = events[events["event_type"] == "content_download"]
    assert set(downloads["funnel_stage"].unique()) == {"top", "mid", "bottom"}


def test_engagement_rollups_are_the_feature_codes_answer_as_of_scoring_time() -> None:
    tables = make_tables(3000, 4, fault_rate=0.0)
    leads = tables["leads"].to_pandas()
    events = tables["events"].to_pandas()
    again = rollups_for_spec(events, leads[["lead_id", "scored_at"]], load_spec("synthetic"))
    pd.testing.assert_frame_equal(
        again.reset_index(drop=True),
        leads[list(ENGAGEMENT_COLUMNS)].reset_index(drop=True),
        check_dtype=False,
    )
    # Events after scoring exist, so using them would change the features.
    after = events["occurred_at"] > events["lead_id"].map(leads.set_index("lead_id")["scored_at"])
    assert after.sum() > 1000


def test_label_is_sql_within_90_days_in_stage_history() -> None:
    tables = make_tables(5000, 8, fault_rate=0.0)
    leads = tables["leads"].to_pandas()
    stages = tables["stage_history"].to_pandas()
    label = label_from_stages(stages, leads[["lead_id", "scored_at"]])
    np.testing.assert_array_equal(label, leads["sql_within_90d"].to_numpy())
    names = set(stages["stage"].unique())
    assert {"Inquiry", "MQL", "SAL", "SQL", "Opportunity", "Customer", "Recycled", "Disqualified"} <= names
    disq = stages[stages["stage"] == "Disqualified"]
    assert set(disq["reason"].unique()) == set(DISQUALIFY_REASONS)
    assert stages.loc[stages["stage"] != "Disqualified", "reason"].isna().all()
    # Some leads reach SQL only after the window: they must count as 0.
    late = stages[stages["stage"] == "SQL"].merge(leads[["lead_id", "scored_at"]], on="lead_id")
    late = late[late["entered_at"] > late["scored_at"] + pd.Timedelta(days=90)]
    assert len(late) > 0
    assert (leads.set_index("lead_id").loc[late["lead_id"], "sql_within_90d"] == 0).all()


def test_backward_moves_exist() -> None:
    stages = make_tables(5000, 8, fault_rate=0.0)["stage_history"].to_pandas()
    order = {"Inquiry": 0, "MQL": 1, "SAL": 2, "SQL": 3, "Opportunity": 4, "Customer": 5}
    ranks = stages["stage"].map(order)
    stages = stages.assign(rank=ranks).dropna(subset=["rank"])
    went_back = stages.groupby("lead_id")["rank"].apply(lambda r: bool((r.diff() < 0).any()))
    assert went_back.sum() > 10


def test_faults_are_injected_at_the_asked_rate() -> None:
    n, rate = 20000, 0.03
    leads = make_leads(n, 12, fault_rate=rate)
    assert len(leads) == n + round(rate * n)  # duplicates appended
    emails = leads["email"].str.strip().str.casefold()
    assert emails.duplicated().sum() == pytest.approx(rate * n, rel=0.05)
    assert (leads["email"] != leads["email"].str.strip().str.lower()).sum() >= 0.9 * rate * n
    placeholders = sum(
        leads[c].isin(["Select", "N/A"]).sum() for c in ("job_title", "industry", "department", "tech_stack")
    )
    assert placeholders == pytest.approx(rate * n, rel=0.1)
    impossible = ((leads["employee_count"] < 1) | (leads["employee_count"] > 3_000_000)).sum()
    assert impossible == pytest.approx(rate * n, rel=0.1)
    canonical = {
        "United States",
        "United Kingdom",
        "Germany",
        "India",
        "Netherlands",
        "Canada",
        "France",
        "Spain",
        "Australia",
        "Japan",
        "Singapore",
        "Brazil",
        "Mexico",
    }
    variants = (~leads["country"].isin(canonical)).sum()
    assert variants == pytest.approx(rate * n, rel=0.1)


def test_no_faults_at_rate_zero() -> None:
    leads = make_leads(3000, 12, fault_rate=0.0)
    assert not leads["email"].str.casefold().duplicated().any()
    assert leads["employee_count"].between(1, 3_000_000).all()


def test_leakage_trap_leaks_and_truth_is_informative() -> None:
    leads = make_leads(20000, 3)
    y = leads["sql_within_90d"]
    assert roc_auc_score(y, leads["call_duration_sec"]) > 0.95
    truth_auc = roc_auc_score(y, leads["true_p_sql"])
    points_auc = roc_auc_score(y, load_rules("b2b-default").score(leads)["points"])
    assert 0.8 < truth_auc < 0.95, "a good model should win without the task being trivial"
    assert truth_auc - points_auc > 0.03, "the points model must leave room for a model"


def test_signals_follow_the_points_model_directions() -> None:
    leads = make_leads(20000, 3, fault_rate=0.0)
    y = leads["sql_within_90d"]
    assert y[leads["pricing_page_views_total"] > 0].mean() > y[leads["pricing_page_views_total"] == 0].mean()
    assert y[leads["seniority"] == "VP"].mean() > y[leads["seniority"] == "Student"].mean()
    assert y[leads["demo_requests"] > 0].mean() > 2 * y.mean()


def test_drift_period_is_later_with_a_new_channel() -> None:
    base = make_leads(5000, 3)
    drift = make_leads(5000, 3, drift=True)
    assert drift["created_at"].min() > base["created_at"].max() - pd.Timedelta(days=31)
    assert DRIFT_SOURCE not in set(base["lead_source"])
    assert (drift["lead_source"] == DRIFT_SOURCE).mean() > 0.1
    assert drift["pricing_page_views_total"].mean() > 1.5 * base["pricing_page_views_total"].mean()
    assert not set(drift["lead_id"]) & set(base["lead_id"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(min_value=1, max_value=400), seed=st.integers(0, 2**32 - 1), rate=st.floats(0, 0.2))
def test_invariants_hold_for_any_size_seed_and_rate(n: int, seed: int, rate: float) -> None:
    tables = generate(GeneratorConfig(leads=n, seed=seed, fault_rate=rate))
    leads = tables["leads"].to_pandas()
    assert len(leads) == n + round(rate * n)
    assert leads["lead_id"].is_unique
    assert set(leads["sql_within_90d"].unique()) <= {0, 1}
    assert (leads["scored_at"] > leads["created_at"]).all()
    events = tables["events"].to_pandas()
    assert events["lead_id"].isin(leads["lead_id"]).all()
    created = events["lead_id"].map(leads.drop_duplicates("lead_id").set_index("lead_id")["created_at"])
    assert (events["occurred_at"] >= created).all()
    counts = leads[[c for c in ENGAGEMENT_COLUMNS if c != "days_since_last_activity"]]
    assert (counts >= 0).all().all()
    feedback = tables["feedback"].to_pandas()
    assert feedback["lead_id"].is_unique and feedback["lead_id"].isin(leads["lead_id"]).all()
    assert (feedback["decided_at"] >= feedback["mql_at"]).all()
    rejected = feedback["decision"] == "rejected"
    assert set(feedback["decision"]) <= {"accepted", "rejected"}
    assert feedback.loc[rejected, "reason"].notna().all() and feedback.loc[~rejected, "reason"].isna().all()


def test_generate_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="leads"):
        generate(GeneratorConfig(leads=0))
    with pytest.raises(ValueError, match="fault rate"):
        generate(GeneratorConfig(leads=10, fault_rate=0.9))


def test_the_bank_like_export_is_seeded_and_shaped_like_a_real_flat_export() -> None:
    from leadscore.data.synthetic.flat import bank_like

    a, b = bank_like(20_000, 3), bank_like(20_000, 3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(bank_like(20_000, 4))
    assert 0.09 < (a["y"] == "yes").mean() < 0.13  # about 11% positive
    text = [c for c in a.columns if a[c].dtype == object or pd.api.types.is_string_dtype(a[c])]
    assert len(text) >= 5  # mostly categorical
    assert (a["job"] == "unknown").any() and (a["pdays"] == 999).mean() > 0.8  # placeholders
    assert a["job"].value_counts(normalize=True).iloc[-1] < 0.01  # a long tail
    assert a["age"].max() == 999  # entry errors among the numbers
    # the call's duration is known only afterwards: it separates the outcome almost alone
    from sklearn.metrics import roc_auc_score

    y = (a["y"] == "yes").to_numpy()
    assert roc_auc_score(y, a["duration"]) > 0.75 > roc_auc_score(y, a["true_p_sql"]) - 0.05
