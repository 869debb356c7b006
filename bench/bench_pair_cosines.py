"""Cost of scoring similar items' candidate pairs with their exact cosines
(``recommend.similar_exact_pairs``, ``hybrid.pair_cosines``) at catalog sizes the fashion catalog
does not reach: the blend of the night's lists with and without it, side by side in one run.

    SPARK_LOCAL_IP=127.0.0.1 nice -n 10 .venv/bin/python bench/bench_pair_cosines.py \
        [--products 100000,1000000] [--terms 8] [--driver-memory 8g]

Writes ``bench/results/pair_cosines.json`` and prints a summary.

Inputs per size (seeded, generated inside Spark, written to Parquet before any clock starts):

- vectors: ``bench_catalog``'s unit 256-d product vectors (``chunk_vectors``) as the fused vector,
  their first 64 dimensions as the text vector, every 4th product with a photo (the fashion catalog:
  23 %), so a pair across the sides is compared on the text vectors as the night does;
- the content list: each product's ``similar_top_m`` (20) nearest by the fused vectors through the
  approximate inverted file (``similar.nearest``, ``ann: ivf``, the path above 200,000 products),
  timed as ``content_search``: the search the night runs before the blend;
- the lexical list: 20 other products per product drawn at random (sims uniform in [0.05, 0.6]):
  no pair in both lists, the most pairs the exact cosines can be asked for (real lists share some);
- the lexical postings: ``--terms`` terms per product drawn from a Zipf vocabulary of products / 4
  terms (titles of a few words), weights normalised per product.

Timed, each from the Parquet inputs to its Parquet output: ``similar.similar_items`` with the
shipped similar-items settings (``RecommendConfig()``: lexical weight 0.25, top 20, no
co-interaction: every product cold, no type vote) with a missing pair taking the list's lowest
value (``blend_fill``), and with its exact cosines (``blend_exact``). Ratios: exact / fill, and the
whole similar-items step (search + blend) with / without.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(REPO_ROOT / "lib"), str(REPO_ROOT / "bench"), os.environ.get("PYTHONPATH", "")]
).rstrip(os.pathsep)

import numpy as np  # noqa: E402 - after the sys.path set-up above (runs without an installed package)
import pandas as pd  # noqa: E402 - after the sys.path set-up above (runs without an installed package)

from bench_catalog import CHUNK, TOP, chunk_vectors, subcluster_centres  # noqa: E402 - after the sys.path set-up
from machine_info import host  # noqa: E402 - after the sys.path set-up above

RESULTS = REPO_ROOT / "bench" / "results" / "pair_cosines.json"
TEXT_DIM = 64
PHOTO_EVERY = 4


def chunk_products(chunk: int, n: int, centres: np.ndarray, seed: int, terms: int) -> dict[str, pd.DataFrame]:
    """The vectors, lexical list and postings of products ``chunk * CHUNK`` up to ``n``."""
    ids, x = chunk_vectors(chunk, n, centres, seed)
    text = x[:, :TEXT_DIM] / np.linalg.norm(x[:, :TEXT_DIM], axis=1, keepdims=True)
    rng = np.random.default_rng([seed, 7, chunk])
    others = rng.integers(0, n - 1, size=(len(ids), TOP))
    others = others + (others >= ids[:, None])  # never the product itself
    vocab = max(2, n // 4)
    drawn = np.minimum(rng.zipf(1.3, size=(len(ids), terms)), vocab) - 1
    weights = rng.uniform(0.2, 1.0, size=drawn.shape)
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    return {
        "vectors": pd.DataFrame(
            {"id": ids, "features": list(x), "text": list(text.astype(np.float32)), "photo": ids % PHOTO_EVERY == 0}
        ),
        "lexical": pd.DataFrame(
            {
                "item_idx": np.repeat(ids, TOP),
                "other_idx": others.ravel().astype(np.int32),
                "sim": rng.uniform(0.05, 0.6, size=others.size).astype(np.float32),
            }
        ),
        "postings": pd.DataFrame(
            {"item_idx": np.repeat(ids, terms), "term": [f"t{t}" for t in drawn.ravel()], "weight": weights.ravel()}
        ),
    }


SCHEMAS = {
    "vectors": "id int, features array<float>, text array<float>, photo boolean",
    "lexical": "item_idx int, other_idx int, sim float",
    "postings": "item_idx int, term string, weight double",
}


def _generator(part: str, n: int, seed: int, terms: int) -> Any:
    centres = subcluster_centres(n, seed)

    def gen(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            for c in pdf["id"].to_numpy():
                yield chunk_products(int(c), n, centres, seed, terms)[part]

    return gen


def one_size(spark: Any, n: int, seed: int, terms: int, work: Path) -> dict[str, Any]:
    from hybridrec.config import RecommendConfig
    from hybridrec.hybrid import similar
    from hybridrec.hybrid.pair_cosines import PairInputs

    n_chunks = math.ceil(n / CHUNK)
    chunks = spark.range(n_chunks, numPartitions=min(n_chunks, 64))
    for part, schema in SCHEMAS.items():
        chunks.mapInPandas(_generator(part, n, seed, terms), schema).write.mode("overwrite").parquet(str(work / part))
    vectors, lexical, postings = (spark.read.parquet(str(work / part)) for part in SCHEMAS)
    rc = RecommendConfig(ann="ivf")
    res: dict[str, Any] = {"products": n, "pairs_per_list": TOP, "terms_per_product": terms}

    def timed(name: str, frame: Any) -> float:
        started = time.perf_counter()
        frame.write.mode("overwrite").parquet(str(work / name))
        seconds = round(time.perf_counter() - started, 1)
        res[name] = {"seconds": seconds, "load_1m_after": round(os.getloadavg()[0], 2)}
        print(f"[pair_cosines {n}] {name} {seconds} s", flush=True)
        return seconds

    timed("content_search", similar.nearest(vectors.select("id", "features"), TOP, n, 4096, rc.content_item_block, rc))
    content = spark.read.parquet(str(work / "content_search"))
    evidence = spark.createDataFrame([], "item_idx int, b double")
    fill = timed("blend_fill", similar.similar_items(content, None, evidence, rc, lexical))
    exact = timed(
        "blend_exact", similar.similar_items(content, None, evidence, rc, lexical, exact=PairInputs(vectors, postings))
    )
    search = res["content_search"]["seconds"]
    res["exact_over_fill"] = round(exact / fill, 2) if fill else None
    res["step_with_over_without"] = round((search + exact) / (search + fill), 2)
    out = spark.read.parquet(str(work / "blend_exact"))
    res["rows"] = out.count()
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--products", default="100000,1000000")
    p.add_argument("--terms", type=int, default=8)
    p.add_argument("--seed", type=int, default=23)
    p.add_argument("--driver-memory", default="8g")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)

    from hybridrec.config import config_from_dict
    from hybridrec.spark import build_spark

    sizes = [int(s) for s in args.products.split(",") if s]
    result: dict[str, Any] = {
        "benchmark": "pair_cosines",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "notes": __doc__.split("Inputs per size")[0].strip().splitlines()[0],
        "inputs": {"seed": args.seed, "terms": args.terms, "spark": f"local[2], driver memory {args.driver_memory}"},
        "machine": host("pyspark", "numpy", "pandas", load_avg=list(os.getloadavg())),
        "sizes": [],
    }
    work = Path(tempfile.mkdtemp(prefix="bench-pair-cosines-"))
    try:
        for n in sizes:
            cfg = config_from_dict(
                {
                    "spark": {
                        "master": "local[2]",
                        "driver_memory": args.driver_memory,
                        "ui_enabled": False,
                        "shuffle_partitions": 16,
                        "app_name": "bench-pair-cosines",
                        "conf": {"spark.local.dir": str(work / "spark-local")},
                    }
                }
            )
            spark = build_spark(cfg.spark)
            try:
                result["sizes"].append(one_size(spark, n, args.seed, args.terms, work / str(n)))
            finally:
                spark.stop()
            shutil.rmtree(work / str(n), ignore_errors=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        "| products | content search s | blend, list fill s | blend, exact pairs s | exact / fill "
        "| step with / without |"
    )
    print("|---|---|---|---|---|---|")
    for s in result["sizes"]:
        print(
            f"| {s['products']:,} | {s['content_search']['seconds']} | {s['blend_fill']['seconds']} | "
            f"{s['blend_exact']['seconds']} | {s['exact_over_fill']} | {s['step_with_over_without']} |"
        )
    print(f"bench_pair_cosines: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
