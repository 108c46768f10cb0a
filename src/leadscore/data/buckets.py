"""A data folder split by lead into buckets, each a small folder of its own (out-of-core scoring).

Each lead's features depend on its own rows only (its events, its stages), so a folder whose
lead-keyed tables are split by one rule on the lead id gives, bucket by bucket, the same rows as
the whole folder: memory is bounded by a bucket, not by the export. The tables are streamed in
record batches (never read whole); a lead's bucket is the CRC-32 of its key (``lead_key``: 7 and
"7" are one lead) modulo the bucket count, the same on every machine and run. Tables not keyed by
lead (accounts ...) are linked into every bucket unchanged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leadscore.data.sources import atomic_path, find_table, parquet_parts, remove_stale_temporaries
from leadscore.errors import UserError
from leadscore.features.values import lead_keys
from leadscore.spec import DatasetSpec

BATCH_ROWS = 1_000_000  # rows read and split at a time


@dataclass(frozen=True)
class Bucketed:
    """The bucket folders of a split (only buckets holding leads) and the leads each holds."""

    folders: list[Path]
    leads: list[int]


def lead_hashes(ids: pd.Series, salt: bytes = b"", *, reverse: bool = False) -> np.ndarray:
    """CRC-32 of each id's lead key (``salt`` before it; ``reverse``: of the key's bytes reversed,
    ``salt`` after), computed once per distinct id; a missing id is the empty key, as everywhere."""
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    keys = lead_keys(pd.Series(uniques, dtype=ids.dtype if len(uniques) else object))
    if reverse:
        per = np.fromiter((zlib.crc32(str(k).encode()[::-1] + salt) for k in keys), np.int64, len(keys))
    else:
        per = np.fromiter((zlib.crc32(salt + str(k).encode()) for k in keys), np.int64, len(keys))
    return np.where(codes >= 0, per[np.maximum(codes, 0)] if len(per) else 0, zlib.crc32(salt))


def bucket_numbers(ids: pd.Series, buckets: int) -> np.ndarray:
    """Each id's bucket: CRC-32 of its lead key modulo ``buckets``."""
    return lead_hashes(ids) % buckets


def lead_keyed(spec: DatasetSpec) -> dict[str, str]:
    """The folder's tables keyed by lead (file stem -> its id column), or a clear refusal where a
    lead's rows depend on other leads' (features of the account, several logs joined by contact)."""
    if not spec.id:
        raise UserError("--buckets: needs the spec key 'id' (the leads are split by id)")
    if spec.declared_account:
        raise UserError(
            "--buckets: 'scope: account' features read other leads' events; score this spec without "
            "--buckets or with --engine spark"
        )
    tables = {spec.table("leads"): spec.id}
    activity = spec.activity
    if activity is not None:
        if activity.log is not None:
            raise UserError("--buckets: several activity logs are split by --engine spark, not here")
        tables[spec.table("events")] = activity.id
    if spec.stages is not None:
        tables[spec.table("stages")] = spec.stages.id
    return tables


def split_folder(folder: Path, spec: DatasetSpec, buckets: int, work: Path) -> Bucketed:
    """``folder`` split into ``buckets`` folders under ``work`` (which must exist and be empty)."""
    keyed = lead_keyed(spec)
    found = {stem: find_table(folder, stem) for stem in keyed}
    leads_table = found[spec.table("leads")]
    if leads_table is None:
        raise UserError(f"{folder}: no '{spec.table('leads')}' table (.csv or .parquet)")
    for path in found.values():
        if path is not None and path.suffix.lower() != ".parquet":
            raise UserError(f"{path}: --buckets reads Parquet tables (write this table as Parquet)")
    leads = _split_table(leads_table, keyed[spec.table("leads")], buckets, work)
    kept = [b for b in range(buckets) if leads[b]]
    for stem, path in found.items():
        if path is not None and path != leads_table:
            _split_table(path, keyed[stem], buckets, work)
            for b in kept:  # a bucket whose leads have no rows here still has the table, empty
                empty = _bucket_dir(work, b) / path.name
                if not empty.exists():
                    pq.write_table(pq.read_schema(path).empty_table(), empty)
    for b in kept:
        link_others(folder, set(keyed), _bucket_dir(work, b))
    return Bucketed([_bucket_dir(work, b) for b in kept], [int(leads[b]) for b in kept])


def _bucket_dir(work: Path, bucket: int) -> Path:
    return work / f"bucket-{bucket:05d}"


