"""Preprocessing on a small bronze.products table: shapes, dtypes, labels, splits, failures recorded,
stable across runs, atomic replacement, and the job entry point."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from chispa import assert_df_equality
from PIL import Image
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from conftest import REPO_ROOT, TEST_SPARK, make_config
from hybridrec.config import Config, load_config
from hybridrec.errors import MissingInputError
from hybridrec.features import preprocess as pp
from hybridrec.features.images import load_image
from hybridrec.features.text import text_tokens
from hybridrec.job import run_job
from hybridrec.splits import split_of
from hybridrec.tables import PRODUCTS, RUNS, read_table, table_ref, write_table

SIZE = 16
MAX_LEN = 8
FEATURES = {
    "image_size": SIZE,
    "max_len": MAX_LEN,
    "vocab_min_count": 2,
    "vocab_max_size": 40,
    "min_examples_per_class": 5,
    "image_rows_per_group": 8,
    "text_rows_per_group": 16,
}
WORDS = {
    "shirts": ["shirt", "cotton", "collar", "slim", "blue"],
    "shoes": ["shoe", "leather", "sole", "running", "blue"],
    "rare": ["scarf", "silk"],
    None: ["gift", "card"],
}
COLOURS = [(200, 30, 30), (30, 160, 40), (20, 40, 200), (240, 200, 0)]


def _photo(path: Path, kind: int, colour: tuple[int, int, int]) -> None:
    """A photo in one of several modes and shapes, as a real catalog mixes them."""
    if kind == 0:
        Image.new("RGB", (40, 24), colour).save(path.with_suffix(".jpg"), "JPEG")
    elif kind == 1:
        Image.new("RGBA", (20, 20), colour + (255,)).save(path.with_suffix(".png"))
    elif kind == 2:
        Image.new("L", (24, 36), colour[0]).save(path.with_suffix(".png"))
    elif kind == 3:
        Image.new("RGB", (30, 30), colour).convert("P").save(path.with_suffix(".png"))
    else:
        Image.new("RGB", (32, 32), colour).convert("CMYK").save(path.with_suffix(".jpg"), "JPEG")


def _photo_path(path: Path, kind: int) -> Path:
    return path.with_suffix(".jpg" if kind in (0, 4) else ".png")


def build_catalog(root: Path) -> list[dict]:
    """Products as bronze.products rows (dicts), with their photos written under ``root``."""
    rng = np.random.default_rng(7)
    root.mkdir(parents=True, exist_ok=True)
    plan = (
        [("shirts", True)] * 24
        + [("shoes", True)] * 12
        + [("rare", True)] * 3
        + [("shirts", False)] * 8
        + [(None, True)]
    )
    products = []
    for i, (category, has_photo) in enumerate(plan):
        pid = f"p{i:03d}"
        words = list(rng.choice(WORDS[category], size=3))
        image_path = None
        if has_photo:
            kind = i % 5
            _photo(root / pid, kind, COLOURS[i % len(COLOURS)])
            image_path = str(_photo_path(root / pid, kind))
        products.append(
            {
                "product_id": pid,
                "title": " ".join(words).title(),
                "description": None if i % 3 else f"<p>Nice &amp; {words[0]}</p>",
                "category": category,
                "image_path": image_path,
            }
        )
    # A photo that opens but is truncated (passes a header check at ingest, fails to decode here).
    noisy = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    noisy.save(root / "broken.jpg", "JPEG")
    data = (root / "broken.jpg").read_bytes()
    (root / "broken.jpg").write_bytes(data[: len(data) // 2])
    products.append(
        {
            "product_id": "p900",
            "title": "Broken shirt photo",
            "description": None,
            "category": "shirts",
            "image_path": str(root / "broken.jpg"),
        }
    )
    # No title, HTML-only description.
    products.append(
        {
            "product_id": "p901",
            "title": None,
            "description": "<b>Blue</b> shirt",
            "category": "shirts",
            "image_path": None,
        }
    )
    return products


def write_products(spark: SparkSession, cfg: Config, products: list[dict]) -> None:
    now = dt.datetime(2026, 1, 1)
    rows = [
        (
            p["product_id"],
            p["title"],
            p["description"],
            p["category"],
            p["image_path"],
            {},
            None,
            f"h{p['product_id']}",
            "catalog.csv",
            now,
        )
        for p in products
    ]
    write_table(spark.createDataFrame(rows, PRODUCTS.schema), table_ref(cfg, PRODUCTS), mode="overwrite")


def _job_config(base: Path, features_dir: Path) -> Path:
    conf = base / f"{features_dir.name}.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "spark": dict(TEST_SPARK),
                "paths": {"warehouse": str(base / "warehouse"), "features": str(features_dir)},
                "features": FEATURES,
            }
        ),
        encoding="utf-8",
    )
    return conf


def _run_job(conf: Path) -> int:
    spec = importlib.util.spec_from_file_location("preprocess_job", REPO_ROOT / "jobs" / "preprocess.py")
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    return run_job("preprocess", job.main, ["--config", str(conf)], job.job_parser())


@pytest.fixture(scope="module")
def catalog(spark, tmp_path_factory) -> tuple[Config, list[dict], pp.PreprocessResult]:
    """The catalog preprocessed once, through the job entry point (jobs/preprocess.py)."""
    base = tmp_path_factory.mktemp("preprocess")
    conf = _job_config(base, base / "features")
    cfg = load_config(conf)
    products = build_catalog(base / "raw" / "images")
    write_products(spark, cfg, products)
    assert _run_job(conf) == 0
    runs = read_table(spark, table_ref(cfg, RUNS)).where(F.col("job") == "preprocess").collect()
    assert len(runs) == 1 and runs[0].status == "succeeded"
    manifest = pp.read_manifest(cfg)
    return cfg, products, pp.PreprocessResult(cfg.paths.features, manifest, dict(runs[0].counts))


def _images(spark, cfg):
    return spark.read.parquet(str(Path(cfg.paths.features) / "images"))


def _text(spark, cfg):
    return spark.read.parquet(str(Path(cfg.paths.features) / "text"))


def test_image_features_shapes_dtypes_and_content(spark, catalog) -> None:
    cfg, products, _ = catalog
    df = _images(spark, cfg)
    assert dict(df.dtypes) == {"product_id": "string", "label": "int", "image": "binary", "split": "string"}
    rows = {r.product_id: r for r in df.collect()}
    with_photo = {p["product_id"]: p for p in products if p["image_path"] and p["product_id"] != "p900"}
    assert set(rows) == set(with_photo), "every decodable photo has exactly one row"
    assert cfg.features.image_fit == "stretch"
    for pid, row in rows.items():
        arr = np.frombuffer(row.image, dtype=np.uint8).reshape(SIZE, SIZE, 3)
        np.testing.assert_array_equal(arr, load_image(with_photo[pid]["image_path"], SIZE, fit="stretch"))
        # the photos are one colour each, 40x24 or 24x36 among them: stretched, none shows white bars
        assert not (arr.min(axis=-1) == 255).any(), pid


def test_labels_follow_the_saved_label_map(spark, catalog) -> None:
    cfg, products, result = catalog
    labels = json.loads((Path(cfg.paths.features) / "labels.json").read_text())
    # Counted on products with a photo: shirts 24 + broken 1, shoes 12 qualify; rare (3) does not.
    assert labels["classes"] == ["shirts", "shoes"]
    assert labels["examples_per_class"] == {"shirts": 25, "shoes": 12}
    assert labels["excluded_classes"] == {"rare": 3}
    expected = {
        p["product_id"]: labels["classes"].index(p["category"]) if p["category"] in labels["classes"] else -1
        for p in products
    }
    for df in (_images(spark, cfg), _text(spark, cfg)):
        got = {r.product_id: r.label for r in df.select("product_id", "label").collect()}
        assert got == {pid: expected[pid] for pid in got}
    assert result.manifest["labels"]["train_on"] == "label >= 0"


def test_splits_are_the_stable_hash_and_shared_by_both_sets(spark, catalog) -> None:
    cfg, products, _ = catalog
    fc = cfg.features
    text = {r.product_id: r.split for r in _text(spark, cfg).select("product_id", "split").collect()}
    images = {r.product_id: r.split for r in _images(spark, cfg).select("product_id", "split").collect()}
    assert text == {p["product_id"]: split_of(p["product_id"], fc.train_fraction, fc.val_fraction) for p in products}
    assert all(text[pid] == s for pid, s in images.items())
    assert set(text.values()) == {"train", "val", "test"}


def test_text_features_every_product_padded_to_max_len(spark, catalog) -> None:
    cfg, products, result = catalog
    df = _text(spark, cfg)
    assert dict(df.dtypes) == {
        "product_id": "string",
        "label": "int",
        "token_ids": "array<int>",
        "length": "int",
        "split": "string",
    }
    vocab = json.loads((Path(cfg.paths.features) / "vocab.json").read_text())
    tokens = vocab["tokens"]
    assert tokens[:2] == ["<pad>", "<unk>"] and len(tokens) == result.manifest["text"]["vocab_size"]
    index = {t: i for i, t in enumerate(tokens)}
    by_id = {p["product_id"]: p for p in products}
    rows = df.collect()
    assert len(rows) == len(products), "a product without a photo still has its text row"
    for r in rows:
        p = by_id[r.product_id]
        toks = text_tokens(p["title"], p["description"])
        assert len(r.token_ids) == MAX_LEN
        assert r.length == min(len(toks), MAX_LEN)
        assert r.token_ids[: r.length] == [index.get(t, 1) for t in toks[:MAX_LEN]]
        assert all(i == 0 for i in r.token_ids[r.length :])


def test_vocabulary_is_counted_on_the_train_split_in_a_deterministic_order(spark, catalog) -> None:
    cfg, products, _ = catalog
    fc = cfg.features
    counts: dict[str, int] = {}
    for p in products:
        if split_of(p["product_id"], fc.train_fraction, fc.val_fraction) == "train":
            for t in text_tokens(p["title"], p["description"]):
                counts[t] = counts.get(t, 0) + 1
    from hybridrec.features.text import vocab_from_counts

    vocab = json.loads((Path(cfg.paths.features) / "vocab.json").read_text())
    assert vocab["tokens"] == vocab_from_counts(counts.items(), fc.vocab_min_count, fc.vocab_max_size)


def test_build_vocab_does_not_depend_on_partitioning(spark) -> None:
    from hybridrec.features.text import build_vocab, vocab_from_counts

    docs = [["b", "a", "c"], ["a", "b"], ["c", "d", "a"], ["e"], ["b", "d"], ["x", "y", "z"]] * 3
    df = spark.createDataFrame([(d,) for d in docs], "tokens array<string>")
    counts: dict[str, int] = {}
    for d in docs:
        for t in d:
            counts[t] = counts.get(t, 0) + 1
    expected = vocab_from_counts(counts.items(), min_count=3, max_size=6)
    for parts in (1, 3, 7):
        vocab = build_vocab(df.repartition(parts), min_count=3, max_size=6)
        assert [t for t, _ in vocab] == expected == ["<pad>", "<unk>", "a", "b", "c", "d"]
        assert [c for _, c in vocab] == [0, 0] + [counts[t] for t in expected[2:]]


def test_products_without_photo_and_failed_photos(spark, catalog) -> None:
    cfg, products, result = catalog
    no_photo = {p["product_id"] for p in products if p["image_path"] is None}
    image_ids = {r.product_id for r in _images(spark, cfg).select("product_id").collect()}
    text_ids = {r.product_id for r in _text(spark, cfg).select("product_id").collect()}
    assert no_photo and no_photo <= text_ids and not (no_photo & image_ids)
    # The truncated photo: no image row, recorded with its reason and counted.
    errors = spark.read.parquet(str(Path(cfg.paths.features) / "image_errors")).collect()
    assert [e.product_id for e in errors] == ["p900"] and errors[0].error
    assert "p900" not in image_ids and "p900" in text_ids
    images = result.manifest["images"]
    assert images["decode_errors"] == 1 and images["error_examples"][0]["product_id"] == "p900"
    photos = sum(1 for p in products if p["image_path"])
    assert images["products_with_photo"] == photos == images["rows"] + images["decode_errors"]


def test_manifest_counts_shapes_and_row_groups(spark, catalog) -> None:
    cfg, products, result = catalog
    m = json.loads((Path(cfg.paths.features) / "manifest.json").read_text())
    assert m == result.manifest
    from delta.tables import DeltaTable

    latest = DeltaTable.forPath(spark, table_ref(cfg, PRODUCTS).path).history(1).collect()[0].version
    assert m["source"]["delta_version"] == latest and m["source"]["products"] == len(products)
    assert m["images"]["feature"] == {
        **m["images"]["feature"],
        "shape": [SIZE, SIZE, 3],
        "fit": "stretch",
        "dtype": "uint8",
    }
    assert "features.image_fit: stretch" in m["images"]["preprocessing"]
    assert m["text"]["feature"]["shape"] == [MAX_LEN] and m["text"]["feature"]["dtype"] == "int32"
    for name, df in (("images", _images(spark, cfg)), ("text", _text(spark, cfg))):
        by_split = {r.split: r["count"] for r in df.groupBy("split").count().collect()}
        assert m[name]["rows_by_split"] == {s: by_split.get(s, 0) for s in ("train", "val", "test")}
        per_class = {(r.split, r.label): r["count"] for r in df.groupBy("split", "label").count().collect()}
        classes = json.loads((Path(cfg.paths.features) / "labels.json").read_text())["classes"]
        for i, cls in enumerate(classes):
            assert m[name]["rows_by_class"][cls] == {s: per_class.get((s, i), 0) for s in ("train", "val", "test")}
    # One row group per file, none larger than configured.
    import pyarrow.parquet as pq

    for f in (Path(cfg.paths.features) / "images").rglob("*.parquet"):
        meta = pq.ParquetFile(f).metadata
        assert meta.num_row_groups == 1 and meta.num_rows <= FEATURES["image_rows_per_group"]
    assert m["images"]["row_groups_by_split"]["train"] >= 2
    assert result.counts["text_rows"] == len(products) and result.counts["image_errors"] == 1


def test_rerun_is_identical_and_replaces_the_output(spark, catalog, tmp_path) -> None:
    cfg, _, first = catalog
    root = Path(cfg.paths.features)
    before = tmp_path / "before"
    shutil.copytree(root, before)
    second = pp.preprocess(spark, cfg, run_id="again")
    for name in ("images", "text"):
        old = spark.read.parquet(str(before / name)).orderBy("product_id")
        new = spark.read.parquet(str(root / name)).orderBy("product_id")
        assert_df_equality(old, new)
    for name in ("vocab.json", "labels.json"):
        assert (before / name).read_text() == (root / name).read_text()
    strip = lambda m: {k: v for k, v in m.items() if k not in ("created_at", "run_id")}  # noqa: E731 - a one-line projection helper
    assert strip(first.manifest) == strip(second.manifest)
    assert json.loads((root / "manifest.json").read_text())["run_id"] == "again"
    assert not list(root.parent.glob(f"{root.name}.staging-*"))
    assert not list(root.parent.glob(f"{root.name}.previous-*"))


def test_a_failed_run_leaves_the_previous_features(spark, catalog, monkeypatch) -> None:
    cfg, _, _ = catalog
    root = Path(cfg.paths.features)
    listing = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    manifest = (root / "manifest.json").read_text()

    def boom(*args, **kwargs):
        raise RuntimeError("killed after writing the text features, while decoding photos")

    monkeypatch.setattr(pp, "image_features", boom)
    with pytest.raises(RuntimeError, match="killed"):
        pp.preprocess(spark, cfg)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == listing
    assert (root / "manifest.json").read_text() == manifest
    assert not list(root.parent.glob(f"{root.name}.staging-*"))


def test_next_run_cleans_up_after_a_crash_between_the_renames(spark, catalog, tmp_path) -> None:
    cfg, _, _ = catalog
    root = Path(cfg.paths.features)
    copy = tmp_path / "features"
    shutil.copytree(root, copy)
    manifest = (copy / "manifest.json").read_text()
    # The state a run leaves if it dies after moving the old output aside, before moving the new in.
    aside = copy.parent / "features.previous-0123456789ab"
    copy.rename(aside)
    (copy.parent / "features.staging-ba9876543210" / "text").mkdir(parents=True)
    pp._Fs(spark, str(copy)).remove_stale_staging()  # noqa: SLF001 - the staging cleaner is internal to preprocess
    assert (copy / "manifest.json").read_text() == manifest
    assert sorted(p.name for p in copy.parent.iterdir() if p.name.startswith("features")) == ["features"]


def test_missing_products_table_names_the_ingest_job(spark, tmp_path) -> None:
    cfg = make_config(tmp_path, features=FEATURES)
    with pytest.raises(MissingInputError, match=r"bronze\.products.*jobs/ingest\.py"):
        pp.preprocess(spark, cfg)


def test_catalog_without_photos_still_gets_text_features(spark, tmp_path) -> None:
    cfg = make_config(tmp_path, features={**FEATURES, "min_examples_per_class": 3})
    products = [
        {
            "product_id": f"t{i}",
            "title": f"plain {'mug' if i % 2 else 'cup'} {i}",
            "description": None,
            "category": "mugs" if i % 2 else "cups",
            "image_path": None,
        }
        for i in range(10)
    ]
    write_products(spark, cfg, products)
    result = pp.preprocess(spark, cfg)
    root = Path(cfg.paths.features)
    assert not (root / "images").exists()
    m = result.manifest
    assert m["images"]["rows"] == 0 and m["images"]["note"] == "no products with a photo"
    assert m["text"]["rows"] == 10 and _text(spark, cfg).count() == 10
    labels = json.loads((root / "labels.json").read_text())
    assert labels["classes"] == ["cups", "mugs"] and labels["counted_on"].startswith("all products")


def test_preprocess_job_records_its_counts(catalog) -> None:
    _, products, result = catalog
    counts = result.counts  # from the job's gold.runs row
    assert counts["products"] == counts["text_rows"] == len(products)
    assert counts["photos"] == counts["image_rows"] + counts["image_errors"]
    assert counts["image_errors"] == 1 and counts["classes"] == 2
    assert counts["text_train"] + counts["text_val"] + counts["text_test"] == len(products)
