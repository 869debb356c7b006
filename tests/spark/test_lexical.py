"""Lexical neighbours (TF-IDF of title + description through an inverted index) against an exact
numpy computation with the bench's weighting, the max-df cap, deterministic ties, a product of an
unseen type finding its own kind, and the three-source blend of similar items."""

from __future__ import annotations

import numpy as np
import pytest
from chispa import assert_df_equality

from bench_content import tfidf_vectors, type_vote
from hybridrec.config import RecommendConfig
from hybridrec.hybrid import lexical, scoring, similar

pytestmark = pytest.mark.spark

# (title, description): duplicates (items 0 and 1, 6 and 7) make exact ties; "men" is in most
# products; items 9 and 10 share "Sarong", a type word nothing else has; item 11 has no tokens.
CATALOG: list[tuple[str | None, str | None]] = [
    ("Nike Men Blue Tshirt", None),
    ("Nike Men Blue Tshirt", None),
    ("Puma Men Black Tshirt", "cotton tee for men"),
    ("Adidas Men Blue Running Shoes", "light running shoes"),
    ("Puma Men Running Shoes", None),
    ("Fabindia Women Blue Kurta", "cotton kurta"),
    ("Fabindia Women Red Kurta", None),
    ("Fabindia Women Red Kurta", None),
    ("Titan Men Black Watch", "steel watch, men&#39;s"),
    ("Blue Sarong", "beach wrap"),
    ("Floral Sarong", None),
    (None, None),
]


def _docs(spark, catalog=CATALOG):
    return spark.createDataFrame(
        [(i, t, d) for i, (t, d) in enumerate(catalog)], "item_idx int, title string, description string"
    )


def _expected(catalog, k: int, max_df: int) -> list[tuple[int, int, float]]:
    """Exact top-k by numpy: the bench's TF-IDF rows, terms in more than ``max_df`` products
    zeroed after normalisation (they are left out of the pairs, not of the norms), ties by index."""
    x = tfidf_vectors([" ".join(t for t in pair if t) or None for pair in catalog]).toarray()
    df = (x > 0).sum(axis=0)
    kept = x * (df <= max_df)[None, :]
    sims = np.round(kept @ kept.T, 9)
    out = []
    for i in range(len(catalog)):
        cands = [(j, sims[i, j]) for j in range(len(catalog)) if j != i and sims[i, j] > 0]
        cands.sort(key=lambda js: (-js[1], js[0]))
        out += [(i, j, s) for j, s in cands[:k]]
    return out


def _got(df) -> list[tuple[int, int, float]]:
    rows = df.orderBy("item_idx", df.sim.desc(), "other_idx").collect()
    return [(r.item_idx, r.other_idx, r.sim) for r in rows]


def _assert_same(got, want) -> None:
    assert [(i, j) for i, j, _ in got] == [(i, j) for i, j, _ in want]
    np.testing.assert_allclose([s for *_, s in got], [s for *_, s in want], rtol=1e-6, atol=1e-7)


def _assert_rows_equal(rows, x: np.ndarray, atol: float) -> None:
    """Postings ``rows`` are the rows of ``x`` up to the order of the columns: same Gram matrix and
    the same largest weights per row."""
    got = np.zeros((x.shape[0], len(rows)))
    terms: dict[str, int] = {}
    for r in rows:
        got[r.item_idx, terms.setdefault(r.term, len(terms))] = r.weight
    got = got[:, : len(terms)]
    np.testing.assert_allclose(got @ got.T, x @ x.T, atol=atol)
    np.testing.assert_allclose(np.sort(got, axis=1)[:, -6:], np.sort(x, axis=1)[:, -6:], atol=atol)


def test_postings_are_the_bench_tfidf_rows(spark) -> None:
    rows = lexical.tfidf_postings(_docs(spark)).collect()
    x = tfidf_vectors([" ".join(t for t in pair if t) or None for pair in CATALOG]).toarray()
    _assert_rows_equal(rows, x, atol=1e-12)
    assert {r.term: r.df for r in rows}["men"] == 6


