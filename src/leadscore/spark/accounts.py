"""A data folder's accounts at their moments with Spark: the rows of
``data.account_table.account_table(folder, spec)`` (training moments with labels, or every account as
of one moment), row for row.

The accounts and opportunities tables (one row per company and per deal, far fewer than leads or
events) are read to the driver and broadcast. Every lead is matched inside Spark by the one matcher
(``data.matching.match_leads`` against the broadcast accounts: a lead's match depends on its own row
and the accounts only), then shuffled with its account into one of ``buckets`` groups (a hash of the
account id); a lead's events follow it there through the join on its id (to the account of the
lead's first row, as the single-machine engine reads a repeated id). Each group is one call of the
single-machine engine (``account_rows``) with the grid of moments and the export day measured over
all groups first, so an account's values depend on its own rows only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from leadscore.data.account_scope import activity_of
from leadscore.data.account_table import (
    ACCOUNT_ID,
    MOMENT,
    ROW,
    account_rows,
    label_of,
    opportunity_times,
    training_moments,
)
from leadscore.data.accounts import (
    accounts_of,
)
from leadscore.data.maturity import parse_observed_until
from leadscore.errors import UserError
from leadscore.features.accounts import AccountActivity
from leadscore.features.rollups import NAT_MS
from leadscore.features.values import to_epoch_ms
from leadscore.scoring.accounts import as_written, scores_of
from leadscore.spark.account_labels import entry_times, stage_entries
from leadscore.spark.bundles import bundle_of, bundle_payload
from leadscore.spark.matched import (
    BUCKETS,
    LEAD_ROW,
    MATCHED,
    OWNER,
    account_events,
    bucket_tables,
    driver_tables,
    matched_leads,
)
from leadscore.spark.session import write_parquet
from leadscore.spark.tables import arrow_cogroup, bucket_count, bucket_of, folder_table, written_counts
from leadscore.spec import DatasetSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

    from leadscore.scoring.bundle import ModelBundle

BUCKET = BUCKETS[0]


@dataclass
class Bucketed:
    """The export ready for the buckets: leads and events keyed by their account's bucket, the
    driver's tables and the moments."""

    leads: DataFrame
    events: DataFrame
    accounts: pd.DataFrame
    opportunities: pd.DataFrame | None
    moments: np.ndarray
    schema: StructType  # the leads' columns (before the bucket)
    entries: pd.DataFrame | None = None  # labels from stages: each entry's account and time


def account_frame(
    spark: SparkSession,
    folder: str,
    spec: DatasetSpec,
    *,
    as_of: float | None = None,
    buckets: int | None = None,
) -> DataFrame:
    """The accounts of ``folder`` at their training moments with their label, or (``as_of``, epoch
    ms) every account with an event by then at that one moment: a lazy Spark DataFrame."""
    b = _bucketed(spark, folder, spec, as_of, buckets)
    labels = as_of is None
    schema = _schema(b.accounts, spec, b.moments, labels, b.schema, b.events.schema)
    fn = _bucket_fn(
        spec.model_dump_json(),
        b.accounts,
        (b.opportunities, b.entries) if labels else None,
        b.moments,
        b.leads.columns,
        [c for c in b.events.columns if c != BUCKET],
        schema,
    )
    return b.leads.groupBy(BUCKET).cogroup(b.events.groupBy(BUCKET)).applyInArrow(fn, schema)


def account_scores_frame(
    spark: SparkSession,
    folder: str,
    bundle: ModelBundle,
    as_of: float,
    *,
    explain: int = 0,
    buckets: int | None = None,
) -> DataFrame:
    """Every account of ``folder`` with an event by ``as_of`` scored by the account model ``bundle``:
    the columns ``score FOLDER --model <account model>`` writes, from the same engine."""
    from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField, StructType

    spec = bundle.spec.account_of
    assert spec is not None
    b = _bucketed(spark, folder, spec, as_of, buckets)
    text = ["account_id", "scored_at"]
    fields = [StructField(c, StringType(), True) for c in text]
    fields += [
        StructField("p_opportunity", DoubleType(), True),
        StructField("qualified", BooleanType(), True),
    ]
    fields += [
        StructField(c, StringType(), True) for c in ["grade", *(f"reason_{k + 1}" for k in range(explain))]
    ]
    fields += [StructField("contacts_engaged", LongType(), True)]
    fields += [StructField(c, StringType(), True) for c in ("roles_engaged", "roles_missing")]
    schema = StructType(fields)
    fn = _bucket_fn(
        spec.model_dump_json(),
        b.accounts,
        None,
        b.moments,
        b.leads.columns,
        [c for c in b.events.columns if c != BUCKET],
        schema,
        (bundle_payload(spark, bundle), explain),
    )
    return b.leads.groupBy(BUCKET).cogroup(b.events.groupBy(BUCKET)).applyInArrow(fn, schema)


