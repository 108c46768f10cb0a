"""The files a training run logs beside its model: reliability, gains and SHAP plots, and the model card."""

from __future__ import annotations

import tempfile
from pathlib import Path

from leadscore.modeling.train import TrainResult
from leadscore.reports import plots
from leadscore.reports.model_card import model_card

SHAP_SAMPLE = 2000


def training_artifacts(result: TrainResult) -> dict[str, str | bytes]:
    """File name -> content for a training run: PNG plots and the self-contained model card."""
    bundle = result.bundle
    curves = {"model": result.test_p}
    if result.test_points is not None:
        curves["points model"] = result.test_points
    X = result.test_X[: min(SHAP_SAMPLE, len(result.test_X))]
    contrib, _ = bundle.field_contributions(X)
    beeswarm, bar = plots.shap_plots(contrib, bundle.field_values(X), bundle.fields)
    figures = {
        "reliability.png": plots.reliability_plot(result.test_y, result.test_p),
        "gains.png": plots.gains_plot(result.test_y, curves),
        "shap_summary.png": beeswarm,
        "shap_bar.png": bar,
    }
    files: dict[str, str | bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, fig in figures.items():
            files[name] = plots.save(fig, Path(tmp) / name).read_bytes()
    files["model_card.html"] = model_card(bundle)
    return files
