"""A data folder's declared features (and labels) with Spark: the same training table as
``data.declared.read_leads(folder, spec, labels=True)``, row for row.

Spark reads the leads, the activity log and the status history, keeps only the columns the spec
uses, and shuffles every lead with its own events and stage changes into one of ``buckets`` groups
(a hash of the lead id as text). Each group is one call of the single-machine engine
(``engagement_from``, ``labels_from``) on pandas frames, so a feature has one definition, and a
lead's values depend on its own rows only: the split into buckets changes nothing. The driver holds
the plan and a few counts, never rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from leadscore.data.activity import require_columns
from leadscore.data.folders import (
    check_definitions,
    engagement_from,
    labels_from,
)
from leadscore.data.history import require_where
from leadscore.errors import UserError
from leadscore.spark.account_scope import with_scope
from leadscore.spark.activity import stacked_logs
from leadscore.spark.session import is_remote, read_table, table_path
from leadscore.spark.tables import arrow_cogroup, bucket_count, bucket_of, folder_table
from leadscore.spec import ANY, Aggregation, DatasetSpec, read_columns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

BUCKET = "_ls_bucket"
ROW = "_ls_row"
KIND = "_ls_kind"


def is_declared(spark: SparkSession, data: str, spec: DatasetSpec) -> bool:
    """A folder of a CRM's own tables (the spec declares engagement or stage labels, and the folder has
    its leads table), not a single table to score as it is."""
    if not (spec.definitions or spec.label.stages):
        return False
    if is_remote(data):  # one cheap look at the cluster's storage: is there a leads table inside?
        try:
            read_table(spark, f"{data.rstrip('/')}/{spec.table('leads')}.parquet")
        except UserError:
            return False
        return True
    return Path(data).is_dir() and table_path(data, spec.table("leads")) is not None


def declared_frame(
    spark: SparkSession, folder: str, spec: DatasetSpec, *, labels: bool = True, buckets: int | None = None
) -> DataFrame:
    """The leads of ``folder`` with the spec's declared engagement (``scope: account`` features too)
    and, with ``labels``, the label from the status history, as a Spark DataFrame (lazy: nothing is
    computed until it is written)."""
    leads, leads_name = folder_table(spark, folder, spec, "leads")
    frame = _own_rows(spark, folder, spec, leads, leads_name, labels, buckets)
    if not spec.declared_account:
        return frame
    scoped = with_scope(spark, folder, spec, frame, leads_name, buckets)
    label = spec.label.column
    if label in scoped.columns and label not in leads.columns:  # the label last, as the pandas engine
        return scoped.select(*[f"`{c}`" for c in scoped.columns if c != label], f"`{label}`")
    return scoped


def _own_rows(
    spark: SparkSession,
    folder: str,
    spec: DatasetSpec,
    leads: DataFrame,
    leads_name: str,
    labels: bool,
    buckets: int | None,
) -> DataFrame:
    """The leads with the features of their own rows (events, stage changes), bucketed by lead."""
    from pyspark.sql import functions as F

    if not spec.id or not spec.time:
        raise UserError(
            "spec keys 'id' and 'time': needed to roll up activity as of each lead's scoring time"
        )
    if spec.moments is not None:
        raise UserError("spec key 'moments': several scoring moments are read by the pandas engine only")
    for key, column in (("id", spec.id), ("time", spec.time)):
        if column not in leads.columns:
            raise UserError(f"spec key '{key}': column '{column}' is not in {leads_name}")
    use_labels = labels and bool(spec.label.stages)
    if not (spec.declared or use_labels):
        return leads
    # Each table checked first (a bad spec fails before any job over the rows), then bucketed.
    tables: list[tuple[DataFrame, list[str], str, str]] = []
    event_cols: list[str] = []
    stage_cols: list[str] = []
    events_schema = None
    if spec.declared:
        events, event_cols, events_id = _events(spark, folder, spec, leads)
        events_schema = events.schema
        tables.append((events, event_cols, "e", events_id))
    if use_labels:
        history, stage_cols, history_id = _history(spark, folder, spec)
        tables.append((history, stage_cols, "s", history_id))
    if buckets is None:
        buckets = bucket_count(spark, leads)
    id_type = leads.schema[spec.id].dataType
    sides = [_side(frame, cols, kind, id_col, id_type, buckets) for frame, cols, kind, id_col in tables]
    side = sides[0] if len(sides) == 1 else sides[0].unionByName(sides[1], allowMissingColumns=True)
    keyed = leads.withColumn(ROW, F.monotonically_increasing_id()).withColumn(
        BUCKET, bucket_of(F.col(f"`{spec.id}`"), buckets)
    )
    schema = output_schema(leads.schema, events_schema, spec, use_labels)
    fn = _bucket_fn(spec.model_dump_json(), leads.columns, event_cols, stage_cols, use_labels, schema)
    return keyed.groupBy(BUCKET).cogroup(side.groupBy(BUCKET)).applyInArrow(fn, schema)


def _events(
    spark: SparkSession, folder: str, spec: DatasetSpec, leads: DataFrame
) -> tuple[DataFrame, list[str], str]:
    """The activity with only the columns the declarations read, checked as the single-machine path
    checks it (a missing column or an event type that never occurs is one line naming its key): one
    plain log as it is, several stacked under ``spec.activity``'s columns (``spark/activity.py``)."""
    from pyspark.sql import functions as F

    log = spec.activity
    if log is None:
        raise UserError(
            "spec key 'events': declared engagement needs the activity log's columns (events: {id, time, type})"
        )
    attributes = read_columns(spec.declared)
    if log.log is None:
        events, name = folder_table(spark, folder, spec, "events")
        require_columns(events.columns, name, "events", {"id": log.id, "time": log.time, "type": log.type})
    else:
        events, name = stacked_logs(spark, folder, spec, leads, attributes)
    _check_types(events, name, spec)
    columns = [log.id, log.time, log.type, *([log.log] if log.log else [])]
    columns += [c for c in attributes if c not in columns and c in events.columns]
    return events.select(*[F.col(f"`{c}`") for c in columns]), columns, log.id


