"""The training pipeline: splits, baselines, small data, quality on synthetic and real data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from leadscore.data.synthetic import write_dataset
from leadscore.errors import UserError
from leadscore.modeling.dataset import split_indices
from leadscore.modeling.options import CAPACITIES, TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.contract import load_contract
from leadscore.spec import load_spec, spec_from_flags
from tests.helpers import make_leads, make_tables


def _options(**kw: Any) -> TrainOptions:
    return TrainOptions(contract=load_contract()[0], **kw)


def test_time_split_tests_on_the_most_recent_fifth() -> None:
    leads = make_leads(2000, 1)
    spec = load_spec("synthetic")
    y = leads["sql_within_90d"].to_numpy()
    split = split_indices(leads, y, spec, 0)
    fit, valid, test, kind = split.fit, split.valid, split.test, split.kind
    assert kind == "time"
    assert len(test) == 0.2 * len(leads)
    assert leads["scored_at"].iloc[test].min() >= leads["scored_at"].iloc[valid].max()
    assert leads["scored_at"].iloc[valid].min() >= leads["scored_at"].iloc[fit].max()
    assert len(set(fit) | set(valid) | set(test)) == len(leads)


def test_without_a_time_column_the_split_is_stratified_and_seeded() -> None:
    leads = make_leads(2000, 1)
    spec = spec_from_flags("x", "sql_within_90d")
    y = leads["sql_within_90d"].to_numpy()
    a = split_indices(leads, y, spec, 3)
    b = split_indices(leads, y, spec, 3)
    assert a.kind == "stratified"
    assert all(np.array_equal(getattr(a, part), getattr(b, part)) for part in ("fit", "valid", "test"))
    assert y[a.test].mean() == pytest.approx(y.mean(), abs=0.01)


@pytest.fixture(scope="module")
def synthetic_result(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("train")
    write_dataset(make_tables(20000, 31), out)
    return train_model(out, load_spec("synthetic"), _options())


def test_model_beats_both_baselines_and_is_calibrated(synthetic_result) -> None:
    r = synthetic_result
    truth = roc_auc_score(r.test_y, r.test_frame["true_p_sql"])
    assert r.metrics["roc_auc"] > r.baselines["points_model"]["roc_auc"] + 0.02
    assert r.metrics["roc_auc"] >= r.baselines["logistic_regression"]["roc_auc"]
    assert r.metrics["roc_auc"] > truth - 0.025
    assert r.metrics["ece"] < 0.02
    assert r.metrics["brier"] < r.baselines["points_model"]["brier"]
    assert set(r.baselines) == {"logistic_regression", "plain_lightgbm", "points_model"}


def test_the_promise_comes_with_how_far_it_can_move(synthetic_result, tmp_path: Path) -> None:
    r = synthetic_result
    cut = r.cutoff  # the shipped threshold on the out-of-fold scores of every labelled lead
    assert cut.measured_on == f"out-of-fold scores of {r.bundle.meta.learned_from['rows']:,} labelled leads"
    observed, mqls = cut.expected_sql_rate, cut.mql_count_test
    lo, hi = cut.expected_sql_rate_interval
    assert lo < observed < hi  # the bootstrap interval holds the rate it was drawn around
    binomial = 2 * 1.645 * np.sqrt(observed * (1 - observed) / mqls)  # a 90% normal interval
    assert 0.7 < (hi - lo) / binomial < 1.4, (lo, hi, binomial)
    share_lo, share_hi = cut.expected_mql_share_interval
    assert share_lo < cut.expected_mql_share < share_hi
    saved = ModelBundle.load(r.bundle.save(tmp_path / "b")).meta.cutoff  # what serving reads
    assert saved.expected_sql_rate_interval == pytest.approx([lo, hi])
    assert saved.expected_mql_share_interval == pytest.approx([share_lo, share_hi])


def test_cutoff_keeps_the_contracts_promise_and_beats_the_points_model(synthetic_result) -> None:
    cut = synthetic_result.cutoff
    assert cut.expected_sql_rate >= 0.27  # contract: 30% (measured on unseen leads)
    assert 0.05 < cut.expected_mql_share < 0.4
    assert cut.expected_sql_rate > cut.points_model_sql_rate_at_same_volume
    assert cut.expected_mql_per_week > 0


def test_excluded_and_leaking_columns_are_not_features(synthetic_result) -> None:
    fields = set(synthetic_result.bundle.fields)
    assert not fields & {"true_p_sql", "call_duration_sec", "email", "sql_within_90d", "lead_id"}
    notes = synthetic_result.notes
    assert any(n.startswith("left out") and "duplicate leads" in n for n in notes), notes
    assert any(n.startswith("validation: warning: column 'email'") for n in notes), notes


def test_same_seed_same_model(tmp_path: Path) -> None:
    write_dataset(make_tables(4000, 2), tmp_path)
    a = train_model(tmp_path, load_spec("synthetic"), _options(seed=5))
    b = train_model(tmp_path, load_spec("synthetic"), _options(seed=5))
    assert a.bundle.booster_text == b.bundle.booster_text
    assert a.bundle.version == b.bundle.version


def test_too_few_examples_refuses_and_offers_the_points_model(tmp_path: Path) -> None:
    leads = make_leads(3000, 4)
    pos = leads[leads["sql_within_90d"] == 1].head(30)
    small = pd.concat([pos, leads[leads["sql_within_90d"] == 0].head(500)])
    path = tmp_path / "small.csv"
    small.to_csv(path, index=False)
    # A sample of an export: its day is the export's, not the sample's latest lead (whose recent
    # windows would otherwise count as open).
    exported = load_spec("synthetic").model_copy(update={"observed_until": leads["scored_at"].max().date()})
    with pytest.raises(UserError, match=r"only 30 SQL .* leadscore points"):
        train_model(path, exported, _options())


@pytest.mark.slow
def test_small_data_trains_and_reports_an_interval(tmp_path: Path) -> None:
    leads = make_leads(3000, 4, fault_rate=0.0)
    pos = leads[leads["sql_within_90d"] == 1].head(120)
    small = pd.concat([pos, leads[leads["sql_within_90d"] == 0].head(900)])
    path = tmp_path / "small.csv"
    small.to_csv(path, index=False)
    r = train_model(path, load_spec("synthetic"), _options())
    assert r.uncertainty is not None and r.uncertainty["folds"] == 5
    assert r.uncertainty["roc_auc_low"] < r.uncertainty["roc_auc_mean"] < r.uncertainty["roc_auc_high"]
    assert any("small data" in n for n in r.notes)


@pytest.mark.slow
@pytest.mark.realdata
def test_xeducation_with_its_spec_is_honest_and_good(xeducation_path: Path) -> None:
    r = train_model(xeducation_path, load_spec("xeducation"), _options())
    assert r.metrics["roc_auc"] >= 0.89
    assert r.metrics["roc_auc"] > r.baselines["logistic_regression"]["roc_auc"]
    assert r.metrics["roc_auc"] > r.baselines["points_model"]["roc_auc"]
    # the bar of issue 14: a careful plain LightGBM on the same rows, fields and test leads
    assert r.metrics["roc_auc"] >= r.baselines["plain_lightgbm"]["roc_auc"]
    # the shipped model's calibration keeps its booster's order: no ties it did not have, the same AUC
    raw = r.bundle.raw_score(r.test_X)
    shipped = r.bundle.probability(raw)
    assert len(np.unique(shipped)) == len(np.unique(raw))
    assert abs(roc_auc_score(r.test_y, shipped) - roc_auc_score(r.test_y, raw)) < 0.0005
    # it learned from every labelled lead, the test leads too (issue 30)
    learned = r.bundle.meta.learned_from
    assert learned is not None and learned["finalized"] and learned["rows"] == r.n_train + r.n_test
    assert {"Tags", "Lead Quality", "Asymmetrique Activity Score"} <= set(r.excluded_columns)
    assert not {"Tags", "Lead Quality"} & set(r.bundle.fields)


@pytest.mark.slow
@pytest.mark.realdata
def test_xeducation_without_a_spec_flags_tags(xeducation_path: Path) -> None:
    # One shallow shape and one fit at the refit: the leak guard is under test here, not the choice
    # of shape (which on this file prefers deep trees: too big for the TreeSHAP tables, so every
    # leak check walks them) nor the refit's seed averaging (test_averaging.py).
    options = _options(capacities=(CAPACITIES[1],), refit_seeds=1)
    r = train_model(xeducation_path, spec_from_flags("leads", "Converted", ["1"], "Prospect ID"), options)
    assert "Tags" in r.leakage_suspects
    assert "Tags" not in r.bundle.fields
    assert "Lead Number" in r.excluded_columns  # identifier-like


def test_the_run_reports_each_shapes_auc_and_reason_cost(synthetic_result) -> None:
    params = synthetic_result.params
    shapes = [c.name for c in CAPACITIES] + ["searched"]
    for name in shapes:
        assert 0.5 < params[f"capacity_auc_{name}"] <= 1.0
        assert params[f"capacity_reason_ms_{name}"] > 0
    assert params["capacity"] in shapes
    assert (
        4 <= params["capacity_searched_num_leaves"] <= 63
        and 0.02 <= params["capacity_searched_learning_rate"] <= 0.2
    )
    best = max(params[f"capacity_auc_{name}"] for name in shapes)
    assert params[f"capacity_auc_{params['capacity']}"] == best  # small data: the best held-out AUC


def test_training_threads_come_from_the_setting_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.config import get_settings

    monkeypatch.setenv("LEADSCORE_NUM_THREADS", "3")
    get_settings.cache_clear()
    assert _options().num_threads == 3  # a notebook's TrainOptions, as the CLI's
    assert _options(num_threads=1).num_threads == 1


def test_the_search_budget_is_counted_in_rows_and_the_cheapest_shape_within_tolerance_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from leadscore.modeling.boosters import _prefer
    from leadscore.modeling.search import SEARCH_MAX_TRIALS, search_trials

    assert search_trials(2_000, _options()) == 2  # the suite's LEADSCORE_SEARCH_TRIALS
    assert search_trials(2_000, _options(search_trials=0)) == 0
    assert search_trials(2_000, _options(search_trials=5)) == 5
    import os

    from leadscore.config import get_settings

    del os.environ["LEADSCORE_SEARCH_TRIALS"]
    get_settings.cache_clear()
    assert search_trials(6_000, _options()) == SEARCH_MAX_TRIALS
    assert search_trials(50_000, _options()) == 3  # a large export: three trials on a 50k sample
    shapes = CAPACITIES
    aucs = {"group-pure-d3": 0.800, "shallow-d3": 0.8015, "deeper-d6": 0.803}
    units = {"group-pure-d3": 9e4, "shallow-d3": 8e4, "deeper-d6": 9e5}
    big = 500_000
    assert _prefer(shapes, aucs, units, big).name == "shallow-d3"  # within 0.002 of the best and cheaper
    assert _prefer(shapes, {**aucs, "deeper-d6": 0.81}, units, big).name == "deeper-d6"  # clearly better
    tied = {**aucs, "group-pure-d3": 0.8015}
    assert (
        _prefer(shapes, tied, {**units, "shallow-d3": 9e4}, big).name == "group-pure-d3"
    )  # a tie: the earlier
    assert _prefer(shapes, aucs, units, 20_000).name == "deeper-d6"  # small data: the best AUC


def test_the_full_search_proposes_a_shape_and_the_same_seed_gives_the_same_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from leadscore.config import get_settings
    from leadscore.modeling.boosters import explain_units

    monkeypatch.delenv("LEADSCORE_SEARCH_TRIALS")
    get_settings.cache_clear()
    write_dataset(make_tables(3000, 6), tmp_path)
    a = train_model(tmp_path, load_spec("synthetic"), _options(seed=3))
    b = train_model(tmp_path, load_spec("synthetic"), _options(seed=3))
    assert a.bundle.booster_text == b.bundle.booster_text  # the search is seeded and counted, not timed
    truth = roc_auc_score(a.test_y, a.test_frame["true_p_sql"])
    # The search's cross-validated AUC is a real one: near what the truth reaches (measured 0.001 above)
    assert abs(a.params["capacity_auc_searched"] - truth) < 0.05 and "capacity_searched_lambda_l2" in a.params
    assert explain_units(a.bundle.booster) > 0