def test_title_tail_weight_matches_the_bench_and_ends_at_the_title(spark) -> None:
    """recommend.lexical_tail_weight: the title's last words count more; the description's words
    never do (they come after the title's), and the bench's numpy twin computes the same rows."""
    titles_only = [(t, None) for t, _ in CATALOG]
    rows = lexical.tfidf_postings(_docs(spark, titles_only), tail_weight=2.0, tail_tokens=2).collect()
    x = tfidf_vectors([t for t, _ in CATALOG], tail_weight=2.0, tail_tokens=2).toarray()
    _assert_rows_equal(rows, x, atol=1e-12)
    plain = {(r.item_idx, r.term): r.weight for r in lexical.tfidf_postings(_docs(spark)).collect()}
    tail = {
        (r.item_idx, r.term): r.weight
        for r in lexical.tfidf_postings(_docs(spark), tail_weight=3.0, tail_tokens=1).collect()
    }
    # "Adidas Men Blue Running Shoes" + "light running shoes": the title's "shoes" gains on "running"
    assert tail[(3, "shoes")] / tail[(3, "running")] > plain[(3, "shoes")] / plain[(3, "running")]
    # "Fabindia Women Blue Kurta" + "cotton kurta": the title's "kurta" counts 3 and the
    # description's 1 (4 against 2 plain); the description's "cotton" stays 1 against "blue" 1
    assert tail[(5, "cotton")] / tail[(5, "blue")] == pytest.approx(plain[(5, "cotton")] / plain[(5, "blue")])
    assert tail[(5, "kurta")] / tail[(5, "blue")] == pytest.approx(2 * plain[(5, "kurta")] / plain[(5, "blue")])
    # df counts products, not weighted occurrences
    assert {r.term: r.df for r in lexical.tfidf_postings(_docs(spark), tail_weight=3.0, tail_tokens=1).collect()}[
        "men"
    ] == 6


def test_word_pairs_are_terms_when_asked(spark) -> None:
    rows = lexical.tfidf_postings(_docs(spark), ngrams=2).collect()
    terms = {(r.item_idx, r.term): r for r in rows}
    # title then description: "Puma Men Black Tshirt" + "cotton tee for men"
    assert {t for i, t in terms if i == 2} >= {"puma men", "black tshirt", "cotton tee"}
    assert terms[(0, "nike men")].df == 2 and terms[(9, "blue sarong")].df == 1
    assert (10, "floral sarong") in terms and 11 not in {i for i, _ in terms}  # no tokens, no pairs
    for item in {i for i, _ in terms}:
        weights = np.asarray([r.weight for (i, _), r in terms.items() if i == item])
        assert np.sum(weights**2) == pytest.approx(1.0)
    assert {r.term for r in lexical.tfidf_postings(_docs(spark)).collect()} == {t for _, t in terms if " " not in t}
    with pytest.raises(lexical.LexicalInputError, match="ngrams"):
        lexical.tfidf_postings(_docs(spark), ngrams=3)


@pytest.mark.parametrize("max_df", [100, 4, 2])
def test_neighbours_equal_exact_numpy_with_cap_and_ties(spark, max_df: int) -> None:
    got = _got(lexical.lexical_neighbours(_docs(spark), k=3, max_df=max_df))
    _assert_same(got, _expected(CATALOG, k=3, max_df=max_df))
    pairs = {(i, j) for i, j, _ in got}
    assert 11 not in {i for i, _ in pairs}  # no tokens, no list
    if max_df < 6:
        # "men" (6 products) is out of the join: a watch and a tshirt share nothing else.
        assert (8, 0) not in pairs and (0, 8) not in pairs
    else:
        assert (8, 2) in pairs


