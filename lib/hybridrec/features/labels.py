"""Category → integer label, with one label map shared by the image and the text features.

Which classes get a label: those with at least ``min_examples_per_class`` products *with a photo*
(all splits together). Why one map counted on image products rather than one per modality:

- the fusion classifier (image + text embeddings) and the comparison between the image CNN and the
  text LSTM need both models to predict the same classes with the same ids;
- photos are the scarcer modality (fashion: 9,583 photos for 42,147 products), so a class with
  enough photos has at least as many texts, while counting on texts would admit classes the CNN
  cannot learn;
- it is the rule the training issue states ("classes with at least 50 photos").

A catalog with no photos at all counts on all products instead (text-only catalogs still train).

Products whose category did not qualify (or is null) keep their rows with ``label = -1``: they still
need embeddings and recommendations; training filters ``label >= 0``. Label ids follow the class
names in code point order, so a class keeps its id as long as the set of classes is unchanged.

Label source (``features.label_source``): ``category`` (the default) labels a product by its catalog
category. ``title_keyword`` is for catalogs without categories (Online Retail: a title and nothing
else) and derives a class name from the title itself, its *head keyword*:

- candidates are the title's tokens (``text.tokenize`` of the normalised title) of at least 3
  characters that are not numbers: "12", "t" (of "T-LIGHT"), "cm", "of" name no kind of product;
- a *modifier* is a token that starts more titles than it ends. English product titles put
  colour, size and pack words first and the noun last ("PINK ... HOLDER", "SET OF 3 ... TINS",
  "SMALL ... JAR"), so the words that begin titles more often than they end them are the
  qualifiers (Online Retail: pink starts 152 and ends 41, set 213/61, small 49/34, red 87/29),
  and those that end more are the nouns (holder 1/81, box, bag, mug). Counted on the catalog
  itself, so no word list has to be maintained per language or shop;
- a product's keyword is its *last* candidate that is not a modifier: the head noun, also when a
  colour or size trails it ("KIDS RAIN MAC BLUE" → mac, "GLASS CLOCHE LARGE" → cloche), where the
  plain last token would make colours into classes; a title of modifiers only has none.

Then classes are the keywords of at least ``min_examples_per_class`` products, exactly as for
categories. On Online Retail's 3,659 titles this gives 10 classes at 50 (679 products: holder,
box, design, heart, decoration, bag, necklace, cover, bracelet, sign) and 37 at 20 (1,474
products). Some classes are a pattern rather than a kind ("retrospot", "design"): that is what the
titles say, and the labels are only the text model's training signal, never shown as a category.
The keywords are computed with Spark aggregations and joins (``add_title_keywords``); the pure
rule (``is_candidate``, ``modifiers_from_counts``, ``head_keyword``) is the same in Python for tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hybridrec.config import Config
from hybridrec.errors import HybridrecError
from hybridrec.features.text import normalize_text, tokenize, tokens_column

UNLABELED = -1
COUNTED_ON_IMAGES = "products with a photo"
COUNTED_ON_ALL = "all products (the catalog has no photos)"
CATEGORY = "category"
TITLE_KEYWORD = "title_keyword"
# The column holding each product's class name before labels are assigned, per label source.
LABEL_COLUMN = {CATEGORY: "category", TITLE_KEYWORD: "title_keyword"}
MIN_KEYWORD_CHARS = 3
TITLE_KEYWORD_RULE = (
    "the title's last token of >= 3 characters, not a number, that is not a modifier "
    "(a token that starts more titles than it ends)"
)


class LabelSourceError(HybridrecError):
    """The catalog cannot give labels the way ``features.label_source`` asks."""


@dataclass(frozen=True)
class LabelMap:
    """Classes (index = label id) and how they were chosen."""

    classes: list[str]
    min_examples_per_class: int
    counted_on: str
    # Examples per category as counted (qualifying or not): tells why a class is missing.
    examples: dict[str, int] = field(default_factory=dict)
    # features.label_source the classes were made from.
    source: str = CATEGORY

    @property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    @property
    def excluded(self) -> dict[str, int]:
        kept = set(self.classes)
        return {c: n for c, n in sorted(self.examples.items()) if c not in kept}

    def label_of(self, category: str | None) -> int:
        return self.index.get(category, UNLABELED) if category is not None else UNLABELED

    def to_json(self) -> dict[str, Any]:
        """labels.json. For ``category`` exactly the keys written before label sources existed
        (``source_column: category`` says where labels came from); a derived source adds
        ``label_source`` and the ``rule``, with ``source_column`` naming the column it reads."""
        out: dict[str, Any] = {
            "classes": self.classes,
            "num_classes": len(self.classes),
            "unlabeled": UNLABELED,
            "source_column": "category" if self.source == CATEGORY else "title",
            "min_examples_per_class": self.min_examples_per_class,
            "counted_on": self.counted_on,
            "examples_per_class": {c: self.examples.get(c, 0) for c in self.classes},
            "excluded_classes": self.excluded,
        }
        if self.source == TITLE_KEYWORD:
            out.update(label_source=TITLE_KEYWORD, rule=TITLE_KEYWORD_RULE)
        return out


def label_map_from_counts(
    examples: dict[str, int], min_examples_per_class: int, counted_on: str, source: str = CATEGORY
) -> LabelMap:
    """The label map from per-category counts (pure Python; the rule in one place)."""
    classes = sorted(c for c, n in examples.items() if n >= min_examples_per_class)
    return LabelMap(classes, min_examples_per_class, counted_on, dict(sorted(examples.items())), source)


def catalog_counts(products: DataFrame, column: str = "category") -> dict[tuple[str | None, bool], int]:
    """{(class name, has_photo): products} in one aggregation; one row per class reaches the driver.

    ``column`` holds the class name (``category``, or ``title_keyword`` after
    ``add_title_keywords``). The same numbers give the label map, the product count and the photo
    count, so the job reads the table once for all three.
    """
    rows = (
        products.groupBy(F.col(column).alias("_class"), F.col("image_path").isNotNull().alias("has_photo"))
        .count()
        .collect()
    )
    return {(r["_class"], bool(r["has_photo"])): int(r["count"]) for r in rows}


def build_label_map(
    counts: dict[tuple[str | None, bool], int], min_examples_per_class: int, source: str = CATEGORY
) -> LabelMap:
    """Classes from ``catalog_counts``: counted on products with a photo, or on all products when
    the catalog has no photo at all."""
    has_photos = any(n for (_, photo), n in counts.items() if photo)
    examples: dict[str, int] = {}
    for (category, photo), n in counts.items():
        if category is not None and (photo or not has_photos):
            examples[category] = examples.get(category, 0) + n
    return label_map_from_counts(
        examples, min_examples_per_class, COUNTED_ON_IMAGES if has_photos else COUNTED_ON_ALL, source
    )


def add_labels(products: DataFrame, label_map: LabelMap, column: str = "category") -> DataFrame:
    """``products`` plus ``label`` (int; -1 for class names outside the map), via a broadcast join
    on ``column`` (the category, or the derived title keyword)."""
    spark = products.sparkSession
    schema = T.StructType(
        [T.StructField("_category", T.StringType(), False), T.StructField("_label", T.IntegerType(), False)]
    )
    mapping = spark.createDataFrame([(c, i) for i, c in enumerate(label_map.classes)], schema)
    return (
        products.join(F.broadcast(mapping), products[column] == mapping["_category"], "left")
        .withColumn("label", F.coalesce(F.col("_label"), F.lit(UNLABELED)).cast("int"))
        .drop("_category", "_label")
    )


# ---- label sources -------------------------------------------------------------------------------


def check_label_source(cfg: Config) -> None:
    """Fail before any Spark work when the configured label source cannot exist in this catalog.

    ``category`` needs a category column (the ``retail_products`` layout always maps one);
    ``title_keyword`` needs a title column. Without this check a catalog without categories would
    preprocess into features with no class at all and fail only at training.
    """
    source = cfg.features.label_source
    cat = cfg.catalog
    if source == CATEGORY and cat.layout == "generic" and cat.columns.category is None:
        raise LabelSourceError(
            "features.label_source is category but catalog.columns.category is null, so no product "
            "has a label: set features.label_source to title_keyword (labels from the titles) or map "
            "catalog.columns.category to the source's category column"
        )
    if source == TITLE_KEYWORD and cat.layout == "generic" and cat.columns.title is None:
        raise LabelSourceError(
            "features.label_source is title_keyword but catalog.columns.title is null: map "
            "catalog.columns.title, or use features.label_source: category"
        )


def is_candidate(token: str) -> bool:
    """A token that can name a kind of product: >= 3 characters and not a number (pure twin of
    ``_candidate``)."""
    return len(token) >= MIN_KEYWORD_CHARS and not token.isdecimal()


def modifiers_from_counts(first: Mapping[str, int], last: Mapping[str, int]) -> set[str]:
    """Tokens that start more titles than they end (counts over candidate tokens only)."""
    return {t for t, n in first.items() if n > last.get(t, 0)}


def head_keyword(tokens: Sequence[str], modifiers: set[str]) -> str | None:
    """The last candidate token that is not a modifier; None when there is none."""
    for token in reversed([t for t in tokens if is_candidate(t)]):
        if token not in modifiers:
            return token
    return None


def title_keywords_python(titles: Sequence[str | None]) -> list[str | None]:
    """The whole rule on a list of titles in plain Python (tests, small catalogs)."""
    tokenized = [[t for t in tokenize(normalize_text(title)) if is_candidate(t)] for title in titles]
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for tokens in tokenized:
        if tokens:
            first[tokens[0]] = first.get(tokens[0], 0) + 1
            last[tokens[-1]] = last.get(tokens[-1], 0) + 1
    modifiers = modifiers_from_counts(first, last)
    return [head_keyword(tokens, modifiers) for tokens in tokenized]


def _candidate(token: Column) -> Column:
    """Spark twin of ``is_candidate``: ``\\p{Nd}`` is Python's ``str.isdecimal`` (Unicode Nd)."""
    return (F.length(token) >= MIN_KEYWORD_CHARS) & ~token.rlike(r"^\p{Nd}+$")


