"""The shipped model learns from every labelled lead; the evaluation of its recipe stays held out."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from leadscore.data.synthetic import write_dataset
from leadscore.modeling import finalize as finalize_module
from leadscore.modeling.dataset import read_training_data
from leadscore.modeling.options import CAPACITIES, TrainOptions
from leadscore.modeling.train import TrainResult, train_model
from leadscore.scoring.contract import load_contract
from leadscore.scoring.segment_keys import SegmentReader
from leadscore.spec import SegmentRule, load_spec, spec_from_flags
from tests.helpers import make_leads, make_tables

BAGGING = 0.8  # lgb_params' bagging_fraction: each tree's root sees this share of the rows


def _options(**kw: Any) -> TrainOptions:
    return TrainOptions(contract=load_contract()[0], capacities=(CAPACITIES[1],), search_trials=0, **kw)


def _learned(result: TrainResult) -> dict[str, Any]:
    learned = result.bundle.meta.learned_from
    assert learned is not None
    return learned


def _rows_per_tree(result: TrainResult) -> float:
    """How many rows the exported booster's trees were grown on, on average (bagged)."""
    trees = result.bundle.booster.dump_model()["tree_info"]
    return float(np.mean([t["tree_structure"]["internal_count"] for t in trees]))


@pytest.fixture(scope="module")
def flat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flat") / "leads.csv"
    make_leads(4000, 11, fault_rate=0.0).drop(columns=["scored_at"]).to_csv(path, index=False)
    return path


def _flat_spec() -> Any:
    return spec_from_flags("flat", "sql_within_90d", None, "lead_id")


def test_the_exported_booster_learned_from_every_labelled_lead(flat: Path) -> None:
    shipped = train_model(flat, _flat_spec(), _options())
    held = train_model(flat, _flat_spec(), _options(finalize=False))
    labelled = shipped.n_train + shipped.n_test
    assert _learned(shipped)["rows"] == labelled == 4000
    # The trees themselves say it: grown on a bagged share of every lead, not of the split's 80%.
    assert _rows_per_tree(shipped) == pytest.approx(BAGGING * labelled, rel=0.02)
    assert _rows_per_tree(held) == pytest.approx(BAGGING * held.n_train, rel=0.02)
    assert held.n_train == int(0.8 * labelled)
    # The evaluation is the same recipe's, on the same held-out leads, either way.
    assert shipped.metrics == held.metrics and shipped.baselines == held.baselines
    sqls = int(pd.read_csv(flat)["sql_within_90d"].sum())
    assert _learned(shipped)["positives"] == sqls
    assert _learned(held) == {
        "finalized": False,
        "rows": held.n_train,
        "positives": _learned(held)["positives"],
        "trees": held.bundle.booster.num_trees(),
        "why": "--no-finalize",
        "seeds": 3,  # the evaluated cross-fitted booster averages three seeds' fits too
    }
    assert abs(_learned(held)["positives"] - 0.8 * sqls) <= 1  # the stratified training fifths' SQLs
    # The shipped cutoff is set and measured on every lead's out-of-fold score: its promise holds there.
    cut = shipped.cutoff
    assert cut.measured_on == "out-of-fold scores of 4,000 labelled leads"
    assert cut.expected_mql_share is not None and cut.expected_sql_rate is not None
    assert cut.mql_count_test == round(cut.expected_mql_share * labelled)
    assert cut.expected_sql_rate >= (load_contract()[0].min_sql_rate or 0.0) - 0.02
    oof = _learned(shipped)["out_of_fold"]
    assert 0.75 < oof["roc_auc"] < 0.95 and oof["ece"] < 0.03  # honest scores: no lead scored by its own fit


def test_a_category_first_seen_in_the_test_leads_is_known_to_the_shipped_model(tmp_path: Path) -> None:
    tables = make_tables(6000, 12, fault_rate=0.0)
    leads = tables["leads"].to_pandas()
    recent = leads["scored_at"] >= leads["scored_at"].quantile(0.85)  # the time split's test fifth
    leads.loc[recent & (leads.index % 3 == 0), "lead_source"] = "Partner webinar"
    path = tmp_path / "leads.csv"
    leads.to_csv(path, index=False)
    spec = load_spec("synthetic").model_copy(update={"observed_until": None})
    shipped = train_model(path, spec, _options())
    held = train_model(path, spec, _options(finalize=False))

    def sources(result: TrainResult) -> list[str]:
        return result.bundle.encoder.field("lead_source").categories

    assert "partner webinar" in sources(shipped) and "partner webinar" not in sources(held)
    labelled = shipped.n_train + shipped.n_valid + shipped.n_test  # closed windows only
    assert shipped.params["shipped_rows"] == _learned(shipped)["rows"] == labelled


