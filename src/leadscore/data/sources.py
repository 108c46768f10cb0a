"""Read CRM exports (CSV or Parquet, or a generator folder) and write outputs atomically."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import functools
import glob
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from leadscore.data.csvformat import CsvFormat, detect, head_text, separator
from leadscore.errors import UserError

TABLES = ("leads", "events", "stage_history", "accounts", "feedback")


def find_table(folder: Path, name: str) -> Path | None:
    for suffix in (".parquet", ".csv"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def parquet_parts(path: Path) -> list[Path]:
    """The part files of a folder of Parquet parts (what Spark writes: ``part-*.parquet``, with
    ``_SUCCESS`` and hidden files beside them), in name order; empty when ``path`` is not one."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.glob("*.parquet") if p.is_file() and not p.name.startswith((".", "_")))


def resolve_leads_path(path: str | Path) -> Path:
    """The leads file itself, also when ``path`` is a generator output folder; a folder of Parquet
    parts (a Spark output) is itself the table."""
    path = Path(path)
    if path.is_dir():
        found = find_table(path, "leads")
        if found is None and parquet_parts(path):
            return path
        if found is None:
            raise UserError(f"{path}: folder has no leads.parquet or leads.csv (nor Parquet parts)")
        return found
    if not path.exists():
        raise UserError(f"{path}: file not found")
    return path


def _check_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    if suffix in {".csv", ".txt", ".tsv"}:
        return "csv"
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return "parquet"
    raise UserError(f"{path}: unsupported format '{suffix or 'none'}' (use .csv or .parquet)")


def _clean_columns(frame: pd.DataFrame) -> pd.DataFrame:
    # CRM exports often end the header with a comma, which makes an empty "Unnamed: N" column.
    drop = [c for c in frame.columns if str(c).startswith("Unnamed: ") and frame[c].isna().all()]
    frame = frame.drop(columns=drop)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


@contextlib.contextmanager
def _read_errors(path: Path, kind: str) -> Iterator[None]:
    """Turn a reader's exception about the user's file into a one-line ``UserError``."""
    try:
        yield
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"{path}: not a readable {kind} file ({str(exc).splitlines()[0]})") from exc
    except pd.errors.EmptyDataError as exc:
        raise UserError(f"{path}: file is empty") from exc
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 text (byte {exc.start:,}): save it as 'CSV UTF-8' in Excel, or as "
            "'Unicode Text' (UTF-16 with its byte-order mark)"
        ) from exc
    except (pd.errors.ParserError, csv.Error) as exc:
        raise UserError(f"{path}: not a readable CSV file ({str(exc).splitlines()[0]})") from exc
    except ValueError as exc:
        raise UserError(f"{path}: {str(exc).splitlines()[0]}") from exc


MAX_CELL_CHARS = 100_000  # a longer cell is a broken export (or an attack), in every reader alike


