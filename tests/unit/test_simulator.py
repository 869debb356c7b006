"""The interaction simulator: deterministic, plausible (Zipf, preferences, funnel) and cold-aware."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybridrec.catalog.demo_catalog import generate_catalog
from hybridrec.catalog.simulator import INTERACTION_COLUMNS, Simulation, simulate, write_simulation
from hybridrec.config import DemoConfig

DEMO = DemoConfig(n_products=200, n_users=100, n_categories=8)
ATTRS = ["colour", "style", "segment"]
FASHION_ATTRS = ["gender", "baseColour", "usage", "season"]


@pytest.fixture(scope="module")
def products() -> pd.DataFrame:
    return generate_catalog(DEMO, images_dir=None)


@pytest.fixture(scope="module")
def sim(products: pd.DataFrame) -> Simulation:
    return simulate(products, DEMO, ATTRS)


def _written_digest(sim: Simulation, folder: Path) -> str:
    paths = write_simulation(sim, folder)
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths.values())).hexdigest()


def test_deterministic_for_a_seed(products: pd.DataFrame, tmp_path: Path) -> None:
    a = _written_digest(simulate(products, DEMO, ATTRS), tmp_path / "a")
    b = _written_digest(simulate(products, DEMO, ATTRS), tmp_path / "b")
    other = DemoConfig(**{**DEMO.__dict__, "seed": 7})
    c = _written_digest(simulate(products, other, ATTRS), tmp_path / "c")
    assert a == b != c


def test_written_layout(sim: Simulation, tmp_path: Path) -> None:
    paths = write_simulation(sim, tmp_path)
    events = pd.read_csv(paths["interactions"], dtype=str)
    assert list(events.columns) == INTERACTION_COLUMNS
    assert events["ts"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    assert set(events["event"]) == {"view", "cart", "purchase"}
    truth = pd.read_json(paths["truth"], typ="series")
    assert truth["simulation"] is True or truth["simulation"] == True  # noqa: E712
    assert truth["reference_date"] == DEMO.reference_date
    assert truth["n_events"] == len(events)
    assert len(pd.read_csv(paths["late_products"])) == truth["late_products"]["count"]


def test_counts_ids_and_window(sim: Simulation, products: pd.DataFrame) -> None:
    ev = sim.events
    assert 0.7 * DEMO.n_users * DEMO.events_per_user < len(ev) < 1.3 * DEMO.n_users * DEMO.events_per_user
    assert set(ev["product_id"]) <= set(products["id"])
    assert set(ev["user_id"]) <= set(sim.users["user_id"])
    end = int(pd.Timestamp(DEMO.reference_date).timestamp())
    assert ev["ts"].min() >= end - DEMO.days * 86400 and ev["ts"].max() < end
    assert ev["ts"].is_monotonic_increasing
    per_user = ev.groupby("user_id").size().reindex(sim.users["user_id"], fill_value=0)
    assert (per_user <= 5).mean() >= 0.08  # some users with very few events


def test_late_products_have_no_events_before_listing(sim: Simulation, products: pd.DataFrame) -> None:
    listed = pd.to_datetime(products.set_index("id")["listed_at"], utc=True).astype("int64") // 10**9
    ev_listed = listed.reindex(sim.events["product_id"]).to_numpy()
    assert (sim.events["ts"].to_numpy() >= ev_listed).all()
    late = set(sim.late_products["id"])
    start = int(pd.Timestamp(DEMO.reference_date).timestamp()) - DEMO.days * 86400
    assert late and late == set(listed[listed >= start].index)
    assert sim.events["product_id"].isin(late).any()  # late items do get some events, later


def test_zipf_skew(sim: Simulation, products: pd.DataFrame) -> None:
    counts = sim.events["product_id"].value_counts().reindex(products["id"], fill_value=0)
    top = np.sort(counts.to_numpy())[::-1][: len(counts) // 10].sum()
    assert top / counts.sum() > 0.35  # top 10 % of items: far more than 10 % of events


def test_users_concentrate_on_preferred_categories(sim: Simulation, products: pd.DataFrame) -> None:
    cat = products.set_index("id")["category"]
    prefs = sim.users.set_index("user_id")["preferred_categories"].str.split("|")
    views = sim.events[sim.events["event"] == "view"]
    in_pref = [c in prefs[u] for u, c in zip(views["user_id"], cat.reindex(views["product_id"]))]
    share = float(np.mean(in_pref))
    shares = cat.value_counts(normalize=True)
    uniform = float(np.mean([shares.reindex(p).sum() for p in prefs.reindex(views["user_id"])]))
    assert share > 0.6 and share > 2 * uniform
    # Attribute preferences show too: viewed items match the user's colour more than items overall.
    colour = products.set_index("id")["colour"]
    pref_colour = sim.users.set_index("user_id")["colour"]
    match = (colour.reindex(views["product_id"]).to_numpy() == pref_colour.reindex(views["user_id"]).to_numpy()).mean()
    base = colour.value_counts(normalize=True).reindex(pref_colour.reindex(views["user_id"])).fillna(0).mean()
    assert match > 1.3 * base


def test_funnel_order_and_rates(sim: Simulation) -> None:
    ev = sim.events
    rates = ev["event"].value_counts(normalize=True)
    assert rates["view"] > 0.8 and rates["cart"] > rates["purchase"] > 0.005
    views = ev[ev["event"] == "view"][["user_id", "product_id", "ts"]].sort_values("ts")
    for step in ("cart", "purchase"):
        later = ev[ev["event"] == step][["user_id", "product_id", "ts"]].sort_values("ts")
        joined = pd.merge_asof(later, views.rename(columns={"ts": "view_ts"}), left_on="ts",
                               right_on="view_ts", by=["user_id", "product_id"], direction="backward")
        # Preceded by a view of the same item within the same session (funnel steps <= 30 min each).
        assert joined["view_ts"].notna().all()
        assert ((joined["ts"] - joined["view_ts"]) <= 3600).all()
    carts = ev[ev["event"] == "cart"][["user_id", "product_id", "ts"]].sort_values("ts")
    buys = ev[ev["event"] == "purchase"][["user_id", "product_id", "ts"]].sort_values("ts")
    joined = pd.merge_asof(buys, carts.rename(columns={"ts": "cart_ts"}), left_on="ts", right_on="cart_ts",
                           by=["user_id", "product_id"], direction="backward")
    assert joined["cart_ts"].notna().all()


def test_fashion_slice(fashion_dir: Path, tmp_path: Path) -> None:
    styles = pd.read_csv(fashion_dir / "styles.csv", dtype=str, keep_default_na=False, nrows=500)
    demo = DemoConfig(n_users=100, catalog="fashion", preference_attributes=FASHION_ATTRS)
    sim = simulate(styles, demo, FASHION_ATTRS, id_col="id", category_col="articleType", listed_at_col=None)
    assert set(sim.events["product_id"]) <= set(styles["id"])
    assert list(sim.users.columns) == ["user_id", "preferred_categories", *FASHION_ATTRS]
    # A seeded late subset, with no events before its listing.
    late = sim.late_products.set_index("id")["listed_at"]
    assert 0.03 * len(styles) < len(late) < 0.2 * len(styles)
    listed = pd.to_datetime(late, utc=True).astype("int64") // 10**9
    ev = sim.events[sim.events["product_id"].isin(late.index)]
    assert (ev["ts"].to_numpy() >= listed.reindex(ev["product_id"]).to_numpy()).all()
    again = simulate(styles, demo, FASHION_ATTRS, id_col="id", category_col="articleType", listed_at_col=None)
    pd.testing.assert_frame_equal(sim.late_products, again.late_products)
    # Gender preference shows: viewed items match the user's preferred gender far above chance.
    gender = styles.set_index("id")["gender"]
    pref = sim.users.set_index("user_id")["gender"]
    views = sim.events[sim.events["event"] == "view"]
    match = (gender.reindex(views["product_id"]).to_numpy() == pref.reindex(views["user_id"]).to_numpy()).mean()
    assert match > 0.6
    paths = write_simulation(sim, tmp_path)
    assert (tmp_path / "late_products.csv").is_file() and paths["truth"].is_file()
