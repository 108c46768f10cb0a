"""Helpers for the notebooks in ``notebooks/``: small synthetic data, training, explanations, cutoffs.

Each returns plain data or pandas frames that display well in Jupyter, so a notebook needs to import
nothing but ``leadscore``.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.config import get_settings
from leadscore.data.checking import validate_export
from leadscore.data.folders import read_leads as read_folder_leads
from leadscore.data.maturity import matured_labels
from leadscore.data.sources import read_table, resolve_leads_path
from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset
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


Given = str | Path | dict[str, str | Path | None] | None  # a notebook's DATA parameter(s)


class Workspace:
    """Where a notebook's runs go. With your own data: the project's MLflow store, models folder and
    database, as the CLI uses them. With the demo data (``data=None``): a temporary folder holding
    the generated data, a private MLflow store, models folder and database, removed by ``close()``
    (a notebook's last cell), so running a notebook leaves nothing behind."""

    def __init__(self, data: Given, spec: str, demo: dict[str, dict[str, Any]]) -> None:
        self.spec = spec
        self._tmp: Path | None = None
        self._saved: dict[str, str | None] = {}
        self.data: dict[str, Path] = {}
        if data:  # your own data: one export for every use, or one per name
            given = data if isinstance(data, dict) else dict.fromkeys(demo, data)
            first = next(v for v in given.values() if v)
            self.data = {name: Path(given.get(name) or first) for name in demo}
            return
        self._tmp = Path(tempfile.mkdtemp(prefix="leadscore-notebook-"))
        self._use(
            LEADSCORE_TRACKING_URI=f"sqlite:///{self._tmp}/mlruns/mlflow.db",
            LEADSCORE_ARTIFACT_ROOT=str(self._tmp / "mlruns" / "artifacts"),
            LEADSCORE_MODELS_DIR=str(self._tmp / "models"),
            LEADSCORE_DATABASE_URL=f"sqlite:///{self._tmp}/leadscore.db",
        )
        (self._tmp / "mlruns").mkdir()
        self.data = {name: make_demo_data(self._tmp / name, **kwargs) for name, kwargs in demo.items()}

    def path(self, name: str) -> Path:
        """A file of the workspace (the demo's temporary folder, else the current one)."""
        return (self._tmp or Path.cwd()) / name

    def _use(self, **env: str) -> None:
        for key, value in env.items():
            self._saved.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        get_settings.cache_clear()

    def close(self) -> str:
        """Remove the demo's temporary folder and restore the settings; says what was done."""
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
        if self._tmp is None:
            return "runs are in the project's MLflow store; nothing temporary to remove"
        shutil.rmtree(self._tmp, ignore_errors=True)
        return f"removed {self._tmp}"


def workspace(data: Given, spec: str = "synthetic", /, **demo: dict[str, Any]) -> Workspace:
    """A notebook's data and where its runs go: ``data`` (a folder or export, or one per name) or,
    when None, demo data generated per name in ``demo`` (e.g. ``train={"leads": 3000, "seed": 1}``)."""
    return Workspace(data, spec, demo or {"data": {}})


def read_leads(data: str | Path, spec: str | None = None) -> pd.DataFrame:
    """The leads of a file or folder; with ``spec``, a folder of a CRM's own tables is read through
    it (declared engagement from its activity log), as ``leadscore train`` reads it."""
    if spec is None:
        return read_table(resolve_leads_path(data))
    return read_folder_leads(data, load_spec(spec))


def validate(data: str | Path, spec: str = "synthetic") -> pd.DataFrame:
    """What validation finds in the data, one row per problem (an empty frame: nothing found)."""
    report = validate_export(data, load_spec(spec))
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


class Figure:
    """A matplotlib figure that shows as an image in any notebook, whatever the backend (``figure``
    is the matplotlib object, to save or change)."""

    def __init__(self, figure: Any) -> None:
        self.figure = figure

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()


def shap_figures(bundle: ModelBundle, leads: pd.DataFrame) -> tuple[Figure, Figure]:
    """The global SHAP beeswarm and bar figures for these leads (shown as images)."""
    X = bundle.encode(leads)
    contrib, _ = bundle.field_contributions(X)
    beeswarm, bar = plots.shap_plots(contrib, bundle.field_values(X), bundle.fields)
    return Figure(beeswarm), Figure(bar)


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
