"""``train --sample N`` on an export too big to read: its possible SQLs and a uniform share of the
rest, drawn while streaming.

Before anything is read whole, two kinds of leads are drawn:

- **possible SQLs**: a thin read of the columns the label is made of (the label column, the
  lifecycle date columns, or the status history's lead and stage) finds each lead that could be an
  SQL (a superset: the label window and the scoring time are not read yet). Every one is drawn,
  up to about N of them (more, and a seeded share of them is drawn: a sample of SQLs alone would
  leave its non-SQLs no room). A rare SQL rate keeps every SQL this way, not a share of them;
- **a uniform share** of every lead, about ``PREDRAW`` x N: a lead is drawn when the seeded CRC-32
  of its key falls under the share.

A lead's rows (its events, its stage changes) are kept or left with it, and the same seed draws the
same leads. Only their rows are written to a private folder, streamed in record batches; training
then reads that folder as it reads any other and draws its sample from it (``modeling/sampling.py``).
Each row stands for as many of the export's leads as its chance to be drawn says: a possible SQL for
itself when all were drawn, any other lead for 1 / share. The uniform part is marked (``Predrawn.uniform``): the
validation and test leads are taken from it alone, so calibration, the contract's rates and every
test figure are measured on leads drawn like the export's own; the fit rows use every lead drawn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.data.buckets import (
    lead_hashes,
    lead_keyed,
    link_others,
    record_batches,
    table_schema,
)
from leadscore.data.folders import is_declared_folder
from leadscore.data.history import folded_stages
from leadscore.data.sources import count_rows, find_table, parquet_parts, resolve_leads_path
from leadscore.data.validate import label_values
from leadscore.errors import UserError
from leadscore.spec import DatasetSpec

PREDRAW = 3  # leads drawn per lead of the sample: room for the in-memory draw's rates and checks


@dataclass(frozen=True)
class Predrawn:
    """The private folder (or file) of the drawn leads, the share drawn uniformly, the possible SQLs
    drawn whole and the export's digest."""

    path: Path
    share: float
    leads: int  # the export's leads
    digest: str  # SHA-256 of the export's leads table (the data the run stands for)
    seed: int = 0
    candidates: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))  # sorted identities
    candidate_share: float = 1.0  # a possible SQL's chance to be drawn (at least ``share``)

    def note(self) -> str:
        found = f"{len(self.candidates):,} possible SQLs (found by a thin read of the label's columns)"
        whole = (
            ""
            if not len(self.candidates)
            else f"; every one of its {found} drawn too, each standing for itself"
            if self.candidate_share >= 1
            else f"; {self.candidate_share:.1%} of its {found} drawn, each standing for "
            f"{1 / self.candidate_share:,.2f}"
        )
        return (
            f"--sample: {self.share:.1%} of the export's {self.leads:,} leads drawn uniformly by a seeded "
            f"hash of their id before reading (a lead with all its rows), each standing for "
            f"{1 / self.share:,.1f}{whole}"
        )

    def uniform(self, ids: pd.Series) -> np.ndarray:
        """Whether each id's lead is in the uniform part of the draw."""
        return kept(ids, self.share, self.seed)

    def drawn(self, ids: pd.Series) -> np.ndarray:
        """Whether each id's lead is drawn: under the share by its seeded hash, or, for a possible SQL,
        under the possible SQLs' larger chance by the same hash (so the uniform part stays exactly
        the uniform draw, and every chance is known)."""
        if not len(self.candidates):
            return self.uniform(ids)
        chance = np.where(_among(identities(ids), self.candidates), self.candidate_share, self.share)
        return kept(ids, chance, self.seed)

    def weights(self, ids: pd.Series) -> np.ndarray:
        """How many of the export's leads each id's row stands for: the inverse of its chance to be
        drawn (1 for a possible SQL when all of them were drawn, 1 / share for any other lead)."""
        candidate = _among(identities(ids), self.candidates)
        return np.where(candidate, 1.0 / self.candidate_share, 1.0 / self.share)


