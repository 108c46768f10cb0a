"""Exact TreeSHAP of small trees as table lookups: the reasons of a batch without a walk per lead.

A tree's (path-dependent) TreeSHAP values depend on a lead only through the side it takes at each
of the tree's splits. For each feature a tree splits on, a lead's value falls in one of a few
*cells* (between the tree's thresholds, missing, zero, in or out of a category set), and two leads
in the same cell of every feature the tree uses get the same values from that tree. So for every
combination of cells of a tree (a tree splitting on three features with 3, 3 and 2 cells has 18)
the values are computed once, by LightGBM itself on a row that falls in those cells, summed per
CRM field, and stored; scoring a batch is then a few array lookups per block of rows, about a sixth
of LightGBM's per-lead walk for the small trees the capacity search prefers (depth 3 to 4). One
lead (or a few) has its cells found in plain Python and the same lookups made on its row: a third
of LightGBM's walk, and the block's values to the bit (``contributions_one``).

Exactness does not rest on this module's reading of LightGBM's split rules alone: the tables are
checked at build against LightGBM on probe rows made of every threshold, the values on either
side of it, zero, missing and each category, and a model whose check fails, or whose trees have
too many combinations (``MAX_CELLS`` per tree), is explained by LightGBM as before (``build``
returns None). The values are LightGBM's, summed in another order: equal to ~1e-15.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MAX_CELLS = 1024  # combinations of cells of one tree; a tree with more leaves the model to LightGBM
MAX_TOTAL_CELLS = 400_000  # table rows over the whole model (x fields per tree: a few MB at most)
# LightGBM reads |x| <= 1e-35f as zero (an absent feature of a sparse row) before any split.
ZERO = float(np.float32(1e-35))
_INT_LIMIT = 2.0**31  # a category code beyond a C int is no category (LightGBM casts to int)
_TOLERANCE = 1e-9
BLOCK_ROWS = 256  # rows looked up at once (fewer for a model whose block would pass the budget)
WORKSPACE_BYTES = 16 << 20  # a thread's buffers for one block
_DUMPED_INF = 1e300  # LightGBM's dump writes an infinite threshold as this


class _NotTabular(Exception):
    """The model's trees cannot be tabulated here (LightGBM explains them)."""


@dataclass
class _Split:
    feature: int
    categorical: bool
    threshold: float
    categories: frozenset[int]
    missing: str  # LightGBM's missing type: "None", "Zero" or "NaN"
    default_left: bool

    def lefts(self, x: np.ndarray) -> np.ndarray:
        """Whether each value goes left: LightGBM's decision (tree.h ``NumericalDecision`` /
        ``CategoricalDecision``), for a feature's cells at once."""
        if self.categorical:
            code = np.trunc(x)
            with np.errstate(invalid="ignore"):
                valid = ~np.isnan(x) & (np.abs(x) < _INT_LIMIT) & (code >= 0)
            return valid & np.isin(code, np.fromiter(self.categories, float, len(self.categories)))
        missing = np.isnan(x)
        v = x if self.missing == "NaN" else np.where(missing, 0.0, x)
        if self.missing == "Zero":
            special = np.abs(v) <= ZERO
        elif self.missing == "NaN":
            special = missing
        else:
            special = np.zeros(len(v), dtype=bool)
        return np.where(special, self.default_left, v <= self.threshold)


@dataclass
class _Bins:
    """One feature's cells over the whole model: every threshold (or category) any tree uses."""

    categorical: bool
    edges: np.ndarray  # sorted thresholds, or sorted categories
    zero: bool  # a split treats zero as missing: zero is a cell of its own
    representatives: np.ndarray  # one value per cell, in the cell

    @property
    def size(self) -> int:
        return len(self.representatives)

    def of(self, x: np.ndarray) -> np.ndarray:
        """Each value's cell."""
        x = np.where(np.abs(x) <= ZERO, 0.0, x)
        n = len(self.edges)
        if self.categorical:
            finite = np.isfinite(x) & (np.abs(x) < _INT_LIMIT)
            code = np.trunc(np.where(finite, x, -1.0))
            at = np.minimum(np.searchsorted(self.edges, code), max(n - 1, 0))
            member = finite & (code >= 0) & (self.edges[at] == code) if n else np.zeros(len(x), bool)
            cell = np.where(member, at, n)  # n: no category of any split (or negative)
            cell[np.isnan(x)] = n + 1
            return cell
        cell = np.searchsorted(self.edges, x, side="left")  # (t[i-1], t[i]] -> i; NaN sorts last
        cell[np.isnan(x)] = n + 1
        if self.zero:
            cell[x == 0.0] = n + 2
        return cell


