"""The interaction simulator: deterministic, plausible (Zipf, preferences, funnel) and cold-aware."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybridrec.config import DemoConfig
from hybridrec.demo import simulator
from hybridrec.demo.catalog import generate_catalog
from hybridrec.demo.simulator import INTERACTION_COLUMNS, Simulation, simulate, write_simulation

DEMO = DemoConfig(n_products=200, n_users=100, n_categories=8)
ATTRS = ["colour", "style", "segment"]
FASHION_ATTRS = ["gender", "baseColour", "usage", "season"]


@pytest.fixture(scope="module")
def products() -> pd.DataFrame:
    return generate_catalog(DEMO, images_dir=None)


@pytest.fixture(scope="module")
def sim(products: pd.DataFrame) -> Simulation:
    # Small chunks so that the tests cover the chunked candidate step, as at 1M events.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(simulator, "CHUNK_VIEWS", 1000)
        result = simulate(products, DEMO, ATTRS)
    assert len(result.events) > 2000  # several chunks
    return result


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
    users = pd.read_csv(paths["users"], dtype=str)
    assert list(users.columns) == ["user_id", "new_user", "active_from", "n_events", "preferred_categories", *ATTRS]
    truth = pd.read_json(paths["truth"], typ="series")
    assert truth["simulation"] is True or truth["simulation"] == True  # noqa: E712 - numpy's bool_ is not `True`, but must equal it
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
    assert (per_user.to_numpy() == sim.users["n_events"].to_numpy()).all()


def test_ingest_key_is_unique(sim: Simulation) -> None:
    """bronze.interactions is keyed on (user, product, ts, event): a repeat would be quarantined."""
    assert not sim.events.duplicated(INTERACTION_COLUMNS).any()
    assert sim.truth["duplicates_dropped"] == 0


def test_sessions_do_not_overlap(sim: Simulation) -> None:
    spans = sim.events.groupby("session").agg(
        user=("user_id", "first"), users=("user_id", "nunique"), lo=("ts", "min"), hi=("ts", "max")
    )
    assert (spans["users"] == 1).all()
    spans = spans.sort_values(["user", "lo"])
    same_user = spans["user"].to_numpy()[1:] == spans["user"].to_numpy()[:-1]
    assert (spans["lo"].to_numpy()[1:][same_user] > spans["hi"].to_numpy()[:-1][same_user]).all()
    views = sim.events[sim.events["event"] == "view"].groupby("session").size()
    assert 2.5 < views.mean() < 8  # a user browses several items per session


def test_new_users_join_late_with_few_events(sim: Simulation) -> None:
    users = sim.users.set_index("user_id")
    new = users[users["new_user"]]
    assert 0.05 * DEMO.n_users < len(new) < 0.3 * DEMO.n_users
    end = pd.Timestamp(DEMO.reference_date)
    joined = pd.to_datetime(new["active_from"], utc=True)
    assert (joined >= end - pd.Timedelta(days=DEMO.days * DEMO.late_window)).all()
    ev = sim.events[sim.events["user_id"].isin(new.index)]
    views = ev[ev["event"] == "view"].groupby("user_id").size()
    assert views.max() <= 3
    first_ts = pd.to_datetime(ev.groupby("user_id")["ts"].min(), unit="s", utc=True)
    assert (first_ts >= joined.reindex(first_ts.index)).all()
    assert sim.truth["new_users"]["count"] == len(new)


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
    """Every purchase follows a cart, and every cart a view, of the same item in the same session."""
    ev = sim.events
    counts = ev["event"].value_counts()
    assert 0.03 < counts["cart"] / counts["view"] < 0.15
    assert 0.2 < counts["purchase"] / counts["cart"] < 0.5
    key = ["session", "user_id", "product_id"]
    first = {e: ev[ev["event"] == e].groupby(key)["ts"].min() for e in ("view", "cart")}
    for step, before in (("cart", "view"), ("purchase", "cart")):
        rows = ev[ev["event"] == step].set_index(key)["ts"]
        earlier = first[before].reindex(rows.index)
        assert earlier.notna().all(), f"a {step} without a {before} of the same item in its session"
        assert (rows.to_numpy() > earlier.to_numpy()).all()
    # One funnel per item and session: at most one cart and one purchase.
    assert not ev[ev["event"] != "view"].duplicated(["session", "product_id", "event"]).any()


def test_fashion_slice(fashion_dir: Path, tmp_path: Path) -> None:
    styles = pd.read_csv(fashion_dir / "styles.csv", dtype=str, keep_default_na=False, nrows=500)
    demo = DemoConfig(n_users=100, catalog="fashion", preference_attributes=FASHION_ATTRS)
    sim = simulate(styles, demo, FASHION_ATTRS, id_col="id", category_col="articleType", listed_at_col=None)
    assert set(sim.events["product_id"]) <= set(styles["id"])
    assert list(sim.users.columns) == [
        "user_id",
        "new_user",
        "active_from",
        "n_events",
        "preferred_categories",
        *FASHION_ATTRS,
    ]
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
    # Products with and without a photo both get events (popularity ignores photos).
    with_photo = styles["id"].map(lambda i: (fashion_dir / "images" / f"{i}.jpg").is_file())
    touched = styles["id"].isin(sim.events["product_id"])
    assert (touched & with_photo).any() and (touched & ~with_photo).any()
    paths = write_simulation(sim, tmp_path)
    assert (tmp_path / "late_products.csv").is_file() and paths["truth"].is_file()