def _check_types(events: DataFrame, name: str, spec: DatasetSpec) -> None:
    """The event types the definitions name occur in their logs (a few strings reach the driver)."""
    from pyspark.sql import functions as F

    log = spec.activity
    assert log is not None
    wanted = {t.strip().casefold() for d in spec.declared.values() for t in d.types} - {ANY}
    folded = F.lower(F.trim(F.col(f"`{log.type}`")))
    if log.log is None:
        rows = events.select(folded).where(folded.isin(sorted(wanted))).distinct().collect() if wanted else []
        check_definitions(events.columns, {r[0] for r in rows}, name, spec)
        return
    found = events.select(F.col(f"`{log.log}`"), folded).where(folded.isin(sorted(wanted))).distinct()
    present = {(r[0], r[1]) for r in found.collect()} if wanted else set()
    of = spec.log_of()
    for log_name in spec.logs:
        only = {d for d, owner in of.items() if owner == log_name}
        types = {t for owner, t in present if owner == log_name}
        if spec.logs[log_name].optional and not types:
            continue  # an optional log this export lacks (or none of its types): nothing to check
        check_definitions(events.columns, types, f"log '{log_name}' ({name})", spec, only)


def _history(spark: SparkSession, folder: str, spec: DatasetSpec) -> tuple[DataFrame, list[str], str]:
    from pyspark.sql import functions as F

    log = spec.stages
    if log is None:
        raise UserError(
            "spec key 'stages': labels from stages need the status history's columns (stages: {id, time, stage})"
        )
    history, name = folder_table(spark, folder, spec, "stages")
    require_columns(history.columns, name, "stages", log.columns())
    require_where(history.columns, log.wanted(), name)
    for col, values in log.wanted().items():  # stages.where: only these rows are stage changes
        history = history.where(F.lower(F.trim(F.col(f"`{col}`").cast("string"))).isin(sorted(values)))
    wanted = sorted({s.strip().casefold() for s in spec.label.stages or []})
    folded = F.lower(F.trim(F.col(f"`{log.stage}`").cast("string")))
    if not history.where(folded.isin(wanted)).limit(1).count():
        raise UserError(
            f"spec key 'label.stages': none of {', '.join(spec.label.stages or [])} occurs in {name}"
        )
    columns = list(dict.fromkeys([log.id, log.time, log.stage]))
    return history.select(*[F.col(f"`{c}`") for c in columns]), columns, log.id


