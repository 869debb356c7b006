"""bench/lightfm_fit.py on a small synthetic split, run in .venv-bench (skipped when that environment
has not been built: ``bash bench/lightfm_env.sh``), and the pure helpers of bench/bench_lightfm.py
(split export, recs reading, the candidates handed to the nightly filter, the summaries), which run
everywhere.

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

import bench_lightfm as BL
import lightfm_fit as LF  # read_split needs no LightFM: it is imported inside main
from peer_io import read_recs, recs_as_candidates

REPO = Path(__file__).resolve().parents[2]
BENCH_PY = REPO / ".venv-bench" / "bin" / "python"
SCRIPT = REPO / "bench" / "lightfm_fit.py"

needs_bench_env = pytest.mark.skipif(not BENCH_PY.exists(), reason=".venv-bench not built (bash bench/lightfm_env.sh)")


def make_split(folder: Path) -> dict[str, int]:
    rng = np.random.default_rng(0)
    cats = [f"c{c}" for c in range(5)]
    items = pd.DataFrame(
        {
            "product_id": [f"p{c}_{i}" for c in range(5) for i in range(30)],
            "category": [cats[c] for c in range(5) for _ in range(30)],
        }
    )
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
    done = subprocess.run(
        [
            str(BENCH_PY),
            str(SCRIPT),
            "--split",
            str(folder),
            "--out",
            str(out),
            "--k",
            "10",
            "--epochs",
            "15",
            "--components",
            "16",
            "--threads",
            "1",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_bench_env
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


@needs_bench_env
def test_lightfm_fit_is_reproducible_with_one_thread(tmp_path: Path) -> None:
    make_split(tmp_path)
    fit(tmp_path, tmp_path / "a.parquet")
    fit(tmp_path, tmp_path / "b.parquet")
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(a, b)


@needs_bench_env
def test_lightfm_fit_names_a_missing_input(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BENCH_PY), str(SCRIPT), "--split", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0 and "train.parquet" in done.stderr


# ---- bench/bench_lightfm.py's pure helpers (no Spark, no LightFM) ----------------------------------


def _export_inputs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    train = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "product_id": ["p1", "p2", "p1"], "weight": [0.7, 1.2, 2]})
    items = pd.DataFrame(
        {
            "product_id": ["p1", "p2", "p3"],
            "category": ["a", None, "b"],
            "vec": [np.array([1.0, 0.0]), [0.0, 1.0], None],
        }
    )
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "n_events": [2, 1, 4]})
    return train, items, users


def test_export_split_writes_what_lightfm_fit_reads(tmp_path: Path) -> None:
    train, items, users = _export_inputs()
    counts = BL.export_split(tmp_path, train, items, users)
    assert counts == {"train_pairs": 3, "items": 3, "items_with_vec": 2, "users": 3}
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert pq.read_schema(tmp_path / "train.parquet").field("weight").type == pa.float64()
    assert pq.read_schema(tmp_path / "item_features.parquet").field("vec").type.value_type == pa.float32()
    assert pq.read_schema(tmp_path / "users.parquet").names == ["user_id"]
    split = LF.read_split(tmp_path)
    assert split.train.to_dict("records") == [
        {"user_id": "u1", "product_id": "p1", "weight": 0.7},
        {"user_id": "u1", "product_id": "p2", "weight": 1.2},
        {"user_id": "u2", "product_id": "p1", "weight": 2.0},
    ]
    assert list(split.users) == ["u1", "u2", "u3"] and split.dropped_weights == 0
    assert list(split.items["product_id"]) == ["p1", "p2", "p3"]
    assert split.items["category"].isna().tolist() == [False, True, False]
    assert [None if v is None else list(v) for v in split.items["vec"]] == [[1.0, 0.0], [0.0, 1.0], None]
    features, n = LF.item_features(split.items, vec_bits=4, seed=0)  # the vectors reach the feature matrix
    assert n["items_with_vec"] == 2 and features.shape == (3, 3 + 3 + 8)


def test_export_split_names_a_missing_column(tmp_path: Path) -> None:
    train, items, users = _export_inputs()
    with pytest.raises(ValueError, match="items lacks column.*vec"):
        BL.export_split(tmp_path, train, items.drop(columns="vec"), users)
    with pytest.raises(ValueError, match="train lacks column.*weight"):
        BL.export_split(tmp_path, train.drop(columns="weight"), items, users)


def test_lightfm_command_passes_options_that_lightfm_fit_knows(tmp_path: Path, capsys) -> None:
    params = {"k": 100, "epochs": 30, "components": 64, "vec_bits": 32, "seed": 42, "threads": 1}
    cmd = BL.lightfm_command(Path("/py"), tmp_path, tmp_path / "r.parquet", params)
    assert cmd[:6] == ["/py", str(BL.FIT_SCRIPT), "--split", str(tmp_path), "--out", str(tmp_path / "r.parquet")]
    assert cmd[6:] == [
        "--k",
        "100",
        "--epochs",
        "30",
        "--components",
        "64",
        "--vec-bits",
        "32",
        "--seed",
        "42",
        "--threads",
        "1",
    ]
    with pytest.raises(SystemExit):
        LF.main(["--help"])
    usage = capsys.readouterr().out
    assert all(option in usage for option in cmd[6::2])


def test_parse_fit_summary_takes_the_last_line() -> None:
    out = 'noise\n{"counts": {"users": 3}, "seconds": {"fit": 1.0}}\n\n'
    assert BL.parse_fit_summary(out)["counts"] == {"users": 3}
    with pytest.raises(ValueError, match="printed nothing"):
        BL.parse_fit_summary("\n")
    with pytest.raises(ValueError, match="not its JSON summary"):
        BL.parse_fit_summary("{}\nTraceback (most recent call last)")
    with pytest.raises(ValueError, match="lacks seconds/counts"):
        BL.parse_fit_summary('{"rows": 3}')


def _write_recs(path: Path, rows: list[tuple]) -> Path:
    pd.DataFrame(rows, columns=["user_id", "rank", "product_id", "score"]).astype(
        {"rank": "int32", "score": "float32"}
    ).to_parquet(path)
    return path


def test_read_recs_checks_and_orders_the_lists(tmp_path: Path) -> None:
    path = _write_recs(tmp_path / "recs.parquet", [("u2", 2, "p3", 0.1), ("u1", 1, "p9", 0.9), ("u2", 1, "p1", 0.5)])
    recs = read_recs(path)
    assert recs[["user_id", "rank", "product_id"]].values.tolist() == [
        ["u1", 1, "p9"],
        ["u2", 1, "p1"],
        ["u2", 2, "p3"],
    ]
    with pytest.raises(ValueError, match="twice"):
        read_recs(_write_recs(tmp_path / "dup.parquet", [("u1", 1, "p1", 1.0), ("u1", 2, "p1", 0.5)]))
    with pytest.raises(ValueError, match="ranks are not 1..n"):
        read_recs(_write_recs(tmp_path / "gap.parquet", [("u1", 1, "p1", 1.0), ("u1", 3, "p2", 0.5)]))
    pd.DataFrame({"user_id": ["u1"], "product_id": ["p1"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="lacks column.*rank"):
        read_recs(tmp_path / "bad.parquet")


def test_candidates_keep_lightfms_order_under_the_nightly_sort() -> None:
    # cap_and_rank sorts by score descending, then product id: score = -rank must give LightFM's
    # order even where LightFM's own scores tie and the product ids run the other way.
    recs = pd.DataFrame(
        {"user_id": ["u1"] * 3, "rank": [1, 2, 3], "product_id": ["p9", "p5", "p1"], "score": [0.5, 0.5, 0.5]}
    )
    cands = recs_as_candidates(recs)
    assert list(cands.columns) == ["user_id", "product_id", "score"]
    nightly_order = cands.sort_values(["score", "product_id"], ascending=[False, True])["product_id"].tolist()
    assert nightly_order == ["p9", "p5", "p1"]


def _run(seed: int, hyb_minus_lfm: tuple[float, float, float]) -> dict:
    mean, lo, hi = hyb_minus_lfm
    head = [
        {"segment": seg, "system": sys_, "metric": m, "mean": v, "lo": v - 0.01, "hi": v + 0.01, "n_users": 50}
        for seg in ("all_users", "cold_items")
        for sys_, v in (("hybrid", 0.3), (BL.LIGHTFM, 0.3 - mean))
        for m in ("recall", "ndcg", "ap")
    ]
    paired = [
        {
            "segment": seg,
            "system_a": "hybrid",
            "system_b": BL.LIGHTFM,
            "metric": "recall",
            "mean": mean,
            "lo": lo,
            "hi": hi,
            "n_users": 50,
        }
        for seg in ("all_users", "cold_items")
    ]
    return {
        "seed": seed,
        "cutoff": "2025-12-18",
        "counts": {"split_judged_users": 50},
        "headline": head,
        "paired": paired,
        "coverage": [{"system": "hybrid", "coverage": 0.5}],
        "seconds": {"systems": {"hybrid": {"fit_s": 1.0, "score_s": 2.0}}},
    }


def test_summarise_seeds_counts_the_seeds_each_way() -> None:
    runs = [_run(42, (0.05, 0.01, 0.09)), _run(43, (0.02, -0.01, 0.05)), _run(44, (-0.04, -0.07, -0.01))]
    summary = BL.summarise_seeds(runs)
    assert summary["seeds"] == [42, 43, 44]
    row = next(r for r in summary["paired"] if r["segment"] == "all_users")
    assert (row["seeds_above_0"], row["seeds_below_0"]) == (1, 1)
    assert [p["mean"] for p in row["per_seed"]] == [0.05, 0.02, -0.04]
    lfm = next(
        r
        for r in summary["headline"]
        if r["segment"] == "all_users" and r["system"] == BL.LIGHTFM and r["metric"] == "recall"
    )
    assert lfm["per_seed"] == pytest.approx([0.25, 0.28, 0.34]) and lfm["min"] == pytest.approx(0.25)
    assert lfm["mean"] == pytest.approx((0.25 + 0.28 + 0.34) / 3)
    text = BL.format_seeds(summary, ["all_users", "cold_items"])
    assert "hybrid - lightfm" in text and "+0.0500, +0.0200, -0.0400 (1/1)" in text


def test_format_run_shows_every_system_with_its_interval() -> None:
    text = BL.format_run(_run(42, (0.05, 0.01, 0.09)), ["hybrid", BL.LIGHTFM], ["all_users", "cold_items"], 10)
    assert "Recall@10" in text and "MAP@10" in text and "cold_items (50 users)" in text
    assert "0.2500 [0.2400, 0.2600]" in text  # lightfm's recall with its interval
    assert "hybrid - lightfm" in text and "0.0500 [0.0100, 0.0900]" in text
    assert "hybrid 1.0 / 2.0" in text


def test_seeds_option_parses_distinct_integers() -> None:
    import argparse

    assert BL.parse_seeds("42,43, 44") == [42, 43, 44]
    for bad in ("42,x", "42,42", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            BL.parse_seeds(bad)


def test_results_are_strict_json() -> None:
    out = BL.json_safe({"a": [np.float64("nan"), np.int64(3), 0.5], "b": {"c": float("inf")}, "d": ("x",)})
    assert json.loads(json.dumps(out, allow_nan=False)) == {"a": [None, 3, 0.5], "b": {"c": None}, "d": ["x"]}
