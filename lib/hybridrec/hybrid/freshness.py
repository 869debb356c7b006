"""Freshness: products listed since the last training get vectors from the current models at the
start of the night, so a product listed today can be recommended (and get similar items) tomorrow.

Only products of bronze.products missing from gold.product_embeddings for the current model
version are embedded (distributed inference with the same pandas UDFs as training), and the rows
are appended in one Delta commit: a re-run finds nothing missing and appends nothing.

Features are made here from bronze.products with the *model version's* vocabulary, image size and
image fit (stretch / pad / crop, from the features manifest copied next to the models at training),
not read from the features folder or the config: a preprocess run after training rebuilds the
vocabulary, and its token ids would mean nothing to the trained LSTM; a photo decoded by another
rule than the model's training photos costs accuracy (0.716 stretched vs 0.533 padded on the
fashion catalog's 3:4 photos, ``hybridrec.features.images``). A manifest written before the fit was
recorded means ``pad``, the only rule then.
A photo that fails to decode leaves the product text-only (counted).
The version's modality maps (``models.imputation``, saved beside the fusion model) fill a missing
half of ``fused_emb`` as at training, so a new product is in the same joint space as the others; a
version without the file fuses with the half at zero, as it did when it was trained.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.config import Config
from hybridrec.errors import HybridrecError, MissingInputError
from hybridrec.features import images as img
from hybridrec.features import text as txt
from hybridrec.models import embeddings as emb
from hybridrec.models.imputation import MAPS_FILE
from hybridrec.models.product_embeddings import FINALISER_SCHEMA, arrow_batch_rows, finaliser
from hybridrec.runs import utcnow
from hybridrec.tables import PRODUCT_EMBEDDINGS, read_table, table_exists, table_ref, write_table

log = logging.getLogger(__name__)


@dataclass
class Freshness:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class ModelFiles:
    """What inference with one trained version needs, all from ``<paths.models>/<version>/``."""

    dirs: dict[str, str]
    fusion: str | None
    # The text <-> image ridge maps (``models.imputation``); None for a version trained without them.
    maps: str | None
    classes: list[str]
    dims: dict[str, int]
    vocab: list[str]
    max_len: int
    image_size: int
    # How photos become the model's square (hybridrec.features.images.FITS): what it was trained on.
    image_fit: str


def model_files(cfg: Config, version: str) -> ModelFiles:
    """The exported models of ``version`` with their vocabulary, dimensions, image size and fit."""
    root = Path(cfg.paths.models) / version
    metrics_path = root / "metrics.json"
    if not metrics_path.is_file():
        raise MissingInputError(f"model version {version} has no metrics.json under {root}: run jobs/train.py first")
    saved = json.loads(metrics_path.read_text(encoding="utf-8"))
    classes = list(json.loads((root / "labels.json").read_text(encoding="utf-8"))["classes"])
    tc = saved["train_config"]
    dirs = {m: str(root / m) for m in ("image", "text") if (root / m / "saved_model.pb").is_file()}
    dims = {
        "image": int(tc["image_embedding_dim"]) if "image" in dirs else 0,
        "text": int(tc["text_embedding_dim"]) if "text" in dirs else 0,
    }
    fusion = str(root / "fusion") if (root / "fusion" / "saved_model.pb").is_file() else None
    maps = str(root / MAPS_FILE) if (root / MAPS_FILE).is_file() else None
    vocab = json.loads((root / "vocab.json").read_text(encoding="utf-8"))
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    feature = manifest.get("images", {}).get("feature") or {}
    shape = feature.get("shape") or [cfg.features.image_size]
    fit = model_image_fit(feature, cfg.features.image_fit, version)
    return ModelFiles(
        dirs=dirs,
        fusion=fusion,
        maps=maps,
        classes=classes,
        dims=dims,
        vocab=list(vocab["tokens"]),
        max_len=int(vocab["max_len"]),
        image_size=int(shape[0]),
        image_fit=fit,
    )


def model_image_fit(feature: dict[str, Any], configured: str, version: str) -> str:
    """The fit the model's photos were decoded with (``images.feature`` of its manifest).

    Features written before the fit was recorded were padded (``images.LEGACY_FIT``); a manifest
    without an image feature at all (no image model) falls back to ``configured``. A config that
    asks for another rule is overruled, with a warning, exactly like ``features.image_size``.
    """
    fit = str(feature.get("fit") or (img.LEGACY_FIT if feature else configured))
    if fit not in img.FITS:
        raise HybridrecError(
            f"model version {version}: its manifest.json names image fit {fit!r}, not one of "
            f"{' | '.join(img.FITS)}; retrain it (jobs/preprocess.py then jobs/train.py)"
        )
    if fit != configured:
        log.warning(
            "model version %s was trained on photos decoded with image fit %r; new photos are decoded "
            "the same way, not with features.image_fit=%r (retrain to change the rule)",
            version,
            fit,
            configured,
        )
    return fit


def missing_products(products: DataFrame, embeddings: DataFrame, version: str) -> DataFrame:
    """product_id of products without a row of ``version``."""
    have = embeddings.filter(F.col("model_version") == version).select("product_id")
    return products.select("product_id").join(have, "product_id", "left_anti")


def embed_new_products(spark: SparkSession, cfg: Config, version: str, products: DataFrame) -> Freshness:
    """Append vectors of ``version`` for the products of ``products`` that have none."""
    started = time.perf_counter()
    ref = table_ref(cfg, PRODUCT_EMBEDDINGS)
    if not table_exists(spark, ref):
        raise MissingInputError(f"{PRODUCT_EMBEDDINGS.logical_name} not found at {ref}: run jobs/train.py first")
    missing = missing_products(products, read_table(spark, ref), version).persist()
    result = Freshness()
    n_missing = missing.count()
    result.counts["new_products_missing"] = n_missing
    if n_missing == 0:
        missing.unpersist()
        result.counts.update(new_products_embedded=0, new_products_with_image=0)
        return result
    mf = model_files(cfg, version)
    new = products.join(missing, "product_id", "left_semi").select(
        "product_id",
        "title",
        "description",
        "image_path",
        F.lit("new").alias("split"),
        F.lit(-1).cast("int").alias("label"),
    )
    with arrow_batch_rows(spark, cfg.train.inference_batch_size):
        text = txt.encode_text(txt.add_tokens(new), mf.vocab, mf.max_len)
        if "text" in mf.dirs:
            staged = emb.embed_text(text, mf.dirs["text"])
        else:
            staged = text.select(
                "product_id",
                *[
                    F.lit(None).cast(t).alias(c)
                    for c, t in (("text_emb", "array<float>"), ("text_label", "int"), ("text_prob", "double"))
                ],
            )
        if "image" in mf.dirs:
            photos = img.decode_images(
                new.filter(F.col("image_path").isNotNull()).select("product_id", "image_path"),
                mf.image_size,
                fit=mf.image_fit,
            ).filter(F.col("image").isNotNull())
            staged = staged.join(emb.embed_images(photos, mf.dirs["image"], mf.image_size), "product_id", "left")
        else:
            staged = staged.select(
                "*",
                *[
                    F.lit(None).cast(t).alias(c)
                    for c, t in (("image_emb", "array<float>"), ("image_label", "int"), ("image_prob", "double"))
                ],
            )
        final = staged.mapInPandas(
            finaliser(version, mf.classes, mf.dims["image"], mf.dims["text"], mf.fusion, mf.maps), FINALISER_SCHEMA
        )
        final = final.withColumn("created_at", F.lit(utcnow()).cast("timestamp")).persist()
        embedded = final.count()
        with_image = final.filter(F.col("image_emb").isNotNull()).count()
        write_table(final.select(*PRODUCT_EMBEDDINGS.schema.names), ref, mode="append")
    final.unpersist()
    missing.unpersist()
    result.counts["new_products_embedded"] = embedded
    result.counts["new_products_with_image"] = with_image
    if embedded != n_missing:  # pragma: no cover - every product has a title
        raise HybridrecError(f"embedded {embedded} of {n_missing} new products: rows were lost")
    result.seconds = time.perf_counter() - started
    return result
