"""Putting a trained booster together with its encoder, calibrator, cutoff and bands as a bundle."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from leadscore.features import FeatureEncoder
from leadscore.modeling.boosters import Fitted
from leadscore.modeling.options import TrainOptions
from leadscore.scoring.bundle import ModelBundle
from leadscore.scoring.calibrator import Calibrator
from leadscore.scoring.grades import ENGAGEMENT_BANDS, FIT_BANDS, grade_edges
from leadscore.scoring.meta import BundleMeta, CutoffFacts
from leadscore.spec import DatasetSpec

NO_EDGES: tuple[list[float], list[float]] = ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
GRADE_SAMPLE = 20_000


def band_edges(draft: ModelBundle, X_calib: np.ndarray) -> tuple[list[float], list[float]]:
    """The grade bands: quartiles of the fit and engagement parts on calibration leads. A sample fixes
    them well and keeps TreeSHAP (needed for the parts of mixed trees) off the whole validation set."""
    parts = draft.score_matrix(X_calib[:GRADE_SAMPLE])
    return grade_edges(parts.fit_part), grade_edges(parts.engagement_part)


def group_pure(fitted: Fitted) -> bool:
    return fitted.capacity.group_pure and "interaction_constraints" in fitted.params


def draft_bundle(
    enc: FeatureEncoder, fitted: Fitted, options: TrainOptions, calibrator: Calibrator | None = None
) -> ModelBundle:
    """A bundle for looking at the booster during training (no cutoff, no bands yet)."""
    spec = DatasetSpec.model_validate({"name": "draft", "label": {"column": "label"}})
    return make_bundle(
        spec,
        enc,
        fitted.booster,
        options,
        calibrator=calibrator or Calibrator("identity"),
        threshold=0.5,
        edges=NO_EDGES,
        group_pure=fitted.capacity.group_pure if calibrator is None else group_pure(fitted),
    )


def make_bundle(
    spec: DatasetSpec,
    enc: FeatureEncoder,
    booster: lgb.Booster,
    options: TrainOptions,
    *,
    calibrator: Calibrator,
    threshold: float,
    edges: tuple[list[float], list[float]],
    group_pure: bool,
) -> ModelBundle:
    meta = BundleMeta(
        name=spec.name,
        encoder=enc.to_dict(),
        calibrator=calibrator.to_dict(),
        threshold=threshold,
        spec=spec.model_dump(mode="json"),
        grade_edges={"fit": edges[0], "engagement": edges[1]},
        grade_bands={"fit": list(FIT_BANDS), "engagement": list(ENGAGEMENT_BANDS)},
        reasons={k: {kk: vv for kk, vv in v.items() if kk != "label"} for k, v in spec.reasons.items()},
        labels={k: v["label"] for k, v in spec.reasons.items() if "label" in v},
        num_threads=options.num_threads,
        group_pure=group_pure,
        cutoff=CutoffFacts(contract=options.contract),
    )
    text = booster.model_to_string(num_iteration=booster.best_iteration or None)
    return ModelBundle(meta, text)
