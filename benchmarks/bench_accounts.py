"""Accounts at scale: matching, account features for twelve monthly moments, and scoring every
account as of one moment, with a tenth-size run as the reference.

Run: .venv/bin/python benchmarks/bench_accounts.py [--leads 1000000] [--reference 100000]

The world is ``generate --accounts`` (about a third as many accounts as leads, ~19 events per lead).
Targets (issue 31, this 2-core machine, 1M leads): matching under 10 s; features for 12 monthly
moments under 60 s; every account scored as of one moment under 20 s. The model scored is trained on
a 20,000-lead world of the same spec (its features are the same; its quality is not measured here).
Peak memory is the process's high-water mark from /proc.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from leadscore.data.account_scope import activity_of
from leadscore.data.account_table import account_model_spec, account_table
from leadscore.data.accounts import match_columns, read_account_tables
from leadscore.data.folders import folder_activity
from leadscore.data.matching import match_leads
from leadscore.data.sources import write_frame
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.features.accounts import AccountRollups
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.accounts import account_scores
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.contract import load_contract
from leadscore.spec import load_spec


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def trained_world(tmp: Path) -> tuple[Path, ModelBundle]:
    """A small world (20,000 leads) and an account model of the shipped spec trained on it."""
    spec = load_spec("synthetic-accounts")
    folder = tmp / "small"
    write_dataset(generate(GeneratorConfig(leads=20_000, seed=5, accounts=True)), folder)
    table = account_table(folder, spec)
    rows = write_frame(table.frame, tmp / "small_moments.parquet")
    options = replace(TrainOptions(contract=load_contract("default")[0], search_trials=0), time_head=False)
    return folder, train_model(rows, account_model_spec(spec, table.export_ms), options).bundle


def one_size(leads: int, tmp: Path, bundle: ModelBundle) -> dict[str, float]:
    spec = load_spec("synthetic-accounts")
    folder = tmp / f"world{leads}"
    started = time.perf_counter()
    write_dataset(generate(GeneratorConfig(leads=leads, seed=9, accounts=True)), folder)
    generated = time.perf_counter() - started
    tables = read_account_tables(folder, spec)

    started = time.perf_counter()
    matches = match_leads(tables.leads, tables.accounts, match_columns(spec, tables.accounts))
    matching = time.perf_counter() - started
    started = time.perf_counter()
    events, _ = folder_activity(folder, spec, None, tables.leads)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    activity = activity_of(events, spec.activity, tables, spec)  # type: ignore[arg-type]
    accounts = spec.accounts
    assert accounts is not None
    engine = AccountRollups(activity, accounts.engagement)
    ends = np.datetime64(int(activity.times[-1]), "ms").astype("datetime64[M]")
    months = np.arange(ends - 12, ends, dtype="datetime64[M]").astype("datetime64[ms]").astype(np.int64)
    for m in months:
        engine.at(int(m))
    features = time.perf_counter() - started
    started = time.perf_counter()
    scored = account_scores(bundle, folder, float(months[-1]))
    scoring = time.perf_counter() - started
    return {
        "leads": leads,
        "accounts": len(tables.accounts),
        "events": len(events),
        "generate_s": generated,
        "matching_s": matching,
        "read_events_s": read_s,
        "features_12_s": features,
        "score_s": scoring,
        "scored": len(scored),
        "matched": int((matches.frame["method"] != "none").sum()),
        "peak_mb": peak_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--reference", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        _, bundle = trained_world(tmp)
        runs = [one_size(n, tmp, bundle) for n in (args.reference, args.leads)]
    for r in runs:
        print(
            f"{r['leads']:,} leads, {r['accounts']:,} accounts, {r['events']:,} events (generated in "
            f"{r['generate_s']:.0f} s): matching {r['matching_s']:.2f} s ({r['matched']:,} matched); reading "
            f"the activity {r['read_events_s']:.1f} s; features for 12 monthly moments {r['features_12_s']:.1f} s; "
            f"every account scored as of one moment {r['score_s']:.1f} s ({r['scored']:,} accounts, reading "
            f"included); peak memory {r['peak_mb']:,.0f} MB"
        )
    small, big = runs
    scale = big["leads"] / small["leads"]
    for key in ("matching_s", "features_12_s", "score_s"):
        print(f"{key}: {big[key] / small[key]:.1f}x the reference's time for {scale:.0f}x the leads")


if __name__ == "__main__":
    main()
