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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

UNLABELED = -1
COUNTED_ON_IMAGES = "products with a photo"
COUNTED_ON_ALL = "all products (the catalog has no photos)"


@dataclass(frozen=True)
class LabelMap:
    """Classes (index = label id) and how they were chosen."""

    classes: list[str]
    min_examples_per_class: int
    counted_on: str
    # Examples per category as counted (qualifying or not): tells why a class is missing.
    examples: dict[str, int] = field(default_factory=dict)

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
        return {
            "classes": self.classes,
            "num_classes": len(self.classes),
            "unlabeled": UNLABELED,
            "source_column": "category",
            "min_examples_per_class": self.min_examples_per_class,
            "counted_on": self.counted_on,
            "examples_per_class": {c: self.examples.get(c, 0) for c in self.classes},
            "excluded_classes": self.excluded,
        }


def label_map_from_counts(
    examples: dict[str, int], min_examples_per_class: int, counted_on: str
) -> LabelMap:
    """The label map from per-category counts (pure Python; the rule in one place)."""
    classes = sorted(c for c, n in examples.items() if n >= min_examples_per_class)
    return LabelMap(classes, min_examples_per_class, counted_on, dict(sorted(examples.items())))


def catalog_counts(products: DataFrame) -> dict[tuple[str | None, bool], int]:
    """{(category, has_photo): products} in one aggregation; one row per category reaches the driver.

    The same numbers give the label map, the product count and the photo count, so the job reads
    the table once for all three.
    """
    rows = (
        products.groupBy("category", F.col("image_path").isNotNull().alias("has_photo"))
        .count()
        .collect()
    )
    return {(r["category"], bool(r["has_photo"])): int(r["count"]) for r in rows}


def build_label_map(
    counts: dict[tuple[str | None, bool], int], min_examples_per_class: int
) -> LabelMap:
    """Classes from ``catalog_counts``: counted on products with a photo, or on all products when
    the catalog has no photo at all."""
    has_photos = any(n for (_, photo), n in counts.items() if photo)
    examples: dict[str, int] = {}
    for (category, photo), n in counts.items():
        if category is not None and (photo or not has_photos):
            examples[category] = examples.get(category, 0) + n
    return label_map_from_counts(
        examples, min_examples_per_class, COUNTED_ON_IMAGES if has_photos else COUNTED_ON_ALL
    )


def add_labels(products: DataFrame, label_map: LabelMap) -> DataFrame:
    """``products`` plus ``label`` (int; -1 for categories outside the map), via a broadcast join."""
    spark = products.sparkSession
    schema = T.StructType(
        [T.StructField("_category", T.StringType(), False), T.StructField("_label", T.IntegerType(), False)]
    )
    mapping = spark.createDataFrame([(c, i) for i, c in enumerate(label_map.classes)], schema)
    return (
        products.join(F.broadcast(mapping), products["category"] == mapping["_category"], "left")
        .withColumn("label", F.coalesce(F.col("_label"), F.lit(UNLABELED)).cast("int"))
        .drop("_category", "_label")
    )
