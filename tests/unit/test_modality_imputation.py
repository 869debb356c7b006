"""The text <-> image ridge maps and the fused vector with a missing half imputed from them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hybridrec.errors import HybridrecError
from hybridrec.models.embeddings import fuse, l2_normalise
from hybridrec.models.imputation import ModalityMaps, fit_maps, fit_ridge, load_maps_once, map_quality


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _paired(n: int, img_dim: int = 6, txt_dim: int = 4, noise: float = 0.0, seed: int = 0):
    """Text vectors and image vectors that are a fixed linear function of them (plus noise)."""
    rng = np.random.default_rng(seed)
    txt = rng.normal(size=(n, txt_dim))
    w = rng.normal(size=(txt_dim, img_dim))
    img = txt @ w + 0.5 + noise * rng.normal(size=(n, img_dim))
    return img, txt


def test_ridge_recovers_a_known_linear_map_with_its_intercept() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 5))
    w, b = rng.normal(size=(5, 3)), np.array([1.0, -2.0, 0.5])
    m = fit_ridge(x, x @ w + b, ridge=1e-8)
    assert m.weights.shape == (5, 3) and m.bias.shape == (3,) and m.target_mean.shape == (3,)
    np.testing.assert_allclose(m.weights, w, atol=1e-6)
    np.testing.assert_allclose(m.bias, b, atol=1e-6)


def test_a_larger_ridge_shrinks_the_weights_towards_predicting_the_mean() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 2))
    norms = [np.linalg.norm(fit_ridge(x, y, ridge=r).weights) for r in (0.01, 1.0, 100.0, 1e6)]
    assert norms == sorted(norms, reverse=True) and norms[-1] < 1e-3
    # Fewer rows than dimensions: still solvable with ridge > 0.
    assert fit_ridge(x[:3], y[:3], ridge=1.0).weights.shape == (8, 2)
    with pytest.raises(HybridrecError, match="ridge > 0"):
        fit_ridge(x, y, ridge=0.0)
    with pytest.raises(HybridrecError, match="same rows"):
        fit_ridge(x, y[:10], ridge=1.0)


def test_fit_maps_has_both_directions_and_good_held_out_quality_on_a_linear_relation(tmp_path: Path) -> None:
    img, txt = _paired(400, noise=0.01)
    maps = fit_maps(img[:300], txt[:300], ridge=0.01)
    assert (maps.image_dim, maps.text_dim, maps.train_rows) == (6, 4, 300)
    assert maps.text_to_image.weights.shape == (4, 6) and maps.image_to_text.weights.shape == (6, 4)
    predicted = maps.predict_image(txt[300:])
    np.testing.assert_allclose(np.linalg.norm(predicted, axis=1), 1.0, rtol=1e-9)
    quality = map_quality(maps, img[300:], txt[300:])
    assert quality["rows"] == 100
    for direction in ("text_to_image", "image_to_text"):
        q = quality[direction]
        assert set(q) == {"mean_cosine", "mean_cosine_of_mean_vector", "r2"}
        assert q["mean_cosine"] > q["mean_cosine_of_mean_vector"]
        assert -1.0 <= q["mean_cosine"] <= 1.0 and q["r2"] <= 1.0
    # Normalising loses the scale, so text -> image is not exactly linear: near perfect, not perfect.
    assert quality["text_to_image"]["mean_cosine"] > 0.95 and quality["text_to_image"]["r2"] > 0.8
    # Unrelated vectors: no better than the mean.
    rng = np.random.default_rng(3)
    noise = fit_maps(rng.normal(size=(300, 6)), rng.normal(size=(300, 4)), ridge=1.0)
    assert map_quality(noise, rng.normal(size=(200, 6)), rng.normal(size=(200, 4)))["text_to_image"]["r2"] < 0.05


def test_maps_round_trip_through_the_npz_file_and_a_bad_file_fails_clearly(tmp_path: Path) -> None:
    img, txt = _paired(50)
    maps = fit_maps(img, txt, ridge=0.5)
    path = tmp_path / "m" / "modality_maps.npz"
    maps.save(path)
    back = load_maps_once(str(path))
    assert (back.image_dim, back.text_dim, back.ridge, back.train_rows) == (6, 4, 0.5, 50)
    np.testing.assert_array_equal(back.predict_image(txt), maps.predict_image(txt))
    np.testing.assert_array_equal(back.predict_text(img), maps.predict_text(img))
    assert load_maps_once(str(path)) is back  # cached per process
    with pytest.raises(HybridrecError, match="cannot read the modality maps"):
        load_maps_once(str(tmp_path / "absent.npz"))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(HybridrecError, match="re-run jobs/train.py"):
        ModalityMaps.load(tmp_path / "bad.npz")


def test_without_maps_fuse_is_the_old_vector_exactly() -> None:
    img = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    txt = np.array([[0.0, 2.0], [1.0, 0.0]], dtype=np.float32)
    old = l2_normalise(np.concatenate([l2_normalise(img), l2_normalise(txt)], axis=1) / math.sqrt(2.0)).astype(
        np.float32
    )
    np.testing.assert_array_equal(fuse(img, txt), old)
    np.testing.assert_array_equal(fuse(img, txt, None, np.array([False, True]), np.array([True, True])), old)


def test_a_text_only_product_gets_a_predicted_image_half() -> None:
    img, txt = _paired(200, noise=0.05)
    maps = fit_maps(img, txt, ridge=0.1)
    q_img, q_txt = img[:2].copy(), txt[:2].copy()
    q_img[1] = 0.0  # product 1: no photo
    has_img = np.array([True, False])
    fused = fuse(q_img, q_txt, maps, has_img, np.array([True, True]))
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, rtol=1e-6)
    # Both halves of the text-only product have unit length / sqrt(2).
    np.testing.assert_allclose(np.linalg.norm(fused[1, :6]), 1 / math.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(fused[1, :6] * math.sqrt(2), maps.predict_image(txt[1:2])[0], rtol=1e-5, atol=1e-6)
    # The product with both is untouched by the maps.
    np.testing.assert_array_equal(fused[0], fuse(q_img[:1], q_txt[:1])[0])
    # Missing text is imputed the same way from the photo.
    fused_t = fuse(img[:1], np.zeros((1, 4)), maps)
    np.testing.assert_allclose(fused_t[0, 6:] * math.sqrt(2), maps.predict_text(img[:1])[0], rtol=1e-5, atol=1e-6)
    # No modality at all stays an all-zero row, not NaN.
    assert not fuse(np.zeros((1, 6)), np.zeros((1, 4)), maps).any()


def test_same_text_with_and_without_a_photo_compares_by_the_formula() -> None:
    img, txt = _paired(200, noise=0.3, seed=4)
    maps = fit_maps(img, txt, ridge=1.0)
    photo = fuse(img[:1], txt[:1], maps)[0]
    text_only = fuse(np.zeros((1, 6)), txt[:1], maps)[0]
    expected = (_cos(img[0], maps.predict_image(txt[:1])[0]) + 1.0) / 2
    assert float(photo @ text_only) == pytest.approx(expected, rel=1e-5)
    # Before imputation the same pair could not exceed 1/sqrt(2); now it is above that when the
    # prediction points the right way, as between two photo products with close photos.
    assert float(photo @ fuse(np.zeros((1, 6)), txt[:1])[0]) == pytest.approx(1 / math.sqrt(2), rel=1e-5)
    assert expected > 1 / math.sqrt(2)


def test_text_only_products_become_neighbours_of_photo_products() -> None:
    """The issue's symptom in small: none among a photo query's neighbours before, some after."""
    rng = np.random.default_rng(5)
    centres_t, centres_i = rng.normal(size=(5, 8)), rng.normal(size=(5, 10))
    cls = np.repeat(np.arange(5), 120)
    # Non-negative, like the ReLU embeddings of the models: same-class products are close.
    txt = np.maximum(centres_t[cls] + 0.3 * rng.normal(size=(600, 8)), 0.0)
    img = np.maximum(centres_i[cls] + 0.3 * rng.normal(size=(600, 10)), 0.0)
    has_img = rng.random(600) < 0.3
    maps = fit_maps(img[has_img], txt[has_img], ridge=1.0)
    stored_img = np.where(has_img[:, None], img, 0.0)

    def text_only_share(fused: np.ndarray) -> float:
        sims = fused[has_img] @ fused.T
        sims[np.arange(has_img.sum()), np.flatnonzero(has_img)] = -np.inf  # not itself
        top = np.argsort(-sims, axis=1)[:, :10]
        return float((~has_img[top]).mean())

    before, after = text_only_share(fuse(stored_img, txt)), text_only_share(fuse(stored_img, txt, maps, has_img))
    # ~70 % of the products are text-only; before, they only reach a photo query's top 10 where a
    # class has too few close photo products.
    print(f"text-only share of photo queries' top 10: {before:.3f} -> {after:.3f} (catalog 0.7)")
    assert before < 0.05 and after > 0.4


def test_maps_of_other_dimensions_are_refused() -> None:
    img, txt = _paired(30)
    maps = fit_maps(img, txt, ridge=1.0)
    with pytest.raises(ValueError, match="6-dim image and 4-dim text"):
        fuse(np.zeros((1, 5)), txt[:1], maps)
