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

Large catalogs (``recommend.ann``, ``hybrid.ann.use_ivf``) take the approximate path instead
(``ivf_candidates``), where no process holds every product vector and the cost is near-linear in
products: the profiles are computed per user block from the profile rows joined with their
vectors, searched in the inverted file (``ann.ivf_search``: excluded products masked inside the
list search, before the top ``k`` is cut, and enough lists probed that nobody is left short), and
the reasons are computed per user block from the candidates and the profile rows, each joined
with its vectors. Same schema, same scores (cosines to the same profile), same reasons; recall
against this exact path is asserted in tests/spark/test_content_ann.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hybridrec.config import RecommendConfig
from hybridrec.errors import HybridrecError
from hybridrec.hybrid import ann

CONTENT_SCHEMA = "user_idx int, item_idx int, content_score float, reason_item_idx int"
_CHUNK = 512  # users per matrix product: bounds the score matrix to 512 x items floats
_IVF_BLOCK = 1024  # most users per group of the approximate path's profile and reason UDFs
_REASON_CHUNK = 256  # users per einsum in ``reasons_for``: 256 x (history + k) vectors at a time


def night_vectors(embeddings: DataFrame, version: str) -> DataFrame:
    """(product_id, vec, text_vec, photo, type_prob) of content model ``version`` from
    gold.product_embeddings rows: the fused vector every content search uses, the text vector (null
    without a title), whether the product has a photo (``similar.nearest_on_shared``) and the
    probability of its predicted type (null where none; ``recommend.similar_lexical_doubt``)."""
    return embeddings.filter(F.col("model_version") == version).select(
        "product_id",
        F.col("fused_emb").alias("vec"),
        F.col("text_emb").alias("text_vec"),
        F.col("image_emb").isNotNull().alias("photo"),
        F.nanvl(F.col("predicted_prob"), F.lit(None).cast("double")).alias("type_prob"),
    )


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


def uses_ivf(n_items: int, rc: RecommendConfig | None) -> bool:
    """Whether ``content_candidates`` takes the approximate path for ``n_items`` products (then
    its UDFs want ordinary Arrow batches, not the exact path's one block per batch)."""
    return rc is not None and ann.use_ivf(rc.ann, n_items, rc.ann_auto_above)


def content_candidates(
    history: DataFrame,
    vectors: DataFrame,
    k: int,
    n_users: int,
    n_items: int,
    user_block: int,
    max_items: int,
    rc: RecommendConfig | None = None,
) -> DataFrame:
    """Top ``k`` content candidates per user (``CONTENT_SCHEMA``).

    ``history``: (user_idx, item_idx, weight, in_profile, excluded) — the profile rows and every
    excluded row; ``vectors``: (item_idx, vec) unit vectors. Exact unless ``rc`` picks the
    approximate inverted-file search for ``n_items`` products (``uses_ivf``, ``ivf_candidates``).
    Run the exact path's action inside ``arrow_batch_rows(spark, 1)``: each input row is a whole
    block.
    """
    if rc is not None and uses_ivf(n_items, rc):
        return ivf_candidates(history, vectors, k, n_users, n_items, user_block, rc)
    pairs = user_blocks(history, n_users, user_block).crossJoin(item_block(vectors, max_items, n_items))
    return pairs.mapInPandas(_scorer(k), CONTENT_SCHEMA)


# ---- approximate path -----------------------------------------------------------------------------


