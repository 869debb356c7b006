"""The fusion classifier: [image embedding, text embedding] → category, for products with both.

A small MLP on the two L2-normalised penultimate-layer vectors (``embeddings.fusion_input``). It is
trained after the two base models, on the driver (the inputs are a few hundred floats per product;
at most ``MAX_FUSION_ROWS`` rows are sampled), with early stopping on the validation split, and
evaluated on the test products that have a photo, next to the image and the text model on exactly
the same products so the comparison is fair.

Why the training split although the base models saw it: their embeddings of training products are a
little over-confident, but the validation split alone is too small to fit a 30-class head (fashion:
~1k photos); early stopping on validation embeddings guards against learning that over-confidence.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_FUSION_ROWS = 200_000


def build_fusion_model(input_dim: int, num_classes: int, hidden: int = 256, dropout: float = 0.4) -> Any:
    import tensorflow as tf
    from tensorflow.keras import layers

    inputs = tf.keras.Input(shape=(input_dim,), dtype=tf.float32, name="embeddings")
    x = layers.Dropout(0.1, name="input_dropout")(inputs)
    x = layers.Dense(hidden, activation="relu", name="hidden")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return tf.keras.Model(inputs, outputs, name="fusion_mlp")


def train_fusion(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
    epochs: int = 30,
    batch_size: int = 128,
    seed: int = 42,
    patience: int = 4,
) -> tuple[Any, list[dict[str, float]]]:
    """Fit the fusion MLP; returns the model (best validation weights) and the per-epoch history."""
    import tensorflow as tf

    if len(x_train) == 0:
        raise ValueError("no training products with both a photo and a text vector for the fusion model")
    tf.keras.utils.set_random_seed(seed)
    model = build_fusion_model(x_train.shape[1], num_classes)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    has_val = len(x_val) > 0
    callbacks = [
        tf.keras.callbacks.EarlyStopping(
            monitor="val_loss" if has_val else "loss", patience=patience, restore_best_weights=True
        )
    ]
    hist = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val) if has_val else None,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        callbacks=callbacks,
        shuffle=True,
    )
    keys = list(hist.history)
    history = [
        {k: float(hist.history[k][i]) for k in keys} | {"epoch": i + 1} for i in range(len(hist.history[keys[0]]))
    ]
    return model, history
