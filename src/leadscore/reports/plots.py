"""Figures for runs and reports: reliability, gains, SHAP summary (beeswarm) and bar plots."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from leadscore.modeling.evaluate import gains_curve, reliability_table  # noqa: E402

_META = {"Software": None}  # no version stamps: the same run gives the same bytes


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    suffix = path.suffix.lower()
    metadata = {"Date": None, **_META} if suffix == ".svg" else _META
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata=metadata)
    plt.close(fig)
    return path


def reliability_plot(y: np.ndarray, p: np.ndarray, title: str = "Reliability (test leads)") -> Figure:
    rows = reliability_table(y, p)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot([0, 1], [0, 1], ls="--", color="#999", lw=1, label="perfect calibration")
    xs = [r["predicted"] for r in rows]
    ys = [r["observed"] for r in rows]
    sizes = [20 + 180 * r["count"] / max(1, max(r2["count"] for r2 in rows)) for r in rows]
    ax.plot(xs, ys, color="#1f6feb", lw=1.5)
    ax.scatter(xs, ys, s=sizes, color="#1f6feb", zorder=3, label="model (size = leads)")
    top = max([*xs, *ys, 0.05]) * 1.1
    ax.set(
        xlim=(0, min(1, top)),
        ylim=(0, min(1, top)),
        xlabel="predicted P(SQL)",
        ylabel="observed SQL rate",
        title=title,
    )
    ax.legend(loc="upper left", frameon=False)
    return fig


def gains_plot(
    y: np.ndarray, curves: dict[str, np.ndarray], title: str = "Cumulative gains (test leads)"
) -> Figure:
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot([0, 1], [0, 1], ls="--", color="#999", lw=1, label="random")
    for name, score in curves.items():
        xs, ys = gains_curve(y, score)
        ax.plot(xs, ys, lw=1.8, label=name)
    ax.set(
        xlabel="share of leads worked, best first",
        ylabel="share of SQLs found",
        title=title,
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="lower right", frameon=False)
    return fig


def shap_plots(
    contrib: np.ndarray, values: np.ndarray, names: list[str], max_display: int = 15
) -> tuple[Figure, Figure]:
    """SHAP beeswarm and mean-|SHAP| bar plots from exact per-field contributions."""
    with warnings.catch_warnings():
        # shap builds its colour map at import with a matplotlib method matplotlib plans to deprecate.
        warnings.filterwarnings(
            "ignore", message="The set_(bad|over|under) function", category=PendingDeprecationWarning
        )
        import shap

    explanation = shap.Explanation(values=contrib, data=values, feature_names=names)
    # Each plot on axes of its own figure: left to itself, shap draws on the current figure, and the
    # bar plot landed on the beeswarm's axes (both files showed the two plots on top of each other).
    beeswarm, ax = plt.subplots(figsize=(8, 6))
    shap.plots.beeswarm(explanation, max_display=max_display, show=False, ax=ax, plot_size=None)
    ax.set_title("What drives P(SQL) (SHAP, log-odds)")
    bar, ax = plt.subplots(figsize=(8, 6))
    shap.plots.bar(explanation, max_display=max_display, show=False, ax=ax)
    ax.set_title("Mean |SHAP| per field")
    return beeswarm, bar
