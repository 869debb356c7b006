"""What the cold-item model reads: the content vector and, beside it, the catalog's own words.

The cold-item model (``hybrid.cold``) predicts where a product nobody has bought yet would sit
among the warm products' ALS factors. The fused content vector alone explained little of that
(held-out R² 0.11 on the fashion catalog, 0.06 on Online Retail, bench/bench_factors.py): it was
trained to tell categories apart, and squeezes a title into 128 numbers. The catalog's category
and the title's words, given to the same model as they are, explain much more (``recommend.
cold_inputs``; the figures that chose the default are in conf/local.yaml and docs/results.md).

``recommend.cold_inputs`` lists the parts, in this order whatever the order written:

- ``content``: the fused content vector (``gold.product_embeddings``);
- ``category``: one-hot of the product's catalog category, over the ``cold_categories`` most
  common categories held by at least two products (others: all zeros);
- ``text``: the l2-normalised TF-IDF row of title + description (``lexical.tfidf_postings``,
  the same tokens and idf as the lexical neighbours) over the ``cold_text_terms`` terms found in
  most products (at least two). With ``cold_text_ngrams`` 2 (the default) a term is a word or a
  pair of adjacent words: "LUNCH BAG" and "BAG CHARM" say more about who buys a product than
  "BAG" does (held-out R² of the factors on Online Retail, docs/results.md). The ridge
  (``hybrid.cold``) penalises this part on its own scale, not standardised.

The vocabularies come from the current catalog (every product, warm or cold: words, no
interactions), ordered by count then name, so the same catalog always gives the same columns.
Only vocabularies reach the driver (at most ``cold_text_terms + cold_categories`` strings); the
dense rows are built on the executors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.config.sections import COLD_INPUTS
from hybridrec.hybrid.lexical import tfidf_postings

__all__ = ["COLD_INPUTS", "cold_model_inputs"]


def _vocabulary(spark: SparkSession, counted: DataFrame, key: str, limit: int, offset: int) -> tuple[DataFrame, int]:
    """((``key``, j), size): the ``limit`` most frequent keys of ``counted`` (key, n) with n >= 2,
    numbered from ``offset`` by count then key, and how many there are."""
    rows = counted.filter(F.col("n") >= 2).orderBy(F.desc("n"), F.col(key)).limit(limit).collect()
    vocab = spark.createDataFrame([(r[key], offset + i) for i, r in enumerate(rows)], f"{key} string, j int")
    return vocab, len(rows)


def cold_model_inputs(
    vectors: DataFrame,
    docs: DataFrame,
    parts: Sequence[str],
    *,
    text_terms: int,
    categories: int,
    text_ngrams: int = 1,
) -> tuple[DataFrame, dict[str, int]]:
    """((item_idx, vec), widths): each product's model input, ``parts`` (``COLD_INPUTS``) side by
    side, and how many columns each part has.

    ``vectors``: (item_idx, vec) content vectors, one row per product (the rows returned);
    ``docs``: (item_idx, title, description, category) of the catalog's products;
    ``text_ngrams``: 1 = words, 2 = words and adjacent word pairs (``lexical.tfidf_postings``).
    """
    spark = vectors.sparkSession
    dim = len(vectors.select("vec").first()[0]) if "content" in parts else 0
    entries: list[DataFrame] = []
    widths: dict[str, int] = {"content": dim} if "content" in parts else {}
    offset = 0
    if "category" in parts:
        counted = docs.filter(F.col("category").isNotNull()).groupBy("category").agg(F.count(F.lit(1)).alias("n"))
        vocab, widths["category"] = _vocabulary(spark, counted, "category", categories, offset)
        offset += widths["category"]
        entries.append(docs.join(vocab, "category").select("item_idx", "j", F.lit(1.0).alias("w")))
    if "text" in parts:
        postings = tfidf_postings(docs.select("item_idx", "title", "description"), ngrams=text_ngrams)
        counted = postings.groupBy("term").agg(F.first("df").alias("n"))
        vocab, widths["text"] = _vocabulary(spark, counted, "term", text_terms, offset)
        offset += widths["text"]
        entries.append(postings.join(vocab, "term").select("item_idx", "j", F.col("weight").alias("w")))
    if not entries:
        return vectors.select("item_idx", "vec"), widths
    sparse = entries[0]
    for more in entries[1:]:
        sparse = sparse.unionByName(more)
    rows = sparse.groupBy("item_idx").agg(F.collect_list("j").alias("js"), F.collect_list("w").alias("ws"))
    base = (
        vectors.select("item_idx", "vec")
        if dim
        else vectors.select("item_idx", F.array().cast("array<float>").alias("vec"))
    )
    width = offset

    def widen(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            if pdf.empty:
                continue
            extra = np.zeros((len(pdf), width), np.float32)
            for row, (js, ws) in enumerate(zip(pdf["js"], pdf["ws"], strict=True)):
                if js is not None and len(js):
                    extra[row, np.asarray(js, np.int64)] = np.asarray(ws, np.float32)
            if dim:
                out = np.hstack([np.stack(pdf["vec"].to_numpy()).astype(np.float32), extra])
            else:
                out = extra
            yield pd.DataFrame({"item_idx": pdf["item_idx"].to_numpy(np.int32), "vec": list(out)})

    joined = base.join(rows, "item_idx", "left")
    return joined.mapInPandas(widen, "item_idx int, vec array<float>"), widths
