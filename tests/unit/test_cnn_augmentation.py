"""The image CNN's training-only augmentation: zoom-out on white and aspect jitter (issue 24).

What must hold: the layers change photos only in training (serving and evaluation see the photo as
decoded, deterministically), keep shape and dtype, fill with white, and disappear at 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec.models.cnn import augmentation_layers, build_image_model

pytestmark = pytest.mark.unit

SIZE = 32


def _apply(layers: list, x: object, training: bool) -> np.ndarray:
    for layer in layers:
        x = layer(x, training=training)
    return np.asarray(x)


def _black_square_on_grey(n: int = 8) -> np.ndarray:
    """A batch of scaled photos in [-1, 1]: a black product filling the frame but a grey rim."""
    x = np.full((n, SIZE, SIZE, 3), -0.5, dtype=np.float32)
    x[:, 2:-2, 2:-2] = -1.0
    return x


def test_augmentation_is_the_identity_in_inference_and_random_in_training() -> None:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    layers = augmentation_layers(white=1.0, zoom_out=0.5, aspect_jitter=0.25)
    assert [layer.name for layer in layers] == ["augment_flip", "augment_aspect", "augment_zoom_out", "augment_shift"]
    x = _black_square_on_grey()
    inferred = _apply(layers, tf.constant(x), training=False)
    assert inferred.shape == x.shape and inferred.dtype == np.float32
    np.testing.assert_array_equal(inferred, x)
    trained = _apply(layers, tf.constant(x), training=True)
    assert trained.shape == x.shape and trained.dtype == np.float32
    assert not np.array_equal(trained, x)
    # what the zoom-out and shifts uncover is white (1.0 in the scaled range), never black or grey
    assert (trained == 1.0).any() and trained.max() <= 1.0 + 1e-6


def test_zoom_out_shrinks_the_product_onto_white() -> None:
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1)
    (zoom,) = [layer for layer in augmentation_layers(white=255.0, zoom_out=0.5) if layer.name == "augment_zoom_out"]
    x = np.zeros((64, SIZE, SIZE, 3), dtype=np.float32)  # a black product filling the frame
    out = np.asarray(zoom(tf.constant(x), training=True))
    kept = (out < 128).mean(axis=(1, 2, 3))  # share of the frame still covered by the product
    assert kept.min() >= 0.25 - 0.05, "never below half the side (a quarter of the area)"
    assert kept.max() <= 1.0 and kept.mean() < 0.8, "the product usually shrinks"
    shrunk = kept < 0.8
    assert shrunk.any() and (out[shrunk][:, 0, 0] == 255.0).all(), "what surrounds it is white"
    assert out.min() >= 0.0 and out.max() <= 255.0


def test_zero_switches_zoom_and_jitter_off() -> None:
    names = [layer.name for layer in augmentation_layers(white=1.0, zoom_out=0.0, aspect_jitter=0.0)]
    assert names == ["augment_flip", "augment_shift"]
    model = build_image_model(num_classes=3, image_size=SIZE, embedding_dim=8, zoom_out=0.0, aspect_jitter=0.0)
    assert not {"augment_zoom_out", "augment_aspect"} & {layer.name for layer in model.layers}


def test_model_predictions_are_deterministic_with_augmentation_on() -> None:
    """Same photo in, same probabilities out, twice: the augmentation never reaches serving."""
    import tensorflow as tf

    model = build_image_model(num_classes=4, image_size=SIZE, embedding_dim=8, zoom_out=0.5, aspect_jitter=0.25)
    assert {"augment_zoom_out", "augment_aspect"} <= {layer.name for layer in model.layers}
    rng = np.random.default_rng(0)
    photos = rng.integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    first = model.predict(photos, verbose=0)
    np.testing.assert_array_equal(first, model.predict(photos, verbose=0))
    called = np.asarray(model(tf.constant(photos), training=False))
    np.testing.assert_array_equal(called, np.asarray(model(tf.constant(photos), training=False)))
    np.testing.assert_allclose(first, called, rtol=1e-5)  # predict's graph may round differently
    assert first.shape == (5, 4) and first.dtype == np.float32


@pytest.mark.parametrize("kwargs", [{"zoom_out": 1.0}, {"zoom_out": -0.1}, {"aspect_jitter": 1.0}])
def test_out_of_range_strengths_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="train.image_"):
        augmentation_layers(white=1.0, **kwargs)
