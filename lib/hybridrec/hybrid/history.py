"""What each user did before the night: per (user, product) weights, what is excluded from their
lists (``recommend.exclude``), and the counts the blend weights are made of (distinct items per
user, distinct users per item).

Pure transforms over usable interaction rows (``collab.confidence.usable``): the same rows ALS
fits on, so the collaborative and content signals see the same past.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.collab.exclusion import excluded_flag
from hybridrec.run_dates import utc_timestamp

# The verb a reason uses for the strongest event of a (user, product) pair.
VERBS = {"purchase": "bought", "cart": "added to your cart", "view": "viewed"}
DEFAULT_VERB = "interacted with"
# The reason when the candidate is itself in the user's history (what recommend.exclude allows back).
OWN = {"cart": "still in your cart", "view": "you viewed this", "purchase": "buy it again"}


def decayed_weight(reference: dt.datetime, half_life_days: float | None) -> F.Column:
    """An event's weight halved every ``half_life_days`` before ``reference`` (null = no decay)."""
    weight = F.col("weight")
    if half_life_days is None:
        return weight
    age_days = F.greatest(F.lit(0.0), (F.unix_micros(utc_timestamp(reference)) - F.unix_micros(F.col("ts"))) / 86_400e6)
    return weight * F.pow(F.lit(0.5), age_days / F.lit(float(half_life_days)))


def user_item_history(
    events: DataFrame,
    reference: dt.datetime,
    half_life_days: float | None,
    exclude: str,
    purchase_events: Sequence[str],
) -> DataFrame:
    """Usable events → one row per (user_id, product_id).

    Columns: ``weight`` (sum of event weights decayed as of ``reference``), ``n_events``,
    ``last_ts``, ``excluded`` (the pair may not be recommended: ``exclusion.excluded_flag`` of the
    effective ``exclude`` rule) and ``event`` (the pair's strongest event type, for the reason's
    verb; ties go to the latest).
    """
    w = decayed_weight(reference, half_life_days)
    strongest = F.max_by(F.col("event"), F.struct(F.col("weight"), F.col("ts"), F.col("event")))
    return events.groupBy("user_id", "product_id").agg(
        F.sum(w).cast("double").alias("weight"),
        F.count(F.lit(1)).alias("n_events"),
        F.max("ts").alias("last_ts"),
        excluded_flag(exclude, purchase_events).alias("excluded"),
        strongest.alias("event"),
    )


def user_counts(history: DataFrame) -> DataFrame:
    """(user_id, n_items): distinct products per user."""
    return history.groupBy("user_id").agg(F.count(F.lit(1)).cast("long").alias("n_items"))


def item_counts(history: DataFrame) -> DataFrame:
    """(product_id, n_users): distinct users per product."""
    return history.groupBy("product_id").agg(F.count(F.lit(1)).cast("long").alias("n_users"))


def top_history(history: DataFrame, n: int) -> DataFrame:
    """Each user's ``n`` most weighted pairs (ties: latest, then product_id), with ``h_rank``."""
    order = Window.partitionBy("user_id").orderBy(F.col("weight").desc(), F.col("last_ts").desc(), F.col("product_id"))
    return history.withColumn("h_rank", F.row_number().over(order)).filter(F.col("h_rank") <= n)


def verb(event: F.Column) -> F.Column:
    """The reason's verb for an event type column."""
    expr = F.lit(DEFAULT_VERB)
    for name, text in VERBS.items():
        expr = F.when(event == name, F.lit(text)).otherwise(expr)
    return expr


def own_reason(event: F.Column) -> F.Column:
    """The reason text for recommending a product the user already interacted with."""
    return (
        F.when(event == "cart", F.lit(OWN["cart"]))
        .when(event == "purchase", F.lit(OWN["purchase"]))
        .otherwise(F.lit(OWN["view"]))
    )


def repeat_candidates(users: DataFrame, history: DataFrame) -> DataFrame:
    """For ``users`` (user_id) whose lists are short: the products they already have that
    ``recommend.exclude`` lets back into a list (``excluded`` false), strongest first.

    Why: with repeats allowed (Online Retail: customers re-order the same products) a user with
    one or two products is better served by those than by the best sellers; ALS does this for
    users with factors, the popular top-up did not. Scores in (-0.5, -0.25]: above every popular
    fill, below every blended score, so a list is topped up, never reordered. Under ``interacted``
    every history pair is excluded and this is empty.

    Columns: user_id, product_id, score, reason, source ('repeat'), reason_product_id, cold_item.
    """
    own = history.filter(~F.col("excluded")).join(users, "user_id", "left_semi")
    share = F.col("weight") / F.max("weight").over(Window.partitionBy("user_id"))
    return own.select(
        "user_id",
        "product_id",
        (F.lit(-0.5) + 0.25 * F.coalesce(share, F.lit(0.0))).cast("double").alias("score"),
        own_reason(F.col("event")).alias("reason"),
        F.lit("repeat").alias("source"),
        F.lit(None).cast("string").alias("reason_product_id"),
        F.lit(False).alias("cold_item"),
    )
