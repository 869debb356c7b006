"""The offline protocol: a temporal split, the users and items judged, and the segments.

Why temporal: the nightly job scores with everything before a night and is useful when users act
afterwards. So every system sees the usable events before ``cutoff`` and is judged on what users
did in ``[cutoff, cutoff + test_days)``: a product the user interacted with (any event) in that
window is *relevant*, unless ``recommend.exclude`` removes it from the user's lists (every system
drops those, so it could never be hit). ``evaluate.relevant: all`` keeps them relevant: the
setting that compares exclusion rules on one yardstick (what users really did next, repeats
included).

Users judged: those with at least one usable event before the cutoff (the systems know them) and
at least one relevant product. Users whose first event falls after the cutoff are counted, not
judged: no system here has anything to say about them before their first event.

Products: the catalog as of the end of the test window (``listed_at`` before it, or unknown), so
products listed during the window are candidates, as the nightly freshness stage makes them the
day after they are listed. A product with no usable event before the cutoff is *cold*.

Segments (``SEGMENTS``), each a set of (user, relevant product) pairs:

- ``all_users``: every judged user, every relevant product
- ``few_interactions``: judged users with at most ``evaluate.few_interactions`` events before the cutoff
- ``warm_items``: relevant products with events before the cutoff (users with at least one)
- ``cold_items``: relevant products without (users with at least one)

Item segments keep each user's whole list and restrict only what counts as relevant: Recall@K on
cold items is the share of a user's relevant cold products found in the top K.

The time cut itself is ``hybridrec.splits`` (``window_end``, ``events_between``) and the default
cutoff ``run_dates.default_evaluation_cutoff``; what this module adds is the evaluation's own rule
of which of the events count, for whom, and in which segment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hybridrec.collab.confidence import flag_interactions, usable
from hybridrec.collab.exclusion import effective_rule, excluded_pairs
from hybridrec.config import Config
from hybridrec.errors import HybridrecError
from hybridrec.run_dates import utc_timestamp
from hybridrec.splits import events_between, window_end

SEGMENTS = ("all_users", "few_interactions", "warm_items", "cold_items")


@dataclass
class Split:
    """A temporal split of bronze.interactions (see the module docstring)."""

    cutoff: dt.datetime
    end: dt.datetime
    products: DataFrame  # the catalog at ``end``: bronze.products rows
    relevant: DataFrame  # segment, user_id, product_id
    users: DataFrame  # user_id, n_events (before the cutoff): the judged users
    warm_items: DataFrame  # product_id: products with usable events before the cutoff
    counts: dict[str, int] = field(default_factory=dict)


def temporal_split(cfg: Config, products: DataFrame, interactions: DataFrame, cutoff: dt.datetime) -> Split:
    """Split at ``cutoff`` (naive UTC) with ``evaluate.test_days`` of test window."""
    ev = cfg.evaluate
    end = window_end(cutoff, ev.test_days)
    catalog = products.filter(F.col("listed_at").isNull() | (F.col("listed_at") < utc_timestamp(end)))
    window = events_between(interactions, cutoff, end)
    # The same rules as the nightly job for what counts (known product, known event, weight > 0).
    # The flagged events are cached once: every count below would otherwise re-read and re-flag them.
    before = (
        usable(flag_interactions(interactions, cutoff, cfg.als.event_weights, catalog))
        .select("user_id", "product_id", "event")
        .persist()
    )
    after = (
        usable(flag_interactions(window, end, cfg.als.event_weights, catalog)).select("user_id", "product_id").persist()
    )
    n_events = before.groupBy("user_id").agg(F.count(F.lit(1)).alias("n_events"))
    rule = effective_rule(before, cfg.recommend.exclude, cfg.recommend.purchase_events)
    excluded = excluded_pairs(before, rule, cfg.recommend.purchase_events) if ev.relevant == "allowed" else None
    warm_items = before.select("product_id").distinct().persist()
    pairs = after.select("user_id", "product_id").distinct()
    if excluded is not None:
        pairs = pairs.join(excluded, ["user_id", "product_id"], "left_anti")
    judged = pairs.join(n_events, "user_id", "inner")
    users = judged.select("user_id", "n_events").distinct().persist()
    cold = judged.join(warm_items, "product_id", "left_anti")
    relevant = (
        judged.select(F.lit("all_users").alias("segment"), "user_id", "product_id")
        .unionByName(
            judged.filter(F.col("n_events") <= ev.few_interactions).select(
                F.lit("few_interactions").alias("segment"), "user_id", "product_id"
            )
        )
        .unionByName(
            judged.join(warm_items, "product_id", "left_semi").select(
                F.lit("warm_items").alias("segment"), "user_id", "product_id"
            )
        )
        .unionByName(cold.select(F.lit("cold_items").alias("segment"), "user_id", "product_id"))
    ).persist()
    counts = {
        "train_events": before.count(),
        "test_events": after.count(),
        "test_users": pairs.select("user_id").distinct().count(),
        "judged_users": users.count(),
        "catalog_products": catalog.count(),
        "warm_products": warm_items.count(),
    }
    counts["test_users_new"] = counts["test_users"] - counts["judged_users"]
    per_segment = (
        relevant.groupBy("segment")
        .agg(F.countDistinct("user_id").alias("users"), F.count(F.lit(1)).alias("pairs"))
        .collect()
    )
    before.unpersist()  # relevant, users and warm_items are materialised by now
    after.unpersist()
    for row in per_segment:
        counts[f"{row['segment']}_users"] = int(row["users"])
        counts[f"{row['segment']}_relevant_pairs"] = int(row["pairs"])
    if counts["judged_users"] == 0:
        raise HybridrecError(
            f"no user has events both before {cutoff:%Y-%m-%d} and in the {ev.test_days:g} days after it: "
            "pick another evaluate.cutoff (or evaluate.test_days)"
        )
    return Split(
        cutoff=cutoff, end=end, products=catalog, relevant=relevant, users=users, warm_items=warm_items, counts=counts
    )
