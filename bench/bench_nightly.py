"""Benchmark: the nightly job's hybrid scoring (history, content, cold, recommendations stages) at
10k, 100k and 1M simulated users on one catalog, with the peak memory of the driver's processes.

    SPARK_LOCAL_IP=127.0.0.1 PYSPARK_PYTHON=$PWD/.venv/bin/python .venv/bin/python bench/bench_nightly.py \
        [--users 10000,100000,1000000] [--driver-memory 12g] [--scoring-limit-minutes 60] \
        [--set recommend.als_candidates=20 --variant fewer_candidates --append]
        [--ranker [--ranker-depth none --ranker-depth 20]]

Writes ``bench/results/nightly.json`` (inputs, machine, load, figures, ratios) and prints a summary.

Inputs are synthetic Spark DataFrames (no ingest, no ALS fit, no TensorFlow), the same catalog for
every size (seeded):

- 40,000 products in 30 categories (ids, titles, descriptions), each with a unit 256-d float32
  "fused" vector: the category's centroid + a sub-cluster + noise, normalised.
- Warm products: the first 75 % (30,000). Users' events (view 80 % / cart 14 % / purchase 6 %,
  uniform over the 56 days before the run date) pick a category (60 % the user's favourite, else
  uniform) and a product in it with Zipf popularity (P(rank r) ~ 1/r over 1,000 products per
  category); every 10th user has a single event (a cold user: popular list only), the others
  2 + Exp(18) draws, about 16 distinct products per user. Warm products that no draw reached get
  one view from a hashed (non-cold) user, so every size has the same 30,000 warm / 10,000 cold
  products (at 10k users that adds ~0.5 events per user).
- ALS-like factors of rank 64: item factors for the warm products = vector x a random 256x64
  matrix + noise (the content -> factor regression has signal); user factors = the item-factor
  centroid of the user's favourite category + noise, for every active user.
- ALS candidates: ``als.top_k`` (100) per active user, generated, not computed: 100 distinct warm
  products, 40 % in the user's favourite category, the others spread over the other categories,
  scores falling with rank; written as Parquet partitioned by run_date like gold.als_candidates.

These become the ``NightInputs`` the nightly job reads from its tables, and the timed stages are
the job's own code, not a copy: ``hybrid.scoring.score_users`` (its history, content and cold
stages, reported through its ``Progress`` hook) and ``hybrid.nightly.write_recommendations`` (blend,
cap and rank, popular top-up, reasons, the night's Delta write and its counts), with the job's
Parquet staging (``scoring.parquet_stage``). Every user block of the content stage is scored (exact
kNN over every product vector). Recommendation settings: ``RecommendConfig()``'s at run time
(conf/local.yaml has no recommend section) plus ``--set`` overrides; ALS settings: conf/local.yaml's.
A size whose timed stages pass ``--scoring-limit-minutes`` has its running Spark jobs cancelled:
the stages that finished are kept.

Each size runs in its own process (a fresh JVM: peak memory is per size). A background thread
samples every 0.25 s the RSS of the driver's Python process, of the Spark JVM and of the JVM's
Python workers (pyspark.daemon and its forks; at a new peak also their PSS, which counts shared
pages once), plus the JVM heap in use. Local mode has no separate executors: the tasks run in the
driver JVM and its Python workers, which is what "executor memory" means here. Spark's event log
gives per stage / step task metrics (executor CPU, GC, shuffle and spill bytes); a step is the work
between two Parquet stagings of a stage.

The machine is shared: each stage records its CPU seconds (driver Python + JVM + workers), the
effective cores, the whole machine's busy cores and the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))

import numpy as np  # noqa: E402 - after the sys.path set-up above (runs without an installed package)

from hybridrec.config import Config, RankerConfig, config_from_dict, load_config, to_dict  # noqa: E402 - after the sys.path set-up above (runs without an installed package)
from hybridrec.run_dates import start_of_day  # noqa: E402 - after the sys.path set-up above (runs without an installed package)
from machine_info import host  # noqa: E402 - after the sys.path set-up above

log = logging.getLogger("bench.nightly")
RESULTS = REPO_ROOT / "bench" / "results" / "nightly.json"
RUN_DATE = dt.date(2026, 1, 1)
CUTOFF = start_of_day(RUN_DATE)
DAYS = 56
N_PRODUCTS = 40_000
N_CATEGORIES = 30
N_WARM = 30_000  # products 0..29,999 are warm: product p is in category p % 30, rank p // 30
DIM = 256
RANK = 64
COLD_USER_EVERY = 10  # users u with u % 10 == 9 have one event (cold users)
MEAN_DRAWS = 20.0  # mean event draws of the other users (2 + Exp(18)): ~16 distinct products
FAVOURITE_SHARE = 0.6
EVENTS = (("purchase", 0.06, 5.0), ("cart", 0.14, 3.0), ("view", 0.80, 1.0))
STAGES = ("history", "content", "cold", "recommendations")
# --ranker: after the blend's night, the night's title neighbours are computed (lexical: the job's
# similar items compute them every night, blend or ranker, and the ranker's lexical source reuses
# them), a ranker is fitted on the night's own pool (ranker_train) and the night's lists are written
# again ordered by it (recommendations_ranker).
RANKER_STAGES = ("lexical", "ranker_train", "recommendations_ranker")


# --ranker-depth d: the lists written once more by the same ranker at ranker.night_depth d.
def depth_stage(depth: int | None) -> str:
    return "recommendations_ranker_whole_pool" if depth is None else f"recommendations_ranker_depth{depth}"


RANKER_LABEL_SHARE = 20  # --ranker: 1 in this many pool pairs (seeded hash) is a positive
PLANS: dict[str, dict[str, int]] = {}  # physical plan operator counts per stage (worker process)
MIB = 1024**2


# ---- measurement -------------------------------------------------------------------------------


def _proc_cpu_seconds(proc: Any) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class MemorySampler(threading.Thread):
    """Peak RSS of the driver Python process, the JVM and the JVM's Python workers, per stage."""

    def __init__(self, spark: Any, jvm_pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.jvm = psutil.Process(jvm_pid)
        self.runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()  # noqa: SLF001 - the JVM's runtime and plan, only through py4j
        self.interval = interval
        self.stage = "setup"
        self.peaks: dict[str, dict[str, float]] = {}
        self.details: dict[str, list[dict[str, Any]]] = {}
        self.other_children_seen = 0
        self._cpu: dict[int, float] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def _python_children(self) -> list[Any]:
        """The JVM's Python workers (pyspark.daemon and its forks). Other children are left out:
        without the native Hadoop library the local file system runs chmod & co. through
        jspawnhelper, and such a child, sampled between spawn and exec, shows the JVM's own RSS."""
        kids = []
        for child in self.jvm.children(recursive=True):
            try:
                if child.name().startswith("python"):
                    kids.append(child)
                else:
                    self.other_children_seen += 1
            except self.psutil.Error:
                pass
        return kids

    def cpu_seconds(self) -> float:
        """CPU seconds of this process, the JVM and every Python worker seen so far: a worker's
        last reading stays counted after it exits (Spark ends idle workers)."""
        procs = [self.me, self.jvm]
        try:
            procs += self._python_children()
        except self.psutil.Error:
            pass
        with self._lock:
            for proc in procs:
                try:
                    self._cpu[proc.pid] = _proc_cpu_seconds(proc)
                except self.psutil.Error:
                    pass
            return sum(self._cpu.values())

    def _sample(self) -> dict[str, float]:
        drv = self.me.memory_info().rss
        jvm = self.jvm.memory_info().rss
        workers, n = 0, 0
        kids = self._python_children()
        for child in kids:
            try:
                workers += child.memory_info().rss
                n += 1
                with self._lock:
                    self._cpu[child.pid] = _proc_cpu_seconds(child)
            except self.psutil.Error:
                pass
        return {
            "driver_python": drv / MIB,
            "jvm": jvm / MIB,
            "python_workers": workers / MIB,
            "total": (drv + jvm + workers) / MIB,
            "python_worker_processes": n,
        }

    def _workers_detail(self) -> list[dict[str, Any]]:
        """Each Python worker's RSS, PSS (shared pages divided among the processes sharing them)
        and USS (its own pages), read from smaps: only when the workers' RSS reaches a new peak."""
        out = []
        for child in self._python_children():
            try:
                full = child.memory_full_info()
                out.append(
                    {
                        "pid_role": "daemon" if child.ppid() == self.jvm.pid else "worker",
                        "rss": round(full.rss / MIB, 1),
                        "pss": round(full.pss / MIB, 1),
                        "uss": round(full.uss / MIB, 1),
                    }
                )
            except self.psutil.Error:
                pass
        return out

    def run(self) -> None:
        tick = 0
        while not self._halt.is_set():
            try:
                s = self._sample()
                if tick % 4 == 0:  # the heap through py4j once a second
                    s["jvm_heap_used"] = (self.runtime.totalMemory() - self.runtime.freeMemory()) / MIB
                    s["jvm_heap_committed"] = self.runtime.totalMemory() / MIB
            except Exception:  # noqa: BLE001 - the JVM going away at the end
                break
            peak = self.peaks.setdefault(self.stage, {})
            if s["python_workers"] > peak.get("python_workers", 0.0) + 64:
                detail = self._workers_detail()
                self.details[self.stage] = detail
                s["python_workers_pss"] = sum(x["pss"] for x in detail)
            for k, v in s.items():
                peak[k] = max(peak.get(k, 0.0), v)
            avail = self.psutil.virtual_memory().available / MIB
            peak["system_available_min"] = min(peak.get("system_available_min", avail), avail)
            tick += 1
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def peak(self, stage: str) -> dict[str, float]:
        return {
            k: (int(v) if k == "python_worker_processes" else round(v, 1)) for k, v in self.peaks.get(stage, {}).items()
        }


def timed(fn: Callable[[], Any], sampler: MemorySampler) -> tuple[Any, dict[str, float]]:
    """Wall and CPU seconds of ``fn``, the load around it, and the whole machine's CPU time split
    (busy in others' processes, iowait) over the same interval."""
    import psutil

    sys0 = psutil.cpu_times()
    load0, cpu0, t0 = os.getloadavg()[0], sampler.cpu_seconds(), time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    cpu = sampler.cpu_seconds() - cpu0
    sys1 = psutil.cpu_times()
    busy = sum(getattr(sys1, f) - getattr(sys0, f) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    return out, {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 1),
        "effective_cores": round(cpu / seconds, 2) if seconds else 0.0,
        "machine_busy_cores": round(busy / seconds, 2) if seconds else 0.0,
        "others_cpu_seconds": round(max(0.0, busy - cpu), 1),
        "iowait_cores": round((sys1.iowait - sys0.iowait) / seconds, 2) if seconds else 0.0,
        "load_1m_before": round(load0, 2),
        "load_1m_after": round(os.getloadavg()[0], 2),
    }


def machine() -> dict[str, Any]:
    return host(
        "pyspark", "numpy", "scipy", "pandas", "psutil", openblas_num_threads=os.environ.get("OPENBLAS_NUM_THREADS")
    )


# ---- config and inputs -------------------------------------------------------------------------


def parse_depth(value: str) -> int | None:
    """A --ranker-depth value: a positive integer or "none" (the whole pool)."""
    if value.strip().lower() in ("none", "null"):
        return None
    if not value.strip().isdigit() or int(value) < 1:
        raise SystemExit(f"--ranker-depth takes a positive integer or none, got {value!r}")
    return int(value)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``recommend.key=value`` overrides (values parsed as YAML) → {key: value}."""
    import yaml

    out = {}
    for item in items:
        key, _, value = item.partition("=")
        section, _, name = key.strip().partition(".")
        if section != "recommend" or not name:
            raise SystemExit(f"--set takes recommend.<key>=<value>, got {item!r}")
        out[name] = yaml.safe_load(value)
    return out


def bench_config(
    work: Path, driver_memory: str, overrides: dict[str, Any] | None = None, shuffle_partitions: int | None = None
) -> Config:
    """local[2] with the ALS settings of conf/local.yaml, RecommendConfig's defaults (plus
    ``overrides``), paths under work; ``shuffle_partitions`` replaces conf/local.yaml's (adaptive
    execution coalesces the small ones either way)."""
    local = to_dict(load_config(REPO_ROOT / "conf" / "local.yaml"))
    local["recommend"].update(overrides or {})
    return config_from_dict(
        {
            "spark": {
                "master": "local[2]",
                "driver_memory": driver_memory,
                "ui_enabled": False,
                "shuffle_partitions": shuffle_partitions or local["spark"]["shuffle_partitions"],
                "app_name": "bench-nightly",
                "conf": {
                    "spark.local.dir": str(work / "spark-local"),
                    "spark.eventLog.enabled": "true",
                    "spark.eventLog.dir": str(work / "events"),
                    "spark.eventLog.compress": "false",
                },
            },
            "paths": {k: str(work / k) for k in ("warehouse", "models", "checkpoints", "features", "raw", "report")},
            "als": local["als"],
            "recommend": local["recommend"],
        }
    )


def catalog(seed: int) -> dict[str, np.ndarray]:
    """Products, categories, titles, unit vectors and warm item factors (the same for every size)."""
    rng = np.random.default_rng(seed)
    p = np.arange(N_PRODUCTS)
    cat = p % N_CATEGORIES
    centroids = rng.standard_normal((N_CATEGORIES, DIM)).astype(np.float32)
    subs = rng.standard_normal((N_CATEGORIES * 8, DIM)).astype(np.float32)
    vec = (
        centroids[cat]
        + 0.8 * subs[cat * 8 + (p // N_CATEGORIES) % 8]
        + 1.0 * rng.standard_normal((N_PRODUCTS, DIM)).astype(np.float32)
    )
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    words = np.array(["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(3, 10))) for _ in range(800)])
    n_words = rng.integers(3, 13, N_PRODUCTS)
    titles = [" ".join(rng.choice(words, k)).capitalize() for k in n_words]
    weights = (0.1 * rng.standard_normal((DIM, RANK))).astype(np.float32)
    factors = vec[:N_WARM] @ weights * 4.0 + 0.05 * rng.standard_normal((N_WARM, RANK)).astype(np.float32)
    cat_factors = np.stack([factors[cat[:N_WARM] == c].mean(axis=0) for c in range(N_CATEGORIES)])
    return {
        "cat": cat,
        "vec": vec.astype(np.float32),
        "titles": np.array(titles),
        "factors": factors.astype(np.float32),
        "cat_factors": cat_factors.astype(np.float32),
    }


def _pid(col: Any) -> Any:
    from pyspark.sql import functions as F

    return F.format_string("p%06d", col)


def _uid(col: Any) -> Any:
    from pyspark.sql import functions as F

    return F.format_string("u%07d", col)


def _not_cold(u: Any) -> Any:
    """A user index moved off the cold users (u % 10 == 9) to the user before."""
    from pyspark.sql import functions as F

    return F.when(F.pmod(u, F.lit(COLD_USER_EVERY)) == COLD_USER_EVERY - 1, u - 1).otherwise(u)


def make_inputs(spark: Any, cfg: Config, n_users: int, seed: int, folder: Path) -> tuple[Any, dict[str, Any]]:
    """The night's ``NightInputs`` (written as Parquet under ``folder`` and read back, as the job
    reads its tables; the products persisted as the job persists them) and the inputs' counts."""
    import pandas as pd
    from pyspark.sql import functions as F

    from hybridrec.hybrid.scoring import NightInputs

    c = catalog(seed)
    parts = max(2, min(64, n_users // 20_000))
    p = np.arange(N_PRODUCTS)
    cat_names = np.array([f"category_{k:02d}" for k in range(N_CATEGORIES)])
    prod_pd = pd.DataFrame(
        {
            "product_id": [f"p{i:06d}" for i in p],
            "title": c["titles"],
            "description": [f"{t}. Synthetic product of {cat_names[k]}." for t, k in zip(c["titles"], c["cat"])],
            "category": cat_names[c["cat"]],
            "image_path": [f"images/p{i:06d}.jpg" for i in p],
        }
    )
    spark.createDataFrame(prod_pd).write.mode("overwrite").parquet(str(folder / "products"))
    emb_pd = pd.DataFrame({"product_id": prod_pd["product_id"], "fused_emb": list(c["vec"]), "model_version": "bench"})
    spark.createDataFrame(emb_pd, "product_id string, fused_emb array<float>, model_version string").write.mode(
        "overwrite"
    ).parquet(str(folder / "embeddings"))
    items_pd = pd.DataFrame(
        {
            "run_date": RUN_DATE,
            "product_id": prod_pd["product_id"][:N_WARM],
            "factors": list(c["factors"]),
            "model_version": "als-bench",
        }
    )
    spark.createDataFrame(
        items_pd, "run_date date, product_id string, factors array<float>, model_version string"
    ).write.mode("overwrite").partitionBy("run_date").parquet(str(folder / "als_item_factors"))

    # Users and their events, in Spark (deterministic: fixed partitions, seeded rand).
    users = spark.range(0, n_users, 1, parts).select(
        F.col("id").cast("int").alias("u"),
        F.pmod(F.xxhash64("id", F.lit(seed)), F.lit(N_CATEGORIES)).cast("int").alias("fav"),
        F.when(F.pmod(F.col("id"), F.lit(COLD_USER_EVERY)) == COLD_USER_EVERY - 1, F.lit(1))
        .otherwise(F.lit(2) + F.floor(-F.log(F.lit(1.0) - F.rand(seed + 2)) * (MEAN_DRAWS - 2)))
        .cast("int")
        .alias("n"),
    )
    draws = users.select("u", "fav", F.explode(F.sequence(F.lit(1), F.col("n"))).alias("j"))
    cat = F.when(F.rand(seed + 3) < FAVOURITE_SHARE, F.col("fav")).otherwise(F.floor(F.rand(seed + 4) * N_CATEGORIES))
    rank = F.least(
        F.lit(N_WARM // N_CATEGORIES - 1), F.floor(F.exp(F.rand(seed + 5) * float(np.log(N_WARM // N_CATEGORIES)))) - 1
    )
    x = F.rand(seed + 6)
    event = F.when(x < EVENTS[0][1], "purchase").when(x < EVENTS[0][1] + EVENTS[1][1], "cart").otherwise("view")
    cutoff_s = int(CUTOFF.replace(tzinfo=dt.UTC).timestamp())
    ts = F.timestamp_seconds(F.floor(F.lit(cutoff_s) - F.rand(seed + 7) * (DAYS * 86400) - 1))
    events = draws.select(
        _uid("u").alias("user_id"),
        _pid(rank * N_CATEGORIES + cat).alias("product_id"),
        ts.alias("ts"),
        event.alias("event"),
    )
    weight = F.create_map(*[v for e, _, w in EVENTS for v in (F.lit(e), F.lit(w))])
    events = events.withColumn("weight", F.element_at(weight, F.col("event")))
    events.write.mode("overwrite").parquet(str(folder / "events_draws"))
    drawn = spark.read.parquet(str(folder / "events_draws"))
    missing = (
        spark.range(0, N_WARM, 1, 1)
        .select(_pid("id").alias("product_id"), F.col("id"))
        .join(drawn.select("product_id").distinct(), "product_id", "left_anti")
    )
    cover = missing.select(
        _uid(_not_cold(F.pmod(F.xxhash64("id", F.lit(seed)), F.lit(n_users)))).alias("user_id"),
        "product_id",
        F.timestamp_seconds(F.floor(F.lit(cutoff_s) - F.rand(seed + 8) * (DAYS * 86400) - 1)).alias("ts"),
        F.lit("view").alias("event"),
        F.lit(1.0).alias("weight"),
    )
    drawn.unionByName(cover).write.mode("overwrite").parquet(str(folder / "interactions"))
    interactions = spark.read.parquet(str(folder / "interactions"))

    # User factors for every active user; ALS candidates (als.top_k per user) for every active user.
    cat_f = c["cat_factors"]

    def user_factors(batches):
        for pdf in batches:
            if pdf.empty:
                continue
            rng = np.random.default_rng(seed * 1_000_003 + int(pdf["u"].iloc[0]))
            f = 1.5 * cat_f[pdf["fav"].to_numpy()] + 0.1 * rng.standard_normal((len(pdf), RANK)).astype(np.float32)
            yield pd.DataFrame(
                {
                    "run_date": RUN_DATE,
                    "user_id": [f"u{u:07d}" for u in pdf["u"]],
                    "factors": list(f.astype(np.float32)),
                    "model_version": "als-bench",
                }
            )

    active = users.select("u", "fav")
    active.mapInPandas(
        user_factors, "run_date date, user_id string, factors array<float>, model_version string"
    ).write.mode("overwrite").partitionBy("run_date").parquet(str(folder / "als_user_factors"))
    spark.range(0, n_users, 1, parts).select(
        _uid("id").alias("user_id"), F.col("id").cast("int").alias("user_idx")
    ).write.mode("overwrite").parquet(str(folder / "als_user_ids"))
    k = cfg.als.top_k
    per_cat = N_WARM // N_CATEGORIES
    base = F.pmod(F.xxhash64("u", F.lit(seed + 9)), F.lit(per_cat))
    # 40 % in the favourite category, the rest spread over the others (hashed per user and slot).
    slot = F.pmod(F.col("rank"), F.lit(10))
    other = F.pmod(
        F.col("fav") + 1 + F.pmod(F.xxhash64("u", "slot", F.lit(seed + 10)), F.lit(N_CATEGORIES - 1)),
        F.lit(N_CATEGORIES),
    )
    cand_cat = F.when(F.col("slot") < 4, F.col("fav")).otherwise(other)
    # r distinct over ranks (7 is coprime to 1,000): 100 distinct products per user.
    cand_rank = F.pmod(base + F.col("rank") * 7, F.lit(per_cat))
    (
        active.select("u", "fav", F.explode(F.sequence(F.lit(1), F.lit(k))).alias("rank"))
        .withColumn("slot", slot)
        .select(
            F.lit(RUN_DATE).alias("run_date"),
            _uid("u").alias("user_id"),
            F.col("rank").cast("int").alias("rank"),
            _pid(cand_rank * N_CATEGORIES + cand_cat).alias("product_id"),
            (F.lit(1.2) * F.exp(-F.col("rank") / 60.0) + F.rand(seed + 12) * 0.005).cast("float").alias("score"),
            F.lit("als-bench").alias("model_version"),
        )
        .write.mode("overwrite")
        .partitionBy("run_date")
        .parquet(str(folder / "als_candidates"))
    )

    # What run_nightly hands to score_users (nightly.read_inputs, from Parquet instead of the tables).
    products = (
        spark.read.parquet(str(folder / "products"))
        .select("product_id", "title", "description", "category", "image_path")
        .persist()
    )

    def night(name: str) -> Any:
        return spark.read.parquet(str(folder / name)).filter(F.col("run_date") == F.lit(RUN_DATE))

    inputs = NightInputs(
        products=products,
        interactions=interactions,
        vectors=spark.read.parquet(str(folder / "embeddings"))
        .filter(F.col("model_version") == "bench")
        .select("product_id", F.col("fused_emb").alias("vec")),
        als_users=night("als_user_factors").select("user_id", "factors"),
        als_items=night("als_item_factors").select("product_id", "factors"),
        als_candidates=night("als_candidates").select("user_id", "product_id", "score", "rank"),
        user_index=spark.read.parquet(str(folder / "als_user_ids")).select("user_id", "user_idx"),
        content_version="bench",
        als_version="als-bench",
    )
    counts: dict[str, Any] = {
        "events": interactions.count(),
        "products": products.count(),
        "als_candidates_table_rows": inputs.als_candidates.count(),
    }
    return inputs, counts


def describe_users(scores: Any) -> dict[str, Any]:
    """How the simulated users look once scored (from the persisted history statistics; not timed)."""
    from pyspark.sql import functions as F

    stats = scores.user_stats.agg(
        F.mean("n_items"), F.expr("percentile_approx(n_items, array(0.5, 0.9, 0.99))"), F.max("n_items")
    ).first()
    return {
        "history_pairs": scores.history.count(),
        "excluded_pairs": scores.history.filter(F.col("excluded")).count(),
        "mean_distinct_products_per_user": round(float(stats[0]), 2),
        "distinct_products_per_user_p50_p90_p99": [int(v) for v in stats[1]],
        "max_distinct_products_per_user": int(stats[2]),
        "users_of_most_popular_product": int(scores.item_stats.agg(F.max("n_users")).first()[0]),
    }


def plan_ops(df: Any) -> dict[str, int]:
    """Operator counts of a DataFrame's physical plan as AQE starts it (before it runs): shuffles,
    sorts, windows, joins. Persisted inputs count as one InMemoryTableScan (their own plan ran before)."""
    names = {
        "Exchange": "shuffles",
        "BroadcastExchange": "broadcasts",
        "Sort": "sorts",
        "Window": "windows",
        "SortMergeJoin": "sort_merge_joins",
        "BroadcastHashJoin": "broadcast_hash_joins",
        "BroadcastNestedLoopJoin": "nested_loop_joins",
        "CartesianProduct": "cartesian_products",
        "MapInPandas": "python_udfs",
        "InMemoryTableScan": "cached_scans",
        "FileScan": "file_scans",
        "HashAggregate": "hash_aggregates",
        "SortAggregate": "sort_aggregates",
        "ObjectHashAggregate": "object_hash_aggregates",
    }
    counts: dict[str, int] = {}
    root = df._jdf.queryExecution().executedPlan()  # noqa: SLF001 - the JVM's runtime and plan, only through py4j
    stack = [root]
    while stack:
        node = stack.pop()
        name = node.nodeName()
        if name == "AdaptiveSparkPlan":
            stack.append(node.executedPlan())
            continue
        key = names.get(name) or ("file_scans" if name.startswith("Scan ") else None)
        if key:
            counts[key] = counts.get(key, 0) + 1
        if name == "InMemoryTableScan":
            continue
        children = node.children()
        stack.extend(children.apply(i) for i in range(children.size()))
    if os.environ.get("BENCH_NIGHTLY_PLANS"):  # debugging: the plans as text
        folder = Path(os.environ["BENCH_NIGHTLY_PLANS"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{len(list(folder.iterdir())):02d}.txt").write_text(root.toString(), encoding="utf-8")
    return dict(sorted(counts.items()))


# ---- the timed stages: the nightly job's own code, observed ---------------------------------------


class StageObserver:
    """What the benchmark hooks into the job's code: a ``scoring.Progress`` (each stage timed with
    its CPU, load and memory) and a ``lists.Stage`` (the job's Parquet staging, with each staged
    result's physical plan and the seconds since the previous staging: the stage's steps).

    Spark job groups follow the steps (``<stage>/<step>``) for the event-log figures.
    """

    def __init__(
        self, spark: Any, sampler: MemorySampler, folder: Path, res: dict[str, Any], save: Callable[[], None]
    ) -> None:
        from hybridrec.hybrid.scoring import parquet_stage

        self.sc = spark.sparkContext
        self.sampler = sampler
        self.staging = parquet_stage(folder)
        self.res = res
        self.save = save
        self.current: str | None = None
        self.started = 0.0
        self.steps: dict[str, dict[str, float]] = {}
        self._mark = 0.0

    def progress(self, name: str, fn: Callable[[], str]) -> None:
        """``Progress.__call__``'s contract: run ``fn``, print one line with its time."""
        self.current, self.started = name, time.perf_counter()
        self.steps[name] = {}
        self._mark = self.started
        self.sampler.stage = name
        self.sc.setJobGroup(f"{name}/start", "bench")
        self.res["status"] = f"running {name}"
        self.save()
        line, figures = timed(fn, self.sampler)
        if self.steps[name]:
            self.steps[name]["after_last_staging"] = round(time.perf_counter() - self._mark, 2)
        self.res["stages"][name] = {
            **figures,
            "peak_memory_mib": self.sampler.peak(name),
            "python_workers_at_peak": self.sampler.details.get(name, []),
            "steps_seconds": self.steps[name],
        }
        print(
            f"[bench {self.res['users']} {name}] {line} ({figures['seconds']}s, {figures['cpu_seconds']} CPU s, "
            f"load {figures['load_1m_before']}->{figures['load_1m_after']})",
            flush=True,
        )
        self.current = None
        self.save()

    def hook(self) -> Any:
        """A ``scoring.Progress`` whose stages this observer runs (score_users calls it per stage)."""
        from hybridrec.hybrid.scoring import Progress

        observer = self

        class Hook(Progress):
            def __call__(self, stage: str, fn: Callable[[], str]) -> None:
                observer.progress(stage, fn)
                self.seconds[stage] = observer.res["stages"][stage]["seconds"]

        return Hook({}, job=f"bench {self.res['users']}")

    def stage(self, df: Any, name: str) -> Any:
        """``Stage``'s contract: materialise ``df`` as Parquet and return it re-read."""
        PLANS[f"{self.current}_{name}"] = plan_ops(df)
        out = self.staging(df, name)
        now = time.perf_counter()
        if self.current:
            self.steps[self.current][name] = round(now - self._mark, 2)
            self.sc.setJobGroup(f"{self.current}/after_{name}", "bench")
        self._mark = now
        return out


def event_log_summary(folder: Path) -> dict[str, dict[str, float]]:
    """Task metrics from Spark's event log, summed per job group (bench stage / recommendations step)."""

    # Spark 4 writes a folder eventlog_v2_<app>/ of rolled files events_<n>_<app>.
    def order(f: Path) -> tuple[int, str]:
        parts = f.name.split("_")
        return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0, f.name)

    files = sorted((f for f in folder.rglob("events_*") if f.is_file()), key=order) if folder.is_dir() else []
    group_of_stage: dict[int, str] = {}
    out: dict[str, dict[str, float]] = {}

    def lines():
        for f in files:
            with f.open(encoding="utf-8") as fh:
                yield from fh

    for line in lines():
        ev = json.loads(line)
        kind = ev.get("Event")
        if kind == "SparkListenerJobStart":
            group = (ev.get("Properties") or {}).get("spark.jobGroup.id") or "setup"
            for sid in ev.get("Stage IDs", []):
                group_of_stage[sid] = group
            out.setdefault(group, {}).setdefault("jobs", 0)
            out[group]["jobs"] += 1
        elif kind == "SparkListenerTaskEnd":
            m = ev.get("Task Metrics") or {}
            g = out.setdefault(group_of_stage.get(ev.get("Stage ID"), "setup"), {})
            sr, sw = m.get("Shuffle Read Metrics") or {}, m.get("Shuffle Write Metrics") or {}
            add = {
                "tasks": 1,
                "executor_run_s": m.get("Executor Run Time", 0) / 1e3,
                "executor_cpu_s": m.get("Executor CPU Time", 0) / 1e9,
                "jvm_gc_s": m.get("JVM GC Time", 0) / 1e3,
                "shuffle_write_mib": sw.get("Shuffle Bytes Written", 0) / MIB,
                "shuffle_write_records": sw.get("Shuffle Records Written", 0),
                "shuffle_read_mib": (sr.get("Local Bytes Read", 0) + sr.get("Remote Bytes Read", 0)) / MIB,
                "memory_spilled_mib": m.get("Memory Bytes Spilled", 0) / MIB,
                "disk_spilled_mib": m.get("Disk Bytes Spilled", 0) / MIB,
            }
            for k, v in add.items():
                g[k] = g.get(k, 0) + v
            g["max_task_peak_execution_mib"] = max(
                g.get("max_task_peak_execution_mib", 0), m.get("Peak Execution Memory", 0) / MIB
            )
    return {
        grp: {k: (round(v, 1) if isinstance(v, float) else v) for k, v in vals.items()} for grp, vals in out.items()
    }


def synthetic_ranker(cfg: Config, scores: Any, inputs: Any, stage: Any, share: float = 1.0) -> tuple[Any, str]:
    """A ranker fitted on the night's own candidate pool (the pair features of every active user, or
    of a seeded ``share`` of them; the job's ``learned.night_features``) with seeded random labels
    (1 in ``RANKER_LABEL_SHARE`` pairs): its orderings mean nothing, its cost is that of a real one
    of the same settings (trees, depth, rows; scoring a night costs the same whatever share it was
    fitted on). What train_ranker does besides (replaying the night before the label window: the
    history, content and cold stages timed above) is not run."""
    from pyspark.sql import functions as F

    from hybridrec.hybrid.learned import night_features
    from hybridrec.hybrid.ranker import fit_ranker, training_rows

    users = scores.user_stats
    if share < 1.0:
        users = users.filter(F.abs(F.xxhash64("user_id", F.lit(cfg.ranker.seed))) % 10_000 < int(share * 10_000))
    features = stage(night_features(scores, inputs, cfg, users), "ranker_features")
    hashed = F.abs(F.xxhash64("user_id", "product_id", F.lit(cfg.ranker.seed))) % RANKER_LABEL_SHARE
    labels = features.filter(hashed == 0).select("user_id", "product_id")
    rows = stage(training_rows(features, labels, inputs.user_index, cfg.ranker), "ranker_rows")
    model = fit_ranker(rows, cfg.ranker, "bench")
    return model, (
        f"ranker fitted on {model.counts.get('rows', 0)} rows of {model.counts.get('users', 0)} users "
        f"({features.count()} pool pairs)"
    )


def worker(
    n_users: int,
    work: Path,
    out: Path,
    seed: int,
    driver_memory: str,
    scoring_limit_s: float,
    overrides: dict[str, Any],
    ranker: bool = False,
    depths: tuple[int | None, ...] = (),
    train_share: float = 1.0,
    shuffle_partitions: int | None = None,
) -> None:
    from hybridrec.hybrid.nightly import write_recommendations
    from hybridrec.hybrid.scoring import score_users
    from hybridrec.spark import build_spark

    cfg = bench_config(work, driver_memory, overrides, shuffle_partitions)
    (work / "events").mkdir(parents=True, exist_ok=True)
    spark = build_spark(cfg.spark)
    jvm = int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())  # noqa: SLF001 - the JVM's runtime and plan, only through py4j
    sampler = MemorySampler(spark, jvm)
    sampler.start()
    res: dict[str, Any] = {
        "users": n_users,
        "recommend_overrides": overrides,
        "shuffle_partitions": cfg.spark.shuffle_partitions,
        "stages": {},
        "status": "setup",
    }

    def save() -> None:
        out.write_text(json.dumps(res, indent=1), encoding="utf-8")

    save()
    stage_dir = work / "stage"
    stage_dir.mkdir(parents=True, exist_ok=True)
    (inputs, counts), figures = timed(lambda: make_inputs(spark, cfg, n_users, seed, work / "inputs"), sampler)
    res["counts"] = counts
    res["setup"] = {
        **figures,
        "peak_memory_mib": sampler.peak("setup"),
        "python_workers_at_peak": sampler.details.get("setup", []),
    }
    print(f"[bench {n_users} setup] {counts} ({figures['seconds']}s)", flush=True)
    observer = StageObserver(spark, sampler, stage_dir, res, save)
    sc = spark.sparkContext
    started = time.perf_counter()
    limit_hit = threading.Event()

    def stop_scoring() -> None:  # the scoring limit: cancel the running Spark jobs, keep what finished
        limit_hit.set()
        sc.cancelAllJobs()

    watchdog = threading.Timer(scoring_limit_s, stop_scoring)
    watchdog.daemon = True
    watchdog.start()
    res["scoring_limit_seconds"] = scoring_limit_s
    scores = None
    try:
        # score_users calls its progress hook once per stage (history, content, cold)
        scores = score_users(spark, cfg, inputs, CUTOFF, observer.stage, observer.hook())
        res["counts"].update(scores.counts)
        res["counts"]["content_user_blocks"] = math.ceil(scores.counts["active_users"] / cfg.recommend.user_block)
        observer.progress(
            "recommendations",
            lambda: write_recommendations(spark, cfg, scores, inputs, RUN_DATE, observer.stage, "bench", res["counts"]),
        )
        if ranker:
            from hybridrec.hybrid.scoring import night_lexical

            observer.progress(
                "lexical", lambda: f"{night_lexical(scores, inputs, cfg).count()} title neighbour pairs (persisted)"
            )
            held: dict[str, Any] = {}

            def train() -> str:
                held["model"], line = synthetic_ranker(cfg, scores, inputs, observer.stage, train_share)
                return line

            observer.progress("ranker_train", train)
            ranker_counts = dict(res["counts"])  # the night's counts (write_recommendations adds its own)
            observer.progress(
                "recommendations_ranker",
                lambda: write_recommendations(
                    spark, cfg, scores, inputs, RUN_DATE, observer.stage, "bench", ranker_counts, ranker=held["model"]
                ),
            )
            for depth in depths:  # the same ranker's night at other night depths, side by side
                dcfg = dataclasses.replace(cfg, ranker=dataclasses.replace(cfg.ranker, night_depth=depth))
                dcounts = dict(res["counts"])
                observer.progress(
                    depth_stage(depth),
                    lambda dcfg=dcfg, dcounts=dcounts: write_recommendations(
                        spark, dcfg, scores, inputs, RUN_DATE, observer.stage, "bench", dcounts, ranker=held["model"]
                    ),
                )
        res["status"] = "done"
    except Exception as exc:  # noqa: BLE001 - a cancelled (limit) or failed stage: keep the figures so far
        name = observer.current or "setup"
        res["stages"][name] = {
            "seconds_until_stopped": round(time.perf_counter() - observer.started, 1),
            "peak_memory_mib": sampler.peak(name),
            "finished": False,
            "steps_seconds": observer.steps.get(name, {}),
        }
        why = (
            f"scoring limit of {scoring_limit_s / 60:g} min reached"
            if limit_hit.is_set()
            else f"failed: {type(exc).__name__}: {str(exc)[:500]}"
        )
        res["status"] = f"stopped in {name}: {why}"
        print(f"[bench {n_users} {name}] {res['status']}", flush=True)
    watchdog.cancel()
    res["scoring_wall_seconds"] = round(time.perf_counter() - started, 1)
    sampler.stage = "end"
    if scores is not None and res["status"] == "done":
        res["counts"].update(describe_users(scores))
    res["metrics"] = scores.metrics if scores is not None else {}
    res["plans"] = PLANS
    res["spark_conf"] = {
        k: spark.conf.get(k)
        for k in (
            "spark.sql.shuffle.partitions",
            "spark.driver.memory",
            "spark.sql.adaptive.enabled",
            "spark.sql.autoBroadcastJoinThreshold",
        )
    }
    sampler.stop()
    res["memory_samples_with_non_python_jvm_children"] = sampler.other_children_seen
    save()
    spark.stop()
    res["spark_task_metrics"] = event_log_summary(work / "events")
    save()


def run_size(
    n_users: int,
    seed: int,
    driver_memory: str,
    limit_s: float,
    scoring_limit_s: float,
    sets: list[str],
    ranker: bool = False,
    depths: list[str] | None = None,
    train_share: float = 1.0,
    shuffle_partitions: int | None = None,
) -> dict[str, Any]:
    """One size in a fresh process (fresh JVM); partial figures survive a timeout or a failure."""
    work = Path(tempfile.mkdtemp(prefix=f"bench_nightly_{n_users}_"))
    out = work / "result.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        str(n_users),
        "--work",
        str(work),
        "--seed",
        str(seed),
        "--driver-memory",
        driver_memory,
        "--scoring-limit-minutes",
        str(scoring_limit_s / 60),
    ] + [a for x in sets for a in ("--set", x)]
    cmd += ["--ranker"] if ranker else []
    cmd += [a for d in depths or [] for a in ("--ranker-depth", d)]
    cmd += ["--ranker-train-share", str(train_share)]
    cmd += ["--shuffle-partitions", str(shuffle_partitions)] if shuffle_partitions else []
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True)
    status = None
    try:
        proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        status = f"stopped after {limit_s / 60:.0f} minutes (limit)"
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    res = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {"users": n_users, "stages": {}}
    res["process_wall_seconds"] = round(time.perf_counter() - t0, 1)
    if status:
        res["status"] = f"{res.get('status', '')}; {status}"
    elif proc.returncode != 0 and res.get("status") != "done":
        res["status"] = f"{res.get('status', '')}; failed with exit code {proc.returncode}"
    shutil.rmtree(work, ignore_errors=True)
    return res


# ---- summary -----------------------------------------------------------------------------------


def scaling(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    done = [s for s in sizes if s.get("status") == "done" and not s.get("variant")]
    if not done:
        return {}
    base = done[0]
    out: dict[str, Any] = {"baseline_users": base["users"], "per_user_time_vs_baseline": {}, "growth_exponent": {}}
    for s in done:
        ratios = {}
        for name in (*STAGES, "total"):
            sec = s["total_scoring_seconds"] if name == "total" else s["stages"][name]["seconds"]
            b = base["total_scoring_seconds"] if name == "total" else base["stages"][name]["seconds"]
            ratios[name] = round((sec / s["users"]) / (b / base["users"]), 3)
        cpu = sum(s["stages"][n]["cpu_seconds"] for n in STAGES)
        cpu_b = sum(base["stages"][n]["cpu_seconds"] for n in STAGES)
        ratios["total_cpu"] = round((cpu / s["users"]) / (cpu_b / base["users"]), 3)
        out["per_user_time_vs_baseline"][str(s["users"])] = ratios
    for a, b in zip(done, done[1:]):
        key = f"{a['users']}->{b['users']}"
        exps = {}
        for name in (*STAGES, "total"):
            ta = a["total_scoring_seconds"] if name == "total" else a["stages"][name]["seconds"]
            tb = b["total_scoring_seconds"] if name == "total" else b["stages"][name]["seconds"]
            exps[name] = round(float(np.log(tb / ta) / np.log(b["users"] / a["users"])), 3)
        out["growth_exponent"][key] = exps
    out["growth_exponent_note"] = "log(t2/t1) / log(users2/users1): 1 = linear, below 1 = fixed costs amortised"
    # Where a step grows faster than the users: each stage's steps (work between two stagings) and
    # their Spark task figures (event log) between consecutive sizes, as (figure ratio) / (users ratio).
    steps: dict[str, Any] = {}
    for a, b in zip(done, done[1:]):
        k = b["users"] / a["users"]
        row: dict[str, Any] = {}
        for name in STAGES:
            sa, sb = a["stages"][name].get("steps_seconds", {}), b["stages"][name].get("steps_seconds", {})
            if sa:
                row[f"{name}_time_per_user_ratio"] = {n: round(sb[n] / sa[n] / k, 2) for n in sa if n in sb and sa[n]}
        ma, mb = a.get("spark_task_metrics", {}), b.get("spark_task_metrics", {})
        for fig in ("executor_cpu_s", "shuffle_write_records", "memory_spilled_mib", "disk_spilled_mib"):
            row[f"{fig}_per_user_ratio"] = {
                g: (
                    round(mb[g][fig] / ma[g][fig] / k, 2)
                    if ma[g].get(fig)
                    else ("from 0 to " + str(mb[g][fig]) if mb[g].get(fig) else 0)
                )
                for g in ma
                if "/" in g and g in mb
            }
        steps[f"{a['users']}->{b['users']}"] = row
    out["steps"] = steps
    # Content: the exact kNN costs the same per user block (user_block users x every product).
    out["content_seconds_per_user_block"] = {
        str(s["users"]): round(s["stages"]["content"]["seconds"] / s["counts"]["content_user_blocks"], 2)
        for s in done
        if s.get("counts", {}).get("content_user_blocks")
    }
    return out


def machine_sharing(results: dict[str, Any]) -> None:
    """Whether others used the CPU during the timed stages: their CPU seconds (the machine's busy
    time minus this benchmark's processes) against the benchmark's own."""
    stages = [st for s in results["sizes"] for st in s.get("stages", {}).values() if "others_cpu_seconds" in st]
    ours = sum(st["cpu_seconds"] for st in stages)
    others = sum(st["others_cpu_seconds"] for st in stages)
    loads = _loads(results["sizes"]) + results["load_before"][:1]
    results["others_cpu_share"] = round(others / ours, 3) if ours else None
    results["machine_shared"] = bool(ours and others / ours > 0.1)
    results["load_1m_range"] = [min(loads), max(loads)] if loads else None


def print_summary(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(
        f"\nNightly scoring benchmark: Spark {m['pyspark']} local[2], {m['cores']} cores, {m['memory_gib']} GiB; "
        f"shared machine: {results['machine_shared']} (others' CPU {results.get('others_cpu_share')} of ours, "
        f"load {results['load_1m_range']})"
    )
    print(
        f"{'users':>9} {'variant':>10} {'history s':>9} {'content s':>10} {'cold s':>8} {'recs s':>8} "
        f"{'total s':>8} {'CPU s':>7} "
        f"{'ms/user':>8} {'x/user':>7} {'xCPU/user':>9} | peak RSS MiB: {'py':>5} {'JVM':>6} {'workers':>7} {'sum':>6}"
    )
    sc = results.get("scaling", {}).get("per_user_time_vs_baseline", {})

    def cell(st: dict[str, Any], width: int) -> str:
        if not st:
            return f"{'-':>{width}}"
        if "seconds" in st:
            return f"{st['seconds']:>{width}}"
        return f"{'>' + str(st.get('seconds_until_stopped')):>{width}}"

    for s in results["sizes"]:
        st = s.get("stages", {})
        cells = " ".join(cell(st.get(n, {}), w) for n, w in zip(STAGES, (9, 10, 8, 8)))
        head = f"{s['users']:>9} {(s.get('variant') or 'default'):>10} {cells}"
        if s.get("status") != "done":
            print(f"{head}   {s.get('status')}")
            continue
        peak = s["peak_memory_mib"]
        r = sc.get(str(s["users"]), {}) if not s.get("variant") else {}
        print(
            f"{head} {s['total_scoring_seconds']:>8} {s['total_scoring_cpu_seconds']:>7.0f} "
            f"{1000 * s['total_scoring_seconds'] / s['users']:>8.2f} {r.get('total', '-'):>7} "
            f"{r.get('total_cpu', '-'):>9} | "
            f"{'':>13} {peak['driver_python']:>5.0f} {peak['jvm']:>6.0f} {peak['python_workers']:>7.0f} "
            f"{peak['total']:>6.0f}"
        )
    for key, e in results.get("scaling", {}).get("growth_exponent", {}).items():
        print(f"  growth exponent {key}: " + ", ".join(f"{k} {v}" for k, v in e.items()))
    for users, r in sc.items():
        print(f"  per-user time vs {results['scaling']['baseline_users']} users, {users}: {r}")
    for s in results["sizes"]:
        for name, st in s.get("stages", {}).items():
            if st.get("steps_seconds"):
                print(
                    f"  {s['users']} users ({s.get('variant') or 'default'}), {name} steps (s): {st['steps_seconds']}"
                )


def _loads(node: Any) -> list[float]:
    if isinstance(node, dict):
        own = [node[k] for k in ("load_1m_before", "load_1m_after") if k in node]
        return own + [v for x in node.values() for v in _loads(x)]
    if isinstance(node, list):
        return [v for x in node for v in _loads(x)]
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="10000,100000,1000000", help="simulated users per run, comma-separated")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument(
        "--scoring-limit-minutes",
        type=float,
        default=60.0,
        help="wall-clock limit of one size's timed stages: past it the running Spark jobs are "
        "cancelled and the figures so far kept",
    )
    parser.add_argument(
        "--limit-minutes",
        type=float,
        default=90.0,
        help="wall-clock limit of one size's process (setup included); killed past it",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="sets",
        metavar="recommend.KEY=VALUE",
        help="a recommendation setting for this invocation's sizes (a variant, e.g. fewer candidates)",
    )
    parser.add_argument("--variant", help="label of this invocation's sizes when --set is used")
    parser.add_argument(
        "--ranker",
        action="store_true",
        help="also fit a ranker on the night's pool (random labels) and write the lists again ordered by "
        "it: the learned ranker's cost beside the blend's (stages ranker_train, recommendations_ranker)",
    )
    parser.add_argument(
        "--ranker-depth",
        action="append",
        default=[],
        metavar="D|none",
        help="with --ranker: write the ranker's lists once more at ranker.night_depth D (none = the whole "
        "pool), beside the shipped setting's (stage recommendations_ranker_depthD / _whole_pool)",
    )
    parser.add_argument(
        "--ranker-train-share",
        type=float,
        default=1.0,
        help="with --ranker: fit the ranker on this seeded share of the users (its training seconds then "
        "are not the full training's; the night's lists still score every user)",
    )
    parser.add_argument(
        "--shuffle-partitions",
        type=int,
        help="spark.sql.shuffle.partitions for this invocation's sizes instead of conf/local.yaml's "
        "(adaptive execution coalesces small partitions; more of them keep a large shuffle's sorts in memory)",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="add this invocation's sizes to the existing results file instead of replacing it",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", action="append", default=[], help="a line for the results' notes")
    parser.add_argument(
        "--summarize-only",
        action="store_true",
        help="recompute the derived figures (scaling, sharing) of the results file, add --note "
        "lines, print the summary; runs nothing",
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    depths = tuple(parse_depth(d) for d in args.ranker_depth)  # refused here, before any size runs
    if depths and not args.ranker:
        raise SystemExit("--ranker-depth needs --ranker")
    if not 0.0 < args.ranker_train_share <= 1.0:
        raise SystemExit(f"--ranker-train-share takes a share in (0, 1], got {args.ranker_train_share}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if args.worker:
        worker(
            args.worker,
            args.work,
            args.work / "result.json",
            args.seed,
            args.driver_memory,
            args.scoring_limit_minutes * 60,
            parse_sets(args.sets),
            args.ranker,
            depths,
            args.ranker_train_share,
            args.shuffle_partitions,
        )
        return 0

    if args.summarize_only:
        results = json.loads(args.out.read_text(encoding="utf-8"))
        results["notes"] += [n for n in args.note if n not in results["notes"]]
        results["scaling"] = scaling(results["sizes"])
        machine_sharing(results)
        _write(results, args.out)
        print_summary(results)
        return 0
    overrides = parse_sets(args.sets)
    cfg = bench_config(Path(tempfile.gettempdir()) / "bench_nightly", args.driver_memory)
    rc = to_dict(cfg)["recommend"]
    results: dict[str, Any] = {
        "benchmark": "nightly",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "machine_shared": None,
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "inputs": {
            "seed": args.seed,
            "products": N_PRODUCTS,
            "categories": N_CATEGORIES,
            "vector_dim": DIM,
            "warm_products": N_WARM,
            "cold_products": N_PRODUCTS - N_WARM,
            "als_rank": RANK,
            "als_candidates_per_user_in_table": cfg.als.top_k,
            "users": "see sizes; 10 % cold (one event), the others ~2 + Exp(18) event draws, "
            f"{FAVOURITE_SHARE:.0%} in a favourite category, Zipf(1) popularity within a category",
            "events": {e: share for e, share, _ in EVENTS},
            "event_days": DAYS,
            "run_date": RUN_DATE.isoformat(),
            "recommend": {
                k: rc[k]
                for k in (
                    "top_n",
                    "max_per_category",
                    "als_candidates",
                    "content_candidates",
                    "cold_candidates",
                    "history_items",
                    "popular_per_category",
                    "cold_user_max_items",
                    "user_block",
                    "content_item_block",
                )
                if k in rc
            },
            "als": {"topk_user_block": cfg.als.topk_user_block, "topk_item_block": cfg.als.topk_item_block},
            "spark": {
                "master": cfg.spark.master,
                "driver_memory": cfg.spark.driver_memory,
                "shuffle_partitions": cfg.spark.shuffle_partitions,
            },
            "code": "hybrid.scoring.score_users + hybrid.nightly.write_recommendations (the job's own functions)",
            "limit_minutes_per_size": args.limit_minutes,
            "scoring_limit_minutes": args.scoring_limit_minutes,
        },
        "notes": [
            "Timed: the nightly job's history, content, cold and recommendations stages, run by the job's own "
            "functions (hybrid.scoring.score_users, hybrid.nightly.write_recommendations) on synthetic inputs; "
            "total_scoring_seconds is their sum (the recommendations stage includes the night's Delta write). "
            "Setup (building the synthetic inputs) is reported apart. ALS itself, freshness, similar_items "
            "and retention are not run. Every user block of the content stage is scored (nothing projected).",
            "Memory: peak RSS sampled every 0.25 s of the driver Python process, the Spark JVM and the "
            "JVM's Python workers (their sum is the peak of the sum, not the sum of peaks). Spark runs "
            "in local mode: there are no separate executor processes, the tasks run in the driver JVM "
            "(executor memory = the JVM's) and its Python workers. JVM RSS follows the committed heap, "
            "which the JVM grows towards -Xmx (spark.driver.memory) before collecting: jvm_heap_used "
            "(sampled once a second) is the better sign of what the heap needed.",
            "Each size runs in a fresh process and JVM; the machine is shared with other work: CPU "
            "seconds, effective cores and load averages are recorded per stage.",
            *args.note,
        ],
        "sizes": [],
    }
    if args.append and args.out.is_file():
        previous = json.loads(args.out.read_text(encoding="utf-8"))
        results["sizes"] = previous.get("sizes", [])
        results["notes"] = previous.get("notes", results["notes"]) + [
            n for n in args.note if n not in previous.get("notes", [])
        ]
        results["load_before"] = previous.get("load_before", results["load_before"])
        results["created_at"] = previous.get("created_at", results["created_at"])
        results["appended_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for n in [int(x) for x in args.users.split(",") if x]:
        log.info("%d users: fresh process", n)
        res = run_size(
            n,
            args.seed,
            args.driver_memory,
            args.limit_minutes * 60,
            args.scoring_limit_minutes * 60,
            args.sets,
            args.ranker,
            args.ranker_depth,
            args.ranker_train_share,
            args.shuffle_partitions,
        )
        res["variant"] = (
            (args.variant or ("ranker" if args.ranker else "overrides")) if overrides or args.ranker else None
        )
        if res.get("status") == "done":
            res["total_scoring_seconds"] = round(sum(res["stages"][s]["seconds"] for s in STAGES), 2)
            res["total_scoring_cpu_seconds"] = round(sum(res["stages"][s]["cpu_seconds"] for s in STAGES), 1)
            res["peak_memory_mib"] = {
                k: max(res["stages"][s]["peak_memory_mib"].get(k, 0) for s in STAGES)
                for k in ("driver_python", "jvm", "python_workers", "total", "jvm_heap_used", "jvm_heap_committed")
            }
            if all(s in res["stages"] for s in RANKER_STAGES):
                scoring = sum(res["stages"][s]["seconds"] for s in STAGES[:-1])
                with_ranker = scoring + res["stages"]["recommendations_ranker"]["seconds"]
                res["ranker"] = {
                    "train_seconds": res["stages"]["ranker_train"]["seconds"],
                    "train_user_share": args.ranker_train_share,
                    "lexical_seconds_shared": res["stages"]["lexical"]["seconds"],
                    "night_seconds_blend": res["total_scoring_seconds"],
                    "night_seconds_ranker": round(with_ranker, 2),
                    "night_ratio_ranker_to_blend": round(with_ranker / res["total_scoring_seconds"], 3),
                    "night_depth": RankerConfig().night_depth,
                    "night_ratio_by_depth": {
                        name.removeprefix("recommendations_ranker_"): round(
                            (scoring + st["seconds"]) / res["total_scoring_seconds"], 3
                        )
                        for name, st in res["stages"].items()
                        if name.startswith("recommendations_ranker_") and "seconds" in st
                    },
                    "note": "night = history + content + cold + the lists stage (blend: recommendations; "
                    "ranker: recommendations_ranker, pool features + scoring + lists); train = the pool's "
                    "features for every active user + labelled rows + SparkXGBRanker fit (the weekly job "
                    "also replays a night before the label window: about the night's history+content+cold); "
                    "lexical = the night's title neighbours, computed once a night for similar items whichever "
                    "orders the lists and reused by the ranker's lexical source: in neither night's figure",
                }
        results["sizes"].append(res)
        results["scaling"] = scaling(results["sizes"])
        _write(results, args.out)
    machine_sharing(results)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    _write(results, args.out)
    print_summary(results)
    print(f"\nwritten {args.out.relative_to(REPO_ROOT) if args.out.is_relative_to(REPO_ROOT) else args.out}")
    return 0


def _write(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
