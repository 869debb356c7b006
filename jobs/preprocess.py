"""Preprocess bronze.products into Parquet features for Petastorm: images (uint8 HxWx3) and text
(token ids), with a label map, a vocabulary and a manifest; replaces the previous features atomically.

    spark-submit jobs/preprocess.py [--config conf/local.yaml] [--set features.image_size=96]
"""

from __future__ import annotations

import argparse
import sys

from hybridrec.features.preprocess import preprocess
from hybridrec.job import JobContext, job_parser, run_job


def main(ctx: JobContext) -> None:
    result = preprocess(ctx.spark, ctx.cfg, run_id=ctx.run_id)
    ctx.run.counts.update(result.counts)


def build_parser() -> argparse.ArgumentParser:
    return job_parser(__doc__)


if __name__ == "__main__":
    sys.exit(run_job("preprocess", main, parser=build_parser()))