def test_ties_break_by_other_idx(spark) -> None:
    got = _got(lexical.lexical_neighbours(_docs(spark), k=2, max_df=100))
    # Items 6 and 7 are the same text (equal cosines to 5, summed in any order): 6 first.
    assert [j for i, j, _ in got if i == 5] == [6, 7]
    sims = {(i, j): s for i, j, s in got}
    assert sims[(5, 6)] == sims[(5, 7)]


def test_a_product_of_an_unseen_type_finds_its_own_kind(spark) -> None:
    got = _got(lexical.lexical_neighbours(_docs(spark), k=3, max_df=4))
    assert [j for i, j, _ in got if i == 10] == [9]
    assert [j for i, j, _ in got if i == 9][0] == 10


def test_unseen_type_wins_through_the_blend_where_content_vectors_collapse(spark) -> None:
    # For a type the classifier never learned the fused vectors barely tell products apart: the
    # sarong (9) sits as close to tshirts as to the other sarong. Its lexical list holds the sarong.
    rc = RecommendConfig(similar_top_m=2, similar_lexical_weight=0.5, similar_collab_weight=0.5)
    content = spark.createDataFrame(
        [(9, 0, 0.9), (9, 2, 0.89), (9, 10, 0.88)], "item_idx int, other_idx int, sim float"
    )
    lex = lexical.lexical_neighbours(_docs(spark), k=3, max_df=100)
    evidence = spark.createDataFrame([], "item_idx int, b double")
    without = similar.similar_items(content, None, evidence, rc).filter("item_idx = 9").orderBy("rank")
    assert without.first().other_idx == 0
    out = similar.similar_items(content, None, evidence, rc, lex).filter("item_idx = 9").orderBy("rank").collect()
    assert out[0].other_idx == 10 and out[0].source == "content"


def _lists(spark):
    content = spark.createDataFrame(
        [(0, 1, 0.9), (0, 2, 0.8), (3, 1, 0.7), (3, 2, 0.6)], "item_idx int, other_idx int, sim float"
    )
    collab = spark.createDataFrame([(0, 2, 0.99), (0, 4, 0.5)], "item_idx int, other_idx int, sim float")
    lex = spark.createDataFrame(
        [(0, 2, 0.6), (0, 3, 0.4), (5, 6, 0.3), (3, 7, 0.9)], "item_idx int, other_idx int, sim float"
    )
    evidence = spark.createDataFrame([(0, 1.0), (2, 1.0), (4, 1.0)], "item_idx int, b double")
    return content, collab, lex, evidence


def test_zero_lexical_weight_leaves_similar_items_unchanged(spark) -> None:
    content, collab, lex, evidence = _lists(spark)
    before = similar.similar_items(content, collab, evidence, RecommendConfig(similar_top_m=3))
    off = RecommendConfig(similar_top_m=3, similar_lexical_weight=0.0)
    after = similar.similar_items(content, collab, evidence, off, lex)
    assert_df_equality(after, before, ignore_row_order=True)


def test_three_source_blend_arithmetic(spark) -> None:
    content, collab, lex, evidence = _lists(spark)
    rc = RecommendConfig(similar_top_m=10, similar_lexical_weight=0.5, similar_collab_weight=0.5)
    out = {
        (r.item_idx, r.other_idx): (r.score, r.source)
        for r in similar.similar_items(content, collab, evidence, rc, lex).collect()
    }
    # Item 0: missing content -> 0.8 (its lowest), missing lexical -> 0.4; beta = 0.5 only
    # between warm products (0, 2, 4).
    assert out[(0, 1)] == (pytest.approx(0.5 * 0.9 + 0.5 * 0.4), "content")
    assert out[(0, 2)] == (pytest.approx(0.5 * (0.5 * 0.8 + 0.5 * 0.6) + 0.5 * 0.99), "both")
    assert out[(0, 3)] == (pytest.approx(0.5 * 0.8 + 0.5 * 0.4), "lexical")
    assert out[(0, 4)] == (pytest.approx(0.5 * (0.5 * 0.8 + 0.5 * 0.4) + 0.5 * 0.5), "co_interaction")
    # Item 3 (cold): content side only; a lexical-only neighbour takes its lowest content value.
    assert out[(3, 7)] == (pytest.approx(0.5 * 0.6 + 0.5 * 0.9), "lexical")
    assert out[(3, 1)] == (pytest.approx(0.5 * 0.7 + 0.5 * 0.9), "content")
    # Item 5 has no content list: its content value is 0, only the lexical share remains.
    assert out[(5, 6)] == (pytest.approx(0.5 * 0.3), "lexical")
    assert len(out) == 8


