"""bronze.interactions → implicit-feedback confidence per (user, product), ready for ALS.

Why here and not only at ingest: ingest quarantines rows that are bad in themselves (unknown
products, unparseable or future timestamps, NaN or negative weights, duplicates; see
``hybridrec.catalog.validation``), but an ALS fit has its own view of the data: events at or
after the fit's cutoff are the future *for this fit* (a re-run of an old night, a backfill), an
``als.event_weights`` override may not know an event type, and a caller may hand in a DataFrame
that never went through ingest. ``flag_interactions`` marks every row with the first reason it
cannot be used (null = usable) so that read = used + dropped can be counted in one pass.

Confidence (Hu, Koren & Volinsky's implicit-feedback ALS): each event's weight is halved every
``half_life_days`` before the reference time (the cutoff), the decayed weights are summed per
(user, product) and optionally damped with ``log1p`` (repeated views of one item count, but not
linearly). Spark's ALS then uses ``1 + alpha * r`` as the confidence that the user likes the item.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.run_dates import last_event, naive_utc, utc_timestamp

# Drop reasons, in the order they are checked (the first that holds names the row).
MISSING_USER = "missing_user"
MISSING_PRODUCT = "missing_product"
MISSING_TIMESTAMP = "missing_timestamp"
AFTER_CUTOFF = "after_cutoff"
UNKNOWN_EVENT = "unknown_event"
INVALID_WEIGHT = "invalid_weight"  # null, NaN, infinite or negative
ZERO_WEIGHT = "zero_weight"  # carries no signal for implicit ALS
UNKNOWN_PRODUCT = "unknown_product"
DUPLICATE_EVENT = "duplicate_event"  # same (user, product, ts, event) as an earlier usable row
DROP_REASONS = (
    MISSING_USER,
    MISSING_PRODUCT,
    MISSING_TIMESTAMP,
    AFTER_CUTOFF,
    UNKNOWN_EVENT,
    INVALID_WEIGHT,
    ZERO_WEIGHT,
    UNKNOWN_PRODUCT,
    DUPLICATE_EVENT,
)
DROP_REASON = "drop_reason"
EVENT_KEY = ("user_id", "product_id", "ts", "event")
TRANSFORMS = ("sum", "log1p")


def flag_interactions(
    events: DataFrame,
    cutoff: dt.datetime,
    event_weights: Mapping[str, float] | None = None,
    products: DataFrame | None = None,
) -> DataFrame:
    """``events`` (user_id, product_id, ts, event, weight, ...) with ``weight`` recomputed from
    ``event_weights`` when given, and ``drop_reason``: null for a usable row, else the first of
    ``DROP_REASONS`` that applies. Only events strictly before ``cutoff`` are usable.

    ``products`` (a ``product_id`` column), when given, is the catalog events must refer to.
    Of several usable rows with the same (user, product, ts, event) the one with the highest
    weight is kept; the others are ``duplicate_event`` (ingest already keeps the key unique in
    bronze, so these only come from other sources or unions of tables).
    """
    weight = F.col("weight").cast("double")
    if event_weights is not None:
        mapping = F.create_map(*[x for e, w in sorted(event_weights.items()) for x in (F.lit(e), F.lit(float(w)))])
        weight = F.try_element_at(mapping, F.col("event"))
    df = events.withColumn("weight", weight)
    checks: list[tuple[Column, str]] = [
        (F.col("user_id").isNull(), MISSING_USER),
        (F.col("product_id").isNull(), MISSING_PRODUCT),
        (F.col("ts").isNull(), MISSING_TIMESTAMP),
        (F.col("ts") >= utc_timestamp(cutoff), AFTER_CUTOFF),
    ]
    if event_weights is not None:
        checks.append((F.col("weight").isNull(), UNKNOWN_EVENT))
    checks += [
        (
            F.col("weight").isNull()
            | F.isnan("weight")
            | (F.col("weight") < 0)
            | (F.abs(F.col("weight")) == float("inf")),
            INVALID_WEIGHT,
        ),
        (F.col("weight") == 0.0, ZERO_WEIGHT),
    ]
    if products is not None:
        known = products.select("product_id").distinct().withColumn("_known", F.lit(True))
        df = df.join(known, on="product_id", how="left")
        checks.append((F.col("_known").isNull(), UNKNOWN_PRODUCT))
    reason: Column | None = None
    for cond, code in checks:
        reason = F.when(cond, F.lit(code)) if reason is None else reason.when(cond, F.lit(code))
    assert reason is not None
    df = df.withColumn(DROP_REASON, reason)
    w = Window.partitionBy(*EVENT_KEY, F.col(DROP_REASON).isNull()).orderBy(F.col("weight").desc())
    df = df.withColumn(
        DROP_REASON,
        F.when(F.col(DROP_REASON).isNull() & (F.row_number().over(w) > 1), F.lit(DUPLICATE_EVENT)).otherwise(
            F.col(DROP_REASON)
        ),
    )
    return df.drop("_known") if products is not None else df


def count_reasons(flagged: DataFrame) -> dict[str, int]:
    """``read``, ``used`` and one ``dropped_<reason>`` per reason seen (one aggregation)."""
    rows = flagged.groupBy(DROP_REASON).count().collect()
    counts = {"read": 0, "used": 0}
    for row in rows:
        n = int(row["count"])
        counts["read"] += n
        if row[DROP_REASON] is None:
            counts["used"] += n
        else:
            counts[f"dropped_{row[DROP_REASON]}"] = n
    return counts


def usable(flagged: DataFrame) -> DataFrame:
    """The rows of ``flag_interactions`` that an ALS fit uses, without the reason column."""
    return flagged.filter(F.col(DROP_REASON).isNull()).drop(DROP_REASON)


def implicit_confidence(
    events: DataFrame,
    reference: dt.datetime,
    half_life_days: float | None,
    transform: str = "log1p",
) -> DataFrame:
    """Usable events → one row per (user_id, product_id): ``rating`` (the r of ``1 + alpha*r``),
    ``n_events`` and ``last_ts``.

    The decay is relative to ``reference`` (the cutoff): an event ``half_life_days`` before it
    counts half. Events after ``reference`` (none, for usable rows) would count as age 0.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {', '.join(TRANSFORMS)}, got {transform!r}")
    weight = F.col("weight")
    if half_life_days is not None:
        age_days = F.greatest(
            F.lit(0.0),
            (F.unix_micros(utc_timestamp(reference)) - F.unix_micros(F.col("ts"))) / 86_400e6,
        )
        weight = weight * F.pow(F.lit(0.5), age_days / F.lit(float(half_life_days)))
    total = F.sum(weight)
    rating = F.log1p(total) if transform == "log1p" else total
    return events.groupBy("user_id", "product_id").agg(
        rating.cast("double").alias("rating"),
        F.count(F.lit(1)).alias("n_events"),
        F.max("ts").alias("last_ts"),
    )


def data_end(events: DataFrame, cutoff: dt.datetime) -> dt.datetime:
    """The time decay and popularity windows are measured back from: the last usable event before
    ``cutoff`` (naive UTC), or ``cutoff`` when there is none.

    Why not the cutoff itself: on a live feed the two are minutes apart, but a historical log (a
    rating log, a year of past purchases) scored tonight ends months or years before the cutoff,
    and measuring from the cutoff would decay every event to nothing and leave the "last 14 days"
    of popularity empty. One small aggregate (a timestamp reaches the driver).
    """
    last = last_event(events.filter(F.col("ts") < utc_timestamp(cutoff)))
    if last is None:
        return cutoff
    return min(naive_utc(cutoff), last)
