"""Benchmark: Spark ALS (hybridrec.collab) against the ``implicit`` library's ALS, side by side.

    .venv/bin/python bench/bench_als.py [--sizes 100000,1000000] [--repeats 2] [--no-tune]

Writes ``bench/results/als.json`` (inputs, machine, load, figures, ratios) and prints a summary.

Data: the seeded simulator (``hybridrec.demo.simulator``) over the fashion catalog in
../shared/data/fashion (42,147 products; the generated demo catalog when it is absent), with the
number of users chosen so that each size has about that many events (30 events per user). The
same code as the ALS job turns the events into the interaction matrix: usable events, persistent
id mappings, a temporal holdout (the last 7 days test), log1p of the time-decayed weights per
(user, item) in the training part. Both engines get exactly that matrix and are scored on the
same warm test users with the same metric code (Recall@10, NDCG@10).

How the engines are matched (implicit 0.7 vs Spark 4.0):

- Confidence: Spark uses c = 1 + alpha * r; implicit uses the matrix value itself as c (its
  ``alpha`` only multiplies the matrix). So implicit gets a user x item CSR matrix holding
  1 + alpha * r and ``alpha=1``: the same c, the same preference p = 1 on every stored pair.
- Regularisation: Spark multiplies regParam by each user's (item's) number of rated items
  (ALS-WR); implicit adds one fixed lambda to every solve. No single lambda is the same model, so
  implicit runs at the nominal value (lambda = regParam) and over a small grid; "equal quality"
  compares against the implicit setting whose NDCG@10 is best (its fit time hardly depends on
  lambda, so the time ratio holds either way).
- Solver: Spark solves each normal equation exactly (Cholesky); implicit 0.7 defaults to 3 steps
  of conjugate gradient. Both implicit solvers are timed (``use_cg`` true and false).
- Same rank, iterations, 2 threads each (Spark local[2], implicit num_threads=2), OpenBLAS with
  one thread per caller (OPENBLAS_NUM_THREADS=1), fit times include everything each library does
  in ``fit`` (Spark: partitioning the ratings into blocks, the iterations, materialising factors).

Also measured: top-K (K=100) for every user with Spark's ``recommendForAllUsers`` and with the
blocked cross join of ``hybridrec.collab.topk`` (written to Spark's ``noop`` sink), and
implicit's batched ``recommend``; and Spark's fit with native BLAS (OpenBLAS through JNI) against
the Java fallback (VectorBLAS/F2jLAPACK), each in a fresh JVM with one warm-up fit, where the
fallback is forced with ``-Ddev.ludovic.netlib.blas.nativeLib`` naming a missing library.

The machine is shared (other work on the same two cores makes single runs noisy): the load
average and the CPU seconds each measurement obtained are recorded; ratios come from the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# One OpenBLAS thread per caller, before numpy loads: both engines parallelise themselves.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))

import numpy as np  # noqa: E402 - after the sys.path set-up above (runs without an installed package)

from hybridrec.config import Config, DemoConfig, config_from_dict, load_config  # noqa: E402 - after the sys.path set-up above (runs without an installed package)
from machine_info import host  # noqa: E402 - after the sys.path set-up above

log = logging.getLogger("bench.als")
FASHION = REPO_ROOT.parent / "shared" / "data" / "fashion"
RESULTS = REPO_ROOT / "bench" / "results" / "als.json"
CUTOFF = dt.datetime(2026, 1, 1)  # the simulator's reference date
EVENTS_PER_USER = 30.0
K_EVAL = 10
K_TOPK = 100
# Cheaper Spark settings (rank, iterations), fitted once each: the time Spark needs for a given
# quality, against implicit's best quality ("equal quality", not only equal nominal settings).
SPARK_SWEEP = ((32, 5), (32, 10), (64, 5))
# implicit's lambda as multiples of Spark's regParam (which Spark scales per user and item).
REG_MULTIPLES = (1, 3, 10, 30, 100, 300, 1000)
# The JVM options that make dev.ludovic.netlib miss the native library: the Java fallback runs.
NO_NATIVE_BLAS = "-Ddev.ludovic.netlib.blas.nativeLib=libhybridrec-no-such-blas.so"
NO_NATIVE_LAPACK = "-Ddev.ludovic.netlib.lapack.nativeLib=libhybridrec-no-such-lapack.so"
BLAS_MODES = {
    "native": "",  # OpenBLAS for both (JNIBLAS + JNILAPACK)
    "java": f"{NO_NATIVE_BLAS} {NO_NATIVE_LAPACK}",  # VectorBLAS + F2jLAPACK
    "java_blas_native_lapack": NO_NATIVE_BLAS,  # VectorBLAS for dspr/daxpy, OpenBLAS for dppsv
}


# ---- measurement helpers -------------------------------------------------------------------------


def _proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds(pid: int) -> float:
    """CPU seconds of the live descendants of ``pid`` (Spark's Python workers)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + _children_cpu_seconds(
                int(entry.name)
            )
    return total