def add_title_keywords(products: DataFrame) -> DataFrame:
    """``products`` (with product_id, title) plus ``title_keyword`` (string, null when none).

    All in Spark: candidate tokens per title (the text features' own tokenizer, so "T-LIGHT" is
    t + light in both), first/last counts per token in one aggregation, the modifiers joined away
    from the exploded tokens, and the highest remaining position per product. Nothing that grows
    with the catalog reaches the driver.
    """
    tokens = products.select(
        "product_id",
        F.filter(tokens_column(F.col("title"), F.lit(None).cast("string")), _candidate).alias("_tok"),
    ).filter(F.size("_tok") > 0)
    ends = tokens.select(
        F.explode(
            F.array(
                F.struct(F.col("_tok")[0].alias("token"), F.lit(1).alias("first"), F.lit(0).alias("last")),
                F.struct(F.element_at("_tok", -1).alias("token"), F.lit(0).alias("first"), F.lit(1).alias("last")),
            )
        ).alias("e")
    ).select("e.*")
    modifiers = (
        ends.groupBy("token")
        .agg(F.sum("first").alias("first"), F.sum("last").alias("last"))
        .filter(F.col("first") > F.col("last"))
        .select("token")
    )
    heads = (
        tokens.select("product_id", F.posexplode("_tok").alias("pos", "token"))
        .join(modifiers, "token", "left_anti")
        .groupBy("product_id")
        .agg(F.max_by("token", "pos").alias("title_keyword"))
    )
    return products.join(heads, "product_id", "left")


