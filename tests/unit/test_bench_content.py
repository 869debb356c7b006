"""The pure helpers of bench/bench_content.py: nearest neighbours, TF-IDF, precision, chance, shifts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from scipy import sparse

import bench_content as BC

pytestmark = pytest.mark.unit


def test_work_overrides_put_every_path_under_the_work_folder_and_skip_interactions() -> None:
    sets = BC.work_overrides(Path("w"))
    assert {s.split("=")[0] for s in sets} == {f"paths.{k}" for k in BC.PATH_KEYS} | {"interactions.path"}
    assert all(s.endswith("=null") or s.split("=")[1].startswith("w") for s in sets)


def test_top_k_orders_by_cosine_and_breaks_ties_on_the_lower_index() -> None:
    catalog = BC.l2_rows(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]]))
    queries = BC.l2_rows(np.array([[1.0, 0.1], [0.0, 2.0]]))
    got = BC.top_k(queries, catalog, 3, batch=1)
    assert got[0].tolist() == [0, 3, 2]
    assert got[1].tolist() == [1, 2, 0]


def test_top_k_sparse_matches_dense_and_k_larger_than_catalog() -> None:
    rng = np.random.default_rng(0)
    dense = BC.l2_rows(rng.random((20, 5)))
    a = BC.top_k(dense[:4], dense[4:], 5)
    b = BC.top_k(sparse.csr_matrix(dense[:4]), sparse.csr_matrix(dense[4:]), 5)
    assert (a == b).all()
    assert BC.top_k(dense[:2], dense[2:5], 10).shape == (2, 3)


def test_l2_rows_leaves_zero_rows_zero() -> None:
    out = BC.l2_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_tfidf_rows_are_unit_length_and_shared_rare_words_weigh_more() -> None:
    m = BC.tfidf_vectors(["Red Shirt", "Blue Shirt", "Red Kurta", None, "blue  shirt"])
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1))).ravel()
    assert np.allclose(norms, [1, 1, 1, 0, 1])
    sims = (m @ m.T).toarray()
    assert sims[1, 4] == pytest.approx(1.0)  # case and spaces normalised by the project's tokenizer
    assert sims[0, 2] > sims[0, 1]  # "red" (2 titles) weighs more than "shirt" (3 titles)


def test_precision_same_skips_queries_without_a_value() -> None:
    neighbours = np.array([["a", "a", "b"], ["x", None, "x"], ["c", "c", "c"]], dtype=object)
    assert BC.precision_same(["a", None, "d"], neighbours) == pytest.approx((2 / 3 + 0) / 2)
    assert BC.precision_same([None, ""], neighbours[:2]) is None


def test_precision_ceiling_caps_each_query_at_the_products_of_its_value() -> None:
    catalog = ["a"] * 12 + ["b"] * 3 + [None]
    # a: 10 of 10 places can match; b: 3 of 10; c: none in the catalog; a query without a value is left out.
    assert BC.precision_ceiling(["a", "b", "c", None], catalog, 10) == pytest.approx((1.0 + 0.3 + 0.0) / 3)
    assert BC.precision_ceiling([None], catalog, 10) is None


def test_informative_weights_favour_a_term_on_one_value() -> None:
    # term 0 on two "x" products, term 1 on an "x" and a "y", term 2 on the unlabelled row only.
    counts = sparse.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float))
    labels = {"kind": np.array(["x", "x", "y", None], dtype=object)}
    w = BC.informative_term_weights(counts, labels, np.ones(4, bool))
    assert w[0] > w[1] and w[1] == pytest.approx(0.0, abs=1e-12)
    assert w[2] in (w[0], w[1])  # seen on no labelled row: the median of the others


def test_same_type_text_only_share_looks_at_the_query_type_only() -> None:
    has_photo = np.array([True, False, False, True, True, False])
    types = np.array(["shirt", "shirt", "shirt", "shoe", "shoe", None], dtype=object)
    # catalog = rows 1..5: shirts 1, 2 (both text-only), shoes 3, 4 (photos), 5 no type
    catalog = np.arange(1, 6)
    assert BC.same_type_text_only_share(has_photo, types, np.array([0, 3]), catalog) == pytest.approx(0.5)
    assert BC.same_type_text_only_share(has_photo, types, np.array([5]), catalog) is None


def test_chance_same_is_the_share_of_pairs_with_one_value() -> None:
    # a,a,a,b: pairs 6, same 3
    assert BC.chance_same(["a", "a", "b", "a", None]) == pytest.approx(3 / 6)
    assert BC.chance_same(["a"]) is None


def test_text_only_share_counts_neighbours_without_photo() -> None:
    has_photo = np.array([True, False, False, True])
    assert BC.text_only_share(has_photo, np.array([[0, 1], [2, 3]])) == pytest.approx(0.5)
    assert BC.text_only_share(has_photo, np.empty((0, 2), dtype=int)) is None


def test_shifts_change_the_geometry_and_decode_through_the_project_path(tmp_path: Path) -> None:
    from hybridrec.features.images import load_image

    path = tmp_path / "p.jpg"
    Image.new("RGB", (224, 224), (200, 10, 10)).save(path)
    with Image.open(path) as img:
        assert BC.stretch(img).size == (225, 300)
        assert BC.pad(img).size == (336, 336)
    sources = BC.shifted_sources(str(path))
    assert set(sources) == set(BC.SHIFTS)
    padded = {s: load_image(src, 32, fit="pad") for s, src in sources.items()}
    assert all(a.shape == (32, 32, 3) for a in padded.values())
    # stretched to 3:4 and decoded by padding, the product no longer fills the width: white bars
    assert (padded["stretched_3x4"][:, 0] > 240).all() and (padded["as_decoded"][:, 0] < 240).any()
    assert (padded["padded"][0] > 240).all()
    # decoded by stretching (features.image_fit's default), the 3:4 photo fills the square again
    stretched = {s: load_image(src, 32, fit="stretch") for s, src in sources.items()}
    assert (stretched["stretched_3x4"].min(axis=-1) < 240).all()
    assert (stretched["padded"][0] > 240).all(), "a white border stays a border whatever the fit"


def test_summary_tables_prints_every_method_and_shift() -> None:
    precision = {a: 0.5 for a in BC.ATTRIBUTES}
    row = {
        "n_queries": 10,
        "precision": {"all": precision, "known_class": precision, "unknown_class": dict.fromkeys(BC.ATTRIBUTES)},
        "text_only_share": {"query_with_photo": 0.1, "query_without_photo": None, "catalog": 0.7},
    }
    result = {
        "inputs": {"k": 10},
        "neighbours": {"n_queries": 10, "chance": precision, "methods": {"fused": row, "tfidf": row}},
        "image_robustness": {"n_photos": 3, "accuracy": dict.fromkeys(BC.SHIFTS, 0.25)},
    }
    text = BC.summary_tables(result)
    assert "| fused | 10 | 0.500" in text and "| tfidf |" in text and "| chance |" in text
    assert "0.500 / -" in text and "| 0.250 | 0.250 | 0.250 | 0.250 |" in text


def test_blend_rows_dot_products_mix_the_two_cosines() -> None:
    dense = BC.l2_rows(np.array([[1.0, 0.0], [0.6, 0.8]]))
    lexical = sparse.csr_matrix(BC.l2_rows(np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 1.0]])))
    rows = BC.blend_rows(dense, lexical, 0.25)
    got = (rows @ rows.T).toarray()
    want = 0.75 * dense @ dense.T + 0.25 * (lexical @ lexical.T).toarray()
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert BC.blend_name(0.25) == "fused+tfidf 0.25"


def test_shared_blend_compares_photo_and_plain_products_on_their_text() -> None:
    """Product 0 has a photo, 1-2 do not: 1's fused vector is far from 0's but its text is 0's, so
    the shared blend ranks 1 first where the fused blend ranks 2 (the night's similar_mixed_pairs)."""
    fused = BC.l2_rows(np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [0.0, 1.0]]))
    text = BC.l2_rows(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    photo = np.array([True, False, False, False])
    lexical = sparse.csr_matrix((4, 3))
    blend = BC.SharedBlend(fused, text, photo, lexical, 0.25)
    got = blend.top_k(np.array([0]), np.array([1, 2, 3]), 2)
    np.testing.assert_array_equal(got, [[0, 1]])  # positions in the catalog: product 1, then 2
    fused_only = BC.top_k(fused[[0]], fused[[1, 2, 3]], 2)
    np.testing.assert_array_equal(fused_only, [[1, 0]])
    # two products on one side: the fused cosine, as the fused blend
    same = BC.SharedBlend(fused, text, np.ones(4, bool), lexical, 0.25).top_k(np.array([0]), np.array([1, 2, 3]), 1)
    np.testing.assert_array_equal(same, [[1]])


def test_doubt_weights_rise_with_the_type_doubt_and_keep_the_weight_without_a_type() -> None:
    got = BC.doubt_weights(0.25, np.array([1.0, 0.0, 0.6, np.nan, 1.2]))
    np.testing.assert_allclose(got, [0.25, 1.0, 0.25 + 0.75 * 0.4, 0.25, 0.25])


def test_shared_blend_takes_each_querys_own_weight() -> None:
    """Query 0 is sure of its type (content decides: product 1), query 3 doubts it (its title
    decides: product 2); one weight per row gives each query the list of its own weight."""
    fused = BC.l2_rows(np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [1.0, 0.0]]))
    lexical = sparse.csr_matrix(BC.l2_rows(np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])))
    photo = np.ones(4, bool)
    catalog = np.array([1, 2])
    per_row = BC.SharedBlend(fused, fused, photo, lexical, np.array([0.25, 0.25, 0.25, 1.0]))
    np.testing.assert_array_equal(per_row.top_k(np.array([0, 3]), catalog, 1), [[0], [1]])
    for query, weight in ((0, 0.25), (3, 1.0)):
        alone = BC.SharedBlend(fused, fused, photo, lexical, weight).top_k(np.array([query]), catalog, 1)
        np.testing.assert_array_equal(alone, per_row.top_k(np.array([query]), catalog, 1))


