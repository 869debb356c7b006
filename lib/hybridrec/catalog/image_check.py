"""Is a product's referenced photo inside the image root, present, and decodable by Pillow?

Ingest runs this on every product with an image reference, on the executors (a pandas UDF over the
reference column), so photos are read where the tasks run and never travel to the driver. The
plain-Python ``check_image`` is what the UDF calls per row; tests call it directly.

"Decodable" means Pillow opens the file, ``verify()`` passes and the pixels load (JPEGs in draft
mode, at 1/8 scale: the entropy-coded data is still read end to end, so a truncated file fails, at a
fraction of the cost of a full decode). A declared size above Pillow's decompression-bomb limit is
unreadable. A PNG or WebP named ``.jpg``, CMYK, grayscale, RGBA or 16-bit images are readable: the
preprocess step converts them to RGB.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import NamedTuple

import pandas as pd
from PIL import Image, ImageFile
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

# Truncated files must fail here rather than be padded by Pillow.
ImageFile.LOAD_TRUNCATED_IMAGES = False

OK = "ok"
MISSING = "missing"
UNREADABLE = "unreadable"
ESCAPES = "escapes"

IMAGE_CHECK_TYPE = T.StructType(
    [
        T.StructField("status", T.StringType(), True),
        # Absolute path of the photo when it lies inside the root (ok, missing or unreadable).
        T.StructField("path", T.StringType(), True),
        T.StructField("detail", T.StringType(), True),
    ]
)


class ImageCheck(NamedTuple):
    status: str
    path: str | None
    detail: str | None


def local_root(image_root: str) -> str:
    """The image root as an absolute local path (``file:`` URIs accepted, other schemes not).

    Photos are opened with plain file I/O on the executors, so the root must be a local or mounted
    folder (on Databricks a Volume or ``/dbfs/...``).
    """
    root = image_root
    if root.startswith("file:"):
        root = root[len("file:") :]
        while root.startswith("//"):
            root = root[1:]
    return os.path.normpath(os.path.abspath(root))


def resolve_image_path(root: str, ref: str) -> tuple[str | None, str | None]:
    """``(absolute path, None)`` for a reference inside ``root``, else ``(None, why)``.

    Pure path arithmetic (no file access): a relative reference is joined to the root, ``..`` parts
    are folded, and the result must stay under the root; an absolute reference must already be under
    it. ``root`` is an absolute, normalised path (``local_root``).
    """
    if "\x00" in ref:
        return None, "image path contains a NUL byte"
    candidate = os.path.normpath(ref if os.path.isabs(ref) else os.path.join(root, ref))
    if not _inside(candidate, root):
        return None, f"image path {ref!r} resolves to {candidate}, outside the image root {root}"
    return candidate, None


def check_image(root: str, ref: str) -> ImageCheck:
    """Resolve ``ref`` under ``root`` and check the file: ok, missing, unreadable or escapes."""
    path, why = resolve_image_path(root, ref)
    if path is None:
        return ImageCheck(ESCAPES, None, why)
    if not os.path.isfile(path):
        return ImageCheck(MISSING, path, f"no file at {path}")
    real = os.path.realpath(path)
    if not _inside(real, os.path.realpath(root)):
        return ImageCheck(ESCAPES, None, f"image path {ref!r} is a link to {real}, outside {root}")
    if os.path.getsize(path) == 0:
        return ImageCheck(UNREADABLE, path, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Above MAX_IMAGE_PIXELS Pillow only warns; treat it as the bomb it may be.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.verify()
            with Image.open(path) as img:
                img.draft(img.mode, (1, 1))
                img.load()
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types (OSError, SyntaxError, ValueError, ...)
        return ImageCheck(UNREADABLE, path, f"{type(exc).__name__}: {exc}"[:500])
    return ImageCheck(OK, path, None)


def image_check_column(image_root: str) -> Callable[[Column], Column]:
    """A function turning an image-reference column into the ``IMAGE_CHECK_TYPE`` struct column.

    Null references are skipped (null struct fields) without touching the file system, so callers
    pass ``when(<needs a check>, ref)`` to check only the rows that need it.
    """
    root = local_root(image_root)

    @F.pandas_udf(IMAGE_CHECK_TYPE)  # type: ignore[call-overload]
    def check(refs: pd.Series) -> pd.DataFrame:
        skipped = ImageCheck(None, None, None)  # type: ignore[arg-type]
        rows = [check_image(root, ref) if isinstance(ref, str) else skipped for ref in refs]
        return pd.DataFrame(rows, columns=["status", "path", "detail"])

    return lambda ref: check(ref)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
