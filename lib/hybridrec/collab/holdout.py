"""Temporal holdouts for offline evaluation and tuning: train on the past, test on what came next.

Why temporal, not random: the nightly model is fitted on everything up to a cutoff and used on
what users do afterwards. A random split would let the model see a user's later events while
being asked about earlier ones, and it would never show new users or late items.

- ``last_days``: one split time for everybody (``cutoff - days``): events before it train, the
  events in the window after it test. Users and items that appear only in the window are cold:
  they stay in the test data and are counted, never a crash.
- ``last_n``: each user's last ``n`` events test, the rest train; users with ``n`` or fewer events
  keep everything in train (they would have nothing to learn from).

Tuning nests the same rule: the validation window is the holdout of the training part.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.config import AlsConfig
from hybridrec.run_dates import utc_timestamp


@dataclass
class Holdout:
    """A split of usable events; ``reference`` is the time the training part is "as of"."""

    train: DataFrame
    test: DataFrame
    reference: dt.datetime
    rule: str


def split_last_days(events: DataFrame, cutoff: dt.datetime, days: float) -> Holdout:
    """Events in ``[cutoff - days, cutoff)`` test, earlier ones train."""
    split_at = cutoff - dt.timedelta(days=days)
    at = utc_timestamp(split_at)
    return Holdout(
        train=events.filter(F.col("ts") < at),
        test=events.filter(F.col("ts") >= at),
        reference=split_at,
        rule=f"last {days:g} days before {cutoff.isoformat()}",
    )


def split_last_n(events: DataFrame, cutoff: dt.datetime, n: int) -> Holdout:
    """Each user's last ``n`` events test (users with more than ``n`` events), the rest train.

    Ties in time are broken by product and event, so the split is the same on every run.
    """
    w = Window.partitionBy("user_id")
    ordered = w.orderBy(F.col("ts").desc(), F.col("product_id").desc(), F.col("event").desc())
    marked = events.withColumns(
        {"_from_end": F.row_number().over(ordered), "_n": F.count(F.lit(1)).over(w)}
    ).withColumn("_test", (F.col("_n") > n) & (F.col("_from_end") <= n))
    return Holdout(
        train=marked.filter(~F.col("_test")).drop("_from_end", "_n", "_test"),
        test=marked.filter(F.col("_test")).drop("_from_end", "_n", "_test"),
        reference=cutoff,
        rule=f"last {n} events per user",
    )


def split(events: DataFrame, cutoff: dt.datetime, als: AlsConfig, rule: str | None = None) -> Holdout:
    """The holdout ``rule`` names (default ``als.holdout``), sized by ``als.holdout_days`` / ``holdout_n``."""
    if (rule or als.holdout) == "last_days":
        return split_last_days(events, cutoff, als.holdout_days)
    return split_last_n(events, cutoff, als.holdout_n)