def _fan(degrees: list[float]) -> np.ndarray:
    return np.array([[np.cos(np.radians(d)), np.sin(np.radians(d))] for d in degrees])


def test_voted_shared_moves_the_type_its_best_candidates_vote_for_up() -> None:
    """Query 0's best three are a shirt and two blazers: the blazers win the vote (0.985 against
    0.940 + 0.866), and with a bonus of 1 every blazer ranks above every shirt. The query's own
    type is never read; an unlabelled product neither votes nor gains."""
    fused = BC.l2_rows(_fan([0, 10, 20, 30, 40, 80]))
    types = np.array(["Shirts", "Shirts", "Blazers", "Blazers", "Shirts", "Blazers"], dtype=object)
    blend = BC.SharedBlend(fused, fused, np.ones(6, bool), sparse.csr_matrix((6, 2)), 0.0)
    catalog = np.arange(1, 6)
    plain = BC.VotedShared(blend, types, depth=5, vote=0, bonus=1.0).top_k(np.array([0]), catalog, 5)
    np.testing.assert_array_equal(catalog[plain[0]], [1, 2, 3, 4, 5])
    voted = BC.VotedShared(blend, types, depth=5, vote=3, bonus=1.0).top_k(np.array([0]), catalog, 5)
    np.testing.assert_array_equal(catalog[voted[0]], [2, 3, 5, 1, 4])
    unlabelled = types.copy()
    unlabelled[[2, 3]] = None  # the blazers cannot vote: the shirts (1, 4) win
    got = BC.VotedShared(blend, unlabelled, depth=5, vote=3, bonus=1.0).top_k(np.array([0]), catalog, 5)
    np.testing.assert_array_equal(catalog[got[0]], [1, 4, 2, 3, 5])