def _to_bytes(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for pdf in batches:
        if pdf.empty:
            continue
        x = np.ascontiguousarray(np.stack(pdf["vec"].to_numpy()).astype(np.float32))
        yield pd.DataFrame({"item_idx": pdf["item_idx"].to_numpy(np.int32), "vb": [r.tobytes() for r in x]})


def _decode(col: pd.Series) -> np.ndarray:
    return np.frombuffer(b"".join(col.to_numpy()), dtype=np.float32).reshape(len(col), -1)


def profile_vectors(users: np.ndarray, weights: np.ndarray, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Profile rows sorted by user (``users``, float weights, their unit ``vecs``) → (user ids,
    unit profiles) of the users whose weighted sum is not zero, as ``score_block`` forms them."""
    if len(users) == 0:
        return np.empty(0, np.int32), np.empty((0, vecs.shape[1] if vecs.ndim == 2 else 0), np.float32)
    uniq, starts = np.unique(users, return_index=True)
    prof = np.add.reduceat(weights.astype(np.float32)[:, None] * vecs, starts, axis=0).astype(np.float32)
    norms = np.linalg.norm(prof, axis=1)
    has = norms > 0
    return uniq[has].astype(np.int32), prof[has] / norms[has, None]


def _profiler(pdf: pd.DataFrame) -> pd.DataFrame:
    pdf = pdf.sort_values(["user_idx", "item_idx"], kind="stable")
    uid, prof = profile_vectors(pdf["user_idx"].to_numpy(np.int32), pdf["weight"].to_numpy(), _decode(pdf["vb"]))
    return pd.DataFrame({"id": uid, "features": list(prof)})


def reasons_for(
    c_users: np.ndarray,
    c_vecs: np.ndarray,
    h_users: np.ndarray,
    h_items: np.ndarray,
    h_weights: np.ndarray,
    h_vecs: np.ndarray,
) -> np.ndarray:
    """For each candidate row (``c_users`` sorted, with its vector): the profile item of its user
    (``h_*`` rows sorted by user then item) with the largest ``w_h * cos(e_h, e_j)`` — ``_reasons``
    on rows instead of one block's matrix (ties to the lower item, negative weights count 0)."""
    out = np.full(len(c_users), -1, dtype=np.int32)
    users = np.unique(c_users)
    for a in range(0, len(users), _REASON_CHUNK):
        chunk = users[a : a + _REASON_CHUNK]
        c_sel = np.nonzero(np.isin(c_users, chunk))[0]
        h_sel = np.nonzero(np.isin(h_users, chunk))[0]
        if len(h_sel) == 0:
            continue
        c_row, h_row = np.searchsorted(chunk, c_users[c_sel]), np.searchsorted(chunk, h_users[h_sel])
        h_slot = np.arange(len(h_sel)) - np.searchsorted(h_row, h_row)
        c_slot = np.arange(len(c_sel)) - np.searchsorted(c_row, c_row)
        hist = np.zeros((len(chunk), int(h_slot.max()) + 1, h_vecs.shape[1]), dtype=np.float32)
        w = np.full(hist.shape[:2], -np.inf, dtype=np.float32)
        item = np.full(hist.shape[:2], -1, dtype=np.int32)
        hist[h_row, h_slot], w[h_row, h_slot], item[h_row, h_slot] = h_vecs[h_sel], h_weights[h_sel], h_items[h_sel]
        cand = np.zeros((len(chunk), int(c_slot.max()) + 1, c_vecs.shape[1]), dtype=np.float32)
        cand[c_row, c_slot] = c_vecs[c_sel]
        sims = np.einsum("uhd,ukd->uhk", hist, cand)
        contrib = np.where(np.isfinite(w)[:, :, None], sims * np.maximum(w, 0)[:, :, None], -np.inf)
        best = contrib.argmax(axis=1)  # users x K: slot of the best history item
        out[c_sel] = item[c_row, best[c_row, c_slot]]
    return out


def _reasoner(cands: pd.DataFrame, hist: pd.DataFrame) -> pd.DataFrame:
    if cands.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _CONTENT_DTYPES.items()})
    # best first, ties by lower item_idx, as the exact path emits them
    cands = cands.sort_values(["user_idx", "content_score", "item_idx"], ascending=[True, False, True], kind="stable")
    hist = hist.sort_values(["user_idx", "item_idx"], kind="stable")
    reason = reasons_for(
        cands["user_idx"].to_numpy(np.int32),
        _decode(cands["vb"]),
        hist["user_idx"].to_numpy(np.int32),
        hist["item_idx"].to_numpy(np.int32),
        hist["weight"].to_numpy(np.float32),
        _decode(hist["vb"]) if len(hist) else np.empty((0, 0), np.float32),
    )
    return pd.DataFrame(
        {
            "user_idx": cands["user_idx"].to_numpy(np.int32),
            "item_idx": cands["item_idx"].to_numpy(np.int32),
            "content_score": cands["content_score"].to_numpy(np.float32),
            "reason_item_idx": reason,
        }
    )


_CONTENT_DTYPES = {"user_idx": "int32", "item_idx": "int32", "content_score": "float32", "reason_item_idx": "int32"}


def ivf_candidates(
    history: DataFrame,
    vectors: DataFrame,
    k: int,
    n_users: int,
    n_items: int,
    user_block: int,
    rc: RecommendConfig,
) -> DataFrame:
    """``content_candidates`` through the inverted file (module docstring): same inputs and
    ``CONTENT_SCHEMA``; the search settings are ``rc``'s ``ann_*``. Groups of at most
    ``min(user_block, 1024)`` users form the profiles and the reasons, so a task holds its users'
    profile and candidate vectors, never the catalog."""
    n_blocks = max(1, math.ceil(n_users / min(user_block, _IVF_BLOCK)))
    block = F.pmod(F.xxhash64("user_idx"), F.lit(n_blocks)).alias("u_block")
    vb = vectors.select("item_idx", "vec").mapInPandas(_to_bytes, "item_idx int, vb binary")
    prof_rows = (
        history.filter(F.col("in_profile"))
        .select("user_idx", "item_idx", F.col("weight").cast("double").alias("weight"))
        .join(vb, "item_idx")
    )
    profiles = prof_rows.groupBy(block).applyInPandas(_profiler, "id int, features array<float>")
    excl = (
        history.filter(F.col("excluded"))
        .groupBy(F.col("user_idx").alias("id"))
        .agg(F.sort_array(F.collect_set("item_idx")).alias("excl"))
    )
    queries = profiles.join(excl, "id", "left")
    catalog = vectors.select(F.col("item_idx").alias("id"), F.col("vec").alias("features"))
    found = ann.ivf_search(
        queries, catalog, k, n_items, rc.ann_lists, rc.ann_nprobe, rc.ann_sample, rc.ann_seed
    ).select(
        F.col("item_idx").alias("user_idx"), F.col("other_idx").alias("item_idx"), F.col("sim").alias("content_score")
    )
    cands = found.join(vb, "item_idx").select("user_idx", "item_idx", "content_score", "vb")
    return cands.groupBy(block).cogroup(prof_rows.groupBy(block)).applyInPandas(_reasoner, CONTENT_SCHEMA)
