"""Simulated user interactions over a catalog (generated or real). THIS IS A SIMULATION.

Why: no catalog we use comes with user behaviour, yet the recommenders need interactions whose
structure is known, so that offline evaluation numbers can be interpreted. Nobody's behaviour is
recorded here: the process below produced every event, and ``truth.json`` / ``users.csv`` /
``late_products.csv`` record its parameters, each user's preferences and the cold items.

Generating process. The randomness of ``simulate`` comes from
``numpy.random.default_rng([demo.seed, 1])`` (the seeded late subset of a catalog without
``listed_at`` from ``default_rng([demo.seed, 7])``); times are epoch seconds inside the window of
``days`` days ending at ``reference_date`` (fixed in config, never wall-clock now).

1. Items. Each item gets a popularity ``pop_i = rank_i ** -zipf_a`` with ``rank`` a random
   permutation of 1..n_items (Zipf, independent of category, photo or attributes). An item's
   category's *mass* is the sum of its members' pop. Items without a category form one group.
2. Users (``n_users``). Each prefers 1, 2 or 3 categories (probabilities 0.5 / 0.35 / 0.15), drawn
   without replacement with weights ``category_mass ** 0.5``. For every attribute in
   ``preference_attributes`` a user prefers one value, drawn from that attribute's distribution
   *within the user's first preferred category* (a user who likes sarees prefers gender Women).
3. Activity. ``sparse_user_share`` of users are *new users*: they join at a time uniform in the
   last ``late_window`` of the window (like late products) and make 1-3 views. The others are
   active over the whole window with a log-normal number of views (sigma 0.8) whose mean makes the
   expected total events about ``n_users * events_per_user``.
4. Sessions. A user's views are cut into sessions: each view after the first starts a new session
   with probability 1/5 (geometric lengths, mean 5 views). Within a session views are 5-600 s apart
   (exponential with mean 60 s, clipped). A user's sessions are placed uniformly at random in the
   user's active span (from joining to ``reference_date``) *without overlapping*: each session
   reserves its views plus one hour for its funnel events. (Only a user with more sessions than
   the span can hold, far beyond realistic settings, gets independently placed sessions.)
5. Session anchor. With probability 0.75 a session is about one of the user's preferred categories
   (uniform among them), otherwise about a category drawn by category mass.
6. Item choice per view. Six candidates are drawn by popularity: from the anchor category with
   probability 0.85 (related items), otherwise from the whole catalog. One candidate is chosen with
   weight ``exp(1.0 * number of the user's preferred attribute values it has)``, times 0 when the
   item is not yet listed at the view's time (late products only get events after ``listed_at``).
   A view whose six candidates are all unlisted is dropped. The same item may be viewed again.
7. Funnel. The first view of an item in a session becomes a cart with probability
   ``0.05 + 0.05 * in_preferred_category + 0.03 * attribute_matches / n_attributes``; a cart
   becomes a purchase with probability 0.35. The cart comes 10-1800 s after the view and the
   purchase 10-1800 s after the cart (uniform whole seconds), inside the same session, so every
   purchase is preceded by a cart and a view of the same item in the same session.
8. Rows identical on (user, product, event, ts), the ingest key, can only come from
   independently placed sessions (step 4); they are dropped and counted in ``truth.json``.

Consequences worth knowing when reading evaluation figures (``truth.json`` gives the measured
values of each run): popularity is strong: with ``zipf_a`` 1.1 the top 1 % of items take 45 % of
the events on the generated 2,000-product catalog and 62 % on the 42,147 fashion products (top
10 %: 76 % and 85 %), so a popularity baseline is hard to beat; about 2/3 of views fall in a
user's preferred categories (0.70 generated, 0.66 fashion, against 0.04 on fashion if users
ignored them); an item with ``m`` of the user's preferred attribute values is ``e**m`` times as
likely to be picked from the candidates; views turn into carts at about 7 % and carts into
purchases at about 35 %. Late items and new users exist only in the last ``late_window`` of the
window, so a time split at its start makes them cold in the test period; most late items (those
with a low popularity rank) get no event at all.

Late (cold) products: the generated catalog carries ``listed_at``; for a real catalog without it
(fashion) ``late_share`` of the products are drawn with the seed and listed uniformly during the
last ``late_window`` of the window, the rest up to a year before it (``late_products.csv``).

Output (``<raw>/interactions/``): ``interactions.csv`` (user_id,product_id,event,ts; ts ISO-8601
UTC ``YYYY-MM-DDTHH:MM:SSZ``; sorted by ts, user, product, funnel step), ``users.csv`` (each
user's preferences), ``late_products.csv`` (id,listed_at) and ``truth.json``. The in-memory
``Simulation.events`` also carries the ``session`` number, which the CSV leaves out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridrec.config import DemoConfig
from hybridrec.demo.catalog import iso, listing_times, window

log = logging.getLogger(__name__)

EVENTS = ("view", "cart", "purchase")
INTERACTION_COLUMNS = ["user_id", "product_id", "event", "ts"]

SESSION_BREAK = 0.2
P_PREFERRED_SESSION = 0.75
P_RELATED = 0.85
N_CANDIDATES = 6
ATTRIBUTE_BETA = 1.0
P_CART_BASE = 0.05
P_CART_PREFERRED = 0.05
P_CART_ATTRIBUTES = 0.03
P_PURCHASE = 0.35
FUNNEL_STEP_S = (10, 1800)  # seconds from view to cart and from cart to purchase
SESSION_RESERVE_S = 3600  # room kept after a session's last view for its funnel events
# Views handled at once in the candidate step: bounds memory (6 candidates each) at any scale.
CHUNK_VIEWS = 1 << 18


@dataclass
class Simulation:
    """Simulated events (ts as epoch seconds) plus the ground truth that generated them."""

    events: pd.DataFrame  # user_id, product_id, event, ts (int64 epoch seconds), session (int64)
    users: pd.DataFrame  # user_id, new_user, active_from, n_events, preferred_categories, attributes
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


def _listing(products: pd.DataFrame, ids: np.ndarray, demo: DemoConfig, column: str | None) -> np.ndarray:
    """Listing times (epoch s) from ``column`` (missing = listed long ago), or a seeded late subset."""
    if column and column in products.columns:
        parsed = pd.to_datetime(products[column], utc=True, errors="coerce")
        listed = (parsed.astype("int64") // 10**9).to_numpy()
        return np.where(parsed.isna().to_numpy(), np.iinfo(np.int64).min, listed)
    return seeded_late_listing(ids, demo)


def _place_sessions(
    s_user: np.ndarray,
    length: np.ndarray,
    active_from: np.ndarray,
    end: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Session start times: uniform in each user's span [active_from, end), not overlapping.

    Sessions of a user are contiguous in ``s_user`` (sorted). Sorted uniform points in the user's
    slack (span minus the summed session lengths) plus the lengths of the earlier sessions give
    starts that keep every session inside the span and apart from the others.
    """
    n_users = len(active_from)
    span = end - active_from
    total = np.bincount(s_user, weights=length, minlength=n_users)
    slack = span - total
    before = np.cumsum(length) - length
    first_of_user = np.searchsorted(s_user, np.arange(n_users), side="left")
    before = before - before[np.minimum(first_of_user, len(s_user) - 1)][s_user]
    draw = rng.random(len(s_user))
    sorted_draw = draw[np.lexsort((draw, s_user))]
    packed = active_from[s_user] + sorted_draw * slack[s_user] + before
    loose = active_from[s_user] + draw * np.maximum(0.0, span[s_user] - length)
    return np.where(slack[s_user] >= 0, packed, loose)


