"""Train the image CNN and the text LSTM with Horovod on the Spark cluster this job runs on, then
write product embeddings (and the fusion classifier's categories) to gold.product_embeddings.

    spark-submit jobs/train.py [--config conf/local.yaml] [--set train.epochs=3 --set train.num_proc=2]

A re-run with the same features and settings resumes the same model version from its last
checkpoint; --restart discards the checkpoints, --resume insists on one.
"""

from __future__ import annotations

import sys

from hybridrec.job import JobContext, job_parser, run_job
from hybridrec.models.training import train


def main(ctx: JobContext) -> None:
    restart, resume = getattr(ctx.args, "restart", False), getattr(ctx.args, "resume", False)
    mode = "restart" if restart else "require" if resume else "auto"
    result = train(ctx.spark, ctx.cfg, resume=mode)
    ctx.run.counts.update(result.counts)
    ctx.run.metrics.update(result.metrics)
    print(f"train: model version {result.version} in {result.model_dir}", flush=True)


def build_parser():
    p = job_parser(__doc__)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="fail unless a checkpoint of this version exists")
    group.add_argument("--restart", action="store_true", help="discard this version's checkpoints first")
    return p


if __name__ == "__main__":
    sys.exit(run_job("train", main, parser=build_parser()))
