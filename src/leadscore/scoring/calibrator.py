"""The calibrator: the booster's raw score (log-odds) to a calibrated probability."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Calibrator:
    """Maps the booster's raw score to a calibrated probability (isotonic or sigmoid)."""

    kind: str
    x: list[float] = field(default_factory=list)  # isotonic: knots on the raw probability
    y: list[float] = field(default_factory=list)
    a: float = 1.0  # sigmoid: p = 1 / (1 + exp(-(a * raw + b)))
    b: float = 0.0
    # isotonic: a share of the booster's own sigmoid mixed in, so the map is strictly increasing
    # everywhere (past the first and last knots too): scores tie only where the booster ties.
    blend: float = 0.0

    def __post_init__(self) -> None:
        self._x = np.asarray(self.x, dtype=np.float64)
        self._y = np.asarray(self.y, dtype=np.float64)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.kind == "sigmoid":
            return 1.0 / (1.0 + np.exp(-(self.a * raw + self.b)))
        if self.kind == "isotonic":
            prob = 1.0 / (1.0 + np.exp(-raw))
            fitted = np.interp(prob, self._x, self._y)
            return fitted if self.blend <= 0 else (1.0 - self.blend) * fitted + self.blend * prob
        if self.kind == "identity":
            return 1.0 / (1.0 + np.exp(-raw))
        raise ValueError(f"unknown calibrator kind '{self.kind}'")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "x": self.x, "y": self.y, "a": self.a, "b": self.b}
        if self.blend:
            out["blend"] = self.blend
        return out