def _side(
    frame: DataFrame, columns: list[str], kind: str, id_column: str, id_type: DataType, buckets: int
) -> DataFrame:
    """One table's rows renamed to positional names (so the activity log and the status history can be
    one union whatever their columns are called), with their kind and their lead's bucket. An id
    read as text (a CSV table) is read as the leads' id type, as the single-machine reader infers it."""
    from pyspark.sql import functions as F

    ident = F.col(f"`{id_column}`")
    if frame.schema[id_column].dataType != id_type:
        ident = ident.cast(id_type)
    selected = [ident if c == id_column else F.col(f"`{c}`") for c in columns]
    return frame.select(
        *[col.alias(f"_{kind}{i}") for i, col in enumerate(selected)],
        F.lit(kind).alias(KIND),
        bucket_of(ident, buckets).alias(BUCKET),
    )


def output_schema(
    leads: StructType, events: StructType | None, spec: DatasetSpec, labels: bool
) -> StructType:
    """The training table's columns, in the single-machine order: the leads' columns (a declared name
    replaced), each declared feature, then the label (in place when the leads already have one)."""
    from pyspark.sql.types import LongType, StructField, StructType

    fields = [f for f in leads.fields if f.name not in spec.declared]
    for name, d in spec.declared.items():
        fields.append(StructField(name, _feature_type(d, events), True))
    if labels:
        label = StructField(spec.label.column, LongType(), True)
        names = [f.name for f in fields]
        if label.name in names:
            fields[names.index(label.name)] = label
        else:
            fields.append(label)
    return StructType(fields)


def _feature_type(d: Aggregation, events: StructType | None) -> DataType:
    from pyspark.sql.types import DoubleType, LongType, StringType

    if d.kind in ("returns", "distinct_days", "unique") or (d.kind == "count" and not d.half_life_days):
        return LongType()
    if d.kind == "last":
        if events is not None and d.attribute in events.names:
            return events[d.attribute].dataType
        return StringType()
    return DoubleType()


def _bucket_fn(
    spec_json: str,
    lead_cols: list[str],
    event_cols: list[str],
    stage_cols: list[str],
    labels: bool,
    out_schema: StructType,
) -> Callable[[pa.Table, pa.Table], pa.Table]:
    """The function each bucket runs in a Python worker: the single-machine engine on its leads
    (in their order in the export, so a duplicated id keeps its first row's time) and their rows,
    handed over as Arrow (the side rows' text as categories, as the single-machine reader reads it)."""
    out_cols = out_schema.names

    def run(leads_part: pd.DataFrame, side: pd.DataFrame) -> pd.DataFrame:
        spec = _spec(spec_json)
        leads = leads_part.sort_values(ROW, kind="stable")[lead_cols].reset_index(drop=True)
        kind = side[KIND] if KIND in side.columns else pd.Series([], dtype=object)
        if event_cols:
            leads = engagement_from(leads, _rows(side, kind, "e", event_cols), spec)
        if labels:
            leads = labels_from(leads, _rows(side, kind, "s", stage_cols), spec)[0]
        return leads[out_cols]

    return arrow_cogroup(run, out_schema, categories=True)


def _rows(side: pd.DataFrame, kind: pd.Series, which: str, columns: list[str]) -> pd.DataFrame:
    positional = [f"_{which}{i}" for i in range(len(columns))]
    if not len(side) or positional[0] not in side.columns:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    rows = side.loc[(kind == which).to_numpy(), positional].reset_index(drop=True)
    rows.columns = columns
    return rows


_SPECS: dict[str, DatasetSpec] = {}


def _spec(spec_json: str) -> DatasetSpec:
    """The spec, parsed once per Python worker (workers are reused across tasks)."""
    spec = _SPECS.get(spec_json)
    if spec is None:
        spec = _SPECS[spec_json] = DatasetSpec.model_validate(json.loads(spec_json))
    return spec
