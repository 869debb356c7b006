"""Benchmark: the approximate (IVF) searches against the exact ones on a real catalog's own
vectors and shoppers (issue 23, item 2), through the nightly's own scoring code.

    SPARK_LOCAL_IP=127.0.0.1 .venv/bin/python bench/bench_ann_real.py [--queries 10000] [--users 10000]

``bench/bench_catalog.py`` measures recall on synthetic clustered vectors up to 1M products; this
bench asks the same question on the real fashion catalog (42k products): its content vectors are
those of the content bench (``--fashion-work``, default data/bench/content: ingest → preprocess →
train with the demo's settings, run by ``bench_content.ensure_pipeline`` when it has no model
yet), its shoppers the seeded simulator's (``bench_factors.simulated_fashion_events``, 10,000
users; THE INTERACTIONS ARE SIMULATED, the vectors and the catalog are real), ALS fitted in memory
before the simulated window's end like the backtest.

``scoring.score_users`` (content candidates for every user, ``content_users=all``) and
``scoring.similar_products`` run twice, once with ``recommend.ann: exact`` and once with
``recommend.ann: ivf`` (the shipped list, probe and sample settings; on 42k products the default
``auto`` would pick exact, so ivf is forced), everything else as configured. Reported:

- similar items: recall@20 of ``similar.nearest`` (the content neighbours, before the blend)
  against the exact answer on ``--queries`` seeded products; and of the final similar-items lists
  (content blended with co-interaction and lexical neighbours): the share of each product's exact
  list that the approximate run also lists, and the share of identical lists;
- content candidates: recall@20 (top 20 by content score of the 50 candidates) for ``--users``
  seeded users, and how many users got fewer than 20, excluded products returned, reasons outside
  the user's profile (the ``history_items`` most recent products the profile is formed from);
- seconds of both runs' content stage and similar items (the 2-core machine; a loaded machine
  shows in ``load``).

Writes the ``real_catalogs`` entry of ``bench/results/catalog.json`` (the synthetic sizes stay) and
prints the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))
sys.path.insert(0, str(REPO_ROOT / "bench"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "lib"), os.environ.get("PYTHONPATH", "")]).rstrip(
    os.pathsep
)

from bench_catalog import recall_at_k  # noqa: E402 - after the path set-up
from bench_content import ensure_pipeline, work_overrides  # noqa: E402 - after the path set-up
from bench_factors import DEFAULT_OUT_DATA, FASHION_CONFIG, simulated_fashion_events  # noqa: E402
from machine_info import host  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results" / "catalog.json"
DEFAULT_FASHION_WORK = REPO_ROOT / "data" / "bench" / "content"
TOP = 20
MODES = ("exact", "ivf")


# ---- pure helpers (tests/unit/test_bench_ann_real.py) ------------------------------------------


def top_lists(df: pd.DataFrame, key: str, item: str, score: str, k: int) -> dict[Any, list[Any]]:
    """Each ``key``'s ``k`` best ``item`` by ``score`` (ties: the smaller item), best first."""
    ordered = df.sort_values([key, score, item], ascending=[True, False, True])
    return {q: g[item].tolist()[:k] for q, g in ordered.groupby(key, sort=False)}


def list_agreement(exact: dict[Any, list[Any]], approx: dict[Any, list[Any]]) -> dict[str, float]:
    """Of the exact lists: the mean share of each list's items the approximate list also holds
    (as sets: a reordering inside the list is not counted), and the share of lists identical in
    items and order. A key the approximate run lacks counts as an empty list."""
    if not exact:
        raise ValueError("agreement needs at least one list")
    kept = [len(set(approx.get(q, ())) & set(e)) / len(e) for q, e in exact.items() if e]
    same = [approx.get(q) == e for q, e in exact.items()]
    return {"items_kept": round(float(np.mean(kept)), 4), "identical_lists": round(float(np.mean(same)), 4)}


def seeded_subset(values: list[Any], m: int, seed: int) -> list[Any]:
    """``min(len(values), m)`` of ``values`` drawn with ``seed``, in their sorted order."""
    pool = sorted(values)
    pick = np.random.default_rng([seed, 5]).choice(len(pool), size=min(len(pool), m), replace=False)
    return [pool[i] for i in sorted(pick)]