def _bucketed(
    spark: SparkSession, folder: str, spec: DatasetSpec, as_of: float | None, buckets: int | None
) -> Bucketed:
    from pyspark.sql import functions as F

    if not spec.id or not spec.time:
        raise UserError(f"spec '{spec.name}': keys 'id' and 'time' are needed to match and date accounts")
    if spec.time_also:
        raise UserError("spec key 'time' lists columns: --engine spark does not read a list yet")
    leads, leads_name = folder_table(spark, folder, spec, "leads")
    accounts, opportunities = driver_tables(spark, folder, spec, leads, leads_name)
    leads = matched_leads(leads, accounts, spec)
    events = account_events(spark, folder, spec, leads)
    from_stages = as_of is None and label_of(spec).opportunities is None
    entries = stage_entries(spark, folder, spec, leads) if from_stages else None
    if as_of is not None:
        moments = np.array([int(as_of)], dtype=np.int64)
    else:
        moments = training_moments(spec, *_bounds(leads, events, spec, opportunities))
    if buckets is None:
        buckets = bucket_count(spark, leads)
    lead_side = leads.where(F.col(MATCHED).isNotNull()).withColumn(BUCKET, bucket_of(F.col(MATCHED), buckets))
    event_side = events.withColumn(BUCKET, bucket_of(F.col(OWNER), buckets)).drop(OWNER)
    return Bucketed(lead_side, event_side, accounts, opportunities, moments, leads.schema, entries)


def score_accounts_spark(
    spark: SparkSession,
    data: str,
    bundle: ModelBundle,
    out: str,
    as_of: float,
    *,
    explain: int = 0,
    buckets: int | None = None,
) -> dict[str, Any]:
    """``account_scores_frame`` written to the Parquet folder ``out``; the summary read back from it."""

    if out.lower().endswith(".csv"):
        raise UserError(f"{out}: --engine spark writes a Parquet folder; give a folder name")
    write_parquet(account_scores_frame(spark, data, bundle, as_of, explain=explain, buckets=buckets), out)
    rows, qualified = written_counts(spark, out, "qualified")
    return {
        "out": out,
        "rows": rows,
        "qualified": qualified,
        "qualified_share": qualified / rows if rows else 0.0,
        "model_version": bundle.version,
        "as_of": pd.Timestamp(int(as_of), unit="ms").isoformat(),
        "engine": "spark",
    }


def _bounds(
    leads: DataFrame, events: DataFrame, spec: DatasetSpec, opportunities: pd.DataFrame | None
) -> tuple[float, float]:
    """The first matched event (where the grid starts) and the export day (the spec's
    ``observed_until``, else the latest matched event, lead or opportunity), read by the project's
    one date rule in each partition."""
    log = spec.activity
    assert log is not None and spec.time
    first, last = _extremes(events, log.time)
    _, created = _extremes(leads, spec.time)
    given = parse_observed_until(spec.observed_until, "spec key 'observed_until'")
    found = [t for t in (last, created) if not np.isnan(t)]
    label = accounts_of(spec).label
    if opportunities is not None and label is not None and label.opportunities is not None:
        opened = to_epoch_ms(opportunities[label.opportunities.time])
        opened = opened[opened != NAT_MS]
        found += [float(opened.max())] if len(opened) else []
    if given is None and not found:
        raise UserError(
            f"spec '{spec.name}': no time in the leads, activity or opportunities to date the export"
        )
    export = given if given is not None else max(found)
    return (first if not np.isnan(first) else export + 1), export


