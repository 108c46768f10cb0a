"""TreeSHAP as table lookups: LightGBM's own values, or LightGBM itself when the tables cannot be trusted."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from leadscore.modeling.options import CAPACITIES, TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring import treeshap
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.contract import load_contract
from leadscore.spec import load_spec
from tests.helpers import Trained, make_leads


@pytest.fixture(scope="module")
def small_trees(synthetic_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on the session's synthetic data in the small-tree shape the tables serve
    (the session's own model takes whichever shape its data favours)."""
    shape = tuple(c for c in CAPACITIES if c.name == "shallow-d3")
    options = TrainOptions(contract=load_contract()[0], capacities=shape, search_trials=0)
    result = train_model(synthetic_dir, load_spec("synthetic"), options)
    return result.bundle.save(tmp_path_factory.mktemp("small-trees") / "bundle")


def _lightgbm(booster: lgb.Booster, X: np.ndarray, group: np.ndarray) -> np.ndarray:
    return np.asarray(booster.predict(X, pred_contrib=True)).reshape(len(X), -1) @ group


def _awkward(X: np.ndarray, thresholds: dict[int, list[float]], seed: int) -> np.ndarray:
    """Rows at and beside every threshold, at zero, LightGBM's zero band, missing, negative, huge."""
    rng = np.random.default_rng(seed)
    out = X[rng.integers(0, len(X), size=3000)].copy()
    for f, ts in thresholds.items():
        t = np.asarray(ts, dtype=np.float64)
        odd = np.array([0.0, -0.0, 1e-36, -1e-36, np.nan, -1.0, 1e300, -1e300, np.inf, -np.inf])
        pool: np.ndarray = np.concatenate([t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), odd])
        rows = rng.random(len(out)) < 0.5
        out[rows, f] = rng.choice(pool, size=int(rows.sum()))
    return out