def with_label_names(products: DataFrame, source: str) -> tuple[DataFrame, str]:
    """``products`` with the column of class names for ``source`` (derived when needed), and its name."""
    if source == TITLE_KEYWORD:
        return add_title_keywords(products), LABEL_COLUMN[TITLE_KEYWORD]
    return products, LABEL_COLUMN[CATEGORY]


# ---- attribute heads -----------------------------------------------------------------------------
#
# ``features.label_heads`` names catalog attributes (kept by ``catalog.attributes`` in the
# products' ``attributes`` map: fashion's gender, baseColour, usage, season, masterCategory,
# subCategory) that the content models learn beside the category, one softmax head each on the
# shared embedding layer, so the product vector carries colour and gender, not only the type. Each
# head has its own classes: values of at least ``min_examples_per_class`` products, counted on
# *all* products (a head is masked per row, so classes without photos only cost the image model a
# few unused logits). A product's ``head_labels`` is one int per head in ``label_heads`` order,
# -1 where it has no value or a value outside the head's classes.
#
# The head named ``category`` is the catalog's category itself, counted on all products: the
# category label of the image and fusion models counts only products with a photo (see the top of
# this module), so in a catalog where most products have none (fashion: 77 %) types like sarees,
# bras or earrings never become classes; as a head the text model still learns them.

