"""Imputing a missing modality: ridge maps text → image and image → text for the fused vector.

Why: with a missing half left at zero, the fused vector of a text-only product can reach a cosine of
at most ~0.71 with a product that has a photo, so the two groups never meet among each other's
nearest neighbours (on the fashion catalog 77 % of the products are text-only and none appeared in
the top 10 of a photo query). Filling the missing half with the image vector *predicted from the
text* (or the text vector predicted from the image) puts every product in one joint space: the
cosine of a photo product and a text-only product becomes ``(cos(img, predicted img) + cos(txt,
txt)) / 2``, on the same scale as two photo products.

The maps are linear with ridge regularisation, fitted in closed form on the driver (numpy) on the
fusion classifier's bounded sample (train-split products with both vectors); both sides are
L2-normalised first, so ``ridge`` means the same whatever the embedding sizes. Their held-out
quality (test-split products with both) goes into the fusion report. They are saved beside the
fusion model (``MAPS_FILE``, npz with the dimensions and the ridge) and loaded once per Python
worker by the finaliser; a model version without the file fuses as before (missing half zero).

Only the fused vector carries the prediction: ``image_emb`` / ``text_emb`` stay null where the
product has no photo / text, because that is the truth.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridrec.errors import HybridrecError
from hybridrec.models.embeddings import l2_normalise

# Beside the fusion model in ``<paths.models>/<version>/``.
MAPS_FILE = "modality_maps.npz"

_LOADED: dict[str, ModalityMaps] = {}
_ARRAYS = ("weights", "bias", "target_mean")  # RidgeMap's fields, in order, as saved


@dataclass(frozen=True)
class RidgeMap:
    """``y ≈ x @ weights + bias`` on L2-normalised inputs; the bias is not regularised."""

    weights: np.ndarray  # (input dim, output dim)
    bias: np.ndarray  # (output dim,)
    # Mean target of the training rows: the constant prediction the map must beat (``map_quality``).
    target_mean: np.ndarray  # (output dim,)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The raw prediction for the rows of ``x`` (normalised here; not renormalised)."""
        x = l2_normalise(np.asarray(x, dtype=np.float64))
        if x.shape[1] != self.weights.shape[0]:
            raise HybridrecError(f"modality map expects {self.weights.shape[0]}-dim input vectors, got {x.shape[1]}")
        return x @ self.weights + self.bias


def fit_ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> RidgeMap:
    """Least squares with an L2 penalty ``ridge * |W|²``, closed form on centred data.

    Centring lets the intercept go unpenalised (the mean vector of a modality is far from zero for
    ReLU embeddings); ``ridge > 0`` keeps the system solvable with fewer rows than dimensions.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise HybridrecError(f"ridge fit needs two 2-d arrays with the same rows (>0), got {x.shape} and {y.shape}")
    if not ridge > 0:
        raise HybridrecError(f"ridge fit needs ridge > 0, got {ridge}")
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    gram = xc.T @ xc + ridge * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, xc.T @ yc)
    return RidgeMap(weights=weights, bias=y_mean - x_mean @ weights, target_mean=y_mean)


@dataclass(frozen=True)
class ModalityMaps:
    """The two maps of one model version, with what they were fitted on."""

    text_to_image: RidgeMap
    image_to_text: RidgeMap
    ridge: float
    train_rows: int

    @property
    def image_dim(self) -> int:
        return int(self.text_to_image.weights.shape[1])

    @property
    def text_dim(self) -> int:
        return int(self.image_to_text.weights.shape[1])

    def predict_image(self, text: np.ndarray) -> np.ndarray:
        """Unit-length image halves predicted from text vectors."""
        return l2_normalise(self.text_to_image.predict(text))

    def predict_text(self, image: np.ndarray) -> np.ndarray:
        """Unit-length text halves predicted from image vectors."""
        return l2_normalise(self.image_to_text.predict(image))

    def save(self, path: str | Path) -> None:
        """One npz file (written whole, then renamed, so a reader never sees half of it)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            np.savez(
                f,
                **{
                    f"{name}_{k}": getattr(m, k)
                    for name, m in (("text_to_image", self.text_to_image), ("image_to_text", self.image_to_text))
                    for k in _ARRAYS
                },
                image_dim=np.int64(self.image_dim),
                text_dim=np.int64(self.text_dim),
                ridge=np.float64(self.ridge),
                train_rows=np.int64(self.train_rows),
            )
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> ModalityMaps:
        """Read a file written by ``save``; a missing or inconsistent file fails naming it."""
        try:
            with np.load(Path(path)) as z:
                maps = cls(
                    text_to_image=RidgeMap(*(z[f"text_to_image_{k}"] for k in _ARRAYS)),
                    image_to_text=RidgeMap(*(z[f"image_to_text_{k}"] for k in _ARRAYS)),
                    ridge=float(z["ridge"]),
                    train_rows=int(z["train_rows"]),
                )
                dims = int(z["image_dim"]), int(z["text_dim"])
        except (OSError, KeyError, ValueError) as e:
            raise HybridrecError(f"cannot read the modality maps {path}: {e}; re-run jobs/train.py") from e
        if (maps.image_dim, maps.text_dim) != dims or maps.image_to_text.weights.shape[0] != dims[0]:
            raise HybridrecError(f"modality maps {path} are inconsistent with their dims {dims}; re-run jobs/train.py")
        return maps


