"""Distributed inference: product features → embeddings and predicted categories, with pandas UDFs.

Each Spark Python worker loads an exported model once (a per-process cache keyed by the model
folder; Spark reuses its Python workers across tasks) and runs it over Arrow batches of
``train.inference_batch_size`` rows (``mapInPandas``). Per product it produces the image CNN's and
the text LSTM's penultimate-layer vectors and their class probabilities; the driver never sees the
vectors, only (for the fusion classifier) a bounded sample of labelled training rows.

Fused vector (what the hybrid recommender compares products with)::

    fused = [img / |img|, txt / |txt|] / sqrt(2)

so the cosine of two products with both modalities is the mean of their image and text cosines.
A product missing one modality gets that half from the other (``imputation``: ridge maps text →
image and image → text, fitted at training and saved with the version), normalised, so every
product is in one joint space: a photo product and a text-only product compare as
``(cos(img, predicted img) + cos(txt, txt)) / 2``, on the same scale as two photo products. Only
``fused_emb`` carries the imputed half; ``image_emb`` / ``text_emb`` stay null where the modality is
missing. Without maps (``train.impute_missing_modality: false``, a version trained before them, or
one trained on a single modality) the missing half is zeros and the vector is renormalised, so a
product without a photo is compared on text alone and a text-only product's cosine with a photo
product is at most ~0.71.

Predicted category: the fusion classifier's for products with a photo and a text vector, otherwise
the one model the product has input for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from hybridrec.models.cnn import EMBEDDING_LAYER
from hybridrec.models.heads import main_output

if TYPE_CHECKING:  # imputation imports l2_normalise from here
    from hybridrec.models.imputation import ModalityMaps

_MODELS: dict[str, Any] = {}

IMAGE_OUT = T.StructType(
    [
        T.StructField("product_id", T.StringType(), False),
        T.StructField("image_emb", T.ArrayType(T.FloatType(), False), False),
        T.StructField("image_label", T.IntegerType(), False),
        T.StructField("image_prob", T.DoubleType(), False),
    ]
)
TEXT_OUT = T.StructType(
    [
        T.StructField("product_id", T.StringType(), False),
        T.StructField("split", T.StringType(), False),
        T.StructField("label", T.IntegerType(), False),
        T.StructField("text_emb", T.ArrayType(T.FloatType(), False), False),
        T.StructField("text_label", T.IntegerType(), False),
        T.StructField("text_prob", T.DoubleType(), False),
    ]
)


def load_model_once(path: str, embedding_output: bool = True) -> Any:
    """An exported Keras model, loaded once per Python worker process.

    ``embedding_output``: as a two-output model (penultimate ``embedding`` layer, probabilities).
    """
    key = f"{path}#{embedding_output}"
    if key not in _MODELS:
        import tensorflow as tf

        try:  # one thread per Python worker: Spark already runs one task per core
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:
            pass  # TensorFlow already initialised in this process
        model = tf.keras.models.load_model(path, compile=False)
        if embedding_output:
            # The category head by name: a model with attribute heads has several outputs.
            model = tf.keras.Model(model.input, [model.get_layer(EMBEDDING_LAYER).output, main_output(model)])
        _MODELS[key] = model
    return _MODELS[key]


def _decode_images(values: pd.Series, image_size: int) -> np.ndarray:
    raw = b"".join(values.tolist())
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(values), image_size, image_size, 3)


def _run(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    emb, probs = model.predict_on_batch(x)
    return np.asarray(emb, dtype=np.float32), np.asarray(probs)


def image_embedder(model_path: str, image_size: int) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """``mapInPandas`` function: (product_id, image) → IMAGE_OUT rows."""

    def embed(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = load_model_once(model_path)
        for pdf in batches:
            if pdf.empty:
                continue
            emb, probs = _run(model, _decode_images(pdf["image"], image_size))
            yield pd.DataFrame(
                {
                    "product_id": pdf["product_id"].to_numpy(),
                    "image_emb": list(emb),
                    "image_label": probs.argmax(axis=1).astype(np.int32),
                    "image_prob": probs.max(axis=1).astype(np.float64),
                }
            )

    return embed


def text_embedder(model_path: str) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """``mapInPandas`` function: (product_id, split, label, token_ids) → TEXT_OUT rows."""

    def embed(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        model = load_model_once(model_path)
        for pdf in batches:
            if pdf.empty:
                continue
            x = np.stack([np.asarray(t, dtype=np.int32) for t in pdf["token_ids"]])
            emb, probs = _run(model, x)
            yield pd.DataFrame(
                {
                    "product_id": pdf["product_id"].to_numpy(),
                    "split": pdf["split"].to_numpy(),
                    "label": pdf["label"].to_numpy(dtype=np.int32),
                    "text_emb": list(emb),
                    "text_label": probs.argmax(axis=1).astype(np.int32),
                    "text_prob": probs.max(axis=1).astype(np.float64),
                }
            )

    return embed


def embed_images(images: DataFrame, model_path: str, image_size: int) -> DataFrame:
    """Image features (product_id, image, ...) → product_id, image_emb, image_label, image_prob."""
    return images.select("product_id", "image").mapInPandas(image_embedder(model_path, image_size), IMAGE_OUT)


def embed_text(text: DataFrame, model_path: str) -> DataFrame:
    """Text features → product_id, split, label, text_emb, text_label, text_prob."""
    return text.select("product_id", "split", "label", "token_ids").mapInPandas(text_embedder(model_path), TEXT_OUT)


def l2_normalise(v: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)


def fuse(
    image_emb: np.ndarray,
    text_emb: np.ndarray,
    maps: ModalityMaps | None = None,
    has_image: np.ndarray | None = None,
    has_text: np.ndarray | None = None,
) -> np.ndarray:
    """Rows of [img/|img|, txt/|txt|]/sqrt(2), renormalised to unit length.

    A product without one modality has an all-zero row there (``has_image`` / ``has_text``: which
    rows hold a vector; default: the non-zero rows). With ``maps`` that half is filled with the
    normalised prediction from the other modality, so the row has two unit halves like a product
    with both; without, the half stays zero and the other half alone makes the unit vector. A
    version trained without images passes a (n, 0) array (and no maps).
    """
    img = l2_normalise(np.asarray(image_emb, dtype=np.float32))
    txt = l2_normalise(np.asarray(text_emb, dtype=np.float32))
    if maps is not None:
        if (img.shape[1], txt.shape[1]) != (maps.image_dim, maps.text_dim):
            raise ValueError(
                f"modality maps are for {maps.image_dim}-dim image and {maps.text_dim}-dim text vectors, "
                f"got {img.shape[1]} and {txt.shape[1]}"
            )
        has_img = np.linalg.norm(img, axis=1) > 0 if has_image is None else np.asarray(has_image, dtype=bool)
        has_txt = np.linalg.norm(txt, axis=1) > 0 if has_text is None else np.asarray(has_text, dtype=bool)
        fill_img, fill_txt = ~has_img & has_txt, has_img & ~has_txt
        if fill_img.any():
            img[fill_img] = maps.predict_image(txt[fill_img])
        if fill_txt.any():
            txt[fill_txt] = maps.predict_text(img[fill_txt])
    fused = np.concatenate([img, txt], axis=1) / math.sqrt(2.0)
    return l2_normalise(fused).astype(np.float32)


def fusion_input(image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """The fusion classifier's input: both normalised halves side by side."""
    return np.concatenate([l2_normalise(image_emb), l2_normalise(text_emb)], axis=1).astype(np.float32)
