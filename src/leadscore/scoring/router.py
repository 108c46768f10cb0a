"""Segment routing: the global model and each segment's model, and which one scores a lead.

A routing bundle was trained with a model or a cutoff per segment (``modeling/segment_models.py`` decides
where the data says so). ``SegmentRouter`` holds the global model and one ``Predictor`` per segment
seen at training time (its own booster, or the global booster held to the segment's cutoff), reads
each lead's segment with ``SegmentReader`` and scores each segment's rows with its model, putting
them back in the rows' order. Unknown or missing segments get the global model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from leadscore.errors import UserError
from leadscore.scoring.meta import SegmentModel, SegmentRouting
from leadscore.scoring.predictor import ROW_ARRAYS, Predictor, Scored, empty_scored
from leadscore.scoring.segment_keys import GLOBAL, SEPARATOR, SegmentReader

ALL_ROWS = slice(None)  # every row (one segment in the batch)


class Route(NamedTuple):
    """The rows of one segment in a batch and the model that scores them."""

    key: str | None
    model: Predictor
    rows: Any  # an index array, or ALL_ROWS


class SegmentRouter:
    """Picks a model per lead by its segment: the segment's own, else the global one."""

    def __init__(self, routing: SegmentRouting, main: Predictor, segment_boosters: Mapping[str, str]) -> None:
        self.main = main
        self.reader = SegmentReader(routing.by, routing.placeholders, routing.aliases)
        self.by = self.reader.by
        # key -> (the segment as people write it, the sub-model answering: "global" or the segment)
        self.names: dict[Any, tuple[Any, str]] = {
            k: (m.name, m.name if m.model == "segment" else GLOBAL) for k, m in routing.models.items()
        }
        self.models: dict[str, Predictor] = {
            key: self._model(seg, segment_boosters) for key, seg in routing.models.items()
        }

    def _model(self, seg: SegmentModel, segment_boosters: Mapping[str, str]) -> Predictor:
        """A segment's model: its own booster, or the global one with the segment's own threshold."""
        meta = self.main.meta
        if seg.model != "segment":
            same = (
                meta.model_copy(update={"threshold": seg.threshold, "cutoff": seg.cutoff})
                if seg.cutoff
                else meta
            )
            return self.main.with_cutoff(seg.threshold, same)
        if seg.booster not in segment_boosters:
            raise UserError(f"model bundle is incomplete (no {seg.booster} for segment '{seg.name}')")
        sub_meta = meta.model_copy(
            update={
                "calibrator": seg.calibrator or meta.calibrator,
                "threshold": seg.threshold,
                "grade_edges": seg.grade_edges or meta.grade_edges,
                "group_pure": bool(seg.group_pure),
                "cutoff": seg.cutoff or meta.cutoff,
                "segments": None,
            }
        )
        return Predictor(sub_meta, segment_boosters[str(seg.booster)])

    def prepare_reasons(self) -> None:
        """Every segment model's TreeSHAP tables (one scored by the global booster shares its tables)."""
        for model in self.models.values():
            model.prepare_reasons(share_with=self.main)

    # reading segments

    def key(self, record: Mapping[str, Any]) -> str | None:
        return self.reader.key(record)

    def keys(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's segment key (None where missing)."""
        return self.reader.keys(frame)

    def model_for(self, key: str | None) -> Predictor:
        """The model scoring a lead of this segment key: its own, else the global one."""
        return self.models.get(key, self.main) if key is not None else self.main

    def threshold_for(self, record: Mapping[str, Any]) -> float:
        """The MQL threshold this lead is held to."""
        return self.model_for(self.key(record) or "").threshold

    def unrouted(self, record: Mapping[str, Any], key: str | None) -> str:
        """The warning of a lead scored by the global model because its segment is missing or new."""
        columns = SEPARATOR.join(self.by)
        if key is None:
            return f"{columns}: missing, scored by the global model"
        return f"{columns}: '{self.reader.shown(record)}' is not a segment the model was trained on, scored by the global model"

    # scoring

    def score(
        self,
        X: np.ndarray,
        segments: np.ndarray | Sequence[str | None],
        *,
        explain: int,
        records: Sequence[Mapping[str, Any]] | None,
        num_threads: int | None,
        phrase: bool = True,
    ) -> Scored:
        """Each segment's rows scored by its own model, put back in the rows' order."""
        routes = self.routes(segments)
        kw: dict[str, Any] = {"explain": explain, "num_threads": num_threads, "phrase": phrase}
        if len(routes) == 1:  # one segment: no gathering, no scattering
            scored = routes[0].model.score_matrix(X, records=records, **kw)
            return self.name_rows(scored, routes, len(X))
        parts = [
            r.model.score_matrix(
                X[r.rows], records=[records[i] for i in r.rows] if records is not None else None, **kw
            )
            for r in routes
        ]
        return self.name_rows(
            _gathered(routes, parts, len(X), len(self.main.fields), explain > 0, phrase), routes, len(X)
        )

    def routes(self, segments: np.ndarray | Sequence[str | None]) -> list[Route]:
        """The batch's segments in order of first appearance, each with its rows and its model."""
        members: dict[Any, list[int]] = {}
        for i, key in enumerate(segments.tolist() if isinstance(segments, np.ndarray) else segments):
            members.setdefault(key, []).append(i)
        if len(members) == 1:
            key = next(iter(members))
            return [Route(key, self.model_for(key), ALL_ROWS)]
        return [
            Route(key, self.model_for(key), np.asarray(rows, dtype=np.intp)) for key, rows in members.items()
        ]

    def name_rows(self, scored: Scored, routes: Sequence[Route], n: int) -> Scored:
        """Name each row's segment and the sub-model that scored it."""
        segment = np.full(n, None, dtype=object)
        model = np.full(n, GLOBAL, dtype=object)
        for route in routes:
            shown, by = self.names.get(route.key, (route.key, GLOBAL))
            segment[route.rows], model[route.rows] = shown, by
        scored.segment, scored.segment_model = segment, model
        return scored


def _gathered(
    routes: list[Route], parts: list[Scored], n: int, fields: int, explain: bool, phrase: bool
) -> Scored:
    """The segments' scores put back in the rows' order."""
    out = empty_scored(n, fields, explain)
    reasons: list[Any] | None = [[] for _ in range(n)] if explain and phrase else None
    for route, part in zip(routes, parts, strict=True):
        rows = route.rows
        for name in ROW_ARRAYS:
            getattr(out, name)[rows] = getattr(part, name)
        if out.contributions is not None and out.weights is not None:
            if part.contributions is not None and part.weights is not None:
                out.contributions[rows], out.weights[rows] = part.contributions, part.weights
        if reasons is not None:
            for i, r in zip(rows.tolist(), part.reasons or [], strict=False):
                reasons[i] = r
    out.reasons = reasons
    return out
