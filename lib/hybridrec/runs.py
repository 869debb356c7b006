"""``gold.runs``: one row per job run (what ran, for which night, how it ended, counts, timings).

``run_job`` records every run, failed ones included, so on-call people and the evaluation can see
what each night did without reading logs.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from hybridrec.config import Config
from hybridrec.tables import RUNS, table_ref, write_table


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
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


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


def record_run(spark: SparkSession, cfg: Config, run: RunRecord) -> None:
    """Append the run's row to ``gold.runs`` (the message redacted: it often quotes an error)."""
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
    )
    write_table(spark.createDataFrame([row], RUNS.schema), table_ref(cfg, RUNS), mode="append")
