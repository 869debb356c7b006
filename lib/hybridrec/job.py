"""What every job in ``jobs/`` shares: arguments, logging with the run id, config, Spark, exit code.

A job script is then a few lines::

    def main(ctx: JobContext) -> None: ...
    if __name__ == "__main__":
        sys.exit(run_job("train", main, parser=job_parser(__doc__)))

Errors meant for users (``HybridrecError``) end the job with their message and exit code 1; a bad
command line or config exits 2; anything else is a bug and keeps its traceback. Every run that got
a SparkSession leaves one row in ``gold.runs``, failed runs included.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import uuid
from dataclasses import dataclass
from typing import Callable, Sequence

from pyspark.sql import SparkSession

from hybridrec.config import Config, ConfigError, load_config
from hybridrec.errors import HybridrecError
from hybridrec.runs import RunRecord, record_run, redact, utcnow
from hybridrec.spark import build_spark

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
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    return parser


def parse_run_date(value: str) -> dt.date:
    """argparse type for ``--run-date YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-11-24") from exc


def configure_logging(job: str, run_id: str, level: str = "INFO") -> None:
    """Log lines carry the job and run id, so lines from a night's jobs can be told apart.

    A host that already configured logging (a notebook, pytest) keeps its handlers.
    """
    fmt = f"%(asctime)s %(levelname)s {job}[{run_id}] %(name)s: %(message)s"
    logging.basicConfig(format=fmt, stream=sys.stderr)
    logging.getLogger("hybridrec").setLevel(level)
    for noisy in ("py4j", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_job(
    job: str,
    main: Callable[[JobContext], None],
    argv: Sequence[str] | None = None,
    parser: argparse.ArgumentParser | None = None,
) -> int:
    """Parse arguments, load config, build Spark, run ``main``; return the process exit code."""
    parser = parser or job_parser()
    args = parser.parse_args(argv)
    run_id = uuid.uuid4().hex[:12]
    configure_logging(job, run_id, args.log_level)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"{job}: config error: {exc}", file=sys.stderr)
        return 2
    run = RunRecord(
        run_id=run_id, job=job, started_at=utcnow(), run_date=getattr(args, "run_date", None)
    )
    spark = build_spark(cfg.spark)
    try:
        main(JobContext(cfg=cfg, spark=spark, args=args, run=run))
    except HybridrecError as exc:
        log.error("%s", redact(str(exc)))
        run.finish("failed", str(exc))
        record_run(spark, cfg, run)
        return 1
    except BaseException as exc:
        run.finish("failed", f"{type(exc).__name__}: {exc}")
        record_run(spark, cfg, run)
        raise
    run.finish("succeeded")
    record_run(spark, cfg, run)
    log.info("done in %.1fs %s", run.duration_s or 0.0, run.counts or "")
    return 0