def _cell_one(x: float, categorical: bool, edges: list[float], zero: bool) -> int:
    """``_Bins.of`` for one value in plain Python (one lead: numpy's per-call cost is most of the
    time); the same cell for every value (``build`` checks it on the probe rows)."""
    n = len(edges)
    if abs(x) <= ZERO:  # LightGBM's zero band (NaN is not in it)
        x = 0.0
    if x != x:  # missing
        return n + 1
    if categorical:
        if not (math.isfinite(x) and abs(x) < _INT_LIMIT):
            return n
        code = float(math.trunc(x))
        at = min(bisect.bisect_left(edges, code), max(n - 1, 0))
        return at if n and code >= 0 and edges[at] == code else n
    if zero and x == 0.0:
        return n + 2
    return bisect.bisect_left(edges, x)  # searchsorted's side="left": (t[i-1], t[i]] -> i


def _bins(splits: list[_Split]) -> _Bins:
    if len({s.categorical for s in splits}) > 1:
        raise _NotTabular("a feature split both as a category and as a number")
    if splits[0].categorical:
        cats = np.array(sorted(set().union(*(s.categories for s in splits))), dtype=np.float64)
        return _Bins(True, cats, False, np.concatenate([cats, [-1.0, np.nan]]))
    edges = np.array(sorted({s.threshold for s in splits}), dtype=np.float64)
    # Values in LightGBM's zero band are read as 0.0 before any split (``_Bins.of`` does the same),
    # so a threshold at the band's edge (zero-as-missing puts them there) needs nothing special.
    zero = any(s.missing == "Zero" for s in splits)
    inside = [_inside(lo, hi, zero) for lo, hi in zip([-np.inf, *edges], [*edges, np.inf], strict=True)]
    inside += [np.nan, 0.0] if zero else [np.nan]  # missing; zero when it is a missing value too
    return _Bins(False, edges, zero, np.array(inside, dtype=np.float64))


def _inside(lo: float, hi: float, zero: bool) -> float:
    """A value in (lo, hi] that LightGBM does not read as zero (when one exists)."""
    candidates = [hi, (lo + hi) / 2, np.nextafter(lo, np.inf), hi - 1.0, lo + abs(lo) + 1.0, -1e300, 1e300]
    for v in candidates:
        if np.isfinite(v) and lo < v <= hi and abs(v) > ZERO:
            return float(v)
    if zero:  # only zeros live here, and they have a cell of their own: never looked up
        return 0.0
    return 0.0 if lo < 0.0 <= hi else float(hi)


def _splits(node: dict[str, Any]) -> list[_Split]:
    if "split_feature" not in node:
        return []
    categorical = node["decision_type"] == "=="
    threshold = node["threshold"]
    if not categorical and abs(float(threshold)) >= _DUMPED_INF:
        threshold = math.copysign(math.inf, float(threshold))  # the dump writes an infinite one as 1e300
    split = _Split(
        feature=int(node["split_feature"]),
        categorical=categorical,
        threshold=float("nan") if categorical else float(threshold),
        categories=frozenset(int(c) for c in str(threshold).split("||")) if categorical else frozenset(),
        missing=str(node.get("missing_type", "None")),
        default_left=bool(node.get("default_left", False)),
    )
    return [split, *_splits(node["left_child"]), *_splits(node["right_child"])]


@dataclass
class _TreeTable:
    """One tree: for each feature it splits on, each value's cell -> the tree's own cell of that
    feature; the strides that make those one index; and the tree's values per field there."""

    features: list[int]  # the features it splits on, in order
    lookups: list[np.ndarray]
    strides: list[int]
    values: np.ndarray  # (combinations, fields used)
    fields: np.ndarray  # the fields used


