"""The model bundle: everything needed to score a lead, loadable without MLflow or training code.

A bundle is a folder (``bundle.json`` + ``booster.txt``) holding the feature encoder, the
LightGBM booster, the calibrator, the MQL threshold and its contract, the grade bands, the reason
phrasing and the dataset spec. Batch scoring, the MLflow pyfunc wrapper, the reports and the
service all score through ``ModelBundle``, and ``answers`` gives the service's whole answer, so they
cannot disagree.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.config import DatasetSpec
from leadscore.errors import UserError
from leadscore.features import FeatureEncoder, to_number
from leadscore.scoring.calibrator import Calibrator
from leadscore.scoring.grades import TreeTables, bands
from leadscore.scoring.meta import BundleMeta, SegmentRouting
from leadscore.scoring.reasons import (
    Phraser,
    Reason,
    api_reasons,
    reason_weights,
    reasons_dict,
    select_reasons,
)
from leadscore.scoring.segments import GLOBAL, SEPARATOR, SegmentReader
from leadscore.scoring.treeshap import ShapTables
from leadscore.scoring.treeshap import build_once as build_shap_tables

BUNDLE_FILE = "bundle.json"
BOOSTER_FILE = "booster.txt"
CHECKSUM_FILE = "checksums.json"  # SHA-256 of the other two, checked before either is parsed


SEGMENT_BOOSTER = "booster_segment_{:03d}.txt"  # a routing bundle's segment boosters
_ALL = slice(None)  # every row (one segment in the batch)
# From this many rows reasons come from the TreeSHAP tables (fewer: LightGBM's walk is quicker
# than the tables' fixed cost of ~0.3 ms; measured in benchmarks/bench_service.py's reason table).
TABLE_ROWS = 8


def write_checksums(folder: Path) -> None:
    """Record the SHA-256 of a bundle's files (after any change to them): bundle.json, the booster
    and, in a routing bundle, each segment's booster."""
    names = [BUNDLE_FILE, BOOSTER_FILE, *sorted(p.name for p in folder.glob("booster_segment_*.txt"))]
    sums = {name: _sha256(folder / name) for name in names}
    (folder / CHECKSUM_FILE).write_text(json.dumps(sums, indent=1, sort_keys=True), encoding="utf-8")


