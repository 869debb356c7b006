"""Benchmark of the learned ranker (issue 21): does the learned second stage beat ALS, the hand-set
hybrid and content alone, per segment, and what do its feature groups add?

    .venv/bin/python bench/bench_ranker.py [--config conf/retail.yaml] [--set key=value ...]
                                           [--work data/bench/ranker] [--out bench/results/ranker.json]

Needs the warehouse of ``--config`` filled by the pipeline (bronze.products, bronze.interactions,
gold.product_embeddings of the current model). Nothing is written to it: every intermediate result
is staged under ``--work`` (emptied first); point ``paths.checkpoints`` / ``paths.models`` elsewhere
with ``--set`` when the warehouse is not yours (the backtest writes nothing there, but MLflow may).

Protocol (the evaluation's own code, as jobs/evaluate.py → ``evaluation.backtest_report``):

- ``protocol.temporal_split`` at ``evaluate.cutoff`` and ``systems.backtest`` give the lists of
  popularity, ALS, content, hybrid and ``learned`` (the full ranker, trained by
  ``ranker_training.train_ranker`` on the events before the cutoff only)
- ablations: the training rows ``train_ranker`` staged (``ranker_rows``: the replayed night's
  pair features with labels) are refitted with ``fit_ranker`` under ``ranker.drop_features`` =
  each variant's list (``drop_features`` changes nothing else of the training), and the refitted
  ranker orders the same night's pool through ``learned.learned_lists``, exactly as the backtest's
  learned system does. The variants (``VARIANTS``): no content features; no cold features; no
  lexical features; no source score but ALS's (what the item / user / history features add on top
  of ALS; co-interaction and lexical scores dropped too since 2026-12-06)
- list policies: the trained ranker itself with ``ranker.cold_slots`` 0, 1 and 2 (places kept
  for cold products, ``learned.reserve_cold_slots``; no refit), and with ``ranker.night_depth``
  10, 20, 30 or none (the night scores only each source's best d candidates; no refit)
- ``per_user_metrics`` per segment, ``bootstrap_ci``, ``paired_difference_ci`` with the
  evaluation's replicates, seed and level (bench/peer_scoring.py ``score_lists``)
- candidate recall per source: on the ranker's training labels (``RankerTraining.recall``: the
  label window before the cutoff), and on the test window per segment (the pool of the judged users
  at the cutoff against ``split.relevant``): the ceiling any ordering of the pool can reach
- feature importances (total gain share) of every variant, ranker stage seconds

Writes ``bench/results/ranker.json`` (inputs, machine, load, figures) and prints the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from machine_info import host  # noqa: E402 - after the sys.path set-up above
from peer_io import json_safe  # noqa: E402 - after the sys.path set-up above (runs without an installed package)
from peer_scoring import evaluation_backtest, score_lists, train_users_items  # noqa: E402 - after the sys.path set-up above

RESULTS = REPO_ROOT / "bench" / "results" / "ranker.json"
DEFAULT_CONFIG = REPO_ROOT / "conf" / "retail.yaml"
DEFAULT_WORK = REPO_ROOT / "data" / "bench" / "ranker"
BASE_SYSTEMS = ("popularity", "als", "content", "hybrid", "learned")
# Ablations and list policies: system name → ranker settings replaced for it. A variant that drops
# features refits the ranker on the same rows; one that only changes cold_slots reuses the trained
# ranker (the same model, another list policy).
VARIANTS: dict[str, dict[str, Any]] = {
    "learned_no_content": {"drop_features": ["content_score", "content_rank", "sim_last", "sim_top"]},
    "learned_no_cold": {"drop_features": ["cold_score", "cold_rank"]},
    # The lexical source's features (its candidates stay in the pool, as for the other ablations).
    "learned_no_lexical": {"drop_features": ["lexical_score", "lexical_rank"]},
    # Every source's score but ALS's, their ranks and n_sources: the ranker then sees ALS plus the
    # item / user / history / category / similarity features (the pool itself is unchanged).
    "learned_als_context": {
        "drop_features": [
            "content_score",
            "content_rank",
            "cold_score",
            "cold_rank",
            "popular_score",
            "repeat_score",
            "co_score",
            "co_rank",
            "lexical_score",
            "lexical_rank",
            "n_sources",
        ]
    },
    "learned_cold0": {"cold_slots": 0},
    "learned_cold1": {"cold_slots": 1},
    "learned_cold2": {"cold_slots": 2},
    # Night depth (learned.learned_lists): the trained ranker scores only the pairs among the user's
    # best d of some source (no refit); "whole pool" scores every candidate.
    "learned_depth10": {"night_depth": 10},
    "learned_depth20": {"night_depth": 20},
    "learned_depth30": {"night_depth": 30},
    "learned_whole_pool": {"night_depth": None},
}
BASE_COMPARISONS = (("learned", "als"), ("learned", "hybrid"), ("learned", "content"), ("hybrid", "als"))
TABLE_METRICS = ("ndcg", "recall")


def comparisons(variants: Sequence[str]) -> list[tuple[str, str]]:
    """The issue's paired comparisons, then each ablation against the full ranker and ALS."""
    out = list(BASE_COMPARISONS)
    for v in variants:
        out += [(v, "learned"), (v, "als")]
    return out


