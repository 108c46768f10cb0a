"""The model bundle: everything needed to score a lead, loadable without MLflow or training code.

A bundle is a folder (``bundle.json`` + ``booster.txt``) holding the feature encoder, the
LightGBM booster, the calibrator, the MQL threshold and its contract, the grade bands, the reason
phrasing and the dataset spec. Batch scoring, the MLflow pyfunc wrapper, the reports and the
service all score through ``ModelBundle``, and ``answers`` gives the service's whole answer, so they
cannot disagree.
"""

from __future__ import annotations

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
from leadscore.scoring.meta import BundleMeta
from leadscore.scoring.reasons import Phraser, Reason, reason_weights, reasons_dict, select_reasons

BUNDLE_FILE = "bundle.json"
BOOSTER_FILE = "booster.txt"
CHECKSUM_FILE = "checksums.json"  # SHA-256 of the other two, checked before either is parsed


def write_checksums(folder: Path) -> None:
    """Record the SHA-256 of a bundle's files (after any change to them)."""
    sums = {name: _sha256(folder / name) for name in (BUNDLE_FILE, BOOSTER_FILE)}
    (folder / CHECKSUM_FILE).write_text(json.dumps(sums, indent=1, sort_keys=True), encoding="utf-8")


def read_verified(folder: Path, location: str | Path) -> dict[str, bytes]:
    """A bundle's two files, each read once and checked before anything is parsed: against their
    checksums, or for a bundle written before checksums, the booster for wholeness (a truncated
    booster file makes LightGBM abort the whole process, which no ``except`` can catch). What is
    checked is what gets parsed: nothing can change on disk in between."""
    sums_path = folder / CHECKSUM_FILE
    try:
        expected = json.loads(sums_path.read_text(encoding="utf-8")) if sums_path.is_file() else None
        raw = {name: (folder / name).read_bytes() for name in (BUNDLE_FILE, BOOSTER_FILE)}
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
    for name in (BUNDLE_FILE, BOOSTER_FILE):
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


class ModelBundle:
    """A trained model ready to score: encode, predict, calibrate, cut off, grade, explain."""

    def __init__(self, meta: BundleMeta | Mapping[str, Any], booster_text: str) -> None:
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
            return cls(meta, raw[BOOSTER_FILE].decode("utf-8"))
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

    def field_contributions(self, X: np.ndarray, num_threads: int | None = None) -> tuple[np.ndarray, float]:
        """Exact TreeSHAP contributions (log-odds) summed per CRM field, and the base value."""
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
    ) -> Scored:
        """Probability, MQL flag and grade for each row; reasons (exact TreeSHAP) when ``explain`` > 0.

        For group-pure trees (each uses fit fields only or engagement fields only) the fit and
        engagement parts are exact additive pieces of the raw score, read off the leaves; otherwise,
        and whenever reasons are asked for, they are the TreeSHAP contributions summed per group.
        """
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
            weights = self.reason_weights(contrib, raw)
            scored.reasons = select_reasons(
                records, weights, explain, self.fields, self._group_names, self.phraser
            )
        return scored

    def score_frame(self, frame: pd.DataFrame, *, explain: int = 0) -> Scored:
        X = self.encode(frame)
        records = frame.to_dict(orient="records") if explain > 0 else None
        return self.score_matrix(X, explain=explain, records=records)

    def answers(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        explain: int = 5,
        warnings: Sequence[Sequence[str]] | None = None,
        num_threads: int | None = None,
    ) -> tuple[list[dict[str, Any]], Scored]:
        """The whole answer for each lead (what the API sends), and the scores behind them."""
        X = self.encoder.encode_records(records)
        scored = self.score_matrix(X, explain=explain, records=records, num_threads=num_threads)
        overdue = self.meta.cutoff.review_warning()
        shared = [overdue] if overdue else []
        id_col = self.id_column
        parts = self.answer_parts(scored)
        model_version, cutoff_version = self.model_version, self.cutoff_version
        out = []
        for i, record in enumerate(records):
            out.append(
                {
                    "lead_id": record.get(id_col) if id_col else None,
                    **parts[i],
                    "respond_within": self.respond_within(record),
                    "model_version": model_version,
                    "cutoff_version": cutoff_version,
                    "warnings": [*(warnings[i] if warnings is not None else ()), *shared],
                }
            )
        return out, scored

    def score_record(self, record: Mapping[str, Any], *, explain: int = 5) -> dict[str, Any]:
        """One lead as the CRM sends it, scored and explained: the same answer as the service's."""
        return self.answers([record], explain=explain)[0][0]

    def result_dict(self, scored: Scored, i: int) -> dict[str, Any]:
        """The score part of one lead's answer (p_sql, mql, grade, parts, reasons)."""
        return self._parts(scored, i)

    def answer_parts(self, scored: Scored) -> list[dict[str, Any]]:
        """``_parts`` for every lead, reading each array once (a 1,000-lead batch is on the request path)."""
        p = [round(v, 6) for v in scored.p_sql.tolist()]
        fit = [round(v, 4) for v in scored.fit_part.tolist()]
        eng = [round(v, 4) for v in scored.engagement_part.tolist()]
        mql, grade = scored.mql.tolist(), scored.grade.tolist()
        fit_band, eng_band = scored.fit_band.tolist(), scored.engagement_band.tolist()
        reasons = scored.reasons or [[] for _ in p]
        return [
            {
                "p_sql": p[i],
                "mql": mql[i],
                "grade": grade[i],
                "fit": {"band": fit_band[i], "log_odds": fit[i]},
                "engagement": {"band": eng_band[i], "log_odds": eng[i]},
                "reasons": reasons_dict(reasons[i]),
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
