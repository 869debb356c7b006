"""Tonight's lists from the learned ranker: the candidate pool of every active user, its pair
features, the ranker's score, then the same filter / cap / top-up / explain as the blend
(``lists.final_lists``), so only the ordering differs between the two.

Night depth (``ranker.night_depth`` = d): the night scores only the pairs that are among the
user's d best of at least one source; such a pair keeps all its sources' scores and ranks, so the
ranker sees the same features as in training (on the whole pool) and only pairs no source ranked
high are never scored. It bounds the pairs per user by d × the number of sources.

The ranker's margin is squashed to (0, 1) (logistic): the top-up rows of ``final_lists`` score
below 0, so a short list is topped up after every ranked candidate, never interleaved.

Cold places (``ranker.cold_slots`` = c, ``ranker.cold_position`` = p): a user's c best cold
candidates (by the ranker's score) are lifted just above the score of the user's (p − c + 1)-th
candidate, so they take places p − c + 1 .. p of the list unless the ranker put them higher
already (the category cap and the exclusions still apply). Why: the ranker learns from the label
window, where few positives are cold products, and so almost never ranks one in a top 10 (fashion
backtest: cold-item recall 0 against 0.0075 for content alone, bench/results/ranker.json).
"""

from __future__ import annotations

import dataclasses

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.config import Config
from hybridrec.hybrid import lists, popular
from hybridrec.hybrid.candidates import candidate_pool
from hybridrec.hybrid.lexical import top_k_pairs
from hybridrec.hybrid.lists import Stage
from hybridrec.hybrid.pair_features import pair_features
from hybridrec.hybrid.ranker import RankerModel, score_pool
from hybridrec.hybrid.scoring import NightInputs, NightScores, night_lexical


def night_features(
    scores: NightScores,
    inputs: NightInputs,
    cfg: Config,
    users: DataFrame | None = None,
    depth: int | None = None,
) -> DataFrame:
    """The pair features of the night's candidate pool for ``users`` (default: every active user),
    cut to the pairs among each source's ``depth`` best for the user (``candidate_pool``; None =
    the whole pool, as the ranker is trained on)."""
    products = inputs.products
    lexical = None
    if cfg.ranker.lexical_neighbours > 0:
        # The night's list is as deep as the deeper of similar items and this source: cut it here.
        nn = top_k_pairs(night_lexical(scores, inputs, cfg), cfg.ranker.lexical_neighbours)
        lexical = nn.select("product_id", F.col("other_product_id").alias("other_id"), "sim")
    pool = candidate_pool(
        users=scores.user_stats if users is None else users,
        history=scores.history,
        usable_events=scores.usable_events,
        reference=scores.reference,
        products=products,
        als=scores.als,
        content=scores.content,
        cold=scores.cold,
        rc=cfg.recommend,
        kc=cfg.ranker,
        lexical=lexical,
        depth=depth,
    )
    vectors = scores.vec_idx.join(scores.item_index, "item_idx").select("product_id", "vec")
    return pair_features(
        pool,
        history=scores.history,
        usable_events=scores.usable_events,
        reference=scores.reference,
        products=products,
        vectors=vectors,
    )


def ranked_candidates(model: RankerModel, features: DataFrame) -> DataFrame:
    """Scored pool rows in ``lists.final_lists``' input shape: user_id, product_id, score in
    (0, 1), source, reason_product_id, cold_item, reason (null: explained later)."""
    scored = score_pool(model, features)
    repeat = ~F.isnan("repeat_score")
    collab = ~F.isnan("als_score") | ~F.isnan("cold_score")
    content = ~F.isnan("content_score") | ~F.isnan("lexical_score")
    source = (
        F.when(repeat, "repeat")
        .when(collab & content, "blend")
        .when(collab, "als")
        .when(content, "content")
        .otherwise("popular")
    )
    reason_id = F.when(repeat, F.col("product_id")).when(content, F.col("reason_product_id"))
    reason = F.when(source == "popular", F.lit("popular right now"))
    return scored.select(
        "user_id",
        "product_id",
        (F.lit(1.0) / (F.lit(1.0) + F.exp(-F.col("score")))).alias("score"),
        source.alias("source"),
        reason_id.alias("reason_product_id"),
        (F.col("item_users") == 0).alias("cold_item"),
        reason.cast("string").alias("reason"),
    )


# Lifted cold rows sit this far apart above the top_n-th score (in the (0, 1) squashed scale), the
# better cold candidate higher; far below any real score gap, far above float rounding.
COLD_STEP = 1e-6


def reserve_cold_slots(ranked: DataFrame, slots: int, position: int) -> DataFrame:
    """``ranked`` (``ranked_candidates`` rows) with each user's ``slots`` best cold rows' score
    raised to just above the user's (``position`` − ``slots`` + 1)-th best score, so that they
    fill places ``position`` − ``slots`` + 1 .. ``position`` (see the module docstring)."""
    if slots <= 0:
        return ranked
    by_user = Window.partitionBy("user_id").orderBy(F.desc("score"), F.col("product_id"))
    by_cold = Window.partitionBy("user_id", "cold_item").orderBy(F.desc("score"), F.col("product_id"))
    last = max(1, position - slots + 1)  # the first of the places kept: cold rows go just above it
    nth = F.max(F.when(F.col("_pos") == last, F.col("score"))).over(Window.partitionBy("user_id"))
    lifted = F.coalesce(nth, F.lit(0.0)) + F.lit(COLD_STEP) * (F.lit(slots + 1) - F.col("_cold_pos"))
    chosen = F.col("cold_item") & (F.col("_cold_pos") <= slots)
    return (
        ranked.withColumn("_pos", F.row_number().over(by_user))
        .withColumn("_cold_pos", F.row_number().over(by_cold))
        .withColumn("score", F.when(chosen, F.greatest("score", lifted)).otherwise(F.col("score")))
        .drop("_pos", "_cold_pos")
    )


def learned_lists(
    scores: NightScores,
    inputs: NightInputs,
    cfg: Config,
    model: RankerModel,
    stage: Stage,
    users: DataFrame | None = None,
) -> lists.Lists:
    """The final list of every active user (or of ``users``, user_id) ordered by ``model`` (see
    the module docstring)."""
    rc = cfg.recommend
    user_stats = scores.user_stats if users is None else scores.user_stats.join(users, "user_id", "left_semi")
    features = night_features(scores, inputs, cfg, user_stats, depth=cfg.ranker.night_depth)
    scored = ranked_candidates(model, features)
    position = min(cfg.ranker.cold_position, rc.top_n)
    ranked = stage(reserve_cold_slots(scored, cfg.ranker.cold_slots, position), "learned")
    pop = popular.popularity(scores.usable_events, scores.reference, rc.popular_days, inputs.products).persist()
    scores._cached.append(pop)  # noqa: SLF001 - the night's own cache list, released by NightScores
    final = lists.final_lists(ranked, scores.history, user_stats, inputs.products, pop, rc, stage=stage)
    return dataclasses.replace(final, scored=ranked)
