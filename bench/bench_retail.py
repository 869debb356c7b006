"""Benchmark: open-source peers (implicit ALS, LightFM WARP with title features) side by side with
hybridrec's systems (popularity, ALS, content, hybrid) on Online Retail's evaluation split.

    .venv/bin/python bench/bench_retail.py [--config conf/retail.yaml] [--set key=value ...]
                                           [--out bench/results/retail.json]

Needs the warehouse of ``--config`` filled by the pipeline (ingest → preprocess → train:
bronze.products, bronze.interactions, gold.product_embeddings of the current model); for
conf/retail.yaml that is data/retail/warehouse. Builds .venv-bench when missing
(``bash bench/peers_env.sh``). Writes ``bench/results/retail.json`` (inputs, machine, load, split
counts, tuning grids with each trial's validation NDCG@10, per-segment Recall / NDCG / MAP@10 with
intervals, paired differences, coverage, fit / score seconds, versions) and prints a table.

Why: hybridrec's figures on real purchases mean something only next to what well-known libraries
reach on the same data, split, filter and metric code, each tuned as fairly as ours.

Protocol (the evaluation's own code, as jobs/evaluate.py → ``evaluation.backtest_report``):

- ``protocol.temporal_split`` at ``evaluate.cutoff`` and ``systems.backtest`` (ALS fitted at the
  cutoff, the nightly scoring) give the four systems' lists
- the peers are trained on the same training pairs as hybridrec's ALS: the usable events before
  the cutoff, one row per (user, product), weight r = ``confidence.implicit_confidence`` (log1p
  of the time-decayed sum, decayed from ``scores.reference``, where the data ends)
- tuning, both peers on one validation window: ``temporal_split`` at cutoff − ``--valid-days``
  with ``test_days = --valid-days`` (the same relevance rules), peers trained on the events before
  it; each grid setting's lists go through the same filter and ``per_user_metrics``, the best
  mean NDCG@10 over the judged validation users wins (ties: the earlier setting); then the
  chosen setting is refitted on everything before the cutoff
- the peers remove the ``recommend.exclude`` pairs themselves before cutting their top
  ``--peer-k`` (bench/peer_models.py), then their lists go through ``systems.filtered_lists`` (the
  function the backtest uses for its own systems: exclusion, category cap, top K)
- ``per_user_metrics`` per segment, ``bootstrap_ci``, ``paired_difference_ci`` with the
  evaluation's replicates, seed and level (bench/peer_scoring.py)

Peers run in .venv-bench as subprocesses (bench/peer_fit.py) with ``--threads`` threads each
(default 1: LightFM is then reproducible; Spark uses the config's master).
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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from bench_lightfm import machine  # noqa: E402 - after the sys.path set-up above (runs without an installed package)
from peer_io import export_split, json_safe, parse_fit_summary  # noqa: E402 - after the sys.path set-up above (runs without an installed package)
from peer_scoring import evaluation_backtest, evaluation_seconds, peer_lists, score_lists, train_users_items  # noqa: E402 - after the sys.path set-up above (runs without an installed package)

RESULTS = REPO_ROOT / "bench" / "results" / "retail.json"
DEFAULT_CONFIG = REPO_ROOT / "conf" / "retail.yaml"
BENCH_PY = REPO_ROOT / ".venv-bench" / "bin" / "python"
FIT_SCRIPT = REPO_ROOT / "bench" / "peer_fit.py"
ENV_SCRIPT = REPO_ROOT / "bench" / "peers_env.sh"
PEERS = ("implicit", "lightfm")
GRIDS: dict[str, dict[str, list[Any]]] = {
    "implicit": {"factors": [64, 128], "regularization": [0.01, 0.1], "alpha": [1.0, 10.0, 40.0], "iterations": [15]},
    "lightfm": {"no_components": [32, 64], "epochs": [10, 30], "learning_rate": [0.05]},
}
COMPARISONS = (
    ("hybrid", "implicit"),
    ("hybrid", "lightfm"),
    ("als", "popularity"),
    ("hybrid", "als"),
    ("implicit", "als"),
    ("lightfm", "implicit"),
)
TABLE_METRICS = ("recall", "ndcg")  # the columns of format_table


# ---- pure helpers --------------------------------------------------------------------------------


def peer_command(
    python: Path,
    model: str,
    split: Path,
    out: Path,
    grid: dict[str, Sequence[Any]],
    k: int,
    seed: int,
    threads: int,
    min_df: int,
) -> list[str]:
    """The ``peer_fit.py`` command line for one model and grid."""
    return [
        str(python),
        str(FIT_SCRIPT),
        "--model",
        model,
        "--split",
        str(split),
        "--out",
        str(out),
        "--grid",
        json.dumps(grid),
        "--k",
        str(k),
        "--seed",
        str(seed),
        "--threads",
        str(threads),
        "--min-df",
        str(min_df),
    ]


def choose(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The trial with the best validation NDCG (ties and missing values: the earlier trial)."""
    scored = [t for t in trials if t.get("val_ndcg") is not None]
    if not scored:
        raise ValueError("no tuning trial has a validation NDCG")
    return max(scored, key=lambda t: (t["val_ndcg"], -t["trial"]))


