"""The leakage guard finds post-contact columns without being told."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from leadscore.modeling.leakage import family_check, growth_check, name_hint, single_column_scan
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.contract import load_contract
from leadscore.spec import spec_from_flags
from tests.helpers import make_leads


def _guard_options(**kw: Any) -> TrainOptions:
    """Training options for a test of the leak guard: the shipped booster is one fit (the guard
    decides before the refit, and the refit's seed averaging has its own tests, test_averaging.py)."""
    return TrainOptions(contract=load_contract()[0], refit_seeds=1, **kw)


def test_name_hints_are_words_any_crm_uses() -> None:
    assert name_hint("call_duration_sec") == "duration"
    assert name_hint("Lead Status") == "status" and name_hint("Deal Stage") == "stage"
    assert name_hint("Lead Owner") == "owner" and name_hint("Rejection reason") == "reason"
    # words of one visible dataset are not hints: its spec excludes them, evidence finds the rest
    for column in ("Tags", "Lead Quality", "Asymmetrique Activity Index", "Last Notable Activity"):
        assert name_hint(column) is None, column
    assert name_hint("pricing_page_views_total") is None and name_hint("wonderful_visits") is None


def test_columns_filled_together_with_a_leak_are_suspects_too() -> None:
    rng = np.random.default_rng(4)
    n = 5000
    y = (rng.random(n) < 0.3).astype(int)
    contacted = rng.random(n) < 0.6  # post-contact scores exist only for contacted leads
    score = np.where(contacted, np.where(y == 1, rng.normal(18, 1, n), rng.normal(12, 1, n)), np.nan)
    index = np.where(contacted, rng.normal(0, 1, n), np.nan)  # weak alone, filled at the same moment
    honest = np.where(rng.random(n) < 0.3, np.nan, y * 0.5 + rng.normal(0, 1, n))
    X = np.column_stack([score, index, honest])
    names = ["Asym Activity Score", "Asym Activity Index", "Web visits"]
    findings = single_column_scan(X, y, names, names, set())
    by = {f.column: f for f in findings}
    assert by["Asym Activity Score"].suspect and not by["Asym Activity Index"].suspect
    newly = family_check(findings, {name: np.isnan(X[:, j]) for j, name in enumerate(names)})
    assert [f.column for f in newly] == ["Asym Activity Index"]
    assert "filled together with 'Asym Activity Score'" in by["Asym Activity Index"].why
    assert not by["Web visits"].suspect


def test_scan_flags_a_perfect_column_and_spares_honest_ones() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    y = (rng.random(n) < 0.2).astype(int)
    honest = y * 0.8 + rng.normal(0, 1, n)  # useful, not decisive
    leak = np.where(y == 1, rng.normal(600, 100, n), rng.choice([0.0, 50.0], n))
    X = np.column_stack([honest, leak])
    findings = single_column_scan(
        X, y, ["engagement_score", "after_call_minutes"], ["engagement_score", "after_call_minutes"], set()
    )
    by = {f.column: f for f in findings}
    assert by["after_call_minutes"].suspect and by["after_call_minutes"].single_auc > 0.95
    assert not by["engagement_score"].suspect


@pytest.mark.slow
def test_training_without_a_spec_excludes_the_synthetic_call_duration(tmp_path) -> None:
    leads = make_leads(6000, 3)
    path = tmp_path / "export.csv"
    leads.drop(columns=["true_p_sql"]).to_csv(path, index=False)
    spec = spec_from_flags("export", "sql_within_90d", ["1"], "lead_id")
    result = train_model(path, spec, _guard_options())
    assert "call_duration_sec" in result.leakage_suspects
    assert "call_duration_sec" not in result.bundle.fields
    assert result.excluded_columns["call_duration_sec"].startswith("suspected leak")
    assert result.metrics["roc_auc"] < 0.95  # honest, not the leak's 0.99
    assert "email" in result.excluded_columns and "lead_id" not in result.bundle.fields


@pytest.mark.slow
def test_a_telemarketing_call_duration_is_flagged_even_when_it_is_not_decisive(tmp_path) -> None:
    # Like a bank telemarketing export: call length is known only after the call, and is strong
    # but far from perfect on its own.
    rng = np.random.default_rng(5)
    n = 5000
    age = rng.integers(18, 90, n)
    balance = rng.normal(1500, 3000, n)
    job = rng.choice(["admin.", "technician", "services", "management", "retired", "student"], n)
    latent = 0.02 * (age - 40) + 0.0001 * balance + np.where(np.isin(job, ["retired", "student"]), 0.8, 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-(latent - 2)))).astype(int)
    duration = np.round(rng.gamma(2, 120, n) * np.where(y == 1, 2.2, 1.0))
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "age": age,
            "balance": balance,
            "job": job,
            "duration": duration,
            "y": np.where(y == 1, "yes", "no"),
        }
    )
    path = tmp_path / "bank.csv"
    frame.to_csv(path, index=False)
    spec = spec_from_flags("bank", "y", ["yes"], "id")
    result = train_model(path, spec, _guard_options())
    assert result.leakage_suspects == ["duration"]
    kept = train_model(path, spec, _guard_options(keep=["duration"]))
    assert "duration" in kept.bundle.fields and any("kept 'duration'" in n for n in kept.notes)


