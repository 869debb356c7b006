"""Approximate neighbours (hybrid/ann.py) against the exact self-join on a small seeded catalog:
recall bound, self never returned, the exact path's schema, and which path ``recommend.ann`` picks."""

from __future__ import annotations

import numpy as np
import pytest

from hybridrec.config import ConfigError, RecommendConfig
from hybridrec.hybrid import ann, similar

K = 10
N = 3000


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around 60 cluster centres with noise: neighbours mostly share a cluster, but
    clusters overlap enough that a single probe misses some."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((60, dim))
    x = centres[rng.integers(0, 60, n)] + 1.2 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, k: int) -> list[set[int]]:
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    return [set(np.argsort(-row, kind="stable")[:k].tolist()) for row in s]


@pytest.fixture(scope="module")
def catalog(spark):
    x = clustered(N, 32, seed=7)
    df = spark.createDataFrame([(i, x[i].tolist()) for i in range(N)], "id int, features array<float>")
    return x, df


def _lists(rows) -> dict[int, list[tuple[int, float]]]:
    out: dict[int, list[tuple[int, float]]] = {}
    for r in rows:
        out.setdefault(r["item_idx"], []).append((r["other_idx"], r["sim"]))
    return out


def test_ivf_recall_against_exact_and_self_excluded(catalog) -> None:
    x, df = catalog
    got = _lists(
        ann.ivf_neighbours(df, df, K, N, lists=30, nprobe=12, sample=2000, seed=3, exclude_self=True).collect()
    )
    truth = exact_top(x, K)
    assert len(got) == N
    assert all(len(v) == K for v in got.values())
    assert all(i not in {o for o, _ in v} for i, v in got.items())
    recall = np.mean([len({o for o, _ in got[i]} & truth[i]) / K for i in range(N)])
    assert recall >= 0.95, recall
    # the similarity returned is the true dot product
    i, (o, s) = 11, got[11][0]
    assert s == pytest.approx(float(x[i] @ x[o]), abs=1e-5)


def test_more_probes_never_lose_recall_and_all_lists_is_exact(catalog) -> None:
    x, df = catalog
    truth = exact_top(x, K)

    def recall(nprobe: int) -> float:
        got = _lists(
            ann.ivf_neighbours(df, df, K, N, lists=20, nprobe=nprobe, sample=2000, seed=3, exclude_self=True).collect()
        )
        return float(np.mean([len({o for o, _ in got[i]} & truth[i]) / K for i in range(N)]))

    one, every = recall(1), recall(20)
    assert one < 1.0  # a single probe does miss neighbours on this catalog: the test has teeth
    assert every == pytest.approx(1.0)


def test_deterministic_for_a_seed(catalog) -> None:
    _, df = catalog

    def run():
        rows = ann.ivf_neighbours(df, df, 5, N, lists=30, nprobe=3, sample=1500, seed=11, exclude_self=True).collect()
        return sorted((r["item_idx"], r["other_idx"]) for r in rows)

    assert run() == run()


def test_queries_other_than_the_catalog(spark, catalog) -> None:
    x, df = catalog
    q = clustered(50, 32, seed=99)
    qdf = spark.createDataFrame([(10_000 + i, q[i].tolist()) for i in range(50)], "id int, features array<float>")
    got = _lists(ann.ivf_neighbours(qdf, df, K, N, lists=30, nprobe=30, sample=2000, seed=3).collect())
    for i in range(50):
        want = np.argsort(-(x @ q[i]), kind="stable")[:K]
        assert [o for o, _ in got[10_000 + i]] == want.tolist()


def test_nearest_picks_the_path_and_keeps_the_exact_schema(catalog, monkeypatch) -> None:
    _, df = catalog
    exact = similar.nearest(df, K, N, 4096, 200_000)
    approx = similar.nearest(df, K, N, 4096, 200_000, RecommendConfig(ann="ivf", ann_lists=30, ann_sample=2000))
    assert approx.schema == exact.schema
    assert approx.count() == exact.count() == N * K
    calls: list[int] = []
    monkeypatch.setattr(ann, "ivf_neighbours", lambda *a, **kw: calls.append(a[3]) or exact)
    similar.nearest(df, K, N, 4096, 200_000, RecommendConfig(ann="auto", ann_auto_above=N))
    assert calls == []  # at the threshold: exact
    similar.nearest(df, K, N, 4096, 200_000, RecommendConfig(ann="auto", ann_auto_above=N - 1))
    assert calls == [N]


def test_use_ivf_thresholds_and_config_limits() -> None:
    assert not ann.use_ivf("auto", 200_000, 200_000)
    assert ann.use_ivf("auto", 200_001, 200_000)
    assert ann.use_ivf("ivf", 10, 200_000) and not ann.use_ivf("exact", 10**7, 200_000)
    assert ann.list_count(1_000_000, None, 50_000) == 1000
    assert ann.list_count(100, 500, 50_000) == 100
    with pytest.raises(ConfigError, match="recommend.ann must be one of"):
        RecommendConfig(ann="hnsw")