def format_tables(
    headline: list[dict[str, Any]],
    paired: list[dict[str, Any]],
    systems: Sequence[str],
    segments: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    k: int,
) -> str:
    """Markdown: NDCG@k / Recall@k per (segment, system) with intervals, then the paired differences."""

    def cell(row: dict | None) -> str:
        return "-" if row is None else f"{row['mean']:.3f} [{row['lo']:.3f}, {row['hi']:.3f}]"

    def find(rows: list[dict], **match: Any) -> dict | None:
        hits = [r for r in rows if all(r.get(key) == v for key, v in match.items())]
        return hits[0] if len(hits) == 1 else None

    ordered = ["all_users"] + [s for s in segments if s != "all_users"]
    out = [f"| segment (users) | system | NDCG@{k} | Recall@{k} |", "|---|---|---|---|"]
    for seg in ordered:
        n = next((r["n_users"] for r in headline if r["segment"] == seg), 0)
        for system in systems:
            cells = " | ".join(cell(find(headline, segment=seg, system=system, metric=m)) for m in TABLE_METRICS)
            out.append(f"| {seg} ({n}) | {system} | {cells} |")
    out += ["", f"| segment | a − b | NDCG@{k} | Recall@{k} |", "|---|---|---|---|"]
    for seg in ordered:
        for a, b in pairs:
            cells = " | ".join(cell(find(paired, segment=seg, system_a=a, system_b=b, metric=m)) for m in TABLE_METRICS)
            out.append(f"| {seg} | {a} − {b} | {cells} |")
    return "\n".join(out)


def machine() -> dict[str, Any]:
    return host("pyspark", "xgboost")


# ---- Spark side ----------------------------------------------------------------------------------


def pool_sizes(pool: Any) -> dict[str, float]:
    """Mean and median candidates per user of a pool (or feature) frame."""
    from pyspark.sql import functions as F

    sizes = pool.groupBy("user_id").count().agg(F.avg("count"), F.expr("percentile_approx(count, 0.5)")).first()
    return {"mean": round(float(sizes[0] or 0.0), 1), "median": float(sizes[1] or 0)}