def test_voted_shared_refuses_lists_shorter_than_the_top_k() -> None:
    fused = BC.l2_rows(_fan([0, 10, 20, 30]))
    blend = BC.SharedBlend(fused, fused, np.ones(4, bool), sparse.csr_matrix((4, 2)), 0.0)
    voted = BC.VotedShared(blend, np.array(["a"] * 4, dtype=object), depth=1, vote=1, bonus=0.5)
    with pytest.raises(ValueError, match="depth 1 is too small"):
        voted.top_k(np.array([0]), np.arange(1, 4), 3)


def test_bootstrap_interval_holds_the_mean() -> None:
    values = np.random.default_rng(3).random(200)
    lo, hi = BC.bootstrap_interval(values, seed=1)
    assert lo < values.mean() < hi
    assert BC.bootstrap_interval(np.full(10, 0.3), seed=1) == pytest.approx([0.3, 0.3])
    assert BC.bootstrap_interval(np.array([]), seed=1) is None


def test_pair_scores_are_what_top_k_ranks_by() -> None:
    rng = np.random.default_rng(4)
    fused, text = BC.l2_rows(rng.normal(size=(8, 3))), BC.l2_rows(rng.normal(size=(8, 2)))
    lexical = sparse.csr_matrix(BC.l2_rows(np.abs(rng.normal(size=(8, 5))) * (rng.random((8, 5)) < 0.5)))
    photo = rng.random(8) < 0.5
    blend = BC.SharedBlend(fused, text, photo, lexical, np.linspace(0.1, 0.9, 8))
    catalog = np.arange(1, 8)
    scores = blend.pair_scores(0, catalog)
    top = blend.top_k(np.array([0]), catalog, 7)[0]
    np.testing.assert_array_equal(catalog[top], catalog[np.lexsort((catalog, -scores))])
    mixed = photo[0] != photo[3]
    content = text[0] @ text[3] if mixed else fused[0] @ fused[3]
    assert scores[2] == pytest.approx(0.9 * content + 0.1 * (lexical[0] @ lexical[3].T).toarray()[0, 0])


