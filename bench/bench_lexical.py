"""Cost and quality of the lexical neighbours of similar items (``hybrid.lexical``) on the fashion
catalog's titles, per ``recommend.lexical_max_df`` cap (issue 24, item 2).

    .venv/bin/python bench/bench_lexical.py [--styles ../shared/data/fashion/styles.csv]
                                            [--caps 1000 2000 4000] [--spark-cap 2000] [--sample 2000]

Per cap, in numpy with the bench's weighting (``bench_content.tfidf_vectors``): terms dropped, rows
the inverted-index join emits (sum over kept terms of df * (df - 1)), and same-articleType
precision@10 of a seeded sample of products searching the whole catalog (overall and for types
with fewer than 100 products), against the uncapped cosine. Then the Spark pass itself
(``lexical_neighbours``, top 20, local[2]) at ``--spark-cap``: seconds and rows, with plain idf and
with informative term weights (articleType, gender, baseColour as ``recommend.lexical_attributes``)
side by side in one session. Writes
``bench/results/lexical.json`` and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))

from bench_content import tfidf_vectors  # noqa: E402 - after the lib path is set

RESULTS = REPO_ROOT / "bench" / "results" / "lexical.json"
DEFAULT_STYLES = REPO_ROOT.parent / "shared" / "data" / "fashion" / "styles.csv"
RARE = 100  # an articleType with fewer products counts as rare (most are classes the model never learned)


def cap_figures(x: sparse.csr_matrix, types: np.ndarray, cap: int | None, queries: np.ndarray) -> dict:
    """Join rows and same-type precision@10 when terms in more than ``cap`` products leave the join."""
    df = np.bincount(x.indices, minlength=x.shape[1])
    keep = np.ones_like(df, dtype=bool) if cap is None else df <= cap
    xc = sparse.csr_matrix(x @ sparse.diags(keep.astype(np.float64)))
    xc.eliminate_zeros()
    sims = (xc[queries] @ xc.T).toarray()
    sims[np.arange(len(queries)), queries] = -1.0
    top = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    found = np.take_along_axis(sims, top, axis=1) > 0
    same = (types[top] == types[queries][:, None]) & found
    counts = pd.Series(types).value_counts()
    rare = np.isin(types[queries], counts[counts < RARE].index)
    return {
        "cap": cap,
        "terms_dropped": int((~keep).sum()),
        "join_rows": int((df[keep].astype(np.int64) * (df[keep] - 1)).sum()),
        "products_without_kept_term": int((np.diff(xc.indptr) == 0).sum() - (np.diff(x.indptr) == 0).sum()),
        "same_type_p10": round(float(same.mean()), 3),
        "same_type_p10_rare": round(float(same[rare].mean()), 3) if rare.any() else None,
        "rare_queries": int(rare.sum()),
    }


def spark_run(titles: list[str | None], labels: pd.DataFrame, cap: int) -> dict:
    """Seconds of the Spark pass at ``cap``, plain idf and with informative term weights
    (``recommend.lexical_attributes`` = the columns of ``labels``, category first), side by side."""
    from pyspark.sql import functions as F

    from hybridrec.config import config_from_dict
    from hybridrec.hybrid import lexical
    from hybridrec.spark import build_spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark_cfg = {"master": "local[2]", "app_name": "bench-lexical", "shuffle_partitions": 8, "ui_enabled": False}
    spark = build_spark(config_from_dict({"spark": spark_cfg}).spark)
    docs = spark.createDataFrame(
        [(i, t, None) for i, t in enumerate(titles)], "item_idx int, title string, description string"
    ).cache()
    docs.count()
    attrs = list(labels.columns[1:])
    rows = [
        (i, _text(c), {a: _text(v) for a, v in zip(attrs, vals, strict=True) if _text(v)})
        for i, (c, *vals) in enumerate(labels.itertuples(index=False))
    ]
    products = spark.createDataFrame(rows, "item_idx int, category string, attributes map<string,string>").cache()
    products.count()
    out: dict = {"cap": cap, "k": 20, "lexical_attributes": ["category", *attrs]}
    for name in ("plain", "informative"):
        start = time.perf_counter()
        weights = None
        if name == "informative":
            weights = lexical.informative_term_weights(docs, lexical.product_labels(products, ["category", *attrs]))
        nn = lexical.lexical_neighbours(docs, 20, cap, weights).cache()
        n_rows = nn.count()
        seconds = time.perf_counter() - start
        items = nn.select(F.countDistinct("item_idx")).first()[0]
        nn.unpersist()
        out[name] = {"seconds": round(seconds, 1), "rows": n_rows, "products_with_list": items}
    out["informative_over_plain"] = round(out["informative"]["seconds"] / out["plain"]["seconds"], 2)
    spark.stop()
    return out


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--styles", type=Path, default=DEFAULT_STYLES)
    ap.add_argument("--caps", type=int, nargs="+", default=[1000, 2000, 4000])
    ap.add_argument("--spark-cap", type=int, default=2000, help="0 = skip the Spark run")
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.styles.is_file():
        print(f"fashion catalog not found at {args.styles}: pass --styles", file=sys.stderr)
        return 2
    styles = pd.read_csv(args.styles, on_bad_lines="skip")
    titles = styles["productDisplayName"].where(styles["productDisplayName"].notna(), None).tolist()
    types = styles["articleType"].astype(str).to_numpy()
    x = tfidf_vectors(titles)
    queries = np.random.default_rng(args.seed).choice(len(titles), min(args.sample, len(titles)), replace=False)
    caps = [cap_figures(x, types, c, queries) for c in [None, *args.caps]]
    result = {
        "inputs": {"styles": args.styles.name, "products": len(titles), "terms": x.shape[1], "sample": len(queries)},
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "caps": caps,
        "spark": spark_run(titles, styles[["articleType", "gender", "baseColour"]], args.spark_cap)
        if args.spark_cap
        else None,
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print("| max_df | terms dropped | join rows | same-type p@10 | rare types p@10 |")
    print("|---|---|---|---|---|")
    for c in caps:
        print(
            f"| {c['cap'] or 'none'} | {c['terms_dropped']} | {c['join_rows']:,} | {c['same_type_p10']} "
            f"| {c['same_type_p10_rare']} |"
        )
    if result["spark"]:
        print(f"Spark (local[2]): {result['spark']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
