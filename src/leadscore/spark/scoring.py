"""Batch scores with Spark: the columns of ``scoring.batch.score_output``, from the same
``ModelBundle``, for every lead of a Parquet table (or a folder of a CRM's own tables) inside Spark.

The bundle (its metadata and booster text, a few MB) is broadcast once; each Python worker builds the
``ModelBundle`` once and reuses it for every Arrow batch of every task it runs (``mapInArrow``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from leadscore.errors import UserError
from leadscore.scoring.batch import PART_COLUMNS, SEGMENT_COLUMNS, TIME_COLUMNS, score_output
from leadscore.scoring.bundle import ModelBundle
from leadscore.spark.bundles import bundle_of, bundle_payload
from leadscore.spark.features import declared_frame, is_declared
from leadscore.spark.session import is_remote, read_table, write_parquet
from leadscore.spark.tables import arrow_schema, to_arrow, written_counts

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)


def leads_frame(
    spark: SparkSession, data: str, bundle: ModelBundle, *, buckets: int | None = None
) -> DataFrame:
    """What the model scores: a folder of declared tables gets its declared engagement (no labels);
    any other DATA is a Parquet file, folder or glob (or a CSV file) read as it is."""
    if bundle.spec.time_also:  # refused rather than scored as of a different moment than elsewhere
        raise UserError(
            "spec key 'time' lists columns: --engine spark does not read a list yet (score without it)"
        )
    if is_declared(spark, data, bundle.spec):
        return declared_frame(spark, data, bundle.spec, labels=False, buckets=buckets)
    if not is_remote(data) and not any(ch in data for ch in "*?[") and not Path(data).exists():
        raise UserError(f"{data}: file not found")
    return read_table(spark, data)


def score_schema(leads: StructType, bundle: ModelBundle, explain: int) -> StructType:
    """The scored table's columns, as the single-machine path writes them."""
    from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType

    fields = []
    if bundle.id_column and bundle.id_column in leads.names:
        fields.append(StructField(bundle.id_column, leads[bundle.id_column].dataType, True))
    fields += [
        StructField("p_sql", DoubleType(), True),
        StructField("mql", BooleanType(), True),
        StructField("grade", StringType(), True),
    ]
    fields += [StructField(f"reason_{k + 1}", StringType(), True) for k in range(explain)]
    fields += [
        StructField(c, StringType() if c.endswith("band") else DoubleType(), True) for c in PART_COLUMNS
    ]
    if bundle.time_head is not None:
        fields += [
            StructField(c, StringType() if c == TIME_COLUMNS[-1] else DoubleType(), True)
            for c in TIME_COLUMNS
        ]
    if bundle.segmented:
        fields += [StructField(c, StringType(), True) for c in SEGMENT_COLUMNS]
    return StructType(fields)


def scored_frame(spark: SparkSession, leads: DataFrame, bundle: ModelBundle, explain: int = 0) -> DataFrame:
    """``leads`` scored inside Spark (lazy), with the model's missing columns named once on the driver."""
    if bundle.id_column and bundle.id_column not in leads.columns:
        raise UserError(f"id column '{bundle.id_column}' is missing")
    missing = [c for c in bundle.fields if c not in leads.columns]
    if missing:
        log.warning(
            "%d model columns missing, scored as missing values: %s", len(missing), ", ".join(missing)
        )
    schema = score_schema(leads.schema, bundle, explain)
    payload = bundle_payload(spark, bundle)
    routing = bundle.reader.by if bundle.reader is not None else []
    wanted = [c for c in leads.columns if c in {*bundle.fields, bundle.id_column, *routing}]
    return leads.select(*[f"`{c}`" for c in wanted]).mapInArrow(_score_fn(payload, explain, schema), schema)


def _score_fn(
    payload: Any, explain: int, schema: StructType
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """Each Arrow batch scored by the single-machine engine: read into pandas as the single-machine
    reader reads a Parquet table (text as Arrow-backed strings, not a Python object per value), and
    handed back as Arrow in the scored table's types."""
    arrow_out = arrow_schema(schema)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        bundle = bundle_of(payload)
        for batch in batches:
            yield from to_arrow(score_output(bundle, batch.to_pandas(), explain), arrow_out).to_batches()

    return run


def score_spark(
    spark: SparkSession,
    data: str,
    bundle: ModelBundle,
    out: str,
    *,
    explain: int = 0,
    buckets: int | None = None,
) -> dict[str, object]:
    """Score every lead of ``data`` inside Spark and write the scored Parquet folder ``out``; the
    summary's counts are read back from what was written (two numbers reach the driver)."""

    if out.lower().endswith(".csv"):
        raise UserError(f"{out}: --engine spark writes a Parquet folder; give a folder name")
    if not is_remote(data) and not is_remote(out):
        if Path(out).resolve() == Path(data).resolve():
            raise UserError(f"{out}: is the input; write the scores to another folder")
    scored = scored_frame(spark, leads_frame(spark, data, bundle, buckets=buckets), bundle, explain)
    write_parquet(scored, out)
    rows, mql = written_counts(spark, out, "mql")
    return {
        "out": out,
        "rows": rows,
        "mql": mql,
        "mql_share": mql / rows if rows else 0.0,
        "model_version": bundle.version,
        "engine": "spark",
    }
