"""Top-K items per user from ALS factors, computed on the executors (never on the driver).

Two ways, both returning ``(user_idx, item_idx, score, rank)`` with rank 1 = highest score:

- ``recommend_for_all``: Spark's ``ALSModel.recommendForAllUsers`` / ``recommendForUserSubset``.
  It blocks the factors (4,096 rows per block), cross-joins the blocks and scores each user
  against each item block one ``sgemv`` at a time in the JVM's Java BLAS, keeping the best K in a
  priority queue, then merges the queues per user.
- ``blocked``: the same block cross join, but each (user block, item block) pair is scored in a
  pandas UDF as one numpy matrix product (``sgemm`` in numpy's OpenBLAS) followed by
  ``argpartition``; a user's best K over several item blocks are merged with a window.

Which is faster is measured in ``bench/bench_als.py`` (``als.topk_method`` picks one). Ties in
score are broken arbitrarily by both. ``exclude`` pairs (what the user already has, see
``collab.exclusion``) are removed *before* the top-K is cut: ``blocked`` masks them inside the
score matrix; ``recommend_for_all`` asks Spark for K plus the largest number any user has to lose,
then drops them, so both return K products each user may still be recommended.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

TOPK_SCHEMA = "user_idx int, item_idx int, score float, rank int"
# Users scored per numpy product inside a block: bounds the score matrix to about
# 512 x item_block floats (64 MiB at 32,768 items).
_USER_CHUNK = 512


def recommend_for_all(
    model: ALSModel, k: int, users: DataFrame | None = None, exclude: DataFrame | None = None
) -> DataFrame:
    """Spark's own top-K (for the users of ``users``' ``user_idx`` column, or for all users),
    without the ``exclude`` pairs (user_idx, item_idx)."""
    extra = 0
    if exclude is not None:
        extra = int(exclude.groupBy("user_idx").count().agg(F.max("count")).first()[0] or 0)
    if users is None:
        recs = model.recommendForAllUsers(k + extra)
    else:
        recs = model.recommendForUserSubset(users.select(model.getUserCol()).distinct(), k + extra)
    out = recs.select(
        F.col(model.getUserCol()).cast("int").alias("user_idx"),
        F.posexplode("recommendations").alias("pos", "rec"),
    ).select(
        "user_idx",
        F.col(f"rec.{model.getItemCol()}").cast("int").alias("item_idx"),
        F.col("rec.rating").cast("float").alias("score"),
        (F.col("pos") + 1).cast("int").alias("rank"),
    )
    if exclude is None:
        return out
    best = Window.partitionBy("user_idx").orderBy(F.col("score").desc(), F.col("item_idx"))
    return (
        out.join(exclude.select("user_idx", "item_idx"), ["user_idx", "item_idx"], "left_anti")
        .withColumn("rank", F.row_number().over(best).cast("int"))
        .filter(F.col("rank") <= k)
    )


def _blocks(
    factors: DataFrame, block_size: int, prefix: str, n: int | None, seen: DataFrame | None = None
) -> tuple[DataFrame, int]:
    """Factors (id, features) → rows of one block each: ids and the row-major factor matrix.

    ``n``: how many rows ``factors`` has (at most), when the caller knows; else counted.
    ``seen`` (id, seen array<int>): per row, item ids to mask; adds ``<prefix>_seen`` (one array
    per row of the block, empty when none).
    """
    n = factors.count() if n is None else n
    n_blocks = max(1, math.ceil(n / block_size))
    fields = ["id", "features"]
    if seen is not None:
        factors = factors.join(seen, "id", "left").withColumn(
            "seen", F.coalesce(F.col("seen"), F.array().cast("array<int>"))
        )
        fields.append("seen")
    blocks = (
        factors.groupBy(F.pmod(F.xxhash64("id"), F.lit(n_blocks)).alias(f"{prefix}_block"))
        .agg(F.sort_array(F.collect_list(F.struct(*fields))).alias("_s"))
        .select(
            f"{prefix}_block",
            F.col("_s.id").alias(f"{prefix}_ids"),
            F.flatten(F.col("_s.features")).alias(f"{prefix}_vecs"),
            *([F.col("_s.seen").alias(f"{prefix}_seen")] if seen is not None else []),
        )
    )
    return blocks, n_blocks


def _score_pairs(k: int, rank_final: bool, exclude_self: bool = False, with_seen: bool = False):
    """The pandas UDF body: each input row is one (user block, item block) pair.

    ``exclude_self``: users and items are the same objects (item-item neighbours); an id never
    scores itself. ``with_seen``: the rows carry ``u_seen`` (per user, item ids it must not get).
    """
    masked = exclude_self or with_seen

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            seen_col = pdf["u_seen"] if with_seen else [None] * len(pdf)
            for u_ids, u_vecs, i_ids, i_vecs, u_seen in zip(
                pdf["u_ids"], pdf["u_vecs"], pdf["i_ids"], pdf["i_vecs"], seen_col
            ):
                users = np.asarray(u_ids, dtype=np.int32)
                items = np.asarray(i_ids, dtype=np.int32)
                if len(users) == 0 or len(items) == 0:
                    continue
                dim = len(u_vecs) // len(users)
                u = np.asarray(u_vecs, dtype=np.float32).reshape(len(users), dim)
                v = np.asarray(i_vecs, dtype=np.float32).reshape(len(items), dim)
                kk = min(k, len(items))
                for a in range(0, len(users), _USER_CHUNK):
                    s = u[a : a + _USER_CHUNK] @ v.T
                    if exclude_self:
                        _mask_self(s, users[a : a + _USER_CHUNK], items)
                    if with_seen:
                        mask_seen(s, u_seen[a : a + _USER_CHUNK], items)
                    if kk < len(items):
                        top = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
                    else:
                        top = np.broadcast_to(np.arange(len(items)), (s.shape[0], kk))
                    top_scores = np.take_along_axis(s, top, axis=1)
                    order = np.argsort(-top_scores, axis=1, kind="stable")
                    top = np.take_along_axis(top, order, axis=1)
                    top_scores = np.take_along_axis(top_scores, order, axis=1)
                    rows = s.shape[0]
                    out = pd.DataFrame(
                        {
                            "user_idx": np.repeat(users[a : a + rows], kk),
                            "item_idx": items[top].ravel(),
                            "score": top_scores.ravel().astype(np.float32),
                            "rank": np.tile(np.arange(1, kk + 1, dtype=np.int32), rows)
                            if rank_final
                            else np.zeros(rows * kk, dtype=np.int32),
                        }
                    )
                    # A masked pair sorts last, so dropping it keeps the ranks 1..n.
                    yield out[np.isfinite(out["score"].to_numpy())] if masked else out

    return score


def _mask_self(scores: np.ndarray, users: np.ndarray, items: np.ndarray) -> None:
    """Set ``scores[r, c]`` to -inf where ``users[r] == items[c]`` (``items`` sorted ascending)."""
    pos = np.minimum(np.searchsorted(items, users), len(items) - 1)
    rows = np.nonzero(items[pos] == users)[0]
    scores[rows, pos[rows]] = -np.inf


def mask_seen(scores: np.ndarray, seen: Sequence[Any], items: np.ndarray) -> None:
    """Set ``scores[r, c]`` to -inf where ``items[c]`` is in ``seen[r]`` (``items`` sorted)."""
    lengths = np.fromiter((0 if x is None else len(x) for x in seen), dtype=np.int64, count=len(seen))
    if lengths.sum() == 0 or len(items) == 0:
        return
    rows = np.repeat(np.arange(len(seen)), lengths)
    wanted = np.concatenate([np.asarray(x, dtype=np.int64) for x in seen if x is not None and len(x)])
    pos = np.minimum(np.searchsorted(items, wanted), len(items) - 1)
    hit = items[pos] == wanted
    scores[rows[hit], pos[hit]] = -np.inf


def seen_lists(exclude: DataFrame) -> DataFrame:
    """Pairs (user_idx, item_idx) → (id, seen array<int>) for ``blocked``."""
    return exclude.groupBy(F.col("user_idx").alias("id")).agg(
        F.collect_list(F.col("item_idx").cast("int")).alias("seen")
    )


def blocked(
    user_factors: DataFrame,
    item_factors: DataFrame,
    k: int,
    user_block: int = 4096,
    item_block: int = 32768,
    sizes: tuple[int, int] | None = None,
    exclude_self: bool = False,
    exclude: DataFrame | None = None,
) -> DataFrame:
    """Top-K by a cross join of factor blocks scored with numpy (see the module docstring).

    ``user_factors`` / ``item_factors``: ``(id int, features array<float>)`` as in
    ``ALSModel.userFactors`` / ``itemFactors`` (restrict ``user_factors`` to score fewer users).
    ``sizes``: (users, items) upper bounds when known, to size the blocks without counting.
    ``exclude_self``: both sides hold the same ids (item neighbours): an id is never its own
    neighbour (masked before the top-K, so each id still gets ``k``). ``exclude`` (user_idx,
    item_idx): pairs masked the same way (what each user already has).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    seen = seen_lists(exclude) if exclude is not None else None
    u_blocks, n_u = _blocks(user_factors, user_block, "u", sizes[0] if sizes else None, seen)
    i_blocks, n_i = _blocks(item_factors, item_block, "i", sizes[1] if sizes else None)
    spark = user_factors.sparkSession
    n_pairs = n_u * n_i
    parallel = max(1, spark.sparkContext.defaultParallelism)
    pairs = u_blocks.crossJoin(i_blocks).repartition(min(n_pairs, 4 * parallel))
    cols = ["u_ids", "u_vecs", "i_ids", "i_vecs"] + (["u_seen"] if seen is not None else [])
    scored = pairs.select(*cols).mapInPandas(
        _score_pairs(k, rank_final=n_i == 1, exclude_self=exclude_self, with_seen=seen is not None), TOPK_SCHEMA
    )
    if n_i == 1:
        return scored
    best = Window.partitionBy("user_idx").orderBy(F.col("score").desc(), F.col("item_idx"))
    return scored.withColumn("rank", F.row_number().over(best).cast("int")).filter(F.col("rank") <= k)


def top_k(
    model: ALSModel,
    k: int,
    method: str,
    users: DataFrame | None = None,
    user_block: int = 4096,
    item_block: int = 32768,
    sizes: tuple[int, int] | None = None,
    exclude: DataFrame | None = None,
) -> DataFrame:
    """Top-K per user of ``model`` by ``method`` (``blocked`` | ``recommend_for_all``).

    ``users`` (a ``user_idx`` column) restricts the users scored; users without factors (cold)
    get nothing. ``sizes``: see ``blocked``. ``exclude`` (user_idx, item_idx): pairs never
    returned, removed before the top-K is cut.
    """
    if method == "recommend_for_all":
        return recommend_for_all(model, k, users, exclude)
    if method != "blocked":
        raise ValueError(f"method must be blocked or recommend_for_all, got {method!r}")
    user_factors = model.userFactors
    if users is not None:
        wanted = users.select(F.col("user_idx").alias("id")).distinct()
        user_factors = user_factors.join(wanted, on="id", how="left_semi")
    return blocked(user_factors, model.itemFactors, k, user_block, item_block, sizes, exclude=exclude)
