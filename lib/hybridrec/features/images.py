"""Product photos → fixed-size uint8 RGB arrays, in plain Python and as a Spark transformation.

Every photo becomes an ``image_size`` x ``image_size`` x 3 uint8 array:

- EXIF orientation applied (phone photos are often stored sideways with a rotate tag);
- converted to RGB from whatever mode the file has (L, LA, P, CMYK, RGBA, I, ...); transparent pixels
  are composited on white, the background of almost every catalog photo, rather than becoming black;
- made square by one of three rules, ``features.image_fit`` (``FITS``):

  - ``stretch`` (default): resized to ``image_size`` x ``image_size`` without keeping the aspect;
  - ``pad``: resized keeping the aspect so the longest side is ``image_size``, centred on white;
  - ``crop``: the centred square of the shorter side's length, resized.

Why stretch: the fashion catalog's photos are 224x224 copies made by squashing the 3:4 originals,
so a model trained on them knows products squashed, not letterboxed. On 2,299 new photos at the
originals' 225x300 the image model's accuracy was 0.716 stretched, 0.594 centre-cropped and 0.533
padded, against 0.740 on its own test split. Whatever the rule, it is one function
(``load_image`` / ``decode_images``) for the features (preprocess) and for serving (the nightly
embedding of new products), and the rule a model was trained with travels in its manifest
(``images.feature.fit``), so training and serving cannot decode a photo differently.

On disk an image is its raw pixel bytes (row-major H, W, C; ``size*size*3`` bytes) in a Parquet
BINARY column. Petastorm hands such a column to tf.data as a ``tf.string`` that
``tf.io.decode_raw(x, tf.uint8)`` + ``reshape`` turn into a ``(batch, H, W, 3)`` uint8 tensor in one
vectorised op. The alternative, a flat ``array<byte>`` column, reads 3.5-4x slower (Petastorm
stacks list columns row by row in numpy: 4,096 fashion photos at 64 px, 512-row groups, 4 reader
threads into tf.data: 25-40k images/s as BINARY vs 6-11k as array<byte>; the same size on disk with
snappy; bench/bench_preprocess.py), and Spark has no unsigned byte, so it comes back as int8.

A photo that cannot be decoded here (ingest only checked that it opens; a truncated JPEG fails when
its pixels are read) yields a row with ``image = null`` and the reason in ``error``; the caller keeps
those rows out of the features and counts and records them, so no product disappears silently.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pandas as pd
from PIL import Image, ImageFile, ImageOps
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from hybridrec.config import IMAGE_FITS

# Truncated files must fail, not be padded with grey by Pillow.
ImageFile.LOAD_TRUNCATED_IMAGES = False

WHITE = (255, 255, 255)
CHANNELS = 3
# The ways a photo becomes a square (features.image_fit), declared once with the config.
FITS = IMAGE_FITS
# What features written before features.image_fit existed were decoded with.
LEGACY_FIT = "pad"
# Each rule in words, for the features manifest.
FIT_RULES = {
    "stretch": "resized to the square without keeping the aspect (features.image_fit: stretch)",
    "pad": "aspect-preserving resize of the longest side, centred on a white square (features.image_fit: pad)",
    "crop": "the centred square of the shorter side, resized (features.image_fit: crop)",
}
# Rows per Arrow batch handed back to Spark: bounds the Python worker's memory for large images.
_OUTPUT_CHUNK_ROWS = 256

DECODED_FIELDS = [
    T.StructField("image", T.BinaryType(), True),
    T.StructField("error", T.StringType(), True),
]


def image_shape(size: int) -> tuple[int, int, int]:
    """Shape of one stored image: (height, width, channels)."""
    return (size, size, CHANNELS)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; transparency (alpha or a palette's transparent index) on white."""
    if img.mode == "RGB":
        return img
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # High bit-depth greyscale: scale to 0..255 instead of clipping everything above 255 to white.
        arr = np.asarray(img, dtype=np.float64)
        top = float(arr.max()) if arr.size else 0.0
        scale = 255.0 / top if top > 255.0 else 1.0
        img = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), mode="L")
    return img.convert("RGB")


def fit_size(width: int, height: int, size: int) -> tuple[int, int]:
    """Size after an aspect-preserving resize that makes the longest side ``size`` (each side >= 1)."""
    longest = max(width, height)
    return (max(1, round(width * size / longest)), max(1, round(height * size / longest)))


def fit_and_pad(img: Image.Image, size: int) -> Image.Image:
    """Resize ``img`` (RGB) so its longest side is ``size`` and centre it on a white square."""
    target = fit_size(img.width, img.height, size)
    if img.size != target:
        # Pillow's resize filters widen with the scale factor, so bilinear does not alias when
        # shrinking; draft() (JPEG) has already done the coarse power-of-two reduction.
        img = img.resize(target, Image.Resampling.BILINEAR)
    if target == (size, size):
        return img
    canvas = Image.new("RGB", (size, size), WHITE)
    canvas.paste(img, ((size - target[0]) // 2, (size - target[1]) // 2))
    return canvas


def stretch(img: Image.Image, size: int) -> Image.Image:
    """Resize ``img`` (RGB) to ``size`` x ``size`` whatever its aspect: the product fills the frame."""
    if img.size == (size, size):
        return img
    return img.resize((size, size), Image.Resampling.BILINEAR)


def centre_crop(img: Image.Image, size: int) -> Image.Image:
    """The centred square of ``img`` (RGB) with the shorter side's length, resized to ``size``.

    The crop box is handed to ``resize`` so that only the kept pixels are resampled, in one pass.
    """
    if img.size == (size, size):
        return img
    side = min(img.width, img.height)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))


