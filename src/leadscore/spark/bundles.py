"""A model bundle inside Spark: its metadata and booster text broadcast once, the ``ModelBundle``
built once per Python worker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from leadscore.scoring.bundle import ModelBundle

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def bundle_payload(spark: SparkSession, bundle: ModelBundle) -> Any:
    """The bundle's metadata and booster text, broadcast once (shipped with the function on Spark Connect)."""
    payload: Any = (bundle.meta.to_json(), bundle.booster_text, bundle.segment_boosters)
    try:
        return spark.sparkContext.broadcast(payload)
    except Exception:  # Spark Connect: no broadcast on the client; the function carries it once per task
        log.debug("bundle shipped with the function (Spark Connect)")
        return payload


_BUNDLES: dict[str, ModelBundle] = {}


def bundle_of(payload: Any) -> ModelBundle:
    """The bundle, built once per Python worker from the broadcast (or shipped) metadata and booster."""
    meta_json, booster_text, segment_boosters = payload.value if hasattr(payload, "value") else payload
    bundle = _BUNDLES.get(meta_json)  # the metadata names the version, a digest of the booster
    if bundle is None:
        from leadscore.scoring.meta import BundleMeta

        meta = BundleMeta.model_validate_json(meta_json)
        bundle = _BUNDLES[meta_json] = ModelBundle(meta, booster_text, segment_boosters)
    return bundle