def refit_grid(params: dict[str, Any], grid: dict[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """The chosen setting as a one-value grid over the grid's keys."""
    return {key: [params[key]] for key in grid}


def format_table(
    headline: list[dict[str, Any]],
    paired: list[dict[str, Any]],
    systems: Sequence[str],
    segments: Sequence[str],
    k: int,
) -> str:
    """Recall@k / NDCG@k per system with intervals, one block per segment (all users first), then
    the paired differences of Recall@k."""

    def cell(row: dict | None) -> str:
        return "-" if row is None else f"{row['mean']:.4f} [{row['lo']:.4f}, {row['hi']:.4f}]"

    def find(rows: list[dict], **match: Any) -> dict | None:
        hits = [r for r in rows if all(r.get(key) == v for key, v in match.items())]
        return hits[0] if len(hits) == 1 else None

    out = []
    ordered = ["all_users"] + [s for s in segments if s != "all_users"]
    for seg in ordered:
        n = next((r["n_users"] for r in headline if r["segment"] == seg), 0)
        out.append(f"{seg} ({n} users)")
        out.append("  {:<11}".format("system") + "".join(f"{name:<30}" for name in (f"Recall@{k}", f"NDCG@{k}")))
        for system in systems:
            out.append(
                f"  {system:<11}"
                + "".join(f"{cell(find(headline, segment=seg, system=system, metric=m)):<30}" for m in TABLE_METRICS)
            )
    out.append(f"paired differences, Recall@{k} (all users): mean [95% interval]")
    for a, b in COMPARISONS:
        out.append(
            f"  {a + ' - ' + b:<22}{cell(find(paired, system_a=a, system_b=b, segment='all_users', metric='recall'))}"
        )
    return "\n".join(out)


# ---- Spark side ----------------------------------------------------------------------------------


def ensure_bench_env() -> Path:
    """.venv-bench with LightFM and implicit (bench/peers_env.sh: a no-op when current)."""
    subprocess.run(["bash", str(ENV_SCRIPT)], check=True)
    return BENCH_PY


def run_peer(python: Path, model: str, folder: Path, grid: dict[str, Sequence[Any]], args: argparse.Namespace) -> dict:
    out = folder / model
    shutil.rmtree(out, ignore_errors=True)
    cmd = peer_command(python, model, folder, out, grid, args.peer_k, args.seed, args.threads, args.min_df)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"peer_fit.py --model {model} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return parse_fit_summary(done.stdout, "peer_fit.py")


def run(spark: Any, cfg: Any, args: argparse.Namespace, bench_python: Path) -> dict[str, Any]:
    """The whole comparison (module docstring); returns the results' run section."""
    from pyspark.sql import functions as F

    from hybridrec.collab.confidence import data_end, flag_interactions, implicit_confidence, usable
    from hybridrec.collab.exclusion import effective_rule, excluded_pairs
    from hybridrec.evaluation import report
    from hybridrec.evaluation.per_user import per_user_metrics
    from hybridrec.evaluation.protocol import SEGMENTS, temporal_split
    from hybridrec.evaluation.systems import SYSTEMS
    from hybridrec.hybrid import blend

    ev, rc, k = cfg.evaluate, cfg.recommend, cfg.evaluate.k
    systems = (*SYSTEMS, *PEERS)
    work = Path(cfg.paths.checkpoints) / "bench_retail"
    e = evaluation_backtest(spark, cfg, work, "bench-retail")
    cutoff, split, bt, judged, capped, stage, progress = (
        e.cutoff,
        e.split,
        e.bt,
        e.judged,
        e.capped,
        e.stage,
        e.progress,
    )
    products, interactions, version, seconds = e.products, e.interactions, e.version, e.seconds
    valid_cutoff = cutoff - dt.timedelta(days=args.valid_days)
    held: dict[str, Any] = {}
    pairs_cols = ("user_id", "product_id", F.col("rating").alias("weight"))

    # -- validation split for tuning: the same protocol, one window earlier
    valid_cfg = dataclasses.replace(cfg, evaluate=dataclasses.replace(ev, test_days=float(args.valid_days)))

    def valid_split() -> str:
        held["vsplit"] = vs = temporal_split(valid_cfg, products, interactions, valid_cutoff)
        events = usable(flag_interactions(interactions, valid_cutoff, cfg.als.event_weights, vs.products))
        rule = effective_rule(events, rc.exclude, rc.purchase_events)
        held["vexcluded"] = ex = excluded_pairs(events, rule, rc.purchase_events)
        reference = data_end(events, valid_cutoff)
        train = (
            implicit_confidence(events, reference, cfg.als.half_life_days, cfg.als.transform)
            .select(*pairs_cols)
            .toPandas()
        )
        items = vs.products.select("product_id", "title").toPandas()
        vjudged = vs.users.select("user_id")
        exclude = None if ex is None else ex.join(vjudged, "user_id", "left_semi").toPandas()
        held["vexport"] = n = export_split(
            work / "valid", train, items, vjudged.toPandas(), features=("title",), exclude=exclude
        )
        held["vtrain_users"] = int(train["user_id"].nunique())
        return (
            f"validation {valid_cutoff:%Y-%m-%d} + {args.valid_days} days: {vs.counts['judged_users']} judged users, "
            f"{n['train_pairs']} training pairs, exclude={rule}"
        )

    progress("valid_split", valid_split)
    vsplit = held["vsplit"]
    vjudged = vsplit.users.select("user_id")
    vexcluded = held["vexcluded"]
    if vexcluded is None:
        vexcluded = spark.createDataFrame([], "user_id string, product_id string")

    def vcapped(cands: Any) -> Any:  # the pieces of systems.filtered_lists, on the validation window
        return blend.cap_and_rank(
            cands.join(vjudged, "user_id", "left_semi"), vexcluded, vsplit.products, k, rc.max_per_category
        )

    tuning: dict[str, Any] = {}
    vitems = vsplit.products.select("product_id", "category", F.lit(0).alias("train_users"))
    vrelevant = vsplit.relevant.filter(F.col("segment") == "all_users")

    def tune(model: str) -> str:
        grid = GRIDS[model]
        summary = run_peer(bench_python, model, work / "valid", grid, args)
        lists = None
        for t in summary["trials"]:
            part = peer_lists(spark, Path(t["recs"]), vcapped, f"{model}#{t['trial']}")
            lists = part if lists is None else lists.unionByName(part)
        names = [f"{model}#{t['trial']}" for t in summary["trials"]]
        per_user = per_user_metrics(lists, vrelevant, vitems, k, max(held["vtrain_users"], 1), systems=names)
        means = {
            r["system"]: (r["ndcg"], r["recall"])
            for r in per_user.groupBy("system")
            .agg(F.avg("ndcg").alias("ndcg"), F.avg("recall").alias("recall"))
            .collect()
        }
        trials = [
            {
                "trial": t["trial"],
                "params": t["params"],
                "fit_s": t["fit_s"],
                "score_s": t["score_s"],
                "val_ndcg": means[f"{model}#{t['trial']}"][0],
                "val_recall": means[f"{model}#{t['trial']}"][1],
            }
            for t in summary["trials"]
        ]
        best = choose(trials)
        tuning[model] = {
            "grid": grid,
            "trials": trials,
            "chosen": best,
            "counts": summary["counts"],
            "seconds": summary["seconds"],
        }
        return (
            f"{model}: {len(trials)} settings, best NDCG@{k} {best['val_ndcg']:.4f} with "
            f"{ {key: best['params'][key] for key in grid} }"
        )

    for model in PEERS:
        progress(f"tune_{model}", lambda m=model: tune(m))

    # -- the chosen settings refitted on everything before the cutoff
    def export() -> str:
        train = (
            implicit_confidence(bt.scores.usable_events, bt.scores.reference, cfg.als.half_life_days, cfg.als.transform)
            .select(*pairs_cols)
            .toPandas()
        )
        excluded = bt.scores.history.filter(F.col("excluded")).select("user_id", "product_id")
        items = split.products.select("product_id", "title").toPandas()
        held["export"] = n = export_split(
            work / "test",
            train,
            items,
            judged.toPandas(),
            features=("title",),
            exclude=excluded.join(judged, "user_id", "left_semi").toPandas(),
        )
        return (
            f"{n['train_pairs']} training pairs, {n['items']} products, {n['users']} users, "
            f"{n['exclude_pairs']} excluded pairs (exclude={bt.scores.exclude})"
        )

    progress("peers_export", export)
    fits: dict[str, Any] = {}
    lists = bt.lists
    for model in PEERS:

        def refit(m: str = model) -> str:
            chosen = tuning[m]["chosen"]["params"]
            fits[m] = summary = run_peer(bench_python, m, work / "test", refit_grid(chosen, GRIDS[m]), args)
            t = summary["trials"][0]
            return (
                f"{m} refit {t['fit_s']:.1f}s, top-{args.peer_k} {t['score_s']:.1f}s for "
                f"{summary['counts']['users']} users ({summary['counts']['unknown_users']} unknown)"
            )

        progress(f"refit_{model}", refit)
        lists = lists.unionByName(peer_lists(spark, Path(fits[model]["trials"][0]["recs"]), capped, model))

    def lists_() -> str:
        held["lists"] = staged = stage(lists, "lists_with_peers")
        n = {
            r["system"]: int(r["n"])
            for r in staged.groupBy("system").agg(F.countDistinct("user_id").alias("n")).collect()
        }
        return "judged users with a list: " + ", ".join(f"{s} {n.get(s, 0)}" for s in systems)

    progress("peer_lists", lists_)
    tables: dict[str, Any] = {}

    def metrics() -> str:
        items = train_users_items(split.products, bt.scores.item_stats)
        tables.update(
            score_lists(
                held["lists"],
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
    stage_s = dict(seconds)
    systems_seconds = evaluation_seconds(stage_s, f"the content model {version}, trained by jobs/train.py")
    for model in PEERS:
        t = fits[model]["trials"][0]
        systems_seconds[model] = {
            "fit_s": t["fit_s"],
            "score_s": t["score_s"],
            "subprocess_wall_s": stage_s[f"refit_{model}"],
            "tuning_wall_s": stage_s[f"tune_{model}"],
            "covers": f"fit: the chosen setting on every pair before the cutoff, {args.threads} thread(s); "
            f"score: top-{args.peer_k} with the excluded pairs removed, for the judged users",
        }
    return {
        "cutoff": cutoff.date().isoformat(),
        "valid_cutoff": valid_cutoff.date().isoformat(),
        "content_model_version": version,
        "exclude": bt.scores.exclude,
        "counts": {
            **{f"split_{k_}": v for k_, v in split.counts.items()},
            **{f"valid_split_{k_}": v for k_, v in vsplit.counts.items()},
            **{f"backtest_{k_}": v for k_, v in bt.scores.counts.items()},
            **{f"peers_export_{k_}": v for k_, v in held["export"].items()},
            **{f"valid_export_{k_}": v for k_, v in held["vexport"].items()},
            **{f"{m}_{k_}": v for m in PEERS for k_, v in fits[m]["counts"].items()},
        },
        "tuning": tuning,
        "chosen": {m: fits[m]["trials"][0]["params"] for m in PEERS},
        "headline": [dataclasses.asdict(r) for r in report.metric_rows(tables["headline"])],
        "paired": [dataclasses.asdict(r) for r in report.paired_rows(tables["paired"])],
        "coverage": tables["coverage"].to_dict("records"),
        "seconds": {"stages": stage_s, "systems": systems_seconds},
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
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--valid-days", type=int, default=14, help="validation window before the cutoff (tuning)")
    ap.add_argument("--peer-k", type=int, default=100, help="peers' list length before the evaluation's filter")
    ap.add_argument("--seed", type=int, default=42, help="peers' seed")
    ap.add_argument("--threads", type=int, default=1, help="threads of each peer's fit")
    ap.add_argument("--min-df", type=int, default=2, help="LightFM: titles a token must appear in to be a feature")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.valid_days < 1 or args.peer_k < 1 or args.threads < 1 or args.min_df < 1:
        parser().error("--valid-days, --peer-k, --threads and --min-df must be at least 1")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from hybridrec.config import load_config
    from hybridrec.evaluation.protocol import SEGMENTS
    from hybridrec.evaluation.systems import SYSTEMS
    from hybridrec.spark import build_spark

    cfg = load_config(args.config, args.overrides)
    bench_python = ensure_bench_env()
    implicit_version = (
        subprocess.run(
            [str(bench_python), "-c", "import implicit; print(implicit.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or None
    )
    spark = build_spark(cfg.spark)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "retail",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "inputs": {
            "config": str(args.config),
            "overrides": args.overrides,
            "k": cfg.evaluate.k,
            "test_days": cfg.evaluate.test_days,
            "valid_days": args.valid_days,
            "bootstrap_replicates": cfg.evaluate.bootstrap_replicates,
            "bootstrap_seed": cfg.evaluate.seed,
            "confidence": cfg.evaluate.confidence,
            "recommend_exclude": cfg.recommend.exclude,
            "max_per_category": cfg.recommend.max_per_category,
            "spark_master": cfg.spark.master,
            "als": dataclasses.asdict(cfg.als),
            "peers": {
                "k": args.peer_k,
                "seed": args.seed,
                "threads": args.threads,
                "grids": GRIDS,
                "implicit": "implicit.cpu.als.AlternatingLeastSquares on c = 1 + alpha * r (implicit's own "
                "alpha = 1), items with training pairs, filter_already_liked_items on the "
                "excluded pairs",
                "lightfm": f"WARP, sample_weight = r, item features identity + title tokens in >= "
                f"{args.min_df} titles (rows sum to 1), excluded pairs masked before the top K",
            },
        },
        "machine": {**machine(bench_python), "implicit": implicit_version},
    }
    systems = (*SYSTEMS, *PEERS)
    try:
        results["run"] = run(spark, cfg, args, bench_python)
        print(
            format_table(results["run"]["headline"], results["run"]["paired"], systems, SEGMENTS, cfg.evaluate.k),
            flush=True,
        )
    finally:
        results["load_average"] = {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        }
        results["total_seconds"] = round(time.perf_counter() - t0, 1)
        if "run" in results:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(
                json.dumps(json_safe(results), indent=1, default=str, allow_nan=False), encoding="utf-8"
            )
            print(f"[bench-retail] wrote {args.out}", flush=True)
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
