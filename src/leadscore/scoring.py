"""Batch scoring of a CSV or Parquet export, streamed in chunks, written atomically."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadscore._cli_util import info
from leadscore.bundle import ModelBundle
from leadscore.config import UserError
from leadscore.data.sources import atomic_path, count_rows, iter_table
from leadscore.registry import score_output


def _closing(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Iterate chunks and close the reader even when scoring stops half-way."""
    with closing(chunks):  # type: ignore[type-var]
        yield from chunks


def score_file(
    data: str | Path,
    model: str | Path,
    out: str | Path,
    *,
    explain: int = 0,
    chunk_rows: int = 50_000,
    progress: bool = True,
) -> dict[str, object]:
    """Score every lead in ``data`` and write id, p_sql, mql, grade (and reasons) to ``out``."""
    bundle = ModelBundle.load(model)
    out = Path(out)
    fmt = "csv" if out.suffix.lower() == ".csv" else "parquet"
    if out.suffix.lower() not in {".csv", ".parquet", ".pq"}:
        raise UserError(f"{out}: output must end in .csv or .parquet")
    total = count_rows(data)
    rows = mql = 0
    warned = False
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with (
        atomic_path(out) as tmp,
        Progress(*columns, disable=not progress, transient=True, redirect_stdout=False) as bar,
    ):
        task = bar.add_task("score", total=total)
        writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        try:
            for chunk in _closing(iter_table(data, chunk_rows)):
                if not warned:
                    warned = True
                    if bundle.id_column and bundle.id_column not in chunk.columns:
                        raise UserError(f"{data}: id column '{bundle.id_column}' is missing")
                    missing = [c for c in bundle.fields if c not in chunk.columns]
                    if missing:
                        info(
                            f"warning: {len(missing)} model columns missing from {data}, scored as missing values: {', '.join(missing)}"
                        )
                frame = score_output(bundle, chunk, explain=explain)
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = (
                        pq.ParquetWriter(tmp, table.schema)
                        if fmt == "parquet"
                        else pacsv.CSVWriter(tmp, table.schema)
                    )
                writer.write_table(table)
                rows += len(frame)
                mql += int(frame["mql"].sum())
                bar.update(task, advance=len(frame))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise UserError(f"{data}: no rows to score")
    return {
        "out": str(out),
        "rows": rows,
        "mql": mql,
        "mql_share": mql / rows if rows else 0.0,
        "model_version": bundle.version,
    }