def check_fit(fit: str) -> str:
    """``fit`` if it names a rule of ``FITS``, else a ValueError naming the allowed ones."""
    if fit not in FITS:
        raise ValueError(f"unknown image fit {fit!r}: expected one of {' | '.join(FITS)} (features.image_fit)")
    return fit


def fit_square(img: Image.Image, size: int, fit: str) -> Image.Image:
    """``img`` (RGB) made a ``size`` x ``size`` square by the rule ``fit`` (module docstring)."""
    check_fit(fit)
    if fit == "stretch":
        return stretch(img, size)
    if fit == "crop":
        return centre_crop(img, size)
    return fit_and_pad(img, size)


def draft_size(width: int, height: int, size: int, fit: str) -> tuple[int, int]:
    """The smallest decoded size from which ``fit`` still loses no resolution.

    ``pad`` needs the longest side at ``size``; ``stretch`` and ``crop`` need both sides at least
    ``size``. Either box is symmetric in width and height, so an EXIF rotation applied after the
    draft asks for the same reduction.
    """
    return fit_size(width, height, size) if fit == "pad" else (size, size)


def load_image(source: str | bytes, size: int, *, fit: str) -> np.ndarray:
    """Decode one photo (a file path or the file's bytes) into a (size, size, 3) uint8 array.

    ``fit`` (stretch | pad | crop) has no default on purpose: every caller passes the rule of the
    features or of the model it feeds (``features.image_fit``, or ``images.feature.fit`` of a
    model's manifest), so no call site can silently decode differently from training.

    Raises whatever Pillow raises for an unreadable or truncated file; ``decode_to_bytes`` turns that
    into an error string for the Spark path.
    """
    check_fit(fit)
    return np.asarray(_load_rgb(source, size, fit), dtype=np.uint8)


def decode_to_bytes(source: str | bytes | None, size: int, *, fit: str) -> tuple[bytes | None, str | None]:
    """(raw HxWx3 bytes, None) for a good photo, (None, reason) for one that fails to decode."""
    check_fit(fit)  # a wrong rule is a programming error, not a bad photo: raise, do not record it
    if source is None:
        return None, "no image path"
    try:
        img = _load_rgb(source, size, fit)
        data = img.tobytes()
    except Exception as exc:  # noqa: BLE001 - every failure is recorded per product, none may kill the job
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if len(data) != size * size * CHANNELS:  # pragma: no cover - guards the invariant readers rely on
        return None, f"decoded to {len(data)} bytes, expected {size * size * CHANNELS}"
    return data, None


def _load_rgb(source: str | bytes, size: int, fit: str) -> Image.Image:
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else _local_path(source)
    with Image.open(fp) as img:
        # JPEG only: let libjpeg decode at 1/2, 1/4 or 1/8 scale when the target is that much smaller
        # (the biggest single speed-up for large photos); see draft_size for the EXIF rotation.
        img.draft(None, draft_size(img.width, img.height, size, fit))
        img.load()
        img = ImageOps.exif_transpose(img) or img
        return fit_square(to_rgb(img), size, fit)


def _local_path(path: str) -> str:
    """Image paths in bronze.products are local (or FUSE-mounted) files; accept ``file:`` URIs too."""
    if path.startswith("file://"):
        return path[len("file://") :]
    if path.startswith("file:"):
        return path[len("file:") :]
    return path


def decode_images(products: DataFrame, size: int, *, fit: str, path_col: str = "image_path") -> DataFrame:
    """Decode the photo of every row of ``products`` (pure: DataFrame in, DataFrame out) by ``fit``.

    Output: the input columns plus ``image`` (BINARY, ``size*size*3`` raw RGB bytes, null on failure)
    and ``error`` (null on success, the reason otherwise). Rows keep their order and count, so a
    failed decode is still a row the caller can count and record (with its path).

    ``mapInPandas`` rather than a scalar pandas UDF: the output rows are large (12 KiB at 64 px,
    147 KiB at 224 px) and the function yields them in chunks of a few hundred rows, whatever
    ``spark.sql.execution.arrow.maxRecordsPerBatch`` is, so a Python worker's memory stays bounded.
    """
    check_fit(fit)  # on the driver: a wrong rule stops the job before any task starts
    keep = list(products.schema.fields)
    out_schema = T.StructType(keep + DECODED_FIELDS)
    keep_names = [f.name for f in keep]

    def decode_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for start in range(0, len(batch), _OUTPUT_CHUNK_ROWS):
                chunk = batch.iloc[start : start + _OUTPUT_CHUNK_ROWS]
                decoded = [decode_to_bytes(p, size, fit=fit) for p in chunk[path_col]]
                out = chunk[keep_names].reset_index(drop=True)
                out["image"] = [d for d, _ in decoded]
                out["error"] = [e for _, e in decoded]
                yield out

    return products.mapInPandas(decode_batches, schema=out_schema)