def _tree_table(
    booster: Any, t: int, splits: list[_Split], bins: dict[int, _Bins], width: int, group: np.ndarray
) -> _TreeTable:
    feats = sorted({s.feature for s in splits})
    lookups: list[np.ndarray] = []
    examples: list[list[float]] = []  # one value per cell of the tree, for each feature
    for f in feats:
        b = bins[f]
        # each of the model's cells of f -> the tree's own cell: the cells where every split of the
        # tree on f takes the same side are one, numbered in the order they first appear
        sides = np.stack([s.lefts(b.representatives) for s in splits if s.feature == f])
        first, ids = _first_seen(sides)
        row = np.zeros(width, dtype=np.int64)
        row[: b.size] = ids
        lookups.append(row)
        examples.append(b.representatives[first].tolist())
    radix = [len(r) for r in examples]
    cells = math.prod(radix)
    if cells > MAX_CELLS:
        raise _NotTabular(f"tree {t} has {cells} combinations of cells")
    # mixed radix over the tree's features, the last one fastest (itertools.product's order)
    strides = [math.prod(radix[i + 1 :]) for i in range(len(radix))]
    rows = np.full((cells, booster.num_feature()), np.nan)
    rows[:, feats] = np.array(list(itertools.product(*examples)), dtype=np.float64).reshape(cells, len(feats))
    contrib = np.asarray(
        booster.predict(rows, pred_contrib=True, start_iteration=t, num_iteration=1, num_threads=1)
    ).reshape(cells, -1)
    per_field = contrib @ group  # (combinations, fields): this tree's part of each field
    used = np.flatnonzero(np.any(per_field != 0.0, axis=0))
    return _TreeTable(feats, lookups, strides, per_field[:, used], used)


