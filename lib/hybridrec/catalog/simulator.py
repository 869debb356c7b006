"""Simulated user interactions over a catalog (generated or real). THIS IS A SIMULATION.

Why: no public catalog we use comes with user behaviour, yet the recommenders need interactions
whose structure is known, so that offline evaluation numbers can be interpreted. The process below
is what produced every event; ``truth.json`` records its parameters and the users' preferences.

Generating process (all randomness from ``numpy.random.default_rng(demo.seed + 1)``):

1. Items. Each item gets a popularity ``pop_i = rank_i ** -zipf_a`` with ``rank`` a random
   permutation of 1..n_items (Zipf). An item's *category mass* is the sum of its members' pop.
2. Users (``n_users``). Each prefers 1, 2 or 3 categories (probabilities 0.5 / 0.35 / 0.15), drawn
   without replacement with weights ``category_mass ** 0.5``. For every attribute in
   ``preference_attributes`` a user prefers one value, drawn from that attribute's distribution
   *within the user's first preferred category* (so a user who likes sarees prefers gender Women).
3. Activity. ``sparse_user_share`` of users get 1-3 views; the others a log-normal number of views
   (sigma 0.8) whose mean makes the expected total events ``n_users * events_per_user``.
4. Sessions. A user's views are cut into sessions: each view after the first starts a new session
   with probability 1/5 (geometric lengths, mean 5). Within a session views are 5-600 s apart
   (exponential, mean 60 s). Each session starts uniformly within the window of ``days`` days ending
   at ``reference_date`` (fixed, never wall-clock now), leaving room for its views and funnel events.
5. Session anchor. With probability 0.75 a session is about one of the user's preferred categories
   (uniform among them), otherwise about a category drawn by category mass.
6. Item choice per view. Six candidates are drawn by popularity: from the anchor category with
   probability 0.85 (related items), otherwise from the whole catalog. One candidate is chosen with
   weight ``exp(1.0 * number of preferred attribute values it has)``, times 0 when the item is not
   yet listed at the view's time (late products only get events after ``listed_at``). A view whose
   six candidates are all unlisted is dropped.
7. Funnel. A view becomes a cart with probability ``0.05 + 0.05 * in_preferred_category +
   0.03 * attribute_matches / n_attributes``; a cart becomes a purchase with probability 0.35. The
   cart comes 10-1800 s after the view and the purchase 10-1800 s after the cart, so every purchase
   is preceded by a cart and a view of the same item in the same session.

Late (cold) products: the generated catalog carries ``listed_at``; for a real catalog without it
(fashion) ``late_share`` of the products are drawn with the same seed and listed uniformly during
the last ``late_window`` of the window, the rest before the window (``late_products.csv``).

Output (``<raw>/interactions/``): ``interactions.csv`` (user_id,product_id,event,ts; ts ISO-8601
UTC; sorted by ts, user, funnel step), ``users.csv`` (each user's preferences), ``late_products.csv``
(id,listed_at) and ``truth.json``.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from hybridrec.catalog.demo_catalog import iso, listing_times, window
from hybridrec.config import DemoConfig

log = logging.getLogger(__name__)

EVENTS = ("view", "cart", "purchase")
INTERACTION_COLUMNS = ["user_id", "product_id", "event", "ts"]

SESSION_BREAK = 0.2
P_PREFERRED_SESSION = 0.75
P_RELATED = 0.85
N_CANDIDATES = 6
ATTRIBUTE_BETA = 1.0
P_PURCHASE = 0.35
MAX_SESSION_LEAD = 2 * 1800 + 60  # seconds of funnel events after a session's last view


@dataclass
class Simulation:
    """Simulated events (ts as epoch seconds) plus the ground truth that generated them."""

    events: pd.DataFrame  # user_id, product_id, event, ts (int64 epoch seconds)
    users: pd.DataFrame  # user_id, preferred_categories ("a|b"), one column per attribute
    late_products: pd.DataFrame  # id, listed_at (ISO)
    truth: dict[str, Any]


def seeded_late_listing(ids: Sequence[str], demo: DemoConfig) -> np.ndarray:
    """For a catalog without ``listed_at``: listing times (epoch s) with a seeded late subset."""
    rng = np.random.default_rng([demo.seed, 7])
    late = rng.random(len(ids)) < demo.late_share
    return listing_times(len(ids), late, demo, rng)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (-1 = missing) and the sorted distinct values of a string column."""
    filled = values.astype("string").fillna("").str.strip()
    cat = pd.Categorical(filled.where(filled != "", None))
    return np.asarray(cat.codes, dtype=np.int64), np.asarray(cat.categories, dtype=object)


