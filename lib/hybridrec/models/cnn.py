"""The image classifier: a ConvNet over raw ``uint8`` product photos, with a named embedding layer.

``small_cnn`` (the default) is four conv blocks (conv-BN-ReLU, twice in the two small-map blocks;
max-pool) then global average pooling and a dense ``embedding`` layer: about 1.2 M parameters, a
few minutes per run on 2 CPU cores at 64 px. ``mobilenet_v2`` / ``efficientnet_b0`` use the Keras
application backbones *from scratch* (``weights=None``: no pretrained weights can be downloaded
here), for GPU clusters and larger photos.

Every model takes ``uint8`` pixels (H, W, 3) and scales them itself, so the features, the trainer and
the embedding job never disagree about preprocessing. The layer named ``embedding`` is the
penultimate layer: its output is the product's image vector in ``gold.product_embeddings``.

Augmentation (``augmentation_layers``) runs only in training; Keras' random preprocessing layers
pass their input through unchanged when ``training`` is false (``predict``, the exported model), so
serving sees the photo exactly as decoded. In order: horizontal flip; aspect jitter (the height
zoomed in or out against the width by up to ``train.image_aspect_jitter``, 0.25 = 25 %); zoom-out
(the product shrinks to between ``1 - train.image_zoom_out`` of the side and all of it, 0.5 = down to
half, centred); small shifts (6 % of the side). What the zoom and shifts uncover is filled with
white, the catalog's background. Why: a model that only saw full-frame, squashed 224x224 photos
scored 0.302 on the same photos with a white border of a quarter of the side and 0.613 on photos
at their original 3:4 aspect (then decoded by padding), against 0.728 as decoded
(bench/bench_content.py); the zoom-out covers padded and bordered framings, the jitter other
aspects. Either is off at 0 (the layer is then not built at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hybridrec.config import TrainConfig
from hybridrec.models.heads import class_outputs

EMBEDDING_LAYER = "embedding"
SMALL_CNN_FILTERS = (32, 64, 128, 256)
# Largest random shift, as a share of the side (RandomTranslation).
SHIFT_SHARE = 0.06


def augmentation_layers(
    white: float,
    zoom_out: float = TrainConfig.image_zoom_out,
    aspect_jitter: float = TrainConfig.image_aspect_jitter,
) -> list[Any]:
    """The training-only augmentation layers, in order, for pixels where ``white`` is white.

    ``zoom_out`` in [0, 1): the product's side shrinks by up to this share (Keras' zoom factor is
    the sampling grid's growth, so a side kept at ``1 - z`` is a factor of ``z / (1 - z)``).
    ``aspect_jitter`` in [0, 1): the height alone is zoomed by a factor in ``[-a, a]`` (the width
    factor pinned at 0), which changes the aspect. The defaults are ``TrainConfig``'s.
    """
    from tensorflow.keras import layers

    if not 0.0 <= zoom_out < 1.0:
        raise ValueError(f"zoom_out must be in [0, 1) (train.image_zoom_out), got {zoom_out}")
    if not 0.0 <= aspect_jitter < 1.0:
        raise ValueError(f"aspect_jitter must be in [0, 1) (train.image_aspect_jitter), got {aspect_jitter}")
    fill = {"fill_mode": "constant", "fill_value": white}
    out: list[Any] = [layers.RandomFlip("horizontal", name="augment_flip")]
    if aspect_jitter > 0:
        out.append(layers.RandomZoom((-aspect_jitter, aspect_jitter), width_factor=0.0, name="augment_aspect", **fill))
    if zoom_out > 0:
        out.append(layers.RandomZoom((0.0, zoom_out / (1.0 - zoom_out)), name="augment_zoom_out", **fill))
    out.append(layers.RandomTranslation(SHIFT_SHARE, SHIFT_SHARE, name="augment_shift", **fill))
    return out


def build_image_model(
    num_classes: int,
    image_size: int,
    kind: str = "small_cnn",
    embedding_dim: int = 128,
    dropout: float = 0.2,
    zoom_out: float = TrainConfig.image_zoom_out,
    aspect_jitter: float = TrainConfig.image_aspect_jitter,
    heads: Sequence[tuple[str, int]] = (),
) -> Any:
    """A compiled-later Keras model: uint8 (image_size, image_size, 3) → class probabilities.

    ``zoom_out`` and ``aspect_jitter``: the training-only augmentation (``augmentation_layers``).
    """
    import tensorflow as tf
    from tensorflow.keras import layers

    if num_classes < 2:
        raise ValueError(f"the image model needs at least 2 classes, got {num_classes}")
    inputs = tf.keras.Input(shape=(image_size, image_size, 3), dtype=tf.uint8, name="image")
    # Rescaling casts the uint8 pixels; EfficientNet scales [0, 255] itself, the others want [-1, 1].
    raw_range = kind == "efficientnet_b0"
    scale, offset, white = (1.0, 0.0, 255.0) if raw_range else (1.0 / 127.5, -1.0, 1.0)
    x = layers.Rescaling(scale, offset=offset, name="scale")(inputs)
    for layer in augmentation_layers(white, zoom_out, aspect_jitter):
        x = layer(x)
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
