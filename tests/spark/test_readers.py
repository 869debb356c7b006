"""Catalog and interaction readers on small fixture files written here: generic CSV / Parquet /
JSON Lines, the retail-products layout, a header-less tab-separated rating log, timestamp formats,
clear errors for a missing file or column, and the whole fashion styles.csv read row for row."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality
from PIL import Image
from pyspark.sql import functions as F

from conftest import REPO_ROOT
from hybridrec.catalog import sources, validation
from hybridrec.config import (
    CatalogColumns,
    CatalogConfig,
    InteractionColumns,
    InteractionsConfig,
    load_config,
)
from hybridrec.errors import MissingInputError

PRODUCT_FIELDS = ["product_id", "title", "description", "category", "image_ref"]


def _products(spark, cat: CatalogConfig):
    raw = sources.read_catalog(spark, sources.catalog_settings(cat))
    return raw, validation.standardize_products(raw.df, raw.columns, sources.catalog_settings(cat))


def test_generic_csv_with_separator_quotes_and_line_breaks(spark, tmp_path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        "sku;name;text;kind;photo\n"
        '1;"Tempo 3.5"" Short";"two\nlines; and a separator";shorts;1.jpg\n'
        "2;  Plain tee  ;;tees;\n",
        encoding="utf-8",
    )
    cat = CatalogConfig(
        path=str(path),
        separator=";",
        columns=CatalogColumns(id="sku", title="name", description="text", category="kind", image="photo"),
    )
    raw, std = _products(spark, cat)
    assert raw.columns == ("sku", "name", "text", "kind", "photo")
    assert raw.files == (str(path),)
    expected = spark.createDataFrame(
        [
            ("1", 'Tempo 3.5" Short', "two\nlines; and a separator", "shorts", "1.jpg"),
            ("2", "Plain tee", None, "tees", None),
        ],
        "product_id string, title string, description string, category string, image_ref string",
    )
    assert_df_equality(std.select(PRODUCT_FIELDS), expected, ignore_row_order=True, ignore_nullable=True)
    corrupt = [r["_corrupt_record"] for r in std.select("product_id", "_corrupt_record").collect()]
    assert corrupt == [None, None]
    assert {r["_source_file"] for r in std.select("_source_file").collect()} == {str(path)}
    # The raw map keeps the row as read (untrimmed), for the quarantine.
    raw2 = std.filter("product_id = '2'").select("raw").first()["raw"]
    assert raw2["name"] == "  Plain tee  " and raw2["text"] is None


def test_generic_parquet_keeps_types_and_maps_attributes(spark, tmp_path) -> None:
    path = tmp_path / "catalog.parquet"
    pd.DataFrame(
        {
            "id": [10, 11],
            "title": ["Red mug", "Cup"],
            "category": ["mugs", None],
            "price": [9.5, 3.0],
            "listed": pd.to_datetime(["2024-03-01 10:00", "2024-03-02 00:00"]),
        }
    ).to_parquet(path, coerce_timestamps="us")  # Spark does not read pandas' nanoseconds
    cat = CatalogConfig(
        path=str(path),
        file_format="parquet",
        columns=CatalogColumns(id="id", title="title", description=None, category="category", listed_at="listed"),
        attributes=["price"],
    )
    _, std = _products(spark, cat)
    rows = {r["product_id"]: r for r in std.collect()}
    assert set(rows) == {"10", "11"}
    assert rows["10"]["attributes"] == {"price": "9.5"} and rows["11"]["category"] is None
    assert rows["10"]["listed_at"] == dt.datetime(2024, 3, 1, 10, 0)
    assert rows["10"]["raw"]["id"] == "10"


def test_generic_json_lines_flags_a_broken_line(spark, tmp_path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_text(
        json.dumps({"id": "a1", "title": "Lamp", "description": "Warm light", "category": "home", "image": "a1.jpg"})
        + "\n{not json\n"
        + json.dumps({"id": 7, "title": "Desk", "category": "home"})
        + "\n",
        encoding="utf-8",
    )
    cat = CatalogConfig(path=str(path), file_format="jsonl", columns=CatalogColumns(image="image"))
    _, std = _products(spark, cat)
    rows = std.select(*PRODUCT_FIELDS, "_corrupt_record").collect()
    good = {r["product_id"]: r for r in rows if r["_corrupt_record"] is None}
    assert set(good) == {"a1", "7"} and good["a1"]["image_ref"] == "a1.jpg"
    assert [r["_corrupt_record"] for r in rows if r["_corrupt_record"]] == ["{not json"]


def test_retail_products_layout(spark, tmp_path) -> None:
    """Kaggle retail-products-classification: train.csv (ImgId, title, description, categories)."""
    images = tmp_path / "train"
    images.mkdir()
    rows = [
        ("B00A1", "Nike running shoe", "Lightweight, breathable", "Shoes"),
        ("B00A2", "Coffee mug", 'Holds 12 oz, "dishwasher safe"', "Kitchen"),
    ]
    for img_id, *_ in rows:
        Image.new("RGB", (8, 8), (200, 10, 10)).save(images / f"{img_id}.jpg")
    with open(tmp_path / "train.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ImgId", "title", "description", "categories"])
        w.writerows(rows)
    cat = CatalogConfig(layout="retail_products", path=str(tmp_path / "train.csv"), image_root=str(images))
    eff = sources.catalog_settings(cat)
    assert eff.columns.id == "ImgId" and eff.image_pattern == "{id}.jpg"
    _, std = _products(spark, cat)
    expected = spark.createDataFrame(
        [(i, t, d, c, f"{i}.jpg") for i, t, d, c in rows],
        "product_id string, title string, description string, category string, image_ref string",
    )
    assert_df_equality(std.select(PRODUCT_FIELDS), expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize("named", [True, False], ids=["column_names", "positional"])
def test_tab_separated_ratings_without_header(spark, tmp_path, named: bool) -> None:
    path = tmp_path / "ratings.tsv"
    path.write_text("u1\tp1\t4.5\t1700000000\nu2\tp2\t3\t1700000060\n", encoding="utf-8")
    names = ["user", "item", "rating", "ts"]
    cols = dict(zip(names, names if named else ["_c0", "_c1", "_c2", "_c3"]))
    inter = InteractionsConfig(
        path=str(path),
        separator="\t",
        header=False,
        column_names=names if named else None,
        columns=InteractionColumns(
            user=cols["user"], item=cols["item"], event=None, rating=cols["rating"], timestamp=cols["ts"]
        ),
    )
    raw = sources.read_interactions(spark, inter)
    std = validation.standardize_interactions(raw.df, raw.columns, inter)
    expected = spark.createDataFrame(
        [
            ("u1", "p1", dt.datetime(2023, 11, 14, 22, 13, 20), "rating", 4.5),
            ("u2", "p2", dt.datetime(2023, 11, 14, 22, 14, 20), "rating", 3.0),
        ],
        "user_id string, product_id string, ts timestamp, event string, rating double",
    )
    got = std.select("user_id", "product_id", "ts", "event", "rating")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_interaction_timestamps_iso_epoch_and_format(spark, tmp_path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,product_id,event,ts\n"
        "u1,p1,VIEW,2024-01-02T03:04:05Z\n"
        "u1,p2,cart,2024-01-02 03:04:05\n"
        "u1,p3,purchase,1704164645\n"
        "u1,p4,view,yesterday\n",
        encoding="utf-8",
    )
    inter = InteractionsConfig(path=str(path))
    raw = sources.read_interactions(spark, inter)
    got = {
        r["product_id"]: (r["ts"], r["event"])
        for r in validation.standardize_interactions(raw.df, raw.columns, inter).collect()
    }
    t = dt.datetime(2024, 1, 2, 3, 4, 5)
    assert got == {"p1": (t, "view"), "p2": (t, "cart"), "p3": (t, "purchase"), "p4": (None, "view")}

    path2 = tmp_path / "events_eu.csv"
    path2.write_text("user_id,product_id,event,ts\nu1,p1,view,02/01/2024 03:04\n", encoding="utf-8")
    inter2 = InteractionsConfig(path=str(path2), timestamp_format="dd/MM/yyyy HH:mm")
    raw2 = sources.read_interactions(spark, inter2)
    row = validation.standardize_interactions(raw2.df, raw2.columns, inter2).first()
    assert row["ts"] == dt.datetime(2024, 1, 2, 3, 4)


def test_parquet_interactions_with_typed_columns(spark, tmp_path) -> None:
    """Parquet keeps its types: integer ids become text, a timestamp column is used as is."""
    path = tmp_path / "events.parquet"
    pd.DataFrame(
        {
            "uid": [1, 2],
            "item": [10, 11],
            "kind": ["view", "purchase"],
            "at": pd.to_datetime(["2024-01-02 03:04:05", "2024-01-03 00:00:00"]),
        }
    ).to_parquet(path, coerce_timestamps="us")
    inter = InteractionsConfig(
        path=str(path),
        file_format="parquet",
        columns=InteractionColumns(user="uid", item="item", event="kind", timestamp="at"),
    )
    raw = sources.read_interactions(spark, inter)
    got = (
        validation.standardize_interactions(raw.df, raw.columns, inter)
        .select("user_id", "product_id", "ts", "event", "raw")
        .collect()
    )
    assert sorted((r["user_id"], r["product_id"], r["ts"], r["event"]) for r in got) == [
        ("1", "10", dt.datetime(2024, 1, 2, 3, 4, 5), "view"),
        ("2", "11", dt.datetime(2024, 1, 3), "purchase"),
    ]
    assert sorted(r["raw"]["uid"] for r in got) == ["1", "2"]


def test_missing_file_names_the_key_and_the_path(spark, tmp_path) -> None:
    missing = tmp_path / "nope" / "products.csv"
    with pytest.raises(MissingInputError, match=r"catalog\.path: .*nope/products\.csv does not exist"):
        sources.read_catalog(spark, CatalogConfig(path=str(missing)))
    with pytest.raises(MissingInputError, match=r"interactions\.path: .*events\.csv"):
        sources.read_interactions(spark, InteractionsConfig(path=str(tmp_path / "events.csv")))


def test_unmapped_column_names_the_key_and_the_columns(spark, tmp_path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("id,name\n1,Mug\n", encoding="utf-8")
    with pytest.raises(sources.InputSchemaError, match=r"catalog\.columns\.title is 'title'.*id, name"):
        sources.read_catalog(spark, CatalogConfig(path=str(path)))
    with pytest.raises(sources.InputSchemaError, match=r"catalog\.attributes\[0\] is 'colour'"):
        sources.read_catalog(
            spark,
            CatalogConfig(
                path=str(path),
                attributes=["colour"],
                columns=CatalogColumns(title="name", description=None, category=None),
            ),
        )
    tsv = tmp_path / "r.tsv"
    tsv.write_text("u1\tp1\t4\n", encoding="utf-8")
    with pytest.raises(sources.InputSchemaError, match=r"column_names names 4 columns .* has 3"):
        sources.read_interactions(
            spark,
            InteractionsConfig(
                path=str(tsv),
                separator="\t",
                header=False,
                column_names=["u", "i", "r", "t"],
                columns=InteractionColumns(user="u", item="i", event=None, rating="r", timestamp="t"),
            ),
        )


def test_whole_fashion_styles_csv_reads_every_row(spark, fashion_dir: Path) -> None:
    """42,147 rows, none malformed: quoted titles with doubled quotes (3.5"") parse, ids unique."""
    conf = REPO_ROOT / "conf" / "fashion.yaml"
    cat = load_config(conf).catalog
    assert Path(cat.path) == fashion_dir / "styles.csv"
    assert Path(cat.image_root) == fashion_dir / "images"
    raw = sources.read_catalog(spark, sources.catalog_settings(cat))
    stats = raw.df.agg(
        F.count(F.lit(1)).alias("n"),
        F.count_distinct("id").alias("ids"),
        F.sum(F.col("_corrupt_record").isNotNull().cast("int")).alias("bad"),
        F.sum(F.col("productDisplayName").isNull().cast("int")).alias("untitled"),
    ).first()
    with open(fashion_dir / "styles.csv", newline="", encoding="utf-8") as fh:
        python_rows = sum(1 for _ in csv.DictReader(fh))
    got = (stats["n"], stats["ids"], stats["bad"], stats["untitled"])
    assert got == (python_rows, python_rows, 0, 0)
    assert python_rows == 42147
    quoted = raw.df.filter("id = '7491'").first()
    assert quoted["productDisplayName"] == "Nike Women's EM Tempo 3.5\" Pink Short"
    assert quoted["usage"] == "Sports"