class Clock:
    """Wall seconds of a call, the CPU seconds it obtained and the load around it."""

    def __init__(self, jvm_pid: int | None = None) -> None:
        self.jvm_pid = jvm_pid

    def cpu(self) -> float:
        used = time.process_time()
        if self.jvm_pid:
            used += _proc_cpu_seconds(self.jvm_pid) + _children_cpu_seconds(self.jvm_pid)
        return used

    def __call__(self, fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
        load0, cpu0, t0 = os.getloadavg()[0], self.cpu(), time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
        cpu = self.cpu() - cpu0
        return out, {
            "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "effective_cores": round(cpu / seconds, 2) if seconds else 0.0,
            "load_1m_before": round(load0, 2),
            "load_1m_after": round(os.getloadavg()[0], 2),
        }


def best(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The fastest run, with every run's seconds (the spread is the noise)."""
    fastest = min(runs, key=lambda r: r["seconds"])
    return {**fastest, "runs_seconds": [r["seconds"] for r in runs]}


def machine() -> dict[str, Any]:
    return host("pyspark", "implicit", "scipy", "numpy")


# ---- data ----------------------------------------------------------------------------------------


def simulate_events(target_events: int, seed: int):
    """Simulated events (pandas) of about ``target_events`` rows and a description of the catalog."""
    from hybridrec.demo.simulator import simulate

    n_users = max(10, round(target_events / EVENTS_PER_USER))
    if (FASHION / "styles.csv").is_file():
        from hybridrec.demo.raw_files import read_fashion_styles

        fashion_cfg = load_config(REPO_ROOT / "conf" / "fashion.yaml")
        styles, id_col, cat_col = read_fashion_styles(FASHION, fashion_cfg)
        demo = dataclasses.replace(fashion_cfg.demo, n_users=n_users, seed=seed)
        sim = simulate(
            styles, demo, demo.preference_attributes, id_col=id_col, category_col=cat_col, listed_at_col=None
        )
        return sim.events, f"fashion catalog ../shared/data/fashion/styles.csv ({len(styles)} products)"
    from hybridrec.demo.interactions import simulate_generated

    demo = DemoConfig(n_users=n_users, n_products=20000, seed=seed)
    log.warning("no fashion catalog at %s: using the generated demo catalog", FASHION)
    return simulate_generated(demo).events, "generated demo catalog (20,000 products)"


def prepare(spark, cfg: Config, events_pd) -> dict[str, Any]:
    """The training matrix (cached DataFrame + CSR of r) and the relevant sets of warm test users."""
    import scipy.sparse as sp

    from hybridrec.collab.confidence import flag_interactions, usable
    from hybridrec.collab.holdout_metrics import prepare_holdout
    from hybridrec.collab.ids import ITEMS, USERS, empty_mapping, extend_mapping
    from hybridrec.demo.interactions import interactions_frame
    from hybridrec.splits import split_holdout

    frame = interactions_frame(spark, events_pd, cfg.interactions.event_weights)
    events = usable(flag_interactions(frame, CUTOFF)).persist()
    users, _ = extend_mapping(empty_mapping(spark, USERS), events, USERS, CUTOFF)
    items, _ = extend_mapping(empty_mapping(spark, ITEMS), events, ITEMS, CUTOFF)
    users, items = users.persist(), items.persist()
    als = cfg.als
    data = prepare_holdout(
        split_holdout(events, CUTOFF, als.holdout, als.holdout_days, als.holdout_n), users, items, als
    )
    train = data.train
    # Bench only: the matrix and the relevant sets go to the driver to feed implicit.
    pdf = train.toPandas()
    n_users, n_items = users.count(), items.count()
    r = sp.csr_matrix(
        (pdf["rating"].to_numpy(np.float32), (pdf["user_idx"].to_numpy(), pdf["item_idx"].to_numpy())),
        shape=(n_users, n_items),
    )
    relevant = {int(row["user_idx"]): set(row["relevant"]) for row in data.relevant.collect()}
    per_user = np.diff(r.indptr)
    per_item = np.bincount(r.indices, minlength=n_items)
    return {
        "train": train,
        "r": r,
        "relevant": relevant,
        "data": data,
        "events": events,
        "counts": {
            "events": int(len(events_pd)),
            "users": int(n_users),
            "items": int(n_items),
            "train_pairs": int(r.nnz),
            **data.counts,
            "mean_pairs_per_train_user": round(float(per_user[per_user > 0].mean()), 2),
            "mean_pairs_per_train_item": round(float(per_item[per_item > 0].mean()), 2),
        },
    }


def quality(top: dict[int, list[int]], relevant: dict[int, set[int]]) -> dict[str, float]:
    """Recall@10 and NDCG@10 over the warm test users (missing users count with no items)."""
    from hybridrec.metrics.ranking import mean_metrics

    m = mean_metrics([(top.get(u, []), rel) for u, rel in relevant.items()], K_EVAL)
    return {
        "recall@10": round(m["recall@10"], 4),
        "ndcg@10": round(m["ndcg@10"], 4),
        "precision@10": round(m["precision@10"], 4),
        "map@10": round(m["map@10"], 4),
    }


# ---- Spark ---------------------------------------------------------------------------------------


def spark_session(cfg: Config, java_opts: str | None = None):
    from hybridrec.spark import build_spark

    if java_opts:
        # Local mode: the executors live in the driver's JVM, so the driver's options are enough.
        cfg.spark.conf["spark.driver.extraJavaOptions"] = java_opts
    return build_spark(cfg.spark)


def jvm_pid(spark) -> int:
    return int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())  # noqa: SLF001 - the JVM's pid, only through py4j


def spark_quality(spark, model, prep: dict[str, Any]) -> dict[str, float]:
    """Recall/NDCG@10 of a Spark model's top-10 (blocked top-K) for the warm test users."""
    from hybridrec.collab.topk import top_k

    warm = spark.createDataFrame([(u,) for u in prep["relevant"]], "user_idx int")
    top: dict[int, list[tuple[int, int]]] = {}
    for r in top_k(model, K_EVAL, "blocked", users=warm).collect():
        top.setdefault(r.user_idx, []).append((r.rank, r.item_idx))
    return quality({u: [i for _, i in sorted(v)] for u, v in top.items()}, prep["relevant"])


def spark_tuning(spark, cfg: Config, prep: dict[str, Any]) -> dict[str, Any]:
    """The library's own search (``hybridrec.collab.tuning``) on the validation window."""
    from hybridrec.collab.holdout_metrics import prepare_holdout
    from hybridrec.collab.ids import ITEMS, USERS, empty_mapping, extend_mapping
    from hybridrec.collab.tuning import tune
    from hybridrec.splits import split_holdout

    events = prep["events"]
    users = empty_mapping(spark, USERS)
    items = empty_mapping(spark, ITEMS)
    users, _ = extend_mapping(users, events, USERS, CUTOFF)
    items, _ = extend_mapping(items, events, ITEMS, CUTOFF)
    als = cfg.als
    test = split_holdout(events, CUTOFF, als.holdout, als.holdout_days, als.holdout_n)
    val_split = split_holdout(test.train, test.reference, als.holdout, als.holdout_days, als.holdout_n)
    validation = prepare_holdout(val_split, users, items, cfg.als)
    t0 = time.perf_counter()
    chosen, trials = tune(validation, cfg)
    validation.unpersist()
    return {
        "window": "the 7 days before the test window",
        "seconds": round(time.perf_counter() - t0, 1),
        "chosen": chosen.as_dict(),
        "trials": [
            {
                **t.params.as_dict(),
                "ndcg@10": round(t.metrics["ndcg@10"], 4),
                "recall@10": round(t.metrics["recall@10"], 4),
                "fit_seconds": round(t.fit_seconds, 1),
            }
            for t in trials
        ],
    }


def blas_worker(ratings_dir: str, params_json: str, mode: str) -> None:
    """Subprocess body: one fresh JVM in BLAS ``mode``, a warm-up fit (1 iteration), one timed fit."""
    from hybridrec.collab.blas import linear_algebra
    from hybridrec.collab.estimator import AlsParams, fit_model

    cfg = bench_config(Path(ratings_dir).parent / mode)
    spark = spark_session(cfg, BLAS_MODES[mode] or None)
    info = linear_algebra(spark)
    train = spark.read.parquet(ratings_dir).persist()
    train.count()
    params = AlsParams(**json.loads(params_json))
    fit_model(train, dataclasses.replace(params, max_iter=1), cfg)
    _, figures = Clock(jvm_pid(spark))(lambda: fit_model(train, params, cfg))
    print("BLAS_RESULT " + json.dumps({"linear_algebra": info, "fit": figures}), flush=True)
    spark.stop()


def blas_comparison(prep: dict[str, Any], params, work: Path, repeats: int) -> dict[str, Any]:
    """Spark's fit in each BLAS mode, one fresh JVM per fit, the modes interleaved ``repeats`` times
    (so that a change in the machine's load hits every mode alike)."""
    ratings_dir = work / "ratings"
    prep["train"].write.mode("overwrite").parquet(str(ratings_dir))
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in BLAS_MODES}
    out: dict[str, Any] = {}
    for _ in range(repeats):
        for mode in BLAS_MODES:
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--blas-worker",
                str(ratings_dir),
                "--params",
                json.dumps(params.as_dict()),
                "--blas-mode",
                mode,
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("BLAS_RESULT ")), None)
            if proc.returncode or line is None:
                log.error("BLAS worker (%s) failed:\n%s", mode, proc.stderr[-3000:])
                out.setdefault("errors", []).append({mode: proc.stderr[-500:]})
                continue
            result = json.loads(line.removeprefix("BLAS_RESULT "))
            result["log_says_failed_to_load"] = sorted(
                lib
                for lib in ("JNIBLAS", "JNILAPACK")
                if f"Failed to load implementation from:dev.ludovic.netlib.{lib[3:].lower()}.{lib}" in proc.stderr
            )
            runs[mode].append(result)
    for mode, results in runs.items():
        if results:
            out[mode] = {
                "linear_algebra": results[0]["linear_algebra"],
                "log_says_failed_to_load": results[0]["log_says_failed_to_load"],
                "fit": best([r["fit"] for r in results]),
                "runs_cpu_seconds": [r["fit"]["cpu_seconds"] for r in results],
            }
    if "native" in out:
        base = out["native"]["fit"]
        for mode in BLAS_MODES:
            if mode != "native" and mode in out:
                out[f"{mode}_over_native_wall"] = round(out[mode]["fit"]["seconds"] / base["seconds"], 2)
                out[f"{mode}_over_native_cpu"] = round(
                    min(out[mode]["runs_cpu_seconds"]) / min(out["native"]["runs_cpu_seconds"]), 2
                )
    return out