def test_type_doubt_raises_a_products_own_lexical_share(spark) -> None:
    # Item 0 doubts its type (doubt 1: its list is its lexical list), item 3 is sure (doubt 0: the
    # blend at lam), item 5 has no doubt row (lam). Same lists as the arithmetic test.
    content, collab, lex, evidence = _lists(spark)
    rc = RecommendConfig(similar_top_m=10, similar_lexical_weight=0.5, similar_collab_weight=0.5)
    doubt = spark.createDataFrame([(0, 1.0), (3, 0.0)], "item_idx int, doubt double")
    out = {
        (r.item_idx, r.other_idx): r.score
        for r in similar.similar_items(content, collab, evidence, rc, lex, doubt).collect()
    }
    assert out[(0, 1)] == pytest.approx(0.4)  # the lexical value alone (its lowest, 0.4)
    assert out[(0, 3)] == pytest.approx(0.4)
    assert out[(0, 2)] == pytest.approx(0.5 * 0.6 + 0.5 * 0.99)  # collab share unchanged
    assert out[(3, 7)] == pytest.approx(0.5 * 0.6 + 0.5 * 0.9)
    assert out[(5, 6)] == pytest.approx(0.5 * 0.3)
    none = similar.similar_items(content, collab, evidence, rc, lex, doubt.limit(0))
    assert_df_equality(none, similar.similar_items(content, collab, evidence, rc, lex), ignore_row_order=True)


def _vote_lists(spark):
    # Item 0: a shirt first, then two blazers (blazers out-vote the shirt, 0.88 + 0.86 > 0.9), a
    # far shirt, a far blazer and an unlabelled product. Item 7: only unlabelled candidates.
    content = spark.createDataFrame(
        [(0, 1, 0.9), (0, 2, 0.88), (0, 3, 0.86), (0, 4, 0.5), (0, 5, 0.45), (0, 6, 0.3), (7, 6, 0.8), (7, 8, 0.7)],
        "item_idx int, other_idx int, sim float",
    )
    categories = spark.createDataFrame(
        [
            (0, "Shirts"),
            (1, "Shirts"),
            (2, "Blazers"),
            (3, "Blazers"),
            (4, "Shirts"),
            (5, "Blazers"),
            (6, None),
            (8, " "),
        ],
        "item_idx int, category string",
    )
    return content, spark.createDataFrame([], "item_idx int, b double"), categories


def test_the_type_its_best_neighbours_vote_for_moves_up_the_list(spark) -> None:
    content, evidence, categories = _vote_lists(spark)
    rc = RecommendConfig(similar_top_m=10, similar_type_vote=3, similar_type_bonus=0.5)
    rows = similar.similar_items(content, None, evidence, rc, categories=categories).collect()
    got = {(r.item_idx, r.other_idx): (r.rank, r.score) for r in rows}
    # Item 0's own category (Shirts) is never read: its best three vote Blazers.
    order = [j for _, j in sorted((rank, j) for (i, j), (rank, _) in got.items() if i == 0)]
    assert order == [2, 3, 5, 1, 4, 6]
    assert got[(0, 5)][1] == pytest.approx(0.45 + 0.5, abs=1e-6)
    assert got[(0, 1)][1] == pytest.approx(0.9, abs=1e-6)
    # No labelled voter (a null and a blank category): the list keeps its scores.
    assert {j: s for (i, j), (_, s) in got.items() if i == 7} == {6: pytest.approx(0.8), 8: pytest.approx(0.7)}


