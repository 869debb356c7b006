"""Benchmark: similar items (top 20 neighbours per product) for large catalogs through the
approximate inverted-file path (``hybrid.ann``, ``recommend.ann: ivf``), against the exact
blocked self-join where that finishes quickly.

    SPARK_LOCAL_IP=127.0.0.1 nice -n 10 .venv/bin/python bench/bench_catalog.py \
        [--products 100000,300000,1000000] [--exact-up-to 100000] [--queries 10000] [--append]
        [--users 100000] [--content-queries 10000] [--skip-similar] [--nprobe 16]

Writes ``bench/results/catalog.json`` (inputs, machine, figures per size, growth exponent) and
prints a summary.

Inputs (seeded, generated inside Spark by ``chunk_vectors``, so the driver never holds the
catalog): unit 256-d float32 vectors in two levels of clusters, like product embeddings: 64
topics, one sub-cluster per 200 products (a topic centre plus ``SPREAD`` x noise), each product =
its sub-cluster centre + per-dimension noise of ``NOISE``/16, normalised. Nearest cosines are
~0.4 to 0.5: neighbours share a sub-cluster mostly, but sub-clusters of a topic overlap.

Timed: ``similar.nearest`` with ``RecommendConfig()``'s shipped ANN settings (ann: ivf; lists,
nprobe, sample as the defaults) from the generated DataFrame to its Parquet output (so all of it
runs: centroid training, assignment, list search, merge). The exact path (``ann: exact``, the
blocked self-join with the defaults' item block) is timed the same way up to ``--exact-up-to``
products; above that its seconds are extrapolated as quadratic in products (labelled so).

Recall@20: for ``--queries`` products drawn with a seed, the exact top 20 by numpy brute force
over the whole catalog (in this process, after the timed run: only for checking) against the
approximate lists read back from the Parquet output.

Content candidates (``content.content_candidates``, the nightly's per-user source) at the same
sizes: ``--users`` synthetic users (default 100,000), each with a home sub-cluster: 2 to 5
history products drawn from it, and with probability 0.3 one more from anywhere (a second
interest); weights uniform in [0.5, 3]; every item in the profile; the first one excluded
(purchased), so the exclusion path runs. Timed with ``RecommendConfig(ann="ivf")`` and the
shipped ``content_candidates`` (50 per user) from the generated frames to Parquet; the exact block
scoring (``ann: exact``) the same way up to ``--exact-up-to``. Recall@20: the first
``--content-queries`` users (default 10,000; their history regenerated in numpy), exact top 20 by
numpy brute force over the whole catalog for the same normalised weighted profiles with the same
exclusions, against the approximate top 20 read back from the output. ``--skip-similar`` keeps a
size's similar-items figures from ``--out`` (with ``--append``) and runs only the content part.

Each size runs in its own process (a fresh JVM), so the peak memory (RSS sampled every 0.25 s by
``bench_nightly.MemorySampler``: the driver's Python, the JVM, its Python workers) is per size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))
# Spark's Python workers import hybridrec from the same tree as this process.
os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "lib"), os.environ.get("PYTHONPATH", "")]).rstrip(
    os.pathsep
)

import numpy as np  # noqa: E402 - after the sys.path set-up above (runs without an installed package)
import pandas as pd  # noqa: E402 - after the sys.path set-up above (runs without an installed package)

RESULTS = REPO_ROOT / "bench" / "results" / "catalog.json"
DIM = 256
TOP = 20
TOPICS = 64
PER_SUBCLUSTER = 200
SPREAD = 0.6
NOISE = 1.5
CHUNK = 8192  # products generated per chunk (one rng per chunk: independent of the partitioning)
MIB = 1024**2


# ---- pure helpers (tests/unit/test_bench_catalog.py) ------------------------------------------


def subcluster_centres(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    """(max(1, n // PER_SUBCLUSTER), dim) unit centres: a topic centre + SPREAD x noise."""
    rng = np.random.default_rng([seed, 0])
    topics = rng.standard_normal((TOPICS, dim)).astype(np.float32)
    n_sub = max(1, n // PER_SUBCLUSTER)
    sub = topics[rng.integers(0, TOPICS, n_sub)] + SPREAD * rng.standard_normal((n_sub, dim)).astype(np.float32)
    return sub / np.linalg.norm(sub, axis=1, keepdims=True)


def chunk_vectors(chunk: int, n: int, centres: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and unit vectors of products ``chunk * CHUNK`` up to ``n`` (exclusive): the same for a
    chunk whoever generates it (Spark's tasks or the recall check)."""
    lo, hi = chunk * CHUNK, min(n, (chunk + 1) * CHUNK)
    rng = np.random.default_rng([seed, 1, chunk])
    sub = rng.integers(0, len(centres), hi - lo)
    x = centres[sub] + (NOISE / 16) * rng.standard_normal((hi - lo, centres.shape[1])).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.arange(lo, hi, dtype=np.int32), x.astype(np.float32)


def all_vectors(n: int, seed: int) -> np.ndarray:
    """The whole catalog in one array (the recall check only)."""
    centres = subcluster_centres(n, seed)
    out = np.empty((n, centres.shape[1]), dtype=np.float32)  # filled in place: one copy, not two
    for c in range(math.ceil(n / CHUNK)):
        ids, x = chunk_vectors(c, n, centres, seed)
        out[ids] = x
    return out


def exact_top_k(x: np.ndarray, queries: np.ndarray, k: int, batch: int = 512) -> np.ndarray:
    """(len(queries), k) ids of each query's ``k`` best other products by dot product (itself
    excluded), best first, ties to the lower id: brute force in batches."""
    out = np.empty((len(queries), k), dtype=np.int64)
    for a in range(0, len(queries), batch):
        q = queries[a : a + batch]
        s = x[q] @ x.T
        s[np.arange(len(q)), q] = -np.inf
        top = np.argpartition(-s, k, axis=1)[:, : k + 1]
        keys = np.take_along_axis(s, top, axis=1)
        order = np.lexsort((top, -keys), axis=1)[:, :k]
        out[a : a + batch] = np.take_along_axis(top, order, axis=1)
    return out


def recall_at_k(approx: dict[int, Sequence[int]], exact: dict[int, Sequence[int]], k: int) -> float:
    """Mean over the exact lists' queries of |approx ∩ exact| / k (a missing query counts 0)."""
    if not exact:
        raise ValueError("recall needs at least one query")
    return float(np.mean([len(set(approx.get(q, ())[:k]) & set(e[:k])) / k for q, e in exact.items()]))


def growth_exponent(n1: int, t1: float, n2: int, t2: float) -> float:
    """log(t2 / t1) / log(n2 / n1): 1 = linear in products, 2 = quadratic."""
    return float(np.log(t2 / t1) / np.log(n2 / n1))


def sample_queries(n: int, m: int, seed: int) -> np.ndarray:
    """``min(n, m)`` distinct product ids, sorted, drawn with ``seed``."""
    return np.sort(np.random.default_rng([seed, 2]).choice(n, size=min(n, m), replace=False))


def subclusters(n: int, n_sub: int, seed: int) -> np.ndarray:
    """(n,) sub-cluster of every product, as ``chunk_vectors`` draws it (its first draw per chunk)."""
    out = np.empty(n, dtype=np.int32)
    for c in range(math.ceil(n / CHUNK)):
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        out[lo:hi] = np.random.default_rng([seed, 1, c]).integers(0, n_sub, hi - lo)
    return out


USER_CHUNK = 4096  # users generated per chunk (one rng per chunk)


def chunk_users(chunk: int, users: int, members: np.ndarray, starts: np.ndarray, n: int, seed: int) -> pd.DataFrame:
    """History rows (user_idx, item_idx, weight, in_profile, excluded) of users ``chunk *
    USER_CHUNK`` up to ``users``: a home sub-cluster, 2 to 5 of its products, with probability
    0.3 one product from anywhere; ``members``: product ids sorted by sub-cluster, ``starts``:
    each sub-cluster's first position in it (len = sub-clusters + 1)."""
    lo, hi = chunk * USER_CHUNK, min(users, (chunk + 1) * USER_CHUNK)
    rng = np.random.default_rng([seed, 3, chunk])
    rows_u: list[int] = []
    rows_i: list[int] = []
    for u in range(lo, hi):
        home = int(rng.integers(0, len(starts) - 1))
        pool = members[starts[home] : starts[home + 1]]
        m = min(int(rng.integers(2, 6)), len(pool))
        items = rng.choice(pool, size=m, replace=False).tolist() if m else []
        if rng.random() < 0.3 or not items:
            extra = int(rng.integers(0, n))
            if extra not in items:
                items.append(extra)
        rows_u += [u] * len(items)
        rows_i += items
    first = np.r_[True, np.diff(np.asarray(rows_u)) != 0] if rows_u else np.zeros(0, bool)
    return pd.DataFrame(
        {
            "user_idx": np.asarray(rows_u, dtype=np.int32),
            "item_idx": np.asarray(rows_i, dtype=np.int32),
            "weight": rng.uniform(0.5, 3.0, len(rows_u)),
            "in_profile": np.ones(len(rows_u), dtype=bool),
            "excluded": first,
        }
    )


def user_index(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(members, starts) for ``chunk_users``: product ids grouped by sub-cluster."""
    n_sub = max(1, n // PER_SUBCLUSTER)
    sub = subclusters(n, n_sub, seed)
    members = np.argsort(sub, kind="stable").astype(np.int32)
    starts = np.searchsorted(sub[members], np.arange(n_sub + 1)).astype(np.int64)
    return members, starts


def exact_content(x: np.ndarray, hist: pd.DataFrame, k: int, batch: int = 128) -> dict[int, list[int]]:
    """Each user's exact top ``k`` by brute force: profile = normalised weighted sum of the
    in-profile vectors, excluded products removed before the cut, ties to the lower id."""
    hist = hist.sort_values(["user_idx", "item_idx"])
    users, starts = np.unique(hist["user_idx"].to_numpy(), return_index=True)
    w = hist["weight"].to_numpy(np.float32)[:, None] * x[hist["item_idx"].to_numpy()]
    prof = np.add.reduceat(w, starts, axis=0)
    prof /= np.linalg.norm(prof, axis=1, keepdims=True)
    ex = hist[hist["excluded"]]
    ex_row = np.searchsorted(users, ex["user_idx"].to_numpy())
    ex_item = ex["item_idx"].to_numpy()
    out: dict[int, list[int]] = {}
    for a in range(0, len(users), batch):
        s = prof[a : a + batch] @ x.T
        sel = (ex_row >= a) & (ex_row < a + batch)
        s[ex_row[sel] - a, ex_item[sel]] = -np.inf
        top = np.argpartition(-s, k, axis=1)[:, : k + 1]
        keys = np.take_along_axis(s, top, axis=1)
        order = np.lexsort((top, -keys), axis=1)[:, :k]
        for r, row in enumerate(np.take_along_axis(top, order, axis=1)):
            out[int(users[a + r])] = row.tolist()
    return out


# ---- one size, in its own process ---------------------------------------------------------------


def _generator(n: int, seed: int) -> Any:
    centres = subcluster_centres(n, seed)

    def gen(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            for c in pdf["id"].to_numpy():
                ids, x = chunk_vectors(int(c), n, centres, seed)
                yield pd.DataFrame({"id": ids, "features": list(x)})

    return gen


def _user_generator(users: int, members: np.ndarray, starts: np.ndarray, n: int, seed: int) -> Any:
    def gen(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            for c in pdf["id"].to_numpy():
                yield chunk_users(int(c), users, members, starts, n, seed)

    return gen


def worker(
    n: int,
    work: Path,
    out: Path,
    seed: int,
    queries: int,
    exact: bool,
    driver_memory: str,
    users: int = 100_000,
    content_queries: int = 10_000,
    similar_part: bool = True,
    nprobe: int | None = None,
) -> None:
    from pyspark.sql import functions as F

    from bench_nightly import MemorySampler, machine
    from hybridrec.config import RecommendConfig, config_from_dict
    from hybridrec.hybrid import content, similar
    from hybridrec.hybrid.ann import list_count, probe_count
    from hybridrec.models.product_embeddings import arrow_batch_rows
    from hybridrec.spark import build_spark

    cfg = config_from_dict(
        {
            "spark": {
                "master": "local[2]",
                "driver_memory": driver_memory,
                "ui_enabled": False,
                "shuffle_partitions": 16,
                "app_name": "bench-catalog",
                "conf": {"spark.local.dir": str(work / "spark-local")},
            }
        }
    )
    spark = build_spark(cfg.spark)
    jvm = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())  # noqa: SLF001 - the JVM's pid, only through py4j
    sampler = MemorySampler(spark, jvm)
    sampler.start()
    n_chunks = math.ceil(n / CHUNK)
    vectors = spark.range(n_chunks, numPartitions=min(n_chunks, 64)).mapInPandas(
        _generator(n, seed), "id int, features array<float>"
    )
    rc = RecommendConfig(ann="ivf", ann_nprobe=nprobe)
    res: dict[str, Any] = {
        "products": n,
        "machine": machine(),
        "settings": {
            "ann_lists": rc.ann_lists,
            "ann_nprobe": rc.ann_nprobe,
            "nprobe_used": probe_count(rc.ann_nprobe, list_count(n, rc.ann_lists, rc.ann_sample)),
            "ann_sample": rc.ann_sample,
            "ann_seed": rc.ann_seed,
        },
    }

    def timed(name: str, write: Any) -> dict[str, Any]:
        sampler.stage = name
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), sampler.cpu_seconds()
        write(str(work / name))
        sec = time.perf_counter() - t0
        cpu = sampler.cpu_seconds() - c0
        return {
            "seconds": round(sec, 1),
            "cpu_seconds": round(cpu, 1),
            "load_1m_before": round(load, 2),
            "load_1m_after": round(os.getloadavg()[0], 2),
            "peak_memory_mib": sampler.peak(name),
        }

    def run(name: str, rcfg: RecommendConfig) -> dict[str, Any]:
        return timed(
            name,
            lambda path: (
                similar.nearest(vectors, TOP, n, 4096, rcfg.content_item_block, rcfg)
                .write.mode("overwrite")
                .parquet(path)
            ),
        )

    if similar_part:
        res["ivf"] = run("ivf", rc)
        print(f"[bench {n}] ivf {res['ivf']['seconds']} s", flush=True)
        if exact:
            res["exact"] = run("exact", RecommendConfig(ann="exact", content_item_block=max(n, 200_000)))
            print(f"[bench {n}] exact {res['exact']['seconds']} s", flush=True)
        out.write_text(json.dumps(res, indent=1), encoding="utf-8")  # the timings survive a failed check

    members, starts = user_index(n, seed)
    u_chunks = math.ceil(users / USER_CHUNK)
    hist = spark.range(u_chunks, numPartitions=min(u_chunks, 16)).mapInPandas(
        _user_generator(users, members, starts, n, seed),
        "user_idx int, item_idx int, weight double, in_profile boolean, excluded boolean",
    )
    vec_idx = vectors.select(F.col("id").alias("item_idx"), F.col("features").alias("vec"))
    k_c = rc.content_candidates

    def run_content(name: str, rcfg: RecommendConfig) -> dict[str, Any]:
        def write(path: str) -> None:
            df = content.content_candidates(hist, vec_idx, k_c, users, n, rcfg.user_block, max(n, 200_000), rcfg)
            if content.uses_ivf(n, rcfg):
                df.write.mode("overwrite").parquet(path)
            else:
                with arrow_batch_rows(spark, 1):
                    df.write.mode("overwrite").parquet(path)

        return timed(name, write)

    res["content"] = {"users": users, "candidates_per_user": k_c, "ivf": run_content("content_ivf", rc)}
    print(f"[bench {n}] content ivf {res['content']['ivf']['seconds']} s ({users} users)", flush=True)
    if exact:
        res["content"]["exact"] = run_content("content_exact", RecommendConfig(ann="exact"))
        print(f"[bench {n}] content exact {res['content']['exact']['seconds']} s", flush=True)
    sampler.stop()
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")

    got_c = (
        spark.read.parquet(str(work / "content_ivf"))
        .filter(F.col("user_idx") < content_queries)
        .select("user_idx", "item_idx", "content_score", "reason_item_idx")
        .toPandas()
    )
    c_hist = pd.concat(
        [
            chunk_users(c, users, members, starts, n, seed)
            for c in range(math.ceil(min(users, content_queries) / USER_CHUNK))
        ]
    )
    c_hist = c_hist[c_hist["user_idx"] < content_queries]
    q = sample_queries(n, queries, seed)
    got = None
    if similar_part:
        wanted = spark.createDataFrame(pd.DataFrame({"item_idx": q.astype(np.int32)}))
        got = spark.read.parquet(str(work / "ivf")).join(wanted, "item_idx", "left_semi").toPandas()
    spark.stop()
    t0 = time.perf_counter()
    x = all_vectors(n, seed)
    truth_c = exact_content(x, c_hist, TOP)
    got_c = got_c.sort_values(["user_idx", "content_score", "item_idx"], ascending=[True, False, True])
    approx_c = {int(u): g["item_idx"].tolist()[:TOP] for u, g in got_c.groupby("user_idx")}
    excl = set(zip(c_hist.loc[c_hist["excluded"], "user_idx"], c_hist.loc[c_hist["excluded"], "item_idx"]))
    prof = c_hist.groupby("user_idx")["item_idx"].apply(set)
    res["content"]["recall_check"] = {
        "users": len(truth_c),
        "recall_at_20": round(recall_at_k(approx_c, truth_c, TOP), 4),
        "users_short_of_20": int(sum(len(approx_c.get(u, ())) < TOP for u in truth_c)),
        "excluded_returned": int(sum((u, i) in excl for u, i in zip(got_c["user_idx"], got_c["item_idx"]))),
        "reasons_outside_profile": int(
            sum(r not in prof[u] for u, r in zip(got_c["user_idx"], got_c["reason_item_idx"]))
        ),
        "numpy_brute_force_seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"[bench {n}] content recall@20 {res['content']['recall_check']['recall_at_20']}", flush=True)
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")
    if got is None:
        return
    got = got.sort_values(["item_idx", "sim", "other_idx"], ascending=[True, False, True])
    approx = {int(i): g["other_idx"].tolist() for i, g in got.groupby("item_idx")}
    t0 = time.perf_counter()
    truth = exact_top_k(x, q, TOP, batch=128)  # 128 x products floats of scores at a time
    res["recall_check"] = {
        "queries": len(q),
        "recall_at_20": round(recall_at_k(approx, {int(a): b.tolist() for a, b in zip(q, truth)}, TOP), 4),
        "numpy_brute_force_seconds": round(time.perf_counter() - t0, 1),
        "mean_top1_cosine": round(float(np.mean(np.sum(x[q] * x[truth[:, 0]], axis=1))), 3),
        "mean_top20_cosine": round(float(np.mean(np.sum(x[q] * x[truth[:, -1]], axis=1))), 3),
    }
    print(f"[bench {n}] recall@20 {res['recall_check']['recall_at_20']}", flush=True)
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")


# ---- driver ------------------------------------------------------------------------------------


def summarize(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """Growth exponents of the IVF seconds between sizes and the exact path's seconds, measured
    where run and extrapolated (quadratic from the largest measured size) elsewhere."""
    done = sorted((s for s in sizes if "ivf" in s), key=lambda s: s["products"])
    out: dict[str, Any] = {"ivf_growth_exponent": {}, "exact_seconds": {}}
    for a, b in zip(done, done[1:]):
        out["ivf_growth_exponent"][f"{a['products']}->{b['products']}"] = round(
            growth_exponent(a["products"], a["ivf"]["seconds"], b["products"], b["ivf"]["seconds"]), 3
        )
    if len(done) > 1:
        a, b = done[0], done[-1]
        out["ivf_growth_exponent"][f"{a['products']}->{b['products']}"] = round(
            growth_exponent(a["products"], a["ivf"]["seconds"], b["products"], b["ivf"]["seconds"]), 3
        )
    measured = [s for s in done if "exact" in s]
    for s in done:
        if "exact" in s:
            out["exact_seconds"][str(s["products"])] = {"seconds": s["exact"]["seconds"], "measured": True}
        elif measured:
            ref = measured[-1]
            est = ref["exact"]["seconds"] * (s["products"] / ref["products"]) ** 2
            out["exact_seconds"][str(s["products"])] = {
                "seconds": round(est, 0),
                "measured": False,
                "note": f"extrapolated: quadratic in products from {ref['products']}",
            }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--products", default="100000,300000,1000000")
    p.add_argument("--exact-up-to", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=23)
    p.add_argument("--driver-memory", default="8g")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--append", action="store_true", help="keep the sizes already in --out")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--users", type=int, default=100_000, help="users whose content candidates are timed")
    p.add_argument("--content-queries", type=int, default=10_000, help="of them, users checked for recall")
    p.add_argument(
        "--nprobe", type=int, default=None, help="recommend.ann_nprobe for both searches (default: the shipped rule)"
    )
    p.add_argument("--skip-similar", action="store_true", help="content only; keep the size's similar figures")
    p.add_argument("--exact", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(
            args.worker,
            args.work,
            args.work / "result.json",
            args.seed,
            args.queries,
            args.exact,
            args.driver_memory,
            args.users,
            args.content_queries,
            not args.skip_similar,
            args.nprobe,
        )
        return 0
    prev = json.loads(args.out.read_text(encoding="utf-8")) if args.append and args.out.is_file() else {}
    results: dict[str, Any] = {
        "benchmark": "catalog",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "inputs": {
            "dim": DIM,
            "top": TOP,
            "topics": TOPICS,
            "products_per_subcluster": PER_SUBCLUSTER,
            "spread": SPREAD,
            "noise": NOISE,
            "seed": args.seed,
            "queries_for_recall": args.queries,
            "spark": "local[2], driver memory " + args.driver_memory,
        },
        "sizes": [s for s in prev.get("sizes", [])],
    }
    for n in [int(v) for v in args.products.split(",")]:
        work = Path(tempfile.mkdtemp(prefix=f"bench-catalog-{n}-"))
        cmd = [sys.executable, __file__, "--worker", str(n), "--work", str(work), "--seed", str(args.seed)]
        cmd += ["--queries", str(args.queries), "--driver-memory", args.driver_memory]
        cmd += ["--users", str(args.users), "--content-queries", str(args.content_queries)]
        cmd += ["--nprobe", str(args.nprobe)] if args.nprobe is not None else []
        cmd += ["--skip-similar"] if args.skip_similar else []
        cmd += ["--exact"] if n <= args.exact_up_to else []
        rc = subprocess.run(cmd, check=False).returncode
        res = json.loads((work / "result.json").read_text()) if (work / "result.json").is_file() else None
        shutil.rmtree(work, ignore_errors=True)
        old = [s for s in results["sizes"] if s.get("products") == n]
        results["sizes"] = [s for s in results["sizes"] if s.get("products") != n]
        entry = res or {"products": n, "status": f"failed (exit {rc})"}
        if args.nprobe is not None:
            # another nprobe: nested beside the default run's figures of this size
            entry = {**(old[0] if old else {"products": n}), f"nprobe_{args.nprobe}": entry}
        elif args.skip_similar and old:
            # content only this run: the similar-items figures stay those of the earlier run
            entry = {**old[0], **{k: v for k, v in entry.items() if k in ("content", "machine")}}
            if res is None:
                entry["content"] = {"status": f"failed (exit {rc})"}
        elif old and res is not None:
            # the size run again with the defaults: its other nprobe runs stay nested, and the
            # figures it replaces stay under "replaced_run" (nothing measured is dropped)
            nested = {k: v for k, v in old[0].items() if k.startswith("nprobe_")}
            replaced = {k: v for k, v in old[0].items() if not k.startswith("nprobe_") and k != "replaced_run"}
            entry = {**entry, **nested, "replaced_run": replaced}
        results["sizes"].append(entry)
        results["machine"] = (res or {}).get("machine", results.get("machine"))
        results["summary"] = summarize(results["sizes"])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print_summary(results)
    return 0


def print_summary(results: dict[str, Any]) -> None:
    print(f"{'products':>9} {'ivf s':>8} {'exact s':>10} {'recall@20':>9} {'peak MiB (jvm+py)':>18}", end="")
    print(f" {'content ivf s':>13} {'content exact s':>15} {'content recall@20':>17} {'content peak MiB':>16}")
    for s in sorted(results["sizes"], key=lambda s: s["products"]):
        if "ivf" in s:
            ex = results["summary"]["exact_seconds"].get(str(s["products"]), {})
            ex_s = f"{ex['seconds']}{'' if ex.get('measured') else '*'}" if ex else "-"
            peak = s["ivf"]["peak_memory_mib"].get("total", "-")
            rec = s.get("recall_check", {}).get("recall_at_20", "-")
            print(f"{s['products']:>9} {s['ivf']['seconds']:>8} {ex_s:>10} {rec:>9} {peak:>18}", end="")
        else:
            print(f"{s['products']:>9} {s.get('status', '-'):>48}", end="")
        c = s.get("content", {})
        ci, ce = c.get("ivf", {}), c.get("exact", {})
        print(
            f" {ci.get('seconds', '-'):>13} {ce.get('seconds', '-'):>15}"
            f" {c.get('recall_check', {}).get('recall_at_20', '-'):>17}"
            f" {ci.get('peak_memory_mib', {}).get('total', '-'):>16}"
        )
    print("* extrapolated; growth exponents:", results["summary"]["ivf_growth_exponent"])


if __name__ == "__main__":
    sys.exit(main())
