"""Exact cosines of given product pairs: what similar items' candidate pairs are scored with
(``recommend.similar_exact_pairs``, ``similar.similar_items``).

A product's candidates come from several lists (content vectors, title TF-IDF, ALS factors), each
holding only its own top ``similar_top_m``. A pair one list proposed is usually missing from the
other: without its cosine there, the blend can only guess (the list's lowest value), and a title
neighbour of another kind keeps a content value it does not have (measured on the fashion
catalog: docs/results.md "Content vectors"). Here each pair gets its own value, computed where
the pair is, never over all pairs of products:

- content (``content_cosines``): the dot product of the two fused vectors when both products sit
  on the same side (both with a photo, or both without), the cosine of their text vectors across
  the sides: the rule of ``similar.nearest_on_shared``, so a listed pair's value is unchanged.
- lexical (``lexical_cosines``): the sum of weight products over the terms the two products
  share among the postings given (``lexical.lexical_postings``: the same capped, weighted rows the
  lexical neighbours come from, so a listed pair's value is unchanged); no shared term = 0.

Both are two joins of the pairs a list lacks (each product's row joined on each side of the
pair): work grows with the pairs (products x the lists' depth), not with the square of the
catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from hybridrec.hybrid.lexical import SIM_DECIMALS

PAIR = ["item_idx", "other_idx"]


@dataclass(frozen=True)
class PairInputs:
    """What a candidate pair's exact cosines are computed from: ``vectors`` (id, features[, text,
    photo]; ``content_cosines``) and the lexical ``postings`` (item_idx, term, weight;
    ``lexical_cosines``), None when the lexical list takes no part."""

    vectors: DataFrame
    postings: DataFrame | None = None


def _dot(a: Column, b: Column) -> Column:
    """The dot product of two equal-length float arrays, in the JVM (no Python worker)."""
    return F.aggregate(F.zip_with(a, b, lambda x, y: x * y), F.lit(0.0).cast("double"), lambda acc, v: acc + v)


def content_cosines(pairs: DataFrame, vectors: DataFrame) -> DataFrame:
    """(item_idx, other_idx, c_exact double) for the distinct ``pairs`` (item_idx, other_idx).

    ``vectors``: (id, features[, text, photo]) as ``similar.nearest_on_shared`` takes them: the
    fused vector (unit length: its dot product is the cosine), the text vector (null without a
    title) and whether the product has a photo. Without ``text`` and ``photo`` every pair is
    compared on the fused vectors (``similar.nearest``). A pair across the sides where either
    product lacks a text vector, or either product has no row in ``vectors``, gets no row: the
    two cannot be compared.
    """
    shared = {"text", "photo"} <= set(vectors.columns)
    extra = ("text", "photo") if shared else ()

    def side(key: str, tag: str) -> DataFrame:
        return vectors.select(
            F.col("id").alias(key), F.col("features").alias(f"_f{tag}"), *[F.col(c).alias(f"_{c}{tag}") for c in extra]
        )

    joined = (
        pairs.select(*PAIR).distinct().join(side("item_idx", "i"), "item_idx").join(side("other_idx", "o"), "other_idx")
    )
    fused = _dot(F.col("_fi"), F.col("_fo"))
    if not shared:
        return joined.select(*PAIR, fused.cast("float").alias("c_exact"))
    ti, to = F.col("_texti"), F.col("_texto")
    norms = F.sqrt(_dot(ti, ti)) * F.sqrt(_dot(to, to))
    text = F.when(ti.isNotNull() & to.isNotNull() & (norms > 0), _dot(ti, to) / norms)
    value = F.when(F.col("_photoi") == F.col("_photoo"), fused).otherwise(text)
    return joined.select(*PAIR, value.cast("float").alias("c_exact")).filter(F.col("c_exact").isNotNull())


def lexical_cosines(pairs: DataFrame, postings: DataFrame) -> DataFrame:
    """(item_idx, other_idx, l_exact double) for the distinct ``pairs`` that share a term of
    ``postings`` (item_idx, term, weight): the sum of their weight products, rounded as the
    lexical neighbours' ``sim`` (``lexical.SIM_DECIMALS``). A pair that shares no term gets no
    row (its cosine over these postings is 0)."""
    mine = postings.select("item_idx", "term", F.col("weight").alias("_w"))
    theirs = postings.select(F.col("item_idx").alias("other_idx"), "term", F.col("weight").alias("_v"))
    return (
        pairs.select(*PAIR)
        .distinct()
        .join(mine, "item_idx")
        .join(theirs, ["other_idx", "term"])
        .groupBy(*PAIR)
        .agg(F.round(F.sum(F.col("_w") * F.col("_v")), SIM_DECIMALS).cast("float").alias("l_exact"))
    )


def with_exact_cosines(merged: DataFrame, inputs: PairInputs) -> DataFrame:
    """``merged`` (item_idx, other_idx, c_sim, l_sim, ...: one row per candidate pair, a list's
    value null where that list did not propose the pair) with ``c_exact`` (``content_cosines``)
    for the pairs without ``c_sim`` and ``l_exact`` (``lexical_cosines``) for those without
    ``l_sim``; null where there is none (no comparable vectors; no shared term, or no
    ``postings``)."""
    need_c = merged.filter(F.col("c_sim").isNull())
    out = merged.join(content_cosines(need_c, inputs.vectors), PAIR, "left")
    if inputs.postings is None:
        return out.withColumn("l_exact", F.lit(None).cast("float"))
    need_l = merged.filter(F.col("l_sim").isNull())
    return out.join(lexical_cosines(need_l, inputs.postings), PAIR, "left")
