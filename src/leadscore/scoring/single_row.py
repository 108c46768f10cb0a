"""One row through LightGBM's fast single-row prediction: the service's one-lead path.

``Booster.predict`` on one row spends most of its time before and after the trees: it checks the
array, parses its parameters and builds a predictor for every call (about 28 us for a 378-tree
booster whose trees take 7). LightGBM's C API has a path made for this: a prepared predictor
(``LGBM_BoosterPredictForMatSingleRowFastInit``) reused for every row. The prepared predictor is
kept per booster and kind (raw score, leaf indexes, contributions), made on first use, freed with
the booster, and used under a lock (it holds one output buffer).
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
from lightgbm import basic

_LIB: Any = basic._LIB  # type: ignore[attr-defined]  # LightGBM's loaded library (its C API)

Kind = Literal["raw", "leaf", "contrib"]
_KINDS: dict[Kind, int] = {
    "raw": 1,
    "leaf": 2,
    "contrib": 3,
}  # C_API_PREDICT_RAW_SCORE, _LEAF_INDEX, _CONTRIB
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64


class SingleRow:
    """A prepared LightGBM predictor for one row of ``width`` float64 features."""

    def __init__(self, booster: lgb.Booster, kind: Kind) -> None:
        self.width = booster.num_feature()
        # the trees Booster.predict walks by default: up to the best iteration when one is set
        best = int(booster.best_iteration or 0)
        iterations = best if best > 0 else booster.current_iteration()
        trees = iterations * booster.num_model_per_iteration()
        size = {"raw": 1, "leaf": trees, "contrib": self.width + 1}[kind]
        self._out = np.empty(size, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._length = ctypes.c_int64()
        self._lock = threading.Lock()
        handle = ctypes.c_void_p()
        basic._safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_KINDS[kind]),
                ctypes.c_int(0),  # from the first iteration
                ctypes.c_int(best if best > 0 else -1),  # how many iterations (-1: all)
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(self.width),
                basic._c_str("num_threads=1"),
                ctypes.byref(handle),
            )
        )
        self._handle = handle
        weakref.finalize(self, _free, handle)

    def __call__(self, row: np.ndarray) -> np.ndarray:
        """The prediction for one row (a new array: the buffer is reused by the next call)."""
        values = np.ascontiguousarray(row, dtype=np.float64).reshape(-1)
        if values.shape[0] != self.width:
            raise ValueError(f"expected {self.width} features, got {values.shape[0]}")
        with self._lock:
            basic._safe_call(
                _LIB.LGBM_BoosterPredictForMatSingleRowFast(
                    self._handle,
                    values.ctypes.data_as(ctypes.c_void_p),
                    ctypes.byref(self._length),
                    self._out_ptr,
                )
            )
            return self._out.copy()


def _free(handle: ctypes.c_void_p) -> None:
    basic._safe_call(_LIB.LGBM_FastConfigFree(handle))


_PREPARED: weakref.WeakKeyDictionary[Any, dict[Kind, SingleRow]] = weakref.WeakKeyDictionary()
_MAKING = threading.Lock()


def single_row(booster: lgb.Booster, kind: Kind) -> SingleRow:
    """The prepared predictor of ``booster`` for ``kind`` (made once; gone with the booster)."""
    held = _PREPARED.get(booster)
    if held is None or kind not in held:
        with _MAKING:
            held = _PREPARED.setdefault(booster, {})
            if kind not in held:
                held[kind] = SingleRow(booster, kind)
    return held[kind]


_KEYWORDS: dict[Kind, str] = {"raw": "raw_score", "leaf": "pred_leaf", "contrib": "pred_contrib"}


def predict(booster: Any, X: np.ndarray, kind: Kind, num_threads: int) -> np.ndarray:
    """``booster.predict(X)`` for ``kind`` as a numpy array; one row of a LightGBM booster (the
    service's one lead) through its prepared single-row predictor, the same values."""
    if len(X) == 1 and isinstance(booster, lgb.Booster):
        return predict_one(booster, X[0], kind)
    return np.asarray(booster.predict(X, num_threads=num_threads, **{_KEYWORDS[kind]: True}))


def predict_one(booster: lgb.Booster, row: np.ndarray, kind: Kind) -> np.ndarray:
    """One row's prediction, shaped as ``Booster.predict`` shapes it for a one-row matrix: (1,) raw
    score, (1, trees) leaf indexes, (1, features + 1) contributions."""
    out = single_row(booster, kind)(row)
    if kind == "raw":
        return out
    return (out.astype(np.int32) if kind == "leaf" else out).reshape(1, -1)
