"""Train the image CNN and the text LSTM with Horovod on the Spark cluster this job runs on.

    spark-submit jobs/train.py [--config conf/local.yaml] [--set train.epochs=3 --set train.num_proc=2]
"""
from __future__ import annotations

import sys

from hybridrec.job import JobContext, job_parser, run_job
from hybridrec.models.training import train


def main(ctx: JobContext) -> None:
    train(ctx.cfg)


if __name__ == "__main__":
    sys.exit(run_job("train", main, parser=job_parser(__doc__)))