# ---- implicit and the head-to-head -------------------------------------------------------------


class Implicit:
    """implicit's ALS on the same matrix: a user x item CSR of c = 1 + alpha * r, and alpha=1."""

    def __init__(self, prep: dict[str, Any], params) -> None:
        self.params = params
        self.conf = prep["r"].copy()
        self.conf.data = (1.0 + params.alpha * self.conf.data).astype(np.float32)
        self.relevant = prep["relevant"]
        self.warm = np.fromiter(self.relevant.keys(), dtype=np.int32)

    def model(self, reg: float, use_cg: bool):
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=self.params.rank,
            regularization=reg,
            alpha=1.0,
            iterations=self.params.max_iter,
            use_cg=use_cg,
            num_threads=2,
            random_state=42,
            calculate_training_loss=False,
        )

    def fit(self, model) -> dict[str, float]:
        return Clock()(lambda: model.fit(self.conf, show_progress=False))[1]

    def quality(self, model) -> dict[str, float]:
        ids, _ = model.recommend(self.warm, self.conf[self.warm], N=K_EVAL, filter_already_liked_items=False)
        return quality({int(u): [int(i) for i in row] for u, row in zip(self.warm, ids)}, self.relevant)

    def topk_all_users(self, model) -> dict[str, float]:
        users = np.arange(self.conf.shape[0], dtype=np.int32)
        return Clock()(lambda: model.recommend(users, self.conf, N=K_TOPK, filter_already_liked_items=False))[1]


