"""One trained model scoring a matrix of leads: predict, calibrate, cut off, grade, explain.

A ``Predictor`` holds one booster with its encoder, calibrator, MQL threshold, grade bands and
reason phrasing. It knows nothing of files, segments or the API's answer: ``bundle.py`` loads one,
``router.py`` picks one per lead, ``answer.py`` turns its ``Scored`` into answers.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from leadscore.features import FeatureEncoder
from leadscore.scoring.calibrator import Calibrator
from leadscore.scoring.grades import TreeTables, bands
from leadscore.scoring.meta import BundleMeta
from leadscore.scoring.reasons import Phraser, Reason, reason_weights, select_reasons
from leadscore.scoring.single_row import predict
from leadscore.scoring.time_head import TimeHead
from leadscore.scoring.treeshap import ShapTables
from leadscore.scoring.treeshap import build_once as build_shap_tables
from leadscore.spec import DatasetSpec

# From this many rows the TreeSHAP tables are read by blocks; fewer rows are read one at a time,
# their cells found in plain Python (30 us a row against LightGBM's 92 us and a block's fixed
# ~0.2 ms: docs/performance.md). Both give the same values.
TABLE_ROWS = 8
_NOT_BUILT = object()  # the TreeSHAP tables before their first use


@dataclass
class Scored:
    """Scores for a batch of leads (arrays aligned with the input rows)."""

    p_sql: np.ndarray
    mql: np.ndarray
    grade: np.ndarray
    fit_band: np.ndarray
    engagement_band: np.ndarray
    fit_part: np.ndarray
    engagement_part: np.ndarray
    raw: np.ndarray
    contributions: np.ndarray | None = None  # (n, fields) in log-odds, grouped by CRM field
    reasons: list[list[Reason]] | None = None
    weights: np.ndarray | None = None  # (n, fields): each field's push in percentage points of P(SQL)
    segment: np.ndarray | None = None  # routing bundles: each lead's segment (None: missing)
    segment_model: np.ndarray | None = None  # and the sub-model that scored it ("global" or the segment)
    inputs: np.ndarray | None = None  # the rows as the bundle's encoder made them (kept by ``answers``)


ROW_ARRAYS = ("p_sql", "mql", "grade", "fit_band", "engagement_band", "fit_part", "engagement_part", "raw")


def empty_scored(n: int, fields: int, explain: bool) -> Scored:
    """A ``Scored`` of ``n`` rows to fill in place (the routed path gathers its segments' rows in it)."""
    obj = object
    out = Scored(
        p_sql=np.empty(n),
        mql=np.empty(n, dtype=bool),
        grade=np.empty(n, dtype=obj),
        fit_band=np.empty(n, dtype=obj),
        engagement_band=np.empty(n, dtype=obj),
        fit_part=np.empty(n),
        engagement_part=np.empty(n),
        raw=np.empty(n),
    )
    if explain:
        out.contributions, out.weights = np.empty((n, fields)), np.empty((n, fields))
    return out


class Predictor:
    """One model: encode, predict, calibrate, cut off, grade, explain."""

    def __init__(self, meta: BundleMeta, booster_text: str) -> None:
        import lightgbm as lgb

        self.meta = meta
        self.encoder = FeatureEncoder.from_dict(meta.encoder)
        self.calibrator = Calibrator(**meta.calibrator)
        self.threshold = float(meta.threshold)
        self.spec = DatasetSpec.model_validate(meta.spec)
        self.booster = lgb.Booster(model_str=booster_text)
        self.booster_text = booster_text
        self.num_threads = int(meta.num_threads)
        self.fit_edges = np.asarray(meta.grade_edges["fit"], dtype=np.float64)
        self.engagement_edges = np.asarray(meta.grade_edges["engagement"], dtype=np.float64)
        self.fields = fields = self.encoder.field_names
        index = {name: i for i, name in enumerate(fields)}
        # feature -> field matrix: contributions of one field's features add up to one reason.
        group = np.zeros((len(self.encoder.feature_names) + 1, len(fields)))
        for j, src in enumerate(self.encoder.feature_fields):
            group[j, index[src]] = 1.0
        self._group = group
        self._shap: Any = _NOT_BUILT  # ShapTables, or None: LightGBM explains this model
        self.field_groups = np.array([self.encoder.field(f).group for f in fields], dtype=object)
        self._fit_mask = self.field_groups == "fit"
        self._group_names = [str(g) for g in self.field_groups]
        source = self.spec.account_of  # an account model phrases its account's definitions
        definitions = (
            source.accounts.engagement if source is not None and source.accounts else self.spec.definitions
        )
        outcome = "an opportunity" if source is not None else "SQL"
        labels = (source or self.spec).event_labels
        self.phraser = Phraser(self.encoder, meta.reasons, meta.labels, definitions, outcome, labels)
        self.labels = self.phraser.labels
        # Group-pure trees (each uses fit or engagement fields only) let the grade be read off the
        # leaves; otherwise it comes from exact TreeSHAP contributions summed per group.
        self.group_pure = bool(meta.group_pure)
        self.time_head: TimeHead | None = None  # set by a bundle that has one (the global model's)
        self._trees = (
            TreeTables(self.booster, self.encoder.feature_fields, self.field_groups, fields)
            if self.group_pure
            else None  # mixed trees never read their leaves: skip parsing the whole model at load
        )

    def with_cutoff(self, threshold: float, meta: BundleMeta) -> Predictor:
        """This model held to another cutoff (a segment scored by the global booster): the booster,
        encoder and TreeSHAP tables are shared, not copied."""
        same = copy.copy(self)
        same.threshold, same.meta = float(threshold), meta
        return same

    # the model

    def encode(self, frame: Any) -> np.ndarray:
        return self.encoder.transform(frame)

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        return predict(self.booster, X, "raw", self.num_threads)

    def probability(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(self.calibrator.apply(raw), 0.0, 1.0)

    @property
    def shap_tables(self) -> ShapTables | None:
        """The booster's TreeSHAP as tables (built on first use; None: LightGBM explains this model)."""
        if self._shap is _NOT_BUILT:
            self.prepare_reasons()
        tables: ShapTables | None = self._shap
        return tables

    def prepare_reasons(self, share_with: Predictor | None = None) -> None:
        """Build the TreeSHAP tables now (a server does it at load, so that no batch waits for them);
        ``share_with``: a model of the same booster whose tables this one takes."""
        if self._shap is not _NOT_BUILT:
            return
        if share_with is not None and share_with.booster is self.booster:
            self._shap = share_with.shap_tables
        else:
            self._shap = build_shap_tables(self.booster, self._group, self.booster_text)

    def field_contributions(self, X: np.ndarray, num_threads: int | None = None) -> tuple[np.ndarray, float]:
        """Exact TreeSHAP contributions (log-odds) summed per CRM field, and the base value: from
        the tables when the booster has them (a few rows one at a time, more by blocks: the same
        values either way), else from LightGBM."""
        tables = self.shap_tables
        if tables is not None:
            if 0 < len(X) < TABLE_ROWS:
                return np.array([tables.contributions_one(x) for x in X]), tables.base
            return tables.contributions(X), tables.base
        contrib = predict(self.booster, X, "contrib", num_threads or self.num_threads)
        contrib = contrib.reshape(X.shape[0], -1)
        base = float(contrib[0, -1]) if len(contrib) else 0.0
        return contrib @ self._group, base

    def field_values(self, X: np.ndarray) -> np.ndarray:
        """One encoded value per field (the field's first feature), e.g. to colour a SHAP beeswarm."""
        first: dict[str, int] = {}
        for j, src in enumerate(self.encoder.feature_fields):
            first.setdefault(src, j)
        return X[:, np.array([first[f] for f in self.fields], dtype=np.intp)]

    def reason_weights(self, contrib: np.ndarray, raw: float | np.ndarray) -> np.ndarray:
        """Each field's weight in percentage points of P(SQL); they add up to p - p(average lead)."""
        return reason_weights(contrib, raw, self.probability)

    def phrase(self, name: str, value: Any, positive: bool) -> str:
        """A plain-language phrase naming the lead's own value, from the field's template."""
        return self.phraser.phrase(name, value, positive)

    # scoring

    def score_matrix(
        self,
        X: np.ndarray,
        *,
        explain: int = 0,
        records: Sequence[Mapping[str, Any]] | None = None,
        num_threads: int | None = None,
        phrase: bool = True,
    ) -> Scored:
        """Probability, MQL flag and grade for each row; reasons (exact TreeSHAP) when ``explain`` > 0
        (``phrase`` False: their weights only, for ``api_reasons``).

        For group-pure trees (each uses fit fields only or engagement fields only) the fit and
        engagement parts are exact additive pieces of the raw score, read off the leaves; otherwise,
        and whenever reasons are asked for, they are the TreeSHAP contributions summed per group.
        """
        contrib: np.ndarray | None = None
        threads = num_threads or self.num_threads
        if self._trees is not None and explain <= 0:
            leaves = predict(self.booster, X, "leaf", threads)
            raw, fit_part, eng_part = self._trees.parts(leaves)
        else:
            contrib, base = self.field_contributions(X, threads)
            raw = contrib.sum(axis=1) + base
            fit_part = contrib[:, self._fit_mask].sum(axis=1)
            eng_part = contrib[:, ~self._fit_mask].sum(axis=1)
        p = self.probability(raw)
        fit_band, eng_band, grade = bands(fit_part, eng_part, self.fit_edges, self.engagement_edges)
        scored = Scored(
            p_sql=p,
            mql=p >= self.threshold,
            grade=grade,
            fit_band=fit_band,
            engagement_band=eng_band,
            fit_part=fit_part,
            engagement_part=eng_part,
            raw=raw,
        )
        if explain > 0:
            self._explain(scored, X, contrib, explain, records, threads, phrase)
        return scored

    def _explain(
        self,
        scored: Scored,
        X: np.ndarray,
        contrib: np.ndarray | None,
        explain: int,
        records: Sequence[Mapping[str, Any]] | None,
        threads: int,
        phrase: bool,
    ) -> None:
        """Each row's contributions and reason weights, and its phrased reasons when ``phrase``."""
        if records is None:
            raise ValueError("records are needed to phrase reasons")
        if contrib is None:
            contrib, _ = self.field_contributions(X, threads)
        scored.contributions = contrib
        scored.weights = weights = self.reason_weights(contrib, scored.raw)
        if phrase:
            scored.reasons = select_reasons(
                records, weights, explain, self.fields, self._group_names, self.phraser
            )
