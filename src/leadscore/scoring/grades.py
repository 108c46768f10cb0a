"""Grades: a fit band (A-D) and an engagement band (1-4) from the fit and engagement parts of a score."""

from __future__ import annotations

from typing import Any

import numpy as np

FIT_BANDS = ("A", "B", "C", "D")
ENGAGEMENT_BANDS = ("1", "2", "3", "4")


def grade_edges(part: np.ndarray) -> list[float]:
    """Quartile edges, best first: the top quarter of leads by fit (or engagement) is band A (or 1)."""
    return [float(v) for v in np.quantile(part, [0.75, 0.5, 0.25])]


def bands(
    fit_part: np.ndarray, eng_part: np.ndarray, fit_edges: np.ndarray, eng_edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit band, engagement band and the grade (e.g. ``B2``) of each lead."""
    fit_band = np.array(FIT_BANDS)[np.searchsorted(-fit_edges, -fit_part, side="right")]
    eng_band = np.array(ENGAGEMENT_BANDS)[np.searchsorted(-eng_edges, -eng_part, side="right")]
    return fit_band, eng_band, np.char.add(fit_band.astype(str), eng_band.astype(str))


class TreeTables:
    """Leaf values and each tree's group (fit or engagement), read once from a group-pure booster.

    Group-pure trees use fit fields only or engagement fields only, so the fit and engagement parts
    of a score are exact additive pieces read off the leaves, at the cost of one prediction.
    """

    def __init__(
        self, booster: Any, feature_fields: list[str], field_groups: np.ndarray, fields: list[str]
    ) -> None:
        dump = booster.dump_model()
        group_of_field = dict(zip(fields, field_groups, strict=True))
        trees = dump["tree_info"]
        width = max((t["num_leaves"] for t in trees), default=1)
        self.values = np.zeros((len(trees), width))
        expected = np.zeros(len(trees))
        is_fit = np.zeros(len(trees), dtype=bool)
        for t, tree in enumerate(trees):
            root = tree["tree_structure"]
            if "split_feature" in root:
                is_fit[t] = group_of_field[feature_fields[root["split_feature"]]] == "fit"
            leaves = list(_leaves(root))
            total = sum(max(leaf.get("leaf_count", 0), 0) for leaf in leaves) or 1
            for leaf in leaves:
                self.values[t, leaf.get("leaf_index", 0)] = leaf["leaf_value"]
                expected[t] += leaf["leaf_value"] * max(leaf.get("leaf_count", 0), 0) / total
        self._fit_weights = is_fit.astype(np.float64)
        self.fit_expected = float(expected[is_fit].sum())
        self.eng_expected = float(expected[~is_fit].sum())
        self._rows = np.arange(len(trees))

    def parts(self, leaves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw score, fit part and engagement part (each part centred on its expected value)."""
        leaves = np.asarray(leaves).reshape(-1, len(self._rows))  # int32 indexes directly, no copy
        vals = self.values[self._rows, leaves]
        total = vals.sum(axis=1)
        fit = vals @ self._fit_weights  # BLAS, no copy of the fit columns
        return total, fit - self.fit_expected, (total - fit) - self.eng_expected


def _leaves(node: dict[str, Any]) -> Any:
    if "leaf_value" in node:
        yield node
        return
    yield from _leaves(node["left_child"])
    yield from _leaves(node["right_child"])
