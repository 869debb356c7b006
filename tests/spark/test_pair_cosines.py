"""Exact cosines of given pairs (``pair_cosines``) against numpy on seeded random products: the
fused dot product on one side, the text cosine across photo and plain products, the lexical
postings' shared terms; a listed pair keeps its list's value; similar items score a pair missing
from a list with its exact cosine there instead of that list's lowest value."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec.config import RecommendConfig
from hybridrec.hybrid import lexical, similar
from hybridrec.hybrid.pair_cosines import BROADCAST_VECTOR_FLOATS, PairInputs, content_cosines, lexical_cosines

# "men" is in 5 of the titles (out of the postings with max_df 4); 7 has no tokens.
TITLES = [
    "Nike Men Blue Tshirt",
    "Puma Men Black Tshirt",
    "Puma Men Running Shoes",
    "Fabindia Women Blue Kurta",
    "Fabindia Women Red Kurta",
    "Titan Men Black Watch",
    "Men Red Sarong",
    None,
]

pytestmark = pytest.mark.spark


def _docs(spark):
    return spark.createDataFrame(
        [(i, t, None) for i, t in enumerate(TITLES)], "item_idx int, title string, description string"
    )


def _random_products(n: int = 14, seed: int = 3):
    rng = np.random.default_rng(seed)
    fused = rng.normal(size=(n, 6))
    fused /= np.linalg.norm(fused, axis=1, keepdims=True)
    text = rng.normal(size=(n, 4)) * rng.uniform(0.5, 3, size=(n, 1))  # not unit: the cosine normalises
    photo = rng.random(n) < 0.5
    no_text = {1, 8}
    return fused.astype(np.float32), text.astype(np.float32), photo, no_text


def _vectors(spark, fused, text, photo, no_text):
    rows = [
        (i, fused[i].tolist(), None if i in no_text else text[i].tolist(), bool(photo[i])) for i in range(len(fused))
    ]
    return spark.createDataFrame(rows, "id int, features array<float>, text array<float>, photo boolean")


def _all_pairs(spark, n: int):
    return spark.createDataFrame([(i, j) for i in range(n) for j in range(n) if i != j], "item_idx int, other_idx int")


# 0: every pair joined with the vectors; the default: the vectors broadcast.
PATHS = pytest.mark.parametrize("broadcast_floats", [0, BROADCAST_VECTOR_FLOATS], ids=["joined", "broadcast"])


@PATHS
def test_content_cosine_is_the_fused_one_on_a_side_and_the_text_one_across(spark, broadcast_floats: int) -> None:
    fused, text, photo, no_text = _random_products()
    n = len(fused)
    vectors = _vectors(spark, fused, text, photo, no_text)
    pairs = _all_pairs(spark, n).union(spark.createDataFrame([(0, 99), (99, 0)], "item_idx int, other_idx int"))
    got = {(r.item_idx, r.other_idx): r.c_exact for r in content_cosines(pairs, vectors, broadcast_floats).collect()}
    unit = text / np.linalg.norm(text, axis=1, keepdims=True)
    want = {}
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            if photo[i] == photo[j]:
                want[(i, j)] = float(fused[i] @ fused[j])
            elif i not in no_text and j not in no_text:
                want[(i, j)] = float(unit[i] @ unit[j])
    assert set(got) == set(want)  # across the sides without a title, or a product without vectors: no value
    assert [got[p] for p in sorted(want)] == pytest.approx([want[p] for p in sorted(want)], abs=1e-6)
    plain = content_cosines(_all_pairs(spark, n), vectors.select("id", "features"), broadcast_floats)
    assert {(r.item_idx, r.other_idx): r.c_exact for r in plain.collect()} == pytest.approx(
        {(i, j): float(fused[i] @ fused[j]) for i in range(n) for j in range(n) if i != j}, abs=1e-6
    )


@PATHS
def test_a_listed_pair_keeps_its_content_lists_value(spark, broadcast_floats: int) -> None:
    fused, text, photo, no_text = _random_products()
    vectors = _vectors(spark, fused, text, photo, no_text)
    listed = similar.nearest_on_shared(vectors, 4, len(fused), 8, 8)
    got = {(r.item_idx, r.other_idx): r.c_exact for r in content_cosines(listed, vectors, broadcast_floats).collect()}
    rows = listed.collect()
    assert len(rows) > 20
    for r in rows:
        assert got[(r.item_idx, r.other_idx)] == pytest.approx(r.sim, abs=1e-6)


def test_lexical_cosine_sums_the_shared_kept_terms(spark) -> None:
    docs = _docs(spark)
    n = len(TITLES)
    postings = lexical.lexical_postings(docs, max_df=4)
    rows = postings.collect()
    terms = sorted({r.term for r in rows})
    x = np.zeros((n, len(terms)))
    for r in rows:
        x[r.item_idx, terms.index(r.term)] = r.weight
    sims = x @ x.T
    got = {(r.item_idx, r.other_idx): r.l_exact for r in lexical_cosines(_all_pairs(spark, n), postings).collect()}
    want = {(i, j): sims[i, j] for i in range(n) for j in range(n) if i != j and (x[i] * x[j] > 0).any()}
    assert set(got) == set(want)  # no shared kept term: no row ("men" is capped out)
    assert [got[p] for p in sorted(want)] == pytest.approx([want[p] for p in sorted(want)], abs=1e-6)
    listed = lexical.neighbours_from_postings(postings, 3).collect()
    assert listed
    for r in listed:  # a listed pair's value is its list's
        assert got[(r.item_idx, r.other_idx)] == pytest.approx(r.sim, abs=1e-7)


def test_lexical_neighbours_are_the_neighbours_of_their_postings(spark) -> None:
    docs = _docs(spark)
    whole = lexical.lexical_neighbours(docs, 3, 4).orderBy("item_idx", "other_idx").collect()
    parts = lexical.neighbours_from_postings(lexical.lexical_postings(docs, 4), 3).orderBy("item_idx", "other_idx")
    assert parts.collect() == whole
    with pytest.raises(lexical.LexicalInputError, match="max_df"):
        lexical.lexical_postings(docs, 1)
    with pytest.raises(lexical.LexicalInputError, match="k must"):
        lexical.neighbours_from_postings(lexical.lexical_postings(docs, 4), 0)


def test_similar_items_score_a_missing_pair_with_its_exact_cosine(spark) -> None:
    # Item 0's content list holds 1 and 2, its lexical list 2 and 3, its co-interaction list 4.
    # 3 is far from 0 by content (exact cosine 0.1, where the content list's lowest is 0.8); 1
    # shares the term "red" with 0 (exact lexical cosine 0.3, where the lexical list's lowest is
    # 0.4); 4 shares no term with 0.
    content = spark.createDataFrame([(0, 1, 0.9), (0, 2, 0.8)], "item_idx int, other_idx int, sim float")
    lex = spark.createDataFrame([(0, 2, 0.6), (0, 3, 0.4)], "item_idx int, other_idx int, sim float")
    collab = spark.createDataFrame([(0, 4, 0.5)], "item_idx int, other_idx int, sim float")
    evidence = spark.createDataFrame([(0, 1.0), (4, 1.0)], "item_idx int, b double")
    a, b, r = float(np.sqrt(0.1)), float(np.sqrt(0.99)), float(np.sqrt(0.9))
    fused = {
        0: [1.0, 0.0, 0.0],
        1: [0.9, np.sqrt(0.19), 0.0],
        2: [0.8, 0.6, 0.0],
        3: [0.1, 0.0, b],
        4: [0.2, 0.0, np.sqrt(0.96)],
    }
    vectors = spark.createDataFrame(
        [(i, [float(v) for v in f]) for i, f in fused.items()], "id int, features array<float>"
    )
    postings = spark.createDataFrame(
        [(0, "kurta", a), (0, "red", r), (1, "red", 0.3 / r), (2, "kurta", 0.6 / a)],
        "item_idx int, term string, weight double",
    )
    rc = RecommendConfig(similar_top_m=10, similar_lexical_weight=0.5, similar_collab_weight=0.5)
    out = {
        (r.item_idx, r.other_idx): (r.score, r.source)
        for r in similar.similar_items(
            content, collab, evidence, rc, lex, exact=PairInputs(vectors, postings)
        ).collect()
    }
    assert out[(0, 1)] == (pytest.approx(0.5 * 0.9 + 0.5 * 0.3, abs=1e-6), "content")  # fill was 0.4
    assert out[(0, 2)] == (pytest.approx(0.5 * 0.8 + 0.5 * 0.6, abs=1e-6), "content")
    assert out[(0, 3)] == (pytest.approx(0.5 * 0.1 + 0.5 * 0.4, abs=1e-6), "lexical")  # fill was 0.8
    # 4: warm, co-interaction only (beta 0.5); its content cosine 0.2, no shared term: lexical 0.
    assert out[(0, 4)] == (pytest.approx(0.5 * (0.5 * 0.2) + 0.5 * 0.5, abs=1e-6), "co_interaction")
    filled = {
        (r.item_idx, r.other_idx): r.score for r in similar.similar_items(content, collab, evidence, rc, lex).collect()
    }
    assert filled[(0, 3)] == pytest.approx(0.5 * 0.8 + 0.5 * 0.4, abs=1e-6)  # the list's lowest
    # Without the lexical list the postings take no part.
    no_lex = RecommendConfig(similar_top_m=10, similar_lexical_weight=0.0, similar_collab_weight=0.5)
    got = {
        (r.item_idx, r.other_idx): r.score
        for r in similar.similar_items(
            content, collab, evidence, no_lex, lex, exact=PairInputs(vectors, postings)
        ).collect()
    }
    assert got == pytest.approx({(0, 1): 0.9, (0, 2): 0.8, (0, 4): 0.5 * 0.2 + 0.5 * 0.5}, abs=1e-6)
