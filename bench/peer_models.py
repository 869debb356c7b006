"""The two open-source peers of bench/bench_retail.py as functions: implicit's ALS and LightFM WARP
with title features, each fitted on a split folder (bench/peer_io.py) and returning top-K lists
with the excluded pairs removed before the cut.

Pure numpy / scipy / pandas at import; ``implicit`` and ``lightfm`` are imported inside the fit
functions, so the feature and top-K code is unit tested in the product's .venv without them.

- implicit (``implicit.cpu.als.AlternatingLeastSquares``): the user x item matrix holds
  c = 1 + alpha * r (Hu, Koren & Volinsky's confidence, the convention of Spark's ALS; implicit
  uses the stored value itself as c and p = 1 on stored pairs), so implicit's own ``alpha`` stays 1
  and the grid's alpha means the same as ``als.alpha``. Items: those with training pairs (a cold
  item has no factors, as in hybridrec's ALS). Lists: ``recommend(..., filter_already_liked_items
  =True)`` with the *excluded* pairs as the "liked" matrix, so exactly the evaluation's excluded
  pairs are removed before the top N is cut. Users absent from training get no list.
- LightFM WARP: interactions = the training pairs, ``sample_weight`` = r; item features =
  identity + the bag of title tokens (``title_features``), every row summing to 1 as
  ``lightfm.data.Dataset`` normalises it; a cold item is scored through its title tokens. Lists:
  the exact scores over every item, excluded pairs set to −inf, then the top K
  (``masked_top_k``). A user absent from training is scored by the item biases alone.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

SCORE_BATCH = 1024  # users scored per matrix product
_TOKEN = re.compile(r"[a-z0-9]+")


# ---- features and top-K (pure) -------------------------------------------------------------------


def title_tokens(title: str | None, min_chars: int = 2) -> list[str]:
    """Lower-cased alphanumeric words of a product title, each once, in order of appearance;
    words shorter than ``min_chars`` and pure numbers (sizes, pack counts) left out."""
    if title is None or (not isinstance(title, str) and pd.isna(title)):
        return []
    seen: dict[str, None] = {}
    for tok in _TOKEN.findall(str(title).lower()):
        if len(tok) >= min_chars and not tok.isdigit():
            seen.setdefault(tok, None)
    return list(seen)


def title_features(titles: Sequence[str | None], min_df: int = 2) -> tuple[sp.csr_matrix, list[str]]:
    """Item features, rows in ``titles`` order: identity | one column per title token found in at
    least ``min_df`` titles (a token of one product only says what its identity already says).
    Each row sums to 1. Returns the matrix and the token vocabulary (column order after identity)."""
    if min_df < 1:
        raise ValueError(f"min_df must be at least 1, got {min_df}")
    tokens = [title_tokens(t) for t in titles]
    df: dict[str, int] = {}
    for toks in tokens:
        for tok in toks:
            df[tok] = df.get(tok, 0) + 1
    vocab = sorted(t for t, n in df.items() if n >= min_df)
    col = {t: j for j, t in enumerate(vocab)}
    rows, cols = [], []
    for i, toks in enumerate(tokens):
        for tok in toks:
            if tok in col:
                rows.append(i)
                cols.append(col[tok])
    n = len(titles)
    bag = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(vocab)))
    features = sp.hstack([sp.identity(n, dtype=np.float32, format="csr"), bag], format="csr", dtype=np.float32)
    row_sums = np.asarray(features.sum(axis=1)).ravel()
    return (sp.diags(1.0 / row_sums).astype(np.float32) @ features).tocsr(), vocab


def pair_matrix(
    users: pd.Index,
    items: pd.Index,
    user_ids: Iterable[str],
    product_ids: Iterable[str],
    values: Sequence[float] | None = None,
) -> sp.csr_matrix:
    """users x items CSR of the (user, product) pairs whose ids are in both indexes (others are
    dropped); value 1, or ``values``. Repeated pairs are summed."""
    rows = users.get_indexer(pd.Index(list(user_ids), dtype=object))
    cols = items.get_indexer(pd.Index(list(product_ids), dtype=object))
    keep = (rows >= 0) & (cols >= 0)
    data = np.ones(int(keep.sum()), np.float32) if values is None else np.asarray(values, np.float32)[keep]
    m = sp.csr_matrix((data, (rows[keep], cols[keep])), shape=(len(users), len(items)), dtype=np.float32)
    m.sum_duplicates()
    return m


def masked_top_k(scores: np.ndarray, mask: sp.csr_matrix | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k best items per row of ``scores`` (users x items), best first,
    ties by lower item index, after the items stored in ``mask``'s row (same shape) are removed.
    A row with fewer than k items left gets −1 indices and −inf scores in its last places."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    if mask is not None:
        if mask.shape != scores.shape:
            raise ValueError(f"mask shape {mask.shape} != scores shape {scores.shape}")
        coo = mask.tocoo()
        scores[coo.row, coo.col] = -np.inf
    k = min(k, scores.shape[1])
    if k == 0:
        return np.empty((scores.shape[0], 0), np.int64), np.empty((scores.shape[0], 0))
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    top = np.take_along_axis(scores, idx, axis=1)
    idx = np.where(np.isfinite(top), idx, -1)
    return idx, top


def lists_frame(user_ids: np.ndarray, idx: np.ndarray, scores: np.ndarray, product_ids: np.ndarray) -> pd.DataFrame:
    """Top-K arrays (rows = ``user_ids``) as ``user_id, rank, product_id, score`` rows; the −1
    slots of ``masked_top_k`` (nothing left to list) are dropped, so ranks stay 1..n."""
    k = idx.shape[1]
    frame = pd.DataFrame(
        {
            "user_id": np.repeat(np.asarray(user_ids, dtype=object), k),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), idx.shape[0]),
            "item": idx.ravel(),
            "score": scores.ravel().astype(np.float32),
        }
    )
    frame = frame[frame["item"] >= 0]
    frame["product_id"] = np.asarray(product_ids, dtype=object)[frame["item"].to_numpy()]
    return frame[["user_id", "rank", "product_id", "score"]].reset_index(drop=True)


def expand_grid(grid: dict[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the grid's key order (last key fastest)."""
    if not grid:
        return [{}]
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid[{key!r}] must be a non-empty list, got {values!r}")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


