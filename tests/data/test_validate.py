"""Validation on good and broken files, through the module and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.validate import validate_frame
from leadscore.spec import load_spec, spec_from_flags
from tests.helpers import make_leads

runner = CliRunner()


def test_synthetic_data_is_usable_and_its_faults_are_counted() -> None:
    n, rate = 8000, 0.02
    leads = make_leads(n, 4, fault_rate=rate)
    report = validate_frame(leads, load_spec("synthetic"))
    assert report.usable, report.lines()
    k = round(rate * n)
    assert report.count("duplicate_contact", "email") == k
    assert report.count("placeholder") == pytest.approx(k, rel=0.15)
    assert report.count("out_of_range", "employee_count") == pytest.approx(k, rel=0.15)
    assert report.count("mixed_spelling", "country") == pytest.approx(k, rel=0.15)


def test_clean_synthetic_data_has_no_findings() -> None:
    report = validate_frame(make_leads(3000, 4, fault_rate=0.0), load_spec("synthetic"))
    assert report.usable and report.problems == []


def test_xeducation_file_is_usable_with_its_placeholders_reported(xeducation_path: Path) -> None:
    frame = pd.read_csv(xeducation_path)
    report = validate_frame(frame, load_spec("xeducation"))
    assert report.usable
    assert (report.positives, report.negatives) == (3561, 5679)
    assert report.count("placeholder", "Specialization") == 1942
    assert report.count("placeholder", "City") == 2249
    assert report.count("mixed_spelling", "Lead Source") > 0  # Google / google


def _base(n: int = 200) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(n),
            "when": ["2025-01-05"] * n,
            "size": [10] * n,
            "won": [1, 0] * (n // 2),
        }
    )


@pytest.mark.parametrize(
    ("mutate", "check", "level"),
    [
        (lambda f: f.drop(columns="won"), "missing_label", "error"),
        (lambda f: f.assign(won=["yes", "maybe"] * 100), "unknown_label", "error"),
        (lambda f: f.assign(won=[1] * 30 + [0] * 170), "too_few_examples", "error"),
        (lambda f: f.assign(id=[1] * 200), "duplicate_id", "warning"),
        (lambda f: f.assign(when=["2025-13-45"] * 10 + ["2025-01-05"] * 190), "unparseable_date", "warning"),
        (lambda f: f.assign(when=["never"] * 200), "unparseable_date", "error"),
        (lambda f: f.assign(size=["Select"] * 7 + ["10"] * 193), "placeholder", "warning"),
        (lambda f: f.assign(size=[-3] * 5 + [10] * 195), "out_of_range", "warning"),
        (lambda f: f.drop(columns="id"), "missing_column", "error"),
    ],
)
def test_broken_files_are_reported_by_column_and_count(mutate, check: str, level: str) -> None:
    spec = spec_from_flags("t", "won", ["1"], "id", "when")
    spec.label.negative = [0]
    spec.ranges = {"size": (0, 10_000)}
    report = validate_frame(mutate(_base()), spec)
    found = [p for p in report.problems if p.check == check]
    assert found, report.lines()
    assert found[0].level == level
    assert report.usable is (level == "warning")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadscore", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_validate_exit_codes_and_json(tmp_path: Path, synthetic_dir: Path) -> None:
    ok = runner.invoke(app, ["validate", str(synthetic_dir), "--spec", "synthetic", "--json"])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert payload["usable"] is True and payload["rows"] > 6000
    bad = tmp_path / "few.csv"
    _base().assign(won=[1] * 10 + [0] * 190).to_csv(bad, index=False)
    result = runner.invoke(app, ["validate", str(bad), "--label", "won", "--id", "id"])
    assert result.exit_code == 2
    assert "column 'won': only 10 SQL examples" in result.stdout


@pytest.mark.parametrize(
    ("content", "args", "needle"),
    [
        (None, ["--label", "won"], "file not found"),
        (b"", ["--label", "won"], "file is empty"),
        (b"a,b\n", ["--label", "won"], "no rows"),
        (b"\x00\x01garbage", ["--label", "won"], "unsupported format"),
        (b"PAR1garbage", ["--label", "won"], "not a readable parquet file"),
        (b"x,y\n1,2\n", ["--label", "won"], "label column is missing"),
        (b"x,y\n1,2\n", [], "--label"),
        (b"x,y\n1,2\n", ["--spec", "nonexistent"], "not found"),
    ],
)
def test_user_mistakes_give_one_line_and_no_traceback(
    tmp_path: Path, content: bytes | None, args: list[str], needle: str
) -> None:
    suffix = (
        ".parquet"
        if content and content.startswith(b"PAR1")
        else (".bin" if content and content.startswith(b"\x00") else ".csv")
    )
    path = tmp_path / f"export{suffix}"
    if content is not None:
        path.write_bytes(content)
    proc = _run("validate", str(path), *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert needle in proc.stderr + proc.stdout
