"""Write the demo's raw input files for a config: a catalog (generated) and simulated interactions.

Why a separate orchestrator: ``hybridrec demo-data`` and the tests both need "the raw files this
config's ingest will read", laid out exactly as the readers accept them, so the demo exercises the
real ingest path rather than a shortcut.

- ``demo.catalog: generated`` writes ``<paths.raw>/catalog/products.csv`` + ``images/`` (see
  ``hybridrec.demo.catalog``) and simulates interactions over it.
- ``demo.catalog: fashion`` reads ``<demo.fashion_path>/styles.csv`` only to learn ids, categories
  and attributes, and lists ``images/`` to know which ids have a photo (the catalog itself is
  ingested from where it lies, never copied), and simulates interactions over it. Without that
  folder it falls back to the generated catalog and says so.

Interactions always go to ``<paths.raw>/interactions/`` (see ``hybridrec.demo.simulator``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hybridrec.config import Config
from hybridrec.demo.catalog import ATTRIBUTE_COLUMNS, write_catalog
from hybridrec.demo.simulator import simulate, write_simulation

log = logging.getLogger(__name__)


@dataclass
class DemoDataResult:
    """What was written: the catalog used, counts and paths."""

    catalog: str  # generated | fashion
    n_products: int
    n_events: int
    paths: dict[str, Path] = field(default_factory=dict)


def read_fashion_styles(fashion_dir: Path, cfg: Config) -> tuple[pd.DataFrame, str, str]:
    """styles.csv as strings; returns it with the id and category column names to use.

    The columns follow ``catalog.columns`` when they exist in the file (conf/fashion.yaml maps
    category to articleType), else the fashion defaults ``id`` and ``articleType``.
    """
    styles = pd.read_csv(fashion_dir / "styles.csv", dtype=str, keep_default_na=False)
    id_col = cfg.catalog.columns.id if cfg.catalog.columns.id in styles.columns else "id"
    category = cfg.catalog.columns.category
    cat_col = category if category and category in styles.columns else "articleType"
    return styles, id_col, cat_col


def fashion_photo_ids(fashion_dir: Path) -> set[str]:
    """Ids with a photo ``images/<id>.jpg`` in the fashion folder (names only; nothing is read)."""
    folder = fashion_dir / "images"
    if not folder.is_dir():
        return set()
    with os.scandir(folder) as entries:
        return {e.name[:-4] for e in entries if e.name.endswith(".jpg") and e.is_file()}


def photo_summary(events: pd.DataFrame, products_with_photo: set[str], n_products: int) -> dict[str, int]:
    """How the events split between products with and without a photo.

    Why: content models see image features only for products with a photo, so evaluation needs to
    know how much of the interaction data falls on each kind (the simulator itself ignores photos).
    """
    on_photo = int(events["product_id"].isin(products_with_photo).sum())
    return {
        "products_with_photo": len(products_with_photo),
        "products_without_photo": n_products - len(products_with_photo),
        "events_on_products_with_photo": on_photo,
        "events_on_products_without_photo": int(len(events)) - on_photo,
    }


def write_demo_data(cfg: Config, progress: Callable[[str], None] | None = None) -> DemoDataResult:
    """Write the raw demo files for ``cfg``; ``progress`` gets one line per stage (default: log)."""
    say = progress or log.info
    demo = cfg.demo
    raw = Path(cfg.paths.raw)
    which = demo.catalog
    if which == "fashion" and not (Path(demo.fashion_path) / "styles.csv").is_file():
        say(
            f"demo-data: fashion catalog not found at {demo.fashion_path}/styles.csv; "
            f"falling back to the generated catalog under {raw / 'catalog'} (point catalog.* at it to ingest it)"
        )
        which = "generated"
    paths: dict[str, Path] = {}
    t0 = time.perf_counter()
    if which == "generated":
        products = write_catalog(demo, raw)
        paths["products"] = raw / "catalog" / "products.csv"
        paths["images"] = raw / "catalog" / "images"
        with_photo = set(products.loc[products["image"] != "", "id"])
        say(
            f"demo-data: [catalog] generated {len(products)} products in {demo.n_categories} "
            f"categories, {len(with_photo)} photos at {demo.image_size}px in {time.perf_counter() - t0:.1f}s "
            f"-> {paths['products']}, {paths['images']}"
        )
        # A fashion config that fell back keeps its attribute names: use the generated ones then.
        attributes = [a for a in demo.preference_attributes if a in ATTRIBUTE_COLUMNS] or list(ATTRIBUTE_COLUMNS)
        id_col, cat_col, listed_col = "id", "category", "listed_at"
    else:
        fashion_dir = Path(demo.fashion_path)
        products, id_col, cat_col = read_fashion_styles(fashion_dir, cfg)
        listed_col = None
        attributes = list(demo.preference_attributes)
        with_photo = fashion_photo_ids(fashion_dir) & set(products[id_col])
        say(
            f"demo-data: [catalog] fashion: {len(products)} products ({len(with_photo)} with a photo), "
            f"{products[cat_col].nunique()} categories ({cat_col}) read from {fashion_dir} "
            f"in {time.perf_counter() - t0:.1f}s (not copied)"
        )
    missing = [a for a in attributes if a not in products.columns]
    if missing:
        say(f"demo-data: preference attributes not in the catalog, ignored: {', '.join(missing)}")
        attributes = [a for a in attributes if a in products.columns]
    t1 = time.perf_counter()
    sim = simulate(products, demo, attributes, id_col=id_col, category_col=cat_col, listed_at_col=listed_col)
    photos = photo_summary(sim.events, with_photo, len(products))
    sim.truth["photos"] = photos
    ev, truth = sim.truth["events"], sim.truth
    say(
        f"demo-data: [interactions] simulated {len(sim.events)} events ({ev['view']} views, "
        f"{ev['cart']} carts, {ev['purchase']} purchases) by {demo.n_users} users "
        f"({truth['new_users']['count']} new) in {truth['sessions']['count']} sessions over {demo.days} days; "
        f"{truth['late_products']['count']} late products; "
        f"{photos['events_on_products_with_photo']} events on products with a photo, "
        f"{photos['events_on_products_without_photo']} without; in {time.perf_counter() - t1:.1f}s"
    )
    t2 = time.perf_counter()
    written = write_simulation(sim, raw / "interactions")
    paths.update(written)
    say(f"demo-data: [write] {', '.join(str(p) for p in written.values())} in {time.perf_counter() - t2:.1f}s")
    return DemoDataResult(catalog=which, n_products=len(products), n_events=len(sim.events), paths=paths)