def _extremes(frame: DataFrame, column: str) -> tuple[float, float]:
    """The earliest and latest readable time of ``column`` (NaN when none)."""
    from pyspark.sql.types import DoubleType, StructField, StructType

    schema = StructType([StructField("lo", DoubleType(), True), StructField("hi", DoubleType(), True)])

    def extremes(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            ms = to_epoch_ms(part[column])
            ms = ms[ms != NAT_MS]
            lo, hi = (float(ms.min()), float(ms.max())) if len(ms) else (np.nan, np.nan)
            yield pd.DataFrame({"lo": [lo], "hi": [hi]})

    rows = frame.select(f"`{column}`").mapInPandas(extremes, schema).collect()
    lows = [r["lo"] for r in rows if r["lo"] is not None and not np.isnan(r["lo"])]
    highs = [r["hi"] for r in rows if r["hi"] is not None and not np.isnan(r["hi"])]
    return (min(lows) if lows else np.nan), (max(highs) if highs else np.nan)


def _schema(
    accounts: pd.DataFrame,
    spec: DatasetSpec,
    moments: np.ndarray,
    labels: bool,
    leads: StructType,
    events: StructType,
) -> StructType:
    """The rows' columns and types: those the single-machine engine gives an empty export."""
    from pyspark.sql.types import StructField, StructType

    empty_leads = pd.DataFrame({f.name: pd.Series([], dtype=object) for f in leads.fields})
    empty_events = pd.DataFrame({f.name: pd.Series([], dtype=object) for f in events.fields})
    probe = _rows(spec, accounts, (None, None) if labels else None, moments[:0], empty_leads, empty_events)[0]
    return StructType([StructField(c, _spark_type(probe[c].dtype), True) for c in probe.columns])


def _spark_type(dtype: Any) -> DataType:
    from pyspark.sql.types import (
        BooleanType,
        ByteType,
        DoubleType,
        LongType,
        StringType,
        TimestampNTZType,
    )

    if pd.api.types.is_bool_dtype(dtype):
        return BooleanType()
    if pd.api.types.is_integer_dtype(dtype):
        return ByteType() if np.dtype(dtype).itemsize == 1 else LongType()
    if pd.api.types.is_float_dtype(dtype):
        return DoubleType()
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return TimestampNTZType()
    return StringType()


def _rows(
    spec: DatasetSpec,
    accounts: pd.DataFrame,
    labelled: tuple[pd.DataFrame | None, pd.DataFrame | None] | None,
    moments: np.ndarray,
    leads: pd.DataFrame,
    events: pd.DataFrame,
) -> tuple[pd.DataFrame, AccountActivity, np.ndarray]:
    """One bucket's accounts at the moments: its leads (in export order) and their events, the
    accounts they match (their rows in the whole accounts table kept), by the single-machine engine;
    ``labelled``: the opportunities, or the stage entries, that label them."""
    acc = accounts_of(spec)
    opportunities, entries = labelled if labelled is not None else (None, None)
    tables, events, rows = bucket_tables(spec, accounts, leads, events, opportunities)
    opps = tables.opportunities
    assert spec.activity is not None
    activity = activity_of(events, spec.activity, tables, spec)
    label_times = None
    if labelled is not None:
        label_times = (
            opportunity_times(tables, acc)
            if opps is not None
            else entry_times(tables, spec, entries)
            if entries is not None
            else pd.DataFrame({"row": np.array([], dtype=np.int64), "t": np.array([], dtype=np.int64)})
        )
    frame, _ = account_rows(tables, activity, spec, moments, label_times)
    return frame, activity, rows


def _global_rows(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``ROW`` as the account's row in the whole accounts table (a bucket holds some of them)."""
    return frame.assign(**{ROW: rows[frame[ROW].to_numpy(dtype=np.int64)]}) if len(frame) else frame


def _bucket_fn(
    spec_json: str,
    accounts: pd.DataFrame,
    labelled: tuple[pd.DataFrame | None, pd.DataFrame | None] | None,
    moments: np.ndarray,
    lead_cols: list[str],
    event_cols: list[str],
    out: StructType,
    scoring: tuple[Any, int] | None = None,
) -> Callable[[pa.Table, pa.Table], pa.Table]:
    """The function each bucket runs in a Python worker (the tables travel with it, pickled once per
    task): the accounts' rows (``labelled``: with their labels), or with ``scoring`` (the bundle's
    payload, reasons) their scores; handed over as Arrow."""

    def run(leads_part: pd.DataFrame, events_part: pd.DataFrame) -> pd.DataFrame:
        spec = DatasetSpec.model_validate(json.loads(spec_json))
        leads = leads_part.sort_values(LEAD_ROW, kind="stable")[lead_cols].drop(columns=[BUCKET])
        events = events_part[event_cols] if len(events_part) else pd.DataFrame({c: [] for c in event_cols})
        frame, activity, rows = _rows(spec, accounts, labelled, moments, leads.reset_index(drop=True), events)
        if scoring is None:
            return _global_rows(frame, rows)
        payload, explain = scoring
        return as_written(scores_of(bundle_of(payload), frame, activity, int(moments[0]), explain))

    return arrow_cogroup(run, out)


__all__ = ["ACCOUNT_ID", "MOMENT", "account_frame"]
