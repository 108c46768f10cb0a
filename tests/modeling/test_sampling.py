"""``train --sample N``: which rows are drawn, how they are weighted, and that the model stays right."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.predraw import Predrawn, kept, predraw
from leadscore.data.synthetic import write_dataset
from leadscore.errors import UserError
from leadscore.modeling.dataset import Split, read_training_data
from leadscore.modeling.evaluate import expected_calibration_error
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.sampling import draw_sample
from leadscore.modeling.train import TrainResult, train_model
from leadscore.scoring.contract import load_contract
from leadscore.spec import LabelRule, SegmentRule, load_spec
from tests.helpers import make_tables


def _split(n: int, seed: int = 0) -> tuple[Split, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    idx = rng.permutation(n)
    fit, valid, test = (
        np.sort(idx[: n * 6 // 10]),
        np.sort(idx[n * 6 // 10 : n * 8 // 10]),
        np.sort(idx[n * 8 // 10 :]),
    )
    return Split(fit, valid, test, "stratified"), y


def test_every_fit_sql_is_kept_and_each_row_stands_for_the_leads_it_was_drawn_from() -> None:
    split, y = _split(100_000)
    s = draw_sample(split, y, 24_000, seed=7)  # the fit SQLs take under half its room: all kept
    assert s is not None and s.positive_rate == 1
    assert abs(len(s.rows) - 24_000) < 700  # drawn at rates: about the size asked for
    fit_sqls = split.fit[y[split.fit] == 1]
    assert np.isin(fit_sqls, s.rows).all()
    # the remapped split names the same leads as the original one
    assert np.isin(s.rows[s.split.fit], split.fit).all()
    assert np.isin(s.rows[s.split.valid], split.valid).all()
    assert np.isin(s.rows[s.split.test], split.test).all()
    assert len(s.split.fit) + len(s.split.valid) + len(s.split.test) == len(s.rows)
    ys = y[s.rows]
    fit_w, fit_y = s.weight[s.split.fit], ys[s.split.fit]
    assert (fit_w[fit_y == 1] == 1).all()
    assert np.allclose(fit_w[fit_y == 0], 1 / s.negative_rate)
    assert np.allclose(s.weight[s.split.valid], 1 / s.uniform_rate)
    # weighted, the sample counts as the table does: leads, SQLs, and the test leads' SQL rate
    assert s.weight.sum() == pytest.approx(len(y), rel=0.02)
    assert (s.weight * ys).sum() == pytest.approx(y.sum(), rel=0.03)
    assert ys[s.split.test].mean() == pytest.approx(y[split.test].mean(), abs=0.01)


def test_sqls_that_would_fill_more_than_half_the_sample_are_drawn_in_part_and_weighted_back() -> None:
    """Half the leads SQLs: every fit SQL kept would leave the sample over its size. They are drawn
    at a rate too, and the sample stays about the size asked for and counts as the table does."""
    rng = np.random.default_rng(3)
    n = 100_000
    y = (rng.random(n) < 0.5).astype(int)
    idx = rng.permutation(n)
    split = Split(np.sort(idx[:60_000]), np.sort(idx[60_000:80_000]), np.sort(idx[80_000:]), "stratified")
    s = draw_sample(split, y, 20_000, seed=7)
    assert s is not None and s.positive_rate < 1
    assert abs(len(s.rows) - 20_000) < 600
    ys = y[s.rows]
    fit_w, fit_y = s.weight[s.split.fit], ys[s.split.fit]
    assert np.allclose(fit_w[fit_y == 1], 1 / s.positive_rate)
    assert (fit_y == 1).sum() <= (fit_y == 0).sum() * 1.05  # at least as many non-SQLs as SQLs
    assert s.weight.sum() == pytest.approx(n, rel=0.02)
    assert (s.weight * ys).sum() == pytest.approx(y.sum(), rel=0.03)
    assert "1 in " in s.note(n) and "SQLs of the fit rows" in s.note(n)


def test_the_same_seed_draws_the_same_sample_and_another_seed_another() -> None:
    split, y = _split(50_000)
    a, b, c = (draw_sample(split, y, 5_000, seed) for seed in (1, 1, 2))
    assert a is not None and b is not None and c is not None
    assert np.array_equal(a.rows, b.rows) and np.array_equal(a.weight, b.weight)
    assert not np.array_equal(a.rows, c.rows)


def test_no_sample_when_the_table_is_no_larger_and_a_clear_refusal_when_too_small() -> None:
    split, y = _split(5_000)
    assert draw_sample(split, y, 5_000, seed=0) is None
    with pytest.raises(UserError, match=r"--sample: 10 leads are too few"):
        draw_sample(split, y, 10, seed=0)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, TrainResult]:
    """One export trained on every row and on a sample of a fifth of it (models as evaluated)."""
    out = tmp_path_factory.mktemp("sample")
    write_dataset(make_tables(60_000, 5), out)
    spec = load_spec("synthetic")

    def train(sample: int | None) -> TrainResult:
        options = TrainOptions(
            contract=load_contract()[0], finalize=False, time_head=False, search_trials=0, sample=sample
        )
        return train_model(out, spec, options)

    return train(None), train(12_000)


def test_a_model_trained_on_a_sample_ranks_calibrates_and_cuts_off_like_one_trained_on_all(
    two_runs: tuple[TrainResult, TrainResult],
) -> None:
    """Both models score the same test leads (every test lead of the full run): the sample's ranks
    them nearly as well, is as calibrated (its non-SQLs weighted back, calibrated on uniformly drawn
    leads), and its cutoff gives about the same MQL share and MQL->SQL rate."""
    full, sampled = two_runs
    assert any("trained on a sample of" in note for note in sampled.notes)
    assert sampled.n_train < full.n_train / 3
    y = full.test_y
    X = sampled.bundle.encode(full.test_frame)
    p_full, p_sampled = full.test_p, sampled.bundle.probability(sampled.bundle.raw_score(X))
    assert roc_auc_score(y, p_sampled) > roc_auc_score(y, p_full) - 0.02
    assert p_sampled.mean() == pytest.approx(y.mean(), abs=0.01)  # not the sample's inflated SQL share
    assert expected_calibration_error(y, p_sampled) < 0.02
    share_full = (p_full >= full.bundle.threshold).mean()
    share_sampled = (p_sampled >= sampled.bundle.threshold).mean()
    assert share_sampled == pytest.approx(share_full, abs=0.05)
    assert y[p_sampled >= sampled.bundle.threshold].mean() == pytest.approx(
        y[p_full >= full.bundle.threshold].mean(), abs=0.05
    )


def test_train_takes_sample_from_the_command_line(isolated_settings: Path, synthetic_dir: Path) -> None:
    """``leadscore train --sample N``: the run says what it learned from; too small a sample is one
    clear line and exit 2, with nothing trained."""
    ok = CliRunner().invoke(
        app, ["train", str(synthetic_dir), "--spec", "synthetic", "--sample", "3000", "--json"]
    )
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert any(note.startswith("trained on a sample of") for note in payload["notes"])
    assert payload["learned_from"]["rows"] == pytest.approx(3000, rel=0.1)
    bad = CliRunner().invoke(app, ["train", str(synthetic_dir), "--spec", "synthetic", "--sample", "10"])
    assert bad.exit_code == 2
    assert "--sample: 10 leads are too few" in bad.output and "Traceback" not in bad.output


def test_a_lead_is_drawn_with_all_its_rows_by_a_seeded_hash_of_its_key() -> None:
    ids = pd.Series(np.arange(20_000))
    a, b, c = kept(ids, 0.3, seed=1), kept(ids, 0.3, seed=1), kept(ids, 0.3, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.mean() == pytest.approx(0.3, abs=0.02)
    text = ids.astype(str).astype(object)  # 7 and "7" are one lead: drawn or left together
    assert np.array_equal(kept(text, 0.3, seed=1), a)


def test_an_export_too_big_to_read_is_drawn_while_streaming(synthetic_dir: Path, tmp_path: Path) -> None:
    """A uniform share of the leads, and every lead the status history takes to SQL, each with all
    its rows; each row weighted by the leads it stands for."""
    spec = load_spec("synthetic")
    leads = pd.read_parquet(synthetic_dir / "leads.parquet")
    assert predraw(synthetic_dir, spec, len(leads), seed=3, work=tmp_path) is None  # small: read whole
    drawn = predraw(synthetic_dir, spec, 1_000, seed=3, work=tmp_path)
    assert drawn is not None and drawn.path == tmp_path
    assert drawn.share == pytest.approx(3_000 / len(leads))
    assert drawn.digest == hashlib.sha256((synthetic_dir / "leads.parquet").read_bytes()).hexdigest()
    got = pd.read_parquet(tmp_path / "leads.parquet")
    uniform = drawn.uniform(got["lead_id"])
    assert uniform.sum() == pytest.approx(3_000, rel=0.1)
    history = pd.read_parquet(synthetic_dir / "stage_history.parquet")
    sqls = set(history.loc[history["stage"].str.strip().str.casefold() == "sql", "lead_id"])
    assert 0 < len(sqls) < len(leads) // 2
    assert sqls <= set(got["lead_id"])  # every possible SQL, drawn uniformly or not
    assert set(got.loc[~uniform, "lead_id"]) <= sqls  # nothing else outside the uniform share
    weight = drawn.weights(got["lead_id"])
    assert np.array_equal(weight == 1.0, got["lead_id"].isin(sqls).to_numpy())
    assert np.allclose(weight[~got["lead_id"].isin(sqls)], 1 / drawn.share)
    # the weights stand for the export: its leads, and its possible SQLs, counted back
    assert weight.sum() == pytest.approx(len(leads), rel=0.05)
    ids = set(got["lead_id"])
    for table in ("events", "stage_history"):
        whole = pd.read_parquet(synthetic_dir / f"{table}.parquet")
        part = pd.read_parquet(tmp_path / f"{table}.parquet")
        assert set(part["lead_id"]) <= ids
        assert len(part) == whole["lead_id"].isin(ids).sum()  # every row of a drawn lead
    assert (tmp_path / "feedback.parquet").is_symlink()


def _predrawn_won(leads: pd.DataFrame, tmp_path: Path, seed: int) -> Predrawn:
    """A flat Parquet export of ``leads`` (id ``id``, label ``won`` = yes / no) drawn for a sample
    of 1,000."""
    source = tmp_path / "leads.parquet"
    leads.to_parquet(source)
    spec = load_spec("xeducation").model_copy(
        update={"id": "id", "time": None, "label": LabelRule(column="won", positive=["yes"], negative=["no"])}
    )
    (tmp_path / "work").mkdir()
    drawn = predraw(source, spec, 1_000, seed=seed, work=tmp_path / "work")
    assert drawn is not None
    return drawn


def test_a_flat_exports_possible_sqls_are_read_from_its_label_column(tmp_path: Path) -> None:
    leads = pd.DataFrame(
        {"id": [f"L{i}" for i in range(6_000)], "x": np.arange(6_000) % 7, "won": ["no"] * 6_000}
    )
    leads.loc[::50, "won"] = " Yes"  # 120 SQLs: the label's own spelling rule (trimmed, case ignored)
    drawn = _predrawn_won(leads, tmp_path, seed=5)
    assert drawn.path.name == "leads.parquet"
    got = pd.read_parquet(drawn.path)
    assert (got["won"] == " Yes").sum() == 120  # every SQL, though the uniform share is a half
    assert drawn.uniform(got["id"]).sum() == pytest.approx(3_000, rel=0.1)
    assert drawn.weights(got["id"]).sum() == pytest.approx(6_000, rel=0.05)
    assert "every one of its 120 possible SQLs" in drawn.note()


def test_a_flat_table_under_a_folder_spec_takes_its_possible_sqls_from_its_label_column(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    """The synthetic spec labels a folder from its status history; its flat leads table alone
    carries the label as a column, and that column is read."""
    source = tmp_path / "flat.parquet"
    leads = pd.read_parquet(synthetic_dir / "leads.parquet")
    leads.to_parquet(source)
    (tmp_path / "work").mkdir()
    drawn = predraw(source, load_spec("synthetic"), 1_000, seed=2, work=tmp_path / "work")
    assert drawn is not None
    got = pd.read_parquet(drawn.path)
    positives = set(leads.loc[leads["sql_within_90d"] == 1, "lead_id"])
    assert positives and positives <= set(got["lead_id"])
    assert len(drawn.candidates) == len(positives)


def test_too_many_possible_sqls_are_drawn_in_part_and_weighted_back(tmp_path: Path) -> None:
    """A fifth of 40,000 leads positive and a sample of 1,000: about 1,000 of the 8,000 SQLs are
    drawn (a chance of 1,000 / 8,000, above the uniform share of 3,000 / 40,000), each weighted by
    the inverse of its chance; the uniform part stays the uniform draw."""
    n = 40_000
    leads = pd.DataFrame({"id": np.arange(n), "won": np.where(np.arange(n) % 5 == 0, "yes", "no")})
    drawn = _predrawn_won(leads, tmp_path, seed=8)
    assert drawn.share == pytest.approx(0.075)
    assert drawn.candidate_share == pytest.approx(0.125)
    got = pd.read_parquet(drawn.path)
    sqls = (got["won"] == "yes").to_numpy()
    assert sqls.sum() == pytest.approx(1_000, rel=0.1)
    assert (~sqls).sum() == pytest.approx(32_000 * 0.075, rel=0.1)
    uniform = drawn.uniform(got["id"])
    assert uniform.sum() == pytest.approx(3_000, rel=0.1)
    assert uniform[sqls].mean() == pytest.approx(0.075 / 0.125, abs=0.05)  # the uniform part of the SQLs
    weight = drawn.weights(got["id"])
    assert weight[sqls].sum() == pytest.approx(8_000, rel=0.1)  # the export's SQLs, counted back
    assert weight.sum() == pytest.approx(n, rel=0.05)
    assert "12.5% of its 8,000 possible SQLs" in drawn.note()


def test_validation_and_test_leads_come_from_the_uniform_draw_only() -> None:
    split, y = _split(20_000)
    drawn = np.random.default_rng(4).random(20_000) < 0.5
    sample = draw_sample(split, y, 25_000, seed=1, drawn=drawn)  # larger than the table: drawn anyway
    assert sample is not None
    rows = sample.rows
    assert drawn[rows[sample.split.valid]].all() and drawn[rows[sample.split.test]].all()
    assert len(sample.split.valid) == (drawn[split.valid]).sum()  # every uniform one, at this size
    fit = rows[sample.split.fit]
    assert not drawn[fit].all()  # the fit rows use every lead drawn


def test_train_with_a_sample_of_a_big_export_reads_only_the_drawn_leads(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    write_dataset(make_tables(12_000, 17), folder)
    options = TrainOptions(
        contract=load_contract()[0], finalize=False, time_head=False, search_trials=0, sample=2_000
    )
    result = train_model(folder, load_spec("synthetic"), options)
    assert any(note.startswith("--sample: ") and "drawn uniformly" in note for note in result.notes)
    assert any(note.startswith("trained on a sample of") for note in result.notes)
    assert result.data_hash == hashlib.sha256((folder / "leads.parquet").read_bytes()).hexdigest()
    assert result.test_p.mean() == pytest.approx(result.test_y.mean(), abs=0.02)  # still calibrated
    # ... at the export's own SQL rate: the possible SQLs drawn whole are kept out of the test leads
    rate = read_training_data(folder, load_spec("synthetic"), None).y.mean()
    assert result.test_y.mean() == pytest.approx(rate, abs=0.02)
    assert result.test_p.mean() == pytest.approx(rate, abs=0.02)


def test_a_segmented_spec_trains_on_a_sample(tmp_path: Path) -> None:
    """Each segment's rows are read from the sampled table (their keys drawn with their leads)."""
    folder = tmp_path / "export"
    write_dataset(make_tables(8_000, 23), folder)
    spec = load_spec("synthetic").model_copy(
        update={"segments": SegmentRule.model_validate({"by": ["region"]})}
    )
    options = TrainOptions(contract=load_contract()[0], time_head=False, search_trials=0, sample=4_000)
    result = train_model(folder, spec, options)
    assert result.bundle.meta.segments is not None
    assert any(note.startswith("trained on a sample of") for note in result.notes)
