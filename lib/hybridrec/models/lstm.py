"""The text classifier: token ids → embedding → (bi)LSTM → dense ``embedding`` layer → classes.

Inputs are the preprocess job's ``token_ids`` (exactly ``features.max_len`` ids, 0 = PAD at the
end, 1 = UNK); the embedding layer masks PAD, so the LSTM reads only the real tokens. The layer named
``embedding`` is the product's text vector in ``gold.product_embeddings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hybridrec.models.cnn import EMBEDDING_LAYER
from hybridrec.models.heads import class_outputs


def build_text_model(
    num_classes: int,
    vocab_size: int,
    max_len: int,
    token_dim: int = 64,
    lstm_units: int = 64,
    bidirectional: bool = True,
    embedding_dim: int = 128,
    dropout: float = 0.3,
    heads: Sequence[tuple[str, int]] = (),
) -> Any:
    """A Keras model: int32 (max_len,) token ids → class probabilities."""
    import tensorflow as tf
    from tensorflow.keras import layers

    if num_classes < 2:
        raise ValueError(f"the text model needs at least 2 classes, got {num_classes}")
    if vocab_size < 3:
        raise ValueError(f"the vocabulary needs PAD, UNK and at least one token, got {vocab_size} ids")
    inputs = tf.keras.Input(shape=(max_len,), dtype=tf.int32, name="token_ids")
    x = layers.Embedding(vocab_size, token_dim, mask_zero=True, name="tokens")(inputs)
    x = layers.SpatialDropout1D(0.1, name="token_dropout")(x)
    lstm = layers.LSTM(lstm_units, name="lstm")
    x = layers.Bidirectional(lstm, name="bilstm")(x) if bidirectional else lstm(x)
    x = layers.Dropout(dropout, name="dropout_features")(x)
    emb = layers.Dense(embedding_dim, activation="relu", name=EMBEDDING_LAYER)(x)
    x = layers.Dropout(dropout, name="dropout_embedding")(emb)
    outputs = class_outputs(x, num_classes, heads)
    return tf.keras.Model(inputs, outputs, name="text_lstm")
