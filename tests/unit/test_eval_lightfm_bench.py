"""bench/lightfm_fit.py on a small synthetic split, run in .venv-bench (skipped when that environment
has not been built: ``bash bench/lightfm_env.sh``).

The split: 5 categories of 30 products (the last 5 of each never interacted with: cold), 150 users
who each interact with 8 products of one favourite category. LightFM with identity + category
features must put mostly the favourite category in each top 10, lists must be complete and
reproducible with one thread, and a user unknown to training still gets a list.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH_PY = REPO / ".venv-bench" / "bin" / "python"
SCRIPT = REPO / "bench" / "lightfm_fit.py"

pytestmark = pytest.mark.skipif(not BENCH_PY.exists(), reason=".venv-bench not built (bash bench/lightfm_env.sh)")


def make_split(folder: Path) -> dict[str, int]:
    rng = np.random.default_rng(0)
    cats = [f"c{c}" for c in range(5)]
    items = pd.DataFrame({"product_id": [f"p{c}_{i}" for c in range(5) for i in range(30)],
                          "category": [cats[c] for c in range(5) for _ in range(30)]})
    items["vec"] = [list(rng.normal(size=8) + 3 * np.eye(8)[int(c[1])]) for c in items["category"]]
    favourite, rows = {}, []
    for u in range(150):
        fav = u % 5
        favourite[f"u{u}"] = fav
        for i in rng.choice(25, size=8, replace=False):
            rows.append((f"u{u}", f"p{fav}_{i}", float(rng.integers(1, 4))))
    rows.append(("u0", "p0_0", -1.0))  # dropped: weight not positive
    rows.append(("u1", "not_in_catalog", 1.0))  # dropped: unknown product
    pd.DataFrame(rows, columns=["user_id", "product_id", "weight"]).to_parquet(folder / "train.parquet")
    items.to_parquet(folder / "item_features.parquet")
    pd.DataFrame({"user_id": [*favourite, "stranger"]}).to_parquet(folder / "users.parquet")
    return favourite


def fit(folder: Path, out: Path, *extra: str) -> dict:
    done = subprocess.run([str(BENCH_PY), str(SCRIPT), "--split", str(folder), "--out", str(out), "--k", "10",
                           "--epochs", "15", "--components", "16", "--threads", "1", *extra],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_lightfm_fit_writes_complete_lists_that_follow_the_categories(tmp_path: Path) -> None:
    favourite = make_split(tmp_path)
    summary = fit(tmp_path, tmp_path / "recs.parquet", "--vec-bits", "8")
    counts = summary["counts"]
    assert counts["users"] == 151 and counts["unknown_users"] == 1 and counts["train_users"] == 150
    assert counts["items"] == 150 and counts["cold_items"] >= 25
    assert counts["dropped_weights"] == 1 and counts["dropped_unknown_item_pairs"] == 1
    assert counts["categories"] == 5 and counts["items_with_vec"] == 150 and counts["item_features"] == 150 + 5 + 16
    recs = pd.read_parquet(tmp_path / "recs.parquet")
    assert list(recs.columns) == ["user_id", "rank", "product_id", "score"]
    assert len(recs) == 151 * 10 == summary["rows"]
    assert recs.groupby("user_id")["rank"].apply(lambda r: sorted(r) == list(range(1, 11))).all()
    assert recs.groupby("user_id")["product_id"].nunique().eq(10).all()
    ordered = recs.sort_values(["user_id", "rank"])
    assert (ordered.groupby("user_id")["score"].diff().dropna() <= 0).all()
    known = recs[recs["user_id"] != "stranger"]
    in_fav = known.apply(lambda r: r["product_id"].startswith(f"p{favourite[r['user_id']]}_"), axis=1)
    assert in_fav.mean() > 0.8, in_fav.mean()


def test_lightfm_fit_is_reproducible_with_one_thread(tmp_path: Path) -> None:
    make_split(tmp_path)
    fit(tmp_path, tmp_path / "a.parquet")
    fit(tmp_path, tmp_path / "b.parquet")
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_lightfm_fit_names_a_missing_input(tmp_path: Path) -> None:
    done = subprocess.run([str(BENCH_PY), str(SCRIPT), "--split", str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "train.parquet" in done.stderr
