"""Similar items per product: nearest products by the fused content vector and by TF-IDF of the
title and description (lexical), blended with nearest products by ALS item factors
(co-interaction) when both products have interactions.

All similarities are cosines, so they blend on one scale. The content side is ``(1 - lam) *
content + lam * lexical`` with ``lam = similar_lexical_weight``: the lexical list keeps products of
a type the classifier never learned beside their own kind, where the learned vectors collapse
(``lexical.py``). With ``similar_lexical_doubt``, a product's own share is ``lam + (1 - lam) *
(1 - p)``, ``p`` the probability of its predicted type: the less the classifier knows the product's
type, the more its list follows its title. On top, ``(1 - beta) * content_side + beta * collab`` with ``beta =
similar_collab_weight * min(b_i, b_j)`` and ``b = n_users / (n_users + item_shrinkage)``: the
collaborative share grows with the evidence behind both products and is 0 for a cold one, whose
list is purely content side (every product with a vector gets a list). A pair missing from one
source's top list takes its exact cosine there when ``exact`` inputs are given
(``recommend.similar_exact_pairs``, ``pair_cosines``: content and lexical; 0 where the two cannot be
compared or share no term), else that list's lowest value for the product (0 when the product has
no list from that source); a pair missing from the co-interaction list always takes that list's
lowest value (its share is 0 unless both products are warm).

**The type its nearest products vote for** (``recommend.similar_type_vote`` / ``similar_type_bonus``,
``type_vote``): a product's ``k`` best neighbours by that score vote, each with its score, for their
catalog category (the feed's label, ``bronze.products.category``; unlabelled ones do not vote); every
candidate of the winning category gains ``bonus`` before the final ranking. The learned vectors pull a
product of a type the classifier never learned toward a type it knows (a blazer among shirts), while
its nearest few, found mostly by its title, already share its kind; the vote moves the rest of that
kind up the list. The product's own category is never read: a new product is judged like one without
a label. Measured on ``bench/bench_content.py`` (docs/results.md "Content vectors").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.collab.topk import blocked
from hybridrec.config import RecommendConfig
from hybridrec.hybrid import ann
from hybridrec.hybrid.pair_cosines import PairInputs, with_exact_cosines
from hybridrec.models.embeddings import l2_normalise

_NN = ("item_idx", "other_idx", "sim")  # the neighbour lists' columns


def _unit(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for pdf in batches:
        if pdf.empty:
            continue
        x = l2_normalise(np.stack(pdf["features"].to_numpy()).astype(np.float32))
        yield pd.DataFrame({"id": pdf["id"].to_numpy(np.int32), "features": list(x)})


def unit_rows(factors: DataFrame) -> DataFrame:
    """(id, features) with every vector scaled to unit length (dot product = cosine)."""
    return factors.mapInPandas(_unit, "id int, features array<float>")


def nearest(
    vectors: DataFrame, k: int, n: int, user_block: int, item_block: int, rc: RecommendConfig | None = None
) -> DataFrame:
    """(item_idx, other_idx, sim): each item's ``k`` nearest other items by dot product.

    Exact (``topk.blocked``) unless ``rc`` picks the approximate inverted-file search for ``n``
    items (``recommend.ann``: the exact self-join is quadratic in products, see ``hybrid.ann``).
    With ``item_block >= n`` every product sits in one block: the UDF ranks the final lists and
    no window runs (``topk.blocked``).
    """
    return nearest_between(vectors, vectors, k, (n, n), user_block, item_block, rc, exclude_self=True)


def nearest_between(
    queries: DataFrame,
    catalog: DataFrame,
    k: int,
    sizes: tuple[int, int],
    user_block: int,
    item_block: int,
    rc: RecommendConfig | None = None,
    exclude_self: bool = False,
) -> DataFrame:
    """(item_idx, other_idx, sim): each of ``queries``' ``k`` nearest ``catalog`` rows by dot
    product, (id, features) rows; ``sizes``: (queries, catalog) counts. Exact or approximate as
    ``nearest``; ``exclude_self``: the same rows on both sides (``nearest``), an id is never its
    own neighbour."""
    if rc is not None and ann.use_ivf(rc.ann, sizes[1], rc.ann_auto_above):
        return ann.ivf_neighbours(
            queries,
            catalog,
            k,
            sizes[1],
            rc.ann_lists,
            rc.ann_nprobe,
            rc.ann_sample,
            rc.ann_seed,
            exclude_self=exclude_self,
        ).select(*_NN)
    top = blocked(queries, catalog, k, user_block, item_block, sizes, exclude_self=exclude_self)
    return top.select(
        F.col("user_idx").alias("item_idx"), F.col("item_idx").alias("other_idx"), F.col("score").alias("sim")
    )


def nearest_on_shared(
    vectors: DataFrame, k: int, n: int, user_block: int, item_block: int, rc: RecommendConfig | None = None
) -> DataFrame:
    """(item_idx, other_idx, sim): each item's ``k`` nearest other items, a product with a photo
    and one without compared on what both have (``recommend.similar_mixed_pairs: text``).

    ``vectors``: (id, features, text, photo): the fused vector, the text vector (null without a
    title) and whether the product has a photo; ``n`` rows. Products on the same side (both with
    a photo, or both without) are compared by their fused vectors, as ``nearest`` does; across
    the sides by the cosine of their text vectors, so a product without a photo is no longer
    judged on the photo half the fusion imputed for it (on the fashion catalog a photo product's
    neighbours held 36 % products without one, against 77 % of the catalog). Four searches, one
    per pair of sides, together the n x n pairs of ``nearest``; each item keeps its best ``k``.
    A product without a text vector has no neighbours on the other side. With a single side this
    is ``nearest``."""
    counts = {
        (bool(row["photo"]), bool(row["has_text"])): int(row["count"])
        for row in vectors.groupBy("photo", F.col("text").isNotNull().alias("has_text")).count().collect()
    }
    n_photo = counts.get((True, True), 0) + counts.get((True, False), 0)
    n_plain = n - n_photo
    fused = ("id", "features")
    if n_photo == 0 or n_plain == 0:
        return nearest(vectors.select(*fused), k, n, user_block, item_block, rc)
    photo, plain = vectors.filter(F.col("photo")), vectors.filter(~F.col("photo"))
    parts = [
        nearest(side.select(*fused), k, size, user_block, item_block, rc)
        for side, size in ((photo, n_photo), (plain, n_plain))
        if size > 1
    ]
    n_text = (counts.get((True, True), 0), counts.get((False, True), 0))
    if n_text[0] and n_text[1]:
        texts = [
            unit_rows(side.filter(F.col("text").isNotNull()).select("id", F.col("text").alias("features")))
            for side in (photo, plain)
        ]
        parts.append(nearest_between(texts[0], texts[1], k, n_text, user_block, item_block, rc))
        parts.append(nearest_between(texts[1], texts[0], k, (n_text[1], n_text[0]), user_block, item_block, rc))
    if not parts:  # one product on each side and not both with a title: the fused vectors
        return nearest(vectors.select(*fused), k, n, user_block, item_block, rc)
    union = parts[0].select(*_NN)
    for part in parts[1:]:
        union = union.unionByName(part.select(*_NN))
    best = Window.partitionBy("item_idx").orderBy(F.col("sim").desc(), F.col("other_idx"))
    return union.withColumn("rank", F.row_number().over(best)).filter(F.col("rank") <= k).drop("rank")


def type_vote(scored: DataFrame, categories: DataFrame, k: int, bonus: float) -> DataFrame:
    """``scored`` (item_idx, other_idx, score, ...) with ``bonus`` added to the score of every
    candidate whose category is the one its item's ``k`` best candidates (by score, ties by the
    lower other_idx) vote for, each vote weighing its score (ties by the lower category name).

    ``categories``: (item_idx, category) of the catalog; a candidate without a category (null or
    blank) neither votes nor gains, an item whose best ``k`` hold none keeps its scores. ``k`` 0 or ``bonus`` 0:
    ``scored`` unchanged."""
    if k < 1 or bonus <= 0:
        return scored
    labels = categories.filter(F.col("category").isNotNull() & (F.trim(F.col("category")) != "")).select(
        F.col("item_idx").alias("other_idx"), F.col("category").alias("_cat")
    )
    # Windows over the item's candidates only (one shuffle, ``scored`` read once): each
    # candidate's rank, its category's votes among the item's best k, the winner by votes then name.
    item = Window.partitionBy("item_idx")
    best = item.orderBy(F.col("score").desc(), F.col("other_idx"))
    with_cat = scored.join(F.broadcast(labels), "other_idx", "left").withColumn("_r", F.row_number().over(best))
    voter = (F.col("_r") <= k) & F.col("_cat").isNotNull()
    votes = F.sum(F.when(voter, F.col("score"))).over(Window.partitionBy("item_idx", "_cat"))
    with_votes = with_cat.withColumn("_v", F.when(F.col("_cat").isNotNull(), votes))
    ranked = with_votes.withColumn("_cat_rank", F.dense_rank().over(item.orderBy(F.col("_cat").asc_nulls_last())))
    # max_by skips a null ordering: a category without a vote never wins, nor does an item without one.
    order = F.when(F.col("_v").isNotNull(), F.struct(F.col("_v"), -F.col("_cat_rank")))
    winner = F.max_by(F.col("_cat"), order).over(item)
    gain = F.when(F.col("_cat") == F.col("_voted"), F.lit(float(bonus))).otherwise(F.lit(0.0))
    return (
        ranked.withColumn("_voted", winner)
        .withColumn("score", (F.col("score") + gain).cast("double"))
        .drop("_cat", "_r", "_v", "_cat_rank", "_voted")
    )


def similar_items(
    content: DataFrame,
    collab: DataFrame | None,
    evidence: DataFrame,
    rc: RecommendConfig,
    lexical: DataFrame | None = None,
    doubt: DataFrame | None = None,
    categories: DataFrame | None = None,
    exact: PairInputs | None = None,
) -> DataFrame:
    """Blend ``content``, ``lexical`` and ``collab`` neighbour lists (item_idx, other_idx, sim) into
    the top ``similar_top_m`` per item: (item_idx, other_idx, score, source).

    ``evidence``: (item_idx, b) — the item's collaborative weight in [0, 1] (0 or absent = cold).
    ``lexical`` is left out when None or when ``similar_lexical_weight`` is 0 (then the result is
    the content + collab blend alone). ``doubt``: (item_idx, doubt in [0, 1]) — the content model's
    doubt about the item's type (``recommend.similar_lexical_doubt``); the item's lexical share is
    then ``lam + (1 - lam) * doubt`` (``lam`` where absent). ``source`` names the lists the pair came from:
    ``both`` = co-interaction and a content-side list, ``co_interaction`` = the ALS list only,
    ``content`` = the content-vector list (the lexical one too or not), ``lexical`` = the lexical
    list only. ``categories``: (item_idx, category) of the catalog; with ``similar_type_vote`` above 0,
    each item's candidates of the category its best ones vote for gain ``similar_type_bonus``
    (``type_vote``) before the top ``similar_top_m`` are kept. ``exact``: the vectors and lexical
    postings that give a pair missing from the content or the lexical list its exact cosine there
    (``pair_cosines.with_exact_cosines``) instead of that list's lowest value; ``source`` still
    names the lists that proposed the pair.
    """
    lam = rc.similar_lexical_weight if lexical is not None else 0.0
    union = content.select("item_idx", "other_idx", F.col("sim").alias("c_sim"))
    if lexical is not None and lam > 0:
        union = union.unionByName(
            lexical.select("item_idx", "other_idx", F.col("sim").alias("l_sim")), allowMissingColumns=True
        )
    else:
        union = union.withColumn("l_sim", F.lit(None).cast("float"))
    if collab is not None:
        union = union.unionByName(
            collab.select("item_idx", "other_idx", F.col("sim").alias("a_sim")), allowMissingColumns=True
        )
    else:
        union = union.withColumn("a_sim", F.lit(None).cast("float"))
    merged = union.groupBy("item_idx", "other_idx").agg(
        F.max("c_sim").alias("c_sim"), F.max("l_sim").alias("l_sim"), F.max("a_sim").alias("a_sim")
    )
    per_item = Window.partitionBy("item_idx")
    b_i = evidence.select("item_idx", F.col("b").alias("b_i"))
    b_j = evidence.select(F.col("item_idx").alias("other_idx"), F.col("b").alias("b_j"))
    if exact is not None:
        merged = with_exact_cosines(merged, exact if lam > 0 else replace(exact, postings=None))
    df = merged.join(F.broadcast(b_i), "item_idx", "left").join(F.broadcast(b_j), "other_idx", "left")
    beta = F.lit(rc.similar_collab_weight) * F.least(F.coalesce("b_i", F.lit(0.0)), F.coalesce("b_j", F.lit(0.0)))

    def filled(listed: str, exact_name: str | None = None) -> Column:
        """A list's value; where the list lacks the pair, its exact cosine (with ``exact``) or
        else the list's lowest value for the item; 0 where neither exists."""
        missing = F.col(exact_name) if exact is not None and exact_name else F.min(listed).over(per_item)
        return F.coalesce(F.col(listed), missing, F.lit(0.0))

    c = filled("c_sim", "c_exact")
    a = filled("a_sim")
    if lam > 0:
        lex = filled("l_sim", "l_exact")
        share: Column = F.lit(lam)
        if doubt is not None:
            df = df.join(F.broadcast(doubt.select("item_idx", "doubt")), "item_idx", "left")
            share = share + F.lit(1.0 - lam) * F.coalesce(F.col("doubt"), F.lit(0.0))
        c = ((F.lit(1.0) - share) * c + share * lex).cast("double")
        content_side = F.col("c_sim").isNotNull() | F.col("l_sim").isNotNull()
    else:
        content_side = F.col("c_sim").isNotNull()
    source = (
        F.when(content_side & F.col("a_sim").isNotNull(), "both")
        .when(F.col("a_sim").isNotNull(), "co_interaction")
        .when(F.col("c_sim").isNotNull(), "content")
        .otherwise("lexical")
    )
    scored = df.select(
        "item_idx",
        "other_idx",
        ((F.lit(1.0) - beta) * c + beta * a).cast("double").alias("score"),
        source.alias("source"),
    )
    if categories is not None:
        scored = type_vote(scored, categories, rc.similar_type_vote, rc.similar_type_bonus)
    order = Window.partitionBy("item_idx").orderBy(F.col("score").desc(), F.col("other_idx"))
    return scored.withColumn("rank", F.row_number().over(order).cast("int")).filter(F.col("rank") <= rc.similar_top_m)
