"""Batch scoring: the scored table of a frame, and a CSV or Parquet export scored in chunks, written atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from leadscore.data.buckets import bucket_work, split_folder
from leadscore.data.folders import is_declared_folder, with_declared_engagement
from leadscore.data.lifecycle import with_scoring_time
from leadscore.data.paths import leads_path
from leadscore.data.sources import (
    atomic_path,
    count_rows,
    format_warnings,
    iter_table,
    read_table,
    resolve_leads_path,
)
from leadscore.errors import UserError
from leadscore.features.values import (
    MAX_ID_LENGTH,
    date_order_notes,
    id_problem,
    lead_key,
    unreadable_dates,
    unreadable_line,
)
from leadscore.scoring.answer import log_rows, respond_within, score_parts, trend_fields
from leadscore.scoring.bundle import ModelBundle, Scored
from leadscore.store.db import Store
from leadscore.store.scores import latest, lead_of
from leadscore.store.spool import LogSpool

log = logging.getLogger(__name__)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# The fit and engagement parts of each score, after the reasons (added columns, so older readers of
# the first columns keep working): each part's band (A-D, 1-4) and its log-odds.
PART_COLUMNS = ("fit_band", "fit_log_odds", "engagement_band", "engagement_log_odds")
# A routing bundle's answers also name each lead's segment and the sub-model that scored it ("global"
# or the segment's own), after the parts.
SEGMENT_COLUMNS = ("segment", "segment_model")
TIME_COLUMNS = ("p_sql_7d", "p_sql_30d", "expected_days_to_sql")  # with a time-to-SQL head


def score_output(
    bundle: ModelBundle, frame: pd.DataFrame, explain: int = 0, *, by_record: bool = False
) -> pd.DataFrame:
    """The batch-scoring table: id, p_sql, mql, grade, the top reasons when asked, and the fit and
    engagement parts (band and log-odds). ``by_record``: a few rows encoded as the service encodes a
    lead (the same values, without the column-wise passes that pay off for a batch)."""
    return _score_output(bundle, frame, explain, by_record=by_record)[0]


def _score_output(
    bundle: ModelBundle, frame: pd.DataFrame, explain: int = 0, *, by_record: bool = False
) -> tuple[pd.DataFrame, Scored | None]:
    out: dict[str, Any] = {}
    id_col = bundle.id_column
    if id_col and id_col in frame.columns:
        out[id_col] = frame[id_col].to_numpy()
    if frame.empty:  # an export with a header only: the same columns, no rows
        empty = {"p_sql": np.array([], dtype=np.float64), "mql": np.array([], dtype=bool)}
        out.update({**empty, "grade": np.array([], dtype=object)})
        out.update({f"reason_{k + 1}": np.array([], dtype=object) for k in range(explain)})
        out.update(
            {c: np.array([], dtype=object if c.endswith("band") else np.float64) for c in PART_COLUMNS}
        )
        if bundle.time_head is not None:
            out.update(
                {c: np.array([], dtype=object if c == TIME_COLUMNS[-1] else np.float64) for c in TIME_COLUMNS}
            )
        if bundle.segmented:
            out.update({c: np.array([], dtype=object) for c in SEGMENT_COLUMNS})
        return pd.DataFrame(out), None
    records = frame.to_dict(orient="records") if explain > 0 or by_record else None
    X = bundle.encoder.encode_records(records) if by_record and records is not None else bundle.encode(frame)
    scored = bundle.score_matrix(X, explain=explain, records=records, segments=bundle.segment_keys(frame))
    out["p_sql"] = np.round(scored.p_sql, 6)
    out["mql"] = scored.mql
    out["grade"] = scored.grade.astype(str)
    if explain and scored.reasons is not None:
        ranked = [sorted(r, key=lambda x: -abs(x.weight_pp)) for r in scored.reasons]
        for k in range(explain):
            out[f"reason_{k + 1}"] = [
                f"{r[k].text} ({r[k].weight_pp:+.1f} pp)" if k < len(r) else "" for r in ranked
            ]
    out["fit_band"] = scored.fit_band.astype(str)
    out["fit_log_odds"] = np.round(scored.fit_part, 4)
    out["engagement_band"] = scored.engagement_band.astype(str)
    out["engagement_log_odds"] = np.round(scored.engagement_part, 4)
    if bundle.time_head is not None:  # when, not only whether: P(SQL within 7 and 30 days), the median day
        times = bundle.time_head.answer_fields(X)
        out["p_sql_7d"] = [t["p_sql_7d"] for t in times]
        out["p_sql_30d"] = [t["p_sql_30d"] for t in times]
        out["expected_days_to_sql"] = [str(t["expected_days_to_sql"]) for t in times]  # days, or "over 90"
    if scored.segment is not None and scored.segment_model is not None:
        out["segment"] = scored.segment
        out["segment_model"] = scored.segment_model
    return pd.DataFrame(out), scored


def log_chunk(
    spool: LogSpool,
    bundle: ModelBundle,
    chunk: pd.DataFrame,
    frame: pd.DataFrame,
    scored: Scored | None,
    threshold: float,
) -> pd.DataFrame:
    """Hold a scored chunk's score-log rows (ids, scores and the model's fields) in the run's spool and
    add each lead's previous logged score and trend to the output."""
    if scored is None or frame.empty:
        return frame
    id_col = bundle.id_column
    raw_ids = chunk[id_col].tolist() if id_col and id_col in chunk.columns else [None] * len(chunk)
    fields = [f for f in bundle.fields if f in chunk.columns]
    spec = bundle.spec
    wanted = list(dict.fromkeys([*fields, *spec.display, *([spec.source] if spec.source else [])]))
    kept = [c for c in wanted if c in chunk.columns]
    records = chunk[kept].astype(object).where(chunk[kept].notna(), None).to_dict("records")
    versions = {"model_version": bundle.model_version, "cutoff_version": bundle.cutoff_version}
    segments = scored.segment.tolist() if scored.segment is not None else [None] * len(records)
    answers = [
        {
            **part,
            "lead_id": lead_id,
            **versions,
            "segment": seg,
            "respond_within": respond_within(spec, record),
        }
        for part, lead_id, seg, record in zip(score_parts(scored), raw_ids, segments, records, strict=True)
    ]
    rows = log_rows(
        answers,
        records,
        model_name=bundle.name,
        fields=fields,
        source="batch",
        shown=spec.display,
        source_field=spec.source,
    )
    keys = list(map(lead_of, rows))
    previous = latest(spool.store, keys)
    trends: dict[str, list[Any]] = {
        "previous_p_sql": [],
        "previous_scored_at": [],
        "trend": [],
        "crossed_cutoff": [],
    }
    for answer, key in zip(answers, keys, strict=True):
        extra = trend_fields(answer, previous.get(key), threshold)
        before = extra["previous"]
        trends["previous_p_sql"].append(before["p_sql"] if before else None)
        trends["previous_scored_at"].append(before["scored_at"] if before else None)
        trends["trend"].append(extra["trend"])
        trends["crossed_cutoff"].append(extra["crossed_cutoff"])
    spool.add(rows)
    out = frame.copy()
    for name, values in trends.items():
        out[name] = pd.Series(
            values, index=out.index, dtype="object" if name != "previous_p_sql" else "Float64"
        )
    return out