HEAD_LABELS = "head_labels"
CATEGORY_HEAD = "category"
COUNTED_ON_ATTRIBUTE = "all products with a value of the attribute"


def check_label_heads(cfg: Config) -> None:
    """Fail before any Spark work when a head names an attribute the catalog does not keep."""
    heads = cfg.features.label_heads
    if len(set(heads)) != len(heads):
        raise LabelSourceError(f"features.label_heads lists an attribute twice: {heads}")
    kept = set(cfg.catalog.attributes)
    missing = [h for h in heads if h not in kept and h != CATEGORY_HEAD]
    if missing and cfg.catalog.layout == "generic":
        raise LabelSourceError(
            f"features.label_heads names {', '.join(missing)} but catalog.attributes does not keep "
            f"{'it' if len(missing) == 1 else 'them'} ({', '.join(sorted(kept)) or 'none'}): add the "
            "attribute to catalog.attributes (and re-run ingest) or remove it from features.label_heads"
        )
    if CATEGORY_HEAD in heads and cfg.features.label_source != CATEGORY:
        raise LabelSourceError(
            f"features.label_heads names {CATEGORY_HEAD} but features.label_source is "
            f"{cfg.features.label_source}: the catalog has no category to learn; remove {CATEGORY_HEAD} from "
            "features.label_heads"
        )


def head_value(head: str) -> Column:
    """The column a head learns: the category for ``category``, else the attribute's value."""
    return F.col("category") if head == CATEGORY_HEAD else F.col("attributes").getItem(head)


def attribute_counts(products: DataFrame, heads: Sequence[str]) -> dict[str, dict[str, int]]:
    """{head: {value: products}} in one aggregation over the ``attributes`` map."""
    if not heads:
        return {}
    pairs = F.array(*[F.struct(F.lit(h).alias("head"), head_value(h).alias("value")) for h in heads])
    rows = (
        products.select(F.explode(pairs).alias("p"))
        .filter(F.col("p.value").isNotNull())
        .groupBy("p.head", "p.value")
        .count()
        .collect()
    )
    out: dict[str, dict[str, int]] = {h: {} for h in heads}
    for r in rows:
        out[r["head"]][r["value"]] = int(r["count"])
    return out


def build_head_maps(counts: Mapping[str, Mapping[str, int]], min_examples_per_class: int) -> dict[str, LabelMap]:
    """One label map per head, in the order of ``counts``; a head needs at least two classes."""
    maps: dict[str, LabelMap] = {}
    for head, examples in counts.items():
        lm = label_map_from_counts(dict(examples), min_examples_per_class, COUNTED_ON_ATTRIBUTE, source=head)
        if len(lm.classes) < 2:
            raise LabelSourceError(
                f"features.label_heads: attribute {head} has {len(lm.classes)} value(s) with at least "
                f"{min_examples_per_class} products ({sum(examples.values())} products carry it): a head "
                "needs two classes; remove it from features.label_heads or lower features.min_examples_per_class"
            )
        maps[head] = lm
    return maps


def head_json(head: str, lm: LabelMap) -> dict[str, Any]:
    """One head's entry in labels.json ``heads``."""
    return {
        "attribute": head,
        "classes": lm.classes,
        "num_classes": len(lm.classes),
        "counted_on": lm.counted_on,
        "min_examples_per_class": lm.min_examples_per_class,
        "examples_per_class": {c: lm.examples.get(c, 0) for c in lm.classes},
        "excluded_classes": lm.excluded,
    }


def head_label(value: str | None, lm: LabelMap) -> int:
    """Pure twin of one element of ``add_head_labels``."""
    return lm.label_of(value)


def add_head_labels(products: DataFrame, heads: Mapping[str, LabelMap]) -> DataFrame:
    """``products`` (with ``attributes``) plus ``head_labels`` array<int>, one per head in order.

    A value maps through a literal map per head (a head has tens of classes, not thousands), so no
    join runs; a missing attribute or a value outside the head's classes is -1.
    """
    items = []
    for head, lm in heads.items():
        value = head_value(head)
        lookup = F.create_map(*[x for i, c in enumerate(lm.classes) for x in (F.lit(c), F.lit(i))])
        items.append(
            F.when(value.isNotNull(), F.coalesce(F.try_element_at(lookup, value), F.lit(UNLABELED)))
            .otherwise(F.lit(UNLABELED))
            .cast("int")
        )
    if not items:
        return products
    return products.withColumn(HEAD_LABELS, F.array(*items))
