"""A lead's ``scope: account`` features with Spark: the rows of
``data.account_scope.with_account_scope``, row for row.

The leads (with their lead-scope features already) are matched by the one matcher and shuffled with
their account's other leads into one of ``buckets`` groups (a hash of the account id; a lead without
an account is its own account of one, keyed by its id), their events following through the join on
the lead id. Each group is one call of the single-machine engine (``AccountScope``) over the leads
and events it holds: a lead's values depend on its account's rows only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.data.account_scope import activity_of
from leadscore.data.accounts import accounts_of
from leadscore.features.account_scope import AccountScope
from leadscore.features.accounts import lead_rows
from leadscore.features.values import to_epoch_ms
from leadscore.spark.matched import (
    BUCKETS,
    LEAD_ROW,
    OWNER,
    account_events,
    bucket_tables,
    driver_tables,
    matched_leads,
    owner_of,
)
from leadscore.spark.tables import arrow_cogroup, bucket_count, bucket_of
from leadscore.spec import Aggregation, DatasetSpec
from leadscore.spec.activity import definitions_by_log

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

BUCKET = BUCKETS[1]  # a bucket column of its own: the leads arrive with the account path's


def with_scope(
    spark: SparkSession,
    folder: str,
    spec: DatasetSpec,
    frame: DataFrame,
    leads_name: str,
    buckets: int | None,
) -> DataFrame:
    """``frame`` (the leads, each at its scoring time) with every ``scope: account`` feature."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructField, StructType

    definitions = spec.declared_account
    accounts_of(spec)
    assert spec.id and spec.time and spec.activity is not None
    if spec.moments is not None:
        from leadscore.errors import UserError

        raise UserError("spec key 'moments': scope: account features are read at each lead's own time only")
    accounts, _ = driver_tables(spark, folder, spec, frame, leads_name, opportunities=False)
    leads = matched_leads(frame, accounts, spec, every_column=True)
    events = account_events(spark, folder, spec, leads, alone=True)
    if buckets is None:
        buckets = bucket_count(spark, leads)
    lead_side = leads.withColumn(BUCKET, bucket_of(owner_of(spec), buckets))
    event_side = events.withColumn(BUCKET, bucket_of(F.col(OWNER), buckets)).drop(OWNER)
    kept = [f for f in frame.schema.fields if f.name not in definitions]
    schema = StructType([*kept, *(StructField(n, _scope_type(d), True) for n, d in definitions.items())])
    fn = _bucket_fn(
        spec.model_dump_json(),
        accounts,
        lead_side.columns,
        [c for c in event_side.columns if c != BUCKET],
        schema,
    )
    return lead_side.groupBy(BUCKET).cogroup(event_side.groupBy(BUCKET)).applyInArrow(fn, schema)


def _scope_type(d: Aggregation) -> DataType:
    from pyspark.sql.types import DoubleType, LongType

    if d.kind in ("count", "returns", "contacts", "roles", "new_contacts") and not d.half_life_days:
        return LongType()
    return DoubleType()


def _bucket_fn(
    spec_json: str, accounts: pd.DataFrame, lead_cols: list[str], event_cols: list[str], schema: StructType
) -> Callable[[pa.Table, pa.Table], pa.Table]:
    """The function each bucket runs in a Python worker: its leads (in export order) with their
    ``scope: account`` features over the leads and events of the bucket, handed over as Arrow."""
    out_cols = schema.names

    def run(leads_part: pd.DataFrame, events_part: pd.DataFrame) -> pd.DataFrame:
        spec = DatasetSpec.model_validate(json.loads(spec_json))
        leads = leads_part.sort_values(LEAD_ROW, kind="stable")[lead_cols].reset_index(drop=True)
        events = events_part[event_cols] if len(events_part) else pd.DataFrame({c: [] for c in event_cols})
        values = _values(spec, accounts, leads, events)
        out = pd.concat(
            [leads.drop(columns=[c for c in values.columns if c in leads.columns]), values], axis=1
        )
        return out[out_cols]

    return arrow_cogroup(run, schema)


def _values(
    spec: DatasetSpec, accounts: pd.DataFrame, leads: pd.DataFrame, events: pd.DataFrame
) -> pd.DataFrame:
    """The bucket's leads' ``scope: account`` features (rows in the leads' order)."""
    assert spec.id and spec.time and spec.activity is not None
    definitions = spec.declared_account
    tables, events, _ = bucket_tables(spec, accounts, leads, events)
    own = tables.leads
    activity = activity_of(events, spec.activity, tables, spec, alone=True)
    log_of = definitions_by_log(definitions, spec.logs) if spec.activity.log is not None else None
    scope = AccountScope(activity, definitions, log_of)
    anchor = lead_rows(own[spec.id], own[spec.id])
    return scope.at(anchor.astype(np.int64), to_epoch_ms(leads[spec.time]))
