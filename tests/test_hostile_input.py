"""Files and specs an attack (or a bad day) sends: each gets one line naming what is wrong, never a
traceback or a crash (issue 29, items 8-12)."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.data.sources import read_table
from leadscore.errors import UserError
from leadscore.scoring.reasons import fill
from leadscore.spec import load_spec
from tests.helpers import Trained, make_leads


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


# --- reasons templates (item 9) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("{value.__init__.__globals__}", "'{value.__init__.__globals__}' is not a placeholder"),
        ("{value:>300000000}", "'{value:>300000000}' is not a placeholder"),
        ("{value!r}", "'{value!r}' is not a placeholder"),
        ("{0}", "'{0}' is not a placeholder"),
        ("{value", "unbalanced braces"),
        ("x" * 301, "longer than 300 characters"),
    ],
)
def test_a_reasons_template_takes_only_the_documented_placeholders(
    tmp_path: Path, template: str, said: str
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: t\nlabel: {column: y}\nreasons:\n  job_title: {positive: " + repr(template) + "}\n"
    )
    with pytest.raises(UserError) as caught:
        load_spec(str(spec))
    line = str(caught.value)
    assert "field 'reasons'" in line and "'job_title.positive'" in line and said in line
    assert "\n" not in line


def test_a_label_is_plain_text_and_every_shipped_spec_is_valid(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: t\nlabel: {column: y}\nreasons:\n  job_title: {label: 'Job {value}'}\n")
    with pytest.raises(UserError, match="a label is plain text, without braces"):
        load_spec(str(spec))
    for name in ("synthetic", "xeducation", "marketo-example"):
        assert load_spec(name).name  # the documented placeholders pass


def test_filling_a_template_never_reaches_an_objects_attributes() -> None:
    assert fill("Title {value}: {n} visit{s}", value="CTO", n="3", s="s") == "Title CTO: 3 visits"
    hostile = "{value.__class__} {label.__init__.__globals__} {value:>999999999} {0} {value}"
    expected = "{value.__class__} {label.__init__.__globals__} {value:>999999999} {0} CTO"
    assert fill(hostile, value="CTO", label="L") == expected  # only the plain placeholders are filled
    assert fill("{value.__class__} / {value}", value="CTO") == "{value.__class__} / CTO"


def test_a_column_named_like_a_format_field_is_phrased_safely(trained: Trained, tmp_path: Path) -> None:
    """A flat export's own column names become labels: never a template."""
    leads = make_leads(1500, 5, fault_rate=0.0)
    hostile = "{value.__init__.__globals__}"
    leads[hostile] = leads["pricing_page_views_7d"] * 2
    path = tmp_path / "hostile.csv"
    leads.drop(columns=["true_p_sql", "true_days_to_sql", "call_duration_sec"]).to_csv(path, index=False)
    code, out = _cli(
        "score",
        str(path),
        "--model",
        str(trained["model_path"]),
        "--out",
        str(tmp_path / "s.csv"),
        "--explain",
        "3",
    )
    assert code == 0, out


# --- YAML aliases (item 10) ------------------------------------------------------------------------


def test_a_yaml_alias_bomb_under_any_key_is_one_line(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = "\n".join(f"  {line}" for line in levels)
    spec = tmp_path / "bomb.yaml"
    spec.write_text(f"name: t\nx:\n{bomb}\nlabel:\n  column: y\n  positive: *a8\n")
    with pytest.raises(UserError) as caught:
        load_spec(str(spec))
    assert "aliases (&anchor / *alias) expand to over 200,000 values" in str(caught.value)
    modest = tmp_path / "modest.yaml"
    modest.write_text(
        "name: t\nlabel:\n  column: y\n  positive: &yes [1, 'yes']\n  negative: [0]\nfit: [a]\n"
    )
    assert load_spec(str(modest)).label.positive == [1, "yes"]


# --- files (items 11, 12) --------------------------------------------------------------------------


def test_excels_unicode_text_is_read_and_utf16_without_its_mark_is_named(tmp_path: Path) -> None:
    leads = make_leads(200, 9, fault_rate=0.0)[["lead_id", "job_title", "employee_count", "country"]]
    leads.loc[leads.index[0], "job_title"] = "Directeur général"
    unicode_text = tmp_path / "leads.txt"  # Excel's "Unicode Text": UTF-16 with its mark, tabs
    unicode_text.write_bytes(leads.to_csv(sep="\t", index=False).encode("utf-16"))
    back = read_table(unicode_text)
    assert (
        back["job_title"].iloc[0] == "Directeur général"
        and back["employee_count"].tolist() == leads["employee_count"].tolist()
    )
    bare = tmp_path / "bare.csv"
    bare.write_bytes(leads.to_csv(index=False).encode("utf-16-le"))  # no byte-order mark
    code, out = _cli("validate", str(bare), "--label", "country")
    assert code == 2 and "Traceback" not in out and f"{bare}: not UTF-8 text" in out
    assert "save it as 'CSV UTF-8'" in out


def test_a_single_line_of_megabytes_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "one-line.csv"
    path.write_text("a" * 3_000_000)
    code, out = _cli("validate", str(path), "--label", "a")
    assert code == 2 and "Traceback" not in out
    assert f"{path}: the header line has a cell of more than 100,000 characters" in out


def _limited(max_bytes: int) -> None:
    """In the child: a file-size limit past which writes fail (EFBIG), as a full disk's do (ENOSPC)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


@pytest.mark.parametrize("command", ["score", "feedback"])
def test_a_write_the_disk_refuses_is_one_line_and_nothing_half_written(
    trained: Trained, tmp_path: Path, command: str
) -> None:
    leads = make_leads(3000, 4, fault_rate=0.0)
    data = tmp_path / "leads.parquet"
    leads.to_parquet(data)
    out = tmp_path / "scored.csv"
    if command == "score":
        args = [
            "score",
            str(data),
            "--model",
            str(trained["model_path"]),
            "--out",
            str(out),
            "--explain",
            "3",
        ]
    else:
        feedback = tmp_path / "decisions.csv"
        decisions = pd.DataFrame(
            {
                "lead_id": range(3000),
                "decision": "accepted",
                "decided_at": "2026-03-02 09:30",
                "rep": "x" * 150,
            }
        )
        decisions.to_csv(feedback, index=False)
        args = ["feedback", "import", str(feedback), "--store", f"sqlite:///{tmp_path}/s.db"]
    done = subprocess.run(
        [sys.executable, "-m", "leadscore", *args],
        capture_output=True,
        text=True,
        preexec_fn=lambda: _limited(200_000),
        env={**trained["env"], **dict(__import__("os").environ)},
        timeout=300,
    )
    said = done.stderr.strip()
    assert done.returncode == 2, said
    assert "Traceback" not in said and said.count("\n") == 0, said
    assert any(w in said for w in ("File too large", "disk is full", "disk I/O error")), said
    assert not out.exists()
