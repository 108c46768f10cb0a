"""Helpers for the command line: shared options, one-line errors, JSON output, how logs are shown."""

from __future__ import annotations

import errno
import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from leadscore.errors import UserError, not_a_date
from leadscore.spec import DatasetSpec, load_spec, spec_from_flags

F = TypeVar("F", bound=Callable[..., Any])


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", help="Model folder (models/<dataset>) or MLflow URI (models:/leadscore-x@champion)."
    ),
]
SpecOpt = Annotated[
    str | None, typer.Option("--spec", help="Dataset spec: a YAML path or a name in configs/datasets/.")
]
LabelOpt = Annotated[str | None, typer.Option("--label", help="Label column (when there is no spec).")]
PositiveOpt = Annotated[
    list[str] | None, typer.Option("--positive", help="Label value that means SQL (repeatable).")
]
IdOpt = Annotated[str | None, typer.Option("--id", help="Id column.")]
TimeOpt = Annotated[str | None, typer.Option("--time", help="Timestamp column (time-based split).")]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="pandas (this process) or spark (a Spark session: --master, SPARK_REMOTE, or local[*]).",
    ),
]
MasterOpt = Annotated[
    str | None,
    typer.Option(
        "--master", help="Spark master URL for --engine spark (default local[*]; spark://, yarn, k8s://)."
    ),
]
SampleOpt = Annotated[
    int | None,
    typer.Option(
        "--sample",
        min=1,
        help="Train the lead model on at most N leads: every SQL of the fit rows and a share of their "
        "non-SQLs (weighted back), validation and test leads drawn uniformly; a Parquet export of more than "
        "3N leads is drawn while streaming, not read whole.",
    ),
]
BucketsOpt = Annotated[
    int | None,
    typer.Option(
        "--buckets",
        min=1,
        help="--engine spark: groups the leads are split into (default: ~50,000 leads each); in this "
        "process: a folder of declared tables split by lead into this many buckets, read one at a "
        "time (memory bounded by a bucket).",
    ),
]


def check_engine(engine: str, master: str | None) -> None:
    if engine not in {"pandas", "spark"}:
        raise UserError(f"--engine: unknown engine '{engine}' (use pandas or spark)")
    if master and engine != "spark":
        raise UserError("--master: only with --engine spark")


ObservedUntilOpt = Annotated[
    str | None,
    typer.Option(
        "--observed-until",
        help="The day the export was taken (e.g. 2026-11-30): a lead whose label window ends after it is "
        "left out as not known yet. Default: the spec's observed_until, else the latest time in the data.",
    ),
]
ExcludeOpt = Annotated[list[str] | None, typer.Option("--exclude", help="Column to leave out (repeatable).")]


def resolve_spec(
    data: Path,
    spec: str | None,
    label: str | None,
    positive: list[str] | None,
    id_col: str | None,
    time_col: str | None,
    exclude: list[str] | None = None,
) -> DatasetSpec:
    """The dataset spec from ``--spec``, or one described by flags alone."""
    if spec and label:
        raise UserError("give either --spec or --label, not both")
    if spec:
        loaded = load_spec(spec)
        for col in exclude or []:
            loaded.exclude.setdefault(col, "excluded on the command line")
        return loaded
    if not label:
        raise UserError("name the label column with --label COL, or give a dataset spec with --spec")
    name = data.stem if data.is_file() else data.name
    return spec_from_flags(name or "data", label, positive, id_col, time_col, exclude)


def user_errors(func: F) -> F:
    """Turn a ``UserError`` into one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        except OSError as exc:
            if exc.errno not in _USER_FAULTS:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            typer.echo(f"error: {where}{exc.strerror or exc} (nothing was written)", err=True)
            raise typer.Exit(code=2) from None
        except Exception as exc:
            line = _database_fault(exc)
            if line is None:
                raise
            typer.echo(f"error: {line}", err=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]  # functools.wraps keeps func's signature; mypy types it _Wrapped


# The machine's faults a user fixes (a full disk, a read-only folder, no permission), not bugs.
_USER_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


def _database_fault(exc: BaseException) -> str | None:
    """One line for a database's refusal (a full disk, a value too long, a lost connection), or None
    for anything else (a bug keeps its traceback)."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError | sqlite3.Error) or type(exc).__module__.startswith("psycopg"):
        from leadscore.store.db import error_line

        return f"database: {error_line(exc)}"
    return None


def echo_json(payload: Any) -> None:
    """Print one JSON object on stdout (for scripts)."""
    sys.stdout.write(json.dumps(payload, default=_json_default, allow_nan=False) + "\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def info(message: str) -> None:
    typer.echo(message, err=True)


class _EchoHandler(logging.Handler):
    """Library log records as the CLI shows them: plain lines on (the current) stderr, warnings marked."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f"{record.levelname.lower()}: {message}"
        typer.echo(message, err=True)


def show_logs(level: int = logging.INFO) -> None:
    """Show the package's log records (progress, notes, warnings) on stderr; stdout stays for --json."""
    logger = logging.getLogger("leadscore")
    if not any(isinstance(h, _EchoHandler) for h in logger.handlers):
        logger.addHandler(_EchoHandler())
    logger.setLevel(level)
    logger.propagate = False


def cli_time(option: str, value: str) -> datetime:
    """A date or timestamp given on the command line (naive UTC), or one line naming the option."""
    import math

    from leadscore.features import parse_date

    ms = parse_date(value)
    if math.isnan(ms):
        raise not_a_date(option, value)
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms)