def _choose_items(
    rng: np.random.Generator,
    v_ts: np.ndarray,
    v_anchor: np.ndarray,
    v_pref_attr: np.ndarray,
    cum: np.ndarray,
    order: np.ndarray,
    cat_lo: np.ndarray,
    cat_hi: np.ndarray,
    attr_codes: list[np.ndarray],
    listed: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Step 6 for a chunk of views: (chosen item or -1 when no candidate is listed, matches)."""
    n = len(v_ts)
    related = rng.random((n, 1)) < P_RELATED
    lo = np.where(related, cat_lo[v_anchor][:, None], 0.0)
    hi = np.where(related, cat_hi[v_anchor][:, None], cum[-1])
    u = lo + rng.random((n, N_CANDIDATES)) * (hi - lo)
    cand = order[np.clip(np.searchsorted(cum, u, side="right"), 0, len(order) - 1)]
    matches = np.zeros(cand.shape, dtype=np.float64)
    for k, codes in enumerate(attr_codes):
        pref = v_pref_attr[:, k][:, None]
        matches += (codes[cand] == pref) & (pref >= 0)
    weight = np.exp(ATTRIBUTE_BETA * matches) * (listed[cand] <= v_ts[:, None])
    cumw = np.cumsum(weight, axis=1)
    choice_u = rng.random(n) * cumw[:, -1]
    chosen = np.minimum((cumw <= choice_u[:, None]).sum(axis=1), N_CANDIDATES - 1)
    rows = np.arange(n)
    item = np.where(cumw[:, -1] > 0, cand[rows, chosen], -1)
    return item, matches[rows, chosen]


def simulate(
    products: pd.DataFrame,
    demo: DemoConfig,
    attributes: Sequence[str] = (),
    id_col: str = "id",
    category_col: str = "category",
    listed_at_col: str | None = "listed_at",
) -> Simulation:
    """Simulate interactions of ``demo.n_users`` users over ``products`` (see the module docstring).

    ``products`` needs ``id_col`` and ``category_col`` (missing categories form one group), the
    ``attributes`` columns, and optionally ``listed_at_col`` (ISO-8601; absent = a seeded late
    subset is drawn here). Only these columns are read; photos play no part in the process.
    """
    rng = np.random.default_rng([demo.seed, 1])
    start, end = window(demo)
    span = end - start
    ids = products[id_col].astype(str).to_numpy()
    n_items = len(ids)
    if n_items == 0:
        raise ValueError("cannot simulate interactions over an empty catalog")
    cat_codes, cat_names = _codes(products[category_col])
    if (cat_codes < 0).any():
        cat_names = np.append(cat_names, "")
        cat_codes = np.where(cat_codes < 0, len(cat_names) - 1, cat_codes)
    n_cats = len(cat_names)
    listed = _listing(products, ids, demo, listed_at_col)
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
    cum0 = np.concatenate([[0.0], cum])
    cat_lo = cum0[np.searchsorted(cat_codes[order], np.arange(n_cats), side="left")]
    cat_hi = cum0[np.searchsorted(cat_codes[order], np.arange(n_cats), side="right")]
    cat_mass = cat_hi - cat_lo

    # 2. Users' preferred categories (Gumbel top-k without replacement) and attribute values.
    n_users = demo.n_users
    n_pref = np.minimum(rng.choice([1, 2, 3], size=n_users, p=[0.5, 0.35, 0.15]), n_cats)
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
        table = np.where(table.sum(axis=1, keepdims=True) > 0, table, table.sum(axis=0)[None, :])
        cdf = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
        u = rng.random(n_users)
        pref_attr[:, k] = np.minimum((cdf[primary] < u[:, None]).sum(axis=1), n_vals - 1)

    # 3. Activity: new users (join late, 1-3 views) and active users (log-normal views).
    events_per_view = 1.0 + 0.07 * (1.0 + P_PURCHASE)  # measured cart rate per view about 0.07
    new_user = rng.random(n_users) < demo.sparse_user_share
    new_views = rng.integers(1, 4, size=n_users)
    n_active = max(1, int((~new_user).sum()))
    target_views = demo.events_per_user * n_users / events_per_view
    mean_active = max(1.0, (target_views - new_views[new_user].sum()) / n_active)
    sigma = 0.8
    heavy = rng.lognormal(np.log(mean_active) - sigma**2 / 2, sigma, size=n_users)
    n_views = np.where(new_user, new_views, np.maximum(1, np.rint(heavy))).astype(np.int64)
    lw = demo.late_window * span
    joined = rng.uniform(end - lw, end - 0.05 * lw, n_users)
    active_from = np.where(new_user, np.floor(joined), float(start))
    v_user = np.repeat(np.arange(n_users), n_views)
    n_v = len(v_user)

    # 4. Sessions and times.
    first = np.ones(n_v, dtype=bool)
    first[1:] = v_user[1:] != v_user[:-1]
    new_session = first | (rng.random(n_v) < SESSION_BREAK)
    v_session = np.cumsum(new_session) - 1
    session_first = np.flatnonzero(new_session)
    gap = np.where(new_session, 0.0, np.clip(rng.exponential(60.0, n_v), 5.0, 600.0))
    csum = np.cumsum(gap)
    offset = csum - csum[session_first][v_session]
    n_sessions = len(session_first)
    duration = np.zeros(n_sessions)
    np.maximum.at(duration, v_session, offset)
    s_user = v_user[session_first]
    length = np.floor(duration) + 1 + SESSION_RESERVE_S
    s_start = np.floor(_place_sessions(s_user, length, active_from, end, rng))
    v_ts = (s_start[v_session] + np.floor(offset)).astype(np.int64)

    # 5. Session anchors.
    pick = (rng.random(n_sessions) * n_pref[s_user]).astype(np.int64)
    s_pref = pref_cats[s_user, pick]
    cat_cdf = np.cumsum(cat_mass) / cat_mass.sum()
    s_global = np.minimum(np.searchsorted(cat_cdf, rng.random(n_sessions), side="right"), n_cats - 1)
    s_anchor = np.where(rng.random(n_sessions) < P_PREFERRED_SESSION, s_pref, s_global)

    # 6. Item per view, in chunks so that the candidate matrices stay small at any scale.
    v_item = np.empty(n_v, dtype=np.int64)
    v_match = np.empty(n_v, dtype=np.float64)
    for a in range(0, n_v, CHUNK_VIEWS):
        b = min(n_v, a + CHUNK_VIEWS)
        v_item[a:b], v_match[a:b] = _choose_items(
            rng,
            v_ts[a:b],
            s_anchor[v_session[a:b]],
            pref_attr[v_user[a:b]],
            cum,
            order,
            cat_lo,
            cat_hi,
            attr_codes,
            listed,
        )
    keep = v_item >= 0
    v_user, v_item, v_ts, v_match, v_session = (v_user[keep], v_item[keep], v_ts[keep], v_match[keep], v_session[keep])
    n_v = len(v_user)

    # 7. Funnel, from the first view of an item in a session.
    _, first_view = np.unique(v_session * np.int64(n_items) + v_item, return_index=True)
    eligible = np.zeros(n_v, dtype=bool)
    eligible[first_view] = True
    in_pref = ((pref_cats[v_user] == cat_codes[v_item][:, None]) & pref_valid[v_user]).any(axis=1)
    n_attr = max(1, len(attributes))
    p_cart = P_CART_BASE + P_CART_PREFERRED * in_pref + P_CART_ATTRIBUTES * v_match / n_attr
    carted = eligible & (rng.random(n_v) < p_cart)
    bought = carted & (rng.random(n_v) < P_PURCHASE)
    c_ts = v_ts + rng.integers(FUNNEL_STEP_S[0], FUNNEL_STEP_S[1] + 1, n_v)
    p_ts = c_ts + rng.integers(FUNNEL_STEP_S[0], FUNNEL_STEP_S[1] + 1, n_v)
    users_all = np.concatenate([v_user, v_user[carted], v_user[bought]])
    items_all = np.concatenate([v_item, v_item[carted], v_item[bought]])
    sess_all = np.concatenate([v_session, v_session[carted], v_session[bought]])
    step_all = np.concatenate(
        [np.zeros(n_v, np.int8), np.ones(int(carted.sum()), np.int8), np.full(int(bought.sum()), 2, np.int8)]
    )
    ts_all = np.concatenate([v_ts, c_ts[carted], p_ts[bought]])
    sort = np.lexsort((step_all, items_all, users_all, ts_all))
    users_all, items_all, sess_all, step_all, ts_all = (
        users_all[sort],
        items_all[sort],
        sess_all[sort],
        step_all[sort],
        ts_all[sort],
    )

    # 8. The ingest key must be unique: drop exact repeats (only from independently placed sessions).
    dup = np.zeros(len(ts_all), dtype=bool)
    dup[1:] = (
        (ts_all[1:] == ts_all[:-1])
        & (users_all[1:] == users_all[:-1])
        & (items_all[1:] == items_all[:-1])
        & (step_all[1:] == step_all[:-1])
    )
    if dup.any():
        log.info("simulator: dropped %d rows repeating (user, product, event, ts)", int(dup.sum()))
        users_all, items_all, sess_all, step_all, ts_all = (
            users_all[~dup],
            items_all[~dup],
            sess_all[~dup],
            step_all[~dup],
            ts_all[~dup],
        )

    user_ids = np.char.add("u", np.char.zfill(np.arange(1, n_users + 1).astype(str), 6)).astype(object)
    events = pd.DataFrame(
        {
            "user_id": user_ids[users_all],
            "product_id": ids[items_all],
            "event": np.asarray(EVENTS, dtype=object)[step_all],
            "ts": ts_all,
            "session": sess_all.astype(np.int64),
        }
    )
    users = _users_table(
        user_ids, new_user, active_from, users_all, cat_names, pref_cats, pref_valid, attributes, attr_values, pref_attr
    )
    late_products = pd.DataFrame({"id": ids[late_mask], "listed_at": iso(listed[late_mask])})
    truth = _truth(
        demo,
        attributes,
        start,
        end,
        events,
        users,
        step_all,
        items_all,
        n_items,
        late_mask,
        in_pref,
        cat_codes,
        pref_cats,
        pref_valid,
        n_pref,
        int(dup.sum()),
    )
    return Simulation(events=events, users=users, late_products=late_products, truth=truth)


def _users_table(
    user_ids: np.ndarray,
    new_user: np.ndarray,
    active_from: np.ndarray,
    users_all: np.ndarray,
    cat_names: np.ndarray,
    pref_cats: np.ndarray,
    pref_valid: np.ndarray,
    attributes: Sequence[str],
    attr_values: list[np.ndarray],
    pref_attr: np.ndarray,
) -> pd.DataFrame:
    """One row per user: segment, activity start, event count and the preferences that drove them."""
    pref_names = [
        "|".join(str(cat_names[c]) for c, ok in zip(row, valid) if ok) for row, valid in zip(pref_cats, pref_valid)
    ]
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "new_user": new_user,
            "active_from": iso(active_from.astype(np.int64)),
            "n_events": np.bincount(users_all, minlength=len(user_ids)),
            "preferred_categories": pref_names,
        }
    )
    for k, name in enumerate(attributes):
        values = np.append(attr_values[k], "").astype(object)
        users[name] = values[pref_attr[:, k]]
    return users


def _truth(
    demo: DemoConfig,
    attributes: Sequence[str],
    start: int,
    end: int,
    events: pd.DataFrame,
    users: pd.DataFrame,
    step_all: np.ndarray,
    items_all: np.ndarray,
    n_items: int,
    late_mask: np.ndarray,
    in_pref: np.ndarray,
    cat_codes: np.ndarray,
    pref_cats: np.ndarray,
    pref_valid: np.ndarray,
    n_pref: np.ndarray,
    n_dropped: int,
) -> dict[str, Any]:
    """The generating parameters and measured summaries that evaluation figures are read against."""
    n_cats = int(cat_codes.max()) + 1
    per_item = np.sort(np.bincount(items_all, minlength=n_items))[::-1]
    total = max(1, int(per_item.sum()))
    counts = {e: int((step_all == i).sum()) for i, e in enumerate(EVENTS)}
    cat_share = np.bincount(cat_codes, minlength=n_cats) / n_items
    uniform = float(np.mean((cat_share[pref_cats] * pref_valid).sum(axis=1))) if len(pref_cats) else 0.0
    per_cat = pd.Series([c for row in users["preferred_categories"] for c in row.split("|") if c]).value_counts()
    sessions = events["session"].nunique()
    return {
        "simulation": True,
        "note": "simulated interactions; see hybridrec.demo.simulator for the generating process",
        "seed": demo.seed,
        "reference_date": str(iso(np.array([end]))[0]),
        "window_start": str(iso(np.array([start]))[0]),
        "cold_period_start": str(iso(np.array([end - int(demo.late_window * (end - start))]))[0]),
        "days": demo.days,
        "zipf_a": demo.zipf_a,
        "n_users": demo.n_users,
        "n_products": n_items,
        "n_events": int(len(events)),
        "events": counts,
        "funnel": {
            "cart_per_view": round(counts["cart"] / max(1, counts["view"]), 4),
            "purchase_per_cart": round(counts["purchase"] / max(1, counts["cart"]), 4),
        },
        "sessions": {"count": int(sessions), "mean_views": round(counts["view"] / max(1, sessions), 2)},
        "duplicates_dropped": n_dropped,
        "popularity": {
            "items_with_events": int((per_item > 0).sum()),
            "share_of_events_top_1pct_items": round(float(per_item[: max(1, n_items // 100)].sum()) / total, 4),
            "share_of_events_top_10pct_items": round(float(per_item[: max(1, n_items // 10)].sum()) / total, 4),
        },
        "new_users": {
            "count": int(users["new_user"].sum()),
            "joined_after": str(iso(np.array([end - int(demo.late_window * (end - start))]))[0]),
        },
        "users_with_at_most_5_events": int((users["n_events"] <= 5).sum()),
        "preference_attributes": list(attributes),
        "late_products": {
            "count": int(late_mask.sum()),
            "with_events": int(np.isin(np.flatnonzero(late_mask), items_all).sum()),
            "file": "late_products.csv",
        },
        "users_file": "users.csv",
        "preferred_categories": {
            "mean_per_user": round(float(n_pref.mean()), 4),
            "users_per_category": {str(k): int(v) for k, v in per_cat.items()},
            "share_of_views_in_preferred": round(float(in_pref.mean()) if len(in_pref) else 0.0, 4),
            "share_expected_if_uniform_by_item": round(uniform, 4),
        },
    }


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
    events = pd.DataFrame({c: sim.events[c] for c in INTERACTION_COLUMNS[:3]})
    events["ts"] = iso(sim.events["ts"].to_numpy())
    events.to_csv(paths["interactions"], index=False, lineterminator="\n")
    sim.users.to_csv(paths["users"], index=False, lineterminator="\n")
    sim.late_products.to_csv(paths["late_products"], index=False, lineterminator="\n")
    paths["truth"].write_text(json.dumps(sim.truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return paths
