"""The run's figures: each SHAP plot on a figure of its own."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle

from leadscore.reports import plots


def test_the_beeswarm_and_the_bar_plot_are_two_figures() -> None:
    rng = np.random.default_rng(3)
    names = [f"field_{i}" for i in range(6)]
    contrib = rng.normal(size=(300, 6)) * np.arange(1, 7)
    beeswarm, bar = plots.shap_plots(contrib, rng.normal(size=(300, 6)), names, max_display=4)
    assert beeswarm is not bar  # shap draws on the current figure unless given axes of its own
    swarm_axes, bar_axes = beeswarm.axes[0], bar.axes[0]
    assert len(bar.axes) == 1 and bar_axes.get_title() == "Mean |SHAP| per field"
    bars = [p for p in bar_axes.patches if isinstance(p, Rectangle)]
    assert len(bars) == 4 and not [c for c in bar_axes.collections if isinstance(c, PathCollection)]
    assert swarm_axes.get_title() == "What drives P(SQL) (SHAP, log-odds)"
    assert not swarm_axes.patches and [c for c in swarm_axes.collections if isinstance(c, PathCollection)]
    for fig in (beeswarm, bar):
        assert tuple(fig.get_size_inches()) == (8, 6)
        plt.close(fig)
