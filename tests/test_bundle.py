"""The scoring core: fidelity of reasons and grades, batch = single lead, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.errors import UserError
from leadscore.scoring.bundle import ModelBundle, write_checksums
from leadscore.scoring.reasons import fmt_count, plural
from tests.helpers import Trained, make_leads


@pytest.fixture(scope="module")
def bundle(trained: Trained) -> ModelBundle:
    return ModelBundle.load(trained["model_path"])


def test_base_plus_contributions_is_the_raw_score_for_every_lead(bundle: ModelBundle) -> None:
    leads = make_leads(1500, 77)
    X = bundle.encode(leads)
    full = np.asarray(bundle.booster.predict(X, pred_contrib=True)).reshape(len(X), -1)
    raw = bundle.booster.predict(X, raw_score=True)
    np.testing.assert_allclose(full.sum(axis=1), raw, atol=1e-9)
    grouped, base = bundle.field_contributions(X)
    assert grouped.shape == (len(X), len(bundle.fields))  # one field, one reason
    np.testing.assert_allclose(grouped.sum(axis=1) + base, raw, atol=1e-9)
    scored = bundle.score_matrix(X)
    np.testing.assert_allclose(scored.raw, raw, atol=1e-9)


def test_fit_and_engagement_parts_are_the_group_sums_of_the_contributions(bundle: ModelBundle) -> None:
    leads = make_leads(800, 78)
    X = bundle.encode(leads)
    scored = bundle.score_matrix(X)
    grouped, _ = bundle.field_contributions(X)
    fit = grouped[:, bundle.field_groups == "fit"].sum(axis=1)
    eng = grouped[:, bundle.field_groups == "engagement"].sum(axis=1)
    np.testing.assert_allclose(scored.fit_part, fit, atol=1e-8)
    np.testing.assert_allclose(scored.engagement_part, eng, atol=1e-8)
    assert set(np.unique(scored.grade)) <= {f"{a}{b}" for a in "ABCD" for b in "1234"}


def test_single_lead_and_batch_give_identical_scores(bundle: ModelBundle) -> None:
    leads = make_leads(300, 79)
    scored = bundle.score_frame(leads, explain=3)
    assert scored.reasons is not None
    for i in range(0, 300, 37):
        one = bundle.score_record(leads.iloc[i].to_dict(), explain=3)
        assert one["p_sql"] == round(float(scored.p_sql[i]), 6)
        assert one["grade"] == scored.grade[i] and one["mql"] == bool(scored.mql[i])
        texts = [r["text"] for r in one["reasons"]["positive"] + one["reasons"]["negative"]]
        assert sorted(texts) == sorted(r.text for r in scored.reasons[i])


def test_reasons_name_the_leads_own_values(bundle: ModelBundle) -> None:
    lead = make_leads(3000, 80).sort_values("pricing_page_views_7d").iloc[-1].to_dict()
    out = bundle.score_record(lead, explain=5)
    texts = " | ".join(r["text"] for r in out["reasons"]["positive"] + out["reasons"]["negative"])
    assert len(out["reasons"]["positive"]) <= 5 and len(out["reasons"]["negative"]) <= 5
    weights = [r["weight"] for r in out["reasons"]["positive"]]
    assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
    reasons = out["reasons"]["positive"] + out["reasons"]["negative"]
    categorical = set(bundle.spec.categorical)
    named = [r for r in reasons if r["field"] in categorical]
    counted = [r for r in reasons if r["field"] not in categorical and float(lead[r["field"]]).is_integer()]
    assert named and counted, texts  # both kinds among this lead's reasons
    for r in named:  # a fit field is phrased with the lead's own value
        assert str(lead[r["field"]]) in r["text"], r
    for r in counted:  # a count with the lead's own number
        assert f"{int(lead[r['field']]):,}" in r["text"] or lead[r["field"]] == 1, r
    pricing = {r["field"]: r["text"] for r in reasons}["pricing_page_views_total"]
    assert pricing == f"Visited the pricing page {int(lead['pricing_page_views_total'])} times"


def test_a_count_below_one_reads_as_words() -> None:
    assert (fmt_count(0.024), plural(0.024)) == ("less than 1", "")
    assert (fmt_count(1), plural(1), fmt_count(3), plural(3), plural(0)) == ("1", "", "3", "s", "s")
    assert fmt_count(1200) == "1,200" and fmt_count(2.5) == "2.5" and fmt_count(float("nan")) == "?"


def test_respond_within_follows_the_service_levels(bundle: ModelBundle) -> None:
    assert bundle.respond_within({"demo_requests": 1}) == "1h"
    assert bundle.respond_within({"pricing_page_views_7d": 2}) == "1h"
    assert bundle.respond_within({"demo_requests": 0, "pricing_page_views_7d": 0}) == "24h"
    assert bundle.respond_within({}) == "24h"


def test_a_bundle_round_trips_and_a_broken_one_is_a_clear_error(bundle: ModelBundle, tmp_path: Path) -> None:
    copy = ModelBundle.load(bundle.save(tmp_path / "b"))
    X = bundle.encode(make_leads(50, 81))
    np.testing.assert_array_equal(copy.score_matrix(X).p_sql, bundle.score_matrix(X).p_sql)
    (tmp_path / "b" / "booster.txt").write_text("not a booster")
    with pytest.raises(UserError, match="damaged"):  # refused by its checksum, before LightGBM reads it
        ModelBundle.load(tmp_path / "b")
    write_checksums(tmp_path / "b")  # even with matching checksums, a broken booster is a clear error
    with pytest.raises(UserError, match="corrupt"):
        ModelBundle.load(tmp_path / "b")
    with pytest.raises(UserError, match="not found"):
        ModelBundle.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a leadscore model"):
        ModelBundle.load(tmp_path / "empty")


def test_reason_weights_add_up_to_the_distance_from_the_average_lead(bundle: ModelBundle) -> None:
    leads = make_leads(400, 82)
    X = bundle.encode(leads)
    contrib, base = bundle.field_contributions(X)
    raw = contrib.sum(axis=1) + base
    p = bundle.probability(raw)
    p0 = bundle.probability(np.array([base]))[0]
    moved = 0
    for i in range(len(X)):
        weights = bundle.reason_weights(contrib[i], raw[i])
        assert (
            np.sign(weights[np.abs(contrib[i]) > 1e-12]).tolist()
            == np.sign(contrib[i][np.abs(contrib[i]) > 1e-12]).tolist()
        )
        if abs(p[i] - p0) > 1e-9:
            np.testing.assert_allclose(weights.sum(), 100 * (p[i] - p0), atol=1e-6)
            moved += 1
    assert moved > 300


def test_group_pure_trees_read_the_same_parts_from_leaves_as_treeshap(tmp_path: Path) -> None:
    from leadscore.data.synthetic import write_dataset
    from leadscore.modeling.options import CAPACITIES, TrainOptions
    from leadscore.modeling.train import train_model
    from leadscore.scoring.contract import load_contract
    from leadscore.spec import load_spec
    from tests.helpers import make_tables

    write_dataset(make_tables(5000, 83), tmp_path)
    pure = next(c for c in CAPACITIES if c.group_pure)
    result = train_model(
        tmp_path, load_spec("synthetic"), TrainOptions(contract=load_contract()[0], capacities=(pure,))
    )
    bundle = result.bundle
    assert bundle.group_pure
    leads = make_leads(600, 84)
    X = bundle.encode(leads)
    from_leaves = bundle.score_matrix(X)  # pred_leaf path
    with_reasons = bundle.score_matrix(X, explain=2, records=leads.to_dict(orient="records"))  # TreeSHAP path
    np.testing.assert_allclose(from_leaves.fit_part, with_reasons.fit_part, atol=1e-8)
    np.testing.assert_allclose(from_leaves.engagement_part, with_reasons.engagement_part, atol=1e-8)
    np.testing.assert_allclose(from_leaves.raw, bundle.raw_score(X), atol=1e-9)
    assert (from_leaves.grade == with_reasons.grade).all()


def test_the_apis_reasons_made_in_one_pass_are_the_phrased_reasons(bundle: ModelBundle) -> None:
    from leadscore.scoring.reasons import api_reasons, reasons_dict, select_reasons

    records = make_leads(1500, 78).to_dict(orient="records")
    scored = bundle.score_matrix(bundle.encode(pd.DataFrame(records)), explain=5, records=records)
    assert scored.weights is not None and scored.reasons is not None
    # and a matrix with ties, zeros, tiny and missing weights, more fields than reasons asked
    rng = np.random.default_rng(0)
    crafted = rng.choice(
        [0.0, 0.04, -0.04, 0.05, -0.05, 1.005, -2.5, 2.5, np.nan], size=(500, len(bundle.fields))
    )
    for weights, recs in ((scored.weights, records), (crafted, records[:500])):
        for k in (1, 3, 5, 40):
            args = (recs, weights, k, bundle.fields, bundle._group_names, bundle.phraser)
            assert api_reasons(*args) == [reasons_dict(r) for r in select_reasons(*args)]
    answers, _ = bundle.answers(records[:200], explain=5)
    assert [a["reasons"] for a in answers] == [reasons_dict(r) for r in scored.reasons[:200]]


def test_one_leads_reasons_are_picked_as_in_a_batch(bundle: ModelBundle) -> None:
    """The one-lead path sorts in Python: the same reasons, order and weights as the matrix path,
    with ties, weights at the threshold, zeros, negative zeros and missing weights."""
    from leadscore.scoring.reasons import _chosen, _picks

    records = make_leads(300, 79).to_dict(orient="records")
    real = bundle.score_matrix(bundle.encode(pd.DataFrame(records)), explain=5, records=records).weights
    assert real is not None
    rng = np.random.default_rng(1)
    crafted = rng.choice(
        [0.0, -0.0, 0.0499, 0.05, -0.05, -0.0501, 1.5, 1.5, -1.5, np.nan, np.inf], size=(300, 9)
    )
    for weights in (real, crafted):
        for k in (1, 3, 5, weights.shape[1]):
            chosen, picked, valid = _chosen(weights, k)
            for i in range(len(weights)):
                expected = [
                    (at >= k, j, w)
                    for at, (j, w, ok) in enumerate(zip(chosen[i], picked[i], valid[i], strict=True))
                    if ok
                ]
                assert _picks(weights[i : i + 1], k) == [expected]


def test_a_field_the_lead_does_not_give_is_unknown_not_an_observed_absence(bundle: ModelBundle) -> None:
    """A missing value is phrased as not given (the spec's own 'missing' template where it has one),
    never as "No ... on record" next to activity the lead shows."""
    from leadscore.scoring.reasons import Phraser

    phraser = Phraser(bundle.encoder, {}, {"industry": "Industry"})
    assert phraser.phrase("industry", None, False) == "Industry: not given"
    worded = Phraser(bundle.encoder, {"industry": {"missing": "Industry left empty"}}, {})
    assert worded.phrase("industry", None, True) == "Industry left empty"
