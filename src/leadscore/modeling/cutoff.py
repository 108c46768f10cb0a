"""Turning the signed cutoff contract into a probability threshold, and the volume/rate trade-off behind it."""

from __future__ import annotations

import numpy as np

from leadscore.errors import UserError
from leadscore.modeling.evaluate import cutoff_outcome, rate_at_volume
from leadscore.scoring.contract import CutoffContract
from leadscore.scoring.meta import CutoffFacts

BOOTSTRAP_SAMPLES = 200
BOOTSTRAP_MAX_ROWS = 50_000
MIN_MQL = 20  # a confident promise needs at least this many MQLs behind it
LOOSE_MQL_SHARE = 0.40  # more leads than this made MQL: the bar is too loose
LOOSE_SQL_RATE = 0.20  # an MQL->SQL rate below this: the bar is too loose (a healthy one is 30% or more)


def resolve_threshold(
    contract: CutoffContract,
    p: np.ndarray,
    weekly_volume: float | None = None,
    y: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[float, list[str]]:
    """A threshold on calibrated probability from the contract, chosen on held-out leads (``p``, and
    their outcomes ``y`` when the contract asks for a confidence)."""
    p = np.asarray(p, dtype=float)
    notes: list[str] = []
    if contract.policy == "probability":
        assert contract.probability is not None
        return float(contract.probability), notes
    if contract.policy == "min_sql_rate" and contract.confidence and y is not None:
        assert contract.min_sql_rate is not None
        return confident_threshold(
            p, np.asarray(y, dtype=float), contract.min_sql_rate, contract.confidence, seed
        )
    if contract.policy == "min_sql_rate":
        assert contract.min_sql_rate is not None
        values = np.unique(p)[::-1]  # distinct probabilities, highest first
        sorted_p = np.sort(p)[::-1]
        csum = np.cumsum(sorted_p)
        # For each distinct value v, the expected SQL rate of all leads with p >= v.
        counts = np.searchsorted(-sorted_p, -values, side="right")
        rates = csum[counts - 1] / counts
        if rates[0] < contract.min_sql_rate:
            notes.append(
                f"no threshold reaches an expected MQL->SQL rate of {contract.min_sql_rate:.0%}; "
                "only the single best-scored leads become MQL"
            )
            return float(values[0]), notes
        # Rates fall as the threshold drops; take the lowest threshold before the promise breaks.
        broken = np.flatnonzero(rates < contract.min_sql_rate)
        last = int(broken[0]) - 1 if broken.size else values.size - 1
        return float(values[last]), notes
    assert contract.mql_capacity is not None
    volume = weekly_volume or contract.weekly_leads
    if not volume:
        raise UserError(
            "cutoff contract: policy 'mql_capacity' needs the weekly lead volume: give the data a time "
            "column (--time) or set 'weekly_leads' in the contract"
        )
    share = min(1.0, contract.mql_capacity / volume)
    if share >= 1.0:
        notes.append("sales can take every lead: all leads are MQL")
        return 0.0, notes
    threshold = float(np.quantile(p, 1.0 - share, method="higher"))
    return threshold, notes


def _bootstrap_weights(n: int, seed: int) -> np.ndarray:
    """Poisson bootstrap weights (samples x leads): each lead counted 0, 1, 2 ... times per sample."""
    return np.random.default_rng(seed).poisson(1.0, size=(BOOTSTRAP_SAMPLES, n)).astype(np.float32)


def _sample(p: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if len(p) <= BOOTSTRAP_MAX_ROWS:
        return p, y
    keep = np.random.default_rng(seed).choice(len(p), BOOTSTRAP_MAX_ROWS, replace=False)
    return p[keep], y[keep]


def confident_threshold(
    p: np.ndarray, y: np.ndarray, rate: float, confidence: float, seed: int = 0
) -> tuple[float, list[str]]:
    """The lowest threshold whose observed MQL->SQL rate on the calibration leads stays at least
    ``rate`` in ``confidence`` of bootstrap resamples (the lower bound meets the promise)."""
    p, y = _sample(p, y, seed)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    weights = _bootstrap_weights(len(ps), seed)
    mqls = np.cumsum(weights, axis=1)
    sqls = np.cumsum(weights * ys, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.nanquantile(sqls / mqls, 1.0 - confidence, axis=0)
    last_of_value = np.r_[ps[1:] != ps[:-1], True]  # a threshold takes every lead with the same p
    ok = np.flatnonzero((lower >= rate) & last_of_value & (np.arange(len(ps)) + 1 >= MIN_MQL))
    if ok.size == 0:
        note = (
            f"no threshold keeps the MQL->SQL rate at {rate:.0%} with {confidence:.0%} confidence on "
            f"{len(ps):,} calibration leads; only the single best-scored leads become MQL"
        )
        return float(ps[0]), [note]
    return float(ps[ok[-1]]), []


def promise_interval(
    p: np.ndarray, y: np.ndarray, threshold: float, seed: int = 0, level: float = 0.9
) -> dict[str, list[float]]:
    """Bootstrap intervals (``level``) of the MQL share and the observed MQL->SQL rate at ``threshold``
    on the calibration leads: how far the contract's promise can move on other leads like these."""
    p, y = _sample(np.asarray(p, dtype=float), np.asarray(y, dtype=float), seed)
    weights = _bootstrap_weights(len(p), seed)
    mql = (p >= threshold).astype(np.float32)
    total = weights.sum(axis=1)
    chosen = weights @ mql
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample may draw no lead, or no MQL
        rates = (weights @ (mql * y)) / chosen
        shares = chosen / total
    tail = (1.0 - level) / 2
    share = np.nanquantile(shares, [tail, 1 - tail])
    rate = np.nanquantile(rates, [tail, 1 - tail]) if np.isfinite(rates).any() else np.array([np.nan, np.nan])
    return {"mql_share": [float(v) for v in share], "sql_rate": [float(v) for v in rate]}


def tradeoff(
    y: np.ndarray, p: np.ndarray, points: np.ndarray | None = None, steps: int = 20
) -> list[dict[str, float | None]]:
    """For thresholds from strict to loose: MQL share, MQL->SQL rate, recall and the points model's
    rate at the same volume (what marketing and sales weigh when they choose the cutoff)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    total = max(y.sum(), 1.0)
    rows: list[dict[str, float | None]] = []
    for share in np.linspace(1 / steps, 1.0, steps):
        threshold = float(np.quantile(p, 1.0 - share, method="higher"))
        mql = p >= threshold
        count = int(mql.sum())
        rows.append(
            {
                "threshold": threshold,
                "mql_share": float(mql.mean()),
                "mql_sql_rate": float(y[mql].mean()) if count else 0.0,
                "expected_sql_rate": float(p[mql].mean()) if count else 0.0,
                "recall": float(y[mql].sum() / total),
                "points_model_sql_rate": rate_at_volume(y, points, count) if points is not None else None,
            }
        )
    return rows


def cutoff_facts(
    contract: CutoffContract,
    y: np.ndarray,
    p: np.ndarray,
    points: np.ndarray | None,
    threshold: float | np.ndarray,
    weekly: float | None,
    seed: int = 0,
    measured_on: str = "test leads",
) -> CutoffFacts:
    """What the contract's threshold means on the test rows: MQL volume, MQL->SQL rate, recall
    (``weekly``: leads per week in the data, measured once for the cutoff). Without test rows only
    the contract and the threshold: the promise cannot be measured. ``measured_on`` names the leads
    (the test leads, or every labelled lead's out-of-fold score for a finalized model)."""
    facts = CutoffFacts(
        contract=contract,
        threshold=None if np.ndim(threshold) else float(threshold),  # per-lead thresholds: no single one
        policy=contract.describe(),
        contract_version=contract.version,
        review_by=contract.review_by.isoformat(),
    )
    if not len(y):
        return facts
    outcome = cutoff_outcome(y, p, threshold)
    at_volume = rate_at_volume(y, points, int(outcome["mql_count"]), seed) if points is not None else None
    return facts.model_copy(
        update={
            "measured_on": measured_on,
            "warnings": promise_warnings(contract, y, p, outcome, weekly, measured_on),
            "expected_mql_share": outcome["mql_share"],
            "expected_sql_rate": outcome["sql_rate"],
            "expected_recall": outcome["recall"],
            "model_expected_sql_rate": outcome["expected_sql_rate"],
            "mql_count_test": int(outcome["mql_count"]),
            "points_model_sql_rate_at_same_volume": at_volume,
            "weekly_lead_volume": weekly,
            "expected_mql_per_week": (outcome["mql_share"] * weekly) if weekly else None,
        }
    )


def promise_warnings(
    contract: CutoffContract,
    y: np.ndarray,
    p: np.ndarray,
    outcome: dict[str, float],
    weekly: float | None,
    measured_on: str = "test leads",
) -> list[str]:
    """What the threshold's result on the test leads says about the contract, in plain words: the
    contract's rate not kept (with what is reachable), or a bar that is too loose."""
    out: list[str] = []
    rate, share = outcome["sql_rate"], outcome["mql_share"]
    wanted = contract.min_sql_rate if contract.policy == "min_sql_rate" else None
    if wanted is not None and not rate >= wanted:
        out.append(
            f"the threshold does not keep the contract's MQL->SQL rate of {wanted:.0%}: {rate:.1%} on the "
            f"{measured_on}; {_reachable(y, p, wanted, weekly)}"
        )
    if share > LOOSE_MQL_SHARE:
        out.append(f"{share:.1%} of leads become MQL (over {LOOSE_MQL_SHARE:.0%}): the bar is too loose")
    if rate < LOOSE_SQL_RATE:
        out.append(f"the MQL->SQL rate is {rate:.1%} (below {LOOSE_SQL_RATE:.0%}): the bar is too loose")
    return out


def _reachable(y: np.ndarray, p: np.ndarray, wanted: float, weekly: float | None) -> str:
    """The most volume that keeps ``wanted`` on these leads, else the best rate with MIN_MQL MQLs."""
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    hits = np.cumsum(np.asarray(y, dtype=float)[order])
    count = np.arange(1, len(order) + 1)
    rates = hits / count
    enough = count >= MIN_MQL
    keeps = np.flatnonzero(enough & (rates >= wanted))

    def volume(k: int) -> str:
        per_week = f", about {k / len(order) * weekly:.0f} per week" if weekly else ""
        return f"{k / len(order):.1%} of leads{per_week}"

    if keeps.size:
        k = int(keeps[-1]) + 1
        return f"it is kept up to {volume(k)} as MQL ({rates[k - 1]:.1%})"
    if not enough.any():
        return f"fewer than {MIN_MQL} leads: no rate is measurable"
    best = int(np.argmax(np.where(enough, rates, -1.0))) + 1
    return f"the best reachable with at least {MIN_MQL} MQLs is {rates[best - 1]:.1%} at {volume(best)}"
