"""Photo decoding: every Pillow mode to RGB, EXIF orientation, the three rules that make a photo
square (stretch, pad, crop: features.image_fit), and failures reported instead of raised (pure
Python, no Spark)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hybridrec.config import IMAGE_FITS
from hybridrec.features.images import (
    FIT_RULES,
    FITS,
    decode_to_bytes,
    draft_size,
    fit_and_pad,
    fit_size,
    load_image,
)

SIZE = 16
RED = (255, 0, 0)
WHITE = (255, 255, 255)


def _save(img: Image.Image, path: Path, **kwargs) -> str:
    img.save(path, **kwargs)
    return str(path)


def test_fit_size_keeps_aspect_ratio() -> None:
    assert fit_size(200, 100, 16) == (16, 8)
    assert fit_size(100, 200, 16) == (8, 16)
    assert fit_size(50, 50, 16) == (16, 16)
    assert fit_size(1000, 1, 16) == (16, 1)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_rgb_square_is_resized(tmp_path: Path, fmt: str) -> None:
    path = _save(Image.new("RGB", (64, 64), RED), tmp_path / f"a.{fmt.lower()}", format=fmt)
    arr = load_image(path, SIZE, fit="stretch")
    assert arr.shape == (SIZE, SIZE, 3) and arr.dtype == np.uint8
    assert np.abs(arr.astype(int) - RED).max() <= 3  # JPEG rounding


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 16, 32))  # left half opaque red, right half transparent
    arr = load_image(_save(img, tmp_path / "a.png"), SIZE, fit="stretch")
    assert tuple(arr[8, 2]) == RED
    assert tuple(arr[8, 13]) == WHITE


def test_greyscale_l_and_la(tmp_path: Path) -> None:
    arr = load_image(_save(Image.new("L", (20, 20), 100), tmp_path / "l.png"), SIZE, fit="stretch")
    assert arr.shape == (SIZE, SIZE, 3) and (arr == 100).all()
    la = Image.new("LA", (20, 20), (0, 0))  # fully transparent black → white
    assert (load_image(_save(la, tmp_path / "la.png"), SIZE, fit="stretch") == 255).all()


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    p = Image.new("RGB", (20, 20), RED).convert("P")
    arr = load_image(_save(p, tmp_path / "p.png"), SIZE, fit="stretch")
    assert tuple(arr[5, 5]) == RED
    gif = Image.new("P", (20, 20), 0)
    gif.putpalette([0, 0, 0] * 256)
    gif.info["transparency"] = 0
    arr = load_image(_save(gif, tmp_path / "t.gif", transparency=0), SIZE, fit="stretch")
    assert (arr == 255).all(), "transparent palette pixels become white"


def test_cmyk_jpeg(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (24, 24), (0, 255, 255, 0))  # pure red in CMYK
    arr = load_image(_save(cmyk, tmp_path / "c.jpg", format="JPEG"), SIZE, fit="stretch")
    assert arr.shape == (SIZE, SIZE, 3)
    r, g, b = (int(v) for v in arr[8, 8])
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 40 wide x 20 high, top half red; orientation 6 = display rotated 90° clockwise.
    img = Image.new("RGB", (40, 20), WHITE)
    img.paste(RED, (0, 0, 40, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(img, tmp_path / "r.jpg", format="JPEG", exif=exif, quality=95)
    arr = load_image(path, SIZE, fit="pad")
    # Displayed 20 wide x 40 high → 8 x 16 centred; the red half is now on the right.
    assert arr.shape == (SIZE, SIZE, 3)
    assert (arr[:, :4] >= 250).all() and (arr[:, 12:] >= 250).all(), "padding left and right"
    assert arr[8, 10, 1] < 60 and arr[8, 10, 0] > 200, "red on the right after rotation"
    assert arr[8, 5, 1] > 200, "white on the left"
    # Stretched, the displayed (rotated) photo fills the square: red right half, white left half.
    wide = load_image(path, SIZE, fit="stretch")
    assert (wide[:, 10:, 1] < 60).all() and (wide[:, :6, 1] > 200).all()


def test_non_square_is_padded_centred_on_white(tmp_path: Path) -> None:
    arr = load_image(_save(Image.new("RGB", (64, 32), RED), tmp_path / "w.png"), SIZE, fit="pad")
    assert arr.shape == (SIZE, SIZE, 3)
    assert (arr[:4] == 255).all() and (arr[12:] == 255).all()
    assert (arr[4:12] == RED).all()
    tall = load_image(_save(Image.new("RGB", (10, 40), RED), tmp_path / "t.png"), SIZE, fit="pad")
    assert (tall[:, :6] == 255).all() and (tall[:, 10:] == 255).all() and (tall[:, 6:10] == RED).all()


def _three_by_four(tmp_path: Path) -> str:
    """A 3:4 photo (30 wide, 40 high) like the fashion originals: red, with a blue band over the
    top and bottom fifth (8 rows each) and a green 2-pixel column at each side."""
    img = Image.new("RGB", (30, 40), RED)
    img.paste((0, 0, 255), (0, 0, 30, 8))
    img.paste((0, 0, 255), (0, 32, 30, 40))
    img.paste((0, 255, 0), (0, 8, 2, 32))
    img.paste((0, 255, 0), (28, 8, 30, 32))
    return _save(img, tmp_path / "p34.png")


def test_three_fit_rules_on_a_three_by_four_photo(tmp_path: Path) -> None:
    path = _three_by_four(tmp_path)
    size = 40
    stretched = load_image(path, size, fit="stretch").astype(int)
    padded = load_image(path, size, fit="pad").astype(int)
    cropped = load_image(path, size, fit="crop").astype(int)
    for arr in (stretched, padded, cropped):
        assert arr.shape == (size, size, 3)

    # stretch: the whole photo fills the frame, no white anywhere; both bands and side columns kept
    assert not (stretched.min(axis=-1) > 240).any()
    assert (stretched[1, :, 2] > 200).all() and (stretched[-2, :, 2] > 200).all(), "blue bands top and bottom"
    assert (stretched[20, 0] == (0, 255, 0)).all() and (stretched[20, -1] == (0, 255, 0)).all()

    # pad: the photo is 30 of 40 columns wide, centred: 5 white columns each side, nothing cut
    assert (padded[:, :5] == 255).all() and (padded[:, 35:] == 255).all(), "white bars on the sides"
    assert (padded[:, 5:35].min(axis=-1) < 240).all(), "the photo itself is not white"
    assert (padded[2, 10:30, 2] > 200).all() and (padded[-3, 10:30, 2] > 200).all(), "both bands kept"

    # crop: the centred 30x30 square (rows 5..35 of the photo): most of the bands are cut, the side
    # columns stay at the edges, no white
    assert not (cropped.min(axis=-1) > 240).any()
    assert (cropped[20, 0] == (0, 255, 0)).all() and (cropped[20, -1] == (0, 255, 0)).all()
    assert (cropped[20, 20] == RED).all()
    top = [r for r in range(size // 2) if cropped[r, 20, 2] > 200]
    bottom = [r for r in range(size // 2, size) if cropped[r, 20, 2] > 200]
    # only the inner 3 of each band's 8 rows survive, scaled by 40/30: about 4 rows, at the edges
    assert 3 <= len(top) <= 5 and top[0] == 0 and 3 <= len(bottom) <= 5 and bottom[-1] == size - 1


def test_square_photos_decode_the_same_by_every_rule(tmp_path: Path) -> None:
    """The fashion catalog's own photos are square: the rule only matters for other shapes."""
    rng = np.random.default_rng(3)
    path = _save(Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)), tmp_path / "sq.png")
    arrays = [load_image(path, SIZE, fit=f) for f in FITS]
    assert all((a == arrays[0]).all() for a in arrays[1:])


