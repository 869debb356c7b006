"""Training on a tiny generated catalog: 2 Horovod processes, a killed rank, resume, embeddings in Delta.

One module-scoped catalog (demo data → ingest → preprocess through the real job entry points), then:

- a first train run in which rank 1 dies after epoch 1 (the ``HYBRIDREC_TRAIN_FAULT`` hook exits the
  process hard, like a lost executor): the job fails with a message naming the model and the
  checkpoint to resume from, and leaves that checkpoint;
- a second run resumes from epoch 1, both ranks take part, and it writes the models, metrics.json,
  gold.product_embeddings (one row per product, right dimensions, no NaN) and gold.runs;
- a third run of the same version reuses the trained models (no Horovod run) and replaces the
  version's rows in place.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from tiny_catalog import IMAGE_DIM, TEXT_DIM, ingest_and_preprocess, write_tiny_config

import train as train_job
from hybridrec.config import load_config
from hybridrec.errors import HybridrecError
from hybridrec.job import run_job
from hybridrec.models.training import FAULT_ENV, current_version, train
from hybridrec.tables import PRODUCT_EMBEDDINGS, PRODUCTS, RUNS, delta_table, read_table, table_ref


@pytest.fixture(scope="module")
def catalog(spark, tmp_path_factory) -> Path:
    conf = write_tiny_config(tmp_path_factory.mktemp("train_e2e"))
    ingest_and_preprocess(conf)
    return conf


def _train(conf: Path, *extra: str) -> int:
    return run_job("train", train_job.main, ["--config", str(conf), *extra], train_job.build_parser())


def test_train_survives_a_dead_worker_resumes_and_writes_embeddings(spark, catalog, monkeypatch, caplog) -> None:
    cfg = load_config(catalog)
    # 1. Rank 1 dies after epoch 1 of the first model (image).
    monkeypatch.setenv(FAULT_ENV, "1:1")
    assert _train(catalog) == 1
    assert "image model training failed: rank 1 exited first (exit code 3)" in caplog.text
    assert "resume from the checkpoint of epoch 1" in caplog.text
    version = next(p.name for p in Path(cfg.paths.checkpoints).iterdir())
    state = json.loads((Path(cfg.paths.checkpoints) / version / "image" / "state.json").read_text())
    assert state["epoch"] == 1 and not state["done"]
    runs = read_table(spark, table_ref(cfg, RUNS)).where(F.col("job") == "train").collect()
    assert [r.status for r in runs] == ["failed"]

    # 2. The same command resumes the same version from epoch 1 and finishes.
    monkeypatch.delenv(FAULT_ENV)
    assert _train(catalog, "--resume") == 0
    assert current_version(cfg) == version
    model_dir = Path(cfg.paths.models) / version
    metrics = json.loads((model_dir / "metrics.json").read_text())
    image, text = metrics["models"]["image"], metrics["models"]["text"]
    assert image["ranks"] == [0, 1] and text["ranks"] == [0, 1]  # both processes took part
    assert image["resumed_from_epoch"] == 1 and image["epochs_done"] == 2
    assert text["resumed_from_epoch"] == 0 and text["epochs_done"] == 2
    assert [h["epoch"] for h in image["history"]] == [1, 2]
    for m in (image, text):
        assert 0.0 <= m["test"]["accuracy"] <= 1.0 and m["test"]["examples"] > 0
    assert metrics["fusion"]["test"]["fusion"]["examples"] > 0
    imputation = metrics["fusion"]["imputation"]
    assert imputation["train_rows"] > 0 and imputation["ridge"] == 1.0
    assert set(imputation["test"]) == {"text_to_image", "image_to_text"}
    assert all(-1.0 <= q["mean_cosine"] <= 1.0 for q in imputation["test"].values())
    assert (model_dir / "modality_maps.npz").is_file()
    for name in ("image", "text", "fusion"):
        assert (model_dir / name / "saved_model.pb").is_file()
    for name in ("vocab.json", "labels.json", "manifest.json"):
        assert (model_dir / name).is_file()
    ckpt = Path(cfg.paths.checkpoints) / version
    assert (ckpt / "image" / "ckpt" / "checkpoint").is_file() and (ckpt / "text" / "best.weights.h5").is_file()
    assert list((Path(cfg.paths.models) / "mlruns").glob("*/*/meta.yaml")), "an MLflow run was logged"

    emb = read_table(spark, table_ref(cfg, PRODUCT_EMBEDDINGS)).where(F.col("model_version") == version)
    products = read_table(spark, table_ref(cfg, PRODUCTS))
    n_products = products.count()
    assert emb.count() == emb.select("product_id").distinct().count() == n_products
    assert emb.join(products, "product_id", "left_anti").count() == 0
    with_photo = products.where(F.col("image_path").isNotNull()).count()
    assert emb.where(F.col("image_emb").isNotNull()).count() > 0
    assert emb.where(F.col("image_emb").isNotNull()).count() <= with_photo
    rows = emb.collect()
    classes = json.loads((model_dir / "labels.json").read_text())["classes"]
    for r in rows:
        fused = np.asarray(r.fused_emb)
        assert fused.shape == (IMAGE_DIM + TEXT_DIM,) and not np.isnan(fused).any()
        assert abs(np.linalg.norm(fused) - 1.0) < 1e-4
        assert len(r.text_emb) == TEXT_DIM
        assert r.image_emb is None or len(r.image_emb) == IMAGE_DIM
        assert r.predicted_category in classes and 0.0 <= r.predicted_prob <= 1.0
        assert r.predicted_by == ("fusion" if r.image_emb is not None else "text")
        # Text-only products: image_emb stays null, the fused vector's image half is imputed.
        assert abs(np.linalg.norm(fused[:IMAGE_DIM]) - 1 / np.sqrt(2)) < 1e-4
    run = read_table(spark, table_ref(cfg, RUNS)).where(F.col("status") == "succeeded").collect()[0]
    assert run.counts["rows"] == n_products and "image_test_accuracy" in run.metrics

    # 3. Re-running the finished version trains nothing and replaces its rows: same content, one commit more.
    before = emb.drop("created_at").orderBy("product_id").cache()
    before.count()
    history_before = delta_table(spark, table_ref(cfg, PRODUCT_EMBEDDINGS)).history().count()
    result = train(spark, cfg)
    assert result.version == version and result.counts["image_epochs"] == 2
    rerun = json.loads((model_dir / "metrics.json").read_text())
    assert rerun["models"]["image"]["reused"] and rerun["models"]["text"]["reused"]  # no Horovod run
    assert rerun["models"]["image"]["test"] == image["test"]
    after = read_table(spark, table_ref(cfg, PRODUCT_EMBEDDINGS)).where(F.col("model_version") == version)
    assert after.count() == n_products
    assert_df_equality(
        after.drop("created_at").orderBy("product_id"), before, ignore_row_order=True, ignore_nullable=True
    )
    history = delta_table(spark, table_ref(cfg, PRODUCT_EMBEDDINGS)).history()
    assert history.count() == history_before + 1
    assert history.orderBy(F.desc("version")).first().operation == "WRITE"


def test_features_a_model_cannot_learn_from_fail_before_any_worker_starts(spark, catalog, tmp_path) -> None:
    import shutil

    cfg = load_config(catalog)
    features = tmp_path / "features"
    shutil.copytree(cfg.paths.features, features)
    labels = json.loads((features / "labels.json").read_text())
    labels["classes"] = labels["classes"][:1]
    (features / "labels.json").write_text(json.dumps(labels))
    cfg.paths.features = str(features)
    cfg.paths.checkpoints = str(tmp_path / "ckpt")
    with pytest.raises(HybridrecError, match="class") as err:
        train(spark, cfg)
    assert "needs at" in str(err.value) and "different preprocess runs" in str(err.value)
    assert not (tmp_path / "ckpt").exists()  # nothing started
