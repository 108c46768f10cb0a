"""``train --sample N`` on an export too big to read: a uniform share of its leads, drawn while streaming.

Before anything is read whole, about ``PREDRAW`` x N leads are drawn uniformly: a lead is kept when
the seeded CRC-32 of its key falls under the share, so a lead's rows (its events, its stage changes)
are kept or left with it, and the same seed draws the same leads. Only their rows are written to a
private folder, streamed in record batches; training then reads that folder as it reads any other
and draws its sample from it (``modeling/sampling.py``). A uniform draw keeps every part of the
split uniform, so the down-sampled fit, the calibration and the contract's rates stay right; each
row then stands for 1 / share of the export's leads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.data.buckets import lead_hashes, lead_keyed, link_others, record_batches, table_schema
from leadscore.data.folders import is_declared_folder
from leadscore.data.sources import count_rows, find_table, parquet_parts, resolve_leads_path
from leadscore.errors import UserError
from leadscore.spec import DatasetSpec

PREDRAW = 3  # leads drawn per lead of the sample: room for the in-memory draw's rates and checks


@dataclass(frozen=True)
class Predrawn:
    """The private folder (or file) of the drawn leads, the share drawn and the export's digest."""

    path: Path
    share: float
    leads: int  # the export's leads
    digest: str  # SHA-256 of the export's leads table (the data the run stands for)

    def note(self) -> str:
        return (
            f"--sample: {self.share:.1%} of the export's {self.leads:,} leads drawn uniformly by a seeded "
            f"hash of their id before reading (a lead with all its rows), each standing for {1 / self.share:,.1f}"
        )


def kept(ids: pd.Series, share: float, seed: int) -> np.ndarray:
    """Whether each id's lead is drawn: the seeded CRC-32 of its lead key under ``share`` of 2^32."""
    return np.asarray(lead_hashes(ids, f"{seed}:".encode()) < share * 2**32)


def predraw(data: Path, spec: DatasetSpec, size: int, seed: int, work: Path) -> Predrawn | None:
    """About ``PREDRAW * size`` of the export's leads with their rows, written under ``work``; None
    when the export is small enough to read whole, or cannot be drawn while streaming (CSV, no id,
    features that read other leads' rows): then it is read whole, as without ``--sample``."""
    tables = _lead_tables(data, spec)
    if not tables:
        return None
    source = next(iter(tables))  # the leads table (a folder without one is read as always, and says so)
    leads = count_rows(source) or 0
    if leads <= PREDRAW * size:
        return None
    share = PREDRAW * size / leads
    digest = _digest(source)
    folder = is_declared_folder(data, spec) or find_table(data, "leads") is not None
    if not folder:  # a flat table (a file, or a folder of its Parquet parts)
        target = work / f"{source.stem}.parquet"
        _drawn_table(source, tables[source], share, seed, target)
        return Predrawn(target, share, leads, digest)
    for path, column in tables.items():
        _drawn_table(path, column, share, seed, work / path.name)
    link_others(data, {path.stem for path in tables}, work)
    return Predrawn(work, share, leads, digest)


def _lead_tables(data: Path, spec: DatasetSpec) -> dict[Path, str] | None:
    """The export's tables keyed by lead (the leads table first) and their id columns, when every
    one is Parquet and no feature reads another lead's rows; else None."""
    if not spec.id:
        return None
    if not is_declared_folder(data, spec):
        source = resolve_leads_path(data)
        return {source: spec.id} if _parquet(source) else None
    try:
        named = lead_keyed(spec)  # the tables a bucket split moves with their leads
    except UserError:  # features that read other leads' rows: read whole
        return None
    found = {find_table(data, stem): column for stem, column in named.items()}
    if None in list(found)[:1]:
        return None
    tables = {path: column for path, column in found.items() if path is not None}
    return tables if all(_parquet(path) for path in tables) else None


def _parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet" or bool(parquet_parts(path))


def _digest(path: Path) -> str:
    """SHA-256 of a table's bytes (every part, in name order), read in blocks."""
    digest = hashlib.sha256()
    for part in parquet_parts(path) if path.is_dir() else [path]:
        with open(part, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 24), b""):
                digest.update(block)
    return digest.hexdigest()


def _drawn_table(path: Path, column: str, share: float, seed: int, target: Path) -> None:
    """The rows of ``path`` whose lead is drawn, streamed into ``target``."""
    with pq.ParquetWriter(target, table_schema(path)) as writer:
        for batch in record_batches(path):
            mask = kept(batch.column(column).to_pandas(), share, seed)
            writer.write_batch(batch.filter(pa.array(mask)))
