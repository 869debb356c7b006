"""Multi-task training end to end on the tiny catalog: attribute heads (features.label_heads) from
preprocess to exported models, metrics per head, and embeddings the nightly job can read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from tiny_catalog import TEXT_DIM, ingest_and_preprocess, write_tiny_config

import train as train_job
from hybridrec.config import load_config
from hybridrec.job import run_job
from hybridrec.models.embeddings import load_model_once
from hybridrec.models.heads import output_names
from hybridrec.models.training import current_version
from hybridrec.tables import PRODUCT_EMBEDDINGS, read_table, table_ref

HEADS = ["colour", "segment"]


@pytest.fixture(scope="module")
def catalog(spark, tmp_path_factory) -> Path:
    conf = write_tiny_config(
        tmp_path_factory.mktemp("train_heads"),
        features={"label_heads": HEADS},
        train={"num_proc": 1, "epochs": 1},
    )
    ingest_and_preprocess(conf)
    return conf


def test_preprocess_writes_one_label_per_head(spark, catalog) -> None:
    cfg = load_config(catalog)
    feat = Path(cfg.paths.features)
    labels = json.loads((feat / "labels.json").read_text(encoding="utf-8"))
    assert [h["attribute"] for h in labels["heads"]] == HEADS
    assert all(h["num_classes"] >= 2 for h in labels["heads"])
    manifest = json.loads((feat / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["labels"]["heads"] == HEADS
    text = spark.read.parquet(str(feat / "text"))
    assert dict(text.dtypes)["head_labels"] == "array<int>"
    assert text.filter(F.size("head_labels") != len(HEADS)).count() == 0
    # Every product of the demo catalog has a colour: all rows can train the colour head.
    trainable = manifest["text"]["trainable_rows_by_split"]
    assert trainable["train"] >= manifest["text"]["labelled_rows_by_split"]["train"]
    assert trainable["train"] == text.filter(F.col("split") == "train").count()


def test_train_reports_every_head_and_exports_multi_output_models(spark, catalog) -> None:
    cfg = load_config(catalog)
    assert run_job("train", train_job.main, ["--config", str(catalog)], train_job.build_parser()) == 0
    version = current_version(cfg)
    model_dir = Path(cfg.paths.models) / version
    metrics = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    for model in ("image", "text"):
        heads = metrics["models"][model]["test_heads"]
        assert list(heads) == HEADS
        assert all(0.0 <= r["accuracy"] <= 1.0 and r["examples"] > 0 for r in heads.values())
    # The exported text model has the category output and one per head; embedding inference reads
    # the category head by name.
    import tensorflow as tf

    exported = tf.keras.models.load_model(str(model_dir / "text"), compile=False)
    assert exported.output_names == output_names([(h, 2) for h in HEADS])
    embed = load_model_once(str(model_dir / "text"))
    assert [tuple(o.shape)[-1] for o in embed.outputs] == [TEXT_DIM, len(metrics["classes"])]
    rows = read_table(spark, table_ref(cfg, PRODUCT_EMBEDDINGS)).filter(F.col("model_version") == version)
    assert rows.count() == metrics["embeddings"]["counts"]["rows"] > 0
