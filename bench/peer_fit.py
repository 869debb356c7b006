"""Fit one open-source peer (implicit ALS or LightFM WARP with title features) over a grid of
settings on a split folder and write each setting's top-K lists. Runs in .venv-bench
(``bash bench/peers_env.sh``), no Spark:

    .venv-bench/bin/python bench/peer_fit.py --model implicit|lightfm --split DIR --out DIR
        [--grid '{"factors": [64, 128], "alpha": [1, 10]}'] [--k 100] [--seed 42] [--threads 1]

The split folder is bench/peer_io.py's (train, item_features with ``title``, users, optional
exclude); the models and what "excluded before the cut" means are in bench/peer_models.py.
Writes ``<out>/trial_<i>.parquet`` (``user_id, rank, product_id, score``) per grid setting and
prints a JSON summary on its last line: counts, and per trial its parameters, fit and score
seconds. LightFM's grid values of ``epochs`` come from one run per other setting (snapshots).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_models as M


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise SystemExit(f"peer_fit: missing {path} (bench/peer_io.export_split writes it)")
    have = pq.read_schema(path).names
    missing = [c for c in columns if c not in have]
    if missing:
        raise SystemExit(f"peer_fit: {path} lacks column(s) {', '.join(missing)}; it has {', '.join(have)}")
    return pq.read_table(path, columns=columns).to_pandas()


def read_folder(folder: Path, model: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.DataFrame | None, int]:
    """train (pairs summed, weight > 0), items, users, exclude (or None), dropped weights."""
    train = _read(folder / "train.parquet", ["user_id", "product_id", "weight"]).astype(
        {"user_id": str, "product_id": str}
    )
    bad = ~(train["weight"] > 0)
    train = train[~bad].groupby(["user_id", "product_id"], as_index=False, sort=False)["weight"].sum()
    items = _read(folder / "item_features.parquet", ["product_id"] + (["title"] if model == "lightfm" else []))
    items = items.astype({"product_id": str}).drop_duplicates("product_id").reset_index(drop=True)
    users = _read(folder / "users.parquet", ["user_id"])["user_id"].astype(str).drop_duplicates().reset_index(drop=True)
    exclude = None
    if (folder / "exclude.parquet").exists():
        exclude = _read(folder / "exclude.parquet", ["user_id", "product_id"]).astype(str)
    return train, items, users, exclude, int(bad.sum())


def _write(lists: pd.DataFrame, path: Path) -> int:
    lists.astype({"rank": "int32", "score": "float32"}).to_parquet(path, index=False)
    return len(lists)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, choices=sorted(M.FITTERS))
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="folder for trial_<i>.parquet")
    ap.add_argument("--grid", default="{}", help="JSON object: parameter -> list of values (default: one trial)")
    ap.add_argument("--k", type=int, default=100, help="list length before the evaluation's filter")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-df", type=int, default=2, help="LightFM: titles a token must appear in")
    args = ap.parse_args(argv)
    if args.k < 1 or args.threads < 1 or args.min_df < 1:
        ap.error("--k, --threads and --min-df must be at least 1")
    try:
        trials = M.expand_grid(json.loads(args.grid))
    except (json.JSONDecodeError, ValueError, AttributeError) as exc:
        ap.error(f"--grid: {exc}")
    t0 = time.perf_counter()
    train, items, users, exclude, dropped = read_folder(args.split, args.model)
    if train.empty:
        raise SystemExit("peer_fit: no training pair with a positive weight")
    read_s = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    done: list[dict] = []
    counts: dict = {}
    if args.model == "implicit":
        for i, params in enumerate(trials):
            lists, info = M.fit_implicit(train, users, exclude, params, args.k, args.seed, args.threads)
            path = args.out / f"trial_{i}.parquet"
            done.append(
                {
                    "trial": i,
                    "params": info["params"],
                    "fit_s": round(info["fit_s"], 3),
                    "score_s": round(info["score_s"], 3),
                    "recs": str(path),
                    "rows": _write(lists, path),
                }
            )
            counts = info["counts"]
            print(f"[peer-fit] implicit trial {i} {params}: fit {info['fit_s']:.1f}s", file=sys.stderr, flush=True)
    else:
        index = {i: p for i, p in enumerate(trials)}
        groups: dict[str, list[int]] = {}
        for i, p in index.items():
            groups.setdefault(json.dumps({k: v for k, v in p.items() if k != "epochs"}, sort_keys=True), []).append(i)
        for members in groups.values():
            epochs = sorted({int(index[i].get("epochs", M.LIGHTFM_DEFAULTS["epochs"])) for i in members})
            base = {k: v for k, v in index[members[0]].items() if k != "epochs"}
            for epoch, lists, info in M.fit_lightfm(
                train,
                items,
                users,
                exclude,
                {**base, "epochs": epochs[-1]},
                args.k,
                args.seed,
                args.threads,
                args.min_df,
                snapshots=epochs,
            ):
                for i in members:
                    if int(index[i].get("epochs", M.LIGHTFM_DEFAULTS["epochs"])) == epoch:
                        path = args.out / f"trial_{i}.parquet"
                        done.append(
                            {
                                "trial": i,
                                "params": info["params"],
                                "fit_s": round(info["fit_s"], 3),
                                "score_s": round(info["score_s"], 3),
                                "recs": str(path),
                                "rows": _write(lists, path),
                            }
                        )
                counts = info["counts"]
                print(f"[peer-fit] lightfm {base} epoch {epoch}: fit {info['fit_s']:.1f}s", file=sys.stderr, flush=True)
        done.sort(key=lambda t: t["trial"])
    counts = {**counts, "dropped_weights": dropped}
    print(
        json.dumps(
            {
                "model": args.model,
                "k": args.k,
                "seed": args.seed,
                "threads": args.threads,
                "min_df": args.min_df,
                "counts": counts,
                "trials": done,
                "seconds": {"read": round(read_s, 3), "total": round(time.perf_counter() - t0, 3)},
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