def run(spark: Any, cfg: Any, args: argparse.Namespace) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from hybridrec.evaluation import report
    from hybridrec.evaluation.protocol import SEGMENTS
    from hybridrec.hybrid.candidates import source_recall
    from hybridrec.hybrid.learned import learned_lists, night_features
    from hybridrec.hybrid.ranker import fit_ranker
    from hybridrec.hybrid.scoring import parquet_stage

    ev, k = cfg.evaluate, cfg.evaluate.k
    e = evaluation_backtest(spark, cfg, args.work, job="bench-ranker")
    bt, split, progress, seconds = e.bt, e.split, e.progress, e.seconds
    if bt.ranker is None:
        raise SystemExit("bench_ranker: the backtest trained no ranker (ranker.use=off, or nothing to learn)")
    training = bt.ranker
    rows = spark.read.parquet(str(args.work / "stage" / "ranker_rows")).persist()
    user_stats = bt.scores.user_stats.join(e.judged, "user_id", "left_semi")
    variants = {v: change for v, change in VARIANTS.items() if v in args.variants}
    lists = bt.lists
    models: dict[str, Any] = {
        "learned": {
            "drop_features": list(cfg.ranker.drop_features),
            "features": training.ranker.features,
            "importances": training.ranker.importances,
            "counts": training.ranker.counts,
            "seconds": {f"ranker_{k_}": v for k_, v in training.seconds.items()},
        }
    }
    for name, change in variants.items():
        vstage = parquet_stage(args.work / name)
        drops = change.get("drop_features", [])
        vranker = dataclasses.replace(
            cfg.ranker,
            **{k_: v for k_, v in change.items() if k_ != "drop_features"},
            drop_features=sorted({*cfg.ranker.drop_features, *drops}),
        )
        vcfg = dataclasses.replace(cfg, ranker=vranker)
        held: dict[str, Any] = {}

        def fit(name: str = name, vcfg: Any = vcfg, held: dict[str, Any] = held, refit: bool = bool(drops)) -> str:
            if not refit:
                held["model"] = training.ranker
                return (
                    f"{name}: the trained ranker, cold_slots {vcfg.ranker.cold_slots}, "
                    f"night_depth {vcfg.ranker.night_depth}"
                )
            held["model"] = m = fit_ranker(rows, vcfg.ranker, f"{training.ranker.version}-{name}")
            top = sorted(m.importances.items(), key=lambda kv: -kv[1])[:5]
            return f"{name}: {len(m.features)} features; top " + ", ".join(f"{f} {v:.2f}" for f, v in top)

        def lists_(name: str = name, vcfg: Any = vcfg, vstage: Any = vstage, held: dict[str, Any] = held) -> str:
            final = learned_lists(bt.scores, bt.inputs, vcfg, held["model"], vstage, users=e.judged).final
            held["lists"] = staged = vstage(
                final.filter(F.col("rank") <= k).select(F.lit(name).alias("system"), "user_id", "rank", "product_id"),
                "lists",
            )
            return f"{name}: lists for {staged.select('user_id').distinct().count()} judged users"

        progress(f"fit_{name}", fit)
        progress(f"lists_{name}", lists_)
        lists = lists.unionByName(held["lists"])
        m = held["model"]
        models[name] = {
            "drop_features": vcfg.ranker.drop_features,
            "cold_slots": vcfg.ranker.cold_slots,
            "night_depth": vcfg.ranker.night_depth,
            "features": m.features,
            "importances": m.importances,
            "counts": m.counts,
            "seconds": {"fit": seconds[f"fit_{name}"], "lists": seconds[f"lists_{name}"]},
        }
    systems = [*BASE_SYSTEMS, *variants]
    pairs = comparisons(list(variants))
    test_recall: dict[str, dict[str, float]] = {}

    depths = sorted({d for d in (vr.get("night_depth", cfg.ranker.night_depth) for vr in variants.values()) if d})
    depth_recall: dict[str, dict[str, Any]] = {}

    def pool_recall() -> str:
        pool = e.stage(night_features(bt.scores, bt.inputs, cfg, user_stats), "test_pool")
        for seg in SEGMENTS:
            rel = split.relevant.filter(F.col("segment") == seg).select("user_id", "product_id")
            test_recall[seg] = source_recall(pool, rel)
        test_recall["pool_size"] = pool_sizes(pool)
        # The pool the night scores at each depth (the whole pool above: what the ranker trains on).
        for d in depths:
            cut = e.stage(night_features(bt.scores, bt.inputs, cfg, user_stats, depth=d), f"test_pool_depth{d}")
            rel = split.relevant.filter(F.col("segment") == "all_users").select("user_id", "product_id")
            depth_recall[str(d)] = {**source_recall(cut, rel), "pool_size": pool_sizes(cut)}
        return (
            "; ".join(f"{seg}: pool {r['pool']:.3f}" for seg, r in test_recall.items() if seg != "pool_size")
            + f"; mean pool size {test_recall['pool_size']['mean']}"
            + "".join(f"; depth {d}: pool {r['pool']:.3f} of {r['pool_size']['mean']}" for d, r in depth_recall.items())
        )

    progress("pool_recall", pool_recall)
    tables: dict[str, Any] = {}

    def metrics() -> str:
        items = train_users_items(split.products, bt.scores.item_stats)
        tables.update(
            score_lists(
                e.stage(lists, "lists_all"),
                split.relevant,
                items,
                k,
                int(bt.scores.counts["active_users"]),
                systems,
                pairs,
                ev,
                e.stage,
                SEGMENTS,
                int(split.counts["catalog_products"]),
            )
        )
        return f"{len(systems)} systems × {len(SEGMENTS)} segments, {ev.bootstrap_replicates} replicates"

    progress("metrics", metrics)
    rows.unpersist()
    bt.scores.release()
    return {
        "cutoff": e.cutoff.date().isoformat(),
        "ranker_label_start": training.label_start.date().isoformat(),
        "content_model_version": e.version,
        "exclude": bt.scores.exclude,
        "counts": {
            **{f"split_{k_}": v for k_, v in split.counts.items()},
            **{f"backtest_{k_}": v for k_, v in bt.scores.counts.items()},
        },
        "systems": systems,
        "comparisons": [list(p) for p in pairs],
        "headline": [dataclasses.asdict(r) for r in report.metric_rows(tables["headline"])],
        "paired": [dataclasses.asdict(r) for r in report.paired_rows(tables["paired"])],
        "coverage": tables["coverage"].to_dict("records"),
        "candidate_recall": {
            "training_labels": training.recall,
            "test_window": test_recall,
            "test_window_by_night_depth": depth_recall,
            "note": "share of the relevant (user, product) pairs each source's candidates contain (pool = "
            "any source), for the users the pool covers; training_labels: the ranker's label window "
            "before the cutoff; test_window: the judged users' whole pool at the cutoff per segment; "
            "test_window_by_night_depth: the judged users' pool (all_users) cut to each source's best d "
            "(ranker.night_depth)",
        },
        "rankers": models,
        "seconds": {
            "stages": dict(seconds),
            "ranker": training.seconds,
            "note": "stages: the bench's progress stages (split, backtest als/history/content/cold/lists "
            "— lists includes scoring the learned system —, each ablation's fit and lists, "
            "pool_recall, metrics); ranker: train_ranker's own stages (the replayed ALS fit and "
            "scoring, features + labels + rows, train)",
        },
    }


