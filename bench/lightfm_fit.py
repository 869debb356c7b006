"""LightFM as an external peer of the hybrid recommender: fit on a split folder, write top-K lists.

Runs in .venv-bench (``bash bench/lightfm_env.sh``), no Spark:

    .venv-bench/bin/python bench/lightfm_fit.py --split DIR [--k 100] [--epochs 30] [--components 64]

Why LightFM: it is the best-known hybrid matrix factorisation with item features, so it answers
"does our blend of ALS and content vectors beat one model that learns both jointly?" on the same
split and the same item features.

Input folder (written by the evaluation's split export):

- ``train.parquet``: ``user_id, product_id, weight`` (interactions before the cutoff; repeated pairs
  are summed; non-positive weights are dropped and counted)
- ``item_features.parquet``: ``product_id, category`` and optionally ``vec`` (list<float>, e.g. the
  fused content embedding); these products form the catalog scored, cold ones included
- ``users.parquet``: ``user_id``, the users to write lists for

Model: ``LightFM(loss=warp)`` with the interaction weights as ``sample_weight``; user features =
identity (LightFM's default); item features = identity + one-hot category (+ with ``--vec-bits B``,
B random-hyperplane sign bits of the centred content vector: two features per hyperplane, one per
side, so items with close vectors share most of them; a cheap, seeded way to give LightFM the
content signal without a clustering step). Each item's feature row sums to 1, as
``lightfm.data.Dataset`` normalises it. A cold item (no training interaction) is scored through
its category and content features alone; its identity feature has never been trained.
A user absent from training has no representation: its scores are the item biases alone (LightFM's
own popularity-like fallback), counted as ``unknown_users``.

Output ``recs.parquet`` (default ``<split>/recs.parquet``): ``user_id, rank, product_id, score``,
top K over every product, nothing excluded (the caller filters already-bought items if it wants).
Reproducible with ``--threads 1`` (LightFM's multi-threaded SGD is Hogwild: thread timing changes
the result slightly). A JSON summary (counts, parameters, seconds) is printed on the last line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

SCORE_BATCH = 1024  # users scored per matrix product


@dataclass
class Split:
    train: pd.DataFrame  # user_id, product_id, weight (summed per pair, > 0)
    items: pd.DataFrame  # product_id, category, [vec]
    users: pd.Series  # user ids to score
    dropped_weights: int


def _read(path: Path, columns: list[str], optional: tuple[str, ...] = ()) -> pd.DataFrame:
    if not path.exists():
        raise SystemExit(f"lightfm_fit: missing {path} (the split export writes it)")
    have = pq.read_schema(path).names
    missing = [c for c in columns if c not in have]
    if missing:
        raise SystemExit(f"lightfm_fit: {path} lacks column(s) {', '.join(missing)}; it has {', '.join(have)}")
    return pq.read_table(path, columns=columns + [c for c in optional if c in have]).to_pandas()


def read_split(folder: Path) -> Split:
    train = _read(folder / "train.parquet", ["user_id", "product_id", "weight"])
    items = _read(folder / "item_features.parquet", ["product_id", "category"], optional=("vec",))
    users = _read(folder / "users.parquet", ["user_id"])["user_id"].astype(str).drop_duplicates()
    train = train.astype({"user_id": str, "product_id": str})
    bad = ~(train["weight"] > 0)
    train = train[~bad].groupby(["user_id", "product_id"], as_index=False, sort=False)["weight"].sum()
    items = items.astype({"product_id": str}).drop_duplicates("product_id", keep="first").reset_index(drop=True)
    return Split(train=train, items=items, users=users.reset_index(drop=True), dropped_weights=int(bad.sum()))


def item_features(items: pd.DataFrame, vec_bits: int, seed: int) -> tuple[sp.csr_matrix, dict[str, int]]:
    """Rows = items (in ``items`` order): identity | category one-hot | 2 × vec_bits sign features."""
    n = len(items)
    blocks = [sp.identity(n, dtype=np.float32, format="csr")]
    cats = items["category"].astype("string").fillna("<unknown>")
    codes, uniques = pd.factorize(cats, sort=True)
    blocks.append(sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), codes)), shape=(n, len(uniques))))
    with_vec = 0
    if vec_bits > 0:
        if "vec" not in items.columns:
            raise SystemExit("lightfm_fit: --vec-bits needs a vec column in item_features.parquet")
        has = items["vec"].notna().to_numpy()
        with_vec = int(has.sum())
        rows = np.flatnonzero(has)
        if with_vec:
            vecs = np.stack([np.asarray(v, dtype=np.float64) for v in items.loc[has, "vec"]])
            vecs -= vecs.mean(axis=0)
            planes = np.random.default_rng(seed).standard_normal((vecs.shape[1], vec_bits))
            side = (vecs @ planes > 0).astype(np.int64)  # (items with a vector, bits)
            cols = (2 * np.arange(vec_bits))[None, :] + side
            blocks.append(
                sp.csr_matrix(
                    (np.ones(cols.size, np.float32), (np.repeat(rows, vec_bits), cols.ravel())), shape=(n, 2 * vec_bits)
                )
            )
        else:
            blocks.append(sp.csr_matrix((n, 2 * vec_bits), dtype=np.float32))
    features = sp.hstack(blocks, format="csr", dtype=np.float32)
    row_sums = np.asarray(features.sum(axis=1)).ravel()
    features = sp.diags(1.0 / row_sums).astype(np.float32) @ features
    return features.tocsr(), {
        "categories": len(uniques),
        "items_with_vec": with_vec,
        "item_features": int(features.shape[1]),
    }


def top_k(
    user_emb: np.ndarray, user_bias: np.ndarray, item_emb: np.ndarray, item_bias: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the k best items per user row, best first (ties: lower item index)."""
    scores = user_emb @ item_emb.T + user_bias[:, None] + item_bias[None, :]
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(scores, idx, axis=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", type=Path, required=True, help="folder with train/item_features/users.parquet")
    ap.add_argument("--out", type=Path, help="output Parquet (default: <split>/recs.parquet)")
    ap.add_argument("--k", type=int, default=100, help="list length (default 100)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--components", type=int, default=64, help="embedding size (default 64)")
    ap.add_argument("--loss", default="warp", choices=["warp", "bpr", "logistic", "warp-kos"])
    ap.add_argument("--learning-rate", type=float, default=0.05)
    ap.add_argument("--item-alpha", type=float, default=0.0, help="L2 on item features (per sample)")
    ap.add_argument("--user-alpha", type=float, default=0.0, help="L2 on user features (per sample)")
    ap.add_argument("--max-sampled", type=int, default=10, help="WARP: negatives tried per positive")
    ap.add_argument("--vec-bits", type=int, default=0, help="random-hyperplane bits of the vec column (0: off)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1, help="fit threads (1: reproducible)")
    args = ap.parse_args(argv)
    if args.k < 1 or args.epochs < 1 or args.components < 1 or args.threads < 1 or args.vec_bits < 0:
        ap.error("--k, --epochs, --components and --threads must be at least 1, --vec-bits at least 0")

    from lightfm import LightFM

    t0 = time.perf_counter()
    split = read_split(args.split)
    items = split.items
    item_index = pd.Index(items["product_id"])
    unknown_items = ~split.train["product_id"].isin(item_index)
    train = split.train[~unknown_items]
    if train.empty:
        raise SystemExit("lightfm_fit: no training interaction on a product of item_features.parquet")
    user_index = pd.Index(train["user_id"].drop_duplicates())
    rows = user_index.get_indexer(train["user_id"])
    cols = item_index.get_indexer(train["product_id"])
    shape = (len(user_index), len(item_index))
    interactions = sp.coo_matrix((np.ones(len(train), np.float32), (rows, cols)), shape=shape)
    weights = sp.coo_matrix((train["weight"].to_numpy(np.float32), (rows, cols)), shape=shape)
    features, feature_counts = item_features(items, args.vec_bits, args.seed)
    read_s = time.perf_counter() - t0

    model = LightFM(
        no_components=args.components,
        loss=args.loss,
        learning_rate=args.learning_rate,
        item_alpha=args.item_alpha,
        user_alpha=args.user_alpha,
        max_sampled=args.max_sampled,
        random_state=np.random.RandomState(args.seed),
    )
    t1 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.fit_partial(
            interactions, item_features=features, sample_weight=weights, epochs=1, num_threads=args.threads
        )
        if epoch == 1 or epoch % 10 == 0 or epoch == args.epochs:
            print(
                f"[lightfm] epoch {epoch}/{args.epochs} {time.perf_counter() - t1:.1f} s", file=sys.stderr, flush=True
            )
    fit_s = time.perf_counter() - t1

    t2 = time.perf_counter()
    item_bias, item_emb = model.get_item_representations(features)
    user_bias_known, user_emb_known = model.get_user_representations()
    pos = user_index.get_indexer(split.users)
    known = pos >= 0
    user_emb = np.zeros((len(pos), args.components), np.float32)
    user_bias = np.zeros(len(pos), np.float32)
    user_emb[known] = user_emb_known[pos[known]]
    user_bias[known] = user_bias_known[pos[known]]
    out = args.out or args.split / "recs.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    schema = pa.schema(
        [("user_id", pa.string()), ("rank", pa.int32()), ("product_id", pa.string()), ("score", pa.float32())]
    )
    product_ids = item_index.to_numpy()
    n_rows = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, len(pos), SCORE_BATCH):
            sl = slice(start, start + SCORE_BATCH)
            idx, scores = top_k(user_emb[sl], user_bias[sl], item_emb, item_bias, args.k)
            k = idx.shape[1]
            writer.write_table(
                pa.table(
                    {
                        "user_id": np.repeat(split.users.to_numpy()[sl], k),
                        "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), idx.shape[0]),
                        "product_id": product_ids[idx.ravel()],
                        "score": scores.ravel().astype(np.float32),
                    },
                    schema=schema,
                )
            )
            n_rows += idx.size
    tmp.replace(out)
    score_s = time.perf_counter() - t2

    trained_items = np.zeros(len(item_index), bool)
    trained_items[cols] = True
    summary = {
        "out": str(out),
        "rows": n_rows,
        "counts": {
            "train_pairs": int(len(train)),
            "train_users": len(user_index),
            "items": len(item_index),
            "cold_items": int((~trained_items).sum()),
            "users": int(len(pos)),
            "unknown_users": int((~known).sum()),
            "dropped_weights": split.dropped_weights,
            "dropped_unknown_item_pairs": int(unknown_items.sum()),
            **feature_counts,
        },
        "params": {
            "k": args.k,
            "epochs": args.epochs,
            "components": args.components,
            "loss": args.loss,
            "learning_rate": args.learning_rate,
            "item_alpha": args.item_alpha,
            "user_alpha": args.user_alpha,
            "max_sampled": args.max_sampled,
            "vec_bits": args.vec_bits,
            "seed": args.seed,
            "threads": args.threads,
        },
        "seconds": {"read": round(read_s, 3), "fit": round(fit_s, 3), "score": round(score_s, 3)},
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
