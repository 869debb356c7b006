"""The generated demo catalog: deterministic, complete, readable by the catalog readers' layout."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import make_config
from hybridrec.cli import main as cli_main
from hybridrec.config import ConfigError, DemoConfig
from hybridrec.demo.catalog import PRODUCT_COLUMNS, generate_catalog, write_catalog
from hybridrec.demo.raw_files import write_demo_data

TINY = dict(n_products=200, n_users=100, n_categories=8, image_size=32)


def _digest(folder: Path) -> str:
    """One hash over every file's relative path and bytes under ``folder``."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoConfig, Path, pd.DataFrame]:
    demo = DemoConfig(**TINY)
    raw = tmp_path_factory.mktemp("tiny") / "raw"
    write_catalog(demo, raw)
    products = pd.read_csv(raw / "catalog" / "products.csv", dtype=str, keep_default_na=False)
    return demo, raw, products


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    write_catalog(DemoConfig(**TINY), tmp_path / "a")
    write_catalog(DemoConfig(**TINY), tmp_path / "b")
    write_catalog(DemoConfig(**{**TINY, "seed": 7}), tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_columns_counts_and_categories(tiny: tuple[DemoConfig, Path, pd.DataFrame]) -> None:
    demo, _, products = tiny
    assert list(products.columns) == PRODUCT_COLUMNS
    assert len(products) == demo.n_products
    assert products["id"].is_unique
    assert products["category"].nunique() == demo.n_categories
    assert (products["title"] != "").all()
    no_photo = (products["image"] == "").mean()
    no_desc = (products["description"] == "").mean()
    assert 0 < no_photo < 0.2 and 0 < no_desc < 0.25


def test_table_does_not_depend_on_drawing_photos(tiny: tuple[DemoConfig, Path, pd.DataFrame]) -> None:
    """The simulator's fast path (no photos) sees the same products as the written catalog."""
    demo, _, products = tiny
    table = generate_catalog(demo, images_dir=None)
    assert (table["image"] == "").all()
    pd.testing.assert_frame_equal(table.drop(columns="image"), products.drop(columns="image"))


def test_photos_decode_at_configured_size(tiny: tuple[DemoConfig, Path, pd.DataFrame]) -> None:
    demo, raw, products = tiny
    images = products.loc[products["image"] != "", "image"]
    assert len(images) > 0.8 * len(products)
    for name in images:
        with Image.open(io.BytesIO((raw / "catalog" / "images" / name).read_bytes())) as img:
            img.load()
            assert img.size == (demo.image_size, demo.image_size) and img.mode == "RGB"


def test_photos_carry_category_signal(tiny: tuple[DemoConfig, Path, pd.DataFrame]) -> None:
    """Mean photos differ more between categories than within (learnable), but not trivially."""
    _, raw, products = tiny
    with_img = products[products["image"] != ""]
    feats = np.stack(
        [
            np.asarray(Image.open(raw / "catalog" / "images" / n), dtype=np.float32).mean(axis=(0, 1))
            for n in with_img["image"]
        ]
    )
    cats = with_img["category"].to_numpy()
    centroids = {c: feats[cats == c].mean(axis=0) for c in np.unique(cats)}
    nearest = [min(centroids, key=lambda c: np.linalg.norm(f - centroids[c])) for f in feats]
    accuracy = float(np.mean(np.array(nearest) == cats))
    assert 1.5 / len(centroids) < accuracy < 0.95


def test_late_products_listed_in_last_part_of_window(tiny: tuple[DemoConfig, Path, pd.DataFrame]) -> None:
    demo, _, products = tiny
    listed = pd.to_datetime(products["listed_at"], utc=True)
    end = pd.Timestamp(demo.reference_date)
    late = listed >= end - pd.Timedelta(days=demo.days)
    assert 0.03 < late.mean() < 0.2
    assert (listed[late] >= end - pd.Timedelta(days=demo.days * demo.late_window)).all()
    assert (listed < end).all()
    assert products["listed_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()


def test_text_has_category_words_and_confusable_pairs(tiny: tuple[DemoConfig, Path, pd.DataFrame]) -> None:
    _, _, products = tiny
    sneakers = products[products["category"] == "sneakers"]
    running = products[products["category"] == "running shoes"]
    assert sneakers["title"].str.contains("Shoe|Trainer|Sneaker").all()
    # The pair shares nouns: some titles of both categories are indistinguishable by noun alone.
    assert sneakers["title"].str.contains("Shoe|Trainer").any() and running["title"].str.contains("Shoe|Trainer").any()


def test_demo_data_writes_reader_layout(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, demo=dict(TINY))
    lines: list[str] = []
    result = write_demo_data(cfg, progress=lines.append)
    raw = Path(cfg.paths.raw)
    assert result.catalog == "generated"
    assert (raw / "catalog" / "products.csv").is_file()
    events = pd.read_csv(raw / "interactions" / "interactions.csv", dtype=str)
    assert list(events.columns) == ["user_id", "product_id", "event", "ts"]
    assert len(lines) >= 3 and all(line.startswith("demo-data:") for line in lines)


def test_rewrite_removes_photos_of_an_earlier_run(tmp_path: Path) -> None:
    write_catalog(DemoConfig(**{**TINY, "n_products": 260}), tmp_path)
    products = write_catalog(DemoConfig(**TINY), tmp_path)
    on_disk = {p.name for p in (tmp_path / "catalog" / "images").iterdir()}
    assert on_disk == set(products.loc[products["image"] != "", "image"])


def test_cli_demo_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "demo.yaml"
    conf.write_text("paths: {raw: raw}\ndemo: {preference_attributes: [colour, style, segment]}\n", encoding="utf-8")
    sets = [f"--set=demo.{k}={v}" for k, v in TINY.items()]
    assert cli_main(["demo-data", "--config", str(conf), *sets]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("]")[0] for line in out] == [
        "demo-data: [catalog",
        "demo-data: [interactions",
        "demo-data: [write",
    ]
    assert str(tmp_path / "raw" / "interactions" / "interactions.csv") in out[-1]
    assert len(pd.read_csv(tmp_path / "raw" / "catalog" / "products.csv")) == TINY["n_products"]
    assert cli_main(["demo-data", "--config", str(conf), "--set", "demo.catalog=shop"]) == 2


def test_demo_data_on_fashion_writes_interactions_only(fashion_dir: Path, tmp_path: Path) -> None:
    """The real catalog is read in place: only interactions, users, late products and truth are written."""
    cfg = make_config(
        tmp_path,
        demo={
            "catalog": "fashion",
            "fashion_path": str(fashion_dir),
            "n_users": 60,
            "preference_attributes": ["gender", "baseColour", "usage", "season"],
        },
        catalog={"columns": {"category": "articleType", "title": "productDisplayName", "description": None}},
    )
    lines: list[str] = []
    result = write_demo_data(cfg, progress=lines.append)
    raw = Path(cfg.paths.raw)
    assert result.catalog == "fashion" and result.n_products > 40000
    assert not (raw / "catalog").exists()
    assert sorted(p.name for p in (raw / "interactions").iterdir()) == [
        "interactions.csv",
        "late_products.csv",
        "truth.json",
        "users.csv",
    ]
    truth = json.loads((raw / "interactions" / "truth.json").read_text(encoding="utf-8"))
    assert truth["simulation"] is True and truth["photos"]["products_with_photo"] > 0
    assert truth["photos"]["events_on_products_with_photo"] > 0
    assert truth["photos"]["events_on_products_without_photo"] > 0
    assert "with a photo" in lines[0]


def test_missing_fashion_falls_back_to_generated(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path,
        demo={
            **TINY,
            "catalog": "fashion",
            "fashion_path": str(tmp_path / "nope"),
            "preference_attributes": ["gender", "baseColour"],
        },
    )
    lines: list[str] = []
    result = write_demo_data(cfg, progress=lines.append)
    assert result.catalog == "generated"
    assert any("falling back" in line for line in lines)


def test_config_rejects_bad_demo_values() -> None:
    with pytest.raises(ConfigError, match="demo.catalog"):
        DemoConfig(catalog="retail")
    with pytest.raises(ConfigError, match="demo.reference_date"):
        DemoConfig(reference_date="yesterday")
    with pytest.raises(ConfigError, match="demo.late_share"):
        DemoConfig(late_share=1.5)
    with pytest.raises(ConfigError, match="demo.n_products"):
        DemoConfig(n_products=5, n_categories=8)
