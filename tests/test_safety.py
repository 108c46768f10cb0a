"""Safe in production: bad files are one clear line, nothing is half-written or lost, the served champion
is never overwritten, and a damaged model is refused before it is parsed (issue 13)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import UserError
from leadscore.scoring.bundle import BOOSTER_FILE, CHECKSUM_FILE, ModelBundle
from leadscore.store.db import open_store
from leadscore.store.scores import store_counts
from tests.helpers import Trained, make_leads, make_tables, mlflow_env, one_byte_off, private_env

runner = CliRunner()


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _bundle_dir(model: Path) -> Path:
    return model / "artifacts" / "bundle"


# --- files in ----------------------------------------------------------------------------------


def test_a_header_only_csv_scores_to_an_empty_result_with_the_header(
    trained: Trained, tmp_path: Path
) -> None:
    src = tmp_path / "empty.csv"
    src.write_text("lead_id,job_title,employee_count\n")
    out = tmp_path / "scored.csv"
    code, output = _cli(
        "score", str(src), "--model", str(trained["model_path"]), "--out", str(out), "--explain", "2"
    )
    assert code == 0, output
    assert out.read_text().splitlines() == [
        '"lead_id","p_sql","mql","grade","reason_1","reason_2",'
        '"fit_band","fit_log_odds","engagement_band","engagement_log_odds",'
        '"p_sql_7d","p_sql_30d","expected_days_to_sql"'
    ]
    assert "Traceback" not in output


def test_a_one_column_csv_keeps_its_column(tmp_path: Path) -> None:
    src = tmp_path / "onecol.csv"
    src.write_text("x\n" + "\n".join(["1", "0"] * 30) + "\n")
    code, output = _cli("validate", str(src), "--label", "x", "--json")
    assert "label column" not in output and "is missing" not in output, output
    assert json.loads(output)["rows"] == 60


def test_duplicated_column_names_are_an_error_naming_them(trained: Trained, tmp_path: Path) -> None:
    leads = make_leads(50, 3)[["lead_id", "employee_count", "job_title"]]
    src = tmp_path / "dup.csv"
    src.write_text(leads.to_csv(index=False).replace("job_title", "employee_count", 1))
    code, output = _cli("validate", str(src), "--label", "lead_id")
    assert code == 2 and "duplicated column names: 'employee_count'" in output
    code, output = _cli(
        "score", str(src), "--model", str(trained["model_path"]), "--out", str(tmp_path / "o.csv")
    )
    assert code == 2 and "duplicated column names: 'employee_count'" in output
    assert not (tmp_path / "o.csv").exists()


def test_validate_and_score_apply_the_same_cell_limit(trained: Trained, tmp_path: Path) -> None:
    leads = make_leads(20, 4)
    leads.loc[7, "job_title"] = "x" * 150_000
    src = tmp_path / "huge.csv"
    leads.to_csv(src, index=False)
    expected = "column 'job_title', row 9: a cell of more than 100,000 characters"
    code, output = _cli("validate", str(src), "--spec", "synthetic")
    assert code == 2 and expected in output
    code, output = _cli(
        "score", str(src), "--model", str(trained["model_path"]), "--out", str(tmp_path / "o.csv")
    )
    assert code == 2 and expected in output and output.strip().count("\n") == 0


def test_text_read_as_stored_categories_keeps_values_and_the_cell_limit(tmp_path: Path) -> None:
    """Parquet text read dictionary-encoded (what the account engine reads) holds the same values,
    missing ones included, and a long cell is still one line naming its column and row."""
    from leadscore.data.sources import read_some_columns, read_table

    events = pd.DataFrame({"id": [1, 2, 3, 4], "kind": ["visit", None, "visit", "form"], "n": [1, 2, 3, 4]})
    events.to_parquet(tmp_path / "ok.parquet")
    read = read_some_columns(tmp_path / "ok.parquet", ["id", "kind"], categories=["kind", "id"])
    assert isinstance(read["kind"].dtype, pd.CategoricalDtype) and list(read.columns) == ["id", "kind"]
    assert read["id"].dtype == "int64"  # only text is read as categories
    plain = read_table(tmp_path / "ok.parquet")["kind"]
    assert [None if pd.isna(v) else v for v in read["kind"]] == [None if pd.isna(v) else v for v in plain]
    events.loc[2, "kind"] = "x" * 150_000
    events.to_parquet(tmp_path / "long.parquet")
    with pytest.raises(UserError, match="column 'kind', row 4: a cell of more than 100,000 characters"):
        read_some_columns(tmp_path / "long.parquet", ["id", "kind"], categories=["kind"])


def test_scores_never_overwrite_their_input(trained: Trained, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    make_leads(30, 5).to_csv(src, index=False)
    before = src.read_bytes()
    code, output = _cli("score", str(src), "--model", str(trained["model_path"]), "--out", str(src))
    assert code == 2 and "is the input file" in output
    assert src.read_bytes() == before


def test_scores_never_replace_a_table_of_the_folder_they_read(
    trained: Trained, synthetic_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    shutil.copytree(synthetic_dir, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    model = str(trained["model_path"])
    for out, what in [
        ("events.csv", "the folder's events table 'events'"),  # the activity log, another extension
        ("stage_history.parquet", "the folder's stages table 'stage_history'"),
        ("leads.parquet", "the input file"),
    ]:
        code, output = _cli("score", str(folder), "--model", model, "--out", str(folder / out))
        assert code == 2 and f"{folder / out}: is {what}; write the scores" in output, output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing added or changed
    code, output = _cli("score", str(folder), "--model", model, "--out", str(folder / "scored.csv"))
    assert code == 0, output  # beside the tables is fine


def test_a_score_log_run_stopped_halfway_logs_nothing_and_its_rerun_logs_once(
    trained: Trained, tmp_path: Path
) -> None:
    leads = make_leads(450, 8, fault_rate=0.0)
    leads["lead_id"] = leads["lead_id"].astype(str)
    leads.loc[leads.index[420], "lead_id"] = "x" * 300  # a bad cell in the fifth chunk of 100
    src, out = tmp_path / "in.csv", tmp_path / "scored.csv"
    leads.to_csv(src, index=False)
    store = f"sqlite:///{tmp_path}/log.db"
    model = str(trained["model_path"])
    args = ["score", str(src), "--model", model, "--out", str(out), "--log", "--chunk-rows", "100", "--json"]
    with private_env({**trained["env"], "LEADSCORE_DATABASE_URL": store}):
        code, output = _cli(*args)
        assert code == 2 and "row 422" in output, output
        assert not out.exists() and store_counts(open_store(store))["scores"] == 0  # nothing half-logged
        leads.loc[leads.index[420], "lead_id"] = "fixed"
        leads.to_csv(src, index=False)
        code, output = _cli(*args)
    assert code == 0 and json.loads(output)["logged"] == 450, output
    counts = store_counts(open_store(store))
    assert (counts["scores"], counts["leads_scored"]) == (450, 450)  # each answer once


def test_csv_output_neutralises_formulas(trained: Trained, tmp_path: Path) -> None:
    leads = make_leads(6, 6)
    ids = ['=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\tTAB", "L-6"]
    leads["lead_id"] = ids
    src = tmp_path / "evil.parquet"
    leads.to_parquet(src)
    out = tmp_path / "scored.csv"
    code, output = _cli("score", str(src), "--model", str(trained["model_path"]), "--out", str(out))
    assert code == 0, output
    cells = pd.read_csv(out, dtype=str, keep_default_na=False)["lead_id"].tolist()
    assert cells == ["'" + v for v in ids[:5]] + ["L-6"]
    parquet = tmp_path / "scored.parquet"
    _cli("score", str(src), "--model", str(trained["model_path"]), "--out", str(parquet))
    assert pd.read_parquet(parquet)["lead_id"].tolist() == ids  # Parquet keeps the values as they are


def test_temporary_files_of_a_killed_process_are_cleaned_on_the_next_run(
    trained: Trained, tmp_path: Path
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    stale = tmp_path / f".scored.csv.{pid}.abc123.tmp"
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / f".scored.csv.{os.getpid()}.def456.tmp"  # a writer still at work: left alone
    live.write_bytes(b"y")
    src = tmp_path / "in.parquet"
    make_leads(40, 7).to_parquet(src)
    code, output = _cli(
        "score", str(src), "--model", str(trained["model_path"]), "--out", str(tmp_path / "scored.csv")
    )
    assert code == 0, output
    assert not stale.exists() and live.exists()


# --- the feedback store under concurrency --------------------------------------------------------


# Runs ``leadscore ARGS`` with two barriers: neither process opens the store before the other is
# ready to, and neither writes its decisions before the other is ready to (so the two really overlap).
_TOGETHER = """
import sys, time, pathlib, runpy
from leadscore.monitoring import feedback
folder, me = pathlib.Path(sys.argv[1]), sys.argv[2]

