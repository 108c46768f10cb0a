"""Account labels from the status history with Spark (``accounts.label.stages``): each time one of an
account's leads entered one of the label's stages, as the single-machine engine reads them
(``data.account_table``): the history's stage changes (``stages.where``), the stages compared as
written trimmed and case-folded, each entry's lead keyed by the one rule for ids and given the
account of its first row in the export. The entries are few (a lead enters SQL once or twice) and
go to the driver; every bucket reads those of its accounts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leadscore.data.account_table import ACCOUNT_ID, label_stage_entries, label_times
from leadscore.data.accounts import AccountTables, accounts_of
from leadscore.data.activity import require_columns
from leadscore.data.history import stage_rows
from leadscore.errors import UserError
from leadscore.features.values import lead_keys
from leadscore.spark.matched import LEAD_ROW, MATCHED
from leadscore.spark.tables import folder_table, on_driver
from leadscore.spec import DatasetSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

KEY = "_ls_key"


def stage_entries(spark: SparkSession, folder: str, spec: DatasetSpec, leads: DataFrame) -> pd.DataFrame:
    """Every entry into a label stage by a matched lead: its account's key and its time (epoch ms)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    acc = accounts_of(spec)
    log = spec.stages
    assert acc.label is not None and acc.label.stages and spec.id
    if log is None:
        raise UserError("spec key 'accounts.label.stages': the spec declares no status history ('stages')")
    history, name = folder_table(spark, folder, spec, "stages")
    require_columns(history.columns, name, "stages", log.columns())
    where = log.wanted()
    columns = list(dict.fromkeys([log.id, log.time, log.stage, *where]))
    schema = StructType([StructField(KEY, StringType(), True), StructField("t", LongType(), True)])

    def entered(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            rows = stage_rows(part, where, name) if where else part
            yield label_stage_entries(rows, spec).rename(columns={"lead": KEY})

    first = Window.partitionBy(F.col(f"`{spec.id}`")).orderBy(F.col(LEAD_ROW))
    firsts = leads.withColumn("_ls_first", F.row_number().over(first)).where(
        (F.col("_ls_first") == 1) & F.col(MATCHED).isNotNull()
    )
    lead_id = spec.id
    owners_schema = StructType(
        [StructField(KEY, StringType(), True), StructField(ACCOUNT_ID, StringType(), True)]
    )

    def keyed(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            keys = lead_keys(part[lead_id]).to_numpy(dtype=object)
            yield pd.DataFrame({KEY: keys, ACCOUNT_ID: part[MATCHED].to_numpy(dtype=object)})

    owners = firsts.select(F.col(f"`{lead_id}`"), F.col(MATCHED)).mapInPandas(keyed, owners_schema)
    entries = history.select(*[F.col(f"`{c}`") for c in columns]).mapInPandas(entered, schema)
    return on_driver(entries.join(owners, KEY, "inner").select(ACCOUNT_ID, "t"))


def entry_times(tables: AccountTables, spec: DatasetSpec, entries: pd.DataFrame) -> pd.DataFrame:
    """The label events of one bucket's accounts: each entry's account row (-1: another bucket's)."""
    accounts = entries[ACCOUNT_ID].to_numpy(dtype=object)
    return label_times(tables, accounts_of(spec), accounts, entries["t"].to_numpy(dtype=np.int64))
