"""The Spark path (issue 16): declared features and scores inside a real local Spark (``local[2]``), row
for row the single-machine path's, on a generated export in a CRM's own vocabulary."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.folders import read_leads
from leadscore.spec import DatasetSpec, load_spec
from tests.helpers import make_tables
from tests.test_declared import FIT as DECLARED_FIT
from tests.test_declared import RENAME_LEADS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from leadscore.scoring.bundle import ModelBundle

# The renamed export of test_declared, without its label column: the label comes from the stages.
FIT = [RENAME_LEADS[f] for f in DECLARED_FIT]
LEADS = {k: v for k, v in RENAME_LEADS.items() if k != "sql_within_90d"}
EVENTS = {
    "lead_id": "Lead ID",
    "occurred_at": "Activity Date",
    "event_type": "Activity Type",
    "funnel_stage": "Asset Stage",
    "content_title": "Asset Name",
}
SPEC: dict[str, Any] = {
    "name": "crm-export",
    "id": "Lead ID",
    "time": "MQL Date",
    "label": {"stages": ["Sales Qualified", "Opportunity"], "within_days": 90},
    "tables": {"leads": "contacts", "events": "activities", "stages": "status_history"},
    "events": {"id": "Lead ID", "time": "Activity Date", "type": "Activity Type"},
    # a history of every field, as Salesforce's LeadHistory: only the Status rows are stage changes
    "stages": {"id": "Lead", "time": "Changed At", "stage": "New Status", "where": {"Field": "Status"}},
    "fit": FIT,
    "categorical": [f for f in FIT if f != "Employees"],
    # One of every aggregation, with windows, decay and filters.
    "engagement": {
        "visits_30d": {"count": "Web Visit", "days": 30},
        "return_visits_7d": {"returns": "Web Visit", "days": 7},
        "visit_days_7d": {"distinct_days": "Web Visit", "days": 7},
        "pricing_7d": {"count": "Pricing Page View", "days": 7},
        "bottom_downloads": {"count": "Content Download", "where": {"Asset Stage": ["bottom", "mid*"]}},
        "clicks_decay": {"count": "Email Click", "half_life_days": 14},
        "since_active": {"days_since_last": "any"},
        "since_first": {"days_since_first": "any", "days": 60},
        "seconds_30d": {"sum": "Seconds", "days": 30},
        "seconds_mean": {"mean": "Seconds"},
        "seconds_max": {"max": "Seconds", "of": "Web Visit"},
        "seconds_min": {"min": "Seconds"},
        "assets": {"unique": "Asset Name"},
        "last_asset": {"last": "Asset Name"},
    },
}
STAGES = {
    "Inquiry": "Inquiry",
    "MQL": "Marketing Qualified",
    "SAL": "Sales Accepted",
    "SQL": "Sales Qualified",
}


def _export(folder: Path, n: int = 2500, seed: int = 61) -> Path:
    """A generated export in a CRM's vocabulary: contacts and activities in Parquet, the status history
    as CSV text, with the generator's faults (duplicates, bad values) and rows that must not be read:
    events of unknown leads, an unreadable time, events after the scoring time."""
    tables = make_tables(n, seed)
    folder.mkdir(parents=True)
    leads = tables["leads"].to_pandas()[list(LEADS)].rename(columns=LEADS)
    leads.to_parquet(folder / "contacts.parquet", index=False, coerce_timestamps="us")
    events = tables["events"].to_pandas()
    events["event_type"] = events["event_type"].str.replace("_", " ").str.title()
    events = events[[*EVENTS, "event_id"]].rename(columns=EVENTS)
    seconds = (events.pop("event_id") * 37 % 400).astype(object)
    seconds[::11] = "n/a"  # text a CRM exports for a missing number
    events["Seconds"] = seconds.astype(str)
    stray = events.head(40).copy()
    stray["Lead ID"] = stray["Lead ID"] + 10_000_000  # leads that are not in the contacts table
    broken = events.head(5).copy()
    broken["Activity Date"] = pd.NaT
    # Spark reads micro- or milliseconds, not pandas' default nanoseconds (the error says so).
    activities = pd.concat([events, stray, broken])
    activities.to_parquet(folder / "activities.parquet", index=False, coerce_timestamps="us")
    history = tables["stage_history"].to_pandas()
    history["stage"] = history["stage"].map(lambda s: STAGES.get(s, s))
    history = history.rename(columns={"lead_id": "Lead", "entered_at": "Changed At", "stage": "New Status"})
    rating = history.iloc[::3].assign(**{"New Status": "Sales Qualified", "Field": "Rating"})
    history = pd.concat([history.assign(Field="Status"), rating], ignore_index=True)
    history[["Lead", "Changed At", "Field", "New Status"]].to_csv(folder / "status_history.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DatasetSpec, Path]:
    root = tmp_path_factory.mktemp("spark")
    spec_path = root / "crm.yaml"
    spec_path.write_text(yaml.safe_dump(SPEC))
    return _export(root / "crm"), load_spec(str(spec_path)), spec_path


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return frame.sort_values(by, kind="stable").reset_index(drop=True)


def _assert_same_rows(single: pd.DataFrame, spark: pd.DataFrame, key: list[str]) -> None:
    assert list(spark.columns) == list(single.columns)
    assert len(spark) == len(single)
    a, b = _sorted(single, key), _sorted(spark, key)
    for column in a.columns:
        x, y = a[column], b[column]
        if pd.api.types.is_datetime64_any_dtype(x):
            x, y = x.astype("datetime64[us]"), y.astype("datetime64[us]")
        if pd.api.types.is_float_dtype(x) and pd.api.types.is_numeric_dtype(y):
            np.testing.assert_allclose(
                x.to_numpy(float), y.to_numpy(float), rtol=0, atol=1e-9, err_msg=column
            )
            continue
        same = (x.astype(object).to_numpy() == y.astype(object).to_numpy()) | (x.isna() & y.isna()).to_numpy()
        assert same.all(), f"{column}: {x[~same].head(3).tolist()} vs {y[~same].head(3).tolist()}"


def test_declared_features_and_labels_are_the_single_machine_rows(
    spark: SparkSession, export: tuple[Path, DatasetSpec, Path], tmp_path: Path
) -> None:
    from leadscore.spark.features import declared_frame
    from leadscore.spark.session import write_parquet

    folder, spec, _ = export
    single = read_leads(folder, spec, labels=True)
    assert single[spec.label.column].notna().sum() > 100
    out = tmp_path / "features"
    write_parquet(declared_frame(spark, str(folder), spec, labels=True), str(out))
    got = pd.read_parquet(out)
    _assert_same_rows(single, got, ["Lead ID", "MQL Date"])
    # Every aggregation found something to count, so the comparison compared values, not zeros.
    for name in SPEC["engagement"]:
        assert got[name].notna().any() and (got[name].astype(str) != "0").any(), name
    assert got[spec.label.column].sum() > 20


def test_how_the_leads_are_bucketed_changes_no_value(
    spark: SparkSession, export: tuple[Path, DatasetSpec, Path], tmp_path: Path
) -> None:
    from leadscore.spark.features import declared_frame
    from leadscore.spark.session import write_parquet

    folder, spec, _ = export
    for b in (1, 13):
        write_parquet(declared_frame(spark, str(folder), spec, buckets=b), str(tmp_path / str(b)))
    one, many = (pd.read_parquet(tmp_path / str(b)) for b in (1, 13))
    _assert_same_rows(one, many, ["Lead ID", "MQL Date"])


@pytest.fixture(scope="module")
def crm_model(export: tuple[Path, DatasetSpec, Path]) -> ModelBundle:
    from leadscore.modeling.options import CAPACITIES, TrainOptions
    from leadscore.modeling.train import train_model
    from leadscore.scoring.contract import load_contract

    folder, spec, _ = export
    options = TrainOptions(contract=load_contract()[0], capacities=(CAPACITIES[1],))
    return train_model(folder, spec, options).bundle


def test_spark_scores_are_the_single_machine_scores(
    spark: SparkSession, export: tuple[Path, DatasetSpec, Path], crm_model: ModelBundle, tmp_path: Path
) -> None:
    from leadscore.scoring.batch import score_file
    from leadscore.spark.scoring import score_spark

    folder, _, _ = export
    summary = score_spark(spark, str(folder), crm_model, str(tmp_path / "scored"), explain=3)
    score_file(folder, crm_model, tmp_path / "single.parquet", explain=3, progress=False)
    single = pd.read_parquet(tmp_path / "single.parquet")
    got = pd.read_parquet(tmp_path / "scored")
    assert summary["rows"] == len(single) and summary["mql"] == int(single["mql"].sum()) > 0
    assert list(got.columns) == list(single.columns)
    assert {"fit_band", "engagement_log_odds", "reason_3"} <= set(got.columns)
    _assert_same_rows(single, got, ["Lead ID", "p_sql", "reason_1"])
    np.testing.assert_allclose(
        _sorted(got, ["Lead ID", "p_sql"])["p_sql"], _sorted(single, ["Lead ID", "p_sql"])["p_sql"], atol=1e-9
    )


def test_the_cli_runs_both_engines_and_writes_the_same_tables(
    spark: SparkSession, export: tuple[Path, DatasetSpec, Path], crm_model: ModelBundle, tmp_path: Path
) -> None:
    folder, _, spec_path = export
    runner = CliRunner()
    model = crm_model.save(tmp_path / "model")
    spark_args = ["--engine", "spark", "--master", "local[2]"]
    for engine_args, out in (([], "single.parquet"), (spark_args, "spark_features")):
        result = runner.invoke(
            app,
            ["features", str(folder), "--spec", str(spec_path), "--out", str(tmp_path / out), *engine_args],
        )
        assert result.exit_code == 0, result.output
    _assert_same_rows(
        pd.read_parquet(tmp_path / "single.parquet"),
        pd.read_parquet(tmp_path / "spark_features"),
        ["Lead ID", "MQL Date"],
    )
    # The training table of a folder scores as a plain Parquet table, and again over an older output.
    for _ in range(2):
        result = runner.invoke(
            app,
            [
                "score",
                str(tmp_path / "spark_features"),
                "--model",
                str(model),
                "--out",
                str(tmp_path / "s"),
                *spark_args,
            ],
        )
        assert result.exit_code == 0, result.output
    direct = runner.invoke(
        app,
        [
            "score",
            str(tmp_path / "single.parquet"),
            "--model",
            str(model),
            "--out",
            str(tmp_path / "p.parquet"),
        ],
    )
    assert direct.exit_code == 0, direct.output
    _assert_same_rows(
        pd.read_parquet(tmp_path / "p.parquet"), pd.read_parquet(tmp_path / "s"), ["Lead ID", "p_sql"]
    )
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith("spark-tmp")]  # nothing half-written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "dask"], "--engine: unknown engine 'dask'"),
        (["--master", "local[2]"], "--master: only with --engine spark"),
        (["--engine", "spark", "--log"], "--log: not with --engine spark"),
    ],
)
def test_bad_engine_options_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["score", str(tmp_path / "x.parquet"), "--model", str(tmp_path), "--out", str(tmp_path / "o"), *args],
    )
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_bad_export_is_one_line_naming_the_spec_key(
    spark: SparkSession, export: tuple[Path, DatasetSpec, Path], tmp_path: Path
) -> None:
    from leadscore.errors import UserError
    from leadscore.spark.features import declared_frame

    folder, spec, _ = export
    wrong_type = {**SPEC, "engagement": {**SPEC["engagement"], "visits_30d": {"count": "Web Vist"}}}
    with pytest.raises(
        UserError, match=r"spec key 'engagement.visits_30d': event type 'Web Vist' never occurs"
    ):
        declared_frame(spark, str(folder), DatasetSpec.model_validate(wrong_type))
    wrong_column = {**SPEC, "engagement": {"x": {"sum": "Duration"}}}
    with pytest.raises(
        UserError, match=r"spec key 'engagement.x.sum': column 'Duration' is not in activities"
    ):
        declared_frame(spark, str(folder), DatasetSpec.model_validate(wrong_column))
    no_stage = {**SPEC, "label": {"stages": ["Won"], "within_days": 90}}
    with pytest.raises(UserError, match=r"spec key 'label.stages': none of Won occurs in status_history.csv"):
        declared_frame(spark, str(folder), DatasetSpec.model_validate(no_stage))
    with pytest.raises(UserError, match=r"no 'contacts' table"):
        declared_frame(spark, str(tmp_path), spec)


def test_a_spark_training_table_is_read_as_one_table(
    spark: SparkSession, export: tuple[Path, DatasetSpec, Path], tmp_path: Path
) -> None:
    """Features on everything with Spark, then trained on as one file would be: the readers take a
    folder of Parquet parts as one table (its digest, the run's data lineage, covers every part)."""
    from leadscore.data.sources import count_rows, iter_table, read_table, read_table_hashed
    from leadscore.spark.features import declared_frame
    from leadscore.spark.session import write_parquet

    folder, spec, _ = export
    out = tmp_path / "training"
    write_parquet(declared_frame(spark, str(folder), spec, buckets=5), str(out))
    assert (out / "_SUCCESS").exists()
    frame, digest = read_table_hashed(out)
    assert len(frame) == len(read_leads(folder, spec, labels=True))
    # A second part (as a bigger job writes) is read with the first, and changes the digest.
    part = next(out.glob("part-*.parquet"))
    (out / "part-99999.parquet").write_bytes(part.read_bytes())
    whole = read_table(out)
    assert len(whole) == 2 * len(frame) == count_rows(out)
    assert sum(len(c) for c in iter_table(out, chunk_rows=300)) == len(whole)
    assert read_table_hashed(out)[1] != digest


def test_a_segmented_model_routes_each_lead_the_same_inside_spark(
    spark: SparkSession, export: tuple[Path, DatasetSpec, Path], tmp_path: Path
) -> None:
    from leadscore.modeling.options import CAPACITIES, TrainOptions
    from leadscore.modeling.train import train_model
    from leadscore.scoring.batch import score_file
    from leadscore.scoring.contract import CutoffContract, load_contract
    from leadscore.spark.scoring import score_spark

    folder, spec, _ = export
    segmented = DatasetSpec.model_validate({**spec.model_dump(), "segments": {"by": "Country"}})
    default = load_contract()[0].model_dump()
    contract = CutoffContract.model_validate(
        {**default, "segments": {"United States": {"probability": 0.05}}}
    )
    bundle = train_model(
        folder, segmented, TrainOptions(contract=contract, capacities=(CAPACITIES[1],))
    ).bundle
    assert bundle.segmented and bundle.routes["united states"].threshold == 0.05 != bundle.threshold
    summary = score_spark(spark, str(folder), bundle, str(tmp_path / "scored"), explain=2)
    score_file(folder, bundle, tmp_path / "single.parquet", explain=2, progress=False)
    single, got = pd.read_parquet(tmp_path / "single.parquet"), pd.read_parquet(tmp_path / "scored")
    assert list(got.columns[-2:]) == ["segment", "segment_model"]
    assert summary["rows"] == len(single)
    _assert_same_rows(single, got, ["Lead ID", "p_sql", "reason_1"])
    us = single["segment"] == "United States"
    assert us.any() and (single.loc[us, "mql"] == (single.loc[us, "p_sql"] >= 0.05)).all()


@pytest.fixture(scope="module")
def accounts_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset

    out = tmp_path_factory.mktemp("spark-accounts") / "data"
    write_dataset(generate(GeneratorConfig(leads=1500, seed=3, accounts=True)), out)
    return out


def test_the_accounts_at_their_moments_are_the_single_machine_rows(
    spark: SparkSession, accounts_export: Path, tmp_path: Path
) -> None:
    """Accounts bucketed by account inside Spark (each lead matched by the one matcher, its events
    following it): every account at every training moment with its label, and every account as of
    one day, row for row the pandas engine's, whatever the number of buckets."""
    from leadscore.data.account_table import account_table
    from leadscore.spark.accounts import account_frame
    from leadscore.spark.tables import on_driver

    spec = load_spec("synthetic-accounts")
    key = ["account_id", "moment"]
    single = account_table(accounts_export, spec).frame
    assert single["opportunity"].sum() > 20 and single["account_id"].nunique() > 100
    for buckets in (1, 3):
        got = on_driver(account_frame(spark, str(accounts_export), spec, buckets=buckets))
        _assert_same_rows(single, got, key)
    day = float(pd.Timestamp("2025-03-01").value // 1_000_000)
    on_day = on_driver(account_frame(spark, str(accounts_export), spec, as_of=day, buckets=2))
    _assert_same_rows(account_table(accounts_export, spec, as_of=day).frame, on_day, key)
    runner = CliRunner()
    for engine_args, out in (
        ([], "single.parquet"),
        (["--engine", "spark", "--master", "local[2]"], "spark"),
    ):
        args = ["features", str(accounts_export), "--spec", "synthetic-accounts", "--level", "account"]
        result = runner.invoke(app, [*args, "--out", str(tmp_path / out), *engine_args])
        assert result.exit_code == 0, result.output
        assert f"{len(single):,} account moments" in result.output
    _assert_same_rows(pd.read_parquet(tmp_path / "single.parquet"), pd.read_parquet(tmp_path / "spark"), key)


def test_a_leads_account_features_and_both_models_score_as_the_pandas_path(
    spark: SparkSession, accounts_export: Path, tmp_path: Path
) -> None:
    """``scope: account`` features inside Spark (each lead bucketed with its account's leads, a lead
    without one alone) are the pandas engine's, row for row; ``score --engine spark`` gives the lead
    model's and the account model's scores as the single-machine path does."""
    from leadscore.spark.features import declared_frame
    from leadscore.spark.tables import on_driver
    from tests.helpers import private_env, train_accounts_spec

    spec = load_spec("synthetic-accounts")
    assert spec.declared_account
    single = read_leads(accounts_export, spec, labels=True)
    assert (single[list(spec.declared_account)] > 0).any().all()
    got = on_driver(declared_frame(spark, str(accounts_export), spec, labels=True, buckets=3))
    _assert_same_rows(single, got, ["lead_id", "created_at"])
    env, payload = train_accounts_spec(accounts_export, tmp_path)
    models = {"leads": payload["model_path"], "accounts": payload["accounts"]["model_path"]}
    key = {"leads": ["lead_id", "p_sql"], "accounts": ["account_id"]}
    with private_env(env):
        for level, model in models.items():
            day = ["--as-of", "2025-03-01"] if level == "accounts" else []
            for engine_args, out in (
                ([], "single.parquet"),
                (["--engine", "spark", "--master", "local[2]"], "spark"),
            ):
                args = ["score", str(accounts_export), "--model", model, "--explain", "3", *day]
                result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / level / out), *engine_args])
                assert result.exit_code == 0, result.output
            single = pd.read_parquet(tmp_path / level / "single.parquet")
            assert len(single) > 100 and (single["reason_1"] != "").all()
            _assert_same_rows(single, pd.read_parquet(tmp_path / level / "spark"), key[level])


def test_account_labels_from_the_status_history_are_the_single_machine_rows(
    spark: SparkSession, accounts_export: Path
) -> None:
    """``accounts.label.stages`` (an account moment is positive when one of its leads enters SQL
    within the window) inside Spark: the same rows and labels as the pandas engine's."""
    from leadscore.data.account_table import account_table
    from leadscore.spark.accounts import account_frame
    from leadscore.spark.tables import on_driver
    from leadscore.spec import DatasetSpec

    document = load_spec("synthetic-accounts").model_dump()
    document["accounts"]["label"] = {"stages": ["sql "], "within_days": 30}  # as written: trimmed, folded
    spec = DatasetSpec.model_validate(document)
    single = account_table(accounts_export, spec).frame
    assert 5 < single["opportunity"].sum() < len(single)
    for buckets in (1, 3):
        got = on_driver(account_frame(spark, str(accounts_export), spec, buckets=buckets))
        _assert_same_rows(single, got, ["account_id", "moment"])
