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


def test_a_field_history_gives_the_labels_of_a_status_history_through_stages_where(tmp_path: Path) -> None:
    """Salesforce's LeadHistory has a row for every field's change; only the Status rows are stages.
    Other fields' rows (some holding the word 'SQL') must not count."""
    import numpy as np
    import pandas as pd

    from leadscore.data.synthetic import write_dataset
    from leadscore.modeling.dataset import read_training_data
    from tests.helpers import make_tables

    native = tmp_path / "native"
    write_dataset(make_tables(3000, 24, fault_rate=0.0), native)
    history = pd.read_parquet(native / "stage_history.parquet")
    noise = history.sample(frac=0.5, random_state=1).assign(stage="SQL")  # a 'Rating' field set to SQL
    rows = pd.concat([history.assign(Field="Status"), noise.assign(Field="Rating")], ignore_index=True)
    reshaped = tmp_path / "reshaped"
    reshaped.mkdir()
    for name in ("leads", "events"):
        (reshaped / f"{name}.parquet").write_bytes((native / f"{name}.parquet").read_bytes())
    rows.rename(columns={"stage": "NewValue"}).to_parquet(reshaped / "lead_history.parquet")
    (tmp_path / "sf.yaml").write_text(
        "extends: synthetic\nname: sf\n"
        "tables: {stages: lead_history}\n"
        "stages: {stage: NewValue, where: {Field: [' status ']}}\n",
        encoding="utf-8",
    )
    a = read_training_data(native, load_spec("synthetic"), None)
    b = read_training_data(reshaped, load_spec(str(tmp_path / "sf.yaml")), None)
    assert len(a.y) == len(b.y) > 1000 and np.array_equal(a.y, b.y)
    # without the filter the Rating rows would make SQLs of leads that never were
    (tmp_path / "loose.yaml").write_text(
        "extends: sf.yaml\nname: loose\nstages: {where: null}\n", encoding="utf-8"
    )
    loose = read_training_data(reshaped, load_spec(str(tmp_path / "loose.yaml")), None)
    assert loose.y.mean() > b.y.mean() + 0.05
    (tmp_path / "wrong.yaml").write_text(
        "extends: sf.yaml\nname: wrong\nstages: {where: {FieldName: Status}}\n", encoding="utf-8"
    )
    with pytest.raises(
        UserError, match="spec key 'stages.where': no column 'FieldName' in lead_history.parquet"
    ):
        read_training_data(reshaped, load_spec(str(tmp_path / "wrong.yaml")), None)


def test_a_spec_without_the_newer_keys_keeps_the_digest_it_had() -> None:
    """``spec_digest`` is logged with every run: keys added later (extends, writeback, stages.where,
    time lists, lifecycle dates) must not change the digest of a spec that does not use them. The
    figure is what the code before those keys gave for this spec."""
    from leadscore.spec import DatasetSpec

    stages = {"id": "Lead ID", "time": "At", "stage": "Status"}
    doc: dict[str, object] = {
        "name": "crm",
        "id": "Lead ID",
        "time": "Created",
        "label": {"stages": ["SQL"], "within_days": 90},
        "tables": {"stages": "history"},
        "stages": stages,
        "fit": ["Industry"],
        "exclude": {"Notes": "free text"},
    }
    assert DatasetSpec.model_validate(doc).digest() == "35f3a0ebae2b6baa"
    assert DatasetSpec.model_validate(
        {**doc, "stages": {**stages, "where": {"Field": "Status"}}}
    ).digest() != ("35f3a0ebae2b6baa")