# ---- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from hybridrec.collab.als import fit_als
    from hybridrec.config import load_config
    from hybridrec.demo.interactions import interactions_frame
    from hybridrec.hybrid import similar
    from hybridrec.hybrid.scoring import NightInputs, Progress, parquet_stage, score_users, similar_products
    from hybridrec.models.training import current_version
    from hybridrec.spark import build_spark
    from hybridrec.tables import PRODUCT_EMBEDDINGS, PRODUCTS, require_table

    work = args.fashion_work.resolve()
    overrides = [*work_overrides(work), "spark.ui_enabled=false"]
    base = load_config(FASHION_CONFIG, overrides)
    ensure_pipeline(FASHION_CONFIG, work_overrides(work), Path(base.paths.models), run_it=True)
    spark = build_spark(base.spark)
    version = current_version(base)
    products = (
        require_table(spark, base, PRODUCTS, "jobs/ingest.py")
        .select("product_id", "title", "description", "category", "image_path")
        .persist()
    )
    vectors = (
        require_table(spark, base, PRODUCT_EMBEDDINGS, "jobs/train.py")
        .filter(F.col("model_version") == version)
        .select("product_id", F.col("fused_emb").alias("vec"))
    )
    _, _, events, events_file, cutoff = simulated_fashion_events(base, args.out_data.resolve())
    interactions = interactions_frame(spark, events, base.interactions.event_weights).persist()
    fit_cfg = dataclasses.replace(base, als=dataclasses.replace(base.als, evaluate=False))
    t0 = time.perf_counter()
    fit = fit_als(spark, fit_cfg, interactions, cutoff, products=products)
    als_seconds = round(time.perf_counter() - t0, 1)
    inputs = NightInputs.from_fit(fit, products, interactions, vectors, version)

    out: dict[str, Any] = {
        "catalog": "fashion (real products and content vectors; SIMULATED shoppers)",
        "content_model_version": version,
        "events": len(events),
        "events_file": str(events_file.relative_to(REPO_ROOT)) if events_file.is_relative_to(REPO_ROOT) else None,
        "cutoff": cutoff.isoformat(),
        "als_seconds": als_seconds,
        "machine": host("pyspark", "numpy", "faiss-cpu", "pandas", load_avg=list(os.getloadavg())),
        "modes": {},
    }
    got: dict[str, dict[str, Any]] = {}
    for mode in MODES:
        cfg = dataclasses.replace(base, recommend=dataclasses.replace(base.recommend, ann=mode))
        rc = cfg.recommend
        seconds: dict[str, float] = {}
        load = os.getloadavg()[0]
        stage = parquet_stage(work / "ann-bench" / mode)
        scores = score_users(spark, cfg, inputs, cutoff, stage, Progress(seconds, f"bench {mode}"), "all")
        content = scores.content.toPandas()
        t0 = time.perf_counter()
        nn = similar.nearest(
            scores.vec_idx.select(F.col("item_idx").alias("id"), F.col("vec").alias("features")),
            TOP,
            scores.n_items,
            cfg.als.topk_user_block,
            rc.content_item_block,
            rc,
        )
        neighbours = nn.join(scores.item_index, "item_idx").toPandas()
        seconds["similar_nearest"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        final = similar_products(scores, inputs, cfg)[0].toPandas()
        seconds["similar_items"] = round(time.perf_counter() - t0, 1)
        history = scores.history.select(
            "user_id", "product_id", "excluded", (F.col("h_rank") <= rc.history_items).alias("in_profile")
        ).toPandas()
        index = scores.item_index.toPandas()
        got[mode] = {"content": content, "nn": neighbours, "final": final, "history": history, "index": index}
        out["modes"][mode] = {
            "seconds": seconds,
            "load_1m_before": round(load, 2),
            "load_1m_after": round(os.getloadavg()[0], 2),
            "products_with_vector": scores.n_items,
            "users": int(content["user_id"].nunique()),
        }
        if mode == "ivf":
            from hybridrec.hybrid.ann import list_count, probe_count

            lists = list_count(scores.n_items, rc.ann_lists, rc.ann_sample)
            out["modes"][mode]["settings"] = {"lists": lists, "nprobe": probe_count(rc.ann_nprobe, lists)}
        scores.release()
        print(f"[bench_ann_real] {mode}: {seconds}", flush=True)
    fit.release()
    spark.stop()
    out.update(compare(got, args.queries, args.users, args.seed))
    return out


def compare(got: dict[str, dict[str, Any]], queries: int, users: int, seed: int) -> dict[str, Any]:
    """The approximate run's figures against the exact run's (module docstring)."""
    ex, ap = got["exact"], got["ivf"]
    index = ex["index"].set_index("item_idx")["product_id"]
    nn_e = ex["nn"].assign(other=lambda d: d["other_idx"].map(index))
    nn_a = ap["nn"].assign(other=lambda d: d["other_idx"].map(ap["index"].set_index("item_idx")["product_id"]))
    asked = seeded_subset(nn_e["product_id"].unique().tolist(), queries, seed)
    e_nn = top_lists(nn_e[nn_e["product_id"].isin(asked)], "product_id", "other", "sim", TOP)
    a_nn = top_lists(nn_a[nn_a["product_id"].isin(asked)], "product_id", "other", "sim", TOP)
    judged = seeded_subset(ex["content"]["user_id"].unique().tolist(), users, seed)
    ce = ex["content"][ex["content"]["user_id"].isin(judged)]
    ca = ap["content"][ap["content"]["user_id"].isin(judged)]
    e_c = top_lists(ce, "user_id", "product_id", "content_score", TOP)
    a_c = top_lists(ca, "user_id", "product_id", "content_score", TOP)
    hist = ap["history"]
    excluded = set(zip(hist.loc[hist["excluded"], "user_id"], hist.loc[hist["excluded"], "product_id"]))
    profile = hist[hist["in_profile"]].groupby("user_id")["product_id"].apply(set)
    by_rank = {m: got[m]["final"].assign(place=lambda d: -d["rank"]) for m in MODES}  # the lists' own order
    f_e = top_lists(by_rank["exact"], "product_id", "similar_product_id", "place", 10**6)
    f_a = top_lists(by_rank["ivf"], "product_id", "similar_product_id", "place", 10**6)
    sources = {m: got[m]["final"]["source"].value_counts(normalize=True).round(4).to_dict() for m in MODES}
    return {
        "similar_items": {
            "queries": len(e_nn),
            "recall_at_20": round(recall_at_k(a_nn, e_nn, TOP), 4),
            "final_lists": {"products": len(f_e), **list_agreement(f_e, f_a), "source_shares": sources},
        },
        "content_candidates": {
            "users": len(e_c),
            "recall_at_20": round(recall_at_k(a_c, e_c, TOP), 4),
            "users_short_of_20": int(sum(len(a_c.get(u, ())) < TOP for u in e_c)),
            "excluded_returned": int(sum((u, i) in excluded for u, i in zip(ca["user_id"], ca["product_id"]))),
            "reasons_outside_profile": int(
                sum(r not in profile.get(u, set()) for u, r in zip(ca["user_id"], ca["reason_product_id"]))
            ),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fashion-work", type=Path, default=DEFAULT_FASHION_WORK)
    p.add_argument("--out-data", type=Path, default=DEFAULT_OUT_DATA, help="where the simulated events go")
    p.add_argument("--queries", type=int, default=10_000, help="products whose similar items are checked")
    p.add_argument("--users", type=int, default=10_000, help="users whose content candidates are checked")
    p.add_argument("--seed", type=int, default=23)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    started = time.perf_counter()
    res = run(args)
    res["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    res["seconds_total"] = round(time.perf_counter() - started, 1)
    prev = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    prev.setdefault("real_catalogs", {})["fashion"] = res
    args.out.write_text(json.dumps(prev, indent=1), encoding="utf-8")
    s, c = res["similar_items"], res["content_candidates"]
    print(
        f"fashion: similar items recall@20 {s['recall_at_20']} ({s['queries']} products), final lists "
        f"{s['final_lists']['items_kept']} of items kept, {s['final_lists']['identical_lists']} identical; "
        f"content candidates recall@20 {c['recall_at_20']} ({c['users']} users), short {c['users_short_of_20']}, "
        f"excluded returned {c['excluded_returned']}, reasons outside the profile {c['reasons_outside_profile']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
