"""Benchmark: similar items (top 20 neighbours per product) for large catalogs through the
approximate inverted-file path (``hybrid.ann``, ``recommend.ann: ivf``), against the exact
blocked self-join where that finishes quickly.

    SPARK_LOCAL_IP=127.0.0.1 nice -n 10 .venv/bin/python bench/bench_catalog.py \
        [--products 100000,300000,1000000] [--exact-up-to 100000] [--queries 10000] [--append]

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


# ---- one size, in its own process ---------------------------------------------------------------


def _generator(n: int, seed: int) -> Any:
    centres = subcluster_centres(n, seed)

    def gen(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            for c in pdf["id"].to_numpy():
                ids, x = chunk_vectors(int(c), n, centres, seed)
                yield pd.DataFrame({"id": ids, "features": list(x)})

    return gen


def worker(n: int, work: Path, out: Path, seed: int, queries: int, exact: bool, driver_memory: str) -> None:
    from bench_nightly import MemorySampler, machine
    from hybridrec.config import RecommendConfig, config_from_dict
    from hybridrec.hybrid import similar
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
    rc = RecommendConfig(ann="ivf")
    res: dict[str, Any] = {
        "products": n,
        "machine": machine(),
        "settings": {
            "ann_lists": rc.ann_lists,
            "ann_nprobe": rc.ann_nprobe,
            "ann_sample": rc.ann_sample,
            "ann_seed": rc.ann_seed,
        },
    }

    def run(name: str, rcfg: RecommendConfig) -> dict[str, Any]:
        sampler.stage = name
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), sampler.cpu_seconds()
        similar.nearest(vectors, TOP, n, 4096, rcfg.content_item_block, rcfg).write.mode("overwrite").parquet(
            str(work / name)
        )
        sec = time.perf_counter() - t0
        cpu = sampler.cpu_seconds() - c0
        return {
            "seconds": round(sec, 1),
            "cpu_seconds": round(cpu, 1),
            "load_1m_before": round(load, 2),
            "load_1m_after": round(os.getloadavg()[0], 2),
            "peak_memory_mib": sampler.peak(name),
        }

    res["ivf"] = run("ivf", rc)
    print(f"[bench {n}] ivf {res['ivf']['seconds']} s", flush=True)
    if exact:
        res["exact"] = run("exact", RecommendConfig(ann="exact", content_item_block=max(n, 200_000)))
        print(f"[bench {n}] exact {res['exact']['seconds']} s", flush=True)
    sampler.stop()
    out.write_text(json.dumps(res, indent=1), encoding="utf-8")  # the timings survive a failed check
    q = sample_queries(n, queries, seed)
    wanted = spark.createDataFrame(pd.DataFrame({"item_idx": q.astype(np.int32)}))
    got = spark.read.parquet(str(work / "ivf")).join(wanted, "item_idx", "left_semi").toPandas()
    spark.stop()
    got = got.sort_values(["item_idx", "sim", "other_idx"], ascending=[True, False, True])
    approx = {int(i): g["other_idx"].tolist() for i, g in got.groupby("item_idx")}
    t0 = time.perf_counter()
    x = all_vectors(n, seed)
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
    p.add_argument("--exact", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(
            args.worker, args.work, args.work / "result.json", args.seed, args.queries, args.exact, args.driver_memory
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
        cmd += ["--exact"] if n <= args.exact_up_to else []
        rc = subprocess.run(cmd, check=False).returncode
        res = json.loads((work / "result.json").read_text()) if (work / "result.json").is_file() else None
        shutil.rmtree(work, ignore_errors=True)
        results["sizes"] = [s for s in results["sizes"] if s.get("products") != n]
        results["sizes"].append(res or {"products": n, "status": f"failed (exit {rc})"})
        results["machine"] = (res or {}).get("machine", results.get("machine"))
        results["summary"] = summarize(results["sizes"])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print_summary(results)
    return 0


def print_summary(results: dict[str, Any]) -> None:
    print(f"{'products':>9} {'ivf s':>8} {'exact s':>10} {'recall@20':>9} {'peak MiB (jvm+py)':>18}")
    for s in sorted(results["sizes"], key=lambda s: s["products"]):
        if "ivf" not in s:
            print(f"{s['products']:>9} {s.get('status')}")
            continue
        ex = results["summary"]["exact_seconds"].get(str(s["products"]), {})
        ex_s = f"{ex['seconds']}{'' if ex.get('measured') else '*'}" if ex else "-"
        peak = s["ivf"]["peak_memory_mib"].get("total", "-")
        print(
            f"{s['products']:>9} {s['ivf']['seconds']:>8} {ex_s:>10} {s['recall_check']['recall_at_20']:>9} {peak:>18}"
        )
    print("* extrapolated; growth exponents:", results["summary"]["ivf_growth_exponent"])


if __name__ == "__main__":
    sys.exit(main())
