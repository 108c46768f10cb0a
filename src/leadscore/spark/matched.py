"""Leads matched to accounts inside Spark, by the one matcher (``data.matching.match_leads``)
against the accounts read to the driver (a lead's match depends on its own row and the accounts
only), and their events keyed by the owner they follow into a bucket: the account of the lead's
first row in the export (as the single-machine engine reads a repeated id), or, for ``scope:
account`` features, the lead itself when it has no account."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leadscore.data.accounts import (
    AccountTables,
    accounts_of,
    check_columns,
    duplicate_ids_line,
    match_columns,
)
from leadscore.data.activity import require_columns
from leadscore.data.matching import Matches, match_leads
from leadscore.errors import UserError
from leadscore.features.values import lead_keys
from leadscore.spark.activity import stacked_logs
from leadscore.spark.tables import arrow_safe, folder_table, on_driver
from leadscore.spec import DatasetSpec, read_columns

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

LEAD_ROW = "_ls_lead_row"
BUCKETS = ("_ls_bucket", "_ls_scope_bucket")  # the account and scope paths' bucket columns
MATCHED = "_ls_account"
OWNER = "_ls_owner"


def driver_tables(
    spark: SparkSession,
    folder: str,
    spec: DatasetSpec,
    leads: DataFrame,
    leads_name: str,
    *,
    opportunities: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The accounts and (``opportunities``) the opportunities of known accounts, checked as the
    single-machine reader checks them."""
    acc = accounts_of(spec)
    accounts_frame, accounts_name = folder_table(spark, folder, spec, "accounts")
    accounts = on_driver(accounts_frame)
    check_columns(spec, pd.DataFrame(columns=leads.columns), leads_name, accounts, accounts_name)
    problem = duplicate_ids_line(accounts, acc.id, accounts_name)
    if problem:
        raise UserError(problem)
    label = acc.label
    if not opportunities or label is None or label.opportunities is None:
        return accounts, None
    table, name = folder_table(spark, folder, spec, "opportunities")
    named = label.opportunities
    require_columns(table.columns, name, "accounts.label.opportunities", named.model_dump())
    opps = on_driver(table.select(f"`{named.id}`", f"`{named.time}`"))
    keys = lead_keys(opps[named.id])
    known = keys.isin(set(lead_keys(accounts[acc.id])))
    return accounts, opps.loc[known.to_numpy()].reset_index(drop=True)


def matched_leads(
    leads: DataFrame, accounts: pd.DataFrame, spec: DatasetSpec, *, every_column: bool = False
) -> DataFrame:
    """The leads with their row in the export and their account (null: unmatched), by the one
    matcher: with the columns the account engine reads, or ``every_column``."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    acc = accounts_of(spec)
    cols = match_columns(spec, accounts)
    wanted = [spec.id, spec.time, *(c for role in acc.roles.values() for c in role)]
    wanted += [c for c in (cols.lead_account, cols.email, cols.company) if c]
    keep = list(leads.columns) if every_column else list(dict.fromkeys(c for c in wanted if c))
    numbered = leads.select(*[F.col(f"`{c}`") for c in keep]).withColumn(
        LEAD_ROW, F.monotonically_increasing_id()
    )
    schema = StructType([*numbered.schema.fields, StructField(MATCHED, StringType(), True)])

    def match(parts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for part in parts:
            found = match_leads(part, accounts, cols).frame["account_id"].to_numpy(dtype=object)
            yield arrow_safe(part.assign(**{MATCHED: found}))

    return numbered.mapInPandas(match, schema)


def owner_of(spec: DatasetSpec) -> Column:
    """What a lead's rows follow into a bucket: its account, else (``scope: account``) itself."""
    from pyspark.sql import functions as F

    assert spec.id
    return F.coalesce(F.col(MATCHED), F.concat(F.lit("\x00"), F.col(f"`{spec.id}`").cast("string")))


def account_events(
    spark: SparkSession, folder: str, spec: DatasetSpec, leads: DataFrame, *, alone: bool = False
) -> DataFrame:
    """The leads' events with the columns the definitions read and each event's ``OWNER``: the
    account of its lead's first row in the export (events of leads without one are left out), or
    with ``alone`` the lead itself when it has no account (``owner_of``)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    acc = accounts_of(spec)
    log = spec.activity
    if log is None:
        raise UserError("spec key 'events': account engagement needs the activity log's columns")
    attributes = read_columns({**spec.definitions, **acc.engagement})
    if log.log is None:
        events, name = folder_table(spark, folder, spec, "events")
        require_columns(events.columns, name, "events", {"id": log.id, "time": log.time, "type": log.type})
    else:
        events, name = stacked_logs(spark, folder, spec, leads, attributes)
    columns = [log.id, log.time, log.type, *([log.log] if log.log else [])]
    columns += [c for c in attributes if c not in columns and c in events.columns]
    assert spec.id
    first = Window.partitionBy(F.col(f"`{spec.id}`")).orderBy(F.col(LEAD_ROW))
    firsts = leads.withColumn("_ls_first", F.row_number().over(first)).where(F.col("_ls_first") == 1)
    if not alone:
        firsts = firsts.where(F.col(MATCHED).isNotNull())
    owners = firsts.select(
        F.col(f"`{spec.id}`").cast("string").alias("_ls_lead"), owner_of(spec).alias(OWNER)
    )
    selected = events.select(*[F.col(f"`{c}`") for c in columns])
    joined = selected.join(owners, selected[f"`{log.id}`"].cast("string") == owners["_ls_lead"], "inner")
    return joined.drop("_ls_lead")


def bucket_tables(
    spec: DatasetSpec,
    accounts: pd.DataFrame,
    leads: pd.DataFrame,
    events: pd.DataFrame,
    opportunities: pd.DataFrame | None = None,
) -> tuple[AccountTables, pd.DataFrame, np.ndarray]:
    """One bucket as the single-machine engine reads a folder: its leads (in export order, as
    matched), the accounts they match and (``opportunities``) those accounts' opportunities; with
    the events, and ``rows``, the matched accounts' rows in the whole accounts table. Lead ids are
    put in one form in the leads and the events (a table may type them as the other does not: 7
    and "7")."""
    acc = accounts_of(spec)
    assert spec.id and spec.activity is not None
    index = pd.Index(lead_keys(accounts[acc.id]).to_numpy(dtype=object))
    wanted = pd.unique(leads[MATCHED].dropna().to_numpy(dtype=object))
    rows = np.sort(index.get_indexer(wanted))
    matched = pd.DataFrame(
        {
            "lead_id": lead_keys(leads[spec.id]).to_numpy(dtype=object),
            "account_id": leads[MATCHED].to_numpy(dtype=object),
            "method": "id",
        }
    )
    own = leads.drop(columns=[MATCHED, LEAD_ROW, *BUCKETS], errors="ignore").assign(
        **{spec.id: matched["lead_id"]}
    )
    keyed = events.assign(**{spec.activity.id: lead_keys(events[spec.activity.id]).to_numpy(dtype=object)})
    opps = None
    if opportunities is not None and acc.label is not None and acc.label.opportunities is not None:
        keys = lead_keys(opportunities[acc.label.opportunities.id])
        opps = opportunities.loc[keys.isin(set(wanted)).to_numpy()].reset_index(drop=True)
    tables = AccountTables(own, accounts.iloc[rows].reset_index(drop=True), opps, Matches(matched, {}))
    return tables, keyed, rows
