"""Leakage guard: find columns that reveal the answer (filled in after sales contact) untold.

Evidence: a column that on its own separates SQL from non-SQL almost perfectly (out-of-fold
single-column ROC AUC), a model that leans on one column for most of what it knows, and columns
filled together with a caught leak (missing for the same leads, sharing a name word).
Post-contact vocabulary any CRM uses (duration, disposition, status, stage, owner, rating,
reason ...) lowers the bar for the first, since such columns are leaks far more often than signals.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

STRONG_AUC = 0.90
HINTED_AUC = 0.65
LEAN_SHARE = 0.50
LEAN_AUC = 0.75
# Words that mean "filled in after sales contact" in any CRM's vocabulary. A dataset's own
# post-contact columns belong in its spec's `exclude:`; the rest is found from evidence.
POST_CONTACT_HINTS = (
    "duration",
    "call length",
    "talk time",
    "disposition",
    "status",
    "stage",
    "outcome",
    "result",
    "converted",
    "conversion",
    "won",
    "lost",
    "closed",
    "sales rep",
    "owner",
    "opportunit",
    "deal",
    "rating",
    "qualified",
    "disqualif",
    "reason",
)
FAMILY_AGREEMENT = 0.99  # missing for the same leads: filled at the same moment
FAMILY_MIN_MISSING = 0.05


@dataclass
class LeakageFinding:
    """One column's evidence."""

    column: str
    single_auc: float
    name_hint: str | None
    model_share: float | None = None
    suspect: bool = False
    why: str = ""


def name_hint(column: str) -> str | None:
    """The post-contact word in a column's name (whole words, so 'won' is not found in 'wonder')."""
    words = " " + " ".join(re.split(r"[^a-z0-9]+", column.casefold())) + " "
    for hint in POST_CONTACT_HINTS:
        pattern = rf" {re.escape(hint)}" + ("" if hint.endswith(("opportunit", "disqualif")) else " ")
        if re.search(pattern, words):
            return hint
    return None


def _folds(y: np.ndarray, seed: int, folds: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """The scan's stratified folds (none with fewer than two of either class): they depend on the
    labels alone, so every column is encoded on the same ones, drawn once."""
    n_folds = min(folds, int(np.bincount(y, minlength=2).min()))
    if n_folds < 2:
        return []
    return list(StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _oof_auc(
    values: np.ndarray, y: np.ndarray, categorical: bool, folds: list[tuple[np.ndarray, np.ndarray]]
) -> float:
    """AUC of an out-of-fold target encoding of one column (bins for numbers, levels for categories)."""
    if not folds:
        return 0.5
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    if categorical:
        keys = np.where(missing, -1.0, values)
    else:
        finite = values[~missing]
        if finite.size == 0:
            return 0.5
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, 21)[1:-1]))
        keys = np.where(missing, -1.0, np.searchsorted(edges, values, side="right").astype(float))
    _, codes = np.unique(keys, return_inverse=True)
    encoded = np.zeros(len(y), dtype=float)
    prior = y.mean()
    for fit_idx, eval_idx in folds:
        sums = np.bincount(codes[fit_idx], weights=y[fit_idx], minlength=codes.max() + 1)
        counts = np.bincount(codes[fit_idx], minlength=codes.max() + 1)
        rate = (sums + 10 * prior) / (counts + 10)  # smoothed towards the prior
        encoded[eval_idx] = rate[codes[eval_idx]]
    if np.all(encoded == encoded[0]):
        return 0.5
    return float(roc_auc_score(y, encoded))


def single_column_scan(
    X: np.ndarray,
    y: np.ndarray,
    fields: list[str],
    feature_fields: list[str],
    categorical: set[int],
    seed: int = 0,
    max_rows: int = 200_000,
) -> list[LeakageFinding]:
    """Out-of-fold single-column AUC per CRM field (its best feature), with the name hint."""
    y = np.asarray(y, dtype=int)
    if len(y) > max_rows:
        idx = np.random.default_rng(seed).choice(len(y), max_rows, replace=False)
        X, y = X[idx], y[idx]
    findings = []
    folds = _folds(y, seed)
    for name in fields:
        cols = [j for j, src in enumerate(feature_fields) if src == name]
        auc = max(_oof_auc(X[:, j], y, j in categorical, folds) for j in cols)
        hint = name_hint(name)
        finding = LeakageFinding(column=name, single_auc=round(auc, 4), name_hint=hint)
        if auc >= STRONG_AUC:
            finding.suspect, finding.why = True, f"on its own it predicts the outcome (AUC {auc:.3f})"
        elif hint and auc >= HINTED_AUC:
            finding.suspect, finding.why = (
                True,
                f"name suggests it is filled after sales contact ('{hint}') and it predicts the outcome (AUC {auc:.3f})",
            )
        findings.append(finding)
    return findings


