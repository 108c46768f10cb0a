"""The model card's facts, computed at training time and kept in the bundle (``meta.card``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leadscore.modeling import leakage
from leadscore.modeling.dataset import TrainingData
from leadscore.modeling.evaluate import Evaluation, gains_curve, reliability_table
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.meta import CardFacts


def field_shares(bundle: ModelBundle, X: np.ndarray, max_rows: int = 3000) -> dict[str, float]:
    """Share of the model's mean absolute attribution that each field carries."""
    contrib, _ = bundle.field_contributions(X[:max_rows])  # exact TreeSHAP on a sample
    mean_abs = np.abs(contrib).mean(axis=0)
    total = mean_abs.sum() or 1.0
    return {name: float(v / total) for name, v in zip(bundle.fields, mean_abs, strict=True)}


def card_facts(
    bundle: ModelBundle,
    data: TrainingData,
    split_kind: str,
    crossfit: bool,
    findings: list[leakage.LeakageFinding],
    test: Evaluation,
) -> CardFacts:
    """What the model card shows, kept in the bundle so a card can be written from any exported model."""
    xs, model_gain = gains_curve(test.y, test.p, points=20)
    gains = {"share_contacted": xs.tolist(), "model": model_gain.tolist()}
    if test.points is not None:
        gains["points_model"] = gains_curve(test.y, test.points, points=20)[1].tolist()
    report = data.report.to_dict()
    return CardFacts(
        data={
            "source": Path(report["source"]).name,
            "rows": report["rows"],
            "columns": report["columns"],
            "positives": report.get("positives"),
            "negatives": report.get("negatives"),
            "duplicates_left_out": data.dropped,
            "label_windows": data.windows,
            "problems": report.get("problems", [])[:30],
            "split": split_kind,
            "fit_method": "crossfit" if crossfit else "holdout",
            "test_sql_rate": float(np.mean(test.y)) if len(test.y) else None,
        },
        reliability=reliability_table(test.y, test.p),
        gains=gains,
        importance=field_shares(bundle, test.X),
        leakage=leakage.report(findings)[:20],
        trees=bundle.booster.num_trees(),
        notes=list(data.notes),
    )