def _split_table(path: Path, column: str, buckets: int, work: Path) -> np.ndarray:
    """Stream ``path`` and write each row to its bucket's copy of the table; rows per bucket."""
    counts = np.zeros(buckets, dtype=np.int64)
    schema = table_schema(path)
    if column not in schema.names:
        raise UserError(f"{path}: no column '{column}' to split the leads by")
    with ExitStack() as stack:
        writers: dict[int, pq.ParquetWriter] = {}
        for batch in record_batches(path):
            number = bucket_numbers(batch.column(column).to_pandas(), buckets)
            order = np.argsort(number, kind="stable")
            sorted_batch = batch.take(pa.array(order))
            edges = np.searchsorted(number[order], np.arange(buckets + 1))
            for b in (int(i) for i in np.flatnonzero(np.diff(edges))):
                if b not in writers:
                    target = _bucket_dir(work, b)
                    target.mkdir(exist_ok=True)
                    writer = pq.ParquetWriter(target / path.name, schema)
                    writers[b] = stack.enter_context(writer)
                start, stop = int(edges[b]), int(edges[b + 1])
                writers[b].write_batch(sorted_batch.slice(start, stop - start))
                counts[b] += stop - start
    return counts


def table_schema(path: Path) -> pa.Schema:
    """A Parquet table's schema (a folder of parts: its first part's)."""
    return pq.read_schema((parquet_parts(path) if path.is_dir() else [path])[0])


def record_batches(path: Path, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """A Parquet table (a file, or a folder of parts in name order) in record batches (only
    ``columns``, when given)."""
    for part in parquet_parts(path) if path.is_dir() else [path]:
        with pq.ParquetFile(part) as reader:
            yield from reader.iter_batches(batch_size=BATCH_ROWS, columns=columns)


def link_others(folder: Path, keyed: set[str], target: Path) -> None:
    """Every other table of ``folder`` (its files whose stem is not in ``keyed``) linked into
    ``target``."""
    target.mkdir(exist_ok=True)
    for path in folder.iterdir():
        if path.is_file() and path.stem not in keyed and not path.name.startswith("."):
            os.symlink(path.resolve(), target / path.name)


@contextlib.contextmanager
def bucket_work(target: Path) -> Iterator[Path]:
    """A private folder beside ``target`` for the buckets (``.<name>.<pid>.buckets``), removed at the
    end; ones left by a killed process are removed the next time the same target is written."""
    remove_stale_temporaries(target, ".buckets")
    work = target.parent / f".{target.name}.{os.getpid()}.buckets"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bucketed_leads(
    folder: Path, spec: DatasetSpec, buckets: int, work: Path, *, labels: bool
) -> Iterator[pd.DataFrame]:
    """The leads of ``folder`` as a model reads them (``read_leads``: declared features, and labels
    with ``labels``), one bucket at a time."""
    from leadscore.data.folders import read_leads

    if spec.moments is not None:
        raise UserError("--buckets: leads at their scoring moments ('moments') are split by --engine spark")
    for bucket in split_folder(folder, spec, buckets, work).folders:
        yield read_leads(bucket, spec, labels=labels)


def write_tables(frames: Iterator[pd.DataFrame], out: Path, work: Path) -> int:
    """Frames of one table written to ``out`` (a .parquet or .csv file, or a Parquet folder of one
    part), atomically: each frame is a part under ``work`` first, then every part is copied into
    ``out`` under the parts' common schema (a column whole numbers in one part and with gaps in
    another is a float column). The rows written."""
    parts: list[Path] = []
    for number, frame in enumerate(frames):
        parts.append(work / f"part-{number:05d}.parquet")
        frame.to_parquet(parts[-1], index=False)
    if not parts:
        raise UserError(f"{out}: no leads to write")
    schema = pa.unify_schemas([pq.read_schema(p) for p in parts], promote_options="permissive")
    suffix = out.suffix.lower()
    target = out if suffix in {".parquet", ".csv"} else out / "part-00000.parquet"
    rows = 0
    with atomic_path(target) as tmp:
        if suffix == ".csv":  # as the whole-folder path writes CSV (pandas), part after part
            for number, part in enumerate(parts):
                frame = pq.read_table(part).cast(schema).to_pandas()
                frame.to_csv(tmp, index=False, mode="a" if number else "w", header=not number)
                rows += len(frame)
            return rows
        with pq.ParquetWriter(tmp, schema) as writer:
            for part in parts:
                table = pq.read_table(part).cast(schema)
                writer.write_table(table)
                rows += table.num_rows
    return rows