def _first_seen(sides: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns of ``sides`` (a tree's splits on a feature x the model's cells of it),
    numbered in the order they first appear: where each first appears, and each cell's number.
    Up to 62 splits, a column's sides are one integer's bits: a 1-D ``np.unique``, far cheaper
    than comparing columns."""
    if len(sides) > 62:
        _, first, inverse = np.unique(sides, axis=1, return_index=True, return_inverse=True)
    else:
        keys = (sides.astype(np.int64) << np.arange(len(sides), dtype=np.int64)[:, None]).sum(axis=0)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first)  # np.unique's sorted order -> the order of first appearance
    number = np.empty(len(order), dtype=np.int64)
    number[order] = np.arange(len(order))
    return first[order], number[inverse.ravel()]


class ShapTables:
    """Per-field TreeSHAP contributions of a booster, by table lookup (see the module's text)."""

    def __init__(self, booster: Any, group: np.ndarray) -> None:
        dump = booster.dump_model()
        if dump.get("num_class", 1) != 1 or dump.get("linear", False):
            raise _NotTabular("not a single-output model of constant leaves")
        self.n_features = int(booster.num_feature())
        self.n_fields = group.shape[1]
        trees = [_splits(t["tree_structure"]) for t in dump["tree_info"]]
        by_feature: dict[int, list[_Split]] = {}
        for splits in trees:
            for s in splits:
                by_feature.setdefault(s.feature, []).append(s)
        self.features = np.array(sorted(by_feature), dtype=np.intp)
        position = {int(f): j for j, f in enumerate(self.features)}
        self.bins = [_bins(by_feature[int(f)]) for f in self.features]
        width = max((b.size for b in self.bins), default=1)
        bins = {int(f): b for f, b in zip(self.features, self.bins, strict=True)}
        tables: list[_TreeTable] = []
        total = 0
        for t, splits in enumerate(trees):
            if splits:  # a lone leaf has only the base value
                tables.append(_tree_table(booster, t, splits, bins, width, group))
                total += len(tables[-1].values)
                if total > MAX_TOTAL_CELLS:
                    raise _NotTabular(f"{total:,} combinations of cells over the model")
        # A grid of (tree, feature it splits on) pairs, one row per tree, padded to the widest tree
        # with pairs that read an always-zero column through an all-zero lookup with stride 0.
        m = max((len(tt.features) for tt in tables), default=1)
        pad = len(self.features)  # the always-zero column of the cells
        grid_feature = np.full((len(tables), m), pad, dtype=np.intp)
        grid_stride = np.zeros((len(tables), m), dtype=np.int32)
        lookup = np.zeros((len(tables), m, width), dtype=np.int32)
        for i, tt in enumerate(tables):
            used = len(tt.features)
            grid_feature[i, :used] = [position[f] for f in tt.features]
            grid_stride[i, :used] = tt.strides
            lookup[i, :used] = tt.lookups
        self._grid_feature = grid_feature.ravel()
        self._grid_stride = grid_stride
        self._lookup_flat = lookup.ravel()
        self._grid_base = (np.arange(len(self._grid_feature), dtype=np.int32) * width)[None, :]
        self._local = threading.local()
        self._offsets = np.cumsum([0, *(len(tt.values) for tt in tables)])[:-1].astype(np.int32)
        k = max((len(tt.fields) for tt in tables), default=1) or 1
        self._table = np.zeros((total, k))
        self._field_index = np.full((len(tables), k), self.n_fields, dtype=np.int32)  # n_fields: padding
        for i, tt in enumerate(tables):
            start = int(self._offsets[i])
            self._table[start : start + len(tt.values), : len(tt.fields)] = tt.values
            self._field_index[i, : len(tt.fields)] = tt.fields
        probe = np.full((1, self.n_features), np.nan)
        self.base = float(np.asarray(booster.predict(probe, pred_contrib=True))[0, -1])
        self.trees = len(tables)
        self.cells = total
        # each used feature's column, kind, edges and zero cell as plain Python (contributions_one)
        self._bins_one = [
            (int(f), b.categorical, b.edges.tolist(), b.zero)
            for f, b in zip(self.features, self.bins, strict=True)
        ]

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, fields) TreeSHAP contributions in log-odds, summed per field (the base not included)."""
        n = X.shape[0]
        out = np.zeros((n, self.n_fields))
        if self.trees == 0:
            return out
        work = self._workspace()
        rows = len(work.cell)
        for start in range(0, n, rows):
            out[start : start + rows] = self._block(X[start : start + rows], work)
        return out

    def contributions_one(self, x: np.ndarray) -> np.ndarray:
        """(fields,) one row's contributions: the row's cells found in plain Python, then the
        block's lookups on one row (the same values as ``contributions`` gives it, to the bit)."""
        if self.trees == 0:
            return np.zeros(self.n_fields)
        row = x.tolist()
        cells = np.array([*(_cell_one(row[f], c, e, z) for f, c, e, z in self._bins_one), 0], dtype=np.int32)
        local = self._lookup_flat[cells[self._grid_feature] + self._grid_base[0]]
        cell = (local.reshape(self.trees, -1) * self._grid_stride).sum(axis=1) + self._offsets
        summed = np.bincount(
            self._field_index.ravel(), weights=self._table[cell].ravel(), minlength=self.n_fields + 1
        )
        return summed[: self.n_fields]

    def _workspace(self) -> _Workspace:
        """This thread's buffers: a block's temporaries (several MB) are made once, not per call
        (in fresh memory each time they took as long as the lookups themselves)."""
        work: _Workspace | None = getattr(self._local, "work", None)
        if work is None:
            # int32 pairs twice and cells per tree; float64 values and int32 targets per table column
            per_row = 4 * (2 * len(self._grid_feature) + self.trees) + 12 * self._table.shape[1] * self.trees
            rows = int(np.clip(WORKSPACE_BYTES // max(per_row, 1), 16, BLOCK_ROWS))
            work = self._local.work = _Workspace(self, rows)
        return work

    def _block(self, X: np.ndarray, work: _Workspace) -> np.ndarray:
        n = X.shape[0]
        cells, pairs, local, cell, vals = (
            work.cells[:n],
            work.pairs[:n],
            work.local[:n],
            work.cell[:n],
            work.vals[:n],
        )
        by_tree = local.reshape(n, self.trees, -1)  # a view: the buffers are contiguous
        for j, (f, b) in enumerate(zip(self.features, self.bins, strict=True)):
            cells[:, j] = b.of(np.asarray(X[:, f], dtype=np.float64))
        np.take(cells, self._grid_feature, axis=1, out=pairs)  # (n, trees x widest): each pair's cell
        np.add(pairs, self._grid_base, out=pairs)  # ... as a row of the flat lookup
        np.take(self._lookup_flat, pairs, out=local)  # the tree's own cell of that feature
        np.multiply(by_tree, self._grid_stride, out=by_tree)
        np.sum(by_tree, axis=2, out=cell)
        np.add(cell, self._offsets, out=cell)  # (n, trees): the row of the table
        np.take(self._table, cell, axis=0, out=vals)  # (n, trees, k)
        width = self.n_fields + 1  # the last column takes the padding
        summed = np.bincount(work.target[:n].ravel(), weights=vals.ravel(), minlength=n * width)
        return summed.reshape(n, width)[:, : self.n_fields]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_local"]  # buffers stay with their thread (a scorer process makes its own)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()


class _Workspace:
    """Buffers for one block of rows of one ``ShapTables``, used by one thread."""

    def __init__(self, tables: ShapTables, rows: int) -> None:
        pairs = len(tables._grid_feature)
        self.cells = np.zeros((rows, len(tables.features) + 1), dtype=np.int32)  # + the padding's zeros
        self.pairs = np.empty((rows, pairs), dtype=np.int32)
        self.local = np.empty((rows, pairs), dtype=np.int32)
        self.cell = np.empty((rows, tables.trees), dtype=np.int32)
        self.vals = np.empty((rows, tables.trees, tables._table.shape[1]))
        width = tables.n_fields + 1
        self.target = (
            tables._field_index[None, :, :] + (np.arange(rows, dtype=np.int32) * width)[:, None, None]
        )


def _probes(tables: ShapTables, seed: int = 0) -> np.ndarray:
    """Rows that put every feature at every threshold, either side of it, zero, missing and each
    category, mixed at random (seeded) so that trees see combinations too."""
    rng = np.random.default_rng(seed)
    columns: list[np.ndarray] = []
    for b in tables.bins:
        edges = b.edges
        values = [b.representatives, edges, [0.0, np.nan, -ZERO / 2, ZERO * 2, -1.0, 1e300, -1e300]]
        if not b.categorical:
            values += [np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)]
        else:
            values += [edges + 0.5, [2.0**40, -0.5]]
        columns.append(np.concatenate([np.asarray(v, dtype=np.float64) for v in values]))
    rows = max((len(c) for c in columns), default=1)
    X = np.full((max(rows, 64) * 2, tables.n_features), np.nan)
    for f, c in zip(tables.features, columns, strict=True):
        X[:, f] = np.concatenate([np.resize(c, rows), rng.choice(c, size=len(X) - rows)])
    return X


def build(booster: Any, group: np.ndarray) -> ShapTables | None:
    """The tables of a booster, or None when its trees are too big to tabulate or the tables do not
    give LightGBM's own values on the probe rows (LightGBM explains that model)."""
    try:
        tables = ShapTables(booster, group)
    except _NotTabular as exc:
        log.debug("TreeSHAP tables not used: %s", exc)
        return None
    X = _probes(tables)
    want = np.asarray(booster.predict(X, pred_contrib=True, num_threads=1)).reshape(len(X), -1)
    got = tables.contributions(X)
    error = float(np.max(np.abs(got - want @ group), initial=0.0))
    base_error = abs(tables.base - float(want[0, -1]))
    if error > _TOLERANCE or base_error > _TOLERANCE:
        log.warning("TreeSHAP tables disagree with LightGBM by %.3g on probe rows: not used", error)
        return None
    if not np.array_equal(np.array([tables.contributions_one(x) for x in X]).reshape(got.shape), got):
        log.warning("TreeSHAP tables: one row's cells differ from a block's on probe rows: not used")
        return None
    return tables


_BUILT: OrderedDict[str, ShapTables | None] = OrderedDict()
_BUILT_LOCK = threading.Lock()
KEEP_BUILT = 2  # boosters whose tables are remembered (the newest ones)


def build_once(booster: Any, group: np.ndarray, model_text: str) -> ShapTables | None:
    """``build``, remembered for the last few boosters by their model text and field grouping.
    Training looks at one booster through several bundles (drafts while it checks for leaks and
    sets the grade bands, then the final one), each parsing its own copy of the same trees: the
    tables are built once for all of them (each build is a few hundred ``pred_contrib`` calls)."""
    digest = hashlib.sha256(model_text.encode())
    digest.update(np.ascontiguousarray(group).tobytes())
    key = digest.hexdigest()
    with _BUILT_LOCK:
        if key in _BUILT:
            _BUILT.move_to_end(key)
            return _BUILT[key]
    tables = build(booster, group)
    with _BUILT_LOCK:
        _BUILT[key] = tables
        while len(_BUILT) > KEEP_BUILT:
            _BUILT.popitem(last=False)
    return tables