def kept(ids: pd.Series, share: float | np.ndarray, seed: int) -> np.ndarray:
    """Whether each id's lead is drawn: the seeded CRC-32 of its lead key under ``share`` of 2^32
    (``share``: one for all, or each lead's own)."""
    return np.asarray(lead_hashes(ids, f"{seed}:".encode()) < np.asarray(share) * 2**32)


def identities(ids: pd.Series) -> np.ndarray:
    """A 64-bit identity of each id's lead key: how the possible SQLs are remembered without holding
    their keys as text. Two CRC-32s, of the key and of the key reversed (CRC-32 is linear: two of
    the key under different prefixes collide together for keys of one length). A rare collision
    only makes a lead a possible SQL: drawn with that chance and weighted by it, still unbiased."""
    high = lead_hashes(ids, b"lead:").astype(np.uint64)
    return (high << np.uint64(32)) | lead_hashes(ids, b":key", reverse=True).astype(np.uint64)


def _among(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return np.asarray(sorted_set[at] == values)


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
    candidates = possible_sqls(data, spec, tables)
    # at most about ``size`` of them: a sample of SQLs alone would leave its non-SQLs no room
    candidate_share = max(share, min(1.0, size / len(candidates))) if len(candidates) else 1.0
    drawn = Predrawn(work, share, leads, _digest(source), seed, candidates, candidate_share)
    folder = is_declared_folder(data, spec) or find_table(data, "leads") is not None
    if not folder:  # a flat table (a file, or a folder of its Parquet parts)
        target = work / f"{source.stem}.parquet"
        _drawn_table(source, tables[source], drawn, target)
        return replace(drawn, path=target)
    for path, column in tables.items():
        _drawn_table(path, column, drawn, work / path.name)
    link_others(data, {path.stem for path in tables}, work)
    return drawn


def possible_sqls(data: Path, spec: DatasetSpec, tables: dict[Path, str]) -> np.ndarray:
    """The sorted identities of every lead that could be an SQL, read from the label's own columns
    only: a status history row at one of the label's stages (a folder with its history), else a
    positive value of the label column or a filled lifecycle date column (a flat table); none when
    the label comes from elsewhere."""
    label = spec.label
    source = next(iter(tables))
    found: list[np.ndarray] = []
    history = next((p for p in tables if spec.stages and p.stem == spec.table("stages")), None)
    if label.stages and spec.stages is not None and history is not None:
        wanted = {s.strip().casefold() for s in label.stages}
        for batch in record_batches(history, [spec.stages.id, spec.stages.stage]):
            frame = batch.to_pandas()
            hit = np.isin(folded_stages(frame[spec.stages.stage]), list(wanted))
            found.append(identities(frame[spec.stages.id][hit]))
    else:
        for batch in _label_batches(source, tables[source], spec):
            frame = batch.to_pandas()
            hit = label_values(frame, spec)[0] == 1  # the training label's own rule, on these columns
            found.append(identities(frame[tables[source]][hit]))
    return np.unique(np.concatenate(found)) if found else np.zeros(0, np.uint64)


def _label_batches(source: Path, id_column: str, spec: DatasetSpec) -> Iterator[pa.RecordBatch]:
    """The id and the columns a flat table's label is read from (the label column; with lifecycle
    date columns, those and the scoring time): none when the table holds no label column."""
    label = spec.label
    present = set(table_schema(source).names)
    dated = list(label.date_columns or [])
    if label.column not in present and not dated:
        return iter(())
    wanted = [id_column, *([label.column] if label.column in present else []), *dated]
    if dated and spec.time:
        wanted.append(spec.time)
    return record_batches(source, list(dict.fromkeys(wanted)))


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


def _drawn_table(path: Path, column: str, drawn: Predrawn, target: Path) -> None:
    """The rows of ``path`` whose lead is drawn (uniformly, or as a possible SQL), streamed into ``target``."""
    with pq.ParquetWriter(target, table_schema(path)) as writer:
        for batch in record_batches(path):
            writer.write_batch(batch.filter(pa.array(drawn.drawn(batch.column(column).to_pandas()))))
