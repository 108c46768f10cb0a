"""Out-of-core scoring: a data folder split by lead into buckets scores exactly as the whole folder."""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.buckets import bucket_numbers, bucket_work, split_folder
from leadscore.errors import UserError
from leadscore.scoring.batch import score_file
from leadscore.scoring.bundle import ModelBundle
from leadscore.spec import load_spec


def test_a_leads_bucket_is_the_crc_of_its_key_whatever_form_the_id_takes() -> None:
    ids = pd.Series([7, 7.0, "7", " 7 ", "lead-9", None], dtype=object)
    got = bucket_numbers(ids, 16)
    assert got[0] == got[1] == got[2] == got[3] == zlib.crc32(b"7") % 16
    assert got[4] == zlib.crc32(b"lead-9") % 16
    assert got[5] == zlib.crc32(b"") % 16  # a missing id is the empty key, as everywhere


def test_each_lead_and_its_rows_land_in_one_bucket_and_other_tables_are_linked(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    spec = load_spec("synthetic")
    (synthetic_dir / "notes.txt").write_text("not a table of leads")
    try:
        split = split_folder(synthetic_dir, spec, 4, tmp_path)
    finally:
        (synthetic_dir / "notes.txt").unlink()
    leads = pd.read_parquet(synthetic_dir / "leads.parquet")
    events = pd.read_parquet(synthetic_dir / "events.parquet")
    assert sum(split.leads) == len(leads)
    seen: dict[Any, int] = {}
    for number, folder in enumerate(split.folders):
        bucket_leads = pd.read_parquet(folder / "leads.parquet")
        bucket_events = pd.read_parquet(folder / "events.parquet")
        assert len(bucket_leads) == split.leads[number]
        assert set(bucket_events["lead_id"]) <= set(bucket_leads["lead_id"])  # a lead's rows follow it
        for lead in bucket_leads["lead_id"]:
            assert seen.setdefault(lead, number) == number
        assert (folder / "notes.txt").is_symlink()
    total_events = sum(pq.ParquetFile(f / "events.parquet").metadata.num_rows for f in split.folders)
    assert total_events == len(events[events["lead_id"].isin(leads["lead_id"])])


@pytest.mark.parametrize("buckets", [1, 7])
def test_scores_of_a_folder_by_buckets_are_the_scores_of_the_whole_folder(
    trained: dict[str, Any], synthetic_dir: Path, tmp_path: Path, buckets: int
) -> None:
    bundle = ModelBundle.load(trained["model_path"])
    whole = score_file(synthetic_dir, bundle, tmp_path / "whole.parquet", explain=3, progress=False)
    split = score_file(
        synthetic_dir, bundle, tmp_path / "split.parquet", explain=3, progress=False, buckets=buckets
    )
    assert split["rows"] == whole["rows"] and split["mql"] == whole["mql"]
    a = pd.read_parquet(tmp_path / "whole.parquet").sort_values("lead_id", kind="stable")
    b = pd.read_parquet(tmp_path / "split.parquet").sort_values("lead_id", kind="stable")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # the buckets are gone


def test_buckets_refuse_a_flat_export_and_csv_tables_in_one_line(
    trained: dict[str, Any], synthetic_dir: Path, tmp_path: Path
) -> None:
    flat = tmp_path / "flat.csv"
    pd.read_parquet(synthetic_dir / "leads.parquet").head(50).to_csv(flat, index=False)
    csv_folder = tmp_path / "csv"
    csv_folder.mkdir()
    pd.read_parquet(synthetic_dir / "leads.parquet").to_csv(csv_folder / "leads.csv", index=False)
    pd.read_parquet(synthetic_dir / "events.parquet").to_parquet(csv_folder / "events.parquet")
    for data, said in (
        (flat, "a flat export is read in chunks"),
        (csv_folder, "leads.csv: --buckets reads Parquet"),
    ):
        out = tmp_path / f"out-{data.name}.parquet"
        result = CliRunner().invoke(
            app,
            ["score", str(data), "--model", str(trained["model_path"]), "--out", str(out), "--buckets", "3"],
        )
        assert result.exit_code == 2, result.output
        assert said in result.output and "Traceback" not in result.output
        assert not out.exists()


def test_a_killed_runs_buckets_are_removed_by_the_next_run(tmp_path: Path) -> None:
    target = tmp_path / "scores.parquet"
    stale = tmp_path / ".scores.parquet.999999999.buckets"  # no such process
    stale.mkdir()
    (stale / "bucket-00000").mkdir()
    with bucket_work(target) as work:
        assert work.is_dir() and work.name == f".scores.parquet.{os.getpid()}.buckets"
        assert not stale.exists()
    assert not work.exists()


def test_a_spec_whose_features_read_other_leads_is_not_split(tmp_path: Path) -> None:
    spec = load_spec("synthetic")
    with pytest.raises(UserError, match="--buckets"):
        split_folder(tmp_path, spec.model_copy(update={"id": None}), 2, tmp_path)
    assert np.array_equal(bucket_numbers(pd.Series([1, 2]), 1), [0, 0])


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_the_training_table_by_buckets_is_the_whole_folders(
    synthetic_dir: Path, tmp_path: Path, suffix: str
) -> None:
    """``features --buckets``: each lead's roll-ups and label as the whole folder gives them."""
    outs = {}
    for name, extra in (("whole", []), ("split", ["--buckets", "5"])):
        outs[name] = tmp_path / f"{name}{suffix}"
        result = CliRunner().invoke(
            app,
            [
                "features",
                str(synthetic_dir),
                "--spec",
                "synthetic",
                "--out",
                str(outs[name]),
                "--json",
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    whole, split = (
        read(outs[n]).sort_values("lead_id", kind="stable").reset_index(drop=True) for n in ("whole", "split")
    )
    assert list(split.columns) == list(whole.columns) and len(split) == len(whole)
    pd.testing.assert_frame_equal(split, whole, check_dtype=False)


def test_a_training_table_written_as_parquet_parts_trains_with_its_declared_spec(
    synthetic_dir: Path, tmp_path: Path
) -> None:
    """``features --out FOLDER`` writes one table as Parquet parts; ``train FOLDER`` with the same
    spec reads it as that table (not as a folder of the CRM's tables, which it is not)."""
    from leadscore.data.folders import is_declared_folder
    from leadscore.modeling.options import TrainOptions
    from leadscore.modeling.train import train_model
    from leadscore.scoring.contract import load_contract

    table = tmp_path / "table"
    args = ["features", str(synthetic_dir), "--spec", "synthetic", "--out", str(table), "--buckets", "2"]
    assert CliRunner().invoke(app, args).exit_code == 0
    spec = load_spec("synthetic")
    assert is_declared_folder(synthetic_dir, spec) and not is_declared_folder(table, spec)
    options = TrainOptions(contract=load_contract()[0], finalize=False, time_head=False, search_trials=0)
    result = train_model(table, spec, options)
    assert result.metrics["roc_auc"] > 0.7