# ---- main ----------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, as the jobs take it (repeatable)",
    )
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK, help="staging folder (emptied first)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--name", default=None, help="the run's key in --out (default: the config's stem)")
    ap.add_argument(
        "--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS), help="ablations to run (default: all)"
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from hybridrec.config import load_config
    from hybridrec.evaluation.protocol import SEGMENTS
    from hybridrec.spark import build_spark

    cfg = load_config(args.config, args.overrides)
    name = args.name or args.config.stem
    spark = build_spark(cfg.spark)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "inputs": {
            "config": str(args.config),
            "overrides": args.overrides,
            "interactions": cfg.interactions.path,
            "simulated": cfg.interactions.simulated,
            "k": cfg.evaluate.k,
            "test_days": cfg.evaluate.test_days,
            "few_interactions": cfg.evaluate.few_interactions,
            "bootstrap_replicates": cfg.evaluate.bootstrap_replicates,
            "bootstrap_seed": cfg.evaluate.seed,
            "confidence": cfg.evaluate.confidence,
            "recommend_exclude": cfg.recommend.exclude,
            "max_per_category": cfg.recommend.max_per_category,
            "spark_master": cfg.spark.master,
            "ranker": dataclasses.asdict(cfg.ranker),
            "variants": {v: VARIANTS[v] for v in args.variants},
        },
        "machine": machine(),
    }
    try:
        result["run"] = run(spark, cfg, args)
        r = result["run"]
        print(
            format_tables(r["headline"], r["paired"], r["systems"], SEGMENTS, r["comparisons"], cfg.evaluate.k),
            flush=True,
        )
    finally:
        result["load_average"] = {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        }
        result["total_seconds"] = round(time.perf_counter() - t0, 1)
        if "run" in result:
            # One file, one entry per catalog (--name): a run replaces its own entry only.
            out: dict[str, Any] = {"benchmark": "ranker", "runs": {}}
            if args.out.is_file():
                out = json.loads(args.out.read_text(encoding="utf-8"))
            out.setdefault("runs", {})[name] = result
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(json_safe(out), indent=1, default=str, allow_nan=False), encoding="utf-8")
            print(f"[bench-ranker] wrote {args.out} ({name})", flush=True)
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
