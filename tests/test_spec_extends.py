"""A team's spec extends a shipped one and says only what differs (issue 32's ``extends:``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.errors import UserError
from leadscore.spec import load_spec


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_spec_extends_a_shipped_one_and_says_only_what_differs(tmp_path: Path) -> None:
    child = _write(
        tmp_path / "ours.yaml",
        "extends: synthetic\n"
        "name: ours\n"
        "label: {within_days: 60}\n"
        "exclude: {country: our legal team says so}\n"
        "fit: [job_title, industry]\n"
        "observed_until: null\n",
    )
    base, ours = load_spec("synthetic"), load_spec(str(child))
    assert ours.name == "ours" and ours.id == base.id and ours.time == base.time
    # a mapping merges key by key: the shipped stages stay, the window is ours
    assert ours.label.stages == base.label.stages and ours.label.within_days == 60
    assert ours.exclude == {**base.exclude, "country": "our legal team says so"}
    assert ours.fit == ["job_title", "industry"]  # a list is replaced
    assert ours.declared == base.declared and ours.events == base.events
    assert ours.digest() != base.digest() and ours.extends == "synthetic"


def test_a_chain_of_files_resolves_paths_and_rules_where_each_is_written(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    _write(shared / "company.yaml", "extends: synthetic\nname: company\nrules: our-points.yaml\n")
    team = _write(tmp_path / "team.yaml", "extends: shared/company.yaml\nname: team\n")
    spec = load_spec(str(team))
    # the team's file is in another folder: the company's rules are still read from the company's
    assert spec.name == "team" and spec.rules == str((shared / "our-points.yaml").resolve())
    assert spec.label.stages == load_spec("synthetic").label.stages


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("extends: no-such-spec\nname: x\n", "spec key 'extends': no spec 'no-such-spec'"),
        ("extends: [synthetic]\nname: x\n", "spec key 'extends': give a shipped spec's name"),
        ("extends: loop.yaml\nname: x\n", "spec key 'extends': 'loop.yaml' leads back to this spec"),
    ],
)
def test_a_wrong_extends_is_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    spec = _write(tmp_path / "loop.yaml", text)
    with pytest.raises(UserError, match=message):
        load_spec(str(spec))
    result = CliRunner().invoke(app, ["validate", str(tmp_path), "--spec", str(spec)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
