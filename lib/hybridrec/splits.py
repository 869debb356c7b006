"""Every split of the data into a part to learn from and a part to test on, in one place.

Why one module: the content models, the ALS step and the offline evaluation each hold data out, and
a leak or an off-by-one in one of them would make its figures incomparable with the others'. Two
kinds, both pure (DataFrame in, DataFrame out; the rows kept are what the callers decide):

**By a stable hash of the product id** (``split_of``, ``split_column``, ``add_split``): train / val /
test of the content models. Why a hash and not ``randomSplit``: the split of a product must not
change when the job re-runs, when Spark partitions the data differently, or when new products
arrive, otherwise evaluation leaks (a product trained on yesterday is tested on today). And the
image row and the text row of one product must land in the same split so the fusion model never
sees a test product in training. The rule, reproducible outside Spark (``split_of``)::

    u = int(sha1(utf8(product_id)).hexdigest()[:8], 16) / 2**32      # uniform in [0, 1)
    train if u < train_fraction, val if u < train_fraction + val_fraction, else test

Changing the fractions only moves products across the nearest boundary.

**By time** (train on the past, test on what came next). Why temporal, not random: the nightly model
is fitted on everything up to a cutoff and used on what users do afterwards. A random split would
let the model see a user's later events while being asked about earlier ones, and it would never
show new users or late items. Times are naive UTC (``run_dates``).

- ``split_last_days``: one split time for everybody (``cutoff - days``): events before it train, the
  events in the window after it test. Users and items that appear only in the window are cold:
  they stay in the test data and are counted, never a crash.
- ``split_last_n``: each user's last ``n`` events test, the rest train; users with ``n`` or fewer
  events keep everything in train (they would have nothing to learn from).
- ``split_holdout``: the one of the two that ``rule`` names (the ALS step's ``als.holdout``); ALS
  tuning nests the same rule: the validation window is the holdout of the training part.
- ``window_end`` / ``events_between``: the test window ``[cutoff, cutoff + days)`` of the offline
  backtest (``evaluation.protocol``, which decides which of those events count and for whom).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.run_dates import utc_timestamp

SPLITS = ("train", "val", "test")
_BUCKETS = float(2**32)


def split_of(product_id: str, train_fraction: float, val_fraction: float) -> str:
    """The split of one product id (the same rule as ``split_column``)."""
    u = int(hashlib.sha1(product_id.encode("utf-8")).hexdigest()[:8], 16) / _BUCKETS
    return _pick(u, train_fraction, val_fraction)


def _pick(u: float, train_fraction: float, val_fraction: float) -> str:
    if u < train_fraction:
        return "train"
    if u < train_fraction + val_fraction:
        return "val"
    return "test"


def split_column(product_id: Column | str, train_fraction: float, val_fraction: float) -> Column:
    """Spark column with 'train' / 'val' / 'test' for each product id."""
    pid = F.col(product_id) if isinstance(product_id, str) else product_id
    u = F.conv(F.substring(F.sha1(pid.cast("binary")), 1, 8), 16, 10).cast("long") / F.lit(_BUCKETS)
    return (
        F.when(u < F.lit(train_fraction), F.lit("train"))
        .when(u < F.lit(train_fraction + val_fraction), F.lit("val"))
        .otherwise(F.lit("test"))
    )


def add_split(products: DataFrame, train_fraction: float, val_fraction: float) -> DataFrame:
    """``products`` plus a ``split`` column (pure)."""
    return products.withColumn("split", split_column("product_id", train_fraction, val_fraction))


@dataclass
class Holdout:
    """A split of usable events; ``reference`` is the time the training part is "as of"."""

    train: DataFrame
    test: DataFrame
    reference: dt.datetime
    rule: str


def events_before(events: DataFrame, moment: dt.datetime) -> DataFrame:
    """The events with ``ts`` strictly before ``moment`` (naive UTC)."""
    return events.filter(F.col("ts") < utc_timestamp(moment))


def events_between(events: DataFrame, start: dt.datetime, end: dt.datetime | None = None) -> DataFrame:
    """The events with ``ts`` in ``[start, end)`` (naive UTC), or from ``start`` on without ``end``."""
    since = F.col("ts") >= utc_timestamp(start)
    return events.filter(since if end is None else since & (F.col("ts") < utc_timestamp(end)))


def window_end(cutoff: dt.datetime, days: float) -> dt.datetime:
    """The end of a test window of ``days`` from ``cutoff`` (exclusive)."""
    return cutoff + dt.timedelta(days=days)


def split_last_days(events: DataFrame, cutoff: dt.datetime, days: float) -> Holdout:
    """Events in ``[cutoff - days, cutoff)`` test, earlier ones train."""
    split_at = cutoff - dt.timedelta(days=days)
    return Holdout(
        train=events_before(events, split_at),
        test=events_between(events, split_at),
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


def split_holdout(events: DataFrame, cutoff: dt.datetime, rule: str, days: float, n: int) -> Holdout:
    """The holdout ``rule`` names (``last_days``: sized by ``days``; otherwise ``last_n``: by ``n``)."""
    if rule == "last_days":
        return split_last_days(events, cutoff, days)
    return split_last_n(events, cutoff, n)
