"""Train the learned ranker of the nightly lists on the data's own history.

    spark-submit jobs/train_ranker.py --config conf/local.yaml [--run-date 2026-11-24]

Replays the night ``ranker.label_days`` before --run-date (ALS fitted there in memory, every
candidate source scored as that night would), labels each user's candidates with what the user
did in the days after, trains xgboost.spark's ranker on them, saves it under
``<paths.models>/ranker/<version>/`` and makes it current: from the next night on, jobs/recommend.py
orders its lists with it (``ranker.use: auto``). Run it weekly, or after jobs/train.py.
"""

from __future__ import annotations

import argparse
import sys

from hybridrec.hybrid.ranker_training import train_and_save
from hybridrec.job import JobContext, job_parser, run_job
from hybridrec.run_dates import parse_run_date
from hybridrec.runs import utcnow


def main(ctx: JobContext) -> None:
    run_date = ctx.args.run_date or utcnow().date()
    ctx.run.run_date = run_date
    trained = train_and_save(ctx.spark, ctx.cfg, run_date)
    ranker = trained.ranker
    ctx.run.counts.update(ranker.counts)
    ctx.run.metrics.update(ranker.metrics)
    ctx.run.metrics.update({f"seconds_{k}": float(v) for k, v in trained.seconds.items()})
    ctx.run.message = f"ranker {ranker.version} is current"
    top = sorted(ranker.importances.items(), key=lambda kv: -kv[1])[:3]
    print(
        f"train_ranker: ranker {ranker.version} trained on {ranker.counts['rows']} rows of "
        f"{ranker.counts['users']} users (labels {trained.label_start:%Y-%m-%d} .. {trained.cutoff:%Y-%m-%d}); "
        f"candidate recall {trained.recall.get('pool', 0.0):.3f}; top features "
        + ", ".join(f"{k} {v:.2f}" for k, v in top),
        flush=True,
    )


def build_parser() -> argparse.ArgumentParser:
    p = job_parser(__doc__)
    p.add_argument(
        "--run-date",
        type=parse_run_date,
        default=None,
        help="train with the events before this day's 00:00 UTC, YYYY-MM-DD (default: today, UTC)",
    )
    return p


if __name__ == "__main__":
    sys.exit(run_job("train_ranker", main, parser=build_parser()))
