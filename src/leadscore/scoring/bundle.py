"""The model bundle: everything needed to score a lead, loadable without MLflow or training code.

A bundle is a folder (``bundle_files.py``: ``bundle.json`` + ``booster.txt`` + checksums) holding
the feature encoder, the LightGBM booster, the calibrator, the MQL threshold and its contract, the
grade bands, the reason phrasing and the dataset spec. ``ModelBundle`` is the global model loaded
from it (a ``Predictor``) with its identity and, in a routing bundle, a ``SegmentRouter`` holding
the segments' models. Batch scoring, the MLflow pyfunc wrapper, the reports and the service all
score through it, and ``answers`` (built by ``answer.py``) gives the service's whole answer, so
they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leadscore.errors import UserError
from leadscore.scoring.answer import answers, respond_within
from leadscore.scoring.bundle_files import (
    BOOSTER_FILE,
    BUNDLE_FILE,
    CHECKSUM_FILE,
    SEGMENT_BOOSTER,
    TIME_BOOSTER,
    read_bundle,
    read_verified,
    write_bundle,
    write_checksums,
)
from leadscore.scoring.meta import BundleMeta
from leadscore.scoring.predictor import TABLE_ROWS, Predictor, Scored
from leadscore.scoring.router import SegmentRouter
from leadscore.scoring.segment_keys import SegmentReader
from leadscore.scoring.time_head import TimeHead

__all__ = [
    "BOOSTER_FILE",
    "BUNDLE_FILE",
    "CHECKSUM_FILE",
    "SEGMENT_BOOSTER",
    "TABLE_ROWS",
    "ModelBundle",
    "Scored",
    "read_verified",
    "write_checksums",
]


class ModelBundle(Predictor):
    """A trained model ready to score: the global model, its identity and its segments' router."""

    def __init__(
        self,
        meta: BundleMeta | Mapping[str, Any],
        booster_text: str,
        segment_boosters: Mapping[str, str] | None = None,  # the bundle's other booster files, by name
    ) -> None:
        super().__init__(
            meta if isinstance(meta, BundleMeta) else BundleMeta.model_validate(meta), booster_text
        )
        self.segment_boosters = dict(segment_boosters or {})
        self.router: SegmentRouter | None = None
        if self.meta.segments is not None:
            self.router = SegmentRouter(self.meta.segments, self, self.segment_boosters)
        self.time_head = _time_head(self.meta, self.segment_boosters.get(TIME_BOOSTER))

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

    # segments

    @property
    def segmented(self) -> bool:
        return self.router is not None

    @property
    def reader(self) -> SegmentReader | None:
        """How a lead's segment is read (None: a single model)."""
        return self.router.reader if self.router is not None else None

    @property
    def routes(self) -> dict[str, Predictor]:
        """Each known segment's model, by segment key (empty: a single model)."""
        return self.router.models if self.router is not None else {}

    def threshold_for(self, record: Mapping[str, Any]) -> float:
        """The MQL threshold this lead is held to: its segment's in a routing bundle, else the one."""
        return self.router.threshold_for(record) if self.router is not None else self.threshold

    def segment_keys(self, frame: pd.DataFrame) -> np.ndarray | None:
        """Each row's segment key (None where missing) for a routing bundle; None for a single model."""
        return self.router.keys(frame) if self.router is not None else None

    def prepare_reasons(self, share_with: Predictor | None = None) -> None:
        """The TreeSHAP tables of the global model and of every segment's model, built now."""
        super().prepare_reasons(share_with)
        if self.router is not None:
            self.router.prepare_reasons()

    # persistence

    def save(self, folder: str | Path) -> Path:
        return write_bundle(Path(folder), self.meta.to_json(), self.booster_text, self.segment_boosters)

    @classmethod
    def load(cls, location: str | Path) -> ModelBundle:
        """Load from a bundle folder or an exported MLflow model folder (``models/<dataset>/``).

        MLflow URIs (``models:/...``, ``runs:/...``) are resolved by ``leadscore.load_bundle``.
        """
        files = read_bundle(location)
        try:
            return cls(
                BundleMeta.model_validate_json(files.meta_json), files.booster_text, files.segment_boosters
            )
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

    def score_matrix(
        self,
        X: np.ndarray,
        *,
        explain: int = 0,
        records: Sequence[Mapping[str, Any]] | None = None,
        num_threads: int | None = None,
        phrase: bool = True,
        segments: np.ndarray | Sequence[str | None] | None = None,
    ) -> Scored:
        """``Predictor.score_matrix``; a routing bundle scores each row with its segment's model and
        cutoff (``segments``: the rows' keys, from ``segment_keys``); rows of unknown or missing
        segments, or all rows when no keys are given, get the global model."""
        if self.router is not None and self.router.models and segments is not None:
            return self.router.score(
                X, segments, explain=explain, records=records, num_threads=num_threads, phrase=phrase
            )
        return super().score_matrix(
            X, explain=explain, records=records, num_threads=num_threads, phrase=phrase
        )

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
        return answers(
            self, self.router, records, explain=explain, warnings=warnings, num_threads=num_threads
        )

    def score_record(self, record: Mapping[str, Any], *, explain: int = 5) -> dict[str, Any]:
        """One lead as the CRM sends it, scored and explained: the same answer as the service's."""
        return self.answers([record], explain=explain)[0][0]

    def respond_within(self, record: Mapping[str, Any]) -> str:
        """The service level for this lead: 1 hour for demo or pricing requests, else 24 hours."""
        return respond_within(self.spec, record)


def _time_head(meta: BundleMeta, text: str | None) -> TimeHead | None:
    """The time-to-SQL head when the bundle has one (older bundles and flat exports do not)."""
    if text is None or meta.time_head is None:
        return None
    import lightgbm as lgb

    additive = bool(meta.time_head.get("additive", False))
    return TimeHead(lgb.Booster(model_str=text), num_threads=int(meta.num_threads), additive=additive)
