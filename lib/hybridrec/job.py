"""What every job in ``jobs/`` shares: arguments, logging with the run id, config, Spark, exit code.

A job script is then a few lines::

    def main(ctx: JobContext) -> None: ...
    if __name__ == "__main__":
        sys.exit(run_job("train", main, parser=job_parser(__doc__)))

Errors meant for users (``HybridrecError``) end the job with their message and exit code 1; a bad
command line or config, or a folder the job writes that cannot be written, exits 2; anything else is
a bug and keeps its traceback. Delta failures a user can act on (a corrupt table log, another run
that committed first) are turned into such errors here, at the top, because Spark raises them lazily
wherever the first action happens. Their trace goes to a log file (named on stderr) and reaches the
terminal only with ``--debug`` or ``HYBRIDREC_DEBUG=1``.

Every run that got a SparkSession leaves one row in ``gold.runs``: ``running`` from the start, its
outcome at the end, so a run killed in between stays visible as a stale ``running`` row.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from hybridrec.config import Config, ConfigError, load_config
from hybridrec.delta_log import local_path
from hybridrec.errors import ConcurrentRunError, UnwritablePathError
from hybridrec.runs import RunRecord, record_run, redact, start_run, utcnow
from hybridrec.spark import build_spark
from hybridrec.tables import RUNS, explain_delta_error, read_table, table_exists, table_ref

log = logging.getLogger("hybridrec.job")


@dataclass
class JobContext:
    """What a job's main function receives; it fills ``run.counts`` and ``run.metrics``."""

    cfg: Config
    spark: SparkSession
    args: argparse.Namespace
    run: RunRecord

    @property
    def run_id(self) -> str:
        return self.run.run_id


def job_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The arguments every job accepts; a job adds its own to the returned parser."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config",
        default=None,
        help="YAML config file (default: conf/local.yaml in the current directory)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. --set train.epochs=3 (repeatable)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print the full trace of an error (also: HYBRIDREC_DEBUG=1); it always goes to the log file",
    )
    return parser