def check_ids(ids: pd.Series, where: str, first_row: int = 0) -> None:
    """One line naming the row of the first id the store cannot keep (the rule every path follows)."""
    if pd.api.types.is_numeric_dtype(ids):  # a number is never 200 characters long
        return
    text = ids.astype("string")
    if not (text.str.len() > MAX_ID_LENGTH).any():  # the usual case, vectorised
        return
    for offset, value in enumerate(ids.tolist()):
        problem = id_problem(lead_key(value))
        if problem:
            raise UserError(f"{where}, row {first_row + offset + 2}: {problem}")  # +2: header, 1-based


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
    return) get a leading apostrophe, as OWASP recommends for CSV files people open in Excel."""
    out = frame.copy()
    for col in out.columns:
        series = out[col]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        text = series.astype("string")
        risky = text.str.startswith(FORMULA_START).fillna(False).to_numpy(dtype=bool)
        if risky.any():
            values = series.astype(object).to_numpy().copy()
            values[risky] = ["'" + str(v) for v in values[risky]]
            out[col] = values
    return out


def _replaced_input(data: str | Path, bundle: ModelBundle, out: Path) -> str | None:
    """What of the input ``out`` would replace: the leads file, or a table of the folder being read
    (its activity log, its status history ... whatever the extension), else None."""
    source = (
        leads_path(Path(data), bundle.spec)
        if is_declared_folder(data, bundle.spec)
        else resolve_leads_path(data)
    ).resolve()
    if out.resolve() == source or (out.exists() and out.samefile(source)):
        return "the input file"
    folder = Path(data).resolve()
    if folder.is_dir() and out.resolve().parent == folder:
        tables = {"leads", "events", "stages", *bundle.spec.tables}
        stems = {bundle.spec.table(kind): kind for kind in tables}
        if out.stem in stems:
            return f"the folder's {stems[out.stem]} table '{out.stem}'"
    return None


def _chunks(
    data: str | Path, bundle: ModelBundle, chunk_rows: int, buckets: tuple[int, Path] | None = None
) -> tuple[Iterator[pd.DataFrame], int | None]:
    """The leads in chunks, and how many when that is cheap to know. A folder of a CRM's own tables
    gets its declared engagement first, from the activity log as of each lead's scoring time;
    ``buckets`` (how many, and a private folder for them): such a folder split by lead and read one
    bucket at a time (memory bounded by a bucket; rows come bucket by bucket)."""
    spec = bundle.spec
    if not is_declared_folder(data, spec):
        if buckets is not None:
            raise UserError(
                f"{data}: --buckets splits a folder of a CRM's tables (a flat export is read in chunks already)"
            )
        chunks = (with_scoring_time(chunk, spec) for chunk in _closing(iter_table(data, chunk_rows)))
        return chunks, count_rows(data)
    if buckets is not None:
        split = split_folder(Path(data), spec, buckets[0], buckets[1])
        each = (_folder_chunks(folder, bundle, chunk_rows)[0] for folder in split.folders)
        return (chunk for chunks in each for chunk in chunks), sum(split.leads)
    return _folder_chunks(Path(data), bundle, chunk_rows)


def _folder_chunks(
    folder: Path, bundle: ModelBundle, chunk_rows: int
) -> tuple[Iterator[pd.DataFrame], int | None]:
    """A folder of declared tables, read whole, with its declared engagement, in chunks."""
    spec = bundle.spec
    frame = with_scoring_time(read_table(leads_path(folder, spec)), spec)
    if bundle.spec.definitions:  # scoring needs the features, not the labels
        frame = with_declared_engagement(frame, folder, bundle.spec)
    starts = range(0, max(len(frame), 1), chunk_rows)
    return (frame.iloc[i : i + chunk_rows] for i in starts), len(frame)


def _closing(chunks: Generator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Iterate chunks and close the reader even when scoring stops half-way."""
    with closing(chunks):
        yield from chunks


