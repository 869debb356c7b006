"""The content models: shapes, the named embedding layer, version naming and steps per epoch."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec.config import TrainConfig
from hybridrec.models.cnn import EMBEDDING_LAYER, build_image_model
from hybridrec.models.lstm import build_text_model
from hybridrec.models.training import model_version
from hybridrec.models.worker import TrainSpec


def test_image_model_takes_uint8_pixels_and_exposes_its_embedding() -> None:
    model = build_image_model(num_classes=5, image_size=32, embedding_dim=24)
    probs = model.predict(np.zeros((3, 32, 32, 3), dtype=np.uint8), verbose=0)
    assert probs.shape == (3, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert model.get_layer(EMBEDDING_LAYER).output.shape[-1] == 24


def test_text_model_masks_padding() -> None:
    import tensorflow as tf

    model = build_text_model(num_classes=3, vocab_size=50, max_len=8, token_dim=8, lstm_units=4, embedding_dim=12)
    embed = tf.keras.Model(model.input, model.get_layer(EMBEDDING_LAYER).output)
    a = np.array([[5, 6, 7, 0, 0, 0, 0, 0]], dtype=np.int32)
    # Padding is masked: a sequence is embedded the same whatever follows it as PAD.
    assert embed(a, training=False).shape == (1, 12)
    assert model.predict(a, verbose=0).shape == (1, 3)


@pytest.mark.parametrize("kind", ["mobilenet_v2", "efficientnet_b0"])
def test_application_backbones_build_from_scratch(kind: str) -> None:
    model = build_image_model(num_classes=4, image_size=32, kind=kind, embedding_dim=16)
    assert model.predict(np.full((1, 32, 32, 3), 255, dtype=np.uint8), verbose=0).shape == (1, 4)


def test_one_class_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        build_image_model(num_classes=1, image_size=32)


def test_model_version_is_stable_and_changes_with_what_the_model_learns() -> None:
    manifest = {"run_id": "r1", "created_at": "2026-11-24T10:00:00+00:00"}
    tc = TrainConfig()
    v = model_version(tc, manifest, 2)
    assert v.startswith("2026-11-24-") and v == model_version(TrainConfig(), manifest, 2)
    assert model_version(TrainConfig(threads_per_proc=1, start_timeout=5), manifest, 2) == v
    assert model_version(TrainConfig(epochs=3), manifest, 2) != v
    assert model_version(tc, manifest, 1) != v
    assert model_version(tc, {**manifest, "run_id": "r2"}, 2) != v
    assert model_version(TrainConfig(model_version="mine"), manifest, 2) == "mine"


def test_every_rank_takes_the_same_number_of_steps() -> None:
    spec = TrainSpec(
        model="text",
        train=TrainConfig(batch_size=64),
        urls={},
        row_groups={},
        labelled_rows={"train": 1000},
        class_names=["a", "b"],
        image_size=8,
        max_len=4,
        vocab_size=10,
        checkpoint_dir="",
        export_dir="",
        threads_per_proc=1,
    )
    assert spec.steps_per_epoch(1) == 15 and spec.steps_per_epoch(2) == 7
    spec.train.max_steps_per_epoch = 3
    assert spec.steps_per_epoch(2) == 3
    spec.labelled_rows = {"train": 10}
    assert spec.steps_per_epoch(4) == 1  # at least one step
