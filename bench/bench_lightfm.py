"""Benchmark: LightFM against the evaluation's systems (popularity, ALS, content, hybrid), side by side.

    .venv/bin/python bench/bench_lightfm.py [--seed 42 | --seeds 42,43,44] [--users 1500] [--products 1500]
                                            [--out bench/results/lightfm.json]

Writes ``bench/results/lightfm.json`` (inputs, machine, per-segment Recall@10 / NDCG@10 / MAP@10 with
intervals, coverage, paired differences, timings; with ``--seeds`` one run per seed and a summary
across seeds) and prints a table.

Why: LightFM (``bench/lightfm_fit.py``, run in .venv-bench) is the best-known hybrid matrix
factorisation with item features; it answers "does our blend of ALS and content vectors beat one
model that learns both jointly?" on the same split, the same item features, the same filter and the
same metric code.

Same data and protocol as tests/e2e/test_evaluation.py (the setup is tests/e2e/eval_catalog.py):
a generated catalog, simulated users, the real ingest, oracle one-hot content vectors; the
evaluation's temporal split at its default cutoff (``protocol.temporal_split``) and its backtest
(``systems.backtest``: ALS fitted at the cutoff, the nightly scoring) for the four systems. LightFM
gets, exported to Parquet (``export_split``):

- ``train.parquet``: the usable events before the cutoff as one weight per (user, product), the
  rating ALS is fitted on (``confidence.implicit_confidence``: log1p of the time-decayed sum)
- ``item_features.parquet``: the catalog of the split (cold products included) with its category
  and the fused content vector the hybrid gets (LightFM sees it as ``--vec-bits`` sign bits)
- ``users.parquet``: the judged users

Its top-100 lists (over every product) go through the nightly filter of the other systems
(``blend.cap_and_rank``: purchased products removed, at most ``recommend.max_per_category`` per
category; LightFM's own order kept), then ``per_user_metrics`` per segment, ``bootstrap_ci`` and
``paired_difference_ci`` with the evaluation's replicates, seed (the same Poisson weight per user in
every system) and level.

Timings (wall clock, this run, shared 2-core machine: the load average is recorded): the stage
seconds of the evaluation's pipeline, plus a re-run of ALS's top-K and of the popularity count into
Spark's ``noop`` sink, so that each system gets a fit and a score figure (``systems_seconds``;
what each figure covers is written next to it). LightFM's fit and score seconds are its own
(``--lightfm-threads 1`` by default: reproducible, one core; Spark uses ``local[2]``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))
sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))  # eval_catalog, the evaluation test's setup
sys.path.insert(0, str(REPO_ROOT / "bench"))  # peer_io when imported from elsewhere (tests)

from machine_info import host  # noqa: E402 - after the sys.path set-up above
from peer_io import export_split, json_safe, parse_fit_summary  # noqa: E402 - after the sys.path set-up above (runs without an installed package)
from peer_scoring import evaluation_backtest, evaluation_seconds, peer_lists, score_lists, train_users_items  # noqa: E402 - after the sys.path set-up above (runs without an installed package)

RESULTS = REPO_ROOT / "bench" / "results" / "lightfm.json"
BENCH_PY = REPO_ROOT / ".venv-bench" / "bin" / "python"
FIT_SCRIPT = REPO_ROOT / "bench" / "lightfm_fit.py"
ENV_SCRIPT = REPO_ROOT / "bench" / "lightfm_env.sh"
LIGHTFM = "lightfm"
HEADLINE_METRICS = ("recall", "ndcg", "ap")
# The evaluation's comparisons, then LightFM's.
COMPARISONS = (
    ("hybrid", "als"),
    ("als", "popularity"),
    ("hybrid", "content"),
    ("hybrid", LIGHTFM),
    (LIGHTFM, "als"),
    (LIGHTFM, "popularity"),
)


# ---- the LightFM boundary (pure; the split folder and lists: bench/peer_io.py) --------------------


def lightfm_command(python: Path, split: Path, out: Path, params: dict[str, Any]) -> list[str]:
    """The ``lightfm_fit.py`` command line for ``params`` (its option names without dashes)."""
    cmd = [str(python), str(FIT_SCRIPT), "--split", str(split), "--out", str(out)]
    for key, value in params.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    return cmd


# ---- summaries (pure) ----------------------------------------------------------------------------


def _find(rows: list[dict], **match: Any) -> dict | None:
    hits = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    return hits[0] if len(hits) == 1 else None


def _ci(row: dict | None, digits: int = 4) -> str:
    if row is None:
        return "-"
    return f"{row['mean']:.{digits}f} [{row['lo']:.{digits}f}, {row['hi']:.{digits}f}]"


def format_run(run: dict[str, Any], systems: Sequence[str], segments: Sequence[str], k: int) -> str:
    """A readable table of one run: per segment the systems' metrics with intervals, the paired
    differences, coverage and timings."""
    out = [f"seed {run['seed']}: cutoff {run['cutoff']}, {run['counts'].get('split_judged_users')} judged users"]
    head = run["headline"]
    names = {"recall": f"Recall@{k}", "ndcg": f"NDCG@{k}", "ap": f"MAP@{k}"}
    for seg in segments:
        n = next((r["n_users"] for r in head if r["segment"] == seg and r["metric"] == "recall"), 0)
        out.append(f"  {seg} ({n} users)")
        out.append("    {:<11}".format("system") + "".join(f"{names[m]:<27}" for m in HEADLINE_METRICS))
        for system in systems:
            cells = [_ci(_find(head, segment=seg, system=system, metric=m)) for m in HEADLINE_METRICS]
            out.append(f"    {system:<11}" + "".join(f"{c:<27}" for c in cells))
    out.append(f"  paired differences, Recall@{k} (NDCG@{k}): mean [95% interval]")
    for a, b in COMPARISONS:
        cells = []
        for seg in segments:
            r = _find(run["paired"], system_a=a, system_b=b, segment=seg, metric="recall")
            cells.append(f"{seg} {_ci(r)}")
        out.append(f"    {a + ' - ' + b:<22}" + "; ".join(cells))
    cov = {r["system"]: r["coverage"] for r in run["coverage"]}
    out.append(f"  coverage@{k}: " + ", ".join(f"{s} {cov.get(s, 0.0):.3f}" for s in systems))
    sec = run["seconds"]["systems"]
    out.append(
        "  seconds (fit / score): "
        + ", ".join(f"{s} {sec[s]['fit_s']:.1f} / {sec[s]['score_s']:.1f}" for s in systems if s in sec)
    )
    return "\n".join(out)


def summarise_seeds(runs: list[dict[str, Any]], metrics: Sequence[str] = HEADLINE_METRICS) -> dict[str, Any]:
    """Across seeds: each system's mean per segment and metric (per seed, mean, min, max), and each
    paired difference with how many seeds put its interval above 0 or below 0."""
    seeds = [r["seed"] for r in runs]
    headline: list[dict[str, Any]] = []
    keys = sorted(
        {(r["segment"], r["system"], r["metric"]) for run in runs for r in run["headline"] if r["metric"] in metrics}
    )
    for seg, system, metric in keys:
        values = [(_find(run["headline"], segment=seg, system=system, metric=metric) or {}).get("mean") for run in runs]
        got = [v for v in values if v is not None]
        headline.append(
            {
                "segment": seg,
                "system": system,
                "metric": metric,
                "per_seed": values,
                "mean": float(np.mean(got)) if got else None,
                "min": min(got) if got else None,
                "max": max(got) if got else None,
            }
        )
    paired: list[dict[str, Any]] = []
    keys = sorted(
        {
            (r["system_a"], r["system_b"], r["segment"], r["metric"])
            for run in runs
            for r in run["paired"]
            if r["metric"] in metrics
        }
    )
    for a, b, seg, metric in keys:
        rows = [_find(run["paired"], system_a=a, system_b=b, segment=seg, metric=metric) for run in runs]
        paired.append(
            {
                "system_a": a,
                "system_b": b,
                "segment": seg,
                "metric": metric,
                "per_seed": [None if r is None else {"mean": r["mean"], "lo": r["lo"], "hi": r["hi"]} for r in rows],
                "seeds_above_0": sum(1 for r in rows if r is not None and r["lo"] > 0),
                "seeds_below_0": sum(1 for r in rows if r is not None and r["hi"] < 0),
            }
        )
    return {"seeds": seeds, "headline": headline, "paired": paired}


def format_seeds(summary: dict[str, Any], segments: Sequence[str]) -> str:
    seeds = summary["seeds"]
    out = [f"across seeds {', '.join(map(str, seeds))}: paired Recall differences (seeds with interval > 0 / < 0)"]
    for a, b in COMPARISONS:
        cells = []
        for seg in segments:
            r = _find(summary["paired"], system_a=a, system_b=b, segment=seg, metric="recall")
            if r is not None:
                means = ", ".join("-" if p is None else f"{p['mean']:+.4f}" for p in r["per_seed"])
                cells.append(f"{seg} {means} ({r['seeds_above_0']}/{r['seeds_below_0']})")
        out.append(f"  {a + ' - ' + b:<22}" + "; ".join(cells))
    return "\n".join(out)


# ---- machine -------------------------------------------------------------------------------------


def machine(bench_python: Path) -> dict[str, Any]:
    """This machine, and the LightFM version of the peers' environment (``bench_python``)."""
    lightfm = (
        subprocess.run(
            [str(bench_python), "-c", "import lightfm; print(lightfm.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or None
    )
    return host("pyspark", "numpy", "scipy", "pandas", lightfm=lightfm)


def ensure_bench_env() -> Path:
    """.venv-bench with LightFM, built by bench/lightfm_env.sh when missing (a no-op when current)."""
    if not BENCH_PY.exists():
        print("[bench-lightfm] .venv-bench missing: bash bench/lightfm_env.sh", flush=True)
        subprocess.run(["bash", str(ENV_SCRIPT)], check=True)
    return BENCH_PY


# ---- one seed (Spark) ----------------------------------------------------------------------------


def run_seed(spark: Any, conf: Path, seed: int, args: argparse.Namespace, bench_python: Path) -> dict[str, Any]:
    """Build the simulator's catalog of ``conf``, backtest the evaluation's systems and LightFM on one
    split, and score them all with the same code (see the module docstring)."""
    from eval_catalog import build_eval_catalog
    from pyspark.sql import functions as F

    from hybridrec.collab.confidence import implicit_confidence
    from hybridrec.evaluation import report
    from hybridrec.evaluation.protocol import SEGMENTS
    from hybridrec.evaluation.systems import SYSTEMS

    t_build = time.perf_counter()
    cfg = build_eval_catalog(spark, conf)
    build_s = round(time.perf_counter() - t_build, 2)
    ev, k = cfg.evaluate, cfg.evaluate.k
    systems = (*SYSTEMS, LIGHTFM)
    e = evaluation_backtest(spark, cfg, Path(cfg.paths.checkpoints) / "bench_lightfm", f"bench-lightfm seed {seed}")
    cutoff, split, bt, judged, capped, stage, progress = (
        e.cutoff,
        e.split,
        e.bt,
        e.judged,
        e.capped,
        e.stage,
        e.progress,
    )
    vectors, seconds = e.vectors, e.seconds
    catalog = split.products.select("product_id", "category")
    held: dict[str, Any] = {}

    folder = Path(cfg.paths.checkpoints) / "lightfm_split"

    def export() -> str:
        # LightFM is single-node: the whole split goes into its memory anyway.
        train = implicit_confidence(
            bt.scores.usable_events, bt.scores.reference, cfg.als.half_life_days, cfg.als.transform
        )
        train = train.select("user_id", "product_id", F.col("rating").alias("weight")).toPandas()
        items = catalog.join(vectors, "product_id", "left").toPandas()
        users = judged.toPandas()
        held["export"] = n = export_split(folder, train, items, users)
        return (
            f"{n['train_pairs']} training pairs, {n['items']} products ({n['items_with_vec']} with a vector), "
            f"{n['users']} users → {folder}"
        )

    progress("lightfm_export", export)
    params = {
        "k": args.lightfm_k,
        "epochs": args.epochs,
        "components": args.components,
        "vec_bits": args.vec_bits,
        "seed": args.lightfm_seed,
        "threads": args.lightfm_threads,
    }

    def fit() -> str:
        cmd = lightfm_command(bench_python, folder, folder / "recs.parquet", params)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"lightfm_fit.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
        held["fit"] = summary = parse_fit_summary(done.stdout)
        s = summary["seconds"]
        return (
            f"LightFM fit {s['fit']:.1f}s, top-{params['k']} for {summary['counts']['users']} users "
            f"{s['score']:.1f}s ({summary['counts']['unknown_users']} unknown to training)"
        )

    progress("lightfm", fit)

    def lightfm_lists() -> str:
        lists = bt.lists.unionByName(peer_lists(spark, folder / "recs.parquet", capped, LIGHTFM))
        held["lists"] = stage(lists, "lists_with_lightfm")
        n = held["lists"].filter(F.col("system") == LIGHTFM).select("user_id").distinct().count()
        return f"LightFM top-{k} after the nightly filter for {n} judged users"

    progress("lightfm_lists", lightfm_lists)
    lists = held["lists"]
    tables: dict[str, Any] = {}

    def metrics() -> str:
        items = train_users_items(catalog, bt.scores.item_stats)
        tables.update(
            score_lists(
                lists,
                split.relevant,
                items,
                k,
                int(bt.scores.counts["active_users"]),
                systems,
                COMPARISONS,
                ev,
                stage,
                SEGMENTS,
                int(split.counts["catalog_products"]),
            )
        )
        return f"{len(systems)} systems × {len(SEGMENTS)} segments, {ev.bootstrap_replicates} replicates"

    progress("metrics", metrics)
    bt.scores.release()
    fit_summary = held["fit"]
    lf = fit_summary["seconds"]
    stage_s = dict(seconds)
    systems_seconds = {
        **evaluation_seconds(stage_s, "oracle vectors; in production the CNN/LSTM training"),
        LIGHTFM: {
            "fit_s": lf["fit"],
            "score_s": lf["score"],
            "read_s": lf["read"],
            "export_s": stage_s["lightfm_export"],
            "subprocess_wall_s": stage_s["lightfm"],
            "filter_s": stage_s["lightfm_lists"],
            "covers": f"fit: {params['epochs']} epochs, {params['threads']} thread(s); score: top-{params['k']} "
            "over every product for the judged users",
        },
    }
    return {
        "seed": seed,
        "cutoff": cutoff.date().isoformat(),
        "counts": {
            **{f"split_{k_}": v for k_, v in split.counts.items()},
            **{f"backtest_{k_}": v for k_, v in bt.scores.counts.items()},
            **{f"lightfm_export_{k_}": v for k_, v in held["export"].items()},
            **{f"lightfm_{k_}": v for k_, v in fit_summary["counts"].items()},
        },
        "headline": [dataclasses.asdict(r) for r in report.metric_rows(tables["headline"])],
        "paired": [dataclasses.asdict(r) for r in report.paired_rows(tables["paired"])],
        "coverage": tables["coverage"].to_dict("records"),
        "lightfm": {"params": fit_summary["params"]},
        "seconds": {"build_catalog": build_s, "stages": stage_s, "systems": systems_seconds},
    }


# ---- main ----------------------------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--seeds takes integers separated by commas, got {text!r}") from exc
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds needs distinct integers, got {text!r}")
    return seeds


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=42, help="simulator seed (demo.seed), as in the evaluation test")
    ap.add_argument("--seeds", type=parse_seeds, help="comma-separated simulator seeds: one run each, summarised")
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--products", type=int, default=1500)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary one, removed afterwards)")
    ap.add_argument("--epochs", type=int, default=30, help="LightFM epochs")
    ap.add_argument("--components", type=int, default=64, help="LightFM embedding size")
    ap.add_argument(
        "--vec-bits", type=int, default=32, help="LightFM sign bits of the content vector (0: category only)"
    )
    ap.add_argument("--lightfm-k", type=int, default=100, help="LightFM list length before the nightly filter")
    ap.add_argument("--lightfm-seed", type=int, default=42)
    ap.add_argument("--lightfm-threads", type=int, default=1)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.users < 10 or args.products < 24:
        parser().error("--users must be at least 10 and --products at least 24 (12 categories)")
    seeds = args.seeds or [args.seed]
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    bench_python = ensure_bench_env()

    from eval_catalog import eval_sections, write_eval_config

    from hybridrec.config import load_config
    from hybridrec.evaluation.protocol import SEGMENTS
    from hybridrec.evaluation.systems import SYSTEMS
    from hybridrec.spark import build_spark

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-lightfm-"))
    confs = {}
    for seed in seeds:
        (work / f"seed{seed}").mkdir(parents=True, exist_ok=True)
        confs[seed] = write_eval_config(work / f"seed{seed}", seed, args.users, args.products)
    cfg0 = load_config(confs[seeds[0]])
    spark = build_spark(cfg0.spark)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "lightfm",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "inputs": {
            "seeds": seeds,
            "users": args.users,
            "products": args.products,
            "config": eval_sections(seeds[0], args.users, args.products),
            "config_note": "demo.seed is each run's seed; everything else as tests/e2e/test_evaluation.py",
            "k": cfg0.evaluate.k,
            "bootstrap_replicates": cfg0.evaluate.bootstrap_replicates,
            "bootstrap_seed": cfg0.evaluate.seed,
            "confidence": cfg0.evaluate.confidence,
            "max_per_category": cfg0.recommend.max_per_category,
            "spark_master": cfg0.spark.master,
            "lightfm": {
                "epochs": args.epochs,
                "components": args.components,
                "vec_bits": args.vec_bits,
                "k": args.lightfm_k,
                "seed": args.lightfm_seed,
                "threads": args.lightfm_threads,
                "loss": "warp",
                "weights": "ALS rating: log1p of the time-decayed event weights",
            },
        },
        "machine": machine(bench_python),
        "runs": [],
    }
    systems = (*SYSTEMS, LIGHTFM)
    try:
        for seed in seeds:
            run = run_seed(spark, confs[seed], seed, args, bench_python)
            results["runs"].append(run)
            print(format_run(run, systems, SEGMENTS, cfg0.evaluate.k), flush=True)
        if len(seeds) > 1:
            results["across_seeds"] = summarise_seeds(results["runs"])
            print(format_seeds(results["across_seeds"], SEGMENTS), flush=True)
    finally:
        results["load_average"] = {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        }
        results["total_seconds"] = round(time.perf_counter() - t0, 1)
        if results["runs"]:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(
                json.dumps(json_safe(results), indent=1, default=str, allow_nan=False), encoding="utf-8"
            )
            print(f"[bench-lightfm] wrote {args.out}", flush=True)
        spark.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
