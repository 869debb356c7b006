"""A seeded, generated product catalog for the demo and the tests (a simulation, not real data).

Why generated: a fresh clone without ``../shared/data/fashion`` must still run the whole pipeline,
and tests need a catalog of a few hundred products in about a second. The catalog is built so that
the category is *learnable but not trivial* from both the photo and the text:

- ``n_categories`` categories, each with a shape family (circle, ring, square, diamond, triangle,
  cross, ellipse, bar), a palette of three named colours, a preferred texture (plain, stripes,
  checker, dots, speckle) and a background tone. Categories come in *confusable pairs* (0/1, 2/3, ...)
  that share the shape family, one palette colour and half of their vocabulary, like "sneakers" and
  "running shoes" in a real shop.
- Each photo varies within its category: shape position, scale, aspect ratio and rotation, the shape
  is another family's in 10 % of photos, the palette colour is jittered, the texture is the
  category's one in 60 % of photos and a random one otherwise, the background is the category's tone
  in 70 % of photos, plus Gaussian pixel noise and a gradient.
- Titles are ``brand colour adjective noun`` with nouns from the category vocabulary (shared within a
  pair); descriptions are two sentences mixing category words, pair words, words shared by the whole
  catalog and random noise words.
- Attribute columns ``colour`` (the palette colour drawn in the photo), ``style`` and ``segment``
  give the interaction simulator something to prefer besides the category.
- ``no_photo_share`` of products have no photo (empty ``image``), ``no_description_share`` no
  description; ``late_share`` are listed during the last ``late_window`` of the simulated window
  (the cold items), the others before the window starts.

Everything comes from ``numpy.random.default_rng``: the table from ``default_rng(seed)``, the photo
of product ``i`` from ``default_rng([seed, 2, i])``; the same config writes the same bytes.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from hybridrec.config import DemoConfig

log = logging.getLogger(__name__)

PRODUCT_COLUMNS = ["id", "title", "description", "category", "image", "listed_at", "colour", "style", "segment"]
ATTRIBUTE_COLUMNS = ["colour", "style", "segment"]
PHOTO_NAME = re.compile(r"p\d{6,}\.jpg")  # the generator's file names: p<id>.jpg

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "orange": (235, 130, 30),
    "yellow": (230, 210, 50),
    "green": (50, 150, 60),
    "teal": (30, 140, 140),
    "blue": (40, 80, 200),
    "navy": (25, 35, 100),
    "purple": (120, 50, 160),
    "pink": (230, 120, 170),
    "brown": (120, 75, 40),
    "beige": (215, 195, 160),
    "grey": (128, 128, 128),
    "black": (25, 25, 25),
    "white": (240, 240, 240),
    "gold": (200, 165, 50),
    "silver": (180, 185, 195),
}
SHAPES = ("ellipse", "square", "ring", "triangle", "circle", "bar", "diamond", "cross")
TEXTURES = ("plain", "stripes", "checker", "dots", "speckle")
ODD_SHAPE_SHARE = 0.1
STYLES = ("casual", "formal", "sport", "classic", "boho")
SEGMENTS = ("budget", "mid", "premium")
BRANDS = (
    "Aster",
    "Borealis",
    "Cobalt",
    "Dune",
    "Ember",
    "Fjord",
    "Gala",
    "Halo",
    "Iris",
    "Juno",
    "Kite",
    "Lumen",
    "Mosaic",
    "Nova",
    "Orchid",
    "Pebble",
)
ADJECTIVES = ("classic", "new", "soft", "light", "premium", "everyday", "slim", "bold", "vintage", "modern")
SHARED_WORDS = (
    "quality",
    "comfortable",
    "durable",
    "stylish",
    "gift",
    "easy",
    "care",
    "design",
    "fit",
    "season",
    "collection",
    "material",
)

# (name, nouns, category words); pairs (0,1), (2,3), ... are deliberately confusable.
_BASE_CATEGORIES: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("sneakers", ("sneaker", "shoe", "trainer"), ("sole", "laces", "street", "canvas", "grip", "kicks")),
    (
        "running shoes",
        ("running shoe", "shoe", "trainer"),
        ("cushioning", "marathon", "mesh", "laces", "stride", "track"),
    ),
    ("t-shirts", ("t-shirt", "tee", "top"), ("cotton", "crew", "neck", "print", "sleeve", "jersey")),
    ("shirts", ("shirt", "top", "button-down"), ("collar", "cuffs", "poplin", "sleeve", "buttons", "oxford")),
    ("watches", ("watch", "timepiece", "wristwear"), ("dial", "strap", "quartz", "chronograph", "hands", "waterproof")),
    ("bracelets", ("bracelet", "bangle", "wristwear"), ("charm", "beads", "clasp", "chain", "sterling", "stack")),
    ("handbags", ("handbag", "bag", "tote"), ("leather", "handle", "zip", "pocket", "shoulder", "compartment")),
    ("backpacks", ("backpack", "bag", "rucksack"), ("straps", "laptop", "zip", "pocket", "hiking", "padded")),
    ("hats", ("hat", "cap", "beanie"), ("brim", "wool", "visor", "knit", "sun", "crown")),
    ("scarves", ("scarf", "wrap", "shawl"), ("wool", "knit", "fringe", "silk", "warm", "winter")),
    ("lamps", ("lamp", "light", "lantern"), ("bulb", "shade", "led", "desk", "glow", "dimmer")),
    ("cushions", ("cushion", "pillow", "throw"), ("filling", "cover", "sofa", "velvet", "square", "decor")),
]
_PALETTES = [
    ("red", "orange", "white"),
    ("orange", "red", "grey"),
    ("blue", "navy", "white"),
    ("navy", "blue", "grey"),
    ("silver", "black", "gold"),
    ("gold", "silver", "pink"),
    ("brown", "beige", "black"),
    ("black", "brown", "green"),
    ("beige", "navy", "red"),
    ("red", "green", "purple"),
    ("yellow", "white", "teal"),
    ("pink", "purple", "teal"),
]


@dataclass(frozen=True)
class CategorySpec:
    """How one category looks and reads; pairs share shape, a colour and part of the vocabulary."""

    name: str
    shape: str
    palette: tuple[str, ...]
    texture: str
    dark_background: bool
    nouns: tuple[str, ...]
    words: tuple[str, ...]


def category_specs(n_categories: int, rng: np.random.Generator) -> list[CategorySpec]:
    """The first 12 categories are hand-written; more are synthesised (``category 13``, ...)."""
    specs: list[CategorySpec] = []
    colour_names = list(COLOURS)
    for k in range(n_categories):
        pair = k // 2
        if k < len(_BASE_CATEGORIES):
            name, nouns, words = _BASE_CATEGORIES[k]
            palette = _PALETTES[k]
        else:
            name = f"category {k + 1}"
            nouns = (f"item{k + 1}", f"piece{pair + 1}", "article")
            words = tuple(f"w{k + 1}x{j}" for j in range(6))
            first = colour_names[int(rng.integers(len(colour_names)))]
            if k % 2 == 1:  # keep the pair's shared colour
                first = specs[k - 1].palette[0]
            rest = rng.choice([c for c in colour_names if c != first], size=2, replace=False)
            palette = (first, str(rest[0]), str(rest[1]))
        specs.append(
            CategorySpec(
                name=name,
                shape=SHAPES[pair % len(SHAPES)],
                palette=palette,
                texture=TEXTURES[k % len(TEXTURES)],
                dark_background=bool(k % 3 == 0),
                nouns=nouns,
                words=words,
            )
        )
    return specs


def draw_photo(spec: CategorySpec, colour: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``size`` x ``size`` RGB uint8 photo of a product of ``spec`` whose main colour is ``colour``."""
    base = np.array(COLOURS[colour], dtype=np.float32) + rng.normal(0, 18, 3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    # Background: category tone (70 %) or a random light one, with a gentle gradient.
    if rng.random() < 0.7:
        bg = np.full(3, 45.0 if spec.dark_background else 225.0) + rng.normal(0, 12, 3)
    else:
        bg = rng.uniform(150, 250, 3)
    gradient = (xx * rng.uniform(-40, 40) + yy * rng.uniform(-40, 40))[..., None]
    img = bg[None, None, :] + gradient
    # Shape: random centre, scale and rotation.
    cx, cy = rng.uniform(0.32, 0.68, 2)
    radius = rng.uniform(0.17, 0.33)
    angle = rng.uniform(-0.4, 0.4)
    stretch = np.sqrt(rng.uniform(0.8, 1.25))  # aspect ratio varies, area kept
    dx, dy = xx - cx, yy - cy
    ca, sa = np.cos(angle), np.sin(angle)
    dx, dy = (ca * dx + sa * dy) / radius * stretch, (-sa * dx + ca * dy) / radius / stretch
    r2 = dx * dx + dy * dy
    # The category's shape family in 90 % of photos, another family otherwise (label noise).
    shape = spec.shape if rng.random() >= ODD_SHAPE_SHARE else SHAPES[int(rng.integers(len(SHAPES)))]
    if shape == "circle":
        mask = r2 < 1.0
    elif shape == "ring":
        mask = (r2 < 1.0) & (r2 > 0.42)
    elif shape == "square":
        mask = np.maximum(np.abs(dx), np.abs(dy)) < 0.85
    elif shape == "diamond":
        mask = np.abs(dx) + np.abs(dy) < 1.1
    elif shape == "triangle":
        mask = (dy < 0.85) & (np.abs(dx) < (dy + 1.0) * 0.55)
    elif shape == "cross":
        mask = ((np.abs(dx) < 0.33) & (np.abs(dy) < 1.0)) | ((np.abs(dy) < 0.33) & (np.abs(dx) < 1.0))
    elif shape == "ellipse":
        mask = (dx * dx + (dy / 0.55) ** 2) < 1.0
    else:  # bar
        mask = (np.abs(dy) < 0.38) & (np.abs(dx) < 1.1)
    # Texture: the category's own in 60 % of photos.
    texture = spec.texture if rng.random() < 0.6 else TEXTURES[int(rng.integers(len(TEXTURES)))]
    period = rng.uniform(0.25, 0.5)
    if texture == "stripes":
        tex = np.where(np.sin(dx / period * np.pi) > 0, 1.0, 0.6)
    elif texture == "checker":
        tex = np.where((np.floor(dx / period) + np.floor(dy / period)) % 2 == 0, 1.0, 0.65)
    elif texture == "dots":
        tex = np.where(((dx / period) % 1 - 0.5) ** 2 + ((dy / period) % 1 - 0.5) ** 2 < 0.08, 0.55, 1.0)
    elif texture == "speckle":
        tex = 1.0 - 0.35 * (rng.random((size, size)) < 0.2)
    else:
        tex = np.ones((size, size))
    fg = base[None, None, :] * tex[..., None]
    img = np.where(mask[..., None], fg, img)
    img = img + rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _title(spec: CategorySpec, colour: str, rng: np.random.Generator) -> str:
    brand = BRANDS[int(rng.integers(len(BRANDS)))]
    adjective = ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]
    noun = spec.nouns[int(rng.choice(len(spec.nouns), p=[0.5, 0.3, 0.2]))]
    parts = [brand, colour if rng.random() < 0.7 else "", adjective, noun]
    return " ".join(p for p in parts if p).title()


