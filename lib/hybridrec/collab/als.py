"""Fit Spark ALS on implicit feedback up to a cutoff: the collaborative half of the hybrid recommender.

Public API (what the nightly job calls)::

    from hybridrec.collab.als import fit_als
    from hybridrec.collab.refit import run_als
    from hybridrec.collab.store import load_id_mappings, save_id_mappings, save_model, write_outputs

    # Everything in one call: read bronze.interactions (pinned snapshot) and the stored id
    # mappings, fit (tune / evaluate as configured), append new ids, save the model with its
    # parameters and metrics, write factors and candidates for run_date, log to MLflow.
    result = run_als(spark, cfg, cutoff, run_date, counts=ctx.run.counts)

    # Or step by step (transform, then load):
    user_ids, item_ids = load_id_mappings(spark, cfg)
    result = fit_als(spark, cfg, interactions, cutoff, user_ids=user_ids, item_ids=item_ids)
    result.user_factors   # user_id, factors array<float>         (keyed by the original ids)
    result.item_factors   # product_id, factors array<float>
    result.candidates     # user_id, product_id, score, rank       (top als.top_k, rank 1 = best)
    result.user_ids, result.item_ids          # the whole persistent mappings after this fit
    result.new_user_ids, result.new_item_ids  # the rows to append (save_id_mappings)
    result.params, result.metrics, result.trials, result.counts, result.model

``cutoff`` is exclusive: events at or after it are not used (counted as ``after_cutoff``), and
time decay is measured back from it. The nightly job passes the start of its run date (UTC).
``fit_als`` does not write anything; factor and candidate DataFrames are lazy (computing them
reuses the model's cached factors), so write each once or persist them; ``result.release()``
frees what ``fit_als`` cached.

Steps: (1) flag unusable events (``confidence.flag_interactions``; counts per reason logged and
reconciled: read = used + dropped); (2) extend the id mappings with the ids seen (``ids``);
(3) with ``als.tune``: grid/random search on the validation window (``tuning``); (4) with
``als.evaluate``: fit on the training part of the temporal holdout and score Recall, Precision,
NDCG, MAP and coverage at ``als.eval_k`` against popularity and random baselines (``holdout_metrics``),
as ``metrics["als_ndcg@10"]``, ``metrics["popularity_ndcg@10"]``, ...; (5) fit
on everything before the cutoff with the chosen parameters and compute top-K (``topk``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.collab import ids
from hybridrec.collab.blas import log_linear_algebra
from hybridrec.collab.confidence import count_reasons, data_end, flag_interactions, implicit_confidence, usable
from hybridrec.collab.estimator import AlsParams, fit_model
from hybridrec.collab.exclusion import effective_rule, excluded_pairs
from hybridrec.collab.holdout_metrics import (
    indexed_pairs,
    indexed_ratings,
    prefixed,
    prepare_holdout,
    score_model,
    score_popularity,
    score_random,
)
from hybridrec.collab.topk import top_k
from hybridrec.collab.tuning import Trial, tune
from hybridrec.config import Config, to_dict
from hybridrec.errors import MissingInputError
from hybridrec.runs import redact
from hybridrec.splits import Holdout, split_holdout

log = logging.getLogger(__name__)


@dataclass
class AlsResult:
    """What one ALS fit produced (see the module docstring)."""

    model: ALSModel
    params: AlsParams
    model_version: str
    cutoff: dt.datetime
    user_factors: DataFrame
    item_factors: DataFrame
    candidates: DataFrame
    user_ids: DataFrame
    item_ids: DataFrame
    new_user_ids: DataFrame
    new_item_ids: DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    trials: list[Trial] = field(default_factory=list)
    fit_seconds: float = 0.0
    linear_algebra: dict[str, Any] = field(default_factory=dict)
    _cached: list[DataFrame] = field(default_factory=list, repr=False)

    def metadata(self, cfg: Config) -> dict[str, Any]:
        """What is saved next to the model (``als.json``) and logged to MLflow."""
        return {
            "model_version": self.model_version,
            "cutoff": self.cutoff.isoformat(),
            "params": self.params.as_dict(),
            "metrics": self.metrics,
            "counts": self.counts,
            "fit_seconds": round(self.fit_seconds, 2),
            "tuning": [t.as_dict() for t in self.trials],
            "linear_algebra": self.linear_algebra,
            "config": {k: (redact(v) if isinstance(v, str) else v) for k, v in to_dict(cfg)["als"].items()},
        }

    def release(self) -> None:
        """Unpersist what ``fit_als`` cached (the model's own factors stay with the model)."""
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()


def model_version(cutoff: dt.datetime) -> str:
    """``als-20260101T000000Z``: one version per cutoff, so re-running a night overwrites it."""
    utc = cutoff.astimezone(dt.UTC) if cutoff.tzinfo else cutoff
    return f"als-{utc:%Y%m%dT%H%M%S}Z"


def fit_als(
    spark: SparkSession,
    cfg: Config,
    interactions: DataFrame,
    cutoff: dt.datetime,
    *,
    user_ids: DataFrame | None = None,
    item_ids: DataFrame | None = None,
    products: DataFrame | None = None,
    params: AlsParams | None = None,
) -> AlsResult:
    """Fit ALS on ``interactions`` (bronze.interactions' columns) strictly before ``cutoff``.

    ``user_ids`` / ``item_ids``: the stored mappings (``store.load_id_mappings``); None = none
    yet. ``products`` (a ``product_id`` column): when given, events on other products are
    dropped as ``unknown_product``. ``params``: fixed parameters (skips tuning); None = tuned
    when ``als.tune``, else ``als.rank/reg_param/alpha/max_iter``.

    Raises ``MissingInputError`` when no usable interaction is left.
    """
    als = cfg.als
    t_start = time.perf_counter()
    linear_algebra = log_linear_algebra(spark)
    counts: dict[str, int] = {}
    flagged = flag_interactions(interactions, cutoff, als.event_weights, products).persist()
    reasons = count_reasons(flagged)
    dropped = {k: v for k, v in reasons.items() if k.startswith("dropped_")}
    counts.update({f"interactions_{k}": v for k, v in reasons.items()})
    if reasons["read"] != reasons["used"] + sum(dropped.values()):  # pragma: no cover - invariant
        raise AssertionError(f"interaction counts do not reconcile: {reasons}")
    log.info(
        "interactions before %s: %d read = %d used + %d dropped %s",
        cutoff.isoformat(),
        reasons["read"],
        reasons["used"],
        sum(dropped.values()),
        {k.removeprefix("dropped_"): v for k, v in sorted(dropped.items())},
    )
    if reasons["used"] == 0:
        flagged.unpersist()
        raise MissingInputError(
            f"no usable interactions before {cutoff.isoformat()} ({reasons['read']} read): run "
            f"jobs/ingest.py first, or pick a later cutoff / run date"
        )
    events = usable(flagged)

    stored_users = user_ids if user_ids is not None else ids.empty_mapping(spark, ids.USERS)
    stored_items = item_ids if item_ids is not None else ids.empty_mapping(spark, ids.ITEMS)
    users, new_users = ids.extend_mapping(stored_users, events, ids.USERS, cutoff)
    items, new_items = ids.extend_mapping(stored_items, events, ids.ITEMS, cutoff)
    users, items = users.persist(), items.persist()
    counts["new_user_ids"], counts["new_item_ids"] = new_users.count(), new_items.count()
    counts["user_ids"], counts["item_ids"] = users.count(), items.count()
    log.info(
        "id mappings: %d users (%d new), %d items (%d new)",
        counts["user_ids"],
        counts["new_user_ids"],
        counts["item_ids"],
        counts["new_item_ids"],
    )
    cached: list[DataFrame] = [flagged, users, items, new_users, new_items]

    metrics: dict[str, float] = {}
    trials: list[Trial] = []
    chosen = params or AlsParams.from_config(als)
    # Decay and holdout windows end where the data ends (``confidence.data_end``), not at a
    # cutoff that may lie long after a historical log.
    reference = data_end(events, cutoff)
    rc = cfg.recommend
    rule = effective_rule(events, rc.exclude, rc.purchase_events)
    if (als.tune and params is None) or als.evaluate:
        test_split = split_holdout(events, reference, als.holdout, als.holdout_days, als.holdout_n)
        if als.tune and params is None:
            val_split = split_holdout(
                test_split.train, test_split.reference, als.tune_holdout, als.holdout_days, als.holdout_n
            )
            validation = prepare_holdout(val_split, users, items, als, rule, rc.purchase_events)
            counts.update({f"val_{k}": v for k, v in validation.counts.items()})
            if validation.counts["warm_test_users"] and validation.counts["train_pairs"]:
                chosen, trials = tune(validation, cfg, chosen)
            else:
                log.warning("tuning skipped: the validation window has no warm users; using config parameters")
            validation.unpersist()
        if als.evaluate:
            metrics.update(_evaluate(test_split, users, items, chosen, cfg, counts, rule))

    ratings = indexed_ratings(
        implicit_confidence(events, reference, als.half_life_days, als.transform), users, items
    ).persist()
    cached.append(ratings)
    counts["pairs"] = ratings.count()
    model, fit_seconds = fit_model(ratings, chosen, cfg)
    user_factors = ids.to_id(model.userFactors.withColumnRenamed("id", "user_idx"), users, ids.USERS).select(
        "user_id", F.col("features").alias("factors")
    )
    item_factors = ids.to_id(model.itemFactors.withColumnRenamed("id", "item_idx"), items, ids.ITEMS).select(
        "product_id", F.col("features").alias("factors")
    )
    # What each user already has never becomes a candidate (removed before the top-K is cut).
    pairs = excluded_pairs(events, rule, rc.purchase_events)
    exclude = indexed_pairs(pairs, users, items) if pairs is not None else None
    counts["excluded_pairs"] = exclude.count() if exclude is not None else 0
    recs = top_k(
        model,
        als.top_k,
        als.topk_method,
        user_block=als.topk_user_block,
        item_block=als.topk_item_block,
        sizes=(counts["user_ids"], counts["item_ids"]),
        exclude=exclude,
    )
    candidates = ids.to_id(ids.to_id(recs, users, ids.USERS), items, ids.ITEMS).select(
        "user_id", "product_id", "score", "rank"
    )
    metrics["fit_seconds"] = fit_seconds
    log.info("fit_als done in %.1fs (final fit %.1fs) %s", time.perf_counter() - t_start, fit_seconds, chosen.as_dict())
    return AlsResult(
        model=model,
        params=chosen,
        model_version=model_version(cutoff),
        cutoff=cutoff,
        user_factors=user_factors,
        item_factors=item_factors,
        candidates=candidates,
        user_ids=users,
        item_ids=items,
        new_user_ids=new_users,
        new_item_ids=new_items,
        counts=counts,
        metrics=metrics,
        trials=trials,
        fit_seconds=fit_seconds,
        linear_algebra=linear_algebra,
        _cached=cached,
    )


def _evaluate(
    test_split: Holdout,
    users: DataFrame,
    items: DataFrame,
    params: AlsParams,
    cfg: Config,
    counts: dict[str, int],
    rule: str,
) -> dict[str, float]:
    """Fit on the holdout's training part; ALS and popularity metrics on its warm test users
    (pairs the exclusion ``rule`` removes are neither recommended nor relevant)."""
    als = cfg.als
    data = prepare_holdout(test_split, users, items, als, rule, cfg.recommend.purchase_events)
    counts.update({f"eval_{k}": v for k, v in data.counts.items()})
    try:
        if not (data.counts["warm_test_users"] and data.counts["train_pairs"]):
            log.warning("evaluation skipped: the test window (%s) has no warm users", test_split.rule)
            return {}
        model, seconds = fit_model(data.train, params, cfg)
        scores = {
            "als": score_model(model, data, als.eval_k, als),
            "popularity": score_popularity(data, als.eval_k),
            "random": score_random(data, als.eval_k, als.seed),
        }
        del model
    finally:
        data.unpersist()
    out: dict[str, float] = {"eval_fit_seconds": seconds}
    for name, metrics in scores.items():
        metrics.pop("users", None)
        out.update(prefixed(metrics, name))
    key, recall = f"ndcg@{als.eval_k}", f"recall@{als.eval_k}"
    log.info(
        "evaluation (%s, %d warm users): %s / %s  ALS %.4f / %.4f | popularity %.4f / %.4f | random %.4f / %.4f",
        test_split.rule,
        data.counts["warm_test_users"],
        key,
        recall,
        *[scores[n][m] for n in scores for m in (key, recall)],
    )
    return out
