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

**Informative terms** (``informative_term_weights``, ``recommend.lexical_attributes``): idf alone
ranks a brand that spans forty product types ("Nike") above a type word in a few hundred products
("Boxers"), so neighbours share the brand more than the kind. Where the catalog has labels (its
category, attributes such as gender or colour), each term's idf is multiplied by how much the term
tells about them: for each labelled attribute ``a`` with ``K`` values, ``1 - H(a | term) / ln K``
with ``H`` the entropy of the value among the labelled products holding the term, smoothed with
``PSEUDO_PRODUCTS`` spread over the values (a term seen on one product says little), and the
largest over the attributes. 1 = every product with the term has the same value, 0 = the term is
spread evenly over the values. Terms on no labelled product get the median of the others. The labels describe products
already in the catalog, so a product of a type no model learned still finds the products whose
titles hold its type word. Measured in ``bench/bench_content.py`` (methods ``tfidf_info`` and the
``fused+tfidf_info`` blends).

**The title's last words** (``recommend.lexical_tail_weight`` / ``lexical_tail_tokens``): an
English product title ends with the noun that names the kind ("Jewels Galaxy Women Gold
Earrings"), so each of the title's last ``tail_tokens`` words may count ``tail_weight`` times in
the term frequency (never the description's words; the document frequency still counts
products). Off (1) by default; the fashion config counts the last two twice (``_tail`` methods of
``bench/bench_content.py``, figures in docs/results.md "Content vectors").
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from hybridrec.config import Config
from hybridrec.errors import HybridrecError
from hybridrec.features.labels import CATEGORY_HEAD, head_value
from hybridrec.features.text import tokens_column

# Sums of the same weight products in another order differ in the last bits; rounded to this many
# decimals, equal cosines tie exactly and fall back to other_idx, so a re-run ranks identically.
SIM_DECIMALS = 12
# Pseudo-products spread evenly over an attribute's values in each term's value distribution
# (informative_term_weights): a term seen on one product keeps much of the chance entropy, a term
# on dozens of products of one value little.
PSEUDO_PRODUCTS = 1.0


class LexicalInputError(HybridrecError):
    """The lexical pass got arguments it cannot work with."""


def _terms(docs: DataFrame, ngrams: int = 1) -> DataFrame:
    """(item_idx, term): every token of the item's text and, with ``ngrams`` 2, every pair of
    adjacent tokens as one term ("lunch bag"), one row per occurrence."""
    return _weighted_terms(docs, ngrams).select("item_idx", "term")


def _weighted_terms(docs: DataFrame, ngrams: int = 1, tail_weight: float = 1.0, tail_tokens: int = 0) -> DataFrame:
    """(item_idx, term, _tf): ``_terms`` with each occurrence's count in the term frequency:
    ``tail_weight`` for the last ``tail_tokens`` words of the title (the noun that names the
    product's kind closes an English title: "... Women Gold Earrings"), 1 for the others (and for
    word pairs)."""
    if ngrams not in (1, 2):
        raise LexicalInputError(f"lexical terms: ngrams must be 1 (words) or 2 (words and word pairs), got {ngrams}")
    weighted = tail_weight != 1.0 and tail_tokens > 0
    if weighted:  # the title's and the description's tokens apart, each once: the title's end at _n
        none = F.lit(None).cast("string")
        parts = docs.select(
            "item_idx",
            tokens_column(F.col("title"), none).alias("_tt"),
            tokens_column(none, F.col("description")).alias("_td"),
        )
        words = parts.select("item_idx", F.concat("_tt", "_td").alias("_t"), F.size("_tt").alias("_n"))
    else:
        words = docs.select("item_idx", tokens_column("title", "description").alias("_t"))
    terms = F.col("_t")
    if ngrams == 2:  # word pairs after the words: their places lie past every title word's
        n_pairs = F.greatest(F.size("_t") - F.lit(1), F.lit(0))
        pairs = F.zip_with(F.slice("_t", 1, n_pairs), F.slice("_t", 2, n_pairs), lambda a, b: F.concat_ws(" ", a, b))
        terms = F.concat(terms, pairs)
    if not weighted:
        return words.select("item_idx", F.explode(terms).alias("term"), F.lit(1.0).alias("_tf"))
    tail = (F.col("_p") >= F.col("_n") - F.lit(tail_tokens)) & (F.col("_p") < F.col("_n"))
    return words.select("item_idx", F.posexplode(terms).alias("_p", "term"), "_n").select(
        "item_idx", "term", F.when(tail, F.lit(float(tail_weight))).otherwise(F.lit(1.0)).alias("_tf")
    )


def tfidf_postings(
    docs: DataFrame,
    term_weights: DataFrame | None = None,
    ngrams: int = 1,
    tail_weight: float = 1.0,
    tail_tokens: int = 0,
) -> DataFrame:
    """(item_idx, term, weight, df) for ``docs`` (item_idx, title, description; one row per item).

    ``weight`` is the term's entry in the item's l2-normalised TF-IDF row, ``df`` the number of
    items whose text holds the term. ``n`` (the idf's product count) is every row of ``docs``,
    with or without tokens, as in the bench. ``term_weights`` (term, term_weight), e.g.
    ``informative_term_weights``, multiplies each term's idf before the rows are normalised; a
    term it lacks keeps its idf. An item whose every term weighs 0 gets no rows. ``ngrams`` 2
    adds adjacent word pairs as terms (``_terms``; the cold model's text part), 1 is words only
    (the lexical neighbours). ``tail_weight`` / ``tail_tokens``: each of the title's last
    ``tail_tokens`` words counts ``tail_weight`` times in the term frequency (``_weighted_terms``;
    ``recommend.lexical_tail_weight``); 1 = raw counts.
    """
    n = docs.count()
    terms = _weighted_terms(docs, ngrams, tail_weight, tail_tokens)
    tf = terms.groupBy("item_idx", "term").agg(F.sum("_tf").cast("double").alias("tf"))
    df = F.count(F.lit(1)).over(Window.partitionBy("term"))
    idf = F.log((F.lit(1.0) + F.lit(float(n))) / (F.lit(1.0) + df)) + F.lit(1.0)
    if term_weights is not None:
        tf = tf.join(term_weights.select("term", "term_weight"), "term", "left")
        idf = idf * F.coalesce(F.col("term_weight"), F.lit(1.0))
    raw = tf.select("item_idx", "term", (F.col("tf") * idf).alias("w"), df.cast("long").alias("df"))
    norm = F.sqrt(F.sum(F.col("w") * F.col("w")).over(Window.partitionBy("item_idx")))
    weighted = raw.withColumn("_norm", norm).filter(F.col("_norm") > 0)  # all terms weighing 0: no row
    return weighted.select("item_idx", "term", (F.col("w") / F.col("_norm")).alias("weight"), "df")


def product_labels(products: DataFrame, attributes: list[str]) -> DataFrame:
    """(item_idx, attribute, value) of ``products`` (item_idx, category, attributes): one row per
    product and attribute with a value; ``category`` names the category column, any other name a
    key of the ``attributes`` map (``features.labels.head_value``)."""
    if not attributes:
        raise LexicalInputError("lexical labels: no attribute given")
    pairs = F.array(*[F.struct(F.lit(a).alias("attribute"), head_value(a).alias("value")) for a in attributes])
    exploded = products.select("item_idx", F.explode(pairs).alias("p"))
    return exploded.select("item_idx", "p.attribute", "p.value").filter(
        F.col("value").isNotNull() & (F.trim(F.col("value")) != "")
    )


def check_lexical_attributes(cfg: Config) -> None:
    """Fail before any Spark work when ``recommend.lexical_attributes`` names an attribute the
    catalog does not keep (the same rule as ``features.label_heads``)."""
    kept = set(cfg.catalog.attributes)
    missing = [a for a in cfg.recommend.lexical_attributes if a not in kept and a != CATEGORY_HEAD]
    if missing and cfg.catalog.layout == "generic":
        raise LexicalInputError(
            f"recommend.lexical_attributes names {', '.join(missing)} but catalog.attributes does not keep "
            f"{'it' if len(missing) == 1 else 'them'} ({', '.join(sorted(kept)) or 'none'}): add the "
            "attribute to catalog.attributes (and re-run ingest) or remove it from recommend.lexical_attributes"
        )


def informative_term_weights(docs: DataFrame, labels: DataFrame) -> DataFrame:
    """(term, term_weight) for every term of ``docs`` (item_idx, title, description): how much the
    term tells about the labelled attributes (module docstring), in [0, 1). ``labels``:
    (item_idx, attribute, value), e.g. ``product_labels``. Lazy (no Spark job here); every
    ``term_weight`` is null when no attribute has two values among the products of ``docs``
    (nothing to learn from: ``tfidf_postings`` keeps plain idf).
    """
    labelled = labels.join(docs.select("item_idx"), "item_idx").distinct()
    sizes = labelled.groupBy("attribute").agg(F.countDistinct("value").alias("k")).filter(F.col("k") >= 2)
    terms = _terms(docs).distinct()
    counts = (
        terms.join(labelled, "item_idx")
        .join(F.broadcast(sizes), "attribute")
        .groupBy("term", "attribute", "value", "k")
        .agg(F.count(F.lit(1)).cast("double").alias("c"))
    )
    a = F.lit(PSEUDO_PRODUCTS) / F.col("k")
    denom = F.sum("c").over(Window.partitionBy("term", "attribute")) + F.lit(PSEUDO_PRODUCTS)
    p = (F.col("c") + a) / denom
    q = a / denom  # the share of each value the term was never seen with
    per_value = counts.select("term", "attribute", "k", (p * F.log(p)).alias("plogp"), q.alias("q"))
    unseen = (F.col("k") - F.count(F.lit(1))) * F.max("q") * F.log(F.max("q"))
    entropy = per_value.groupBy("term", "attribute", "k").agg((-F.sum("plogp") - unseen).alias("h"))
    info = entropy.groupBy("term").agg(F.max(F.lit(1.0) - F.col("h") / F.log(F.col("k"))).alias("info"))
    median = info.agg(F.percentile_approx("info", 0.5, 10000).alias("median"))
    return (
        terms.select("term")
        .distinct()
        .join(info, "term", "left")
        .crossJoin(F.broadcast(median))
        .select("term", F.coalesce(F.col("info"), F.col("median")).alias("term_weight"))
    )


def top_k_pairs(pairs: DataFrame, k: int) -> DataFrame:
    """The ``k`` best (item_idx, other_idx, sim) rows per item_idx: highest ``sim`` first, ties by
    the lower other_idx (deterministic)."""
    order = Window.partitionBy("item_idx").orderBy(F.col("sim").desc(), F.col("other_idx"))
    return pairs.withColumn("_r", F.row_number().over(order)).filter(F.col("_r") <= k).drop("_r")


def summed_sim(weight_product: Column) -> Column:
    """A pair's lexical cosine: the sum of its shared terms' weight products, rounded to
    ``SIM_DECIMALS`` (sums in another order give the same value: ties stay ties)."""
    return F.round(F.sum(weight_product), SIM_DECIMALS)


def lexical_neighbours(
    docs: DataFrame,
    k: int,
    max_df: int,
    term_weights: DataFrame | None = None,
    tail_weight: float = 1.0,
    tail_tokens: int = 0,
) -> DataFrame:
    """(item_idx, other_idx, sim float): each item's ``k`` nearest other items by the TF-IDF
    cosine of title + description, through the inverted index (terms in more than ``max_df``
    items left out of the join; see the module docstring).

    ``docs``: (item_idx, title, description), one row per item. Items without a kept term get no
    row; fewer than ``k`` when fewer items share a kept term with them. ``term_weights``,
    ``tail_weight`` and ``tail_tokens``: see ``tfidf_postings``.
    """
    if k < 1:
        raise LexicalInputError(f"lexical neighbours: k must be at least 1, got {k}")
    return neighbours_from_postings(lexical_postings(docs, max_df, term_weights, tail_weight, tail_tokens), k)


def lexical_postings(
    docs: DataFrame,
    max_df: int,
    term_weights: DataFrame | None = None,
    tail_weight: float = 1.0,
    tail_tokens: int = 0,
) -> DataFrame:
    """(item_idx, term, weight): the postings the lexical neighbours join, ``tfidf_postings``
    without the terms of more than ``max_df`` items (their weight still counts in each row's
    norm). Arguments as ``lexical_neighbours``."""
    if max_df < 2:
        raise LexicalInputError(
            f"lexical neighbours: max_df must be at least 2 (a term in one product pairs it with nothing), got {max_df}"
        )
    return (
        tfidf_postings(docs, term_weights, tail_weight=tail_weight, tail_tokens=tail_tokens)
        .filter(F.col("df") <= max_df)
        .select("item_idx", "term", "weight")
    )


def neighbours_from_postings(postings: DataFrame, k: int) -> DataFrame:
    """(item_idx, other_idx, sim float): each item's ``k`` best other items by the summed weight
    products of the terms they share in ``postings`` (item_idx, term, weight;
    ``lexical_postings``), through the inverted index."""
    if k < 1:
        raise LexicalInputError(f"lexical neighbours: k must be at least 1, got {k}")
    others = postings.select(F.col("item_idx").alias("other_idx"), "term", F.col("weight").alias("o_weight"))
    pairs = (
        postings.join(others, "term")
        .filter(F.col("item_idx") != F.col("other_idx"))
        .groupBy("item_idx", "other_idx")
        .agg(summed_sim(F.col("weight") * F.col("o_weight")).alias("sim"))
    )
    top = top_k_pairs(pairs, k)
    return top.select(
        F.col("item_idx").cast("int"), F.col("other_idx").cast("int"), F.col("sim").cast("float").alias("sim")
    )
