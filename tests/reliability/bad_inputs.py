"""The bad inputs of the reliability suite, generated on the spot: photos with Pillow (plus a few
hand-made byte strings), text and CSV as bytes, so any byte a real delivery could hold can be tried.

One catalog per layout (``generic``: a CSV with an image column; ``retail_products``: Kaggle's
``train.csv`` + ``<ImgId>.jpg``) holds every bad product case next to good ones, and one interactions
file holds every bad interaction case. Each case is tagged in an extra ``case`` column (the first
column, so even a row with missing cells keeps it): the readers must ignore a column the config does
not map, so the tag is itself the "extra column" bad input, and it finds every row again in bronze or
in the quarantine.

``Case.outcomes`` holds one entry per row the case writes: a quarantine reason code, or ``None`` when
the row must be accepted. The accept decisions (documented in ``Case.why``):

- grayscale, CMYK, RGBA, palette, bilevel, 16-bit, EXIF-rotated photos and PNG/WebP/GIF files named
  ``.jpg`` are valid photos: Pillow decodes them and preprocess converts them to RGB;
- HTML, emoji and 100 kB descriptions are valid text: bronze keeps the text as delivered, preprocess
  strips markup and keeps the first ``features.max_len`` tokens;
- an unmapped extra column is ignored (kept in the quarantine's ``raw`` map of a rejected row);
- a user id never seen before is a new (cold) user, not an error: there is no user registry;
- a rating of 0 is a valid rating (``interactions.min_rating`` defaults to 0).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hybridrec.catalog import reasons

GENERIC = "generic"
RETAIL = "retail_products"
LAYOUTS = (GENERIC, RETAIL)
CATEGORIES = ["shirts", "shoes"]

# Markers replaced by raw bytes after the CSV is encoded as UTF-8.
BAD_UTF8 = "@@BAD_UTF8@@"  # bytes that are not UTF-8 at all
LATIN1 = "@@LATIN1@@"  # "café" written by a Latin-1 / cp1252 export
_MARKERS = {BAD_UTF8: b"\xff\xfe\xfa", LATIN1: b"caf\xe9"}

DESCRIPTION_100KB = ("Soft organic cotton, long sleeves, regular fit. " * 2100)[:99_999] + "."
# 100 kB of comment openers that never close: quadratic for a naive "<!--.*?-->" pattern.
UNCLOSED_COMMENTS_100KB = "<!--" * 25_000


@dataclass(frozen=True)
class Case:
    """One bad (or deliberately odd but valid) input; ``outcomes``: one reason or None per row."""

    tag: str
    outcomes: tuple[str | None, ...]
    why: str
    layouts: tuple[str, ...] = LAYOUTS


@dataclass(frozen=True)
class ProductRow:
    """A catalog row before it is written; ``image`` is the generic layout's image cell and
    ``retail_id`` the ImgId that makes the retail layout point at the same (bad) file."""

    tag: str
    id: str
    title: str = "Plain product"
    description: str = "A plain description"
    category: str = "shoes"
    image: str | None = None  # None: "<id>.jpg"
    retail_id: str | None = None  # None: same as id
    listed_at: str = ""  # generic layout only


# --- photos ---------------------------------------------------------------------------------------


def _encoded(img: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _noisy_jpeg(seed: int = 0, size: int = 64) -> bytes:
    """A JPEG whose entropy-coded data is dense (noise), so damage to it cannot go unnoticed."""
    rng = np.random.default_rng(seed)
    return _encoded(Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)), "JPEG")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A 1-bit PNG of a few dozen bytes whose header declares ``width`` x ``height`` pixels: what a
    decompression bomb looks like before anything is decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (1 + (width + 7) // 8))  # one row of pixels
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small valid JPEG whose frame header (SOF0) is rewritten to declare ``width`` x ``height``."""
    data = bytearray(_encoded(Image.new("RGB", (8, 8), (10, 20, 30)), "JPEG"))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def _photo_files() -> dict[str, bytes]:
    """File name → bytes of every photo case kept as a plain file (links and folders: below)."""
    full = _noisy_jpeg()
    scan = full.find(b"\xff\xda")
    flipped = bytearray(full)
    for i in range(scan + 20, len(flipped) - 10, 7):
        flipped[i] ^= 0xFF
    rgba = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    rgba.paste((200, 30, 30, 255), (0, 0, 20, 30))
    png_full = _encoded(rgba, "PNG")
    gif = Image.new("P", (20, 20), 0)
    gif.putpalette([0, 0, 0, 200, 30, 30] + [0, 0, 0] * 254)
    gif.paste(1, (5, 5, 15, 15))
    rotated = Image.new("RGB", (40, 20), (255, 255, 255))
    rotated.paste((200, 30, 30), (0, 0, 40, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise
    return {
        "img_corrupt_header.jpg": full[:2] + bytes(range(256)) * 2,  # JPEG magic, then garbage
        "img_corrupt_data.jpg": bytes(flipped),
        "img_not_an_image.jpg": b"<html><body>404 Not Found</body></html>\n" * 10,
        "img_zero_bytes.jpg": b"",
        "img_truncated_jpeg.jpg": full[: len(full) // 2],
        "img_truncated_png.jpg": png_full[: len(png_full) - 20],
        "img_png_named_jpg.jpg": _encoded(Image.new("RGB", (24, 24), (30, 120, 200)), "PNG"),
        "img_webp_named_jpg.jpg": _encoded(Image.new("RGB", (24, 24), (30, 200, 120)), "WEBP"),
        "img_gif_named_jpg.jpg": _encoded(gif, "GIF", transparency=0),
        "img_cmyk.jpg": _encoded(Image.new("CMYK", (24, 24), (0, 255, 255, 0)), "JPEG"),
        "img_grayscale.jpg": _encoded(Image.new("L", (24, 24), 90), "JPEG"),
        "img_rgba.jpg": png_full,
        "img_16bit.jpg": _encoded(Image.fromarray(np.full((20, 20), 40000, dtype=np.uint16)), "PNG"),
        "img_bilevel.jpg": _encoded(Image.new("1", (24, 24), 1), "PNG"),
        "img_exif_rotated.jpg": _encoded(rotated, "JPEG", exif=exif),
        "img_bomb_png.jpg": png_declaring(100_000, 100_000),  # 10^10 pixels, 92 bytes
        "img_bomb_jpeg.jpg": jpeg_declaring(65_000, 65_000),
        # 10^8 pixels: over Pillow's warning limit (~8.9e7), under its hard limit (~1.8e8).
        "img_bomb_over_warning.jpg": png_declaring(10_000, 10_000),
    }


def write_photos(root: Path, outside: Path, good_ids: Iterable[str]) -> None:
    """Every photo case under ``root``, a valid photo per id of ``good_ids``, and outside the root a
    valid photo that escape attempts point at."""
    root.mkdir(parents=True)
    outside.mkdir(parents=True)
    good = _encoded(Image.new("RGB", (32, 32), (200, 30, 30)), "JPEG")
    (outside / "outside.jpg").write_bytes(good)
    for name, data in _photo_files().items():
        (root / name).write_bytes(data)
    for pid in good_ids:
        (root / f"{pid}.jpg").write_bytes(good)
    (root / "img_escape_symlink.jpg").symlink_to(outside / "outside.jpg")
    (root / "img_is_directory.jpg").mkdir()


# --- products -------------------------------------------------------------------------------------


def product_cases(base: Path) -> list[tuple[Case, list[ProductRow]]]:
    """Every product case with its rows. ``base`` holds ``images/`` (the root) and ``outside/``."""
    outside = base / "outside"
    root = base / "images"

    def one(
        tag: str, reason: str | None, why: str, layouts: tuple[str, ...] = LAYOUTS, **row: Any
    ) -> tuple[Case, list[ProductRow]]:
        return Case(tag, (reason,), why, layouts), [ProductRow(tag=tag, id=row.pop("id", tag), **row)]

    cases = [
        # Good rows, so that the bad ones sit among normal data.
        one("good_rgb", None, "an ordinary product"),
        one("good_text_only", None, "no image reference: a text-only product", (GENERIC,), image=""),
        one(
            "good_multiline",
            None,
            "quoted description with a line break, a comma and a quote",
            description='Two lines,\nand a "quoted" word',
        ),
        # Photos.
        one("img_corrupt_header", reasons.UNREADABLE_IMAGE, "JPEG magic bytes followed by garbage"),
        one("img_corrupt_data", reasons.UNREADABLE_IMAGE, "bytes flipped in the entropy-coded data"),
        one("img_not_an_image", reasons.UNREADABLE_IMAGE, "an HTML error page saved as .jpg"),
        one("img_zero_bytes", reasons.UNREADABLE_IMAGE, "a zero-byte file"),
        one("img_truncated_jpeg", reasons.UNREADABLE_IMAGE, "half of a JPEG"),
        one("img_truncated_png", reasons.UNREADABLE_IMAGE, "a PNG cut short"),
        one("img_png_named_jpg", None, "a PNG named .jpg decodes (format is sniffed, not named)"),
        one("img_webp_named_jpg", None, "a WebP named .jpg decodes"),
        one("img_gif_named_jpg", None, "a palette GIF with transparency named .jpg decodes"),
        one("img_cmyk", None, "CMYK JPEG: converted to RGB by preprocess"),
        one("img_grayscale", None, "grayscale JPEG: converted to RGB by preprocess"),
        one("img_rgba", None, "RGBA PNG: composited on white by preprocess"),
        one("img_16bit", None, "16-bit grayscale PNG: scaled to 8 bits by preprocess"),
        one("img_bilevel", None, "1-bit PNG: converted to RGB by preprocess"),
        one("img_exif_rotated", None, "EXIF orientation tag: applied by preprocess"),
        one("img_bomb_png", reasons.UNREADABLE_IMAGE, "PNG declaring 100000x100000 pixels (bomb)"),
        one("img_bomb_jpeg", reasons.UNREADABLE_IMAGE, "JPEG declaring 65000x65000 pixels (bomb)"),
        one(
            "img_bomb_over_warning",
            reasons.UNREADABLE_IMAGE,
            "10^8 declared pixels: above Pillow's warning limit, treated as a bomb",
        ),
        one("img_missing", reasons.MISSING_IMAGE, "the referenced file does not exist"),
        one("img_is_directory", reasons.MISSING_IMAGE, "the reference names a folder, not a file"),
        one(
            "img_escape_dotdot",
            reasons.IMAGE_PATH_ESCAPES_ROOT,
            "'../' out of the image root (the target exists)",
            image="../outside/outside.jpg",
            retail_id="../outside/outside",
        ),
        one(
            "img_escape_etc_passwd",
            reasons.IMAGE_PATH_ESCAPES_ROOT,
            "'../../etc/passwd'",
            image="../../etc/passwd",
            retail_id="../../etc/passwd",
        ),
        one(
            "img_escape_absolute",
            reasons.IMAGE_PATH_ESCAPES_ROOT,
            "an absolute path: /etc/passwd",
            image="/etc/passwd",
            retail_id="/etc/passwd",
        ),
        one(
            "img_escape_absolute_existing",
            reasons.IMAGE_PATH_ESCAPES_ROOT,
            "an absolute path to a real photo outside the root",
            image=str(outside / "outside.jpg"),
            retail_id=str(outside / "outside"),
        ),
        one("img_escape_symlink", reasons.IMAGE_PATH_ESCAPES_ROOT, "a link inside the root pointing outside it"),
        one(
            "img_absolute_inside_root",
            None,
            "an absolute path that stays inside the root",
            (GENERIC,),
            image=str(root / "img_absolute_inside_root.jpg"),
        ),
        one(
            "img_file_uri",
            reasons.MISSING_IMAGE,
            "'file:///etc/passwd' is a relative name under the root (no URL is ever opened)",
            (GENERIC,),
            image="file:///etc/passwd",
        ),
        one(
            "img_http_url",
            reasons.MISSING_IMAGE,
            "an http URL is a (missing) file name, never fetched",
            (GENERIC,),
            image="http://169.254.169.254/latest/meta-data/x.jpg",
        ),
        # Text.
        one("txt_empty_with_image", None, "no title or description but a photo: image-only", title="", description=""),
        one(
            "txt_empty_no_image",
            reasons.EMPTY_TEXT_AND_NO_IMAGE,
            "no title, no description, no photo",
            (GENERIC,),
            title="",
            description="",
            image="",
        ),
        one(
            "txt_whitespace_no_image",
            reasons.EMPTY_TEXT_AND_NO_IMAGE,
            "white space only is empty",
            (GENERIC,),
            title="  \t ",
            description=" \n ",
            image="",
        ),
        one(
            "txt_bad_utf8_title",
            reasons.INVALID_ENCODING,
            "title bytes that are not UTF-8",
            title=f"Shoe {BAD_UTF8} red",
        ),
        one(
            "txt_bad_utf8_description",
            reasons.INVALID_ENCODING,
            "description bytes that are not UTF-8",
            description=f"Leather {BAD_UTF8}",
        ),
        one("txt_latin1", reasons.INVALID_ENCODING, "a Latin-1 'é' in a UTF-8 file", title=f"{LATIN1} au lait mug"),
        one(
            "txt_replacement_char",
            reasons.INVALID_ENCODING,
            "a literal U+FFFD: the text was already damaged upstream",
            title="Shoe \ufffd red",
        ),
        one(
            "txt_nul_title",
            reasons.INVALID_ENCODING,
            "a NUL inside a title: never text (UTF-16 read as UTF-8 looks like this)",
            title="Shoe\x00 red",
        ),
        one(
            "txt_html",
            None,
            "HTML is kept in bronze, stripped by preprocess",
            description='<p onclick="x()">Soft <b>cotton</b> &amp; <script>alert(1)</script></p>',
        ),
        one(
            "txt_emoji",
            None,
            "emoji and other scripts are valid text",
            title="Платье 👗 dress ❤️",
            description="日本語 ✨",
        ),
        one("txt_100kb", None, "a 100 kB description is kept whole", description=DESCRIPTION_100KB),
        one(
            "txt_100kb_unclosed_comments",
            None,
            "100 kB of unclosed '<!--': accepted, and preprocess must stay linear",
            description=UNCLOSED_COMMENTS_100KB,
        ),
        # Ids and categories.
        one("id_missing", reasons.MISSING_ID, "empty id", id=""),
        one("id_whitespace", reasons.MISSING_ID, "white-space id", id="   "),
        one("id_bad_utf8", reasons.INVALID_ENCODING, "id bytes that are not UTF-8", id=f"p{BAD_UTF8}"),
        one("cat_unknown", reasons.UNKNOWN_CATEGORY, "a category outside catalog.categories", category="hats"),
        one(
            "cat_wrong_case",
            reasons.UNKNOWN_CATEGORY,
            "categories match exactly: 'Shoes' is not 'shoes'",
            category="Shoes",
        ),
        one("cat_empty", reasons.EMPTY_CATEGORY, "no category with catalog.require_category", category=""),
        one(
            "id_padded",
            None,
            "white space around an id is trimmed (a spreadsheet's padding)",
            id="  id_padded  ",
            image="id_padded.jpg",
        ),
        one("txt_multiline_title", None, "a quoted title with a line break is one record", title="Two-line\ntitle"),
        one(
            "txt_crlf_in_description",
            None,
            "a quoted CRLF inside a description is one record",
            description="Windows\r\nline break",
        ),
        # listed_at (generic layout): checked like event times, one rule.
        one("listed_ok", None, "an ordinary listed_at", (GENERIC,), listed_at="2024-05-01T10:00:00Z"),
        one(
            "listed_future_far",
            reasons.FUTURE_TIMESTAMP,
            "listed_at 2999-01-01: a placeholder, and beyond what nanosecond readers (pyarrow) hold",
            (GENERIC,),
            listed_at="2999-01-01T00:00:00Z",
        ),
        one(
            "listed_too_old",
            reasons.TIMESTAMP_TOO_OLD,
            "listed_at 1500: before what nanosecond readers hold",
            (GENERIC,),
            listed_at="1500-01-01T00:00:00Z",
        ),
        (
            Case(
                "id_dup_conflict",
                (reasons.DUPLICATE_ID_CONFLICT,) * 2,
                "one id, two contents: ambiguous, both copies quarantined",
            ),
            [
                ProductRow("id_dup_conflict", "id_dup_conflict", title="Red shoe"),
                ProductRow("id_dup_conflict", "id_dup_conflict", title="Red shoe, new title"),
            ],
        ),
        (
            Case("id_dup_exact", (None, reasons.DUPLICATE_ROW), "an exact copy: one kept, one counted"),
            [ProductRow("id_dup_exact", "id_dup_exact")] * 2,
        ),
    ]
    return cases


def cases_for(layout: str) -> list[Case]:
    """The product cases of ``layout`` (tags and expected outcomes only; nothing is written)."""
    cases = [c for c, _ in product_cases(Path("base")) if layout in c.layouts]
    return cases + list(MALFORMED_PRODUCT_CASES)


def interaction_case_list() -> list[Case]:
    """The interaction cases (written with the generic layout's run)."""
    return [c for c, _ in interaction_cases(dt.datetime(2025, 1, 1))] + list(MALFORMED_INTERACTION_CASES)


# Rows whose cells do not match the header, written as raw lines (the csv module would not).
MALFORMED_PRODUCT_CASES = (
    Case("row_extra_cell", (reasons.MALFORMED_ROW,), "a row with one cell more than the header"),
    Case("row_missing_cell", (reasons.MALFORMED_ROW,), "a row with cells missing"),
    Case(
        "row_trailing_delimiter",
        (reasons.MALFORMED_ROW,),
        "a trailing separator is one (empty) cell more than the header",
    ),
    Case("row_crlf_line", (None,), "one CRLF line in an LF file: the stray CR is trimmed"),
    # Must stay the last line: an unclosed quote runs to the end of the file.
    Case(
        "row_unclosed_quote",
        (reasons.MALFORMED_ROW,),
        "a quote never closed: the rest of the file is one record, short of cells",
    ),
)
# Photos the raw lines above refer to.
RAW_LINE_PHOTOS = ("row_crlf_line",)


def _malformed_product_lines(layout: str) -> list[str]:
    if layout == GENERIC:  # case,id,title,description,category,image,listed_at
        return [
            "row_extra_cell,row_extra_cell,Title,Text,shoes,,,EXTRA",
            "row_missing_cell,row_missing_cell,Title",
            "row_trailing_delimiter,row_trailing_delimiter,Title,Text,shoes,,,",
            "row_crlf_line,row_crlf_line,Title,Text,shoes,row_crlf_line.jpg,\r",
            'row_unclosed_quote,"row_unclosed_quote,Title,Text,shoes,,',
        ]
    return [
        "row_extra_cell,row_extra_cell,Title,Text,shoes,EXTRA",  # case,ImgId,title,desc,categories
        "row_missing_cell,row_missing_cell,Title",
        "row_trailing_delimiter,row_trailing_delimiter,Title,Text,shoes,",
        "row_crlf_line,row_crlf_line,Title,Text,shoes\r",
        'row_unclosed_quote,"row_unclosed_quote,Title,Text,shoes',
    ]


def _csv_bytes(header: list[str], rows: list[list[str]], raw_lines: Iterable[str] = ()) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    for line in raw_lines:
        buf.write(line + "\n")
    data = buf.getvalue().encode("utf-8")
    for marker, raw in _MARKERS.items():
        data = data.replace(marker.encode(), raw)
    return data


@dataclass(frozen=True)
class Catalog:
    """A written catalog: where it is and what each case expects."""

    layout: str
    path: Path
    image_root: Path
    cases: dict[str, Case]

    @property
    def n_rows(self) -> int:
        return sum(len(c.outcomes) for c in self.cases.values())


def write_catalog(base: Path, layout: str) -> Catalog:
    """The bad catalog of ``layout`` under ``base`` (photos included); see the module docstring."""
    root, outside = base / "images", base / "outside"
    cases = [(c, rows) for c, rows in product_cases(base) if layout in c.layouts]
    good_ids = {
        r.id
        for c, rows in cases
        for r in rows
        if not c.tag.startswith("img_") and r.image != "" and BAD_UTF8 not in r.id
    } | {"img_absolute_inside_root", *RAW_LINE_PHOTOS}
    write_photos(root, outside, sorted({i.strip() for i in good_ids if i.strip()}))
    rows: list[list[str]] = []
    for _, product_rows in cases:
        for r in product_rows:
            if layout == GENERIC:
                image = f"{r.id}.jpg" if r.image is None else r.image
                rows.append([r.tag, r.id, r.title, r.description, r.category, image, r.listed_at])
            else:
                rid = r.id if r.retail_id is None else r.retail_id
                rows.append([r.tag, rid, r.title, r.description, r.category])
    if layout == GENERIC:
        header = ["case", "id", "title", "description", "category", "image", "listed_at"]
        path = base / "products.csv"
    else:
        header = ["case", "ImgId", "title", "description", "categories"]
        path = base / "train.csv"
    path.write_bytes(_csv_bytes(header, rows, _malformed_product_lines(layout)))
    all_cases = {c.tag: c for c, _ in cases} | {c.tag: c for c in MALFORMED_PRODUCT_CASES}
    return Catalog(layout, path, root, all_cases)


def catalog_config(cat: Catalog) -> dict[str, Any]:
    """The ``catalog`` config section for a written catalog."""
    common = {
        "path": str(cat.path),
        "image_root": str(cat.image_root),
        "categories": CATEGORIES,
        "require_category": True,
        "missing_image": "quarantine",
    }
    if cat.layout == RETAIL:
        return {"layout": RETAIL, **common}
    return {
        "layout": GENERIC,
        "columns": {
            "id": "id",
            "title": "title",
            "description": "description",
            "category": "category",
            "image": "image",
            "listed_at": "listed_at",
        },
        **common,
    }


# --- interactions ---------------------------------------------------------------------------------

INTERACTION_HEADER = ["case", "user_id", "product_id", "event", "rating", "ts"]


def interaction_cases(now: dt.datetime) -> list[tuple[Case, list[list[str]]]]:
    """Every interaction case with its rows (without the case column); ``now`` is about when the
    ingest runs (UTC), for a timestamp two days ahead of it."""

    ts = "2024-01-01T10:00:00Z"
    soon = (now + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def one(tag: str, reason: str | None, why: str, row: list[str]) -> tuple[Case, list[list[str]]]:
        return Case(tag, (reason,), why, (GENERIC,)), [row]

    return [
        one("ev_good_view", None, "an ordinary view", ["u1", "good_rgb", "view", "1", ts]),
        one("ev_good_purchase", None, "epoch seconds", ["u1", "img_cmyk", "purchase", "2", "1704103200"]),
        one(
            "ev_new_user",
            None,
            "a user never seen before is a new user (no user registry)",
            ["u_nouveau_😀", "good_rgb", "view", "1", ts],
        ),
        one(
            "ev_event_case",
            None,
            "event is trimmed and lower-cased",
            ["u2", "good_rgb", " VIEW ", "1", "2024-01-02T10:00:00Z"],
        ),
        one("ev_zero_rating", None, "0 is a valid rating (min_rating 0)", ["u3", "good_rgb", "view", "0", ts]),
        one(
            "ev_unknown_product",
            reasons.UNKNOWN_PRODUCT,
            "product id not in the catalog",
            ["u1", "no_such_product", "view", "1", ts],
        ),
        one(
            "ev_quarantined_product",
            reasons.UNKNOWN_PRODUCT,
            "its product was quarantined",
            ["u1", "img_corrupt_header", "view", "1", ts],
        ),
        one("ev_missing_user", reasons.MISSING_USER, "empty user id", ["", "good_rgb", "view", "1", ts]),
        one("ev_missing_product", reasons.MISSING_PRODUCT, "empty product id", ["u1", "", "view", "1", ts]),
        one("ev_nan_rating", reasons.INVALID_WEIGHT, "NaN weight", ["u4", "good_rgb", "view", "NaN", ts]),
        one("ev_negative_rating", reasons.INVALID_WEIGHT, "negative weight", ["u4", "good_rgb", "cart", "-1", ts]),
        one("ev_inf_rating", reasons.INVALID_WEIGHT, "infinite weight", ["u4", "good_rgb", "purchase", "Infinity", ts]),
        one(
            "ev_overflow_rating",
            reasons.INVALID_WEIGHT,
            "1e400 overflows to infinity",
            ["u5", "good_rgb", "view", "1e400", ts],
        ),
        one("ev_empty_rating", reasons.INVALID_WEIGHT, "no weight", ["u5", "good_rgb", "cart", "", ts]),
        one(
            "ev_text_rating",
            reasons.INVALID_WEIGHT,
            "weight is not a number",
            ["u5", "good_rgb", "purchase", "five", ts],
        ),
        one(
            "ev_future_far",
            reasons.FUTURE_TIMESTAMP,
            "year 2999",
            ["u6", "good_rgb", "view", "1", "2999-01-01T00:00:00Z"],
        ),
        one(
            "ev_future_near", reasons.FUTURE_TIMESTAMP, "two days after the run", ["u6", "good_rgb", "view", "1", soon]
        ),
        one(
            "ev_epoch_millis",
            reasons.UNPARSEABLE_TIMESTAMP,
            "epoch milliseconds are not seconds",
            ["u6", "good_rgb", "view", "1", "1704103200000"],
        ),
        one("ev_bad_ts", reasons.UNPARSEABLE_TIMESTAMP, "not a time", ["u6", "good_rgb", "view", "1", "yesterday"]),
        one("ev_empty_ts", reasons.UNPARSEABLE_TIMESTAMP, "no time", ["u6", "good_rgb", "view", "1", ""]),
        one(
            "ev_unknown_event", reasons.UNKNOWN_EVENT, "event not in event_weights", ["u7", "good_rgb", "like", "1", ts]
        ),
        one("ev_empty_event", reasons.UNKNOWN_EVENT, "no event", ["u7", "good_rgb", "", "1", ts]),
        one(
            "ev_bad_utf8_user",
            reasons.INVALID_ENCODING,
            "user id bytes that are not UTF-8",
            [f"u{BAD_UTF8}", "good_rgb", "view", "1", ts],
        ),
        one(
            "ev_multiline_event",
            None,
            "a quoted event with a line break: one record, trimmed",
            ["u10", "good_rgb", "view\n", "1", ts],
        ),
        one(
            "ev_multiline_rating",
            reasons.INVALID_WEIGHT,
            "a quoted rating '1<newline>2': one record, quarantined whole (not two half-events)",
            ["u10", "good_rgb", "cart", "1\n2", ts],
        ),
        one(
            "ev_multiline_product",
            reasons.UNKNOWN_PRODUCT,
            "a quoted product id holding two ids on two lines: one record, no such product",
            ["u10", "good_rgb\nimg_cmyk", "view", "1", ts],
        ),
        one("ev_padded_ids", None, "white space around ids is trimmed", ["  u11 ", " good_rgb ", "view", "1", ts]),
        one(
            "ev_ts_too_old",
            reasons.TIMESTAMP_TOO_OLD,
            "year 1500: before what nanosecond readers hold",
            ["u12", "good_rgb", "view", "1", "1500-01-01T00:00:00Z"],
        ),
        one(
            "ev_negative_epoch",
            reasons.TIMESTAMP_TOO_OLD,
            "epoch seconds -99999999999 (year -1199)",
            ["u12", "good_rgb", "view", "1", "-99999999999"],
        ),
        (
            Case("ev_dup_exact", (None, reasons.DUPLICATE_ROW), "an exact copy: one kept", (GENERIC,)),
            [["u8", "good_rgb", "view", "1", ts]] * 2,
        ),
        (
            Case(
                "ev_dup_conflict",
                (reasons.DUPLICATE_EVENT_CONFLICT,) * 2,
                "same event key, two weights: both quarantined",
                (GENERIC,),
            ),
            [["u9", "good_rgb", "view", "1", ts], ["u9", "good_rgb", "view", "2", ts]],
        ),
    ]


MALFORMED_INTERACTION_CASES = (
    Case("ev_extra_cell", (reasons.MALFORMED_ROW,), "a line with one cell more than the header", (GENERIC,)),
    Case("ev_missing_cell", (reasons.MALFORMED_ROW,), "a line with cells missing", (GENERIC,)),
    Case("ev_trailing_delimiter", (reasons.MALFORMED_ROW,), "a trailing separator: one cell too many", (GENERIC,)),
    Case("ev_crlf_line", (None,), "one CRLF line in an LF file: the stray CR is trimmed", (GENERIC,)),
)
MALFORMED_INTERACTION_LINES = (
    "ev_extra_cell,u1,good_rgb,view,1,2024-01-03T00:00:00Z,EXTRA",
    "ev_missing_cell,u1,good_rgb",
    "ev_trailing_delimiter,u13,good_rgb,view,1,2024-01-03T00:00:00Z,",
    "ev_crlf_line,u14,good_rgb,view,1,2024-01-03T00:00:00Z\r",
)
# (user, product) → tag of the accepted raw lines above, to find them in bronze.
RAW_LINE_ACCEPTED = {("u14", "good_rgb"): "ev_crlf_line"}


@dataclass(frozen=True)
class Interactions:
    path: Path
    cases: dict[str, Case]

    @property
    def n_rows(self) -> int:
        return sum(len(c.outcomes) for c in self.cases.values())


def write_interactions(base: Path, now: dt.datetime) -> Interactions:
    """The bad interactions file under ``base``."""
    cases = interaction_cases(now)
    rows = [[c.tag, *row] for c, case_rows in cases for row in case_rows]
    path = base / "interactions.csv"
    path.write_bytes(_csv_bytes(INTERACTION_HEADER, rows, MALFORMED_INTERACTION_LINES))
    all_cases = {c.tag: c for c, _ in cases} | {c.tag: c for c in MALFORMED_INTERACTION_CASES}
    return Interactions(path, all_cases)


def interactions_config(inter: Interactions) -> dict[str, Any]:
    return {
        "path": str(inter.path),
        "columns": {"user": "user_id", "item": "product_id", "event": "event", "rating": "rating", "timestamp": "ts"},
    }


def files_under(folder: Path) -> dict[str, tuple[int, int]]:
    """relative path → (size, mtime_ns) of every file under ``folder`` (links not followed)."""
    out = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


# --- one ingest run per layout, through the real job entry point -----------------------------------

# Credentials a config may hold (an MLflow server behind basic auth): never in logs or gold.runs.
SECRET = "s3cr3t-Pa55"
SECRET_URI = f"https://alice:{SECRET}@mlflow.example.com:5000"


@dataclass
class IngestRun:
    """What one ``jobs/ingest.py`` run did, collected once: tests only look things up."""

    layout: str
    base: Path
    cfg: Any  # hybridrec.config.Config
    catalog: Catalog
    interactions: Interactions | None
    exit_code: int
    run_row: dict[str, Any]
    # case tag → sorted outcomes seen (None = in bronze, else the quarantine reason)
    product_outcomes: dict[str, list[str | None]]
    interaction_outcomes: dict[str, list[str | None]]
    bronze_products: dict[str, dict[str, Any]]
    quarantine_products: list[dict[str, Any]]
    quarantine_interactions: list[dict[str, Any]]
    n_bronze_interactions: int
    logs: list[str]
    inputs_before: dict[str, tuple[int, int]]
    inputs_after: dict[str, tuple[int, int]]
    top_level_after: list[str]  # what ``base`` held right after the run
    seconds: float


def _tag(raw: dict[str, str | None]) -> str:
    """The case tag of a quarantined row: its ``case`` cell, else the first cell of the raw line."""
    tag = raw.get("case")
    if tag is None and raw.get("_corrupt_record"):
        tag = raw["_corrupt_record"].split(",", 1)[0]
    return tag or "?"


def _sorted_outcomes(found: dict[str, list[str | None]]) -> dict[str, list[str | None]]:
    return {k: sorted(v, key=lambda r: (r is not None, r or "")) for k, v in found.items()}


def run_ingest(spark: Any, base: Path, layout: str) -> IngestRun:
    """Write the bad inputs of ``layout`` under ``base``, run ``jobs/ingest.py`` on them once
    (interactions with the generic layout only) and collect everything the tests check."""
    import importlib.util
    import logging
    import time

    import yaml

    from conftest import REPO_ROOT, TEST_SPARK
    from hybridrec.config import load_config
    from hybridrec.job import run_job
    from hybridrec.runs import utcnow
    from hybridrec.tables import (
        INTERACTIONS,
        PRODUCTS,
        QUARANTINE_INTERACTIONS,
        QUARANTINE_PRODUCTS,
        RUNS,
        read_table,
        table_ref,
    )

    raw = base / "raw"
    catalog = write_catalog(raw, layout)
    inter = write_interactions(raw, utcnow()) if layout == GENERIC else None
    conf = base / "job.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "spark": dict(TEST_SPARK),
                "paths": {
                    k: str(base / k) for k in ("warehouse", "features", "models", "raw", "checkpoints", "report")
                },
                "catalog": catalog_config(catalog),
                "interactions": interactions_config(inter) if inter else {"path": None},
                "als": {"mlflow_tracking_uri": SECRET_URI},
                "train": {"mlflow_tracking_uri": SECRET_URI},
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )

    spec = importlib.util.spec_from_file_location("reliability_ingest_job", REPO_ROOT / "jobs" / "ingest.py")
    job = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(job)

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep()
    logging.getLogger().addHandler(handler)
    before = files_under(raw)
    start = time.perf_counter()
    try:
        code = run_job("ingest", job.main, ["--config", str(conf)], job.job_parser())
    finally:
        logging.getLogger().removeHandler(handler)
    seconds = time.perf_counter() - start
    after = files_under(raw)
    written = sorted(os.listdir(base))

    cfg = load_config(conf)

    def rows(spec_: Any) -> list[dict[str, Any]]:
        return [r.asDict(recursive=True) for r in read_table(spark, table_ref(cfg, spec_)).collect()]

    run_rows = rows(RUNS)
    assert len(run_rows) == 1, run_rows
    bronze = {r["product_id"]: r for r in rows(PRODUCTS)}
    q_products = rows(QUARANTINE_PRODUCTS)
    found: dict[str, list[str | None]] = {}
    for pid in bronze:
        found.setdefault(pid, []).append(None)  # accepted case ids are their tags
    for r in q_products:
        found.setdefault(_tag(r["raw"]), []).append(r["reason"])

    q_inter: list[dict[str, Any]] = []
    inter_found: dict[str, list[str | None]] = {}
    n_bronze_inter = 0
    if inter is not None:
        by_pair = {  # accepted cases have distinct (user, product) pairs
            (row[0].strip(), row[1].strip()): c.tag
            for c, case_rows in interaction_cases(utcnow())
            if None in c.outcomes
            for row in case_rows
        } | RAW_LINE_ACCEPTED
        for r in rows(INTERACTIONS):
            n_bronze_inter += 1
            inter_found.setdefault(by_pair.get((r["user_id"], r["product_id"]), "?"), []).append(None)
        q_inter = rows(QUARANTINE_INTERACTIONS)
        for r in q_inter:
            inter_found.setdefault(_tag(r["raw"]), []).append(r["reason"])

    return IngestRun(
        layout=layout,
        base=base,
        cfg=cfg,
        catalog=catalog,
        interactions=inter,
        exit_code=code,
        run_row=run_rows[0],
        product_outcomes=_sorted_outcomes(found),
        interaction_outcomes=_sorted_outcomes(inter_found),
        bronze_products=bronze,
        quarantine_products=q_products,
        quarantine_interactions=q_inter,
        n_bronze_interactions=n_bronze_inter,
        logs=records,
        inputs_before=before,
        inputs_after=after,
        top_level_after=written,
        seconds=seconds,
    )


_RUNS: dict[str, IngestRun] = {}


def ingested(spark: Any, tmp_path_factory: Any, layout: str) -> IngestRun:
    """The run of ``layout``, made on first use and shared by every test module of the session."""
    if layout not in _RUNS:
        _RUNS[layout] = run_ingest(spark, tmp_path_factory.mktemp(f"reliability_{layout}"), layout)
    return _RUNS[layout]


# --- whole-file cases: what a delivery's files can hold beyond bad rows ---------------------------
#
# Each case is a small catalog (or interactions) folder read on its own. The expected outcome is
# either the rows' outcomes (as for row cases: one reason or None per record) or an error: a
# ``HybridrecError`` whose one-line message holds every fragment of ``error`` (the job turns it
# into exit code 1 and that sentence).

FILE_CASE_HEADER = "id,title,description,category,listed_at\n"


@dataclass(frozen=True)
class FileCase:
    """A folder of input files and what reading it must give."""

    tag: str
    why: str
    files: dict[str, bytes]
    outcomes: tuple[str | None, ...] = ()
    error: tuple[str, ...] = ()  # fragments of the error message; empty: no error
    what: str = "catalog"  # or "interactions"
    file_format: str = "csv"
    # product id → title expected after reading (checks columns were not swapped)
    titles: tuple[tuple[str, str], ...] = ()


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)


def _parquet(columns: dict[str, list[Any]]) -> bytes:
    import pandas as pd

    buf = io.BytesIO()
    pd.DataFrame(columns).to_parquet(buf, index=False)
    return buf.getvalue()


def file_cases() -> list[FileCase]:
    """Every whole-file case (written by the test into its own folder)."""
    row = "p1,Mug,White mug,kitchen,2024-05-01T10:00:00Z\n"
    text = (FILE_CASE_HEADER + row).encode()
    events = b"user_id,product_id,event,ts\nu1,p1,view,2024-01-01T10:00:00Z\n"
    return [
        FileCase(
            "file_column_order_differs",
            "two files, columns in another order: each file is read by its own header, never by position",
            {"a.csv": text, "b.csv": b"title,id,category,description,listed_at\nTeapot,p2,kitchen,Blue,\n"},
            outcomes=(None, None),
            titles=(("p1", "Mug"), ("p2", "Teapot")),
        ),
        FileCase(
            "file_extra_column_in_one_file",
            "one file has an unmapped extra column",
            {"a.csv": text, "b.csv": b"id,colour,title,description,category,listed_at\np2,red,Teapot,Blue,kitchen,\n"},
            outcomes=(None, None),
            titles=(("p1", "Mug"), ("p2", "Teapot")),
        ),
        FileCase(
            "file_lacks_mapped_column",
            "a second file without listed_at: refused, named",
            {"a.csv": text, "b.csv": b"title,id,category,description\nTeapot,p2,kitchen,x\n"},
            error=("b.csv", "catalog.columns.listed_at", "no such column"),
        ),
        FileCase(
            "file_utf16_bom",
            "UTF-16 with a BOM (an Excel 'Unicode text' export)",
            {"p.csv": (FILE_CASE_HEADER + row).encode("utf-16")},
            error=("p.csv", "UTF-16", "encoding", "convert it to UTF-8"),
        ),
        FileCase(
            "file_utf16_no_bom",
            "UTF-16 LE without a BOM: NUL bytes give it away",
            {"p.csv": (FILE_CASE_HEADER + row).encode("utf-16-le")},
            error=("p.csv", "UTF-16", "encoding"),
        ),
        FileCase(
            "file_utf32",
            "UTF-32 with a BOM",
            {"p.csv": (FILE_CASE_HEADER + row).encode("utf-32")},
            error=("p.csv", "UTF-32", "encoding"),
        ),
        FileCase(
            "file_utf8_bom",
            "UTF-8 with a BOM: read, the BOM is not part of the 'id' name",
            {"p.csv": b"\xef\xbb\xbf" + text},
            outcomes=(None,),
            titles=(("p1", "Mug"),),
        ),
        FileCase(
            "file_crlf",
            "CRLF line endings throughout (Windows)",
            {"p.csv": text.replace(b"\n", b"\r\n")},
            outcomes=(None,),
            titles=(("p1", "Mug"),),
        ),
        FileCase(
            "file_header_only",
            "a header and no rows: read 0 = accepted 0 + quarantined 0",
            {"p.csv": FILE_CASE_HEADER.encode()},
            outcomes=(),
        ),
        FileCase(
            "file_gzip_named_csv",
            "gzip data named .csv: Spark would read compressed bytes",
            {"p.csv": _gzip(text)},
            error=("p.csv", "gzip", "encoding", "rename"),
        ),
        FileCase(
            "file_empty_gz",
            "a 0-byte file named .csv.gz (an interrupted upload)",
            {"p.csv.gz": b""},
            error=("p.csv.gz", "empty", ".gz"),
        ),
        FileCase("file_plain_named_gz", "plain text named .csv.gz", {"p.csv.gz": text}, error=("p.csv.gz", "not gzip")),
        FileCase(
            "file_gzip_ok",
            "a .csv.gz is decompressed and read",
            {"p.csv.gz": _gzip(text)},
            outcomes=(None,),
            titles=(("p1", "Mug"),),
        ),
        FileCase(
            "file_duplicate_header",
            "a header naming 'id' twice",
            {"p.csv": b"id,title,ID,description,category,listed_at\np1,Mug,p2,x,kitchen,\n"},
            error=("p.csv", "'ID' twice", "header"),
        ),
        FileCase(
            "file_mixed_case_header",
            "'ID' where the config maps 'id': refused with a hint",
            {"p.csv": b"ID,title,description,category,listed_at\np1,Mug,x,kitchen,\n"},
            error=("catalog.columns.id is 'id'", "'ID' differs only in case"),
        ),
        FileCase(
            "file_multiline_record",
            "a quoted description over three lines, CRLF file",
            {"p.csv": FILE_CASE_HEADER.encode() + b'p1,Mug,"line one\r\nline two\r\nline three",kitchen,\r\n'},
            outcomes=(None,),
            titles=(("p1", "Mug"),),
        ),
        FileCase(
            "file_parquet_type_clash",
            "Parquet files disagreeing on the type of 'id'",
            {
                "part-0.parquet": _parquet({"id": [1], "title": ["Mug"]}),
                "part-1.parquet": _parquet({"id": ["p2"], "title": ["Teapot"]}),
            },
            file_format="parquet",
            error=("column 'id'", "part-0.parquet", "part-1.parquet", "type"),
        ),
        FileCase(
            "events_utf16",
            "an interactions file in UTF-16",
            {"e.csv": events.decode().encode("utf-16")},
            what="interactions",
            error=("e.csv", "UTF-16", "encoding"),
        ),
        FileCase(
            "events_gzip_named_csv",
            "gzip interactions named .csv",
            {"e.csv": _gzip(events)},
            what="interactions",
            error=("e.csv", "gzip"),
        ),
    ]