def popularity(prep: dict[str, Any]) -> dict[str, float]:
    users_per_item = np.bincount(prep["r"].indices, minlength=prep["r"].shape[1])
    top = [int(i) for i in np.lexsort((np.arange(len(users_per_item)), -users_per_item))[:K_EVAL]]
    return quality({u: top for u in prep["relevant"]}, prep["relevant"])


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return round(ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2, 2)


def head_to_head(spark, cfg: Config, prep: dict[str, Any], params, repeats: int) -> dict[str, Any]:
    """Spark and implicit fitted in alternation on the same matrix, so that a change in the
    machine's load hits both; each round gives paired ratios, and their median is reported."""
    from hybridrec.collab.estimator import fit_model
    from hybridrec.collab.topk import top_k

    imp = Implicit(prep, params)
    out: dict[str, Any] = {"implicit_regularization_grid": []}
    log.info("implicit: regularization grid (CG)")
    for reg in [round(params.reg_param * f, 4) for f in REG_MULTIPLES]:
        model = imp.model(reg, True)
        figures = imp.fit(model)
        out["implicit_regularization_grid"].append(
            {"regularization": reg, "fit_seconds": figures["seconds"], **imp.quality(model)}
        )
    best_reg = max(out["implicit_regularization_grid"], key=lambda g: g["ndcg@10"])["regularization"]
    out["implicit_best_regularization"] = best_reg

    log.info("spark vs implicit: %d paired rounds", repeats)
    clock = Clock(jvm_pid(spark))
    fit_model(prep["train"], dataclasses.replace(params, max_iter=1), cfg)  # warm-up: JIT, checkpoint dir
    engines: dict[str, Callable[[], Any]] = {
        "implicit_cg": lambda: imp.model(params.reg_param, True),
        "implicit_cholesky": lambda: imp.model(params.reg_param, False),
        "implicit_cg_best_reg": lambda: imp.model(best_reg, True),
    }
    rounds: list[dict[str, dict[str, float]]] = []
    models: dict[str, Any] = {}
    for _ in range(repeats):
        (models["spark"], _), spark_fit = clock(lambda: fit_model(prep["train"], params, cfg))
        this = {"spark": spark_fit}
        for name, make in engines.items():
            models[name] = make()
            this[name] = imp.fit(models[name])
        rounds.append(this)
    out["fits"] = {name: best([r[name] for r in rounds]) for name in rounds[0]}
    out["fits"]["rounds"] = rounds
    out["paired_ratios"] = {
        f"spark_over_{name}_{unit}": _median([r["spark"][key] / r[name][key] for r in rounds])
        for name in engines
        for unit, key in (("wall", "seconds"), ("cpu", "cpu_seconds"))
    }
    out["quality"] = {
        "spark": spark_quality(spark, models["spark"], prep),
        **{name: imp.quality(models[name]) for name in engines},
        "popularity": popularity(prep),
    }

    log.info("spark: cheaper settings, each paired with implicit at its best regularization")
    out["spark_sweep"] = []
    for rank, iters in SPARK_SWEEP:
        cheaper = dataclasses.replace(params, rank=rank, max_iter=iters)
        (sweep_model, _), figures = clock(lambda cheaper=cheaper: fit_model(prep["train"], cheaper, cfg))
        reference = imp.fit(imp.model(best_reg, True))
        out["spark_sweep"].append(
            {
                "rank": rank,
                "max_iter": iters,
                "fit": figures,
                "implicit_cg_best_reg_fit": reference,
                "spark_over_implicit_wall": round(figures["seconds"] / reference["seconds"], 2),
                "spark_over_implicit_cpu": round(figures["cpu_seconds"] / reference["cpu_seconds"], 2),
                **spark_quality(spark, sweep_model, prep),
            }
        )
        del sweep_model

    log.info("top-%d for every user: Spark blocked, Spark recommendForAllUsers, implicit", K_TOPK)
    out["topk_all_users"] = {}
    for method in ("blocked", "recommend_for_all"):
        frame = top_k(
            models["spark"], K_TOPK, method, user_block=cfg.als.topk_user_block, item_block=cfg.als.topk_item_block
        )
        out["topk_all_users"][f"spark_{method}"] = clock(
            lambda frame=frame: frame.write.format("noop").mode("overwrite").save()
        )[1]
    out["topk_all_users"]["implicit"] = imp.topk_all_users(models["implicit_cg"])
    return out


