"""A Spark session for leadscore: ``--master`` (default ``local[*]``), or Spark Connect when
``SPARK_REMOTE`` is set; reading tables and writing a Parquet folder without half-written output."""

from __future__ import annotations

import glob
import logging
import os
import shutil
import sys
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadscore.data.sources import find_table, process_alive
from leadscore.errors import UserError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[*]"
# PySpark 4 warns on every pandas conversion that it does not "fully support" pandas 3; the paths
# leadscore uses are tested with pandas 3 (tests/test_spark.py), so the warning is noise for users.
PANDAS3_NOTICE = "PySpark does not yet fully support pandas"


def quiet_pandas_notice() -> None:
    warnings.filterwarnings("ignore", message=PANDAS3_NOTICE, category=FutureWarning)


def spark_session(master: str | None = None, *, conf: dict[str, str] | None = None) -> SparkSession:
    """The session scoring and features run in. ``master`` wins; else ``SPARK_REMOTE`` (Spark Connect);
    else ``local[*]``. Python workers run this interpreter when the master is local."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UserError("--engine spark: PySpark is not installed (pip install 'leadscore[spark]')") from None
    quiet_pandas_notice()
    # Workers inherit the variable (local mode) or take it from executorEnv (a cluster).
    notice = f"ignore:{PANDAS3_NOTICE}:FutureWarning"
    os.environ.setdefault("PYTHONWARNINGS", notice)
    builder: Any = SparkSession.builder.appName("leadscore")
    remote = os.environ.get("SPARK_REMOTE")
    if master or not remote:
        master = master or DEFAULT_MASTER
        if master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = builder.master(master)
    log4j = Path(__file__).with_name("log4j2.properties")
    settings = {
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{log4j}",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.executorEnv.PYTHONWARNINGS": notice,
        **(conf or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # no JVM, a master that cannot be reached, a bad URL
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "JAVA_HOME" in str(exc) or "Java gateway" in str(exc):
            first = "no Java runtime (install openjdk-17-jre-headless or set JAVA_HOME)"
        raise UserError(f"--master {master or remote}: cannot start Spark ({first})") from exc
    try:
        session.sparkContext.setLogLevel("ERROR")
    except Exception:  # Spark Connect has no SparkContext on the client
        log.debug("log level not set (Spark Connect)")
    return session


def is_remote(path: str) -> bool:
    """A Hadoop-style URI (s3a://, abfss://, dbfs:/, hdfs://) rather than a local path."""
    return "://" in path or path.startswith("dbfs:")


def read_table(spark: SparkSession, path: str) -> DataFrame:
    """A Parquet file, folder or glob, or a CSV file (read as text: types are the model's business)."""
    from pyspark.errors import AnalysisException

    try:
        if path.lower().endswith((".csv", ".tsv", ".txt")):
            sep = "\t" if path.lower().endswith(".tsv") else ","
            frame = spark.read.option("header", True).option("sep", sep).csv(path)
        else:
            frame = spark.read.parquet(path)
        frame.schema  # noqa: B018 (Spark Connect analyses lazily: make a missing path fail here)
    except AnalysisException as exc:
        first = str(exc).strip().splitlines()[0]
        if "PATH_NOT_FOUND" in first or "does not exist" in first:
            raise UserError(f"{path}: file not found") from None
        if "TIMESTAMP(NANOS" in first:  # pandas' default; Spark reads micro- and milliseconds only
            first += "; write times in microseconds (pandas: to_parquet(..., coerce_timestamps='us'))"
        raise UserError(f"{path}: not a readable Parquet or CSV table ({first})") from None
    return frame


def write_parquet(frame: DataFrame, out: str) -> None:
    """Write ``frame`` as a Parquet folder at ``out``. A local folder is written beside and renamed in
    place only when every part is written (an older output is replaced whole, never mixed); a cluster
    URI is written by Spark's own committer, which publishes on success."""
    if is_remote(out):
        frame.write.mode("overwrite").parquet(out)
        return
    target = Path(out).resolve()
    if target.exists() and not target.is_dir():
        raise UserError(f"{out}: exists and is a file; Spark writes a Parquet folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.name}."
    for stale in target.parent.glob(f"{glob.escape(prefix)}*.spark-tmp"):  # left by a killed run
        pid = stale.name.removeprefix(prefix).split(".", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = target.parent / f"{prefix}{os.getpid()}.{uuid.uuid4().hex[:8]}.spark-tmp"
    try:
        frame.write.mode("error").parquet(str(tmp))
        old = None
        if target.exists():
            old = target.parent / f"{prefix}{os.getpid()}.{uuid.uuid4().hex[:8]}.old.spark-tmp"
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def table_path(folder: str, stem: str) -> str | None:
    """Where a folder's table lives: ``<stem>.parquet``, ``<stem>.csv`` or a ``<stem>/`` Parquet folder
    (what Spark writes); under a cluster URI, ``<stem>.parquet`` (a file or a folder of parts)."""
    if not is_remote(folder):
        base = Path(folder)
        found = find_table(base, stem) if base.is_dir() else None
        if found is not None:
            return str(found)
        for candidate in (base / stem, base / f"{stem}.parquet"):
            if candidate.is_dir():
                return str(candidate)
        return None
    return f"{folder.rstrip('/')}/{stem}.parquet"
