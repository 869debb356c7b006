"""What a user already has, and so is never recommended to them again (``recommend.exclude``).

One rule for every list the project builds: ALS candidates (``gold.als_candidates``, removed
before the top-K is cut, so a heavy buyer does not run out of ALS products), content candidates,
popular top-ups, the final lists, the offline evaluation's systems and its relevant sets.

- ``interacted``: every (user, product) with a usable event before the cutoff
- ``purchased``: pairs with an event in ``recommend.purchase_events``. A log that has no such
  event at all (a rating log, a click log) would otherwise behave as "nothing purchased" and keep
  every seen item in the lists; it is treated as ``interacted`` and a warning says so.
- ``none``: nothing is excluded (repeat purchases are recommendable)

Why not hard-coded: repeat purchases are real in retail (Online Retail's customers re-order the
same products), rare in fashion; the backtest decides per catalog (conf/).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)

INTERACTED, PURCHASED, NONE = "interacted", "purchased", "none"


def effective_rule(events: DataFrame, rule: str, purchase_events: Sequence[str]) -> str:
    """``rule``, except ``purchased`` on events without any purchase event → ``interacted``.

    ``events``: usable interaction rows (an ``event`` column). One small action (``limit(1)``).
    """
    if rule != PURCHASED:
        return rule
    if events.filter(F.col("event").isin(list(purchase_events))).limit(1).count() == 0:
        log.warning(
            "recommend.exclude=purchased but no event is one of recommend.purchase_events %s: every "
            "interacted product is excluded instead (set recommend.exclude=none to allow repeats)",
            list(purchase_events),
        )
        return INTERACTED
    return rule


def excluded_flag(rule: str, purchase_events: Sequence[str]) -> Column:
    """An aggregate over one (user, product) group's events: true when the pair is excluded."""
    if rule == INTERACTED:
        return F.lit(True)
    if rule == PURCHASED:
        return F.max(F.col("event").isin(list(purchase_events)))
    return F.lit(False)


def excluded_pairs(events: DataFrame, rule: str, purchase_events: Sequence[str]) -> DataFrame | None:
    """Distinct (user_id, product_id) pairs ``rule`` excludes; None for ``none``."""
    if rule == NONE:
        return None
    if rule == PURCHASED:
        events = events.filter(F.col("event").isin(list(purchase_events)))
    return events.select("user_id", "product_id").distinct()
