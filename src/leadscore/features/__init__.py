"""Features: values parsed the same way everywhere, point-in-time engagement roll-ups, the model-row encoder."""

from leadscore.features.encoder import FeatureEncoder, FieldInfo, guess_group, infer_kind
from leadscore.features.rollups import ENGAGEMENT_COLUMNS, EVENT_TYPES, FUNNEL_STAGES, engagement_rollups
from leadscore.features.values import (
    canonical_category,
    clean_text,
    dates_ms,
    is_missing,
    map_unique,
    map_values,
    parse_date,
    parse_dates,
    to_epoch_ms,
    to_number,
)

__all__ = [
    "ENGAGEMENT_COLUMNS",
    "EVENT_TYPES",
    "FUNNEL_STAGES",
    "FeatureEncoder",
    "FieldInfo",
    "canonical_category",
    "clean_text",
    "dates_ms",
    "engagement_rollups",
    "guess_group",
    "infer_kind",
    "is_missing",
    "map_unique",
    "map_values",
    "parse_date",
    "parse_dates",
    "to_epoch_ms",
    "to_number",
]