def together(step):
    (folder / f"{step}-{me}").touch()
    deadline = time.monotonic() + 120
    while len(list(folder.glob(f"{step}-*"))) < 2:
        if time.monotonic() > deadline:
            sys.exit(f"barrier {step}: the other import never came")
        time.sleep(0.005)

def waiting(step, inner):
    def call(*args, **kwargs):
        together(step)
        return inner(*args, **kwargs)
    return call

feedback.open_store = waiting("open", feedback.open_store)
feedback.add_decisions = waiting("write", feedback.add_decisions)
sys.argv = ["leadscore", *sys.argv[3:]]
runpy.run_module("leadscore", run_name="__main__")
"""


def test_two_feedback_imports_at_once_lose_nothing(tmp_path: Path, database_url: str) -> None:
    """Two imports of overlapping exports at once, into a store neither has opened yet (both migrate
    it), on SQLite and PostgreSQL: every decision once, none lost."""
    from leadscore.monitoring.feedback import load_store

    feedback = make_tables(40_000, 12)["feedback"].to_pandas()
    third = len(feedback) // 3
    parts = [feedback.iloc[: 2 * third], feedback.iloc[third:]]  # the middle third is in both
    files = []
    for i, part in enumerate(parts):
        path = tmp_path / f"part{i}.csv"
        part.to_csv(path, index=False)
        files.append(path)
    barriers = tmp_path / "barriers"
    barriers.mkdir()
    cmd = [sys.executable, "-c", _TOGETHER, str(barriers)]
    args = ["feedback", "import", "--store", database_url, "--json"]
    procs = [
        subprocess.Popen(
            [*cmd, str(i), *args, str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for i, f in enumerate(files)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    # Both opened (and migrated) the store together, and both wrote together.
    assert sorted(p.name for p in barriers.iterdir()) == ["open-0", "open-1", "write-0", "write-1"]
    unique = len(feedback.drop_duplicates(["lead_id", "decision", "decided_at"]))
    new = [json.loads(out)["new"] for out, _ in outputs]
    assert sum(new) == unique and min(new) > 0, f"{new}: decisions lost or added twice"
    assert len(load_store(database_url)) == unique


# --- models: the champion's folder, damaged bundles, lineages, abandoned runs ----------------------


@pytest.fixture()
def private_store(tmp_path: Path) -> dict[str, str]:
    return mlflow_env(tmp_path)


@pytest.mark.slow
def test_training_a_challenger_leaves_the_champions_folder_alone(
    synthetic_dir: Path, tmp_path: Path, private_store: dict[str, str]
) -> None:
    with private_env(private_store):
        first = json.loads(_train(str(synthetic_dir), "--spec", "synthetic", "--json"))
        second = json.loads(_train(str(synthetic_dir), "--spec", "synthetic", "--seed", "7", "--json"))
    models = tmp_path / "models"
    assert first["model_path"] == str(models / "synthetic") and "champion" in first["aliases"]
    assert second["aliases"] == ["challenger"]
    assert second["model_path"] == str(models / "synthetic@challenger")
    served = ModelBundle.load(models / "synthetic")
    assert served.meta.registered is not None and served.meta.registered.version == "1"
    waiting = ModelBundle.load(models / "synthetic@challenger")
    assert waiting.meta.registered is not None and waiting.meta.registered.version == "2"


@pytest.mark.slow
def test_a_different_export_with_the_same_name_is_refused_until_named(
    tmp_path: Path, private_store: dict[str, str]
) -> None:
    bank, school = tmp_path / "bank", tmp_path / "school"
    bank.mkdir()
    school.mkdir()
    make_leads(3000, 21).drop(columns=["scored_at", "created_at"]).to_csv(bank / "train.csv", index=False)
    renamed = make_leads(3000, 22).rename(columns={"sql_within_90d": "Converted", "lead_id": "Prospect ID"})
    renamed.drop(columns=["scored_at", "created_at"]).to_csv(school / "train.csv", index=False)
    with private_env(private_store):
        _train(str(bank / "train.csv"), "--label", "sql_within_90d", "--id", "lead_id", "--json")
        code, output = _cli("train", str(school / "train.csv"), "--label", "Converted", "--id", "Prospect ID")
        assert code == 2 and output.strip().count("\n") == 0, output  # refused before training
        assert "leadscore-train holds models of other data" in output and "--name" in output
        named = json.loads(
            _train(
                str(school / "train.csv"),
                "--label",
                "Converted",
                "--id",
                "Prospect ID",
                "--name",
                "school",
                "--json",
            )
        )
    assert named["registered_model"] == "leadscore-school"
    assert ModelBundle.load(tmp_path / "models" / "train").spec.label.column == "sql_within_90d"


def _train(*args: str) -> str:
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_damaged_or_partial_bundle_is_one_line_and_never_parsed(trained: Trained, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(trained["model_path"], model)
    booster = _bundle_dir(model) / BOOSTER_FILE
    text = booster.read_bytes()
    booster.write_bytes(text[: len(text) // 4])  # truncated: LightGBM would abort the process
    with pytest.raises(UserError, match="damaged"):
        ModelBundle.load(model)
    src = tmp_path / "leads.parquet"
    make_leads(20, 8).to_parquet(src)
    out = tmp_path / "o.csv"
    done = subprocess.run(
        [sys.executable, "-m", "leadscore", "score", str(src), "--model", str(model), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "model bundle is damaged" in done.stderr and done.stderr.count("\n") == 1
    (_bundle_dir(model) / CHECKSUM_FILE).unlink()  # an older bundle without checksums: still refused
    with pytest.raises(UserError, match="cut short|fewer trees"):
        ModelBundle.load(model)
    # One byte changed in an older bundle's booster (num_leaves=7 -> 9): whole by its header, but
    # LightGBM aborts the process parsing it. It is parsed in a child process first: refused here.
    shutil.rmtree(model)
    shutil.copytree(trained["model_path"], model)
    (_bundle_dir(model) / CHECKSUM_FILE).unlink()
    one_byte_off(_bundle_dir(model) / BOOSTER_FILE)
    with pytest.raises(UserError, match="its booster cannot be read"):
        ModelBundle.load(model)  # this process is still here to see the error
    done = subprocess.run(
        [sys.executable, "-m", "leadscore", "score", str(src), "--model", str(model), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "its booster cannot be read" in done.stderr, done.stderr
    shutil.rmtree(model)
    shutil.copytree(trained["model_path"], model)
    (_bundle_dir(model) / BOOSTER_FILE).unlink()  # partial: a file is missing
    with pytest.raises(UserError, match="incomplete"):
        ModelBundle.load(model)


@pytest.mark.slow
def test_a_run_left_running_by_a_killed_process_ends_as_failed_at_the_next_start(
    synthetic_dir: Path, private_store: dict[str, str]
) -> None:
    code = (
        "import os, signal, mlflow\n"
        "from leadscore.tracking.store import configure, experiment_id, owner_tags\n"
        "configure()\n"
        "run = mlflow.start_run(experiment_id=experiment_id('leadscore-synthetic'), tags=owner_tags())\n"
        "print(run.info.run_id, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **private_store}, capture_output=True, text=True
    )
    assert killed.returncode == -9, killed.stderr
    run_id = killed.stdout.strip()
    with private_env(private_store):
        from leadscore.tracking.store import client

        assert client().get_run(run_id).info.status == "RUNNING"
        _train(str(synthetic_dir), "--spec", "synthetic", "--json")  # the next start
        run = client().get_run(run_id)
        assert run.info.status == "FAILED" and run.data.tags["leadscore.ended_because"].startswith(
            "its process"
        )