def test_fit_rules_are_the_configs_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    assert FITS == IMAGE_FITS and set(FIT_RULES) == set(FITS)
    path = _save(Image.new("RGB", (8, 8), RED), tmp_path / "f.png")
    with pytest.raises(ValueError, match="unknown image fit 'squash'.*stretch \\| pad \\| crop"):
        load_image(path, SIZE, fit="squash")
    with pytest.raises(ValueError, match="features.image_fit"):
        decode_to_bytes(path, SIZE, fit="letterbox")


@pytest.mark.parametrize("fit", ["stretch", "crop"])
def test_draft_keeps_both_sides_at_least_the_target_for_stretch_and_crop(tmp_path: Path, fit: str) -> None:
    """JPEG draft must not decode below the target on the short side, or crop/stretch lose detail."""
    assert draft_size(800, 200, 16, "pad") == (16, 4)
    assert draft_size(800, 200, 16, fit) == (16, 16)
    y, x = np.mgrid[0:200, 0:800]
    gradient = np.stack([x * 255 // 800, y * 255 // 200, (x + y) * 255 // 1000], axis=-1).astype(np.uint8)
    path = _save(Image.fromarray(gradient), tmp_path / "wide.jpg", format="JPEG", quality=95)
    arr = load_image(path, SIZE, fit=fit).astype(np.int16)
    with Image.open(path) as full:
        img = full.convert("RGB")
        box = (300, 0, 500, 200) if fit == "crop" else None
        reference = np.asarray(img.resize((SIZE, SIZE), Image.Resampling.BILINEAR, box=box), dtype=np.int16)
    assert np.abs(arr - reference).mean() < 3


def test_small_image_is_upscaled(tmp_path: Path) -> None:
    arr = load_image(_save(Image.new("RGB", (4, 4), RED), tmp_path / "s.png"), SIZE, fit="stretch")
    assert (arr == RED).all()


def test_high_bit_depth_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    img = Image.fromarray(np.full((20, 20), 30000, dtype=np.uint16))
    arr = load_image(_save(img, tmp_path / "i16.png"), SIZE, fit="stretch")
    assert arr.shape == (SIZE, SIZE, 3) and (arr == 255).all()


def test_large_jpeg_drafted_decode_matches_full_decode(tmp_path: Path) -> None:
    """JPEG draft mode (DCT-domain downscaling) must not change the picture, only the speed."""
    y, x = np.mgrid[0:600, 0:800]
    gradient = np.stack([x * 255 // 800, y * 255 // 600, (x + y) * 255 // 1400], axis=-1)
    path = _save(Image.fromarray(gradient.astype(np.uint8)), tmp_path / "big.jpg", format="JPEG")
    arr = load_image(path, SIZE, fit="pad")
    with Image.open(path) as full:
        reference = np.asarray(fit_and_pad(full.convert("RGB"), SIZE), dtype=np.int16)
    assert arr.shape == (SIZE, SIZE, 3)
    assert np.abs(arr.astype(np.int16) - reference).mean() < 3


def test_decode_failures_are_reported_not_raised(tmp_path: Path) -> None:
    good = _save(Image.new("RGB", (64, 64), RED), tmp_path / "g.jpg", format="JPEG")
    data, error = decode_to_bytes(good, SIZE, fit="stretch")
    assert error is None and data is not None and len(data) == SIZE * SIZE * 3

    rng = np.random.default_rng(1)
    noisy = Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
    full = Path(_save(noisy, tmp_path / "n.jpg", format="JPEG")).read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(full[: len(full) // 2])
    not_image = tmp_path / "x.jpg"
    not_image.write_text("hello")

    for path in (str(truncated), str(not_image), str(tmp_path / "missing.jpg"), None):
        data, error = decode_to_bytes(path, SIZE, fit="stretch")
        assert data is None and error, path


def test_bytes_input_and_file_uri(tmp_path: Path) -> None:
    path = Path(_save(Image.new("RGB", (8, 8), RED), tmp_path / "b.png"))
    assert (load_image(path.read_bytes(), SIZE, fit="stretch") == RED).all()
    assert (load_image(f"file://{path}", SIZE, fit="stretch") == RED).all()
