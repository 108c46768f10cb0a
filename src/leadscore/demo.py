"""The whole main job on synthetic data, for ``make demo``."""

from __future__ import annotations

from pathlib import Path

from leadscore._cli_util import info
from leadscore.config import UserError, load_spec
from leadscore.data.sources import read_table, write_frame
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.data.validate import validate_frame
from leadscore.rules import load_rules


def _step(title: str) -> None:
    info(f"\\n==> {title}")


def run_demo(out: Path, leads: int, seed: int, port: int) -> None:
    """Generate, validate and score with the points model; later steps are added as they land."""
    train_dir = out / "train"
    _step(f"generate {leads:,} synthetic leads (seed {seed}) -> {train_dir}")
    tables = generate(GeneratorConfig(leads=leads, seed=seed))
    write_dataset(tables, train_dir)
    info(f"    {tables['leads'].num_rows:,} leads, {tables['events'].num_rows:,} events")

    _step("validate the export against configs/datasets/synthetic.yaml")
    spec = load_spec("synthetic")
    frame = read_table(train_dir)
    report = validate_frame(frame, spec, source=str(train_dir))
    for line in report.lines():
        info(f"    {line}")
    if not report.usable:
        raise UserError("demo data failed validation")

    _step("score with the written points model (the baseline)")
    model = load_rules(spec.rules or "b2b-default")
    scored = model.score(frame)
    scored.insert(0, "lead_id", frame["lead_id"].to_numpy())
    points_path = write_frame(scored, out / "points.csv")
    mql = scored["mql"].to_numpy()
    rate = float(frame.loc[mql, spec.label.column].mean()) if mql.any() else 0.0
    info(f"    {mql.mean():.1%} of leads are MQL; their MQL->SQL rate is {rate:.1%}")

    info("\\nWhere to look:")
    info(f"    data:             {train_dir}")
    info(f"    points per lead:  {points_path}")
