"""The classifiers' output heads: the category (``probs``) and one softmax per attribute head.

Every content model ends in the same way: a shared ``embedding`` layer (the product vector), then
one softmax per thing the catalog labels. The category head is always there and keeps the name
``probs`` (the predicted category, the fusion classifier and older model versions read it); the
attribute heads of ``features.label_heads`` (fashion: gender, baseColour, usage, ...) are named
``head_<attribute>``. Because all heads read the one embedding, training pulls it towards every
attribute at once: neighbours by that vector share colour and gender, not only the type.

Missing labels are masked per head: the data pipeline gives a head's label as 0 with sample weight
0 where the product has no value (``data.make_dataset``), so a product without a category still
teaches the gender and colour heads, and the losses are averaged over the batch as usual.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

MAIN_OUTPUT = "probs"


def head_output_name(attribute: str) -> str:
    """The Keras output name of an attribute head (letters, digits and ``_`` only)."""
    return "head_" + re.sub(r"[^0-9A-Za-z_]", "_", attribute)


def output_names(heads: Sequence[tuple[str, int]]) -> list[str]:
    """Output names in model order: ``probs`` then one per head."""
    return [MAIN_OUTPUT] + [head_output_name(h) for h, _ in heads]


def class_outputs(x: Any, num_classes: int, heads: Sequence[tuple[str, int]] = ()) -> Any:
    """The softmax outputs on ``x``: one tensor without heads (the model of old), else a list."""
    from tensorflow.keras import layers

    main = layers.Dense(num_classes, activation="softmax", name=MAIN_OUTPUT)(x)
    if not heads:
        return main
    for attribute, n in heads:
        if n < 2:
            raise ValueError(f"attribute head {attribute!r} needs at least 2 classes, got {n}")
    return [main] + [layers.Dense(n, activation="softmax", name=head_output_name(a))(x) for a, n in heads]


def main_output(model: Any) -> Any:
    """The category probabilities tensor of a (possibly multi-head) Keras model."""
    return model.get_layer(MAIN_OUTPUT).output
