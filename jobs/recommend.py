"""The nightly job: fresh product vectors, ALS refit, hybrid top-N per user and similar items per
product for one night, written to gold.recommendations / gold.similar_items (partition run_date).

    spark-submit jobs/recommend.py --config conf/local.yaml --run-date 2026-11-24
    spark-submit jobs/recommend.py --run-date 2026-11-24 --set recommend.top_n=10

The night uses every event before --run-date 00:00 UTC (default: today, UTC). Re-running a night
replaces exactly its partitions; the previous nights stay (recommend.keep_nights of them).
"""

from __future__ import annotations

import argparse
import sys

from hybridrec.hybrid.nightly import run_nightly
from hybridrec.job import JobContext, job_parser, run_job
from hybridrec.run_dates import parse_run_date
from hybridrec.runs import utcnow


def main(ctx: JobContext) -> None:
    run_date = ctx.args.run_date or utcnow().date()
    ctx.run.run_date = run_date
    result = run_nightly(ctx.spark, ctx.cfg, run_date, run_id=ctx.run_id)
    ctx.run.counts.update(result.counts)
    ctx.run.metrics.update({k: float(v) for k, v in result.metrics.items()})
    ctx.run.metrics.update({f"seconds_{k}": float(v) for k, v in result.seconds.items()})
    ctx.run.message = f"lists ordered by {result.ranking}"
    c = result.counts
    print(
        f"recommend: night {run_date}: {c['recommendations']} recommendations for "
        f"{c['users_with_recommendations']} users, {c['similar_items']} similar items; models "
        f"{result.content_version} + {result.als_version}; ordered by {result.ranking}",
        flush=True,
    )


def build_parser() -> argparse.ArgumentParser:
    p = job_parser(__doc__)
    p.add_argument(
        "--run-date",
        type=parse_run_date,
        default=None,
        help="night to compute, YYYY-MM-DD: events before its 00:00 UTC (default: today, UTC)",
    )
    return p


if __name__ == "__main__":
    sys.exit(run_job("recommend", main, parser=build_parser()))
