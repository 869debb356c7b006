"""Ingest the catalog and the interactions into Delta: validated rows to bronze.products and
bronze.interactions, rejected rows with a reason to quarantine.products / quarantine.interactions.
Re-running on the same files changes nothing; counts (read = accepted + quarantined) go to gold.runs.

    spark-submit jobs/ingest.py [--config conf/local.yaml] [--set catalog.path=...]
    spark-submit jobs/ingest.py --config conf/fashion.yaml
"""

from __future__ import annotations

import argparse
import sys

from hybridrec.catalog.ingest import ingest
from hybridrec.job import JobContext, job_parser, run_job


def main(ctx: JobContext) -> None:
    ingest(ctx.spark, ctx.cfg, run_id=ctx.run_id, now=ctx.run.started_at, counts=ctx.run.counts)


def build_parser() -> argparse.ArgumentParser:
    return job_parser(__doc__)


if __name__ == "__main__":
    sys.exit(run_job("ingest", main, parser=build_parser()))