def _description(spec: CategorySpec, partner: CategorySpec, rng: np.random.Generator) -> str:
    own = list(rng.choice(spec.words, size=3, replace=False))
    other = list(rng.choice(partner.words, size=int(rng.integers(0, 3)), replace=False))
    shared = list(rng.choice(SHARED_WORDS, size=3, replace=False))
    noise = [
        "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=int(rng.integers(3, 8))))
        for _ in range(int(rng.integers(0, 3)))
    ]
    words = own + other + shared + noise
    rng.shuffle(words)
    half = len(words) // 2
    noun = spec.nouns[int(rng.integers(len(spec.nouns)))]
    return f"A {' '.join(words[:half])} {noun}. {' '.join(words[half:]).capitalize()} for every day."


def window(demo: DemoConfig) -> tuple[int, int]:
    """The simulated window as epoch seconds: (start, end = demo.reference_date)."""
    end = datetime.fromisoformat(demo.reference_date.replace("Z", "+00:00")).astimezone(UTC)
    end_s = int(end.timestamp())
    return end_s - demo.days * 86400, end_s


def iso(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds → ISO-8601 UTC strings ``YYYY-MM-DDTHH:MM:SSZ`` (vectorised)."""
    return np.char.add(np.datetime_as_string(np.asarray(seconds, dtype="datetime64[s]"), unit="s"), "Z")


def listing_times(n: int, late: np.ndarray, demo: DemoConfig, rng: np.random.Generator) -> np.ndarray:
    """Listing times (epoch s): late items during the last ``late_window``, others up to a year
    before the window, so that only the late ones are cold during the simulated weeks."""
    start, end = window(demo)
    span = end - start
    early = start - rng.uniform(0, 365 * 86400, n)
    lo, hi = end - demo.late_window * span, end - 0.05 * demo.late_window * span
    late_t = rng.uniform(lo, hi, n)
    return np.where(late, late_t, early).astype(np.int64)


def generate_catalog(demo: DemoConfig, images_dir: Path | None) -> pd.DataFrame:
    """Generate the catalog (and its photos under ``images_dir`` when given) for ``demo``.

    Returns the products table with ``PRODUCT_COLUMNS``; ``image`` is the file name relative to
    ``images_dir`` or "" for a product without photo (every product when ``images_dir`` is None:
    the table alone, fast, e.g. for the simulator; its other columns are the same either way).
    """
    rng = np.random.default_rng(demo.seed)
    specs = category_specs(demo.n_categories, rng)
    n = demo.n_products
    # Every category present: one product each first, the rest with uneven category sizes.
    weights = rng.dirichlet(np.full(len(specs), 4.0))
    cats = np.concatenate([np.arange(len(specs)), rng.choice(len(specs), size=max(0, n - len(specs)), p=weights)])[:n]
    rng.shuffle(cats)
    has_photo = rng.random(n) >= demo.no_photo_share
    has_desc = rng.random(n) >= demo.no_description_share
    late = rng.random(n) < demo.late_share
    listed = listing_times(n, late, demo, rng)
    styles = rng.choice(STYLES, size=n)
    segments = rng.choice(SEGMENTS, size=n, p=[0.4, 0.4, 0.2])
    colour_pick = rng.choice(3, size=n, p=[0.6, 0.25, 0.15])  # main, second, accent palette colour
    if images_dir is not None:
        images_dir.mkdir(parents=True, exist_ok=True)
    ids, titles, descs, images, colours = [], [], [], [], []
    for i in range(n):
        spec = specs[int(cats[i])]
        partner = specs[int(cats[i]) ^ 1] if (int(cats[i]) ^ 1) < len(specs) else spec
        pid = f"p{i + 1:06d}"
        colour = spec.palette[int(colour_pick[i])]
        image = ""
        if has_photo[i] and images_dir is not None:
            # Each photo from its own stream: the table is the same whether photos are drawn or not.
            pixels = draw_photo(spec, colour, demo.image_size, np.random.default_rng([demo.seed, 2, i]))
            image = f"{pid}.jpg"
            buf = io.BytesIO()
            Image.fromarray(pixels, "RGB").save(buf, format="JPEG", quality=90)
            (images_dir / image).write_bytes(buf.getvalue())
        ids.append(pid)
        colours.append(colour)
        titles.append(_title(spec, colour, rng))
        descs.append(_description(spec, partner, rng) if has_desc[i] else "")
        images.append(image)
    return pd.DataFrame(
        {
            "id": ids,
            "title": titles,
            "description": descs,
            "category": [specs[int(c)].name for c in cats],
            "image": images,
            "listed_at": iso(listed),
            "colour": colours,
            "style": styles,
            "segment": segments,
        },
        columns=PRODUCT_COLUMNS,
    )


def write_catalog(demo: DemoConfig, raw_dir: Path) -> pd.DataFrame:
    """Write ``<raw>/catalog/products.csv`` and ``<raw>/catalog/images/<id>.jpg``; return the table.

    Photos a previous, larger or differently seeded run left behind (generator-named files the new
    table does not reference) are removed, so the folder holds exactly this catalog's photos.
    """
    catalog_dir = Path(raw_dir) / "catalog"
    images_dir = catalog_dir / "images"
    products = generate_catalog(demo, images_dir)
    products.to_csv(catalog_dir / "products.csv", index=False, lineterminator="\n")
    referenced = set(products["image"])
    stale = [p for p in images_dir.glob("p*.jpg") if PHOTO_NAME.fullmatch(p.name) and p.name not in referenced]
    for path in stale:
        path.unlink()
    if stale:
        log.info("demo catalog: removed %d photos of an earlier run from %s", len(stale), images_dir)
    return products