def fit_maps(image: np.ndarray, text: np.ndarray, ridge: float) -> ModalityMaps:
    """Both maps from the paired vectors of the same products (each side L2-normalised)."""
    img = l2_normalise(np.asarray(image, dtype=np.float64))
    txt = l2_normalise(np.asarray(text, dtype=np.float64))
    return ModalityMaps(
        text_to_image=fit_ridge(txt, img, ridge),
        image_to_text=fit_ridge(img, txt, ridge),
        ridge=float(ridge),
        train_rows=len(img),
    )


def _direction_quality(pred: np.ndarray, truth: np.ndarray, train_mean: np.ndarray) -> dict[str, float | None]:
    """Mean cosine (prediction vs truth, and the train-mean vector vs truth as the floor) and R²."""
    pred_unit = l2_normalise(pred)
    mean_unit = l2_normalise(train_mean[None, :])[0]
    ss_res = float(((truth - pred) ** 2).sum())
    ss_tot = float(((truth - truth.mean(axis=0)) ** 2).sum())
    return {
        "mean_cosine": float((pred_unit * truth).sum(axis=1).mean()),
        "mean_cosine_of_mean_vector": float((truth @ mean_unit).mean()),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else None,  # None: one held-out product
    }


def map_quality(maps: ModalityMaps, image: np.ndarray, text: np.ndarray) -> dict[str, Any]:
    """Held-out quality of both maps on products that have both vectors (targets normalised).

    R² is over all output dimensions together (1 − residual / total sum of squares around the
    held-out mean); ``mean_cosine_of_mean_vector`` is what predicting the training mean for every
    product would score, the floor the map must beat to carry product-specific information.
    """
    img = l2_normalise(np.asarray(image, dtype=np.float64))
    txt = l2_normalise(np.asarray(text, dtype=np.float64))
    return {
        "rows": len(img),
        "text_to_image": _direction_quality(maps.text_to_image.predict(txt), img, maps.text_to_image.target_mean),
        "image_to_text": _direction_quality(maps.image_to_text.predict(img), txt, maps.image_to_text.target_mean),
    }


def load_maps_once(path: str) -> ModalityMaps:
    """The maps of one model version, read once per Python worker process (like the models).

    Keyed by the file's size and modification time too: Spark reuses its Python workers, and a
    re-run of the same version in the same session (``--restart``) writes new maps at the same path.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        raise HybridrecError(f"cannot read the modality maps {path}: {e}; re-run jobs/train.py") from e
    key = f"{path}#{st.st_size}#{st.st_mtime_ns}"
    if key not in _LOADED:
        _LOADED[key] = ModalityMaps.load(path)
    return _LOADED[key]