# ---- main ----------------------------------------------------------------------------------------


def bench_config(base: Path) -> Config:
    """local[2] Spark and the ALS settings of conf/local.yaml, paths under ``base``."""
    local = load_config(REPO_ROOT / "conf" / "local.yaml")
    from hybridrec.config import to_dict

    als = to_dict(local)["als"]
    return config_from_dict(
        {
            "spark": {
                "master": "local[2]",
                "shuffle_partitions": 4,
                "driver_memory": "8g",
                "ui_enabled": False,
                "app_name": "bench-als",
            },
            "paths": {k: str(base / k) for k in ("warehouse", "models", "checkpoints", "features", "raw", "report")},
            "als": als,
        }
    )


def run_size(spark, cfg: Config, target: int, seed: int, repeats: int, tune_it: bool, work: Path) -> dict[str, Any]:
    from hybridrec.collab.estimator import AlsParams

    t0 = time.perf_counter()
    events, catalog = simulate_events(target, seed)
    log.info(
        "size %d: %d simulated events (%.1fs); preparing the matrix", target, len(events), time.perf_counter() - t0
    )
    prep = prepare(spark, cfg, events)
    log.info("matrix: %s", prep["counts"])
    params = AlsParams.from_config(cfg.als)
    result: dict[str, Any] = {
        "target_events": target,
        "catalog": catalog,
        "counts": prep["counts"],
        "params": params.as_dict(),
    }
    result.update(head_to_head(spark, cfg, prep, params, repeats))
    if tune_it:
        log.info("spark: the library's tuning grid on the validation window")
        result["spark_tuning"] = spark_tuning(spark, cfg, prep)
    log.info("spark: native vs Java BLAS in fresh JVMs")
    result["blas"] = blas_comparison(prep, params, work / f"blas_{target}", repeats)
    result["ratios"] = ratios(result)
    prep["data"].unpersist()
    prep["events"].unpersist()
    return result