def read_table(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one CSV or Parquet file; a user's mistake becomes a one-line ``UserError``."""
    path = resolve_leads_path(path)
    return _parse(path, path, columns)


def read_some_columns(path: str | Path, wanted: list[str], categories: Iterable[str] = ()) -> pd.DataFrame:
    """``read_table`` keeping only ``wanted`` columns (those the file has; the others are left for the
    caller's check to name) from a Parquet file, which reads them alone; a CSV is read whole.
    ``categories``: text columns of a Parquet file read as they are stored, dictionary-encoded (pandas
    categories): millions of repeated event types become small integer codes without a string each
    (reading 25.8M events' type and title 2.5 -> 0.6 s)."""
    path = resolve_leads_path(path)
    kind = _opened(path)
    if kind != "parquet" or path.is_dir():
        return read_table(path)
    schema = pq.read_schema(path)
    keep = [name for name in schema.names if str(name).strip() in set(wanted)]
    coded = {str(c).strip() for c in categories}
    text = [
        f.name
        for f in schema
        if f.name in keep
        and str(f.name).strip() in coded
        and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]
    return _parse(path, path, keep or None, text)


def read_table_hashed(path: str | Path) -> tuple[pd.DataFrame, str]:
    """Read one file (or folder of Parquet parts) and its SHA-256 from a single read of its bytes (the
    data a run was trained on): what is hashed is what is parsed."""
    path = resolve_leads_path(path)
    parts = parquet_parts(path) if path.is_dir() else [path]
    try:
        raws = [part.read_bytes() for part in parts]
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from exc
    digest = hashlib.sha256()  # a folder of Parquet parts: every part's bytes, in name order
    for raw in raws:
        digest.update(raw)
    source = [io.BytesIO(raw) for raw in raws] if path.is_dir() else io.BytesIO(raws[0])
    return _parse(path, source, None), digest.hexdigest()


def _parse(
    path: Path,
    source: Path | io.BytesIO | list[io.BytesIO],
    columns: list[str] | None,
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """One table from ``source``: the file's path or bytes, or (a folder of Parquet parts) each part's
    bytes or, given the folder's path, its parts in name order (``categories``: a single Parquet
    file's text columns read dictionary-encoded)."""
    kind = _opened(path)
    with _read_errors(path, kind):
        if kind == "parquet":
            if isinstance(source, list) or path.is_dir():
                parts = source if isinstance(source, list) else parquet_parts(path)
                frames = [pd.read_parquet(part, columns=columns) for part in parts]
                frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
            else:
                frame = pd.read_parquet(source, columns=columns, read_dictionary=categories or None)
        else:
            frame = pd.read_csv(source, usecols=columns, **csv_format(path).read_options())
    frame = _checked(path, frame)
    if frame.empty:
        raise UserError(f"{path}: file has a header but no rows")
    return frame


def iter_table(path: str | Path, chunk_rows: int = 50_000) -> Generator[pd.DataFrame]:
    """Stream a CSV or Parquet file in chunks of about ``chunk_rows`` rows (the same reader and limits
    as ``read_table``). A file with a header but no rows yields one empty frame with its columns."""
    path = resolve_leads_path(path)
    kind = _opened(path)
    with _read_errors(path, kind):
        if kind == "parquet":
            empty = True
            for part in parquet_parts(path) if path.is_dir() else [path]:
                with pq.ParquetFile(part) as reader:
                    schema = reader.schema_arrow
                    for batch in reader.iter_batches(batch_size=chunk_rows):
                        empty = False
                        yield _checked(path, batch.to_pandas())
            if empty:
                yield _checked(path, schema.empty_table().to_pandas())
        else:
            seen = 0
            options = csv_format(path).read_options()
            with pd.read_csv(path, chunksize=chunk_rows, **options) as chunks:
                for chunk in chunks:
                    yield _checked(path, chunk, offset=seen)
                    seen += len(chunk)
            if seen == 0:
                yield _checked(path, pd.read_csv(path, nrows=0, **options))


def _opened(path: Path) -> str:
    """The file's format, after the checks every reader makes first (empty file, duplicated columns)."""
    if path.is_dir():  # a folder of Parquet parts: one schema, checked on its first part
        parts = parquet_parts(path)
        if not parts:
            raise UserError(f"{path}: folder has no Parquet parts")
        _opened(parts[0])
        return "parquet"
    if path.stat().st_size == 0:
        raise UserError(f"{path}: file is empty")
    kind = _check_format(path)
    names = _header(path, kind)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise UserError(f"{path}: duplicated column names: {', '.join(repr(n) for n in duplicated)}")
    return kind


def _header(path: Path, kind: str) -> list[str]:
    if kind == "parquet":
        with _read_errors(path, kind):
            return [str(n).strip() for n in pq.read_schema(path).names]
    first = _first_line(path)
    try:
        return [c.strip() for c in next(csv.reader([first], delimiter=csv_separator(path)), [])]
    except csv.Error:
        raise UserError(
            f"{path}: the header line has a cell of more than {MAX_CELL_CHARS:,} characters"
        ) from None


def _first_line(path: Path) -> str:
    text, _, _ = head_text(path)
    return text.splitlines()[0] if text.strip() else ""


def csv_separator(path: Path) -> str:
    """The CSV's separator, from its header line: the most common of , ; tab and | (a comma when none)."""
    return separator(_first_line(path), path.suffix.lower())


def csv_format(path: Path) -> CsvFormat:
    """How the CSV writes its numbers (separator, decimal and thousands marks), from its own cells;
    worked out once per version of the file."""
    stat = path.stat()
    return _format(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _format(path: Path, mtime_ns: int, size: int) -> CsvFormat:
    return detect(path)


def csv_format_of(path: str | Path) -> CsvFormat | None:
    """The number format of a leads file when it is a CSV (None for Parquet)."""
    path = resolve_leads_path(path)
    if path.is_dir() or _check_format(path) != "csv":
        return None
    return csv_format(path)


def ambiguous_message(found: CsvFormat) -> str:
    return (
        f"numbers like 1.919 read with '{found.decimal}' as the decimal mark ({found.describe()}); "
        "nothing in the column says which mark is meant: check the export"
    )


def format_warnings(path: str | Path) -> list[str]:
    """What a reader of ``path`` should be told about how its numbers were read (empty for Parquet
    and for plain comma files): every command says the same."""
    found = csv_format_of(path)
    if found is None:
        return []
    shown = resolve_leads_path(path)
    return [f"{shown}: column '{column}': {ambiguous_message(found)}" for column in found.ambiguous]


def _short_text(series: pd.Series) -> bool:
    """Whether an Arrow-backed text column surely has no cell past ``MAX_CELL_CHARS`` (its longest
    cell in bytes, never fewer than its characters, is within it): one pass in Arrow's C++."""
    if not isinstance(series.dtype, pd.StringDtype) or series.dtype.storage != "pyarrow":
        return False
    longest = pc.max(pc.binary_length(pa.array(series.array))).as_py()
    return longest is None or longest <= MAX_CELL_CHARS


def _checked(path: Path, frame: pd.DataFrame, offset: int = 0) -> pd.DataFrame:
    """Header cleaned, and no cell longer than ``MAX_CELL_CHARS`` (named by column and row)."""
    frame = _clean_columns(frame)
    for col in frame.columns:
        series = frame[col]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_datetime64_any_dtype(series):
            continue
        if isinstance(series.dtype, pd.CategoricalDtype):  # each distinct cell once, read as stored
            if _short_text(pd.Series(series.cat.categories)):
                continue
            series = series.astype("string")
        if _short_text(series):  # the usual case, answered by Arrow without a column of lengths
            continue
        lengths = series.astype("string").str.len()
        if len(lengths) and (lengths.max(skipna=True) or 0) > MAX_CELL_CHARS:
            row = int(np.flatnonzero((lengths > MAX_CELL_CHARS).fillna(False).to_numpy())[0]) + offset
            raise UserError(
                f"{path}: column '{col}', row {row + 2}: a cell of more than {MAX_CELL_CHARS:,} characters"
            )
    return frame


def count_rows(path: str | Path) -> int | None:
    """Row count when it is cheap to know (Parquet metadata), else None."""
    path = resolve_leads_path(path)
    if path.is_dir():
        return sum(int(pq.ParquetFile(part).metadata.num_rows) for part in parquet_parts(path))
    if _check_format(path) == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def read_folder_table(folder: str | Path, name: str) -> pd.DataFrame | None:
    """One of the generator's tables (``events``, ``stage_history`` ...) if the folder has it."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    path = find_table(folder, name)
    return None if path is None else read_table(path)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it replaces ``target`` only on success.

    Temporary files are named after the writing process, so ones left by a killed process are
    removed the next time the same target is written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the usual mode, as a plain write would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temporaries(target: Path, suffix: str = ".tmp") -> list[Path]:
    """Delete ``.<name>.<pid>.*<suffix>`` files or folders beside ``target`` whose writing process is
    gone."""
    removed = []
    prefix = f".{target.name}."
    for path in target.parent.glob(f"{glob.escape(prefix)}*{suffix}"):
        pid = path.name.removeprefix(prefix).split(".", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            with contextlib.suppress(OSError):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process of this machine still runs (for files and runs named after their writer)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def file_lock(target: str | Path) -> Iterator[None]:
    """An exclusive lock on ``target`` between processes (a ``.lock`` file beside it), for read-modify-write."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_arrow(table: pa.Table, target: str | Path, fmt: str = "parquet") -> Path:
    """Write an Arrow table as Parquet or CSV, atomically and byte-deterministically."""
    import pyarrow.csv as pacsv

    target = Path(target)
    with atomic_path(target) as tmp:
        if fmt == "parquet":
            pq.write_table(table, tmp, compression="zstd", write_statistics=True)
        elif fmt == "csv":
            pacsv.write_csv(table, tmp)
        else:
            raise UserError(f"unknown format '{fmt}' (use parquet or csv)")
    return target


def write_frame(frame: pd.DataFrame, target: str | Path) -> Path:
    """Write a DataFrame by the target's suffix (.csv or .parquet), atomically."""
    target = Path(target)
    fmt = "csv" if target.suffix.lower() == ".csv" else "parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return write_arrow(table, target, fmt)
