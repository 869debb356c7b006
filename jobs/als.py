"""Fit Spark ALS on implicit feedback from bronze.interactions before a cutoff: (optionally) tune on
a validation window, evaluate against a popularity baseline on a temporal holdout, refit on all
events before the cutoff, then append new ids to gold.als_user_ids / gold.als_item_ids, save the
model with its parameters and metrics (<paths.models>/als/<version>/), replace the run date's
partition of gold.als_user_factors / gold.als_item_factors / gold.als_candidates, log to MLflow.

    spark-submit jobs/als.py [--config conf/local.yaml] [--run-date 2026-01-01] [--set als.tune=true]
    spark-submit jobs/als.py --cutoff 2025-12-25T00:00:00Z

--run-date D uses the events before D 00:00 UTC; --cutoff names the instant; with neither, every
event ingested so far is used and the run date is the day of the last one.
"""

from __future__ import annotations

import argparse
import sys

from hybridrec.collab.refit import latest_cutoff, run_als
from hybridrec.job import JobContext, job_parser, run_job
from hybridrec.run_dates import parse_cutoff, parse_run_date, start_of_day


def main(ctx: JobContext) -> None:
    if ctx.args.cutoff is not None:
        cutoff = ctx.args.cutoff
        run_date = ctx.args.run_date or cutoff.date()
    elif ctx.args.run_date is not None:
        run_date = ctx.args.run_date
        cutoff = start_of_day(run_date)
    else:
        cutoff = latest_cutoff(ctx.spark, ctx.cfg)
        run_date = cutoff.date()
    ctx.run.run_date = run_date
    result = run_als(ctx.spark, ctx.cfg, cutoff, run_date, counts=ctx.run.counts, metrics=ctx.run.metrics)
    k = ctx.cfg.als.eval_k
    scores = (
        f"NDCG@{k} ALS {result.metrics[f'als_ndcg@{k}']:.4f} vs popularity {result.metrics[f'popularity_ndcg@{k}']:.4f}"
        if f"als_ndcg@{k}" in result.metrics
        else "not evaluated"
    )
    print(
        f"als: model {result.model_version} (cutoff {cutoff.isoformat()}Z, run date {run_date}) "
        f"{result.params.as_dict()}; {scores}",
        flush=True,
    )


def build_parser() -> argparse.ArgumentParser:
    p = job_parser(__doc__)
    p.add_argument(
        "--run-date",
        type=parse_run_date,
        default=None,
        help="night to fit for: events before this date (00:00 UTC) are used",
    )
    p.add_argument(
        "--cutoff",
        type=parse_cutoff,
        default=None,
        help="exact cutoff instant (ISO-8601 with Z); overrides the run date's midnight",
    )
    return p


if __name__ == "__main__":
    sys.exit(run_job("als", main, parser=build_parser()))