def test_a_rollup_counted_as_of_the_export_is_caught_by_its_growth(tmp_path) -> None:
    """A CRM's "Number of Email Opens" counts opens up to the export: older leads had longer to add to
    it. Among the leads that never became SQL it follows how long before the export they were scored,
    which a feature computed as of the scoring time does not; its link to the outcome alone is too
    weak for the single-column scan."""
    leads = make_leads(6000, 8, fault_rate=0.0)
    rng = np.random.default_rng(8)
    scored = pd.to_datetime(leads["scored_at"])
    age_days = (scored.max() - scored).dt.total_seconds().to_numpy() / 86400
    later = rng.poisson(0.05 * age_days + 3 * leads["sql_within_90d"].to_numpy())  # opens after scoring
    leads["Number of Email Opens"] = leads["email_opens_30d"].to_numpy() + later
    path = tmp_path / "export.csv"
    leads.drop(columns=["true_p_sql", "true_days_to_sql", "call_duration_sec"]).to_csv(path, index=False)
    spec = spec_from_flags("export", "sql_within_90d", ["1"], "lead_id", "scored_at")
    result = train_model(path, spec, _guard_options(search_trials=0))
    found = {f.column: f for f in result.leakage_findings}
    assert found["Number of Email Opens"].single_auc < 0.9  # the outcome alone would not catch it
    assert result.leakage_suspects == ["Number of Email Opens"], result.leakage_suspects
    assert "before the export" in found["Number of Email Opens"].why
    assert "Number of Email Opens" not in result.bundle.fields and "email_opens_30d" in result.bundle.fields


def test_the_growth_check_spares_point_in_time_features() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    scored = np.sort(rng.uniform(0, 400, n)) * 86_400_000
    grows = rng.poisson(0.1 * (scored.max() - scored) / 86_400_000).astype(float)
    honest = rng.poisson(3, n).astype(float)
    X = np.column_stack([grows, grows, honest])
    names = ["as_of_export", "declared_rollup", "honest"]
    findings = single_column_scan(X, np.zeros(n, dtype=int) | (rng.random(n) < 0.1), names, names, set())
    newly = growth_check(
        findings, X, np.zeros(n, dtype=int), scored, names, set(), frozenset({"declared_rollup"})
    )
    assert [f.column for f in newly] == ["as_of_export"]


def test_a_category_whose_mix_follows_the_leads_age_is_not_read_as_grown(tmp_path) -> None:
    """A campaign field: older leads came from many small campaigns, recent ones from a few large
    ones. Its value shares (the encoder's second column of a category) then follow the leads' age at
    the export, but the field was filled when the lead arrived: neither its code nor its share is a
    count, and the growth check must not drop it."""
    leads = make_leads(6000, 9, fault_rate=0.0)
    rng = np.random.default_rng(9)
    scored = pd.to_datetime(leads["scored_at"])
    age = ((scored.max() - scored).dt.total_seconds() / 86400).to_numpy()
    old = rng.integers(0, 60, len(leads))  # sixty small campaigns, each held by about 50 old leads
    new = rng.integers(0, 3, len(leads))  # three large ones
    recent = age < np.quantile(age, 0.6)  # the training rows (the older ones) hold both kinds
    leads["Campaign"] = np.where(recent, [f"spring-{i}" for i in new], [f"legacy-{i}" for i in old])
    path = tmp_path / "export.csv"
    leads.drop(columns=["true_p_sql", "true_days_to_sql", "call_duration_sec"]).to_csv(path, index=False)
    spec = spec_from_flags("export", "sql_within_90d", ["1"], "lead_id", "scored_at")
    result = train_model(path, spec, _guard_options(search_trials=0))
    assert "Campaign" not in result.leakage_suspects, result.leakage_suspects
    assert "Campaign" in result.bundle.fields
    encoder = result.bundle.encoder
    share = [j for j in encoder.share_indices if encoder.feature_fields[j] == "Campaign"]
    assert share, "the campaign field has a share column"
    shares = encoder.transform(leads)[:, share[0]]
    rho = pd.Series(shares).corr(pd.Series(age), method="spearman")
    assert rho < -0.5, rho  # the shares follow the age: the recent campaigns are the large ones
