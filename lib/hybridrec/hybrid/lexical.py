"""Lexical neighbours: products whose title and description share words, by TF-IDF cosine.

Why beside the learned content vectors: those collapse for product types the classifier never
learned (same-type neighbour precision 0.55 against 0.80 for title TF-IDF on the content benchmark,
``bench/bench_content.py``), while a shared type word ("Kurta", "Sarong") still finds the products
of that kind.

Weighting is exactly ``tfidf_vectors`` of ``bench/bench_content.py``, so the bench's numpy figures
describe what the nightly job computes: tokens from ``features.text.text_tokens(title,
description)``, raw term counts, smoothed idf ``ln((1 + n) / (1 + df)) + 1`` over the ``n`` products
given, rows scaled to unit length (a product without tokens has no row).

Neighbours come from an inverted index, never from all pairs of products: postings (item, term,
weight) are joined on the term and the weight products summed per pair, which is the cosine of the
unit rows restricted to the terms taken into the join. Work grows with the sum over terms of
``df²``, so a term in more than ``max_df`` products is left out of the join: such a word ("men",
"women", a colour) separates little (low idf) and alone would generate most of the pairs. Its
weight still counts in each row's norm, so a kept pair's ``sim`` is the exact cosine less the
dropped terms' share, and two products that share only dropped terms are not neighbours. With
``max_df >= n`` nothing is dropped and ``sim`` is the exact cosine. Measured on the fashion catalog
(42,147 titles, local[2]): uncapped the join would emit about 1.03 billion (item, other, term) rows;
with ``max_df`` 2000 (the 19 most common of 8,000 terms dropped) 74.7 million rows, 62.0 million
distinct pairs, the top 20 for 41,978 products in 63 to 138 s (two runs on a shared 2-core
machine; ``bench/bench_lexical.py``, figures in ``docs/results.md``).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.errors import HybridrecError
from hybridrec.features.text import tokens_column

# Sums of the same weight products in another order differ in the last bits; rounded to this many
# decimals, equal cosines tie exactly and fall back to other_idx, so a re-run ranks identically.
SIM_DECIMALS = 12


class LexicalInputError(HybridrecError):
    """The lexical pass got arguments it cannot work with."""


def tfidf_postings(docs: DataFrame) -> DataFrame:
    """(item_idx, term, weight, df) for ``docs`` (item_idx, title, description; one row per item).

    ``weight`` is the term's entry in the item's l2-normalised TF-IDF row, ``df`` the number of
    items whose text holds the term. ``n`` (the idf's product count) is every row of ``docs``,
    with or without tokens, as in the bench.
    """
    n = docs.count()
    terms = docs.select("item_idx", F.explode(tokens_column("title", "description")).alias("term"))
    tf = terms.groupBy("item_idx", "term").agg(F.count(F.lit(1)).cast("double").alias("tf"))
    df = F.count(F.lit(1)).over(Window.partitionBy("term"))
    idf = F.log((F.lit(1.0) + F.lit(float(n))) / (F.lit(1.0) + df)) + F.lit(1.0)
    raw = tf.select("item_idx", "term", (F.col("tf") * idf).alias("w"), df.cast("long").alias("df"))
    norm = F.sqrt(F.sum(F.col("w") * F.col("w")).over(Window.partitionBy("item_idx")))
    return raw.select("item_idx", "term", (F.col("w") / norm).alias("weight"), "df")


def top_k_pairs(pairs: DataFrame, k: int) -> DataFrame:
    """The ``k`` best (item_idx, other_idx, sim) rows per item_idx: highest ``sim`` first, ties by
    the lower other_idx (deterministic)."""
    order = Window.partitionBy("item_idx").orderBy(F.col("sim").desc(), F.col("other_idx"))
    return pairs.withColumn("_r", F.row_number().over(order)).filter(F.col("_r") <= k).drop("_r")


def _sim(weight_product: Column) -> Column:
    return F.round(F.sum(weight_product), SIM_DECIMALS)


def lexical_neighbours(docs: DataFrame, k: int, max_df: int) -> DataFrame:
    """(item_idx, other_idx, sim float): each item's ``k`` nearest other items by the TF-IDF
    cosine of title + description, through the inverted index (terms in more than ``max_df``
    items left out of the join; see the module docstring).

    ``docs``: (item_idx, title, description), one row per item. Items without a kept term get no
    row; fewer than ``k`` when fewer items share a kept term with them.
    """
    if k < 1:
        raise LexicalInputError(f"lexical neighbours: k must be at least 1, got {k}")
    if max_df < 2:
        raise LexicalInputError(
            f"lexical neighbours: max_df must be at least 2 (a term in one product pairs it with nothing), got {max_df}"
        )
    postings = tfidf_postings(docs).filter(F.col("df") <= max_df).select("item_idx", "term", "weight")
    others = postings.select(F.col("item_idx").alias("other_idx"), "term", F.col("weight").alias("o_weight"))
    pairs = (
        postings.join(others, "term")
        .filter(F.col("item_idx") != F.col("other_idx"))
        .groupBy("item_idx", "other_idx")
        .agg(_sim(F.col("weight") * F.col("o_weight")).alias("sim"))
    )
    top = top_k_pairs(pairs, k)
    return top.select(
        F.col("item_idx").cast("int"), F.col("other_idx").cast("int"), F.col("sim").cast("float").alias("sim")
    )
