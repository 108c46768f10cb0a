"""A categorical field's value share: each value's share of the fit rows, a feature beside its code."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from leadscore.features import FeatureEncoder
from leadscore.features.encoder import SHARE_SUFFIX


def _frame() -> pd.DataFrame:
    source = ["Google"] * 50 + ["google "] * 10 + ["Direct"] * 25 + ["Referral"] * 10 + ["Olark"] * 2
    source += ["Once"] + ["Select"] * 2  # a value held once reads as rare, a placeholder as missing
    n = len(source)
    return pd.DataFrame(
        {
            "source": source,
            "flag": (["Yes", "No"] * n)[:n],  # two values only: the code says it all, no share
            "visits": np.arange(n, dtype=float),
        }
    )


def _fit(frame: pd.DataFrame, **kw: object) -> FeatureEncoder:
    return FeatureEncoder.fit(
        frame,
        ["source", "flag", "visits"],
        kinds={"source": "categorical", "flag": "categorical"},
        placeholders=["Select"],
        **kw,  # type: ignore[arg-type]
    )


def test_a_share_is_the_values_part_of_the_fit_rows_beside_its_code() -> None:
    frame = _frame()
    enc = _fit(frame)
    assert enc.feature_names == ["source", "source" + SHARE_SUFFIX, "flag", "visits"]
    assert enc.feature_fields == ["source", "source", "flag", "visits"]
    assert enc.categorical_indices == [0, 2]
    assert enc.share_indices == [1]
    rows = len(frame)
    assert enc.field("source").shares == {
        "google": 60 / rows,  # spellings of one value are one value
        "direct": 25 / rows,
        "referral": 10 / rows,
        "olark": 2 / rows,
    }
    assert enc.field("flag").shares is None
    X = enc.transform(pd.DataFrame({"source": ["GOOGLE", "Olark", "Once", "Never seen", "Select", None]}))
    np.testing.assert_array_equal(X[:4, 1], [60 / rows, 2 / rows, 0.0, 0.0])  # rare and unseen: 0
    assert np.isnan(X[4:, 1]).all()  # a placeholder or nothing: missing
    assert X[2, 0] == X[3, 0] == len(enc.field("source").categories)  # both "other" as codes: the
    # share is what tells a value held once in training from one never seen


def test_every_path_gives_the_same_shares() -> None:
    frame = _frame()
    enc = FeatureEncoder.from_dict(_fit(frame).to_dict())
    sent = [{"source": v, "flag": "Yes", "visits": 1.0} for v in ["Direct", " direct", "Once", "x", None, 3]]
    many = enc.encode_records(sent)
    table = enc.transform(pd.DataFrame(sent))
    for i, record in enumerate(sent):
        np.testing.assert_array_equal(enc.encode_record(record), many[i], err_msg=str(i))
        np.testing.assert_array_equal(table[i], many[i], err_msg=str(i))


def test_a_model_saved_before_shares_encodes_as_it_did() -> None:
    saved = _fit(_frame()).to_dict()
    for f in saved["fields"]:
        f.pop("shares")  # a bundle written before the field existed
    enc = FeatureEncoder.from_dict(saved)
    assert enc.feature_names == ["source", "flag", "visits"]
    assert enc.share_indices == []
    assert enc.encode_record({"source": "Direct"}).shape == (3,)


def test_the_baselines_columns_leave_the_shares_out() -> None:
    enc = _fit(_frame())
    cols, categorical = enc.without_shares()
    assert cols == [0, 2, 3]
    assert [enc.feature_names[j] for j in cols] == ["source", "flag", "visits"]
    assert categorical == [0, 1]  # the codes' places among the kept columns


def test_too_few_common_values_give_no_share() -> None:
    frame = pd.DataFrame({"source": ["a"] * 5 + ["b"] * 5 + ["c"]})  # "c" is held once
    enc = FeatureEncoder.fit(frame, ["source"], kinds={"source": "categorical"})
    assert enc.field("source").shares is None
    assert enc.feature_names == ["source"]
    assert not math.isnan(enc.encode_record({"source": "a"})[0])