def _night_frame() -> Any:
    import pandas as pd

    # Six products: 0 and 1 are test-split queries; 0 is a blazer (a type never learned), 1 a shirt.
    return pd.DataFrame(
        {
            "product_id": ["p0", "p1", "p2", "p3", "p4", "p5"],
            "split": ["test", "test", "train", "train", "val", "train"],
            "articleType": ["Blazers", "Shirts", "Blazers", "Shirts", "Shirts", "Blazers"],
            "gender": ["Men"] * 6,
            "baseColour": ["Blue", "Red", "Blue", "Red", "Blue", "Black"],
            "masterCategory": ["Apparel"] * 6,
            "subCategory": ["Topwear"] * 6,
            "usage": ["Casual"] * 6,
            "season": [None] * 6,
            "image_emb": [[1.0], None, [1.0], None, None, [1.0]],
            "fused_emb": [[1.0]] * 6,
        }
    )


def test_night_figures_read_the_nights_lists_by_product_id() -> None:
    import pandas as pd

    df = _night_frame()
    lists = pd.DataFrame(
        {
            "product_id": ["p0", "p0", "p1", "p1", "p2", "p2", "p3"],
            "rank": [1, 2, 1, 2, 1, 2, 1],
            "similar_product_id": ["p2", "p3", "p3", "p4", "p0", "p5", "p1"],
        }
    )
    parts = BC.QueryParts(known=np.array([1, 3, 4]), learned=np.array([1, 3, 4]))
    got = BC.night_figures(df, {"night": (lists, 12.5)}, parts, "test", 2, seed=1)["night"]
    assert got["n_queries"] == 2 and got["seconds"] == 12.5 and got["n_queries_short_list"] == 0
    p = got["precision"]
    assert p["all"]["articleType"] == pytest.approx(0.75)  # p0: Blazers, Shirts; p1: Shirts, Shirts -> (0.5 + 1) / 2
    assert p["never_learned"]["articleType"] == pytest.approx(0.5) and got["n_queries_never_learned"] == 1
    assert p["all"]["baseColour"] == pytest.approx(0.5)  # p0: Blue, Red; p1: Red, Blue
    assert got["text_only_share"]["query_with_photo"] == pytest.approx(0.5)  # p0's list: p2 (photo), p3 (none)
    short = BC.night_figures(df, {"night": (lists[lists["rank"] == 1], 1.0)}, parts, "test", 2, seed=1)["night"]
    assert short["n_queries"] == 0 and short["n_queries_short_list"] == 2


def test_summary_tables_prints_the_nights_lists() -> None:
    precision = {a: 0.5 for a in BC.ATTRIBUTES}
    night = {
        "n_queries": 10,
        "precision": {"all": precision, "never_learned": {"articleType": 0.8}},
        "never_learned_type_interval": [0.7, 0.9],
        "text_only_share": {"query_with_photo": 0.4},
        "seconds": 12.5,
    }
    result = {
        "inputs": {"k": 10},
        "neighbours": {"n_queries": 10, "chance": precision, "methods": {}},
        "night_similar_items": {"exact pairs": night},
        "image_robustness": {"n_photos": 0, "accuracy": dict.fromkeys(BC.SHIFTS)},
    }
    assert "| exact pairs | 10 | 0.500 | 0.800 [0.700, 0.900] | 0.500 | 0.500 | 0.400 | 12.5 |" in BC.summary_tables(
        result
    )
