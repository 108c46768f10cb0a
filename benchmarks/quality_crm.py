"""The shipped CRM specs and a product-usage log against the native folder, over several worlds.

Run: .venv/bin/python benchmarks/quality_crm.py [--leads 6000] [--seeds 3 4 5]

Per seed: a generated world written as the native folder, as HubSpot's exports (``--spec hubspot``)
and as Salesforce's objects (``--spec salesforce`` with the org's qualified status); each trained on
the same leads and judged on the same test leads (ROC AUC, and the gap to the native folder). Then the
same world with a trial product's usage log keyed by email, where usage raises P(SQL): the CRM-only
model against one that reads the usage log as a second named log. Prints the worst gaps too.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.data.synthetic.hubspot import hubspot_tables
from leadscore.data.synthetic.salesforce import salesforce_tables
from leadscore.data.synthetic.usage import with_product_usage
from leadscore.modeling.options import TrainOptions
from leadscore.modeling.train import train_model
from leadscore.scoring.contract import load_contract
from leadscore.spec import load_spec

ACTIVITY = {"table": "events", "id": "lead_id", "time": "occurred_at", "type": "event_type"}
USAGE = {"table": "product_usage", "email": "User Email", "time": "Timestamp", "type": "Event"}
PQL = {
    "usage_events_14d": {"count": "any", "days": 14, "log": "usage"},
    "active_days_14d": {"distinct_days": "any", "days": 14, "log": "usage"},
    "invites_14d": {"count": "Invite Teammate", "days": 14, "log": "usage"},
}


def _auc(folder: Path, spec: str) -> tuple[float, int]:
    result = train_model(folder, load_spec(spec), TrainOptions(contract=load_contract()[0], search_trials=0))
    return float(result.metrics["roc_auc"]), int(result.n_test)


def crm_run(root: Path, leads: int, seed: int) -> dict[str, Any]:
    tables = generate(GeneratorConfig(leads=leads, seed=seed, fault_rate=0.0))
    write_dataset(tables, root / "native")
    out: dict[str, Any] = {"seed": seed}
    out["native"], n_test = _auc(root / "native", "synthetic")
    for name, reshape in (("hubspot", hubspot_tables), ("salesforce", salesforce_tables)):
        (root / name).mkdir()
        for stem, frame in reshape(tables, seed).items():
            frame.to_csv(root / name / f"{stem}.csv", index=False)
    own = root / "acme.yaml"
    own.write_text(
        yaml.safe_dump({"extends": "salesforce", "name": "acme", "label": {"stages": ["Sales Qualified"]}})
    )
    out["hubspot"], n_hub = _auc(root / "hubspot", "hubspot")
    out["salesforce"], n_sf = _auc(root / "salesforce", str(own))
    out["same_test_leads"] = n_test == n_hub == n_sf
    return out


def pql_run(root: Path, leads: int, seed: int) -> dict[str, float]:
    tables = generate(GeneratorConfig(leads=leads, seed=seed, fault_rate=0.0, observed_until="uncut"))
    frame, usage = with_product_usage(tables, seed)
    folder = root / "pql"
    folder.mkdir()
    frame.to_parquet(folder / "leads.parquet")
    tables["events"].to_pandas().to_parquet(folder / "events.parquet")
    usage.to_csv(folder / "product_usage.csv", index=False)
    out = {}
    for name, logs, extra in (
        ("crm_only", {"activity": ACTIVITY}, {}),
        ("with_usage", {"activity": ACTIVITY, "usage": USAGE}, PQL),
    ):
        label = {"stages": None, "within_days": None}
        doc = {
            "extends": "synthetic",
            "name": name.replace("_", "-"),
            "label": label,
            "events": logs,
            "engagement": extra,
        }
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        out[name] = _auc(folder, str(path))[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=6000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    args = parser.parse_args()
    rows = []
    print("seed  native  hubspot (gap)      salesforce (gap)   same test  crm-only  +usage   (lift)")
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            crm = crm_run(Path(tmp), args.leads, seed)
        with tempfile.TemporaryDirectory() as tmp:
            pql = pql_run(Path(tmp), args.leads, seed)
        row = {**crm, **pql}
        rows.append(row)
        print(
            f"{seed:>4}  {row['native']:.4f}  {row['hubspot']:.4f} ({row['hubspot'] - row['native']:+.4f})  "
            f"{row['salesforce']:.4f} ({row['salesforce'] - row['native']:+.4f})  {row['same_test_leads']!s:>9}  "
            f"{row['crm_only']:.4f}    {row['with_usage']:.4f}  ({row['with_usage'] - row['crm_only']:+.4f})",
            flush=True,
        )
    gaps = {k: np.array([abs(r[k] - r["native"]) for r in rows]) for k in ("hubspot", "salesforce")}
    lift = np.array([r["with_usage"] - r["crm_only"] for r in rows])
    print(
        f"worst gap to the native folder: hubspot {gaps['hubspot'].max():.4f}, salesforce "
        f"{gaps['salesforce'].max():.4f} (target 0.01); usage lift mean {lift.mean():+.4f}, worst {lift.min():+.4f}"
    )


if __name__ == "__main__":
    main()
