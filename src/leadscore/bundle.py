"""The model bundle: everything needed to score a lead, loadable without MLflow or training code.

A bundle is a folder (``bundle.json`` + ``booster.txt``) holding the feature encoder, the
LightGBM booster, the calibrator, the MQL threshold and its contract, the grade bands, the reason
phrasing and the dataset spec. Batch scoring, the MLflow pyfunc wrapper and the service all score
through ``ModelBundle``, so they cannot disagree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.config import DatasetSpec, UserError
from leadscore.features import FeatureEncoder, to_number

BUNDLE_FILE = "bundle.json"
BOOSTER_FILE = "booster.txt"
FIT_BANDS = ("A", "B", "C", "D")
ENGAGEMENT_BANDS = ("1", "2", "3", "4")


@dataclass
class Calibrator:
    """Maps the booster's raw score to a calibrated probability (isotonic or sigmoid)."""

    kind: str
    x: list[float] = field(default_factory=list)  # isotonic: knots on the raw probability
    y: list[float] = field(default_factory=list)
    a: float = 1.0  # sigmoid: p = 1 / (1 + exp(-(a * raw + b)))
    b: float = 0.0

    def __post_init__(self) -> None:
        self._x = np.asarray(self.x, dtype=np.float64)
        self._y = np.asarray(self.y, dtype=np.float64)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.kind == "sigmoid":
            return 1.0 / (1.0 + np.exp(-(self.a * raw + self.b)))
        if self.kind == "isotonic":
            prob = 1.0 / (1.0 + np.exp(-raw))
            return np.interp(prob, self._x, self._y)
        if self.kind == "identity":
            return 1.0 / (1.0 + np.exp(-raw))
        raise ValueError(f"unknown calibrator kind '{self.kind}'")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": self.x, "y": self.y, "a": self.a, "b": self.b}


