"""Build ``gold.product_embeddings`` for one model version: inference, fusion classifier, Delta write.

1. The text and image features of *every* product (all splits, labelled or not) go through the
   exported models in pandas UDFs (``embeddings``); the result is staged as Parquet under the
   version's checkpoint folder so the UDFs run once although the rows are read several times.
2. The fusion classifier is fitted on the driver on labelled train/val products that have both
   vectors and evaluated on the test products with both, next to the image and the text model's
   predictions for exactly those products. On the train products of the same sample, the ridge
   maps text → image and image → text (``imputation``, ``train.impute_missing_modality``) are
   fitted and saved beside it, with their quality on the test products in the fusion report.
3. A last pandas UDF fuses the vectors (a missing half imputed by the maps; the stored
   ``image_emb`` / ``text_emb`` stay null), applies the fusion classifier and names the category; the
   rows replace the version's partition of ``gold.product_embeddings`` in one Delta commit
   (``replaceWhere model_version = ...``), so a re-run leaves one row per product and version.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hybridrec.config import Config
from hybridrec.errors import HybridrecError
from hybridrec.features.labels import UNLABELED
from hybridrec.metrics.classification import classification_report
from hybridrec.models import embeddings as emb
from hybridrec.models.fusion import MAX_FUSION_ROWS, train_fusion
from hybridrec.models.imputation import MAPS_FILE, fit_maps, load_maps_once, map_quality
from hybridrec.runs import utcnow
from hybridrec.tables import PRODUCT_EMBEDDINGS, features_path, table_ref, write_table

log = logging.getLogger(__name__)


@dataclass
class EmbeddingsResult:
    counts: dict[str, int] = field(default_factory=dict)
    # Fusion vs image vs text on the same test products (those with a photo), when both models exist.
    fusion: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def arrow_batch_rows(spark: SparkSession, rows: int) -> Iterator[None]:
    """Arrow batches of ``rows`` rows for the pandas UDFs in the block (the session value restored)."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    old = spark.conf.get(key, None)
    spark.conf.set(key, str(rows))
    try:
        yield
    finally:
        if old is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, old)


def _stack(values: pd.Series, dim: int) -> np.ndarray:
    """A column of arrays (None where missing) → (n, dim) float32, zero rows where missing."""
    out = np.zeros((len(values), dim), dtype=np.float32)
    for i, v in enumerate(values):
        if v is not None:
            out[i] = v
    return out


