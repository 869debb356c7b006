"""Validation pieces that need no Spark: image path confinement and the Pillow check on bad files,
reason codes, count reconciliation, config checks for catalog/interactions, layouts, file paths."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from hybridrec.catalog import image_check as ic
from hybridrec.catalog import reasons
from hybridrec.catalog.ingest import IngestCountError, reconcile, sql_string
from hybridrec.catalog.sources import catalog_settings, normalise_source_file
from hybridrec.config import CatalogConfig, ConfigError, config_from_dict


@pytest.fixture
def root(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    return images


def _jpeg_bytes(size: tuple[int, int] = (48, 48), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 128 if mode in ("L", "CMYK") else (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


# --- image paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref, inside",
    [
        ("a.jpg", True),
        ("sub/b.jpg", True),
        ("sub/../a.jpg", True),
        ("../a.jpg", False),
        ("sub/../../a.jpg", False),
        ("/etc/passwd", False),
        ("..", False),
    ],
)
def test_relative_and_absolute_paths_are_confined_to_the_root(root: Path, ref: str, inside: bool) -> None:
    path, why = ic.resolve_image_path(str(root), ref)
    assert (path is not None) == inside
    if inside:
        assert path == os.path.normpath(root / ref)
    else:
        assert "outside the image root" in why


def test_absolute_path_inside_the_root_is_accepted_and_a_prefix_sibling_is_not(root: Path) -> None:
    assert ic.resolve_image_path(str(root), str(root / "x.jpg"))[0] == str(root / "x.jpg")
    sibling = str(root) + "-other/x.jpg"  # shares the root's prefix, is not under it
    assert ic.resolve_image_path(str(root), sibling)[0] is None


def test_nul_byte_in_a_path_is_refused(root: Path) -> None:
    assert ic.check_image(str(root), "a\x00.jpg").status == ic.ESCAPES


def test_local_root_accepts_file_uris(root: Path) -> None:
    assert ic.local_root(f"file://{root}") == str(root)
    assert ic.local_root(f"file:{root}/") == str(root)


# --- image files ---------------------------------------------------------------------------------


def test_readable_images_in_any_mode_and_format(root: Path) -> None:
    (root / "rgb.jpg").write_bytes(_jpeg_bytes())
    (root / "gray.jpg").write_bytes(_jpeg_bytes(mode="L"))
    (root / "cmyk.jpg").write_bytes(_jpeg_bytes(mode="CMYK"))
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(root / "png_named.jpg", "PNG")
    Image.new("RGB", (8, 8)).save(root / "webp_named.jpg", "WEBP")
    Image.new("I;16", (8, 8)).save(root / "sixteen.png")
    for name in ("rgb.jpg", "gray.jpg", "cmyk.jpg", "png_named.jpg", "webp_named.jpg", "sixteen.png"):
        result = ic.check_image(str(root), name)
        assert result == ic.ImageCheck(ic.OK, str(root / name), None), name


def test_missing_empty_corrupt_and_truncated_files(root: Path) -> None:
    (root / "zero.jpg").write_bytes(b"")
    (root / "text.jpg").write_bytes(b"<html>not an image</html>" * 20)
    full = _jpeg_bytes((256, 256))
    (root / "truncated.jpg").write_bytes(full[: len(full) // 2])
    assert ic.check_image(str(root), "nope.jpg").status == ic.MISSING
    assert ic.check_image(str(root), "nope.jpg").path == str(root / "nope.jpg")
    assert ic.check_image(str(root), "zero.jpg") == ic.ImageCheck(
        ic.UNREADABLE, str(root / "zero.jpg"), "empty file (0 bytes)"
    )
    assert ic.check_image(str(root), "text.jpg").status == ic.UNREADABLE
    truncated = ic.check_image(str(root), "truncated.jpg")
    assert truncated.status == ic.UNREADABLE and "truncated" in truncated.detail.lower()


def test_decompression_bomb_is_unreadable(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (root / "big.jpg").write_bytes(_jpeg_bytes((64, 64)))
    # Pillow's limit scaled down: a 64x64 image now declares "too many" pixels, as a bomb would.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    result = ic.check_image(str(root), "big.jpg")
    assert result.status == ic.UNREADABLE and "DecompressionBomb" in result.detail


def test_a_link_leaving_the_root_escapes(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(_jpeg_bytes())
    (root / "link.jpg").symlink_to(outside)
    assert ic.check_image(str(root), "link.jpg").status == ic.ESCAPES


# --- reasons and counts --------------------------------------------------------------------------


def test_reason_codes_are_distinct_snake_case_constants() -> None:
    codes = [v for k, v in vars(reasons).items() if k.isupper() and isinstance(v, str)]
    assert len(codes) == len(set(codes))
    assert all(c == c.lower() and " " not in c for c in codes)
    assert set(reasons.PRODUCT_REASONS) | set(reasons.INTERACTION_REASONS) == set(codes)
    for required in (
        "missing_image",
        "unreadable_image",
        "image_path_escapes_root",
        "empty_text_and_no_image",
        "duplicate_id_conflict",
        "duplicate_row",
        "unknown_category",
        "empty_category",
        "missing_id",
    ):
        assert required in reasons.PRODUCT_REASONS
    for required in (
        "unknown_product",
        "missing_user",
        "unparseable_timestamp",
        "unknown_event",
        "invalid_weight",
        "future_timestamp",
    ):
        assert required in reasons.INTERACTION_REASONS


def test_reconcile_counts_per_reason() -> None:
    counts = reconcile("products", 10, {None: 7, "missing_image": 2, "duplicate_row": 1})
    assert counts == {
        "products_read": 10,
        "products_accepted": 7,
        "products_quarantined": 3,
        "products_quarantined_duplicate_row": 1,
        "products_quarantined_missing_image": 2,
    }
    with pytest.raises(IngestCountError, match=r"read 10 rows but accepted 7 \+ quarantined 2 = 9"):
        reconcile("products", 10, {None: 7, "missing_image": 2})


# --- config, layouts, paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "catalog, message",
    [
        ({"layout": "amazon"}, r"catalog\.layout must be one of generic, retail_products"),
        ({"file_format": "xlsx"}, r"catalog\.file_format must be one of csv, parquet, jsonl"),
        ({"missing_image": "ignore"}, r"catalog\.missing_image must be one of"),
        ({"image_pattern": "photo.jpg"}, r"must contain \{id\}"),
        ({"image_pattern": "{id}/{title}.jpg"}, r"\{id\} is the only placeholder"),
        ({"image_pattern": "{id}.jpg", "columns": {"image": "img"}}, r"set only one of"),
        ({"column_names": ["a", "b"]}, r"set catalog\.header to false"),
        ({"header": False, "column_names": ["a", "a"]}, r"distinct, non-empty"),
    ],
)
def test_bad_catalog_config_names_the_key(catalog: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"catalog": catalog})


@pytest.mark.parametrize(
    "interactions, message",
    [
        ({"columns": {"event": None, "rating": None}}, r"needs an event column or a rating column"),
        ({"event_weights": {"view": -1}}, r"event_weights\.view must be a number >= 0"),
        ({"file_format": "jsonl"}, r"interactions\.file_format must be one of csv, parquet"),
    ],
)
def test_bad_interactions_config_names_the_key(interactions: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"interactions": interactions})


def test_fashion_config_maps_the_real_catalog() -> None:
    from conftest import REPO_ROOT
    from hybridrec.config import load_config

    cfg = load_config(REPO_ROOT / "conf" / "fashion.yaml")
    cat = cfg.catalog
    assert (cat.columns.id, cat.columns.title, cat.columns.description, cat.columns.category) == (
        "id",
        "productDisplayName",
        None,
        "articleType",
    )
    assert cat.image_pattern == "{id}.jpg" and cat.missing_image == "text_only"
    assert cat.path == str((REPO_ROOT.parent / "shared" / "data" / "fashion" / "styles.csv").resolve())
    assert cat.image_root == str((REPO_ROOT.parent / "shared" / "data" / "fashion" / "images").resolve())
    assert set(cat.attributes) == {"gender", "masterCategory", "subCategory", "baseColour", "season", "usage", "year"}


def test_retail_products_layout_fixes_the_mapping() -> None:
    cat = catalog_settings(CatalogConfig(layout="retail_products", path="/data/train.csv", image_root="/data/train"))
    assert (cat.columns.id, cat.columns.title, cat.columns.description, cat.columns.category) == (
        "ImgId",
        "title",
        "description",
        "categories",
    )
    assert cat.image_pattern == "{id}.jpg" and cat.file_format == "csv" and cat.header
    assert catalog_settings(CatalogConfig()) == CatalogConfig()


def test_source_file_paths_and_sql_literals() -> None:
    assert normalise_source_file("file:///tmp/a%20b/c+d.csv") == "/tmp/a b/c+d.csv"
    assert normalise_source_file("file:/tmp/x.csv") == "/tmp/x.csv"
    assert normalise_source_file("dbfs:/mnt/x.csv") == "dbfs:/mnt/x.csv"
    assert sql_string("it's a\\b") == "'it\\'s a\\\\b'"