@dataclass
class Reason:
    """One field's push on a lead's score, phrased for a sales rep."""

    field: str
    text: str
    weight_pp: float
    group: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "text": self.text,
            "weight": round(float(self.weight_pp), 2),
            "group": self.group,
        }


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

    def __init__(self, meta: dict[str, Any], booster_text: str) -> None:
        import lightgbm as lgb

        self.meta = meta
        self.encoder = FeatureEncoder.from_dict(meta["encoder"])
        self.calibrator = Calibrator(**meta["calibrator"])
        self.threshold = float(meta["threshold"])
        self.spec = DatasetSpec.model_validate(meta["spec"])
        self.booster = lgb.Booster(model_str=booster_text)
        self.booster_text = booster_text
        self.num_threads = int(meta.get("num_threads", 2))
        self.fit_edges = np.asarray(meta["grade_edges"]["fit"], dtype=np.float64)
        self.engagement_edges = np.asarray(meta["grade_edges"]["engagement"], dtype=np.float64)
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
        self._templates: dict[str, dict[str, str]] = meta.get("reasons", {})
        self.labels: dict[str, str] = meta.get("labels", {})
        self._phrases: dict[tuple[str, Any, bool], str] = {}
        # Group-pure trees (each uses fit or engagement fields only) let the grade be read off the
        # leaves; otherwise it comes from exact TreeSHAP contributions summed per group.
        self.group_pure = bool(meta.get("group_pure", False))
        self._trees = (
            _TreeTables(self.booster, self.encoder.feature_fields, self.field_groups, fields)
            if self.group_pure
            else None  # mixed trees never read their leaves: skip parsing the whole model at load
        )

    # identity

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    @property
    def cutoff_version(self) -> str:
        return str(self.meta["cutoff"]["contract"].get("version", "unversioned"))

    @property
    def id_column(self) -> str | None:
        return self.spec.id

    # persistence

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / BOOSTER_FILE).write_text(self.booster_text, encoding="utf-8")
        (folder / BUNDLE_FILE).write_text(json.dumps(self.meta, indent=1, sort_keys=True), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, location: str | Path) -> ModelBundle:
        """Load from a bundle folder, an exported MLflow model folder, or a ``models:/`` / ``runs:/`` URI."""
        text = str(location)
        if "://" in text or text.startswith(("models:/", "runs:/")):
            registered = _registry_identity(text)  # pin an alias to its version before downloading
            pinned = f"models:/{registered['name']}/{registered['version']}" if registered else text
            bundle = cls.load(_download_mlflow(pinned))
            if registered:
                bundle.meta["registered"] = registered  # which version answers, for /v1/model
            return bundle
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
            meta = json.loads((folder / BUNDLE_FILE).read_text(encoding="utf-8"))
            booster_text = (folder / BOOSTER_FILE).read_text(encoding="utf-8")
            return cls(meta, booster_text)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{location}: model bundle is corrupt ({type(exc).__name__}: {exc})") from exc
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
        fit_band = np.array(FIT_BANDS)[np.searchsorted(-self.fit_edges, -fit_part, side="right")]
        eng_band = np.array(ENGAGEMENT_BANDS)[
            np.searchsorted(-self.engagement_edges, -eng_part, side="right")
        ]
        grade = np.char.add(fit_band.astype(str), eng_band.astype(str))
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
            scored.reasons = self._reasons(records, self.reason_weights(contrib, raw), explain)
        return scored

    def score_frame(self, frame: pd.DataFrame, *, explain: int = 0) -> Scored:
        X = self.encode(frame)
        records = frame.to_dict(orient="records") if explain > 0 else None
        return self.score_matrix(X, explain=explain, records=records)

    def score_record(self, record: Mapping[str, Any], *, explain: int = 5) -> dict[str, Any]:
        """One lead as the CRM sends it, scored and explained (the service's path)."""
        X = self.encoder.encode_record(record)[None, :]
        scored = self.score_matrix(X, explain=explain, records=[record])
        return self.result_dict(scored, 0)

    def result_dict(self, scored: Scored, i: int) -> dict[str, Any]:
        reasons = scored.reasons[i] if scored.reasons is not None else []
        return {
            "p_sql": round(float(scored.p_sql[i]), 6),
            "mql": bool(scored.mql[i]),
            "grade": str(scored.grade[i]),
            "fit": {"band": str(scored.fit_band[i]), "log_odds": round(float(scored.fit_part[i]), 4)},
            "engagement": {
                "band": str(scored.engagement_band[i]),
                "log_odds": round(float(scored.engagement_part[i]), 4),
            },
            "reasons": {
                "positive": [r.to_dict() for r in reasons if r.weight_pp > 0],
                "negative": [r.to_dict() for r in reasons if r.weight_pp < 0],
            },
        }

    # reasons

    def reason_weights(self, contrib: np.ndarray, raw: float | np.ndarray) -> np.ndarray:
        """Each field's weight in percentage points of P(SQL); they add up to p - p(average lead).

        The lead's distance from the average lead's score is shared out in proportion to the exact
        log-odds contributions: the calibrator's secant slope between the two scores turns log-odds
        into probability. (Removing one field at a time would give 0 on the flat parts of an
        isotonic calibrator, and weights that no longer add up.)
        """
        one = np.ndim(contrib) == 1
        contrib = np.atleast_2d(contrib)
        raw = np.atleast_1d(np.asarray(raw, dtype=np.float64))
        span = contrib.sum(axis=1)
        base = raw - span
        p, p0 = self.probability(raw), self.probability(base)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(np.abs(span) > 1e-9, (p - p0) / span, 0.0)
        # Where the calibrator is flat between the two scores, use its slope around the lead.
        local = self.probability(raw + 0.5) - self.probability(raw - 0.5)
        slope = np.where(slope > 0, slope, np.where(local > 0, local, p * (1 - p)))
        weights = contrib * (slope * 100.0)[:, None]
        return weights[0] if one else weights

    def _reasons(
        self, records: Sequence[Mapping[str, Any]], weights: np.ndarray, k: int
    ) -> list[list[Reason]]:
        """Up to ``k`` positive and ``k`` negative reasons per lead, strongest first.

        The selection is done on the whole weight matrix at once; only the chosen reasons are
        phrased. Weights under 0.05 percentage points are not worth a rep's attention.
        """
        k = min(k, weights.shape[1])
        strong = np.abs(weights) >= 0.05
        # Positive weights ranked high to low, then negative ones low to high (stable on ties).
        pos = np.argsort(np.where(strong & (weights > 0), -weights, np.inf), axis=1, kind="stable")[:, :k]
        neg = np.argsort(np.where(strong & (weights < 0), weights, np.inf), axis=1, kind="stable")[:, :k]
        chosen = np.concatenate([pos, neg], axis=1)
        picked = np.take_along_axis(weights, chosen, axis=1)
        valid = np.take_along_axis(strong, chosen, axis=1)
        valid[:, :k] &= picked[:, :k] > 0
        valid[:, k:] &= picked[:, k:] < 0
        fields, groups, phrase = self.fields, self._group_names, self.phrase
        out: list[list[Reason]] = []
        for i, record in enumerate(records):
            row = []
            for j, w, ok in zip(chosen[i].tolist(), picked[i].tolist(), valid[i].tolist(), strict=True):
                if ok:
                    name = fields[j]
                    row.append(Reason(name, phrase(name, record.get(name), w > 0), w, groups[j]))
            out.append(row)
        return out

    def phrase(self, name: str, value: Any, positive: bool) -> str:
        """A plain-language phrase naming the lead's own value, from the field's template."""
        try:
            key = (name, value, positive)
            cached = self._phrases.get(key)
        except TypeError:  # an unhashable value: phrase it without the cache
            return self._phrase(name, value, positive)
        if cached is None:
            if len(self._phrases) > 200_000:
                self._phrases.clear()
            cached = self._phrases[key] = self._phrase(name, value, positive)
        return cached

    def _phrase(self, name: str, value: Any, positive: bool) -> str:
        label = self.labels.get(name) or name.replace("_", " ").strip().capitalize()
        shown = self.encoder.describe_value(name, value)
        templates = self._templates.get(name, {})
        if shown is None:
            key = "missing"
            template = templates.get(key) or f"No {label.lower()} on record"
        else:
            key = "positive" if positive else "negative"
            template = templates.get(key) or templates.get("any") or _generic(label, positive)
        number = to_number(value)
        try:
            return template.format(
                value=shown, n=_fmt_count(number), s="" if number == 1 else "s", label=label
            )
        except (KeyError, IndexError, ValueError):
            return _generic(label, positive).format(value=shown, label=label)

    def respond_within(self, record: Mapping[str, Any]) -> str:
        """The service level for this lead: 1 hour for demo or pricing requests, else 24 hours."""
        for name in self.spec.respond_fast_when:
            number = to_number(record.get(name))
            if not math.isnan(number) and number > 0:
                return "1h"
        return "24h"


