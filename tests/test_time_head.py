"""The time-to-SQL head in the product: bundle, answers, batch scores, the card, the queue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.scoring.batch import score_output
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.bundle_files import CHECKSUM_FILE, TIME_BOOSTER
from leadscore.scoring.time_head import TimeHead
from tests.helpers import Trained, make_leads

HEAD = ("p_sql_7d", "p_sql_30d", "expected_days_to_sql")


def test_a_folder_with_a_status_history_trains_a_time_head_kept_in_the_bundle(
    trained: Trained, tmp_path: Path
) -> None:
    bundle = ModelBundle.load(trained["model_path"])
    assert bundle.time_head is not None and bundle.meta.time_head is not None
    facts = bundle.meta.time_head
    assert set(facts["horizons"]) == {"7", "30", "90"} and facts["open_windows_used"] > 0
    assert 0.6 < facts["concordance"] <= 1
    copy = ModelBundle.load(bundle.save(tmp_path / "copy"))  # the booster travels with its checksum
    assert TIME_BOOSTER in json.loads((tmp_path / "copy" / CHECKSUM_FILE).read_text())
    leads = make_leads(200, 31)
    X = bundle.encode(leads)
    assert (copy.time_head is not None) and (
        copy.time_head.cumulative(X) == bundle.time_head.cumulative(X)
    ).all()


def test_answers_and_batch_scores_say_when_not_only_whether(trained: Trained) -> None:
    bundle = ModelBundle.load(trained["model_path"])
    leads = make_leads(300, 32)
    records = leads.astype(object).where(leads.notna(), None).to_dict("records")
    answers, _ = bundle.answers(records, explain=1)
    for a in answers:
        assert 0 <= a["p_sql_7d"] <= a["p_sql_30d"] <= 1
        days = a["expected_days_to_sql"]
        assert days == "over 90" or 0 <= days <= 90
    for record, a in zip(records[:40], answers, strict=False):  # one lead: the same as in a batch
        alone = bundle.answers([record], explain=1)[0][0]
        assert [alone[k] for k in HEAD] == [a[k] for k in HEAD]
    table = score_output(bundle, leads)
    assert list(table.columns[-3:]) == ["p_sql_7d", "p_sql_30d", "expected_days_to_sql"]
    assert table["p_sql_7d"].tolist() == [a["p_sql_7d"] for a in answers]
    assert table["expected_days_to_sql"].tolist() == [str(a["expected_days_to_sql"]) for a in answers]


def test_a_flat_export_has_no_time_head_and_null_fields(tmp_path: Path) -> None:
    from leadscore.modeling.options import TrainOptions
    from leadscore.modeling.train import train_model
    from leadscore.scoring.contract import load_contract
    from leadscore.spec import load_spec

    path = tmp_path / "flat.csv"
    make_leads(3000, 33).to_csv(path, index=False)
    result = train_model(
        path, load_spec("synthetic"), TrainOptions(contract=load_contract()[0], search_trials=0)
    )
    bundle = result.bundle
    assert bundle.time_head is None and bundle.meta.time_head is None
    answer = bundle.score_record(pd.read_csv(path).iloc[0].to_dict(), explain=0)
    assert answer["p_sql_7d"] is None and answer["expected_days_to_sql"] is None


class _CountingBooster:
    """A hazard booster that answers zeros and remembers the threads each walk was given."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def predict(self, X: np.ndarray, raw_score: bool = False, num_threads: int = 0) -> np.ndarray:
        self.threads.append(num_threads)
        return np.zeros(len(X))


def test_the_time_head_walks_on_the_callers_threads_when_given() -> None:
    """A batch scorer sharing the cores asks for one thread: the time head must not take the
    bundle's two (two scorers on two cores would each start two OpenMP threads)."""
    booster = _CountingBooster()
    head = TimeHead(booster, num_threads=2, additive=True)
    X = np.zeros((3, 4))
    head.answer_fields(X, 1)
    assert booster.threads[-1] == 1
    head.answer_fields(X)
    assert booster.threads[-1] == 2  # none given: the bundle's own