def read_verified(folder: Path, location: str | Path) -> dict[str, bytes]:
    """A bundle's two files, each read once and checked before anything is parsed: against their
    checksums, or for a bundle written before checksums, the booster for wholeness (a truncated
    booster file makes LightGBM abort the whole process, which no ``except`` can catch). What is
    checked is what gets parsed: nothing can change on disk in between."""
    sums_path = folder / CHECKSUM_FILE
    try:
        expected = json.loads(sums_path.read_text(encoding="utf-8")) if sums_path.is_file() else None
        names = [
            BUNDLE_FILE,
            BOOSTER_FILE,
            *(n for n in sorted(expected or {}) if n not in (BUNDLE_FILE, BOOSTER_FILE)),
        ]
        raw = {name: (folder / name).read_bytes() for name in names}
    except OSError as exc:
        raise UserError(
            f"{location}: model bundle is incomplete ({exc.strerror}: {Path(exc.filename or '').name})"
        ) from exc
    except ValueError as exc:
        raise UserError(f"{location}: model bundle is damaged ({CHECKSUM_FILE} is not valid JSON)") from exc
    if expected is None:
        try:
            _check_booster_text(raw[BOOSTER_FILE].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise UserError(f"{location}: model bundle is damaged (the booster file is not text)") from exc
        return raw
    for name in raw:
        if hashlib.sha256(raw[name]).hexdigest() != expected.get(name):
            raise UserError(f"{location}: model bundle is damaged ({name} does not match its checksum)")
    return raw


def _check_booster_text(text: str) -> None:
    """A LightGBM model text is whole when it has as many trees as its header says and its end marker."""
    declared = next((line for line in text.splitlines()[:40] if line.startswith("tree_sizes=")), None)
    if declared is None or "end of trees" not in text:
        raise UserError("model bundle is damaged (the booster file is cut short)")
    if text.count("\nTree=") != len(declared.removeprefix("tree_sizes=").split()):
        raise UserError("model bundle is damaged (the booster file has fewer trees than it declares)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


class ModelBundle:
    """A trained model ready to score: encode, predict, calibrate, cut off, grade, explain."""

    def __init__(
        self,
        meta: BundleMeta | Mapping[str, Any],
        booster_text: str,
        segment_boosters: Mapping[str, str] | None = None,
    ) -> None:
        import lightgbm as lgb

        self.meta = meta if isinstance(meta, BundleMeta) else BundleMeta.model_validate(meta)
        self.encoder = FeatureEncoder.from_dict(self.meta.encoder)
        self.calibrator = Calibrator(**self.meta.calibrator)
        self.threshold = float(self.meta.threshold)
        self.spec = DatasetSpec.model_validate(self.meta.spec)
        self.booster = lgb.Booster(model_str=booster_text)
        self.booster_text = booster_text
        self.num_threads = int(self.meta.num_threads)
        self.fit_edges = np.asarray(self.meta.grade_edges["fit"], dtype=np.float64)
        self.engagement_edges = np.asarray(self.meta.grade_edges["engagement"], dtype=np.float64)
        fields = self.encoder.field_names
        self.fields = fields
        index = {name: i for i, name in enumerate(fields)}
        # feature -> field matrix: contributions of one field's features add up to one reason.
        group = np.zeros((len(self.encoder.feature_names) + 1, len(fields)))
        for j, src in enumerate(self.encoder.feature_fields):
            group[j, index[src]] = 1.0
        self._group = group
        self._shap: ShapTables | None | bool = False  # False: not built yet
        self.field_groups = np.array([self.encoder.field(f).group for f in fields], dtype=object)
        self._fit_mask = self.field_groups == "fit"
        self._group_names = [str(g) for g in self.field_groups]
        self.phraser = Phraser(self.encoder, self.meta.reasons, self.meta.labels, self.spec.declared)
        self.labels = self.phraser.labels
        # Group-pure trees (each uses fit or engagement fields only) let the grade be read off the
        # leaves; otherwise it comes from exact TreeSHAP contributions summed per group.
        self.group_pure = bool(self.meta.group_pure)
        self._trees = (
            TreeTables(self.booster, self.encoder.feature_fields, self.field_groups, fields)
            if self.group_pure
            else None  # mixed trees never read their leaves: skip parsing the whole model at load
        )
        self.segment_boosters = dict(segment_boosters or {})
        self.routes: dict[str, ModelBundle] = {}
        self._route_names: dict[Any, tuple[Any, str]] = {}
        self.reader: SegmentReader | None = None
        if self.meta.segments is not None:
            self._build_routes(self.meta.segments)

    def _build_routes(self, routing: SegmentRouting) -> None:
        """One scorer per known segment: its own booster, or the global one with the segment's cutoff."""
        self.reader = SegmentReader(routing.by, routing.placeholders, routing.aliases)
        # key -> (the segment as people write it, the sub-model answering: "global" or the segment)
        self._route_names = {
            k: (m.name, m.name if m.model == "segment" else GLOBAL) for k, m in routing.models.items()
        }
        for key, seg in routing.models.items():
            if seg.model == "segment":
                if seg.booster not in self.segment_boosters:
                    raise UserError(f"model bundle is incomplete (no {seg.booster} for segment '{seg.name}')")
                sub_meta = self.meta.model_copy(
                    update={
                        "calibrator": seg.calibrator or self.meta.calibrator,
                        "threshold": seg.threshold,
                        "grade_edges": seg.grade_edges or self.meta.grade_edges,
                        "group_pure": bool(seg.group_pure),
                        "cutoff": seg.cutoff or self.meta.cutoff,
                        "segments": None,
                    }
                )
                self.routes[key] = ModelBundle(sub_meta, self.segment_boosters[str(seg.booster)])
            else:
                same = copy.copy(self)  # the global booster, with the segment's own threshold
                same.threshold = float(seg.threshold)
                same.routes, same.reader, same.segment_boosters, same._route_names = {}, None, {}, {}
                if seg.cutoff is not None:
                    same.meta = self.meta.model_copy(
                        update={"threshold": seg.threshold, "cutoff": seg.cutoff}
                    )
                self.routes[key] = same

    @property
    def segmented(self) -> bool:
        return self.reader is not None

    def threshold_for(self, record: Mapping[str, Any]) -> float:
        """The MQL threshold this lead is held to: its segment's in a routing bundle, else the one."""
        if self.reader is None:
            return self.threshold
        scorer = self.routes.get(self.reader.key(record) or "")
        return scorer.threshold if scorer is not None else self.threshold

    def segment_keys(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Each row's segment key (None where missing) for a routing bundle; None for a single model."""
        return self.reader.keys(frame) if self.reader is not None else None

    # identity

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def version(self) -> str:
        return self.meta.version

    @property
    def model_version(self) -> str:
        """The version every answer names: ``name/N`` in the registry, else the content version."""
        return self.meta.model_version

    @property
    def cutoff_version(self) -> str:
        return self.meta.cutoff_version

    @property
    def id_column(self) -> str | None:
        return self.spec.id

    # persistence

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / BOOSTER_FILE).write_text(self.booster_text, encoding="utf-8")
        for name, text in self.segment_boosters.items():
            (folder / name).write_text(text, encoding="utf-8")
        (folder / BUNDLE_FILE).write_text(self.meta.to_json(), encoding="utf-8")
        write_checksums(folder)
        return folder

    @classmethod
    def load(cls, location: str | Path) -> ModelBundle:
        """Load from a bundle folder or an exported MLflow model folder (``models/<dataset>/``).

        MLflow URIs (``models:/...``, ``runs:/...``) are resolved by ``leadscore.load_bundle``.
        """
        text = str(location)
        if "://" in text or text.startswith(("models:/", "runs:/")):
            raise UserError(f"{location}: an MLflow URI; load it with leadscore.load_bundle")
        folder = Path(location)
        for candidate in (folder, folder / "artifacts" / "bundle"):
            if (candidate / BUNDLE_FILE).is_file():
                folder = candidate
                break
        else:
            if not folder.exists():
                raise UserError(f"{location}: model not found")
            raise UserError(f"{location}: not a leadscore model (no {BUNDLE_FILE})")
        try:
            raw = read_verified(folder, location)
        except UserError as exc:
            text = str(exc)
            raise UserError(text if text.startswith(str(location)) else f"{location}: {text}") from None
        try:
            meta = BundleMeta.model_validate_json(raw[BUNDLE_FILE].decode("utf-8"))
            extra = {n: b.decode("utf-8") for n, b in raw.items() if n not in (BUNDLE_FILE, BOOSTER_FILE)}
            return cls(meta, raw[BOOSTER_FILE].decode("utf-8"), extra)
        except UserError as exc:
            raise UserError(f"{location}: {exc}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise UserError(f"{location}: model bundle is corrupt ({type(exc).__name__}: {first})") from exc
        except Exception as exc:  # LightGBM raises its own error type for a broken booster file
            if type(exc).__name__ == "LightGBMError":
                raise UserError(f"{location}: model bundle is corrupt (booster: {exc})") from exc
            raise

    # scoring

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        return self.encoder.transform(frame)

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(X, raw_score=True, num_threads=self.num_threads))

    def probability(self, raw: np.ndarray) -> np.ndarray:
        return np.clip(self.calibrator.apply(raw), 0.0, 1.0)

    @property
    def shap_tables(self) -> ShapTables | None:
        """The booster's TreeSHAP as tables (built on first use; None: LightGBM explains this model)."""
        if self._shap is False:
            self.prepare_reasons()
        return self._shap  # type: ignore[return-value]

    def prepare_reasons(self) -> None:
        """Build the TreeSHAP tables now, the segments' models' too (a server does it at load, so
        that no batch waits for them and its scorer processes receive them built)."""
        if self._shap is False:
            self._shap = build_shap_tables(self.booster, self._group, self.booster_text)
        for bundle in self.routes.values():
            if bundle._shap is False:  # a segment scored by the global booster shares its tables
                same = bundle.booster is self.booster
                bundle._shap = (
                    self._shap
                    if same
                    else build_shap_tables(bundle.booster, bundle._group, bundle.booster_text)
                )

    def field_contributions(self, X: np.ndarray, num_threads: int | None = None) -> tuple[np.ndarray, float]:
        """Exact TreeSHAP contributions (log-odds) summed per CRM field, and the base value."""
        tables = self.shap_tables if len(X) >= TABLE_ROWS else None
        if tables is not None:
            return tables.contributions(X), tables.base
        contrib = self.booster.predict(X, pred_contrib=True, num_threads=num_threads or self.num_threads)
        contrib = np.asarray(contrib).reshape(X.shape[0], -1)
        base = float(contrib[0, -1]) if len(contrib) else 0.0
        return contrib @ self._group, base

    def field_values(self, X: np.ndarray) -> np.ndarray:
        """One encoded value per field (the field's first feature), e.g. to colour a SHAP beeswarm."""
        first: dict[str, int] = {}
        for j, src in enumerate(self.encoder.feature_fields):
            first.setdefault(src, j)
        return X[:, np.array([first[f] for f in self.fields], dtype=np.intp)]

    def score_matrix(
        self,
        X: np.ndarray,
        *,
        explain: int = 0,
        records: Sequence[Mapping[str, Any]] | None = None,
        num_threads: int | None = None,
        segments: np.ndarray | Sequence[str | None] | None = None,
        phrase: bool = True,
    ) -> Scored:
        """Probability, MQL flag and grade for each row; reasons (exact TreeSHAP) when ``explain`` > 0
        (``phrase`` False: their weights only, for ``api_reasons``).

        A routing bundle scores each row with its segment's model and cutoff (``segments``: the rows'
        keys, from ``segment_keys``); rows of unknown or missing segments, or all rows when no keys
        are given, get the global model.

        For group-pure trees (each uses fit fields only or engagement fields only) the fit and
        engagement parts are exact additive pieces of the raw score, read off the leaves; otherwise,
        and whenever reasons are asked for, they are the TreeSHAP contributions summed per group.
        """
        if self.routes and segments is not None:
            return self._routed(X, segments, explain, records, num_threads, phrase)
        contrib: np.ndarray | None = None
        threads = num_threads or self.num_threads
        if self._trees is not None and explain <= 0:
            leaves = np.asarray(self.booster.predict(X, pred_leaf=True, num_threads=threads))
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
            if records is None:
                raise ValueError("records are needed to phrase reasons")
            if contrib is None:
                contrib, _ = self.field_contributions(X, threads)
            scored.contributions = contrib
            scored.weights = weights = self.reason_weights(contrib, raw)
            if phrase:
                scored.reasons = select_reasons(
                    records, weights, explain, self.fields, self._group_names, self.phraser
                )
        return scored

    def _routed(
        self,
        X: np.ndarray,
        segments: np.ndarray | Sequence[str | None],
        explain: int,
        records: Sequence[Mapping[str, Any]] | None,
        num_threads: int | None,
        phrase: bool = True,
    ) -> Scored:
        """Each segment's rows scored by its own scorer, put back in the rows' order."""
        n = len(X)
        members: dict[Any, list[int]] = {}
        for i, key in enumerate(segments.tolist() if isinstance(segments, np.ndarray) else segments):
            members.setdefault(key, []).append(i)
        if len(members) == 1:  # one segment: no gathering, no scattering
            key = next(iter(members))
            scorer = self.routes.get(key, self) if key is not None else self
            scored = scorer.score_matrix(
                X, explain=explain, records=records, num_threads=num_threads, phrase=phrase
            )
            return self._named(scored, [(key, scorer, _ALL)], n)
        groups = [
            (key, self.routes.get(key, self) if key is not None else self, np.asarray(rows, dtype=np.intp))
            for key, rows in members.items()
        ]
        parts = []
        for _key, scorer, rows in groups:
            subset = [records[i] for i in rows] if records is not None else None
            parts.append(
                scorer.score_matrix(
                    X[rows], explain=explain, records=subset, num_threads=num_threads, phrase=phrase
                )
            )
        out = Scored(
            p_sql=np.empty(n),
            mql=np.empty(n, dtype=bool),
            grade=np.empty(n, dtype=object),
            fit_band=np.empty(n, dtype=object),
            engagement_band=np.empty(n, dtype=object),
            fit_part=np.empty(n),
            engagement_part=np.empty(n),
            raw=np.empty(n),
        )
        contributions = np.empty((n, len(self.fields))) if explain > 0 else None
        weights = np.empty((n, len(self.fields))) if explain > 0 else None
        reasons: list[list[Reason]] | None = [[] for _ in range(n)] if explain > 0 and phrase else None
        for (_key, _scorer, rows), part in zip(groups, parts, strict=True):
            for name in (
                "p_sql",
                "mql",
                "grade",
                "fit_band",
                "engagement_band",
                "fit_part",
                "engagement_part",
                "raw",
            ):
                getattr(out, name)[rows] = getattr(part, name)
            if contributions is not None and weights is not None:
                if part.contributions is not None and part.weights is not None:
                    contributions[rows], weights[rows] = part.contributions, part.weights
            if reasons is not None:
                for i, r in zip(rows.tolist(), part.reasons or [], strict=False):
                    reasons[i] = r
        out.contributions, out.reasons, out.weights = contributions, reasons, weights
        return self._named(out, groups, n)

    def _named(self, scored: Scored, groups: list[tuple[Any, ModelBundle, Any]], n: int) -> Scored:
        """Name each row's segment and the sub-model that scored it."""
        segment = np.full(n, None, dtype=object)
        model = np.full(n, GLOBAL, dtype=object)
        for key, _scorer, rows in groups:
            shown, by = self._route_names.get(key, (key, GLOBAL))
            segment[rows], model[rows] = shown, by
        scored.segment, scored.segment_model = segment, model
        return scored

    def score_frame(self, frame: pd.DataFrame, *, explain: int = 0) -> Scored:
        X = self.encode(frame)
        records = frame.to_dict(orient="records") if explain > 0 else None
        return self.score_matrix(X, explain=explain, records=records, segments=self.segment_keys(frame))

    def answers(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        explain: int = 5,
        warnings: Sequence[Sequence[str]] | None = None,
        num_threads: int | None = None,
    ) -> tuple[list[dict[str, Any]], Scored]:
        """The whole answer for each lead (what the API sends), and the scores behind them."""
        reader = self.reader
        if reader is not None and len(records) == 1:  # one lead of a known segment: its scorer answers
            key = reader.key(records[0])
            scorer = self.routes.get(key) if key is not None else None
            if scorer is not None and key is not None:
                return self._answered_by(scorer, key, records, explain, warnings, num_threads)
        X = self.encoder.encode_records(records)
        keys = [reader.key(r) for r in records] if reader is not None else None
        scored = self.score_matrix(
            X, explain=explain, records=records, num_threads=num_threads, segments=keys, phrase=False
        )
        overdue = self.meta.cutoff.review_warning()
        shared = [overdue] if overdue else []
        id_col = self.id_column
        said = (
            api_reasons(records, scored.weights, explain, self.fields, self._group_names, self.phraser)
            if scored.weights is not None
            else None
        )
        parts = self.answer_parts(scored, said)
        model_version, cutoff_version = self.model_version, self.cutoff_version
        segment = scored.segment.tolist() if scored.segment is not None else [None] * len(records)
        segment_model = (
            scored.segment_model.tolist() if scored.segment_model is not None else [GLOBAL] * len(records)
        )
        out = []
        for i, record in enumerate(records):
            own = [*(warnings[i] if warnings is not None else ())]
            if reader is not None and keys is not None and keys[i] not in self.routes:
                own.append(self._unrouted(record, keys[i]))
                if keys[i] is not None:
                    segment[i] = reader.shown(record)
            out.append(
                {
                    "lead_id": record.get(id_col) if id_col else None,
                    **parts[i],
                    "segment": segment[i],
                    "segment_model": segment_model[i],
                    "respond_within": self.respond_within(record),
                    "model_version": model_version,
                    "cutoff_version": cutoff_version,
                    "warnings": [*own, *shared],
                }
            )
        return out, scored

    def _answered_by(
        self,
        scorer: ModelBundle,
        key: str,
        records: Sequence[Mapping[str, Any]],
        explain: int,
        warnings: Sequence[Sequence[str]] | None,
        num_threads: int | None,
    ) -> tuple[list[dict[str, Any]], Scored]:
        """A segment's own scorer answers, named as this bundle (its version, the segment, the sub-model)."""
        out, scored = scorer.answers(records, explain=explain, warnings=warnings, num_threads=num_threads)
        shown, by = self._route_names[key]
        for answer in out:
            answer["segment"], answer["segment_model"] = shown, by
            answer["model_version"], answer["cutoff_version"] = self.model_version, self.cutoff_version
        return out, self._named(scored, [(key, scorer, _ALL)], len(out))

    def _unrouted(self, record: Mapping[str, Any], key: str | None) -> str:
        assert self.reader is not None
        columns = SEPARATOR.join(self.reader.by)
        if key is None:
            return f"{columns}: missing, scored by the global model"
        return f"{columns}: '{self.reader.shown(record)}' is not a segment the model was trained on, scored by the global model"

    def score_record(self, record: Mapping[str, Any], *, explain: int = 5) -> dict[str, Any]:
        """One lead as the CRM sends it, scored and explained: the same answer as the service's."""
        return self.answers([record], explain=explain)[0][0]

    def result_dict(self, scored: Scored, i: int) -> dict[str, Any]:
        """The score part of one lead's answer (p_sql, mql, grade, parts, reasons)."""
        return self._parts(scored, i)

    def answer_parts(
        self, scored: Scored, reasons: list[dict[str, list[dict[str, Any]]]] | None = None
    ) -> list[dict[str, Any]]:
        """``_parts`` for every lead, reading each array once (a 1,000-lead batch is on the request
        path); ``reasons``: the API's reasons when already made (``api_reasons``)."""
        p = [round(v, 6) for v in scored.p_sql.tolist()]
        fit = [round(v, 4) for v in scored.fit_part.tolist()]
        eng = [round(v, 4) for v in scored.engagement_part.tolist()]
        mql, grade = scored.mql.tolist(), scored.grade.tolist()
        fit_band, eng_band = scored.fit_band.tolist(), scored.engagement_band.tolist()
        if reasons is None:
            reasons = [reasons_dict(r) for r in (scored.reasons or [[] for _ in p])]
        return [
            {
                "p_sql": p[i],
                "mql": mql[i],
                "grade": grade[i],
                "fit": {"band": fit_band[i], "log_odds": fit[i]},
                "engagement": {"band": eng_band[i], "log_odds": eng[i]},
                "reasons": reasons[i],
            }
            for i in range(len(p))
        ]

    def _parts(self, scored: Scored, i: int) -> dict[str, Any]:
        return {
            "p_sql": round(float(scored.p_sql[i]), 6),
            "mql": bool(scored.mql[i]),
            "grade": str(scored.grade[i]),
            "fit": {"band": str(scored.fit_band[i]), "log_odds": round(float(scored.fit_part[i]), 4)},
            "engagement": {
                "band": str(scored.engagement_band[i]),
                "log_odds": round(float(scored.engagement_part[i]), 4),
            },
            "reasons": reasons_dict(scored.reasons[i] if scored.reasons is not None else []),
        }

    # reasons

    def reason_weights(self, contrib: np.ndarray, raw: float | np.ndarray) -> np.ndarray:
        """Each field's weight in percentage points of P(SQL); they add up to p - p(average lead)."""
        return reason_weights(contrib, raw, self.probability)

    def phrase(self, name: str, value: Any, positive: bool) -> str:
        """A plain-language phrase naming the lead's own value, from the field's template."""
        return self.phraser.phrase(name, value, positive)

    def respond_within(self, record: Mapping[str, Any]) -> str:
        """The service level for this lead: 1 hour for demo or pricing requests, else 24 hours."""
        for name in self.spec.respond_fast_when:
            number = to_number(record.get(name))
            if not math.isnan(number) and number > 0:
                return "1h"
        return "24h"