class _TreeTables:
    """Leaf values and each tree's group (fit or engagement), read once from the booster."""

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


def _generic(label: str, positive: bool) -> str:
    return f"{label}: {{value}} ({'raises' if positive else 'lowers'} the chance of SQL)"


def _fmt_count(number: float) -> str:
    if math.isnan(number):
        return "?"
    return f"{number:,.0f}" if float(number).is_integer() or abs(number) >= 10 else f"{number:.1f}"


def _download_mlflow(uri: str) -> Path:
    try:
        import mlflow
        from mlflow.exceptions import MlflowException

        from leadscore.config import get_settings

        mlflow.set_tracking_uri(get_settings().tracking_uri)
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri)
    except MlflowException as exc:
        raise UserError(f"{uri}: cannot load from MLflow ({str(exc).splitlines()[0]})") from exc
    return Path(local)


def _registry_identity(uri: str) -> dict[str, Any] | None:
    """Name, version, run and aliases of a ``models:/name/N`` or ``models:/name@alias`` URI."""
    if not uri.startswith("models:/"):
        return None
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from leadscore.config import get_settings

    uri_of_store = get_settings().tracking_uri
    client = MlflowClient(tracking_uri=uri_of_store, registry_uri=uri_of_store)
    ref = uri.removeprefix("models:/").rstrip("/")
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, version = ref.rpartition("/")
            if not version.isdigit():
                return None
            mv = client.get_model_version(name, version)
    except MlflowException:
        return None
    return {"name": name, "version": str(mv.version), "run_id": mv.run_id, "aliases": sorted(mv.aliases)}
