"""Helpers for the notebooks in ``notebooks/``: small synthetic data, training, explanations, cutoffs.

Each returns plain data or pandas frames that display well in Jupyter, so a notebook needs to import
nothing but ``leadscore``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.data.maturity import matured_labels
from leadscore.data.sources import read_table, resolve_leads_path
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
from leadscore.data.validate import validate_frame
from leadscore.jobs.workflow import train_and_log
from leadscore.modeling.cutoff import tradeoff
from leadscore.reports import plots
from leadscore.scoring.answer import score_parts
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.points import load_rules
from leadscore.spec import load_spec


def make_demo_data(folder: str | Path, *, leads: int = 3000, seed: int = 1, drift: bool = False) -> Path:
    """Write a small synthetic generator folder (leads, events, stage history, feedback)."""
    folder = Path(folder)
    write_dataset(generate(GeneratorConfig(leads=leads, seed=seed, drift=drift)), folder)
    return folder


def read_leads(data: str | Path) -> pd.DataFrame:
    return read_table(resolve_leads_path(data))


def validate(data: str | Path, spec: str = "synthetic") -> pd.DataFrame:
    """What validation finds in the data, one row per problem (an empty frame: nothing found)."""
    report = validate_frame(read_leads(data), load_spec(spec), source=str(data))
    columns = ["level", "check", "column", "count", "message"]
    return pd.DataFrame(report.to_dict()["problems"], columns=columns)


def train(data: str | Path, *, spec: str = "synthetic", **options: Any) -> dict[str, Any]:
    """Train, log to MLflow, register and export, exactly as ``leadscore train`` does."""
    return train_and_log(data, load_spec(spec), **options)[1]


def compare_metrics(*summaries: dict[str, Any]) -> pd.DataFrame:
    """Test metrics of training runs (and their baselines) side by side."""
    rows = []
    for s in summaries:
        rows.append({"model": f"version {s['registered_version']}", **s["metrics"]})
    if summaries:
        for name, m in summaries[-1]["baselines"].items():
            rows.append({"model": name.replace("_", " "), **m})
    return pd.DataFrame(rows).set_index("model")


def global_importance(bundle: ModelBundle, leads: pd.DataFrame) -> pd.DataFrame:
    """Each field's share of the mean absolute SHAP contribution on these leads."""
    contrib, _ = bundle.field_contributions(bundle.encode(leads))
    mean_abs = np.abs(contrib).mean(axis=0)
    frame = pd.DataFrame(
        {"field": bundle.fields, "group": bundle.field_groups.astype(str), "share": mean_abs / mean_abs.sum()}
    )
    return frame.sort_values("share", ascending=False, kind="stable").reset_index(drop=True)


def shap_figures(bundle: ModelBundle, leads: pd.DataFrame) -> tuple[Any, Any]:
    """The global SHAP beeswarm and bar figures (matplotlib) for these leads."""
    X = bundle.encode(leads)
    contrib, _ = bundle.field_contributions(X)
    return plots.shap_plots(contrib, bundle.field_values(X), bundle.fields)


def explain_leads(bundle: ModelBundle, leads: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """Score, grade and the top reasons of each lead, as a rep would read them."""
    scored = bundle.score_frame(leads, explain=k)
    rows = []
    for i, r in enumerate(score_parts(scored)):
        rows.append(
            {
                "lead_id": leads[bundle.id_column].iloc[i] if bundle.id_column else i,
                "p_sql": r["p_sql"],
                "mql": r["mql"],
                "grade": r["grade"],
                "for": "; ".join(x["text"] for x in r["reasons"]["positive"]),
                "against": "; ".join(x["text"] for x in r["reasons"]["negative"]),
                "weights_sum_pp": sum(
                    x["weight"] for x in r["reasons"]["positive"] + r["reasons"]["negative"]
                ),
            }
        )
    return pd.DataFrame(rows)


def cutoff_tradeoff(bundle: ModelBundle, leads: pd.DataFrame, steps: int = 20) -> pd.DataFrame:
    """MQL volume against MQL->SQL rate and recall on labelled leads, with the points model beside it."""
    y, known = matured_labels(leads, bundle.spec)  # closed windows only: an open one is not a "no"
    leads = leads[known].reset_index(drop=True)
    y = y[known]
    p = bundle.score_frame(leads).p_sql
    points = None
    rules = load_rules(bundle.spec.rules or "b2b-default")
    if rules.available(leads.columns):
        points = rules.score(leads)["points"].to_numpy(dtype=float)
    frame = pd.DataFrame(tradeoff(y, p, points, steps))
    weekly = bundle.meta.cutoff.weekly_lead_volume
    if weekly:
        frame.insert(2, "mql_per_week", frame["mql_share"] * weekly)
    return frame