def ratios(r: dict[str, Any]) -> dict[str, Any]:
    """Headline ratios: fits (paired medians), quality gaps, top-K methods, equal quality."""
    q, t, fits = r["quality"], r["topk_all_users"], r["fits"]
    out = dict(r["paired_ratios"])
    out.update(
        {
            "spark_ndcg_vs_implicit_nominal_reg": round(q["spark"]["ndcg@10"] / q["implicit_cg"]["ndcg@10"] - 1, 4),
            "spark_ndcg_vs_implicit_best_reg": round(
                q["spark"]["ndcg@10"] / q["implicit_cg_best_reg"]["ndcg@10"] - 1, 4
            ),
            "spark_ndcg_vs_popularity": round(q["spark"]["ndcg@10"] / q["popularity"]["ndcg@10"] - 1, 4),
            "recommend_for_all_over_blocked_topk": round(
                t["spark_recommend_for_all"]["seconds"] / t["spark_blocked"]["seconds"], 2
            ),
            "spark_blocked_topk_over_implicit_topk": round(t["spark_blocked"]["seconds"] / t["implicit"]["seconds"], 2),
            "best_spark_fit_over_best_implicit_cg_fit": round(
                fits["spark"]["seconds"] / fits["implicit_cg"]["seconds"], 2
            ),
        }
    )
    # Equal quality: the cheapest Spark setting within 2 % of implicit's best NDCG@10 (or above).
    target = q["implicit_cg_best_reg"]["ndcg@10"] * 0.98
    settings = [
        {
            "rank": r["params"]["rank"],
            "max_iter": r["params"]["max_iter"],
            "ndcg@10": q["spark"]["ndcg@10"],
            "cpu": fits["spark"]["cpu_seconds"],
            "wall_ratio": out["spark_over_implicit_cg_best_reg_wall"],
            "cpu_ratio": out["spark_over_implicit_cg_best_reg_cpu"],
        }
    ]
    settings += [
        {
            "rank": x["rank"],
            "max_iter": x["max_iter"],
            "ndcg@10": x["ndcg@10"],
            "cpu": x["fit"]["cpu_seconds"],
            "wall_ratio": x["spark_over_implicit_wall"],
            "cpu_ratio": x["spark_over_implicit_cpu"],
        }
        for x in r["spark_sweep"]
    ]
    good = [x for x in settings if x["ndcg@10"] >= target]
    if good:
        cheapest = min(good, key=lambda x: x["cpu_ratio"])  # paired with implicit: load-independent
        out["equal_quality"] = {
            "implicit_best_ndcg@10": q["implicit_cg_best_reg"]["ndcg@10"],
            "implicit_regularization": r["implicit_best_regularization"],
            "spark_setting": {"rank": cheapest["rank"], "max_iter": cheapest["max_iter"]},
            "spark_ndcg@10": cheapest["ndcg@10"],
            "spark_over_implicit_cg_wall": cheapest["wall_ratio"],
            "spark_over_implicit_cg_cpu": cheapest["cpu_ratio"],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="target events per data set, comma-separated")
    parser.add_argument("--repeats", type=int, default=2, help="fits per measurement; the fastest is kept")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-tune", action="store_true", help="skip the tuning grid on the smallest size")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--note", action="append", default=[], help="a line for the results' notes (what else ran on the machine, ...)"
    )
    parser.add_argument("--blas-worker", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    parser.add_argument("--blas-mode", choices=sorted(BLAS_MODES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("py4j", "implicit"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.blas_worker:
        blas_worker(args.blas_worker, args.params, args.blas_mode)
        return 0

    sizes = [int(s) for s in args.sizes.split(",") if s]
    work = Path(tempfile.mkdtemp(prefix="bench_als_"))
    cfg = bench_config(work)
    results: dict[str, Any] = {
        "benchmark": "als",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "machine_shared": None,
        "inputs": {
            "simulator_seed": args.seed,
            "events_per_user": EVENTS_PER_USER,
            "holdout": f"{cfg.als.holdout}: the last {cfg.als.holdout_days:g} days before {CUTOFF.isoformat()}Z test",
            "confidence": f"r = {cfg.als.transform} of the event weights (view 1, cart 3, purchase 5) halved every "
            f"{cfg.als.half_life_days:g} days before the split; c = 1 + alpha * r",
            "spark": {
                "master": cfg.spark.master,
                "num_blocks": cfg.als.num_blocks or 2,
                "checkpoint_interval": cfg.als.checkpoint_interval,
            },
            "implicit": "AlternatingLeastSquares(factors=rank, regularization=..., alpha=1.0 on a CSR of 1 + alpha*r, "
            "iterations=max_iter, num_threads=2)",
            "repeats": args.repeats,
            "kept": "the fastest of the repeats (runs_seconds lists all)",
            "k_eval": K_EVAL,
            "k_topk": K_TOPK,
        },
        "notes": [
            "Wall times on a shared machine are noisy: every fit also records its CPU seconds and the "
            "load average around it, Spark and implicit are fitted in alternation and their ratios are "
            "medians of paired rounds (paired_ratios), and the BLAS modes are interleaved.",
            *args.note,
        ],
        "sizes": [],
    }
    try:
        spark = spark_session(cfg)
        from hybridrec.collab.blas import log_linear_algebra

        results["linear_algebra"] = log_linear_algebra(spark)
        for n, target in enumerate(sizes):
            results["sizes"].append(
                run_size(spark, cfg, target, args.seed, args.repeats, tune_it=not args.no_tune and n == 0, work=work)
            )
            _write(results, args.out)
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loads = [v for s in results["sizes"] for v in _loads(s)]
    # The benchmark itself keeps about 2 cores busy: more than that is someone else's work.
    results["machine_shared"] = bool(loads and max(loads) > 1.25 * (os.cpu_count() or 1))
    results["load_1m_range"] = [min(loads), max(loads)] if loads else None
    _write(results, args.out)
    print_summary(results)
    print(f"\nwritten {args.out.relative_to(REPO_ROOT) if args.out.is_relative_to(REPO_ROOT) else args.out}")
    return 0


def _loads(node: Any) -> list[float]:
    if isinstance(node, dict):
        own = [node[k] for k in ("load_1m_before", "load_1m_after") if k in node]
        return own + [v for x in node.values() for v in _loads(x)]
    if isinstance(node, list):
        return [v for x in node for v in _loads(x)]
    return []


def portable(node: Any) -> Any:
    """No machine paths in the results: native libraries by their folder and file name, the JNI
    stubs dev.ludovic.netlib extracts to a temporary file by their name without the random part."""
    if isinstance(node, dict):
        return {k: portable(v) for k, v in node.items()}
    if isinstance(node, list):
        return [portable(v) for v in node]
    if isinstance(node, str) and node.startswith("/"):
        path = Path(node)
        if path.name.startswith("libnetlib") and ".so" in path.name:
            return path.name[: path.name.index(".so") + 3] + " (JNI stub extracted from the jar)"
        return "/".join(path.parts[-2:])
    return node


def _write(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(portable(results), indent=2) + "\n", encoding="utf-8")


def print_summary(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(
        f"\nALS benchmark: Spark {m['pyspark']} local[2] vs implicit {m['implicit']} (2 threads), "
        f"{m['cores']} cores, {m['memory_gib']} GiB; shared machine: {results['machine_shared']} "
        f"(load {results['load_1m_range']})"
    )
    for s in results["sizes"]:
        c, f, q, r = s["counts"], s["fits"], s["quality"], s["ratios"]
        print(
            f"\n{c['events']:,} events: {c['users']:,} users x {c['items']:,} items, {c['train_pairs']:,} training "
            f"pairs, {c['warm_test_users']:,} warm test users; params {s['params']}"
        )
        print(
            "  fit s (CPU s) "
            + " | ".join(
                f"{name} {f[name]['seconds']} ({f[name]['cpu_seconds']})"
                for name in ("spark", "implicit_cg", "implicit_cholesky", "implicit_cg_best_reg")
            )
        )
        print(
            f"  Spark / implicit, median of paired rounds: CG x{r['spark_over_implicit_cg_wall']} "
            f"(CPU x{r['spark_over_implicit_cg_cpu']}), Cholesky x{r['spark_over_implicit_cholesky_wall']} "
            f"(CPU x{r['spark_over_implicit_cholesky_cpu']})"
        )
        print(
            "  NDCG@10 / Recall@10  " + " | ".join(f"{name} {v['ndcg@10']} / {v['recall@10']}" for name, v in q.items())
        )
        print(
            f"  implicit best regularization {s['implicit_best_regularization']} (Spark regParam "
            f"{s['params']['reg_param']})"
        )
        print(
            "  Spark sweep   "
            + ", ".join(
                f"rank {x['rank']} x{x['max_iter']}: {x['fit']['seconds']} s NDCG {x['ndcg@10']} "
                f"(x{x['spark_over_implicit_wall']} implicit)"
                for x in s["spark_sweep"]
            )
        )
        if "equal_quality" in r:
            e = r["equal_quality"]
            print(
                f"  equal quality Spark {e['spark_setting']} NDCG {e['spark_ndcg@10']} vs implicit best "
                f"{e['implicit_best_ndcg@10']}: x{e['spark_over_implicit_cg_wall']} (CPU "
                f"x{e['spark_over_implicit_cg_cpu']})"
            )
        t = s["topk_all_users"]
        print(
            f"  top-{K_TOPK} s     Spark blocked {t['spark_blocked']['seconds']}, recommendForAllUsers "
            f"{t['spark_recommend_for_all']['seconds']} (x{r['recommend_for_all_over_blocked_topk']}) | implicit "
            f"{t['implicit']['seconds']}"
        )
        b = s["blas"]
        modes = [
            f"{mode} {b[mode]['fit']['seconds']} s / {min(b[mode]['runs_cpu_seconds'])} CPU s "
            f"({b[mode]['linear_algebra']['blas'].rsplit('.', 1)[-1]}+"
            f"{b[mode]['linear_algebra']['lapack'].rsplit('.', 1)[-1]})"
            for mode in BLAS_MODES
            if mode in b
        ]
        print(f"  BLAS          {'; '.join(modes)}")
        if "spark_tuning" in s:
            tu = s["spark_tuning"]
            print(f"  tuning        {len(tu['trials'])} trials in {tu['seconds']} s chose {tu['chosen']}")


if __name__ == "__main__":
    sys.exit(main())
