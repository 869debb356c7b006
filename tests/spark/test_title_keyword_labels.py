"""features.label_source: title_keyword in Spark: the same keywords as the pure rule, and a
preprocess run of a catalog without categories that labels products from their titles."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_preprocess import write_products

from conftest import REPO_ROOT, make_config
from hybridrec.features import preprocess as pp
from hybridrec.features.labels import TITLE_KEYWORD, LabelSourceError, add_title_keywords, title_keywords_python

RETAIL_PRODUCTS = (REPO_ROOT.parent / "shared" / "data" / "online-retail" / "products.csv").resolve()
TITLES = [
    "PINK HEART T-LIGHT HOLDER",
    "PINK FLOWER MUG",
    "WHITE HANGING HEART T-LIGHT HOLDER",
    "KIDS RAIN MAC PINK",
    "SET OF 3 CAKE TINS",
    "SET OF 6 MUG",
    "12 PENCILS",
    "PINK",
    None,
    "Crème brûlée DISH",
    "&amp; GIFT <b>BOX</b>",
]


def _keywords(spark, titles: list[str | None]) -> list[str | None]:
    df = spark.createDataFrame([(f"p{i:05d}", t) for i, t in enumerate(titles)], "product_id string, title string")
    got = {r["product_id"]: r["title_keyword"] for r in add_title_keywords(df).collect()}
    return [got[f"p{i:05d}"] for i in range(len(titles))]


def test_spark_keywords_equal_the_pure_rule(spark) -> None:
    assert _keywords(spark, TITLES) == title_keywords_python(TITLES)
    assert _keywords(spark, TITLES)[:6] == ["holder", "mug", "holder", "mac", "tins", "mug"]


def test_spark_keywords_equal_the_pure_rule_on_online_retail(spark) -> None:
    if not RETAIL_PRODUCTS.is_file():
        pytest.skip(f"Online Retail not found at {RETAIL_PRODUCTS}")
    with RETAIL_PRODUCTS.open(encoding="utf-8") as f:
        titles = [row["title"] for row in csv.DictReader(f)]
    assert _keywords(spark, titles) == title_keywords_python(titles)


def _products(n: int) -> list[dict]:
    kinds = ["HOLDER", "MUG", "BAG"]
    return [
        {
            "product_id": f"r{i:03d}",
            "title": f"{'BLUE' if i % 2 else 'PINK'} {'LARGE ' if i % 4 == 0 else ''}FLOWER {kinds[i % 3]}"
            + (" BLUE" if i % 5 == 0 else ""),
            "description": None,
            "category": None,
            "image_path": None,
        }
        for i in range(n)
    ]


def test_preprocess_labels_a_catalog_without_categories_from_titles(spark, tmp_path) -> None:
    cfg = make_config(
        tmp_path,
        features={"label_source": TITLE_KEYWORD, "min_examples_per_class": 5, "max_len": 8, "text_rows_per_group": 16},
        catalog={"columns": {"category": None, "description": None}},
    )
    products = _products(30)
    write_products(spark, cfg, products)
    result = pp.preprocess(spark, cfg)
    root = Path(cfg.paths.features)
    labels = json.loads((root / "labels.json").read_text())
    assert labels["label_source"] == TITLE_KEYWORD and labels["source_column"] == "title"
    # "blue" ends 6 titles but starts 15: a modifier, so holder / mug / bag are the heads.
    assert labels["classes"] == ["bag", "holder", "mug"]
    assert result.manifest["labels"]["source"] == TITLE_KEYWORD
    text = spark.read.parquet(str(root / "text")).select("product_id", "label").collect()
    expected = {
        p["product_id"]: labels["classes"].index(p["title"].split()[-2 if p["title"].endswith("BLUE") else -1].lower())
        for p in products
    }
    assert {r["product_id"]: r["label"] for r in text} == expected
    assert result.counts["text_labelled"] == len(products) and result.counts["classes"] == 3


def test_preprocess_without_categories_or_label_source_fails_early(spark, tmp_path) -> None:
    cfg = make_config(tmp_path, catalog={"columns": {"category": None}})
    with pytest.raises(LabelSourceError, match="set features.label_source to title_keyword"):
        pp.preprocess(spark, cfg)
    assert not Path(cfg.paths.features).exists()