def finaliser(
    version: str,
    class_names: list[str],
    image_dim: int,
    text_dim: int,
    fusion_path: str | None,
    maps_path: str | None = None,
) -> Any:
    """``mapInPandas`` function: staged rows → gold.product_embeddings rows.

    ``maps_path``: the version's modality maps (``imputation``), which fill a missing half of
    ``fused_emb`` only; None fuses with the half at zero (versions trained without them).
    """
    names = np.asarray(class_names, dtype=object)

    def finalise(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fusion = emb.load_model_once(fusion_path, embedding_output=False) if fusion_path else None
        maps = load_maps_once(maps_path) if maps_path else None
        for pdf in batches:
            if pdf.empty:
                continue
            has_img = pdf["image_emb"].notna().to_numpy() if image_dim else np.zeros(len(pdf), dtype=bool)
            has_txt = pdf["text_emb"].notna().to_numpy() if text_dim else np.zeros(len(pdf), dtype=bool)
            img = _stack(pdf["image_emb"], image_dim) if image_dim else np.zeros((len(pdf), 0), np.float32)
            txt = _stack(pdf["text_emb"], text_dim) if text_dim else np.zeros((len(pdf), 0), np.float32)
            fused = emb.fuse(img, txt, maps, has_img, has_txt)
            label = np.full(len(pdf), -1, dtype=np.int64)
            prob = np.full(len(pdf), np.nan)
            by = np.full(len(pdf), None, dtype=object)
            for mask, col, name in ((has_txt, "text", "text"), (has_img, "image", "image")):
                if mask.any():
                    label[mask] = pdf[f"{col}_label"].to_numpy()[mask]
                    prob[mask] = pdf[f"{col}_prob"].to_numpy()[mask]
                    by[mask] = name
            both = has_img & has_txt
            if fusion is not None and both.any():
                p = np.asarray(fusion.predict_on_batch(emb.fusion_input(img[both], txt[both])))
                label[both] = p.argmax(axis=1)
                prob[both] = p.max(axis=1)
                by[both] = "fusion"
            known = label >= 0
            category = np.full(len(pdf), None, dtype=object)
            category[known] = names[label[known]]
            yield pd.DataFrame(
                {
                    "product_id": pdf["product_id"].to_numpy(),
                    "model_version": version,
                    "image_emb": [img[i] if has_img[i] else None for i in range(len(pdf))],
                    "text_emb": [txt[i] if has_txt[i] else None for i in range(len(pdf))],
                    "fused_emb": list(fused),
                    "predicted_category": category,
                    "predicted_prob": np.where(known, prob, np.nan),
                    "predicted_by": by,
                }
            )

    return finalise


# The schema of what ``finaliser`` returns: gold.product_embeddings without ``created_at`` (added
# afterwards). Public because the nightly freshness step (``hybrid.freshness``) finalises new
# products with the same function and needs the same output schema for ``mapInPandas``.
FINALISER_SCHEMA = T.StructType([f for f in PRODUCT_EMBEDDINGS.schema.fields if f.name != "created_at"])


def build_product_embeddings(
    spark: SparkSession,
    cfg: Config,
    version: str,
    model_dirs: dict[str, str],
    class_names: list[str],
    stage_dir: str,
) -> EmbeddingsResult:
    """Embed every product with the exported models, fit the fusion head, write the Delta rows."""
    tc = cfg.train
    result = EmbeddingsResult()
    started = time.perf_counter()
    text = spark.read.parquet(features_path(cfg, "text"))
    base = text.select("product_id", "split", "label")
    stage_path = str(Path(stage_dir) / "embeddings_stage")
    with arrow_batch_rows(spark, tc.inference_batch_size):
        if "text" in model_dirs:
            staged = emb.embed_text(text, model_dirs["text"])
        else:
            staged = base.select(
                "*",
                *[
                    F.lit(None).cast(t).alias(c)
                    for c, t in (("text_emb", "array<float>"), ("text_label", "int"), ("text_prob", "double"))
                ],
            )
        if "image" in model_dirs:
            images = spark.read.parquet(features_path(cfg, "images"))
            staged = staged.join(
                emb.embed_images(images, model_dirs["image"], cfg.features.image_size), "product_id", "left"
            )
        else:
            staged = staged.select(
                "*",
                *[
                    F.lit(None).cast(t).alias(c)
                    for c, t in (("image_emb", "array<float>"), ("image_label", "int"), ("image_prob", "double"))
                ],
            )
        shutil.rmtree(stage_path, ignore_errors=True)
        staged.write.mode("overwrite").parquet(stage_path)
    stage = spark.read.parquet(stage_path)
    result.seconds["inference"] = time.perf_counter() - started

    fusion_path: str | None = None
    maps_path: str | None = None
    if "image" in model_dirs and "text" in model_dirs:
        t0 = time.perf_counter()
        fusion_path = str(Path(model_dirs["image"]).parent / "fusion")
        maps_file = Path(model_dirs["image"]).parent / MAPS_FILE
        maps_file.unlink(missing_ok=True)  # a re-run with imputation off must not keep the old maps
        ridge = tc.impute_ridge if tc.impute_missing_modality else None
        result.fusion = _fit_fusion(stage, class_names, fusion_path, tc.fusion_epochs, tc.seed, str(maps_file), ridge)
        maps_path = str(maps_file) if ridge is not None else None
        result.seconds["fusion"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    image_dim = tc.image_embedding_dim if "image" in model_dirs else 0
    text_dim = tc.text_embedding_dim if "text" in model_dirs else 0
    with arrow_batch_rows(spark, tc.inference_batch_size):
        final = stage.mapInPandas(
            finaliser(version, class_names, image_dim, text_dim, fusion_path, maps_path), FINALISER_SCHEMA
        )
        final = final.withColumn("created_at", F.lit(utcnow()).cast("timestamp"))
        ref = table_ref(cfg, PRODUCT_EMBEDDINGS)
        write_table(
            final.select(*PRODUCT_EMBEDDINGS.schema.names),
            ref,
            mode="overwrite",
            replace_where=f"model_version = '{version}'",
        )
    result.seconds["write"] = time.perf_counter() - t0
    result.counts = _check_written(spark, cfg, version, stage)
    return result


def _fit_fusion(
    stage: DataFrame,
    class_names: list[str],
    path: str,
    epochs: int,
    seed: int,
    maps_path: str,
    ridge: float | None,
) -> dict[str, Any]:
    """Fit and save the fusion classifier and (``ridge`` not None) the modality maps; their report.

    The maps use the train rows of the classifier's sample (bounded by ``MAX_FUSION_ROWS``), sorted
    by product so a re-run on the same rows gives the same maps to the last bit.
    """
    both = stage.filter(F.col("image_emb").isNotNull() & F.col("text_emb").isNotNull() & (F.col("label") != UNLABELED))
    cols = ["product_id", "split", "label", "image_emb", "text_emb", "image_label", "text_label"]
    fit_rows = both.filter(F.col("split").isin("train", "val"))
    n_fit = fit_rows.count()
    if n_fit > MAX_FUSION_ROWS:
        fit_rows = fit_rows.sample(fraction=MAX_FUSION_ROWS / n_fit, seed=seed)
    fit = fit_rows.select(*cols).toPandas()
    test = both.filter(F.col("split") == "test").select(*cols).toPandas()

    def xy(pdf: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if pdf.empty:
            return np.zeros((0, 0), np.float32), np.zeros((0,), np.int64)
        x = emb.fusion_input(np.stack(pdf["image_emb"].to_numpy()), np.stack(pdf["text_emb"].to_numpy()))
        return x, pdf["label"].to_numpy(dtype=np.int64)

    train_pdf, val_pdf = fit[fit["split"] == "train"], fit[fit["split"] == "val"]
    x_tr, y_tr = xy(train_pdf)
    x_va, y_va = xy(val_pdf)
    if len(x_tr) == 0:
        raise HybridrecError("fusion: no labelled training products with both a photo and a text vector")
    model, history = train_fusion(x_tr, y_tr, x_va, y_va, len(class_names), epochs=epochs, seed=seed)
    shutil.rmtree(path, ignore_errors=True)
    model.save(path, include_optimizer=False, save_format="tf")
    report: dict[str, Any] = {
        "train_rows": len(x_tr),
        "val_rows": len(x_va),
        "history": history,
        "test_rows": len(test),
    }
    if len(test):
        x_te, y_te = xy(test)
        pred = np.asarray(model.predict(x_te, batch_size=1024, verbose=0)).argmax(axis=1)
        report["test"] = {
            "fusion": classification_report(y_te, pred, class_names),
            "image": classification_report(y_te, test["image_label"].to_numpy(), class_names),
            "text": classification_report(y_te, test["text_label"].to_numpy(), class_names),
        }
    if ridge is not None:
        report["imputation"] = _fit_maps(train_pdf, test, maps_path, ridge)
    return report


def _r2(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _fit_maps(train_pdf: pd.DataFrame, test: pd.DataFrame, path: str, ridge: float) -> dict[str, Any]:
    """Fit the text ↔ image ridge maps on ``train_pdf``, save them, measure them on ``test``."""
    train_pdf = train_pdf.sort_values("product_id", kind="stable")
    maps = fit_maps(np.stack(train_pdf["image_emb"].to_numpy()), np.stack(train_pdf["text_emb"].to_numpy()), ridge)
    maps.save(path)
    report: dict[str, Any] = {"ridge": ridge, "train_rows": maps.train_rows, "test_rows": len(test)}
    if len(test):
        quality = map_quality(maps, np.stack(test["image_emb"].to_numpy()), np.stack(test["text_emb"].to_numpy()))
        report["test"] = {k: quality[k] for k in ("text_to_image", "image_to_text")}
        t2i, i2t = report["test"]["text_to_image"], report["test"]["image_to_text"]
        log.info(
            "modality maps (ridge %s, %d train products) on %d test products: text->image cosine %.3f "
            "R2 %s, image->text cosine %.3f R2 %s",
            ridge,
            maps.train_rows,
            len(test),
            t2i["mean_cosine"],
            _r2(t2i["r2"]),
            i2t["mean_cosine"],
            _r2(i2t["r2"]),
        )
    return report


def _check_written(spark: SparkSession, cfg: Config, version: str, stage: DataFrame) -> dict[str, int]:
    """Read back the version's rows: one per product, right dimensions, no NaN; else fail loudly."""
    from hybridrec.tables import read_table

    rows = read_table(spark, table_ref(cfg, PRODUCT_EMBEDDINGS)).filter(F.col("model_version") == version)
    agg = (
        rows.agg(
            F.count(F.lit(1)).alias("rows"),
            F.countDistinct("product_id").alias("products"),
            F.sum(F.col("image_emb").isNotNull().cast("long")).alias("with_image"),
            F.sum(F.col("text_emb").isNotNull().cast("long")).alias("with_text"),
            F.sum(F.exists("fused_emb", lambda x: F.isnan(x)).cast("long")).alias("nan_fused"),
            F.sum((F.col("predicted_by") == "fusion").cast("long")).alias("predicted_by_fusion"),
            F.countDistinct(F.size("fused_emb")).alias("fused_dims"),
        )
        .collect()[0]
        .asDict()
    )
    staged = stage.count()
    counts = {k: int(v or 0) for k, v in agg.items()}
    counts["staged"] = staged
    if counts["rows"] != staged or counts["products"] != staged or counts["nan_fused"] or counts["fused_dims"] != 1:
        raise HybridrecError(f"gold.product_embeddings for {version} does not reconcile: {counts}")
    counts.pop("fused_dims")
    return counts