def simulate(
    products: pd.DataFrame,
    demo: DemoConfig,
    attributes: Sequence[str] = (),
    id_col: str = "id",
    category_col: str = "category",
    listed_at_col: str | None = "listed_at",
) -> Simulation:
    """Simulate interactions of ``demo.n_users`` users over ``products`` (see the module docstring).

    ``products`` needs ``id_col`` and ``category_col`` (missing categories form one "unknown"
    group), the ``attributes`` columns, and optionally ``listed_at_col`` (ISO-8601; missing or absent
    = a seeded late subset is drawn here).
    """
    rng = np.random.default_rng([demo.seed, 1])
    start, end = window(demo)
    ids = products[id_col].astype(str).to_numpy()
    n_items = len(ids)
    if n_items == 0:
        raise ValueError("cannot simulate interactions over an empty catalog")
    cat_codes, cat_names = _codes(products[category_col])
    if (cat_codes < 0).any():  # products without a category: one extra group
        cat_names = np.append(cat_names, "")
        cat_codes = np.where(cat_codes < 0, len(cat_names) - 1, cat_codes)
    n_cats = len(cat_names)
    if listed_at_col and listed_at_col in products.columns:
        parsed = pd.to_datetime(products[listed_at_col], utc=True, errors="coerce")
        listed = (parsed.astype("int64") // 10**9).to_numpy()
        listed = np.where(parsed.isna().to_numpy(), np.iinfo(np.int64).min, listed)
    else:
        listed = seeded_late_listing(ids, demo)
    late_mask = listed >= start
    attr_codes, attr_values = [], []
    for name in attributes:
        codes, values = _codes(products[name])
        attr_codes.append(codes)
        attr_values.append(values)

    # 1. Popularity (Zipf over a random ranking) and per-category cumulative sums for sampling.
    rank = rng.permutation(n_items) + 1
    pop = rank.astype(np.float64) ** -demo.zipf_a
    order = np.argsort(cat_codes, kind="stable")
    cum = np.cumsum(pop[order])
    cat_lo_idx = np.searchsorted(cat_codes[order], np.arange(n_cats), side="left")
    cat_hi_idx = np.searchsorted(cat_codes[order], np.arange(n_cats), side="right")
    cum0 = np.concatenate([[0.0], cum])
    cat_lo, cat_hi = cum0[cat_lo_idx], cum0[cat_hi_idx]
    cat_mass = cat_hi - cat_lo

    # 2. Users' preferred categories (Gumbel top-k without replacement) and attribute values.
    n_users = demo.n_users
    n_pref = rng.choice([1, 2, 3], size=n_users, p=[0.5, 0.35, 0.15])
    n_pref = np.minimum(n_pref, n_cats)
    keys = 0.5 * np.log(cat_mass)[None, :] + rng.gumbel(size=(n_users, n_cats))
    k_max = min(3, n_cats)
    pref_cats = np.argsort(-keys, axis=1, kind="stable")[:, :k_max]
    pref_valid = np.arange(k_max)[None, :] < n_pref[:, None]
    pref_attr = np.full((n_users, len(attributes)), -1, dtype=np.int64)
    primary = pref_cats[:, 0]
    for k, codes in enumerate(attr_codes):
        n_vals = len(attr_values[k])
        if n_vals == 0:
            continue
        ok = codes >= 0
        table = np.zeros((n_cats, n_vals))
        np.add.at(table, (cat_codes[ok], codes[ok]), 1.0)
        glob = table.sum(axis=0)
        table = np.where(table.sum(axis=1, keepdims=True) > 0, table, glob[None, :])
        cdf = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
        u = rng.random(n_users)
        pref_attr[:, k] = np.minimum((cdf[primary] < u[:, None]).sum(axis=1), n_vals - 1)

    # 3. Activity: views per user.
    nominal_events_per_view = 1.0 + 0.08 * (1.0 + P_PURCHASE)
    sparse = rng.random(n_users) < demo.sparse_user_share
    sparse_views = rng.integers(1, 4, size=n_users)
    n_active = max(1, int((~sparse).sum()))
    target_views = demo.events_per_user * n_users / nominal_events_per_view
    mean_active = max(1.0, (target_views - sparse_views[sparse].sum()) / n_active)
    sigma = 0.8
    heavy = rng.lognormal(np.log(mean_active) - sigma**2 / 2, sigma, size=n_users)
    n_views = np.where(sparse, sparse_views, np.maximum(1, np.rint(heavy))).astype(np.int64)
    v_user = np.repeat(np.arange(n_users), n_views)
    n_v = len(v_user)

    # 4. Sessions and times.
    first = np.ones(n_v, dtype=bool)
    first[1:] = v_user[1:] != v_user[:-1]
    new_session = first | (rng.random(n_v) < SESSION_BREAK)
    v_session = np.cumsum(new_session) - 1
    n_sessions = int(v_session[-1]) + 1
    gap = np.where(new_session, 0.0, np.clip(rng.exponential(60.0, n_v), 5.0, 600.0))
    csum = np.cumsum(gap)
    session_first = np.flatnonzero(new_session)
    offset = csum - csum[session_first][v_session]
    duration = np.zeros(n_sessions)
    np.maximum.at(duration, v_session, offset)
    room = np.maximum(0.0, (end - start) - duration - MAX_SESSION_LEAD - 1)
    s_start = start + rng.random(n_sessions) * room
    v_ts = np.floor(s_start[v_session] + offset).astype(np.int64)

    # 5. Session anchors.
    s_user = v_user[session_first]
    pick = (rng.random(n_sessions) * n_pref[s_user]).astype(np.int64)
    s_pref = pref_cats[s_user, pick]
    cat_cdf = np.cumsum(cat_mass) / cat_mass.sum()
    s_global = np.minimum(np.searchsorted(cat_cdf, rng.random(n_sessions), side="right"), n_cats - 1)
    s_anchor = np.where(rng.random(n_sessions) < P_PREFERRED_SESSION, s_pref, s_global)

    # 6. Candidates by popularity (anchor category or whole catalog), chosen by attribute matches.
    related = rng.random((n_v, 1)) < P_RELATED
    anchor = s_anchor[v_session][:, None]
    lo = np.where(related, cat_lo[anchor], 0.0)
    hi = np.where(related, cat_hi[anchor], cum[-1])
    u = lo + rng.random((n_v, N_CANDIDATES)) * (hi - lo)
    pos = np.clip(np.searchsorted(cum, u, side="right"), 0, n_items - 1)
    cand = order[pos]
    matches = np.zeros(cand.shape, dtype=np.float64)
    for k, codes in enumerate(attr_codes):
        pref = pref_attr[v_user, k][:, None]
        matches += (codes[cand] == pref) & (pref >= 0)
    weight = np.exp(ATTRIBUTE_BETA * matches) * (listed[cand] <= v_ts[:, None])
    wsum = weight.sum(axis=1)
    keep = wsum > 0
    choice_u = rng.random(n_v) * wsum
    chosen = np.minimum((np.cumsum(weight, axis=1) <= choice_u[:, None]).sum(axis=1), N_CANDIDATES - 1)
    rows = np.arange(n_v)
    v_item = cand[rows, chosen]
    v_match = matches[rows, chosen]
    v_user, v_item, v_ts, v_match = v_user[keep], v_item[keep], v_ts[keep], v_match[keep]
    n_v = len(v_user)

    # 7. Funnel.
    in_pref = ((pref_cats[v_user] == cat_codes[v_item][:, None]) & pref_valid[v_user]).any(axis=1)
    n_attr = max(1, len(attributes))
    p_cart = 0.05 + 0.05 * in_pref + 0.03 * v_match / n_attr
    carted = rng.random(n_v) < p_cart
    bought = carted & (rng.random(n_v) < P_PURCHASE)
    c_ts = v_ts + rng.integers(10, 1801, n_v)
    p_ts = c_ts + rng.integers(10, 1801, n_v)
    users_all = np.concatenate([v_user, v_user[carted], v_user[bought]])
    items_all = np.concatenate([v_item, v_item[carted], v_item[bought]])
    step_all = np.concatenate([np.zeros(n_v, np.int8), np.ones(int(carted.sum()), np.int8),
                               np.full(int(bought.sum()), 2, np.int8)])
    ts_all = np.concatenate([v_ts, c_ts[carted], p_ts[bought]])
    sort = np.lexsort((step_all, items_all, users_all, ts_all))
    user_ids = np.char.add("u", np.char.zfill(np.arange(1, n_users + 1).astype(str), 6))
    events = pd.DataFrame({
        "user_id": user_ids[users_all[sort]],
        "product_id": ids[items_all[sort]],
        "event": np.asarray(EVENTS, dtype=object)[step_all[sort]],
        "ts": ts_all[sort],
    })

    pref_names = [
        "|".join(str(cat_names[c]) for c, ok in zip(row, valid) if ok)
        for row, valid in zip(pref_cats, pref_valid)
    ]
    users = pd.DataFrame({"user_id": user_ids, "preferred_categories": pref_names})
    for k, name in enumerate(attributes):
        vals = np.append(attr_values[k], "").astype(object)
        users[name] = vals[pref_attr[:, k]]
    late_products = pd.DataFrame({"id": ids[late_mask], "listed_at": iso(listed[late_mask])})

    counts = np.bincount(users_all, minlength=n_users)
    pref_share = float(in_pref.mean()) if n_v else 0.0
    uniform_share = float(np.mean(np.bincount(cat_codes, minlength=n_cats)[pref_cats].sum(axis=1, where=pref_valid)) / n_items)
    per_cat = pd.Series([c for row in pref_names for c in row.split("|") if c]).value_counts()
    truth: dict[str, Any] = {
        "simulation": True,
        "note": "simulated interactions; see hybridrec.catalog.simulator for the generating process",
        "seed": demo.seed,
        "reference_date": iso(np.array([end]))[0],
        "window_start": iso(np.array([start]))[0],
        "days": demo.days,
        "zipf_a": demo.zipf_a,
        "n_users": n_users,
        "n_products": n_items,
        "n_events": int(len(events)),
        "events": {e: int((step_all == i).sum()) for i, e in enumerate(EVENTS)},
        "sparse_users": int((counts <= 5).sum()),
        "preference_attributes": list(attributes),
        "late_products": {"count": int(late_mask.sum()), "file": "late_products.csv"},
        "users_file": "users.csv",
        "preferred_categories": {
            "mean_per_user": float(n_pref.mean()),
            "users_per_category": {str(k): int(v) for k, v in per_cat.items()},
            "share_of_views_in_preferred": round(pref_share, 4),
            "share_expected_if_uniform_by_item": round(uniform_share, 4),
        },
    }
    return Simulation(events=events, users=users, late_products=late_products, truth=truth)


def write_simulation(sim: Simulation, out_dir: Path) -> dict[str, Path]:
    """Write interactions.csv (ISO ts), users.csv, late_products.csv and truth.json under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "interactions": out_dir / "interactions.csv",
        "users": out_dir / "users.csv",
        "late_products": out_dir / "late_products.csv",
        "truth": out_dir / "truth.json",
    }
    events = sim.events.assign(ts=iso(sim.events["ts"].to_numpy()))
    events.to_csv(paths["interactions"], index=False, columns=INTERACTION_COLUMNS, lineterminator="\n")
    sim.users.to_csv(paths["users"], index=False, lineterminator="\n")
    sim.late_products.to_csv(paths["late_products"], index=False, lineterminator="\n")
    paths["truth"].write_text(json.dumps(sim.truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return paths
