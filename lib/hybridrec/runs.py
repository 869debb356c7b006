"""``gold.runs``: one row per job run (what ran, for which night, how it ended, counts, timings).

``run_job`` records every run, failed ones included, so on-call people and the evaluation can see
what each night did without reading logs. The row is written twice: as ``running`` (with host and
pid) when the job starts, then replaced by its outcome (MERGE on ``run_id``) when it ends. A run that
was SIGKILLed or lost its machine never ends, so it stays visible as a ``running`` row that grows
stale (``hybridrec runs`` marks it).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import time
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from hybridrec.config import Config
from hybridrec.errors import ConcurrentRunError
from hybridrec.tables import (
    RUNS,
    TableRef,
    delta_conflicts,
    delta_table,
    ensure_table,
    read_table,
    table_exists,
    table_ref,
    write_table,
)

log = logging.getLogger(__name__)

# A MERGE into gold.runs conflicts with another run's MERGE committed in between; it is retried.
MERGE_ATTEMPTS = 4


@dataclass
class RunRecord:
    """What a job reports about itself; ``counts`` must reconcile where the job says so."""

    run_id: str
    job: str
    started_at: dt.datetime
    run_date: dt.date | None = None
    status: str = "running"
    ended_at: dt.datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    message: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def finish(self, status: str, message: str | None = None) -> None:
        self.status = status
        self.message = message
        self.ended_at = utcnow()

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


def utcnow() -> dt.datetime:
    """Naive UTC timestamp (the session time zone is UTC)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# user:password@ in a URL (MLflow, JDBC, s3a://KEY:SECRET@bucket), and secret-bearing query
# parameters (SAS signatures, tokens). The user name stays: it helps debugging and is not a secret.
# The password may hold unescaped "/" (AWS secret keys often do), so it runs up to the "@".
_URL_PASSWORD = re.compile(r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^\s@]+@")
_SECRET_PARAM = re.compile(
    r"(?i)(?P<keep>[?&;](?:password|passwd|pwd|token|access_token|secret|client_secret|api_?key"
    r"|sig|signature|x-amz-signature|x-amz-credential)=)[^&\s;#'\"]+"
)
_DATABRICKS_TOKEN = re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?\b")
REDACTED = "***"


def redact(text: str | None) -> str | None:
    """``text`` with credentials replaced by ``***``: passwords in URLs, secret query parameters and
    Databricks tokens.

    Run records and log lines quote paths and URIs from the config and from errors (a Hadoop
    "Wrong FS: s3a://KEY:SECRET@bucket/..." names the whole URI); they are read by more people than
    the config is, so what they quote is redacted first.
    """
    if not text:
        return text
    text = _URL_PASSWORD.sub(lambda m: m["keep"] + REDACTED + "@", text)
    text = _SECRET_PARAM.sub(lambda m: m["keep"] + REDACTED, text)
    return _DATABRICKS_TOKEN.sub("dapi" + REDACTED, text)


def _row_frame(spark: SparkSession, run: RunRecord) -> DataFrame:
    """The run as a one-row DataFrame of gold.runs (the message redacted: it often quotes an error)."""
    row = (
        run.run_id,
        run.job,
        run.run_date,
        run.status,
        run.started_at,
        run.ended_at,
        run.duration_s,
        {k: int(v) for k, v in run.counts.items()},
        {k: float(v) for k, v in run.metrics.items()},
        redact(run.message),
        run.host,
        int(run.pid),
    )
    return spark.createDataFrame([row], RUNS.schema)


def _upgrade_runs_table(spark: SparkSession, ref: TableRef) -> None:
    """Add the columns gold.runs gained since a warehouse was created (host, pid), so runs of this
    version can write into tables of older ones; readers of the old columns see no change."""
    if not table_exists(spark, ref):
        ensure_table(spark, ref)
        return
    have = set(read_table(spark, ref).columns)
    missing = [f for f in RUNS.schema.fields if f.name not in have]
    if not missing:
        return
    target = ref.qualified_name or f"delta.`{ref.path}`"
    columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in missing)
    log.info("adding %s to %s", columns, RUNS.logical_name)
    with delta_conflicts(ref):
        spark.sql(f"ALTER TABLE {target} ADD COLUMNS ({columns})")


def start_run(spark: SparkSession, cfg: Config, run: RunRecord) -> None:
    """Append the run's ``running`` row: a blind append, which never conflicts with other runs."""
    ref = table_ref(cfg, RUNS)
    _upgrade_runs_table(spark, ref)
    write_table(_row_frame(spark, run), ref, mode="append")


def record_run(spark: SparkSession, cfg: Config, run: RunRecord) -> None:
    """Replace the run's row in ``gold.runs`` by its current state (MERGE on ``run_id``; inserted
    when the start row is missing).

    A MERGE reads the whole table, so another run's MERGE committed meanwhile refuses it; it is
    retried a few times, since each attempt only rewrites this run's row.
    """
    ref = table_ref(cfg, RUNS)
    _upgrade_runs_table(spark, ref)
    source = _row_frame(spark, run)
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        try:
            with delta_conflicts(ref):
                (
                    delta_table(spark, ref)
                    .alias("t")
                    .merge(source.alias("s"), "t.run_id = s.run_id")
                    .whenMatchedUpdateAll()
                    .whenNotMatchedInsertAll()
                    .execute()
                )
            return
        except ConcurrentRunError:
            if attempt == MERGE_ATTEMPTS:
                raise
            time.sleep(0.5 * attempt)


def run_state(status: str, started_at: dt.datetime, now: dt.datetime, stale_after: dt.timedelta) -> str:
    """The state shown for a run: its status, or ``stale`` for a ``running`` row older than
    ``stale_after`` (its process was most likely killed: it never recorded an end)."""
    if status == "running" and now - started_at > stale_after:
        return "stale"
    return status