def test_no_vote_leaves_similar_items_unchanged(spark) -> None:
    content, evidence, categories = _vote_lists(spark)
    before = similar.similar_items(content, None, evidence, RecommendConfig(similar_top_m=10))
    no_bonus = RecommendConfig(similar_top_m=10, similar_type_vote=3, similar_type_bonus=0.0)
    for off in (RecommendConfig(similar_top_m=10), no_bonus):
        after = similar.similar_items(content, None, evidence, off, categories=categories)
        assert_df_equality(after, before, ignore_row_order=True)


def test_type_vote_matches_the_bench_twin_on_random_lists(spark) -> None:
    # Scores on a coarse grid make tied votes and tied scores; types drawn from three names, none and blank.
    rng = np.random.default_rng(5)
    rows, names = [], np.array(["Bags", "Belts", "Caps", None, " "], dtype=object)
    types = names[rng.integers(0, 5, size=30)]
    for item in range(12):
        others = rng.choice(np.delete(np.arange(30), item), size=8, replace=False)
        rows += [(item, int(o), float(rng.integers(1, 6)) / 5) for o in others]
    scored = spark.createDataFrame(rows, "item_idx int, other_idx int, score double")
    categories = spark.createDataFrame(
        [(i, None if t is None else str(t)) for i, t in enumerate(types)], "item_idx int, category string"
    )
    for k, bonus in ((1, 0.5), (3, 0.5), (5, 0.1)):
        got = {(r.item_idx, r.other_idx): r.score for r in similar.type_vote(scored, categories, k, bonus).collect()}
        for item in range(12):
            pool = np.array([o for i, o, _ in rows if i == item])
            scores = np.array([s for i, _, s in rows if i == item])
            want = type_vote(pool, scores, types, k, bonus)
            assert [got[(item, int(o))] for o in pool] == pytest.approx(list(want), abs=1e-12)


def test_type_doubt_is_one_minus_the_type_probability_clipped(spark) -> None:
    vectors = spark.createDataFrame(
        [("a", 0.9), ("b", None), ("c", 1.5), ("d", 0.2)], "product_id string, type_prob double"
    )
    index = spark.createDataFrame([("a", 0), ("b", 1), ("c", 2)], "product_id string, item_idx int")
    got = {r.item_idx: r.doubt for r in scoring.type_doubt(vectors, index).collect()}
    assert got == {0: pytest.approx(0.1), 2: 0.0}


def test_bad_arguments_are_refused(spark) -> None:
    with pytest.raises(lexical.LexicalInputError, match="max_df"):
        lexical.lexical_neighbours(_docs(spark), k=3, max_df=1)


# Labels of CATALOG for the informative weights: item 10 has no gender, item 11 nothing.
CATEGORIES = ["Tshirts"] * 3 + ["Shoes"] * 2 + ["Kurtas"] * 3 + ["Watches", "Sarongs", "Sarongs", None]
GENDERS = ["Men"] * 5 + ["Women"] * 3 + ["Men", "Women", None, None]


def _labelled(spark):
    rows = [(i, c, {"gender": g} if g else {}) for i, (c, g) in enumerate(zip(CATEGORIES, GENDERS, strict=True))]
    return spark.createDataFrame(rows, "item_idx int, category string, attributes map<string,string>")


def _weights(spark, attributes):
    labels = lexical.product_labels(_labelled(spark), attributes)
    return lexical.informative_term_weights(_docs(spark), labels)


