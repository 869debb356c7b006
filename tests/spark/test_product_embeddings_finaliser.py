"""The finaliser pandas UDF on a hand-made stage: a text-only product's fused vector gets a
predicted image half from the version's modality maps, the stored image_emb stays null, every fused
vector has one size; without maps the vectors are today's. Also the maps' fit-and-report step of
the build (``_fit_maps``) on pandas rows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybridrec.models.embeddings import fuse
from hybridrec.models.imputation import ModalityMaps, fit_maps
from hybridrec.models.product_embeddings import FINALISER_SCHEMA, _fit_maps, finaliser

pytestmark = pytest.mark.spark

IMG, TXT = 6, 4
CLASSES = ["a", "b"]
STAGE = (
    "product_id string, split string, label int, text_emb array<float>, text_label int, text_prob double, "
    "image_emb array<float>, image_label int, image_prob double"
)


def _vectors(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    txt = np.abs(rng.normal(size=(n, TXT)))
    img = np.abs(txt @ rng.normal(size=(TXT, IMG)) + 0.1 * rng.normal(size=(n, IMG)))
    return img.astype(np.float32), txt.astype(np.float32)


def _stage(spark, img: np.ndarray, txt: np.ndarray, has_img: np.ndarray):
    rows = [
        (
            f"p{i}",
            "train",
            0,
            [float(v) for v in txt[i]],
            1,
            0.9,
            [float(v) for v in img[i]] if has_img[i] else None,
            0 if has_img[i] else None,
            0.8 if has_img[i] else None,
        )
        for i in range(len(txt))
    ]
    return spark.createDataFrame(rows, STAGE)


def test_finaliser_imputes_only_the_fused_vector(spark, tmp_path: Path) -> None:
    img, txt = _vectors(40)
    maps = fit_maps(img, txt, ridge=1.0)
    maps_path = tmp_path / "modality_maps.npz"
    maps.save(maps_path)
    has_img = np.arange(40) % 3 == 0
    stage = _stage(spark, img, txt, has_img)

    def run(path: str | None) -> pd.DataFrame:
        out = stage.mapInPandas(finaliser("v1", CLASSES, IMG, TXT, None, path), FINALISER_SCHEMA)
        return out.toPandas().set_index("product_id").loc[[f"p{i}" for i in range(40)]]

    imputed, plain = run(str(maps_path)), run(None)
    assert len(imputed) == 40 and {len(v) for v in imputed["fused_emb"]} == {IMG + TXT}
    # The truth is stored: no image vector where there is no photo, with or without imputation.
    assert imputed["image_emb"].isna().tolist() == (~has_img).tolist()
    assert (imputed["predicted_by"] == np.where(has_img, "image", "text")).all()
    fused = np.stack(imputed["fused_emb"].to_numpy())
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, rtol=1e-5)
    # Every text-only product has a unit image half: the maps' prediction from its text.
    no_photo = ~has_img
    np.testing.assert_allclose(np.linalg.norm(fused[no_photo, :IMG], axis=1), 1 / math.sqrt(2), rtol=1e-5)
    np.testing.assert_allclose(
        fused[no_photo, :IMG] * math.sqrt(2), maps.predict_image(txt[no_photo]), rtol=1e-4, atol=1e-5
    )
    # Products with both vectors are fused as before; without the maps every row is today's vector.
    stored_img = np.where(has_img[:, None], img, 0.0).astype(np.float32)
    np.testing.assert_allclose(fused[has_img], fuse(stored_img, txt)[has_img], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(np.stack(plain["fused_emb"].to_numpy()), fuse(stored_img, txt))
    assert not np.stack(plain["fused_emb"].to_numpy())[no_photo, :IMG].any()


def test_fit_maps_saves_the_maps_and_reports_held_out_quality(tmp_path: Path) -> None:
    img, txt = _vectors(60, seed=1)

    def pdf(lo: int, hi: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "product_id": [f"p{i}" for i in range(lo, hi)],
                "image_emb": list(img[lo:hi]),
                "text_emb": list(txt[lo:hi]),
            }
        )

    path = tmp_path / "v" / "modality_maps.npz"
    report = _fit_maps(pdf(0, 40).sample(frac=1.0, random_state=0), pdf(40, 60), str(path), 0.5)
    assert report["ridge"] == 0.5 and report["train_rows"] == 40 and report["test_rows"] == 20
    for direction in ("text_to_image", "image_to_text"):
        q = report["test"][direction]
        assert q["mean_cosine"] > q["mean_cosine_of_mean_vector"] and q["r2"] is not None
    saved = ModalityMaps.load(path)
    assert (saved.image_dim, saved.text_dim, saved.ridge) == (IMG, TXT, 0.5)
    # The row order of the sample does not change the maps (sorted by product before the fit).
    again = _fit_maps(pdf(0, 40), pdf(40, 60), str(tmp_path / "again.npz"), 0.5)
    assert again == report
    np.testing.assert_array_equal(
        ModalityMaps.load(tmp_path / "again.npz").text_to_image.weights, saved.text_to_image.weights
    )
    assert "test" not in _fit_maps(pdf(0, 40), pdf(0, 0), str(path), 0.5)
