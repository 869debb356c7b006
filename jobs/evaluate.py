"""The evaluate job: how popularity, ALS, content and the hybrid would have done on a temporal
split, per segment (all users, few interactions, warm items, cold items), with bootstrap intervals;
writes <paths.report>/<cutoff>/index.html (self-contained) and metrics.json and prints the headline table.

    spark-submit jobs/evaluate.py --config conf/local.yaml
    spark-submit jobs/evaluate.py --config conf/local.yaml --set evaluate.cutoff=2025-12-18

--run-date (optional, for schedulers) evaluates with the cutoff test_days before that night.
"""

from __future__ import annotations

import argparse
import sys

from hybridrec.evaluation.backtest_report import run_evaluation
from hybridrec.job import JobContext, job_parser, run_job
from hybridrec.run_dates import evaluation_cutoff_date, parse_run_date


def main(ctx: JobContext) -> None:
    cfg = ctx.cfg
    if ctx.args.run_date and not cfg.evaluate.cutoff:
        cutoff = evaluation_cutoff_date(ctx.args.run_date, cfg.evaluate.test_days)
        cfg.evaluate.cutoff = cutoff.isoformat()
        ctx.run.run_date = ctx.args.run_date
    result = run_evaluation(ctx.spark, cfg)
    ctx.run.counts.update(result.counts)
    ctx.run.metrics.update(result.metrics)
    ctx.run.metrics.update({f"seconds_{k}": float(v) for k, v in result.seconds.items()})
    print(result.headline, flush=True)
    print(f"evaluate: report {result.report} (cutoff {result.cutoff:%Y-%m-%d})", flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = job_parser(__doc__)
    p.add_argument(
        "--run-date",
        type=parse_run_date,
        default=None,
        help="the night the scheduler runs for: cutoff = run date - evaluate.test_days "
        "(unless evaluate.cutoff is set); default: from the data",
    )
    return p


if __name__ == "__main__":
    sys.exit(run_job("evaluate", main, parser=build_parser()))
