"""The image classifier: a ConvNet over raw ``uint8`` product photos, with a named embedding layer.

``small_cnn`` (the default) is four conv blocks (conv-BN-ReLU, twice in the two small-map blocks;
max-pool) then global average pooling and a dense ``embedding`` layer: about 1.2 M parameters, a
few minutes per run on 2 CPU cores at 64 px. ``mobilenet_v2`` / ``efficientnet_b0`` use the Keras
application backbones *from scratch* (``weights=None``: no pretrained weights can be downloaded
here), for GPU clusters and larger photos.

Every model takes ``uint8`` pixels (H, W, 3) and scales them itself, so the features, the trainer and
the embedding job never disagree about preprocessing; light augmentation (horizontal flip, small
shifts) runs only in training. The layer named ``embedding`` is the penultimate layer: its output is
the product's image vector in ``gold.product_embeddings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hybridrec.models.heads import class_outputs

EMBEDDING_LAYER = "embedding"
SMALL_CNN_FILTERS = (32, 64, 128, 256)


def build_image_model(
    num_classes: int,
    image_size: int,
    kind: str = "small_cnn",
    embedding_dim: int = 128,
    dropout: float = 0.2,
    heads: Sequence[tuple[str, int]] = (),
) -> Any:
    """A compiled-later Keras model: uint8 (image_size, image_size, 3) → class probabilities."""
    import tensorflow as tf
    from tensorflow.keras import layers

    if num_classes < 2:
        raise ValueError(f"the image model needs at least 2 classes, got {num_classes}")
    inputs = tf.keras.Input(shape=(image_size, image_size, 3), dtype=tf.uint8, name="image")
    # Rescaling casts the uint8 pixels; EfficientNet scales [0, 255] itself, the others want [-1, 1].
    raw_range = kind == "efficientnet_b0"
    scale, offset, white = (1.0, 0.0, 255.0) if raw_range else (1.0 / 127.5, -1.0, 1.0)
    x = layers.Rescaling(scale, offset=offset, name="scale")(inputs)
    x = layers.RandomFlip("horizontal", name="augment_flip")(x)
    x = layers.RandomTranslation(0.06, 0.06, fill_mode="constant", fill_value=white, name="augment_shift")(x)
    if kind == "small_cnn":
        for i, filters in enumerate(SMALL_CNN_FILTERS):
            # One conv at the two high resolutions, two where the maps are small (cheap, more depth).
            for j in range(1 if i < 2 else 2):
                x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}_{j}")(x)
                x = layers.BatchNormalization(momentum=0.9, name=f"bn{i}_{j}")(x)
                x = layers.ReLU(name=f"relu{i}_{j}")(x)
            if i < len(SMALL_CNN_FILTERS) - 1:
                x = layers.MaxPooling2D(name=f"pool{i}")(x)
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    elif kind in ("mobilenet_v2", "efficientnet_b0"):
        app = tf.keras.applications.MobileNetV2 if kind == "mobilenet_v2" else tf.keras.applications.EfficientNetB0
        x = app(input_shape=(image_size, image_size, 3), include_top=False, weights=None, pooling="avg")(x)
    else:
        raise ValueError(f"unknown image model {kind!r}: small_cnn | mobilenet_v2 | efficientnet_b0")
    x = layers.Dropout(dropout, name="dropout_features")(x)
    emb = layers.Dense(embedding_dim, activation="relu", name=EMBEDDING_LAYER)(x)
    x = layers.Dropout(dropout, name="dropout_embedding")(emb)
    outputs = class_outputs(x, num_classes, heads)
    return tf.keras.Model(inputs, outputs, name=f"image_{kind}")