def test_informative_postings_equal_the_bench_twin(spark) -> None:
    weights = _weights(spark, ["category", "gender"])
    rows = lexical.tfidf_postings(_docs(spark), weights).collect()
    titles = [" ".join(t for t in pair if t) or None for pair in CATALOG]
    labels = {"category": np.array(CATEGORIES, dtype=object), "gender": np.array(GENDERS, dtype=object)}
    _assert_rows_equal(rows, tfidf_vectors(titles, labels).toarray(), atol=1e-9)


def test_a_type_word_outweighs_a_brand_that_spans_types(spark) -> None:
    w = {r.term: r.term_weight for r in _weights(spark, ["category"]).collect()}
    # "kurta" is on three Kurtas only; "puma" on a tshirt and a shoe; "blue" on four kinds.
    assert w["kurta"] > w["puma"] > w["blue"]
    assert all(0.0 <= v < 1.0 for v in w.values())
    # "tee" / "cotton" hold labelled products too; every term of the catalog has a weight.
    assert {"tee", "cotton", "sarong", "beach", "wrap"} <= set(w)


def test_informative_weights_pick_the_same_kind_over_the_same_brand_and_colour(spark) -> None:
    # By idf alone "Acme Blue Boxers" is closest to "Acme Blue Shirt" (two shared words); "acme"
    # and "blue" sit on several kinds, "boxers" on boxers only, so weighted it finds the other boxers.
    shop = [
        ("Acme Blue Boxers", "Boxers"),
        ("Zed Red Boxers", "Boxers"),
        ("Acme Blue Shirt", "Shirts"),
        ("Kay Green Shirt", "Shirts"),
        ("Kay Red Shoes", "Shoes"),
        ("Zed Green Shoes", "Shoes"),
        ("Acme Black Shoes", "Shoes"),
    ]
    docs = _docs(spark, [(title, None) for title, _ in shop])
    products = spark.createDataFrame(
        [(i, c, {}) for i, (_, c) in enumerate(shop)], "item_idx int, category string, attributes map<string,string>"
    )
    weights = lexical.informative_term_weights(docs, lexical.product_labels(products, ["category"]))
    plain = _got(lexical.lexical_neighbours(docs, k=1, max_df=100))
    weighted = _got(lexical.lexical_neighbours(docs, k=1, max_df=100, term_weights=weights))
    assert [j for i, j, _ in plain if i == 0] == [2]
    assert [j for i, j, _ in weighted if i == 0] == [1]


def test_without_two_label_values_postings_keep_plain_idf(spark) -> None:
    one_value = spark.createDataFrame(
        [(i, "Things", {}) for i in range(len(CATALOG))], "item_idx int, category string, attributes map<string,string>"
    )
    weights = lexical.informative_term_weights(_docs(spark), lexical.product_labels(one_value, ["category"]))
    assert {r.term_weight for r in weights.collect()} == {None}
    assert_df_equality(
        lexical.tfidf_postings(_docs(spark), weights),
        lexical.tfidf_postings(_docs(spark)),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_a_product_whose_every_term_weighs_zero_gets_no_postings(spark) -> None:
    # "alpha" is on one man's and one woman's product: spread evenly over gender, weight 0. Item 2
    # has no other word, so its row has no length: left out, never a division by zero.
    docs = _docs(spark, [("Alpha Foo", None), ("Alpha Bar", None), ("Alpha", None)])
    products = spark.createDataFrame(
        [(0, None, {"gender": "Men"}), (1, None, {"gender": "Women"}), (2, None, {})],
        "item_idx int, category string, attributes map<string,string>",
    )
    weights = lexical.informative_term_weights(docs, lexical.product_labels(products, ["gender"]))
    assert {r.term: r.term_weight for r in weights.collect()}["alpha"] == pytest.approx(0.0, abs=1e-12)
    postings = lexical.tfidf_postings(docs, weights).collect()
    assert {r.item_idx for r in postings} == {0, 1}
    assert all(np.isfinite(r.weight) for r in postings)
