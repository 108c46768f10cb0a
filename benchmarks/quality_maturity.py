"""What an export's day does to a model's promise: open label windows, with and without maturity.

Run: .venv/bin/python benchmarks/quality_maturity.py [--leads 40000] [--open 0.25] [--seed 1]
     [--test 40000] [--against REV] [--train-seeds 1 2 3]

Generates a world, takes its export on the day when a share ``--open`` of the exported leads' 90-day
label windows are still open (events and stage changes after it dropped, the label from the stages),
and trains on it; trains on the same leads uncut (every label known); with ``--against`` also trains
the export with an earlier revision's code. Each model is then scored on an independent set of
matured leads (another seed, uncut): the contract's promised MQL->SQL rate (with its 90% interval)
against what the threshold delivers there, and the mean P(SQL) against the observed SQL rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _revision import checkout  # noqa: E402
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset  # noqa: E402
from leadscore.modeling.dataset import deduplicate  # noqa: E402
from leadscore.modeling.options import TrainOptions  # noqa: E402
from leadscore.modeling.train import train_model  # noqa: E402
from leadscore.scoring.bundle import ModelBundle  # noqa: E402
from leadscore.scoring.contract import load_contract  # noqa: E402
from leadscore.spec import load_spec  # noqa: E402

WINDOW = pd.Timedelta(days=90)


def export_day(scored: pd.Series, open_share: float) -> pd.Timestamp:
    """The first day on which at most ``open_share`` of the leads scored by then have an open window
    (with arrivals spread evenly, the share falls as the history grows)."""
    times = np.sort(scored.to_numpy(dtype="datetime64[ms]"))
    for day in pd.date_range(pd.Timestamp(times[0]).normalize() + WINDOW, pd.Timestamp(times[-1]), freq="D"):
        end = np.datetime64(day + pd.Timedelta(days=1))
        by_then = int(np.searchsorted(times, end))
        still_open = by_then - int(np.searchsorted(times, end - np.timedelta64(90, "D")))
        if by_then and still_open / by_then <= open_share:
            return day
    return pd.Timestamp(times[-1]).normalize()


def evaluate(bundle: ModelBundle, test: pd.DataFrame) -> dict[str, Any]:
    y = test["sql_within_90d"].to_numpy()
    scored = bundle.score_frame(test)
    mql = scored.mql
    cut = bundle.meta.cutoff
    return {
        "promised_mql_sql_rate": cut.expected_sql_rate,
        "promise_interval_90": cut.expected_sql_rate_interval,
        "delivered_mql_sql_rate": float(y[mql].mean()) if mql.any() else None,
        "promised_mql_share": cut.expected_mql_share,
        "delivered_mql_share": float(mql.mean()),
        "mean_p_sql": float(scored.p_sql.mean()),
        "observed_sql_rate": float(y.mean()),
    }


def old_revision_bundle(revision: str, folder: Path, tmp: Path) -> ModelBundle:
    """The export trained by an earlier revision's ``leadscore train`` (its own sources)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp / "old" / "src"),
        "LEADSCORE_TRACKING_URI": f"sqlite:///{tmp}/old-mlflow.db",
        "LEADSCORE_ARTIFACT_ROOT": str(tmp / "old-artifacts"),
        "LEADSCORE_MODELS_DIR": str(tmp / "old-models"),
    }
    with checkout(revision, tmp / "old"):
        out = subprocess.run(
            [sys.executable, "-m", "leadscore", "train", str(folder), "--spec", "synthetic", "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        return ModelBundle.load(json.loads(out.stdout)["model_path"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=40_000, help="leads generated (the export holds fewer)")
    parser.add_argument(
        "--open", type=float, default=0.25, help="share of exported leads with an open window"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--test", type=int, default=40_000, help="independent matured leads")
    parser.add_argument("--against", default=None, help="an earlier revision to train the same export with")
    parser.add_argument(
        "--train-seeds",
        type=int,
        nargs="*",
        default=[],
        help="also train the uncut leads with these training seeds: the booster's own spread of mean P(SQL)",
    )
    args = parser.parse_args()
    spec = load_spec("synthetic")
    uncut = generate(GeneratorConfig(leads=args.leads, seed=args.seed, observed_until="uncut"))
    day = export_day(uncut["leads"].to_pandas()["scored_at"], args.open)
    options = TrainOptions(contract=load_contract()[0], seed=args.seed)
    report: dict[str, Any] = {"export_day": str(day.date()), "open_share_target": args.open}
    test = generate(GeneratorConfig(leads=args.test, seed=args.seed + 100, observed_until="uncut"))
    test_leads, _ = deduplicate(test["leads"].to_pandas(), spec)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        cut_dir, uncut_dir = tmp / "cut", tmp / "uncut"
        write_dataset(
            generate(GeneratorConfig(leads=args.leads, seed=args.seed, observed_until=str(day.date()))),
            cut_dir,
        )
        exported = pd.read_parquet(cut_dir / "leads.parquet", columns=["lead_id"])["lead_id"]
        same = uncut["leads"].filter(
            pd.Series(uncut["leads"].column("lead_id").to_numpy()).isin(exported).to_numpy()
        )
        write_dataset({**uncut, "leads": same}, uncut_dir)
        runs = {
            "maturity (this checkout), export": (cut_dir, spec),
            "the same leads uncut": (
                uncut_dir,
                spec.model_copy(update={"observed_until": (day + 2 * WINDOW).date()}),
            ),
        }
        for name, (folder, run_spec) in runs.items():
            result = train_model(folder, run_spec, options)
            report[name] = {"label_windows": result.label_windows, **evaluate(result.bundle, test_leads)}
        for train_seed in args.train_seeds:
            options_s = TrainOptions(contract=load_contract()[0], seed=train_seed)
            result = train_model(uncut_dir, runs["the same leads uncut"][1], options_s)
            report[f"uncut, training seed {train_seed}"] = {
                "mean_p_sql": evaluate(result.bundle, test_leads)["mean_p_sql"]
            }
        if args.against:
            report[f"{args.against}, export"] = evaluate(
                old_revision_bundle(args.against, cut_dir, tmp), test_leads
            )
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
