"""The first half of the night on a tiny generated catalog: demo data → ingest → preprocess.

Runs the real job entry points (``jobs/ingest.py``, ``jobs/preprocess.py``) in-process on the shared
session with a config file, then checks what downstream steps rely on: counts reconcile in
gold.runs, every accepted product has text features, every product with a photo has image features,
and the features feed tf.data through Petastorm.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pyspark.sql import functions as F

import ingest as ingest_job
import preprocess as preprocess_job
from hybridrec.config import load_config
from hybridrec.demo.raw_files import write_demo_data
from hybridrec.job import run_job
from hybridrec.tables import INTERACTIONS, PRODUCTS, QUARANTINE_PRODUCTS, RUNS, read_table, table_ref

REPO_ROOT = Path(__file__).resolve().parents[2]


def _tiny_config(tmp_path: Path) -> Path:
    local = yaml.safe_load((REPO_ROOT / "conf" / "local.yaml").read_text(encoding="utf-8"))
    local["spark"].update({"master": "local[2]", "shuffle_partitions": 4, "ui_enabled": False})
    local["paths"] = {k: k for k in local["paths"]}
    local["catalog"]["path"] = "raw/catalog/products.csv"
    local["catalog"]["image_root"] = "raw/catalog/images"
    local["interactions"]["path"] = "raw/interactions/interactions.csv"
    local["demo"].update({"n_products": 240, "n_categories": 4, "n_users": 80, "image_size": 32})
    local["features"].update({"image_size": 32, "min_examples_per_class": 5})
    conf = tmp_path / "tiny.yaml"
    conf.write_text(yaml.safe_dump(local), encoding="utf-8")
    return conf


def test_demo_data_ingest_preprocess_chain(spark, tmp_path) -> None:
    conf = _tiny_config(tmp_path)
    cfg = load_config(conf)
    demo = write_demo_data(cfg)
    assert demo.catalog == "generated" and demo.n_products == 240 and demo.n_events > 0

    assert run_job("ingest", ingest_job.main, ["--config", str(conf)], ingest_job.job_parser()) == 0
    products = read_table(spark, table_ref(cfg, PRODUCTS))
    runs = read_table(spark, table_ref(cfg, RUNS)).where(F.col("status") == "succeeded")
    counts = runs.where(F.col("job") == "ingest").first().counts
    n_products = products.count()
    n_quarantined = read_table(spark, table_ref(cfg, QUARANTINE_PRODUCTS)).count()
    assert n_products + n_quarantined == 240
    assert read_table(spark, table_ref(cfg, INTERACTIONS)).count() > 0
    assert any(v == n_products for k, v in counts.items() if "products" in k and "accepted" in k), counts

    assert run_job("preprocess", preprocess_job.main, ["--config", str(conf)], preprocess_job.job_parser()) == 0
    manifest = json.loads((Path(cfg.paths.features) / "manifest.json").read_text(encoding="utf-8"))
    text = spark.read.parquet(str(Path(cfg.paths.features) / "text"))
    images = spark.read.parquet(str(Path(cfg.paths.features) / "images"))
    assert text.count() == n_products  # every accepted product gets text features
    with_photo = products.where(F.col("image_path").isNotNull()).count()
    assert images.count() == with_photo > 0
    assert manifest and set(r.split for r in text.select("split").distinct().collect()) == {"train", "val", "test"}

    import tensorflow as tf
    from petastorm import make_batch_reader
    from petastorm.tf_utils import make_petastorm_dataset

    files = [f"file://{p}" for p in sorted((Path(cfg.paths.features) / "images").glob("*.parquet"))]
    with make_batch_reader(
        files, num_epochs=1, reader_pool_type="dummy", shuffle_row_groups=False, workers_count=1
    ) as reader:
        ds = make_petastorm_dataset(reader).map(
            lambda b: tf.reshape(tf.io.decode_raw(b.image, tf.uint8), (-1, 32, 32, 3))
        )
        seen = sum(int(batch.shape[0]) for batch in ds)
    assert seen == with_photo
