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

Content: where every vector fits ``BROADCAST_VECTOR_FLOATS`` they are broadcast and the pairs
scored in NumPy as they pass; above, two joins of the pairs (each product's vectors joined on
each side of the pair). Lexical: two joins of the pairs with the postings. Only the pairs a list
lacks are scored: work grows with the pairs (products x the lists' depth), not with the square of
the catalog.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from hybridrec.hybrid.lexical import summed_sim
from hybridrec.models.embeddings import l2_normalise

PAIR = ["item_idx", "other_idx"]
# At most this many vector floats (products x dimensions, every vector of the frame together) are
# collected and broadcast to score pairs in NumPy (similar items' exact pair cosines, the ranker's
# anchor similarities); above, the pairs are joined with the vectors.
BROADCAST_VECTOR_FLOATS = 50_000_000  # 200 MB of float32: 195k products of 256 dimensions


@dataclass(frozen=True)
class PairInputs:
    """What a candidate pair's exact cosines are computed from: ``vectors`` (id, features[, text,
    photo]; ``content_cosines``) and the lexical ``postings`` (item_idx, term, weight;
    ``lexical_cosines``), None when the lexical list takes no part."""

    vectors: DataFrame
    postings: DataFrame | None = None


def dot(a: Column, b: Column) -> Column:
    """The dot product of two equal-length float arrays, in the JVM (no Python worker): float
    products summed in double."""
    return F.aggregate(F.zip_with(a, b, lambda x, y: x * y), F.lit(0.0).cast("double"), lambda acc, v: acc + v)


def content_cosines(pairs: DataFrame, vectors: DataFrame, broadcast_floats: int = BROADCAST_VECTOR_FLOATS) -> DataFrame:
    """(item_idx, other_idx, c_exact float) for ``pairs`` (item_idx, other_idx; distinct).

    ``vectors``: (id, features[, text, photo]) as ``similar.nearest_on_shared`` takes them: the
    fused vector (unit length: its dot product is the cosine), the text vector (null without a
    title) and whether the product has a photo. Without ``text`` and ``photo`` every pair is
    compared on the fused vectors (``similar.nearest``). A pair across the sides where either
    product lacks a text vector, or either product has no row in ``vectors``, gets no row: the
    two cannot be compared.

    Where every vector fits ``broadcast_floats`` they are collected and broadcast, and the pairs
    are scored in NumPy as they pass (``_broadcast_cosines``: no shuffle of vectors); above, each
    pair is joined with both products' vectors (``_joined_cosines``). Both give the same values.
    """
    shared = {"text", "photo"} <= set(vectors.columns)
    sizes = [F.count(F.lit(1)), F.max(F.size("features"))]
    if shared:
        sizes.append(F.max(F.size("text")))
    n, *dims = vectors.agg(*sizes).first()
    if n * sum(max(d or 0, 0) for d in dims) <= broadcast_floats:
        return _broadcast_cosines(pairs, vectors, shared)
    return _joined_cosines(pairs, vectors, shared)


def _matrix(values: Any) -> np.ndarray:
    """float32 rows of a column of arrays, a zero row where a value is missing or empty."""
    present = [v is not None and len(v) > 0 for v in values]
    dim = max((len(v) for v, ok in zip(values, present, strict=True) if ok), default=1)
    out = np.zeros((len(present), dim), dtype=np.float32)
    for row, (v, ok) in enumerate(zip(values, present, strict=True)):
        if ok:
            out[row] = v
    return out


def _broadcast_cosines(pairs: DataFrame, vectors: DataFrame, shared: bool) -> DataFrame:
    """``content_cosines`` with every vector broadcast: ids sorted, the fused matrix, the unit text
    matrix (zero rows without a title) and the photo flags; each Arrow batch of pairs looks its
    products up by binary search."""
    import pyarrow as pa

    columns = ["id", "features", *(["text", "photo"] if shared else [])]
    pdf = vectors.select(*columns).toPandas().sort_values("id", kind="stable")
    ids = pdf["id"].to_numpy(dtype=np.int64)
    fused = _matrix(pdf["features"].tolist())
    text = photo = has_text = None
    if shared:
        text = l2_normalise(_matrix(pdf["text"].tolist()))
        has_text = np.linalg.norm(text, axis=1) > 0
        photo = pdf["photo"].fillna(False).to_numpy(dtype=bool)
    shared_value = vectors.sparkSession.sparkContext.broadcast((ids, fused, text, photo, has_text))

    def lookup(ids: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = np.clip(np.searchsorted(ids, keys), 0, max(len(ids) - 1, 0))
        return at, (ids[at] == keys) if len(ids) else np.zeros(len(keys), dtype=bool)

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        ids, fused, text, photo, has_text = shared_value.value
        for batch in batches:
            item = batch.column("item_idx").to_numpy(zero_copy_only=False).astype(np.int64)
            other = batch.column("other_idx").to_numpy(zero_copy_only=False).astype(np.int64)
            i, i_ok = lookup(ids, item)
            o, o_ok = lookup(ids, other)
            ok = i_ok & o_ok
            value = np.einsum("ij,ij->i", fused[i].astype(np.float64), fused[o].astype(np.float64))
            if text is not None:
                across = photo[i] != photo[o]
                cross = np.einsum("ij,ij->i", text[i].astype(np.float64), text[o].astype(np.float64))
                value = np.where(across, cross, value)
                ok &= ~across | (has_text[i] & has_text[o])
            yield pa.RecordBatch.from_arrays(
                [pa.array(item[ok], pa.int32()), pa.array(other[ok], pa.int32()), pa.array(value[ok], pa.float32())],
                names=["item_idx", "other_idx", "c_exact"],
            )

    return pairs.select(*PAIR).mapInArrow(score, "item_idx int, other_idx int, c_exact float")


def _joined_cosines(pairs: DataFrame, vectors: DataFrame, shared: bool) -> DataFrame:
    """``content_cosines`` by joining each pair with both products' vectors."""
    extra = ("text", "photo") if shared else ()

    def side(key: str, tag: str) -> DataFrame:
        return vectors.select(
            F.col("id").alias(key), F.col("features").alias(f"_f{tag}"), *[F.col(c).alias(f"_{c}{tag}") for c in extra]
        )

    joined = pairs.select(*PAIR).join(side("item_idx", "i"), "item_idx").join(side("other_idx", "o"), "other_idx")
    fused = dot(F.col("_fi"), F.col("_fo"))
    if not shared:
        return joined.select(*PAIR, fused.cast("float").alias("c_exact"))
    ti, to = F.col("_texti"), F.col("_texto")
    norms = F.sqrt(dot(ti, ti)) * F.sqrt(dot(to, to))
    text = F.when(ti.isNotNull() & to.isNotNull() & (norms > 0), dot(ti, to) / norms)
    value = F.when(F.col("_photoi") == F.col("_photoo"), fused).otherwise(text)
    return joined.select(*PAIR, value.cast("float").alias("c_exact")).filter(F.col("c_exact").isNotNull())


def lexical_cosines(pairs: DataFrame, postings: DataFrame) -> DataFrame:
    """(item_idx, other_idx, l_exact float) for the ``pairs`` (distinct) that share a term of
    ``postings`` (item_idx, term, weight): the sum of their weight products, rounded as the
    lexical neighbours' ``sim`` (``lexical.summed_sim``). A pair that shares no term gets no
    row (its cosine over these postings is 0)."""
    mine = postings.select("item_idx", "term", F.col("weight").alias("_w"))
    theirs = postings.select(F.col("item_idx").alias("other_idx"), "term", F.col("weight").alias("_v"))
    return (
        pairs.select(*PAIR)
        .join(mine, "item_idx")
        .join(theirs, ["other_idx", "term"])
        .groupBy(*PAIR)
        .agg(summed_sim(F.col("_w") * F.col("_v")).cast("float").alias("l_exact"))
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