# ---- implicit ------------------------------------------------------------------------------------

IMPLICIT_DEFAULTS = {"factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15}


def fit_implicit(
    train: pd.DataFrame,
    users: pd.Series,
    exclude: pd.DataFrame | None,
    params: dict[str, Any],
    k: int,
    seed: int,
    threads: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """implicit's ALS on ``train`` (user_id, product_id, weight = r) and its top ``k`` for
    ``users`` with the ``exclude`` pairs removed first (module docstring). Returns the lists and
    counts/seconds."""
    from implicit.cpu.als import AlternatingLeastSquares

    p = {**IMPLICIT_DEFAULTS, **params}
    user_index = pd.Index(train["user_id"].drop_duplicates())
    item_index = pd.Index(train["product_id"].drop_duplicates())
    confidence = 1.0 + float(p["alpha"]) * train["weight"].to_numpy(np.float64)
    cui = pair_matrix(user_index, item_index, train["user_id"], train["product_id"], confidence)
    model = AlternatingLeastSquares(
        factors=int(p["factors"]),
        regularization=float(p["regularization"]),
        alpha=1.0,
        iterations=int(p["iterations"]),
        random_state=seed,
        num_threads=threads,
    )
    t0 = time.perf_counter()
    model.fit(cui, show_progress=False)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    pos = user_index.get_indexer(pd.Index(users, dtype=object))
    known = np.flatnonzero(pos >= 0)
    ex = (
        pair_matrix(user_index, item_index, exclude["user_id"], exclude["product_id"])
        if exclude is not None
        else sp.csr_matrix(cui.shape, dtype=np.float32)
    )
    parts = []
    for start in range(0, len(known), SCORE_BATCH):
        rows = pos[known[start : start + SCORE_BATCH]]
        ids, scores = model.recommend(rows, ex[rows], N=min(k, len(item_index)), filter_already_liked_items=True)
        ids = np.where(np.isfinite(scores) & (ids >= 0), ids, -1)
        parts.append(
            lists_frame(np.asarray(users)[known[start : start + SCORE_BATCH]], ids, scores, item_index.to_numpy())
        )
    lists = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["user_id", "rank", "product_id", "score"])
    )
    return lists, {
        "params": p,
        "fit_s": fit_s,
        "score_s": time.perf_counter() - t1,
        "counts": {
            "train_users": len(user_index),
            "train_items": len(item_index),
            "train_pairs": int(cui.nnz),
            "users": len(pos),
            "unknown_users": int((pos < 0).sum()),
            "excluded_pairs_masked": int(ex.nnz),
        },
    }