def test_above_the_cross_fit_size_one_refit_keeps_the_evaluated_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_dataset(make_tables(8000, 13, observed_until="uncut"), tmp_path)
    monkeypatch.setattr(finalize_module, "CROSSFIT_MAX_ROWS", 1000)  # the large-export path, small and fast
    shipped = train_model(tmp_path, load_spec("synthetic"), _options())
    learned = _learned(shipped)
    assert (
        learned["method"] == "refit" and learned["rows"] == shipped.n_train + shipped.n_valid + shipped.n_test
    )
    assert _rows_per_tree(shipped) == pytest.approx(BAGGING * learned["rows"], rel=0.02)
    # matched on the validation and test leads: the holdout booster never saw them
    assert learned["calibrated_on"] == shipped.n_valid + shipped.n_test
    # Calibrated by quantiles onto the evaluated model's held-out scores: the same level on the test
    # leads, the same threshold, and the promise is the held-out one.
    p = shipped.bundle.probability(shipped.bundle.raw_score(shipped.test_X))
    assert abs(p.mean() - shipped.test_p.mean()) < 0.01
    assert abs(p.mean() - shipped.test_y.mean()) < 0.02
    assert (shipped.cutoff.measured_on or "").startswith(f"{shipped.n_test:,} held-out test leads")
    assert len(np.unique(p)) == len(np.unique(shipped.bundle.raw_score(shipped.test_X)))


def test_the_time_head_reads_the_shipped_models_columns(tmp_path: Path) -> None:
    write_dataset(make_tables(6000, 14), tmp_path)
    shipped = train_model(tmp_path, load_spec("synthetic"), _options())
    head = shipped.bundle.time_head
    assert head is not None
    assert head.booster.num_feature() == len(shipped.bundle.encoder.feature_names) + 1  # + the interval
    frame = pd.DataFrame(shipped.test_frame.head(50))
    X = shipped.bundle.encoder.transform(frame)
    cum = head.cumulative(X)
    assert np.all(np.diff(cum, axis=1) >= 0) and np.all((cum >= 0) & (cum <= 1))


def test_a_cross_fitted_evaluation_is_matched_on_its_test_leads_only(
    flat: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refit path matches the evaluated model's scores of leads it never trained on: a cross-fitted
    evaluation learned from its validation leads too, so only the test leads qualify."""
    monkeypatch.setattr(finalize_module, "CROSSFIT_MAX_ROWS", 1000)
    shipped = train_model(flat, _flat_spec(), _options())
    learned = _learned(shipped)
    assert learned["method"] == "refit" and learned["rows"] == 4000
    assert learned["calibrated_on"] == shipped.n_test == 800
    p = shipped.bundle.probability(shipped.bundle.raw_score(shipped.test_X))
    assert abs(p.mean() - shipped.test_p.mean()) < 0.01


def test_a_segmented_run_refits_each_winning_segment_model_on_its_leads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the cross-fit size too: each segment whose own model won is fitted on a fresh 80/20 split
    of all its leads (calibrated and cut off on the fifth), with the finalized encoder."""
    write_dataset(make_tables(8000, 13, segment_effect=True, observed_until="uncut"), tmp_path)
    monkeypatch.setattr(finalize_module, "CROSSFIT_MAX_ROWS", 1000)
    spec = load_spec("synthetic").model_copy(
        update={"segments": SegmentRule.model_validate({"by": ["region"]})}
    )
    shipped = train_model(tmp_path, spec, _options())
    learned, routing = _learned(shipped), shipped.bundle.meta.segments
    assert routing is not None and learned["method"] == "refit"
    keys = SegmentReader(routing.by, routing.placeholders, routing.aliases).keys(
        read_training_data(tmp_path, spec, None).frame
    )
    own = {k: m for k, m in routing.models.items() if m.model == "segment"}
    assert own and set(learned["segments"]) == {m.name for m in own.values()}
    for key, model in own.items():
        n = int((keys == key).sum())
        assert learned["segments"][model.name] == {
            "rows": n,
            "positives": learned["segments"][model.name]["positives"],
            "trees": _segment_booster(shipped, model.booster).num_trees(),
            "method": "holdout",
        }
        trees = _segment_booster(shipped, model.booster).dump_model()["tree_info"]
        grown = np.mean([t["tree_structure"]["internal_count"] for t in trees])
        assert grown == pytest.approx(BAGGING * 0.8 * n, rel=0.05)  # the fit four-fifths of all of them
        assert model.cutoff is not None
        calibrated = re.fullmatch(r"scores of ([\d,]+) of its labelled leads", model.cutoff.measured_on or "")
        assert calibrated and 0.15 * n < int(calibrated.group(1).replace(",", "")) < 0.25 * n
    for model in routing.models.values():  # no policy of its own: the finalized global cutoff
        assert model.model == "segment" or model.threshold == shipped.bundle.threshold


def _segment_booster(result: TrainResult, name: str | None) -> lgb.Booster:
    assert name is not None
    return lgb.Booster(model_str=result.bundle.segment_boosters[name])


def test_a_refit_after_a_cross_fitted_evaluation_counts_one_fits_trees(
    flat: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export without a time column whose training fifths are cross-fitted (their booster averages
    three seeds' fits) but whose labelled leads are too many to cross-fit again: the one refit on
    every lead grows one fit's trees scaled to the larger data, not the average's three fits'."""
    monkeypatch.setattr(finalize_module, "CROSSFIT_MAX_ROWS", 3500)  # 3,200 training leads, 4,000 labelled
    held = train_model(flat, _flat_spec(), _options(finalize=False))
    shipped = train_model(flat, _flat_spec(), _options())
    assert _learned(held)["seeds"] == 3 and _learned(shipped)["method"] == "refit"
    one_fit = held.bundle.booster.num_trees() // 3
    assert held.bundle.booster.num_trees() == 3 * one_fit
    scaled = max(10, int(round(one_fit * np.sqrt(4000 / 3200))))
    assert shipped.bundle.booster.num_trees() == _learned(shipped)["trees"] == scaled
