"""Content candidates: the products nearest to each user's content profile, scored in blocks.

A user's profile is the weighted sum of the fused (image + text) vectors of their
``recommend.history_items`` most weighted products, normalised; its nearest products by cosine are
the content candidates. The work is distributed over user blocks: one row per block holds the
block's (user, item, weight) history triplets, cross-joined with one row holding every product
vector (``recommend.content_item_block`` at most; a larger catalog needs approximate search, not
this exact one). Each pair is scored in a pandas UDF with numpy/scipy matrix products: no loop
over users on the driver, and the driver never holds the vectors.

The same UDF explains each candidate: its reason product is the history item ``h`` with the
largest contribution ``w_h * cos(e_h, e_j)`` to the candidate's score, i.e. "similar to <h> you
viewed". Purchased products are masked before the top-K is taken.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hybridrec.errors import HybridrecError

CONTENT_SCHEMA = "user_idx int, item_idx int, content_score float, reason_item_idx int"
_CHUNK = 512  # users per matrix product: bounds the score matrix to 512 x items floats


def item_block(vectors: DataFrame, max_items: int, n_items: int) -> DataFrame:
    """``(item_idx int, vec array<float>)`` → one row: sorted ``i_ids`` and flattened ``i_vecs``."""
    if n_items > max_items:
        raise HybridrecError(
            f"{n_items} products have vectors, more than recommend.content_item_block={max_items}: "
            "exact content scoring holds every vector in one block; raise the limit if the executors "
            "have the memory (4 bytes x dimensions per product), or partition the catalog"
        )
    return vectors.agg(F.sort_array(F.collect_list(F.struct("item_idx", "vec"))).alias("_s")).select(
        F.col("_s.item_idx").alias("i_ids"), F.flatten(F.col("_s.vec")).alias("i_vecs")
    )


def user_blocks(rows: DataFrame, n_users: int, block_size: int) -> DataFrame:
    """History rows (user_idx, item_idx, weight, in_profile, excluded) → one row per user block."""
    n_blocks = max(1, math.ceil(n_users / block_size))
    return (
        rows.groupBy(F.pmod(F.xxhash64("user_idx"), F.lit(n_blocks)).alias("u_block"))
        .agg(
            F.sort_array(F.collect_list(F.struct("user_idx", "item_idx", "weight", "in_profile", "excluded"))).alias(
                "_r"
            )
        )
        .select(
            F.col("_r.user_idx").alias("h_user"),
            F.col("_r.item_idx").alias("h_item"),
            F.col("_r.weight").alias("h_weight"),
            F.col("_r.in_profile").alias("h_profile"),
            F.col("_r.excluded").alias("h_excluded"),
        )
    )


def score_block(
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    in_profile: np.ndarray,
    excluded: np.ndarray,
    ids: np.ndarray,
    vecs: np.ndarray,
    k: int,
) -> pd.DataFrame:
    """Score one user block against every product vector (see the module docstring).

    ``users``/``items``/``weights``/``in_profile``/``excluded``: parallel arrays of history rows
    sorted by user; ``ids`` sorted product indices with ``vecs`` (len(ids) x dim, unit rows).
    Returns the top ``k`` non-excluded products per user with a profile, best first.
    """
    from scipy.sparse import csr_matrix

    out: list[pd.DataFrame] = []
    n_items = len(ids)
    if len(users) == 0 or n_items == 0:
        return pd.DataFrame({c: [] for c in ("user_idx", "item_idx", "content_score", "reason_item_idx")})
    pos = np.searchsorted(ids, items)
    pos = np.minimum(pos, n_items - 1)
    known = ids[pos] == items
    users, pos, weights = users[known], pos[known], weights[known].astype(np.float32)
    in_profile, excluded = in_profile[known], excluded[known]
    uniq, starts = np.unique(users, return_index=True)
    ends = np.append(starts[1:], len(users))
    kk = min(k, n_items)
    for a in range(0, len(uniq), _CHUNK):
        chunk = slice(a, min(a + _CHUNK, len(uniq)))
        s0, s1 = starts[chunk][0], ends[chunk][-1]
        row = np.repeat(np.arange(chunk.stop - chunk.start), ends[chunk] - starts[chunk])
        sel = in_profile[s0:s1]
        w = csr_matrix((weights[s0:s1][sel], (row[sel], pos[s0:s1][sel])), shape=(chunk.stop - chunk.start, n_items))
        profile = np.asarray(w @ vecs, dtype=np.float32)
        norms = np.linalg.norm(profile, axis=1)
        has = norms > 0
        if not has.any():
            continue
        profile[has] /= norms[has, None]
        scores = profile @ vecs.T
        own = excluded[s0:s1]
        scores[row[own], pos[s0:s1][own]] = -np.inf
        scores[~has] = -np.inf
        if kk < n_items:
            top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        else:
            top = np.broadcast_to(np.arange(n_items), (scores.shape[0], n_items)).copy()
        top_scores = np.take_along_axis(scores, top, axis=1)
        # Best first; equal scores by product index, so reruns order ties the same way.
        order = np.lexsort((top, -top_scores), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        top_scores = np.take_along_axis(top_scores, order, axis=1)
        reason = _reasons(row[sel], pos[s0:s1][sel], weights[s0:s1][sel], top, vecs)
        r_idx, c_idx = np.nonzero(np.isfinite(top_scores))
        out.append(
            pd.DataFrame(
                {
                    "user_idx": uniq[chunk][r_idx].astype(np.int32),
                    "item_idx": ids[top[r_idx, c_idx]].astype(np.int32),
                    "content_score": top_scores[r_idx, c_idx].astype(np.float32),
                    "reason_item_idx": ids[reason[r_idx, c_idx]].astype(np.int32),
                }
            )
        )
    if not out:
        return pd.DataFrame({c: [] for c in ("user_idx", "item_idx", "content_score", "reason_item_idx")})
    return pd.concat(out, ignore_index=True)


def _reasons(row: np.ndarray, pos: np.ndarray, weight: np.ndarray, top: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """For every (user row, candidate): the profile item with the largest ``w_h * cos(e_h, e_j)``."""
    n_rows = top.shape[0]
    counts = np.bincount(row, minlength=n_rows)
    h_max = max(1, int(counts.max(initial=0)))
    slot = np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    h_pos = np.zeros((n_rows, h_max), dtype=np.int64)
    h_w = np.full((n_rows, h_max), -np.inf, dtype=np.float32)
    h_pos[row, slot] = pos
    h_w[row, slot] = weight
    hist = vecs[h_pos]  # rows x H x dim
    cand = vecs[top]  # rows x K x dim
    sims = np.einsum("uhd,ukd->uhk", hist, cand)
    contrib = np.where(np.isfinite(h_w)[:, :, None], sims * np.maximum(h_w, 0)[:, :, None], -np.inf)
    best = contrib.argmax(axis=1)  # rows x K: slot of the best history item
    return np.take_along_axis(h_pos, best, axis=1)


def _scorer(k: int) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            for r in pdf.itertuples(index=False):
                ids = np.asarray(r.i_ids, dtype=np.int32)
                dim = len(r.i_vecs) // max(1, len(ids))
                vecs = np.asarray(r.i_vecs, dtype=np.float32).reshape(len(ids), dim)
                yield score_block(
                    np.asarray(r.h_user, dtype=np.int32),
                    np.asarray(r.h_item, dtype=np.int32),
                    np.asarray(r.h_weight, dtype=np.float64),
                    np.asarray(r.h_profile, dtype=bool),
                    np.asarray(r.h_excluded, dtype=bool),
                    ids,
                    vecs,
                    k,
                )

    return score


def content_candidates(
    history: DataFrame,
    vectors: DataFrame,
    k: int,
    n_users: int,
    n_items: int,
    user_block: int,
    max_items: int,
) -> DataFrame:
    """Top ``k`` content candidates per user (``CONTENT_SCHEMA``).

    ``history``: (user_idx, item_idx, weight, in_profile, excluded) — the profile rows and every
    excluded row; ``vectors``: (item_idx, vec) unit vectors. Run the action inside
    ``arrow_batch_rows(spark, 1)``: each input row is a whole block.
    """
    pairs = user_blocks(history, n_users, user_block).crossJoin(item_block(vectors, max_items, n_items))
    return pairs.mapInPandas(_scorer(k), CONTENT_SCHEMA)
