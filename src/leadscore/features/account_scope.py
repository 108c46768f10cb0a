"""Lead features with ``scope: account``: a definition rolled up over all of the lead's account's
leads (the lead itself included) as of the lead's own scoring time.

Every lead is paired with the leads of its account (a lead without one with itself); each pair reads
its colleague's qualifying events in the window by two binary searches into the events sorted by
lead and time. So an account of k leads costs k searches per lead, never a pass over the log, and
nothing after the lead's scoring time is read. Kinds: count, returns, days_since_last,
days_since_first, sum, mean, contacts, roles, new_contacts (``ACCOUNT_SCOPE_KINDS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.features.accounts import AccountActivity, static_mask
from leadscore.features.rollups import NAT_MS, Coded, numbers_of
from leadscore.features.values import MS_PER_DAY
from leadscore.spec import Aggregation

_BIG = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Pairs:
    """Each (anchor, colleague) pair: the anchor's row and time, the colleague's lead row."""

    anchor: np.ndarray
    colleague: np.ndarray
    at: np.ndarray  # the anchor's scoring time (epoch ms)
    n: int  # anchors


def pairs(activity: AccountActivity, anchor_lead: np.ndarray, anchor_ms: np.ndarray) -> Pairs:
    """Every anchor (a lead row, -1: unknown) with each lead of its account (itself without one)."""
    lead_account = activity.lead_account
    order = np.argsort(lead_account, kind="stable")
    sorted_accounts = lead_account[order]
    starts = np.searchsorted(sorted_accounts, np.arange(activity.n_accounts + 1))
    account = np.where(anchor_lead >= 0, lead_account[np.maximum(anchor_lead, 0)], -1)
    size = np.where(account >= 0, starts[account + 1] - starts[np.maximum(account, 0)], anchor_lead >= 0)
    anchor = np.repeat(np.arange(len(anchor_lead)), size)
    offset = np.arange(len(anchor)) - np.repeat(np.cumsum(size) - size, size)
    grouped = account[anchor] >= 0
    colleague = np.where(
        grouped,
        order[np.minimum(starts[np.maximum(account[anchor], 0)] + offset, len(order) - 1)],
        anchor_lead[anchor],
    )
    return Pairs(anchor, colleague.astype(np.int64), anchor_ms[anchor], len(anchor_lead))


class AccountScope:
    """The ``scope: account`` definitions over one activity, for any anchors."""

    def __init__(
        self,
        activity: AccountActivity,
        definitions: Mapping[str, Aggregation],
        log_of: Mapping[str, str] | None = None,
    ) -> None:
        self.activity = activity
        self.definitions = dict(definitions)
        coded: dict[str, Coded] = {}
        self.masks = {
            name: static_mask(activity, d, coded, log_of[name] if log_of else None)
            for name, d in self.definitions.items()
            if d.kind != "new_contacts"
        }
        times = activity.times
        self.t0 = int(times.min()) if len(times) else 0
        self.span = (int(times.max()) - self.t0 + 2) if len(times) else 2
        if len(activity.lead_account) * self.span >= _BIG // 2:  # lead and time in one int64 key
            raise ValueError("scope: account: too many leads over too long a time for one batch")

    def at(self, anchor_lead: np.ndarray, anchor_ms: np.ndarray) -> pd.DataFrame:
        """Each anchor's features (rows in the anchors' order)."""
        p = pairs(self.activity, anchor_lead, anchor_ms.astype(np.int64))
        return pd.DataFrame({name: self._one(name, d, p) for name, d in self.definitions.items()})

    def _one(self, name: str, d: Aggregation, p: Pairs) -> np.ndarray:
        act = self.activity
        held = np.ones(len(p.colleague), dtype=bool) if d.role is None else act.roles[d.role][p.colleague]
        if d.kind == "new_contacts":
            assert d.new_contacts is not None
            created = act.lead_created[p.colleague]
            new = (
                held
                & (created != NAT_MS)
                & (created <= p.at)
                & (created >= p.at - d.new_contacts * MS_PER_DAY)
            )
            return np.bincount(p.anchor[new], minlength=p.n).astype(np.int64)
        mask = self.masks[name]
        rows = np.flatnonzero(mask)
        order = rows[np.lexsort((act.times[rows], act.lead[rows]))]
        keys = act.lead[order] * self.span + (act.times[order] - self.t0)
        end = np.clip(p.at - self.t0, -1, self.span - 1)
        start = end - (d.days * MS_PER_DAY if d.days is not None else self.span + 1)
        base = p.colleague * self.span
        lo = np.searchsorted(keys, base + np.maximum(np.ceil(start).astype(np.int64), 0), "left")
        hi = np.searchsorted(keys, base + end, "right")
        lo = np.where(end < 0, hi, lo)  # an anchor before any event reads none
        n = np.where(held & (p.at != NAT_MS), hi - lo, 0)
        return self._aggregate(d, p, n, lo, hi, order)

    def _aggregate(
        self, d: Aggregation, p: Pairs, n: np.ndarray, lo: np.ndarray, hi: np.ndarray, order: np.ndarray
    ) -> np.ndarray:
        act, kind = self.activity, d.kind
        if kind == "count":
            return np.bincount(p.anchor, weights=n, minlength=p.n).astype(np.int64)
        if kind == "returns":
            return np.maximum(np.bincount(p.anchor, weights=n, minlength=p.n) - 1, 0).astype(np.int64)
        if kind == "contacts":
            return np.bincount(p.anchor, weights=n > 0, minlength=p.n).astype(np.int64)
        if kind == "roles":
            count = np.zeros(p.n, dtype=np.int64)
            for held in act.roles.values():
                count += np.bincount(p.anchor[(n > 0) & held[p.colleague]], minlength=p.n) > 0
            return count
        some = n > 0
        times = act.times[order]
        if kind in ("days_since_last", "days_since_first"):
            edge = (
                times[np.where(some, hi - 1, 0)]
                if kind == "days_since_last"
                else times[np.where(some, lo, 0)]
            )
            best = np.full(p.n, np.nan)
            (np.fmin if kind == "days_since_last" else np.fmax).at(
                best, p.anchor[some], (p.at[some] - edge[some]) / MS_PER_DAY
            )
            return np.round(best, 3)
        assert d.attribute is not None
        values = numbers_of(act.events[d.attribute], np.ones(len(act.events), dtype=bool))[order]
        ok = ~np.isnan(values)
        total = np.concatenate([[0.0], np.cumsum(np.where(ok, values, 0.0))])
        counted = np.concatenate([[0], np.cumsum(ok)])
        s = np.bincount(p.anchor, weights=np.where(some, total[hi] - total[lo], 0.0), minlength=p.n)
        if kind == "sum":
            return np.round(s, 6)
        c = np.bincount(p.anchor, weights=np.where(some, counted[hi] - counted[lo], 0), minlength=p.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, s / c, np.nan)
