"""Features: values parsed the same way everywhere, engagement declared over an activity log and rolled up point in time, the model-row encoder."""

from leadscore.features.encoder import FeatureEncoder, FieldInfo, guess_group, infer_kind
from leadscore.features.rollups import declared_rollups, rollups_for_spec
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
    "FeatureEncoder",
    "FieldInfo",
    "canonical_category",
    "clean_text",
    "dates_ms",
    "declared_rollups",
    "guess_group",
    "infer_kind",
    "is_missing",
    "map_unique",
    "map_values",
    "parse_date",
    "parse_dates",
    "rollups_for_spec",
    "to_epoch_ms",
    "to_number",
]