def score_file(
    data: str | Path,
    bundle: ModelBundle,
    out: str | Path,
    *,
    explain: int = 0,
    chunk_rows: int = 50_000,
    progress: bool = True,
    log_to: Store | None = None,
    trend_threshold: float = 0.05,
    extend: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    buckets: int | None = None,
) -> dict[str, object]:
    """Score every lead in ``data`` and write id, p_sql, mql, grade (and reasons) to ``out``; with
    ``log_to``, log every score to the store and add each lead's previous score and trend: the rows are
    held until the output is complete and written in one transaction just before it replaces ``out``
    (a run stopped halfway logs nothing). ``buckets``: a folder of declared tables split by lead and
    scored one bucket at a time (``data/buckets.py``)."""
    out = Path(out)
    fmt = "csv" if out.suffix.lower() == ".csv" else "parquet"
    if out.suffix.lower() not in {".csv", ".parquet", ".pq"}:
        raise UserError(f"{out}: output must end in .csv or .parquet")
    replaced = _replaced_input(data, bundle, out)
    if replaced:
        raise UserError(f"{out}: is {replaced}; write the scores to another file")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with ExitStack() as stack:  # left in reverse: the bar, the output (replaced), the spool
        spool = stack.enter_context(LogSpool(log_to, out.parent)) if log_to is not None else None
        work = stack.enter_context(bucket_work(out)) if buckets is not None else None
        chunks, total = _chunks(data, bundle, chunk_rows, (buckets, work) if buckets and work else None)
        tmp = stack.enter_context(atomic_path(out))
        bar = stack.enter_context(
            Progress(*columns, disable=not progress, transient=True, redirect_stdout=False)
        )
        task = bar.add_task("score", total=total)
        sink = _Sink(tmp, fmt, spool, trend_threshold, extend)
        try:
            for chunk in chunks:
                sink.write(bundle, chunk, data, explain)
                bar.update(task, advance=len(chunk))
        finally:
            sink.close()
        sink.say_dates(data)  # only for a run that read the whole file
        logged = spool.commit() if spool is not None else None  # before the output replaces ``out``
    rows, mql = sink.rows, sink.mql
    return {
        "out": str(out),
        "rows": rows,
        "mql": mql,
        "mql_share": mql / rows if rows else 0.0,
        "model_version": bundle.version,
        **({"logged": logged} if logged is not None else {}),
    }


