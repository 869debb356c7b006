"""The pure pieces of the Online Retail peer benchmark (bench/bench_retail.py, bench/peer_models.py,
bench/peer_fit.py, bench/peer_io.py): title token features, top-K with excluded items removed
before the cut, the split export with titles and excluded pairs, the tuning choice and the table.
No Spark; the two end-to-end fits run only where .venv-bench is built (``bash bench/peers_env.sh``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench_retail as BR
import peer_fit as PF
import peer_io as IO
import peer_models as M

REPO = Path(__file__).resolve().parents[2]
BENCH_PY = REPO / ".venv-bench" / "bin" / "python"


def test_title_tokens_are_lower_case_words_once_without_numbers() -> None:
    assert M.title_tokens("WHITE HANGING HEART T-LIGHT HOLDER") == ["white", "hanging", "heart", "light", "holder"]
    assert M.title_tokens("SET OF 3 CAKE TINS, CAKE") == ["set", "of", "cake", "tins"]
    assert M.title_tokens("PACK OF 72 RETROSPOT 12PC") == ["pack", "of", "retrospot", "12pc"]
    assert M.title_tokens(None) == [] and M.title_tokens(float("nan")) == [] and M.title_tokens("") == []


def test_title_features_identity_plus_shared_tokens_rows_sum_to_one() -> None:
    titles = ["RED HEART MUG", "BLUE HEART MUG", "RED LANTERN", None]
    features, vocab = M.title_features(titles, min_df=2)
    assert vocab == ["heart", "mug", "red"]  # blue and lantern appear once: identity says it already
    dense = features.toarray()
    assert dense.shape == (4, 4 + 3)
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(dense[0], [0.25, 0, 0, 0, 0.25, 0.25, 0.25], rtol=1e-6)
    np.testing.assert_allclose(dense[2], [0, 0, 0.5, 0, 0, 0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(dense[3], [0, 0, 0, 1, 0, 0, 0])  # no title: identity alone
    assert M.title_features(titles, min_df=1)[1] == ["blue", "heart", "lantern", "mug", "red"]
    with pytest.raises(ValueError, match="min_df"):
        M.title_features(titles, min_df=0)


def test_masked_top_k_removes_excluded_items_before_the_cut() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.1, 0.3, 0.2, 0.0]])
    mask = M.pair_matrix(pd.Index(["u1", "u2"]), pd.Index(list("abcde")), ["u1", "u1", "u2"], ["a", "b", "c"])
    idx, top = M.masked_top_k(scores, mask, 3)
    assert idx.tolist() == [[2, 3, 4], [3, 0, 1]]  # u1 keeps 3 items after its 2 excluded; ties: lower index
    np.testing.assert_allclose(top, [[0.7, 0.6, 0.5], [0.2, 0.1, 0.1]])
    idx, top = M.masked_top_k(scores, mask, 5)  # fewer than k left: -1 slots, dropped by lists_frame
    assert idx[0].tolist() == [2, 3, 4, -1, -1] and np.isneginf(top[0, 3:]).all()
    lists = M.lists_frame(np.array(["u1", "u2"]), idx, top, np.array(list("abcde")))
    assert lists[lists.user_id == "u1"][["rank", "product_id"]].values.tolist() == [[1, "c"], [2, "d"], [3, "e"]]
    assert lists.groupby("user_id").size().to_dict() == {"u1": 3, "u2": 4}
    assert M.masked_top_k(scores, None, 2)[0].tolist() == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="mask shape"):
        M.masked_top_k(scores, mask[:1], 2)


def test_pair_matrix_drops_unknown_ids_and_sums_repeats() -> None:
    m = M.pair_matrix(
        pd.Index(["u1", "u2"]),
        pd.Index(["a", "b"]),
        ["u1", "u1", "u3", "u2"],
        ["a", "a", "a", "z"],
        [1.0, 2.0, 5.0, 7.0],
    )
    assert m.toarray().tolist() == [[3.0, 0.0], [0.0, 0.0]]


def test_expand_grid_every_combination_last_key_fastest() -> None:
    assert M.expand_grid({"factors": [64, 128], "alpha": [1, 10]}) == [
        {"factors": 64, "alpha": 1},
        {"factors": 64, "alpha": 10},
        {"factors": 128, "alpha": 1},
        {"factors": 128, "alpha": 10},
    ]
    assert len(M.expand_grid(BR.GRIDS["implicit"])) == 12 and len(M.expand_grid(BR.GRIDS["lightfm"])) == 4
    assert M.expand_grid({}) == [{}]
    with pytest.raises(ValueError, match="non-empty list"):
        M.expand_grid({"factors": 64})


def _split(folder: Path) -> dict[str, int]:
    rng = np.random.default_rng(0)
    words = ["RED", "BLUE", "HEART", "MUG", "BAG", "LANTERN", "CANDLE", "TIN"]
    items = pd.DataFrame(
        {"product_id": [f"P{i}" for i in range(60)], "title": [" ".join(rng.choice(words, 3)) for _ in range(60)]}
    )
    items.loc[59, "title"] = None
    rows = [(f"u{u}", f"P{p}", float(rng.random() + 0.1)) for u in range(80) for p in rng.choice(50, 6, replace=False)]
    train = pd.DataFrame(rows, columns=["user_id", "product_id", "weight"])
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(82)]})  # u80, u81: unknown to training
    return IO.export_split(
        folder, train, items, users, features=("title",), exclude=train.iloc[::2][["user_id", "product_id"]]
    )


def test_export_split_with_titles_and_excluded_pairs_reads_back(tmp_path: Path) -> None:
    counts = _split(tmp_path)
    assert counts == {"train_pairs": 480, "items": 60, "items_with_title": 59, "users": 82, "exclude_pairs": 240}
    train, items, users, exclude, dropped = PF.read_folder(tmp_path, "lightfm")
    assert len(train) == 480 and dropped == 0 and list(items.columns) == ["product_id", "title"]
    assert items["title"].isna().sum() == 1 and len(users) == 82 and len(exclude) == 240
    IO.export_split(tmp_path, train, items, users.to_frame(), features=("title",))  # no exclude: the old file goes
    assert PF.read_folder(tmp_path, "implicit")[3] is None
    with pytest.raises(ValueError, match="unknown item feature"):
        IO.export_split(tmp_path, train, items, users.to_frame(), features=("colour",))
    with pytest.raises(ValueError, match="items lacks column.*title"):
        IO.export_split(tmp_path, train, items.drop(columns="title"), users.to_frame(), features=("title",))


def test_choose_takes_the_best_validation_ndcg_earlier_on_ties() -> None:
    trials = [
        {"trial": 0, "val_ndcg": 0.2},
        {"trial": 1, "val_ndcg": 0.3},
        {"trial": 2, "val_ndcg": 0.3},
        {"trial": 3, "val_ndcg": None},
    ]
    assert BR.choose(trials)["trial"] == 1
    with pytest.raises(ValueError, match="no tuning trial"):
        BR.choose([{"trial": 0, "val_ndcg": None}])
    chosen = {"no_components": 64, "epochs": 30, "learning_rate": 0.05, "loss": "warp"}
    assert BR.refit_grid(chosen, BR.GRIDS["lightfm"]) == {
        "no_components": [64],
        "epochs": [30],
        "learning_rate": [0.05],
    }


def test_peer_command_is_what_peer_fit_parses(tmp_path: Path, capsys) -> None:
    cmd = BR.peer_command(Path("/py"), "lightfm", tmp_path, tmp_path / "o", {"epochs": [10, 30]}, 100, 42, 1, 2)
    assert cmd[:2] == ["/py", str(BR.FIT_SCRIPT)] and json.loads(cmd[cmd.index("--grid") + 1]) == {"epochs": [10, 30]}
    with pytest.raises(SystemExit):
        PF.main(["--help"])
    usage = capsys.readouterr().out
    assert all(option in usage for option in cmd[2::2])


def test_format_table_puts_all_users_first() -> None:
    head = [
        {"segment": seg, "system": s, "metric": m, "mean": 0.1, "lo": 0.05, "hi": 0.15, "n_users": 9}
        for seg in ("cold_items", "all_users")
        for s in ("hybrid", "implicit")
        for m in ("recall", "ndcg")
    ]
    paired = [
        {
            "segment": "all_users",
            "system_a": "hybrid",
            "system_b": "implicit",
            "metric": "recall",
            "mean": 0.02,
            "lo": 0.01,
            "hi": 0.03,
        }
    ]
    text = BR.format_table(head, paired, ("hybrid", "implicit"), ("cold_items", "all_users"), 10)
    lines = text.splitlines()
    assert lines[0] == "all_users (9 users)" and "Recall@10" in lines[1] and "NDCG@10" in lines[1]
    assert "hybrid - implicit     0.0200 [0.0100, 0.0300]" in text


@pytest.mark.skipif(not BENCH_PY.exists(), reason=".venv-bench not built (bash bench/peers_env.sh)")
@pytest.mark.parametrize("model", ["implicit", "lightfm"])
def test_peer_fit_never_lists_an_excluded_pair(tmp_path: Path, model: str) -> None:
    _split(tmp_path)
    grid = {"factors": [8], "alpha": [1.0, 10.0]} if model == "implicit" else {"no_components": [8], "epochs": [2, 4]}
    done = subprocess.run(
        [
            str(BENCH_PY),
            str(BR.FIT_SCRIPT),
            "--model",
            model,
            "--split",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
            "--grid",
            json.dumps(grid),
            "--k",
            "20",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"OPENBLAS_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = IO.parse_fit_summary(done.stdout, "peer_fit.py")
    assert [t["trial"] for t in summary["trials"]] == [0, 1]
    exclude = pd.read_parquet(tmp_path / "exclude.parquet")
    for trial in summary["trials"]:
        recs = IO.read_recs(Path(trial["recs"]))
        assert recs.merge(exclude, on=["user_id", "product_id"]).empty
        assert (recs.groupby("user_id").size() == 20).all()
        unknown = {"u80", "u81"} & set(recs["user_id"])
        assert unknown == (set() if model == "implicit" else {"u80", "u81"})  # LightFM: item biases
    assert summary["counts"]["excluded_pairs_masked"] == 240
    if model == "lightfm":
        assert summary["trials"][1]["fit_s"] >= summary["trials"][0]["fit_s"]  # 4 epochs continue the 2