def configure_logging(job: str, run_id: str, level: str = "INFO") -> None:
    """Log lines carry the job and run id, so lines from a night's jobs can be told apart.

    A host that already configured logging (a notebook, pytest) keeps its handlers.
    """
    fmt = f"%(asctime)s %(levelname)s {job}[{run_id}] %(name)s: %(message)s"
    logging.basicConfig(format=fmt, stream=sys.stderr)
    logging.getLogger("hybridrec").setLevel(level)
    for noisy in ("py4j", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# The config paths (``paths.<key>``) each job writes; every job writes gold.runs in the warehouse.
JOB_WRITES: dict[str, tuple[str, ...]] = {
    "ingest": ("warehouse",),
    "preprocess": ("warehouse", "features"),
    "train": ("warehouse", "models", "checkpoints"),
    "als": ("warehouse", "models", "checkpoints"),
    "recommend": ("warehouse", "models", "checkpoints"),
    "train_ranker": ("warehouse", "models", "checkpoints"),
    "evaluate": ("warehouse", "models", "checkpoints", "report"),
}


def unwritable_reason(path: Path) -> str | None:
    """Why a job could not create files under ``path`` (None: it can).

    The nearest existing folder is probed by creating a file in it, not with ``os.access``: root
    passes every permission check but not a read-only mount or an immutable folder.
    """
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return "no part of it exists"
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    try:
        fd, name = tempfile.mkstemp(prefix=".hybridrec-write-check-", dir=probe)
    except OSError as exc:
        return f"{probe} cannot be written ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(name)
    return None


def check_writable(cfg: Config, job: str) -> None:
    """Stop before Spark starts when a folder the job writes cannot be written.

    Without this a read-only warehouse fails minutes in with a DELTA_CANNOT_CREATE_LOG_PATH trace,
    and not even the failure can be recorded in gold.runs. Remote URIs (s3://, abfss://) and the
    warehouse of a metastore setup (``tables.uc_catalog``) are left to the storage layer.
    """
    for key in JOB_WRITES.get(job, ("warehouse",)):
        if key == "warehouse" and cfg.tables.uc_catalog:
            continue
        value = str(getattr(cfg.paths, key))
        path = local_path(value)
        if path is None:
            continue
        reason = unwritable_reason(path)
        if reason is not None:
            raise UnwritablePathError(
                f"paths.{key} = {value} cannot be used: {reason}; point paths.{key} at a writable "
                f"folder (--set paths.{key}=/some/folder) or fix its permissions"
            )


def debug_requested(args: argparse.Namespace) -> bool:
    """``--debug`` or ``HYBRIDREC_DEBUG=1``: show traces on the terminal (read once, here)."""
    return bool(getattr(args, "debug", False)) or os.environ.get("HYBRIDREC_DEBUG", "") not in ("", "0")


def trace_file(job: str, run_id: str) -> Path:
    """Where a run's error trace is kept when the terminal only gets one sentence."""
    return Path(tempfile.gettempdir()) / "hybridrec-logs" / f"{job}-{run_id}.log"


def keep_trace(job: str, run_id: str, exc: BaseException, debug: bool) -> None:
    """Write the full trace of ``exc`` (causes included) to the run's log file and say where; print
    it to the terminal too when ``debug``. A user error without a cause has no trace worth keeping."""
    if exc.__cause__ is None and exc.__context__ is None and not debug:
        return
    text = "".join(traceback.format_exception(exc))
    if debug:
        print(text, file=sys.stderr, end="")
    try:
        path = trace_file(job, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(text) or "", encoding="utf-8")
    except OSError as err:
        log.warning("could not write the trace to a log file: %s", err)
        return
    log.info("full trace in %s%s", path, "" if debug else " (or rerun with --debug)")


def conflict_message(job: str, run: RunRecord, exc: ConcurrentRunError, winner: str | None) -> str:
    """The sentence for a run that lost a commit race: which night, who won, nothing to do."""
    night = f" for night {run.run_date}" if run.run_date else ""
    who = f" ({winner})" if winner else ""
    return (
        f"another {job} run{night}{who} committed {exc.table} first and won; its result stands and "
        "nothing needs doing (this run stopped at that write; re-run it only if its settings differ)"
    )


def other_runs(spark: SparkSession, cfg: Config, run: RunRecord) -> str | None:
    """The latest other run of the same job and night in gold.runs (``run_id on host, pid N``).

    Best effort: only used to name the likely winner in a conflict message.
    """
    try:
        ref = table_ref(cfg, RUNS)
        if not table_exists(spark, ref):
            return None
        night = "run_date IS NULL" if run.run_date is None else f"run_date = '{run.run_date}'"
        rows = (
            read_table(spark, ref)
            .filter(f"job = '{run.job}' AND run_id != '{run.run_id}' AND {night}")
            .orderBy("started_at", ascending=False)
            .limit(1)
            .collect()
        )
    except Exception:  # noqa: BLE001 - naming the winner must never hide the conflict itself
        return None
    if not rows:
        return None
    row = rows[0].asDict()
    where = f" on {row['host']}, pid {row['pid']}" if row.get("host") else ""
    return f"probably run {row['run_id']}{where}"


def run_job(
    job: str,
    main: Callable[[JobContext], None],
    argv: Sequence[str] | None = None,
    parser: argparse.ArgumentParser | None = None,
) -> int:
    """Parse arguments, load config, check the paths it writes, build Spark, run ``main``; return
    the process exit code."""
    parser = parser or job_parser()
    args = parser.parse_args(argv)
    run_id = uuid.uuid4().hex[:12]
    configure_logging(job, run_id, args.log_level)
    debug = debug_requested(args)
    try:
        cfg = load_config(args.config, args.overrides)
        check_writable(cfg, job)
    except ConfigError as exc:
        print(f"{job}: config error: {exc}", file=sys.stderr)
        return 2
    except UnwritablePathError as exc:
        print(f"{job}: error: {exc}", file=sys.stderr)
        return 2
    run = RunRecord(run_id=run_id, job=job, started_at=utcnow(), run_date=getattr(args, "run_date", None))
    spark = build_spark(cfg.spark)
    try:
        start_run(spark, cfg, run)
        main(JobContext(cfg=cfg, spark=spark, args=args, run=run))
    except BaseException as exc:
        error = explain_delta_error(exc, cfg) if isinstance(exc, Exception) else None
        if error is None:  # a bug (or ^C): recorded, and it keeps its traceback
            run.finish("failed", f"{type(exc).__name__}: {exc}")
            _record_end(spark, cfg, run)
            raise
        message = str(error)
        if isinstance(error, ConcurrentRunError):
            message = conflict_message(job, run, error, other_runs(spark, cfg, run))
        log.error("%s", redact(message))
        keep_trace(job, run_id, exc, debug)
        run.finish("failed", message)
        _record_end(spark, cfg, run)
        return 1
    run.finish("succeeded", run.message)  # a job may leave a note (the nightly: which ranking it used)
    _record_end(spark, cfg, run)
    log.info("done in %.1fs %s", run.duration_s or 0.0, run.counts or "")
    return 0


def _record_end(spark: SparkSession, cfg: Config, run: RunRecord) -> None:
    """Record the run's outcome; a failure to do so is logged, never hides the run's own outcome."""
    try:
        record_run(spark, cfg, run)
    except Exception as exc:  # noqa: BLE001 - recording the end must never hide the run's own outcome
        error = explain_delta_error(exc, cfg)
        log.error(
            "could not record run %s in %s: %s",
            run.run_id,
            RUNS.logical_name,
            redact(str(error)) if error else f"{type(exc).__name__}: {str(exc)[:300]}",
        )