class _Sink:
    """Where a run's scored chunks go: the output file (made on the first chunk) and the log spool."""

    def __init__(
        self,
        tmp: Path,
        fmt: str,
        spool: LogSpool | None,
        trend_threshold: float,
        extend: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> None:
        self.tmp, self.fmt, self.spool, self.threshold = tmp, fmt, spool, trend_threshold
        self.extend = extend  # more columns for each scored chunk (the leads' accounts)
        self.writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        self.rows = self.mql = 0
        self.unreadable: dict[str, int] = {}  # date values that are not dates, per column

    def write(self, bundle: ModelBundle, chunk: pd.DataFrame, data: str | Path, explain: int) -> None:
        dated = [bundle.encoder.time_col, *(f.name for f in bundle.encoder.fields if f.kind == "date")]
        if self.writer is None:
            _first_chunk_checks(bundle, chunk, data)
            for line in date_order_notes(chunk, dated):
                log.warning("%s: %s", data, line)
        for column, count in unreadable_dates(chunk, dated, bundle.encoder.reads_day_first).items():
            self.unreadable[column] = self.unreadable.get(column, 0) + count
        if bundle.id_column:
            check_ids(chunk[bundle.id_column], f"{data}: column '{bundle.id_column}'", self.rows)
        frame, scored = _score_output(bundle, chunk, explain=explain)
        if self.spool is not None:
            frame = log_chunk(self.spool, bundle, chunk, frame, scored, self.threshold)
        if self.extend is not None:
            frame = self.extend(frame)
        if self.fmt == "csv":
            frame = neutralise_formulas(frame)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = (
                pq.ParquetWriter(self.tmp, table.schema)
                if self.fmt == "parquet"
                else pacsv.CSVWriter(self.tmp, table.schema)
            )
        self.writer.write_table(table)
        self.rows += len(frame)
        self.mql += int(frame["mql"].sum())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def say_dates(self, data: str | Path) -> None:
        for column, count in self.unreadable.items():
            if count:
                log.warning("%s: %s", data, unreadable_line(column, count))


def _first_chunk_checks(bundle: ModelBundle, chunk: pd.DataFrame, data: str | Path) -> None:
    if bundle.id_column and bundle.id_column not in chunk.columns:
        raise UserError(f"{data}: id column '{bundle.id_column}' is missing")
    leads = leads_path(Path(data), bundle.spec) if is_declared_folder(data, bundle.spec) else data
    for warning in format_warnings(leads):
        log.warning("%s", warning)
    missing = [c for c in bundle.fields if c not in chunk.columns]
    if missing:
        log.warning(
            "%d model columns missing from %s, scored as missing values: %s",
            len(missing),
            data,
            ", ".join(missing),
        )