GROWTH_RHO = 0.3  # a column whose values follow the leads' age at the export this closely grew after scoring
GROWTH_MIN_ROWS = 200


def growth_check(
    findings: list[LeakageFinding],
    X: np.ndarray,
    y: np.ndarray,
    scored_ms: np.ndarray,
    feature_fields: list[str],
    categorical: set[int],
    point_in_time: frozenset[str],
) -> list[LeakageFinding]:
    """Columns counted as of the export, not as of the scoring time (a CRM's "Number of Pageviews",
    "Last Activity Date"): among the leads that did not become SQL, their values follow how long
    before the export each lead was scored (older leads had longer to add to them). A feature
    computed as of the scoring time does not; the declared roll-ups (``point_in_time``) are by
    construction. Newly suspected findings are returned."""
    negatives = (np.asarray(y) == 0) & ~np.isnan(scored_ms)
    if negatives.sum() < GROWTH_MIN_ROWS or np.unique(scored_ms[negatives]).size < 2:
        return []
    earlier = _ranks(-scored_ms[negatives])  # the lead's age at the export, in rank
    newly = []
    for finding in findings:
        if finding.suspect or finding.column in point_in_time:
            continue
        cols = [j for j, src in enumerate(feature_fields) if src == finding.column and j not in categorical]
        for j in cols:
            values = X[negatives, j]
            known = ~np.isnan(values)
            if known.sum() < GROWTH_MIN_ROWS or np.unique(values[known]).size < 3:
                continue
            rho = float(np.corrcoef(_ranks(values[known]), earlier[known])[0, 1])
            if abs(rho) >= GROWTH_RHO:
                finding.suspect = True
                finding.why = (
                    f"its values follow how long before the export each lead was scored (Spearman {rho:+.2f} "
                    "among non-SQL leads): counted as of the export, it includes what happened after the scoring time"
                )
                newly.append(finding)
                break
    return newly


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share theirs), as Spearman's correlation reads them."""
    return pd.Series(values).rank(method="average").to_numpy()


def family_check(findings: list[LeakageFinding], missing: dict[str, np.ndarray]) -> list[LeakageFinding]:
    """Columns filled together with a suspected leak are suspects too: the same leads are missing
    both (they were filled at the same moment) and the names share a word. One post-contact score
    caught means its siblings are post-contact as well."""
    newly = []
    suspects = [f for f in findings if f.suspect and f.column in missing]
    for f in findings:
        if f.suspect or f.column not in missing:
            continue
        mask = missing[f.column]
        if not FAMILY_MIN_MISSING <= mask.mean() <= 1 - FAMILY_MIN_MISSING:
            continue
        for leak in suspects:
            same = float(np.mean(mask == missing[leak.column]))
            if same >= FAMILY_AGREEMENT and _shared_word(f.column, leak.column):
                f.suspect = True
                f.why = f"filled together with '{leak.column}' (missing for the same {same:.0%} of leads)"
                newly.append(f)
                break
    return newly


def _shared_word(a: str, b: str) -> bool:
    def words(text: str) -> set[str]:
        return {w for w in re.split(r"[^a-z0-9]+", text.casefold()) if len(w) >= 4}

    return bool(words(a) & words(b))


def lean_check(findings: list[LeakageFinding], shares: dict[str, float]) -> list[LeakageFinding]:
    """Flag a column the model leans on for most of its decisions when it is also strong alone."""
    newly = []
    for f in findings:
        f.model_share = round(shares.get(f.column, 0.0), 4)
        if not f.suspect and f.model_share >= LEAN_SHARE and f.single_auc >= LEAN_AUC:
            f.suspect = True
            f.why = f"the model leans on it for {f.model_share:.0%} of its attributions (alone: AUC {f.single_auc:.3f})"
            newly.append(f)
    return newly


def report(findings: list[LeakageFinding]) -> list[dict[str, object]]:
    return [asdict(f) for f in sorted(findings, key=lambda f: -f.single_auc)]
