"""The Spark path's small shared parts: a folder's table, a row's bucket, how many buckets, frames
handed back to the JVM and small tables brought to the driver."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from leadscore.errors import UserError
from leadscore.spark.session import read_table, table_path
from leadscore.spec import DatasetSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

LEADS_PER_BUCKET = 50_000  # a bucket's leads and events are one pandas call in one Python worker


def folder_table(spark: SparkSession, folder: str, spec: DatasetSpec, kind: str) -> tuple[DataFrame, str]:
    stem = spec.table(kind)
    path = table_path(folder, stem)
    if path is None:
        raise UserError(
            f"{folder}: no '{stem}' table (.csv, .parquet or a Parquet folder) for spec key 'tables.{kind}'"
        )
    return read_table(spark, path), Path(path).name


def bucket_of(id_column: Any, buckets: int) -> Any:
    """A lead's bucket: the same for the lead and all its rows, whatever the id's type in each table
    (hashed as text, as the single-machine join compares ids)."""
    from pyspark.sql import functions as F

    return F.pmod(F.xxhash64(id_column.cast("string")), F.lit(buckets))


def bucket_count(spark: SparkSession, leads: DataFrame) -> int:
    """About ``LEADS_PER_BUCKET`` leads per bucket, and at least one bucket per core of the cluster (a
    Parquet count reads the footers only)."""
    try:
        cores = int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect: no SparkContext on the client
        cores = int(spark.conf.get("spark.sql.shuffle.partitions") or 200)
    return max(cores, math.ceil(leads.count() / LEADS_PER_BUCKET))


def arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """pandas 3 keeps text in Arrow arrays of several chunks, which PySpark 4 cannot hand back to the
    JVM ("Cannot convert ChunkedArray to Array"): text columns go back as plain Python objects."""
    text = [c for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)]
    if not text:
        return frame
    return frame.astype({c: object for c in text})


def arrow_cogroup(
    run: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame], out: StructType, *, categories: bool = False
) -> Callable[[pa.Table, pa.Table], pa.Table]:
    """A bucket's pandas function as ``cogroup().applyInArrow`` runs it: both sides read into pandas
    from Arrow as the single-machine reader reads Parquet (``categories``: the second side's text
    dictionary-encoded, pandas categories, as the activity log is read), the result handed back in
    ``out``'s Arrow types. No Python object per text value on the way in or out."""
    schema = arrow_schema(out)

    def wrapped(left: pa.Table, right: pa.Table) -> pa.Table:
        if left.num_rows == 0:
            return schema.empty_table()
        return to_arrow(
            run(left.to_pandas(), (_as_categories(right) if categories else right).to_pandas()), schema
        )

    return wrapped


def arrow_schema(out: StructType) -> pa.Schema:
    """A Spark schema as the Arrow schema a Python worker hands rows back in."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(out, timezone="UTC")


def to_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A frame's columns of ``schema``, in its types: how a Python worker hands rows back to the JVM
    (``applyInArrow``, ``mapInArrow``)."""
    return pa.Table.from_pandas(frame[schema.names], preserve_index=False).cast(schema)


def _as_categories(table: pa.Table) -> pa.Table:
    """A table's text columns dictionary-encoded (pandas reads them as categories)."""
    import pyarrow.compute as pc

    columns = [
        pc.dictionary_encode(col)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        else col
        for col in table.columns
    ]
    return pa.table(columns, names=table.column_names)


def on_driver(frame: DataFrame) -> pd.DataFrame:
    """A small table on the driver as the pandas reader gives it (through Arrow: PySpark's own
    pandas conversion warns under pandas 3); times in UTC without a zone, as a Parquet file reads."""
    table = frame.toArrow().to_pandas()
    for column in table.columns:
        if isinstance(table[column].dtype, pd.DatetimeTZDtype):
            table[column] = table[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return table


def written_counts(spark: SparkSession, out: str, flag: str) -> tuple[int, int]:
    """The rows of the Parquet folder just written and how many have ``flag`` true (two numbers
    reach the driver)."""
    from pyspark.sql import functions as F

    counts = read_table(spark, out).agg(F.count(F.lit(1)), F.sum(F.col(flag).cast("long"))).first()
    return (int(counts[0]), int(counts[1] or 0)) if counts is not None else (0, 0)
