"""Several activity logs read into one activity table inside Spark, as ``data/activity.py`` does on
one machine: each log's own columns renamed to ``spec.activity``'s, a log keyed by email joined to the
leads by the email written the same once case and spaces are ignored, the logs stacked by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from leadscore.data.activity import log_key, require_columns
from leadscore.data.personal import email_column
from leadscore.errors import UserError
from leadscore.spark.session import read_table, table_path
from leadscore.spec import DatasetSpec, EventLog

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

EMAIL_SAMPLE = 1_000  # leads read to find the email column by its values when the spec names none


def stacked_logs(
    spark: SparkSession, folder: str, spec: DatasetSpec, leads: DataFrame, attributes: list[str]
) -> tuple[DataFrame, str]:
    """Every log of ``spec`` in one DataFrame: the activity columns, then ``attributes`` (null in a
    log without them); and the files' names."""
    from pyspark.sql import functions as F

    columns = spec.activity
    assert columns is not None and columns.log is not None
    parts: list[DataFrame] = []
    names: list[str] = []
    for name, log in spec.logs.items():
        key = log_key(spec, name)
        stem = spec.log_table(name)
        path = table_path(folder, stem)
        if path is None and log.optional:  # an export without it: an empty log
            names.append(f"{stem} (absent)")
            parts.append(_empty(spark, spec, attributes))
            continue
        if path is None:
            raise UserError(
                f"{folder}: no '{stem}' table (.csv, .parquet or a Parquet folder) for spec key '{key}.table'"
            )
        table = read_table(spark, path)
        file_name = path.rstrip("/").rsplit("/", 1)[-1]
        require_columns(table.columns, file_name, key, log.columns())
        if log.join is not None:
            table = _joined(spark, folder, table, log, key, file_name)
        parts.append(_renamed(table, log, name, spec, leads, attributes, key))
        names.append(file_name)
    stacked = parts[0]
    for part in parts[1:]:
        stacked = stacked.unionByName(part, allowMissingColumns=True)
    for column in attributes:  # a column no present log has (an absent optional one's)
        if column not in stacked.columns:
            stacked = stacked.withColumn(column, F.lit(None).cast("string"))
    return stacked, ", ".join(names)


def _joined(
    spark: SparkSession, folder: str, table: DataFrame, log: EventLog, key: str, source: str
) -> DataFrame:
    """``table`` with the columns of the rows its ``join.by`` column names, as ``<table>.<column>``."""
    from pyspark.sql import functions as F

    join = log.join
    assert join is not None
    require_columns(table.columns, source, f"{key}.join", {"by": join.by})
    path = table_path(folder, join.table)
    if path is None:
        raise UserError(
            f"{folder}: no '{join.table}' table (.csv, .parquet or a Parquet folder) for spec key '{key}.join.table'"
        )
    other = read_table(spark, path)
    require_columns(other.columns, path.rstrip("/").rsplit("/", 1)[-1], f"{key}.join", {"id": join.id})
    other = other.dropDuplicates([join.id]).select(
        F.col(f"`{join.id}`").cast("string").alias("_ls_join"),
        *[F.col(f"`{c}`").alias(f"{join.table}.{c}") for c in other.columns],
    )
    keyed = table.withColumn("_ls_join", F.col(f"`{join.by}`").cast("string"))
    return keyed.join(other, "_ls_join", "left").drop("_ls_join")


def _empty(spark: SparkSession, spec: DatasetSpec, attributes: list[str]) -> DataFrame:
    from pyspark.sql.types import StringType, StructField, StructType

    columns = spec.activity
    assert columns is not None and columns.log is not None
    names = [columns.id, columns.time, columns.type, columns.log]
    return spark.createDataFrame([], StructType([StructField(n, StringType()) for n in names]))


def _renamed(
    table: DataFrame,
    log: EventLog,
    name: str,
    spec: DatasetSpec,
    leads: DataFrame,
    attributes: list[str],
    key: str,
) -> DataFrame:
    from pyspark.sql import functions as F

    columns = spec.activity
    assert columns is not None and columns.log is not None
    if log.email is not None:
        table = _with_lead_ids(table, log.email, spec, leads, key)
        ident: Column = F.col("_ls_lead")
    else:
        ident = F.col(f"`{log.id}`")
    kind = F.col(f"`{log.type}`").cast("string") if log.type else F.lit(log.type_value)
    selected = [
        ident.cast("string").alias(columns.id),
        F.col(f"`{log.time}`").cast("string").alias(columns.time),
        kind.alias(columns.type),
        F.lit(name).alias(columns.log),
        *[F.col(f"`{c}`") for c in attributes if c in table.columns],
    ]
    return table.select(*selected)


def _with_lead_ids(table: DataFrame, email: str, spec: DatasetSpec, leads: DataFrame, key: str) -> DataFrame:
    """``table`` with each row's lead id (``_ls_lead``) by its email: the first lead with that email."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    assert spec.id is not None
    text = [F.col(f"`{c}`").cast("string").alias(c) for c in leads.columns]
    rows = [tuple(r) for r in leads.select(*text).limit(EMAIL_SAMPLE).collect()]
    column = email_column(pd.DataFrame.from_records(rows, columns=leads.columns), spec.email)
    if column is None:
        where = f"column '{spec.email}' is not in the leads table" if spec.email else "no email column found"
        raise UserError(f"spec key '{key}.email': joins by the leads' email, but {where} (spec key 'email')")

    def folded(col: str) -> Column:
        return F.lower(F.trim(F.regexp_replace(F.col(f"`{col}`").cast("string"), r"\s+", " ")))

    first = Window.partitionBy("_ls_email").orderBy(F.monotonically_increasing_id())
    by_email = (
        leads.select(folded(column).alias("_ls_email"), F.col(f"`{spec.id}`").alias("_ls_lead"))
        .where(F.col("_ls_email").isNotNull() & (F.col("_ls_email") != ""))
        .withColumn("_ls_n", F.row_number().over(first))
        .where(F.col("_ls_n") == 1)
        .drop("_ls_n")
    )
    return table.withColumn("_ls_email", folded(email)).join(by_email, "_ls_email", "left")