# ---- LightFM -------------------------------------------------------------------------------------

LIGHTFM_DEFAULTS = {
    "no_components": 64,
    "epochs": 30,
    "learning_rate": 0.05,
    "loss": "warp",
    "max_sampled": 10,
    "item_alpha": 0.0,
    "user_alpha": 0.0,
}


def fit_lightfm(
    train: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.Series,
    exclude: pd.DataFrame | None,
    params: dict[str, Any],
    k: int,
    seed: int,
    threads: int,
    min_df: int = 2,
    snapshots: Sequence[int] = (),
) -> Iterable[tuple[int, pd.DataFrame, dict[str, Any]]]:
    """LightFM WARP with identity + title-token item features (module docstring). Trains
    ``params['epochs']`` epochs one at a time and yields ``(epoch, lists, info)`` after each epoch
    in ``snapshots`` and after the last, so that one run gives the grid's shorter epoch counts (the
    first E epochs of a seeded run are the E-epoch run)."""
    from lightfm import LightFM

    p = {**LIGHTFM_DEFAULTS, **params}
    item_index = pd.Index(items["product_id"])
    features, vocab = title_features(list(items["title"]), min_df)
    known_items = train["product_id"].isin(item_index)
    train = train[known_items]
    user_index = pd.Index(train["user_id"].drop_duplicates())
    interactions = pair_matrix(user_index, item_index, train["user_id"], train["product_id"]).tocoo()
    weights = pair_matrix(
        user_index, item_index, train["user_id"], train["product_id"], train["weight"].to_numpy()
    ).tocoo()
    model = LightFM(
        no_components=int(p["no_components"]),
        loss=p["loss"],
        learning_rate=float(p["learning_rate"]),
        item_alpha=float(p["item_alpha"]),
        user_alpha=float(p["user_alpha"]),
        max_sampled=int(p["max_sampled"]),
        random_state=np.random.RandomState(seed),
    )
    pos = user_index.get_indexer(pd.Index(users, dtype=object))
    known = pos >= 0
    ex_users = pd.Index(np.asarray(users, dtype=object))
    ex = pair_matrix(ex_users, item_index, exclude["user_id"], exclude["product_id"]) if exclude is not None else None
    counts = {
        "train_users": len(user_index),
        "items": len(item_index),
        "train_pairs": int(interactions.nnz),
        "dropped_unknown_item_pairs": int((~known_items).sum()),
        "title_tokens": len(vocab),
        "item_features": int(features.shape[1]),
        "users": len(pos),
        "unknown_users": int((~known).sum()),
        "excluded_pairs_masked": int(ex.nnz) if ex is not None else 0,
    }
    fit_s = 0.0
    last = int(p["epochs"])
    for epoch in range(1, last + 1):
        t0 = time.perf_counter()
        model.fit_partial(interactions, item_features=features, sample_weight=weights, epochs=1, num_threads=threads)
        fit_s += time.perf_counter() - t0
        if epoch not in snapshots and epoch != last:
            continue
        t1 = time.perf_counter()
        item_bias, item_emb = model.get_item_representations(features)
        user_bias_known, user_emb_known = model.get_user_representations()
        user_emb = np.zeros((len(pos), user_emb_known.shape[1]), np.float32)
        user_bias = np.zeros(len(pos), np.float32)
        user_emb[known] = user_emb_known[pos[known]]
        user_bias[known] = user_bias_known[pos[known]]
        parts = []
        for start in range(0, len(pos), SCORE_BATCH):
            sl = slice(start, start + SCORE_BATCH)
            scores = user_emb[sl] @ item_emb.T + user_bias[sl, None] + item_bias[None, :]
            idx, top = masked_top_k(scores, ex[sl] if ex is not None else None, k)
            parts.append(lists_frame(np.asarray(users, dtype=object)[sl], idx, top, item_index.to_numpy()))
        lists = pd.concat(parts, ignore_index=True)
        yield (
            epoch,
            lists,
            {"params": {**p, "epochs": epoch}, "fit_s": fit_s, "score_s": time.perf_counter() - t1, "counts": counts},
        )


FITTERS: dict[str, Callable[..., Any]] = {"implicit": fit_implicit, "lightfm": fit_lightfm}
