"""Approximate nearest neighbours inside Spark: an inverted file (IVF) over product vectors.

Why: the exact neighbours (``collab.topk.blocked``) score every pair of products, which is
quadratic in the catalog (1M products: ~2.6e14 multiply-adds) and puts every product vector in
each item block. An inverted file scores each query only against the products of a few lists:

1. k-means centroids (FAISS, spherical: the vectors are compared by dot product) are trained on
   the driver on a seeded sample of at most ``sample`` vectors: the only vectors the driver holds.
2. A pandas UDF gives every catalog vector its list (nearest centroid) and every query vector its
   ``nprobe`` nearest lists; the centroids travel in the UDF's closure (lists x dim floats).
3. Catalog rows (once) and query rows (once per probed list) are grouped by list, and each list is
   searched in a pandas UDF with a FAISS flat inner-product index: one task holds one list's
   products and the queries that probe it, never the catalog.
4. Each query's best per list are merged into its top ``k`` in the JVM (sort of collected structs).

Inside the probed lists the search is exact, so a true neighbour is missed only when it lies in a
list the query does not probe; recall against the exact path is asserted in tests/spark/test_ann.py
and measured at scale in bench/bench_catalog.py. Cost per query ~ ``nprobe`` x the list size, and
the shuffle carries each query vector ``nprobe`` times (as raw float32 bytes, not Arrow lists).
Deterministic for a seed: the sample is the ``sample`` vectors with the smallest seeded hash of
their id, and k-means is seeded. Ties in similarity go to the lower id, as in ``similar.nearest``.

Queries may carry ids they must never get back (``ivf_search``: a user's excluded products, for
the content candidates). Those ids are masked inside each list search, before any cut, and each
such query probes more lists than ``nprobe`` when needed, until the probed lists hold at least
``k`` + its excluded count products (list sizes counted once in Spark): a query is short of ``k``
only when the catalog is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hybridrec.config import ANN_MODES
from hybridrec.errors import HybridrecError

NEIGHBOURS_SCHEMA = "item_idx int, other_idx int, sim float"
_ASSIGNED_SCHEMA = "id int, list int, probes array<int>, vec binary"
_QUERY_SCHEMA = "id int, probes array<int>, vec binary, excl array<int>"
_PER_LIST_SCHEMA = "query int, others array<int>, sims array<float>"
_KMEANS_ITERATIONS = 20


def use_ivf(mode: str, n: int, auto_above: int) -> bool:
    """Whether ``n`` vectors take the IVF path: ``ivf`` always, ``exact`` never, ``auto`` when
    ``n`` exceeds ``auto_above`` (below it the exact self-join takes seconds and has recall 1)."""
    if mode not in ANN_MODES:
        raise HybridrecError(f"recommend.ann must be one of {', '.join(ANN_MODES)}; got {mode!r}")
    return mode == "ivf" or (mode == "auto" and n > auto_above)


# ``nprobe`` None: probe this share of the lists, at least MIN_PROBES. Measured (bench_catalog.py,
# content candidates, recall@20): 8 probes gave 0.997 / 0.985 / 0.872 at 100k / 300k / 1M products
# (316 / 548 / 1,000 lists: 2.5 / 1.5 / 0.8 % of them), 16 of 1,000 lists (1.6 %) gave 0.989 at 1M.
PROBE_SHARE = 0.016
MIN_PROBES = 8


def probe_count(nprobe: int | None, n_lists: int) -> int:
    """Lists each query probes: ``nprobe``, or max(MIN_PROBES, ceil(PROBE_SHARE x lists)) when None."""
    if nprobe is not None:
        return nprobe
    return max(MIN_PROBES, math.ceil(PROBE_SHARE * n_lists))


def list_count(n: int, lists: int | None, sample: int) -> int:
    """Lists for ``n`` vectors: ``lists``, or ``round(sqrt(n))`` when None (lists of ~sqrt(n)
    products: few enough that a handful of probes finds the neighbours, and each list is one
    task's worth), never more than the sample k-means trains on nor fewer than 1."""
    wanted = lists if lists is not None else round(math.sqrt(max(n, 1)))
    return max(1, min(wanted, n, sample))


def train_centroids(vectors: DataFrame, n_lists: int, sample: int, seed: int) -> np.ndarray:
    """(n_lists, dim) float32 unit centroids from spherical k-means on a seeded sample of
    ``vectors`` (id int, features array<float>): the ``sample`` rows with the smallest
    ``xxhash64(id, seed)``, so the sample does not depend on the partitioning."""
    import faiss

    rows = (
        vectors.select("id", "features")
        .orderBy(F.xxhash64(F.col("id"), F.lit(seed)), F.col("id"))
        .limit(sample)
        .toPandas()
    )
    if rows.empty:
        raise HybridrecError("approximate neighbours need at least one vector; the input has none")
    x = np.ascontiguousarray(np.stack(rows["features"].to_numpy()).astype(np.float32))
    k = min(n_lists, len(x))
    km = faiss.Kmeans(
        x.shape[1],
        k,
        niter=_KMEANS_ITERATIONS,
        seed=seed,
        spherical=True,
        max_points_per_centroid=max(256, math.ceil(len(x) / k)),
        min_points_per_centroid=1,
    )
    km.train(x)
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def _nearest_lists(x: np.ndarray, centroids: np.ndarray, nprobe: int) -> np.ndarray:
    """(len(x), nprobe) list ids by falling dot product with the centroids (ties: lower id)."""
    s = x @ centroids.T
    p = min(nprobe, centroids.shape[0])
    if p < centroids.shape[0]:
        top = np.argpartition(-s, p - 1, axis=1)[:, :p]
    else:
        top = np.broadcast_to(np.arange(centroids.shape[0]), s.shape).copy()
    # sort the probes by score, then id, so the own list comes first and the order is stable
    keys = np.take_along_axis(s, top, axis=1)
    order = np.lexsort((top, -keys), axis=1)
    return np.take_along_axis(top, order, axis=1).astype(np.int32)


def probes_covering(
    x: np.ndarray, centroids: np.ndarray, nprobe: int, sizes: np.ndarray, need: np.ndarray
) -> list[np.ndarray]:
    """Each row's ``nprobe`` nearest lists, extended (nearest first) until the lists hold at
    least ``need`` vectors (``sizes``: vectors per list) or every list is probed: then masking a
    query's ``need - k`` excluded ids can never leave it with fewer than ``k`` candidates."""
    probes = _nearest_lists(x, centroids, nprobe)
    out = list(probes)
    short = np.nonzero(sizes[probes].sum(axis=1) < need)[0]
    if len(short):
        s = x[short] @ centroids.T
        ids = np.broadcast_to(np.arange(centroids.shape[0]), s.shape)
        order = np.lexsort((ids, -s), axis=1)
        cum = np.cumsum(sizes[order], axis=1)
        for r, row in enumerate(short):
            m = max(probes.shape[1], int(np.searchsorted(cum[r], need[row])) + 1)
            out[row] = order[r, : min(m, centroids.shape[0])].astype(np.int32)
    return out


def _matrix(features: pd.Series, centroids: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(np.stack(features.to_numpy()).astype(np.float32))
    if x.shape[1] != centroids.shape[1]:
        raise HybridrecError(
            f"vectors of {x.shape[1]} dimensions against centroids of {centroids.shape[1]}: "
            "every vector of one neighbour search must have the same length"
        )
    return x


def _assigner(centroids: np.ndarray, nprobe: int) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def assign(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            if pdf.empty:
                continue
            x = _matrix(pdf["features"], centroids)
            probes = _nearest_lists(x, centroids, nprobe)
            yield pd.DataFrame(
                {
                    "id": pdf["id"].to_numpy(np.int32),
                    "list": probes[:, 0],
                    "probes": list(probes),
                    "vec": [row.tobytes() for row in x],
                }
            )

    return assign


def _query_assigner(
    centroids: np.ndarray, nprobe: int, sizes: np.ndarray, k: int
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def assign(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            if pdf.empty:
                continue
            x = _matrix(pdf["features"], centroids)
            excl = [np.asarray(e if e is not None else (), dtype=np.int32) for e in pdf["excl"]]
            need = k + np.array([len(e) for e in excl], dtype=np.int64)
            yield pd.DataFrame(
                {
                    "id": pdf["id"].to_numpy(np.int32),
                    "probes": probes_covering(x, centroids, nprobe, sizes, need),
                    "vec": [row.tobytes() for row in x],
                    "excl": excl,
                }
            )

    return assign


def assign_lists(vectors: DataFrame, centroids: np.ndarray, nprobe: int) -> DataFrame:
    """(id, features) → (id, list, probes, vec): the nearest list, the ``nprobe`` nearest lists
    (the first is ``list``) and the vector as float32 bytes (cheap to shuffle and to decode)."""
    return vectors.select("id", "features").mapInPandas(_assigner(centroids, nprobe), _ASSIGNED_SCHEMA)


def search_list(
    query_ids: np.ndarray,
    queries: np.ndarray,
    ids: np.ndarray,
    vectors: np.ndarray,
    k: int,
    exclude_self: bool,
    excluded: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``k`` by dot product of each query among one list's ``vectors`` (FAISS flat
    index): ``(others, sims)``, each (len(queries), k), best first, ties to the lower id; ``-1``
    / ``-inf`` pad a row with fewer than ``k`` candidates. ``exclude_self``: a query id never
    returns itself. ``excluded``: per query, ids it never returns; each query searches deeper by
    its excluded ids that are in this list, so they are removed before the ``k`` are cut."""
    import faiss

    nq = len(query_ids)
    others = np.full((nq, k), -1, dtype=np.int32)
    sims = np.full((nq, k), -np.inf, dtype=np.float32)
    if nq == 0 or len(ids) == 0:
        return others, sims
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    # one more than k when the query may find itself, and one more to settle ties at the cut
    depth = np.full(nq, k + 1 + (1 if exclude_self else 0), dtype=np.int64)
    masked = np.empty(0, dtype=np.int64)
    if excluded is not None:
        rows = np.repeat(np.arange(nq, dtype=np.int64), [len(e) for e in excluded])
        flat = np.concatenate([np.asarray(e, dtype=np.int64) for e in excluded]) if len(rows) else rows
        here = np.isin(flat, ids)
        depth += np.bincount(rows[here], minlength=nq)
        masked = (rows[here] << 32) | flat[here]
    depth = np.minimum(depth, len(ids))
    for kk in np.unique(depth):
        group = np.nonzero(depth == kk)[0]
        d, pos = index.search(queries[group], int(kk))
        got = np.where(pos >= 0, ids[np.maximum(pos, 0)], -1)
        valid = pos >= 0
        if exclude_self:
            valid &= got != query_ids[group, None]
        if len(masked):
            valid &= ~np.isin((group[:, None].astype(np.int64) << 32) | got.astype(np.int64), masked)
        score = np.where(valid, d, -np.inf)
        order = np.lexsort((np.where(valid, got, np.iinfo(np.int32).max), -score), axis=1)[:, :k]
        take = min(k, int(kk))
        got = np.take_along_axis(got, order, axis=1)[:, :take]
        score = np.take_along_axis(score, order, axis=1)[:, :take]
        others[group, :take] = np.where(np.isfinite(score), got, -1)
        sims[group, :take] = score
    return others, sims


def _searcher(k: int, exclude_self: bool) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def search(pdf: pd.DataFrame) -> pd.DataFrame:
        import faiss

        faiss.omp_set_num_threads(1)  # Spark already runs one task per core
        cat, qs = pdf[pdf["in_list"].to_numpy(bool)], pdf[pdf["is_query"].to_numpy(bool)]
        if qs.empty:
            # object columns: an empty float64 column cannot become Arrow's list<int> (a list no
            # query probes, e.g. far fewer queries than lists)
            empty = pd.Series(dtype=object)
            return pd.DataFrame({"query": pd.Series(dtype=np.int32), "others": empty, "sims": empty})
        ids = cat["id"].to_numpy(np.int32)
        vecs = _decode(cat["vec"])
        q_ids = qs["id"].to_numpy(np.int32)
        q_vecs = _decode(qs["vec"])
        excluded = list(qs["excl"]) if "excl" in qs and qs["excl"].notna().any() else None
        if excluded is not None:
            excluded = [np.asarray(e if e is not None else (), dtype=np.int64) for e in excluded]
        others, sims = search_list(q_ids, q_vecs, ids, vecs, k, exclude_self, excluded)
        return pd.DataFrame({"query": q_ids, "others": list(others), "sims": list(sims)})

    return search


def _decode(col: pd.Series) -> np.ndarray:
    if col.empty:
        return np.empty((0, 0), dtype=np.float32)
    raw = b"".join(col.to_numpy())
    return np.frombuffer(raw, dtype=np.float32).reshape(len(col), -1)


def ivf_neighbours(
    queries: DataFrame,
    catalog: DataFrame,
    k: int,
    n: int,
    lists: int | None = None,
    nprobe: int | None = None,
    sample: int = 50_000,
    seed: int = 0,
    exclude_self: bool = False,
) -> DataFrame:
    """(item_idx = query id, other_idx = catalog id, sim float): each query's ``k`` best catalog
    vectors by dot product among its ``nprobe`` nearest lists (None: ``probe_count``; module
    docstring), sorted like
    ``similar.nearest``'s output but without a rank column (the caller ranks).

    ``queries`` / ``catalog``: (id int, features array<float>) of one dimension (pass the same
    DataFrame twice with ``exclude_self=True`` for item-to-item neighbours: an id is never its
    own neighbour; the same DataFrame object is read once). ``n``: the catalog's size (sizes
    the lists without a count). ``lists``: None = ``round(sqrt(n))``. ``sample``: vectors
    k-means trains on; ``seed``: its hash and k-means seed.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if (nprobe is not None and nprobe < 1) or sample < 1:
        raise ValueError(f"nprobe and sample must be at least 1, got {nprobe} and {sample}")
    n_lists = list_count(n, lists, sample)
    nprobe = probe_count(nprobe, n_lists)
    centroids = train_centroids(catalog, n_lists, sample, seed)
    if queries is catalog:
        # one pass: a vector's first probe is its own list, where it is also a catalog row
        rows = assign_lists(catalog, centroids, nprobe).select("id", "vec", F.posexplode("probes").alias("pos", "list"))
        rows = rows.select("list", "id", "vec", (F.col("pos") == 0).alias("in_list"), F.lit(True).alias("is_query"))
    else:
        cat = assign_lists(catalog, centroids, 1).select(
            "list", "id", "vec", F.lit(True).alias("in_list"), F.lit(False).alias("is_query")
        )
        q = assign_lists(queries, centroids, nprobe).select(
            F.explode("probes").alias("list"), "id", "vec", F.lit(False).alias("in_list"), F.lit(True).alias("is_query")
        )
        rows = cat.unionByName(q)
    return _search_and_merge(rows, k, exclude_self)


def _search_and_merge(rows: DataFrame, k: int, exclude_self: bool) -> DataFrame:
    """Rows grouped by list (catalog and query rows, ``_searcher``) → each query's top ``k``
    over its probed lists: (item_idx = query, other_idx, sim), padding dropped."""
    per_list = rows.groupBy("list").applyInPandas(_searcher(k, exclude_self), _PER_LIST_SCHEMA)
    pairs = F.zip_with("sims", "others", lambda s, o: F.struct((-s).alias("neg"), o.alias("other")))
    best = per_list.groupBy("query").agg(F.slice(F.array_sort(F.flatten(F.collect_list(pairs))), 1, k).alias("best"))
    return (
        best.select(F.col("query").alias("item_idx"), F.explode("best").alias("b"))
        .filter(F.col("b.other") >= 0)
        .select("item_idx", F.col("b.other").alias("other_idx"), (-F.col("b.neg")).cast("float").alias("sim"))
    )


def list_sizes(assigned: DataFrame, n_lists: int) -> np.ndarray:
    """Vectors per list of an ``assign_lists`` frame: (n_lists,) int64, collected (lists ints)."""
    sizes = np.zeros(n_lists, dtype=np.int64)
    for r in assigned.groupBy("list").count().collect():
        sizes[r["list"]] = r["count"]
    return sizes


def ivf_search(
    queries: DataFrame,
    catalog: DataFrame,
    k: int,
    n: int,
    lists: int | None = None,
    nprobe: int | None = None,
    sample: int = 50_000,
    seed: int = 0,
) -> DataFrame:
    """(item_idx = query id, other_idx = catalog id, sim float): like ``ivf_neighbours`` for
    queries that are not catalog rows and each carry ids they must never get back.

    ``queries``: (id int, features array<float>, excl array<int>, null = none); ``catalog``:
    (id int, features array<float>). Excluded ids are masked inside each list search, and a
    query probes as many lists past ``nprobe`` as it takes for the probed lists to hold ``k`` +
    len(excl) catalog vectors, so it gets ``min(k, n - excluded)`` results (module docstring).
    Costs one extra pass over the catalog to count the lists' sizes (an action, like the sample).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if (nprobe is not None and nprobe < 1) or sample < 1:
        raise ValueError(f"nprobe and sample must be at least 1, got {nprobe} and {sample}")
    n_lists = list_count(n, lists, sample)
    nprobe = probe_count(nprobe, n_lists)
    centroids = train_centroids(catalog, n_lists, sample, seed)
    cat = assign_lists(catalog, centroids, 1)
    sizes = list_sizes(cat, centroids.shape[0])
    cat = cat.select("list", "id", "vec", F.lit(True).alias("in_list"), F.lit(False).alias("is_query"))
    q = queries.select("id", "features", "excl").mapInPandas(
        _query_assigner(centroids, nprobe, sizes, k), _QUERY_SCHEMA
    )
    q = q.select(
        F.explode("probes").alias("list"),
        "id",
        "vec",
        F.lit(False).alias("in_list"),
        F.lit(True).alias("is_query"),
        "excl",
    )
    rows = cat.withColumn("excl", F.lit(None).cast("array<int>")).unionByName(q)
    return _search_and_merge(rows, k, exclude_self=False)