def _thresholds(booster: lgb.Booster) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            if node["decision_type"] == "<=":
                found.setdefault(int(node["split_feature"]), []).append(float(node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return found


def test_the_trained_models_reasons_come_from_tables_equal_to_lightgbm(small_trees: Path) -> None:
    bundle = ModelBundle.load(small_trees)
    tables = bundle.shap_tables
    assert tables is not None and tables.trees == bundle.booster.num_trees() - _stumps(bundle.booster)
    X = bundle.encode(make_leads(2000, 91, fault_rate=0.1))
    X = np.vstack([X, _awkward(X, _thresholds(bundle.booster), 5)])
    want = _lightgbm(bundle.booster, X, bundle._group)
    got, base = bundle.field_contributions(X)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    # a lead alone, or a few, get the rows' values of the whole block (the service's one lead)
    for i in range(0, 400, 7):
        assert np.array_equal(bundle.field_contributions(X[i : i + 1])[0], got[i : i + 1])
        assert np.array_equal(bundle.field_contributions(X[i : i + 5])[0], got[i : i + 5])
    first = np.asarray(bundle.booster.predict(X[:1], pred_contrib=True))
    assert base == pytest.approx(float(first[0, -1]), abs=1e-12)
    # and the whole answer (P(SQL), parts, phrased reasons) is the one LightGBM's walk gives
    records = make_leads(300, 92).to_dict(orient="records")
    fast, _ = bundle.answers(records, explain=5)
    bundle._shap = None  # LightGBM explains
    slow, _ = bundle.answers(records, explain=5)
    for a, b in zip(fast, slow, strict=True):
        assert a["p_sql"] == pytest.approx(b["p_sql"], abs=1e-9)
        assert [r["field"] for r in a["reasons"]["positive"]] == [
            r["field"] for r in b["reasons"]["positive"]
        ]
        assert [r["text"] for r in a["reasons"]["negative"]] == [r["text"] for r in b["reasons"]["negative"]]


def _stumps(booster: lgb.Booster) -> int:
    return sum("split_feature" not in t["tree_structure"] for t in booster.dump_model()["tree_info"])


@pytest.mark.parametrize(
    "params",
    [
        {"zero_as_missing": True},  # splits whose missing type is Zero
        {"use_missing": False},  # missing read as zero (missing type None)
        {},  # NaN to the side chosen in training, categories split as sets
    ],
    ids=["zero-as-missing", "no-missing", "nan-and-categories"],
)
def test_categories_missing_values_and_zeros_take_lightgbms_side(params: dict[str, object]) -> None:
    rng = np.random.default_rng(3)
    n = 4000
    X = np.column_stack(
        [
            rng.normal(size=n),
            rng.integers(0, 12, size=n).astype(float),  # a category code
            rng.choice([0.0, 1.0, 2.0, 5.0], size=n),  # a count with many zeros
            rng.exponential(size=n),
        ]
    )
    X[rng.random((n, 4)) < 0.1] = np.nan
    logit = (
        np.nan_to_num(X[:, 0])
        + np.isin(X[:, 1], [2, 3, 7])
        - 0.7 * np.nan_to_num(X[:, 2])
        + np.isnan(X[:, 3])
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": 7,
            "max_depth": 3,
            "verbose": -1,
            "seed": 1,
            "min_data_per_group": 20,
            "cat_smooth": 1,
            "max_cat_to_onehot": 2,
            **params,
        },
        lgb.Dataset(X, y, categorical_feature=[1]),
        num_boost_round=60,
    )
    # (Here a split sends the missing values right and every number left: its threshold is
    # infinite, which LightGBM's dump writes as 1e300.)
    group = np.zeros((5, 3))  # two features make one field: contributions add up per field
    group[0, 0] = group[1, 1] = group[2, 2] = group[3, 2] = 1.0
    tables = treeshap.build(booster, group)
    assert tables is not None
    Xt = np.vstack([X, _awkward(X, _thresholds(booster), 6)])
    Xt[:50, 1] = [
        -3.0,
        -0.5,
        0.5,
        2.5,
        11.9,
        40.0,
        2.0**40,
        np.nan,
        np.inf,
        -np.inf,
    ] * 5  # odd category codes
    block = tables.contributions(Xt)
    np.testing.assert_allclose(block, _lightgbm(booster, Xt, group), rtol=0, atol=1e-9)
    # one row at a time (its cells found in plain Python): the block's values to the bit
    assert np.array_equal(np.array([tables.contributions_one(x) for x in Xt]), block)


def test_big_trees_and_tables_that_disagree_leave_the_model_to_lightgbm(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(3000, 12))
    y = (X.sum(axis=1) + rng.normal(size=3000) > 0).astype(int)
    deep = lgb.train(
        {"objective": "binary", "num_leaves": 255, "max_depth": 12, "min_data_in_leaf": 2, "verbose": -1},
        lgb.Dataset(X, y),
        num_boost_round=5,
    )
    assert treeshap.build(deep, np.eye(13, 12)) is None  # too many combinations of cells per tree
    # A wrong reading of LightGBM's split rule is caught by the check against LightGBM itself.
    monkeypatch.setattr(treeshap._Split, "lefts", lambda self, x: x < self.threshold)
    monkeypatch.setattr(treeshap, "_BUILT", OrderedDict())  # tables built by earlier tests: forgotten
    bundle = ModelBundle.load(trained["model_path"])
    assert bundle.shap_tables is None
    X = bundle.encode(make_leads(200, 93))
    got, _ = bundle.field_contributions(X)
    np.testing.assert_allclose(got, _lightgbm(bundle.booster, X, bundle._group), rtol=0, atol=1e-12)


def test_tables_travel_to_a_scorer_and_threads_do_not_share_buffers(small_trees: Path) -> None:
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    bundle = ModelBundle.load(small_trees)
    bundle.prepare_reasons()
    copy = pickle.loads(pickle.dumps(bundle))  # as a scorer process receives the model
    assert copy.shap_tables is not None
    blocks = [bundle.encode(make_leads(700, seed)) for seed in (94, 95, 96, 97)]
    want = [_lightgbm(bundle.booster, X, bundle._group) for X in blocks]
    with ThreadPoolExecutor(4) as pool:  # several threads on one model's tables at once
        got = list(pool.map(lambda X: copy.field_contributions(X)[0], blocks * 3))
    for g, w in zip(got, want * 3, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-9)


def test_bundles_of_one_booster_share_one_build(small_trees: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training looks at one booster through several bundles (drafts, then the final one): the
    tables are built once for all of them, and only for the same trees grouped the same way."""
    monkeypatch.setattr(treeshap, "_BUILT", OrderedDict())
    builds: list[int] = []
    real = treeshap.build

    def counted(booster: Any, group: np.ndarray) -> Any:
        builds.append(booster.num_trees())
        return real(booster, group)

    monkeypatch.setattr(treeshap, "build", counted)
    first, second = ModelBundle.load(small_trees), ModelBundle.load(small_trees)
    assert first.booster is not second.booster  # each bundle parses its own copy of the trees
    assert first.shap_tables is not None and second.shap_tables is first.shap_tables
    assert len(builds) == 1
    regrouped = np.zeros_like(first._group)
    regrouped[:, 0] = 1.0  # every feature one field: other tables
    other = treeshap.build_once(first.booster, regrouped, first.booster_text)
    assert other is not first.shap_tables and len(builds) == 2
    fewer = first.booster_text.replace("Tree=0\n", "Tree=0 \n", 1)  # other model text: other tables
    treeshap.build_once(first.booster, first._group, fewer)
    treeshap.build_once(first.booster, first._group, first.booster_text)  # forgotten: only 2 are kept
    assert len(builds) == 4 and len(treeshap._BUILT) == treeshap.KEEP_BUILT


@pytest.mark.parametrize("splits", [3, 62, 70])
def test_a_trees_cells_are_numbered_in_the_order_they_first_appear(splits: int) -> None:
    # each model-wide cell's sides at the tree's splits -> the tree's own cell; above 62 splits
    # the sides no longer fit one integer's bits and the columns are compared whole
    rng = np.random.default_rng(splits)
    distinct = rng.random((splits, 6)) < 0.5
    sides = distinct[:, rng.integers(0, 6, 300)]
    first, number = treeshap._first_seen(sides)
    ids: dict[bytes, int] = {}
    want = [ids.setdefault(sides[:, c].tobytes(), len(ids)) for c in range(sides.shape[1])]
    assert number.tolist() == want
    assert first.tolist() == [want.index(i) for i in range(len(ids))]
