"""The boundary between hybridrec's evaluation (Spark, .venv) and an external peer (its own
environment, .venv-bench): the split folder a peer reads, the lists it writes back, its summary
line. Pure pandas and Parquet, no Spark, no peer library: both sides import it
(bench/bench_lightfm.py and bench/bench_retail.py write, bench/lightfm_fit.py and
bench/peer_fit.py read).

Split folder:

- ``train.parquet``: ``user_id, product_id, weight`` (the rating ALS is fitted on)
- ``item_features.parquet``: ``product_id`` and the feature columns asked for (``category``,
  ``vec`` as list<float32>, ``title``): the catalog scored, cold products included
- ``users.parquet``: ``user_id``, the users to write lists for
- ``exclude.parquet`` (optional): ``user_id, product_id`` a peer must never list (the evaluation's
  ``recommend.exclude`` pairs), removed before its top-K is cut

Lists: ``user_id, rank, product_id, score``, ranks 1..n per user.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

RECS_COLUMNS = ("user_id", "rank", "product_id", "score")
ITEM_FEATURES = ("category", "vec", "title")


def need(df: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, df.columns))}")


def _strings(values: Any) -> pa.Array:
    return pa.array(
        [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in values], pa.string()
    )


def export_split(
    folder: Path,
    train: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
    *,
    features: Sequence[str] = ("category", "vec"),
    exclude: pd.DataFrame | None = None,
) -> dict[str, int]:
    """Write the split folder of the module docstring.

    ``train``: user_id, product_id, weight; ``items``: product_id and ``features`` (a subset of
    category, vec, title; vec is a list of floats or None); ``users``: user_id; ``exclude``:
    user_id, product_id (None: no exclude.parquet). Ids are written as strings, weights as doubles,
    vectors as list<float32>. Returns the row counts written.
    """
    unknown = [f for f in features if f not in ITEM_FEATURES]
    if unknown:
        raise ValueError(f"unknown item feature(s) {', '.join(unknown)}; known: {', '.join(ITEM_FEATURES)}")
    need(train, ("user_id", "product_id", "weight"), "train")
    need(items, ("product_id", *features), "items")
    need(users, ("user_id",), "users")
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"train_pairs": len(train), "items": len(items)}
    columns: dict[str, pa.Array] = {"product_id": pa.array(items["product_id"].astype(str), pa.string())}
    if "category" in features:
        columns["category"] = _strings(items["category"])
    if "vec" in features:
        vec = [
            None if v is None or (isinstance(v, float) and np.isnan(v)) else np.asarray(v, np.float32)
            for v in items["vec"]
        ]
        columns["vec"] = pa.array(vec, pa.list_(pa.float32()))
        counts["items_with_vec"] = sum(v is not None for v in vec)
    if "title" in features:
        columns["title"] = _strings(items["title"])
        counts["items_with_title"] = len(items) - columns["title"].null_count
    tables = {
        "train.parquet": pa.table(
            {
                "user_id": pa.array(train["user_id"].astype(str), pa.string()),
                "product_id": pa.array(train["product_id"].astype(str), pa.string()),
                "weight": pa.array(train["weight"].astype(float), pa.float64()),
            }
        ),
        "item_features.parquet": pa.table(columns),
        "users.parquet": pa.table({"user_id": pa.array(users["user_id"].astype(str), pa.string())}),
    }
    counts["users"] = len(users)
    if exclude is not None:
        need(exclude, ("user_id", "product_id"), "exclude")
        tables["exclude.parquet"] = pa.table(
            {
                "user_id": pa.array(exclude["user_id"].astype(str), pa.string()),
                "product_id": pa.array(exclude["product_id"].astype(str), pa.string()),
            }
        )
        counts["exclude_pairs"] = len(exclude)
    else:
        (folder / "exclude.parquet").unlink(missing_ok=True)
    for name, table in tables.items():
        pq.write_table(table, folder / name)
    return counts


def parse_fit_summary(stdout: str, script: str = "lightfm_fit.py") -> dict[str, Any]:
    """The JSON summary a peer's fit script prints on its last line."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{script} printed nothing: expected its JSON summary on the last line")
    try:
        summary = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise ValueError(f"{script}'s last line is not its JSON summary: {lines[-1][:200]!r}") from exc
    if not isinstance(summary, dict) or "seconds" not in summary or "counts" not in summary:
        raise ValueError(f"{script}'s summary lacks seconds/counts: {lines[-1][:200]!r}")
    return summary


def read_recs(path: Path) -> pd.DataFrame:
    """A lists Parquet checked: the four columns, ranks 1.. per user without gaps, no product twice."""
    recs = pq.read_table(path).to_pandas()
    need(recs, RECS_COLUMNS, str(path))
    recs = recs[list(RECS_COLUMNS)].astype({"user_id": str, "product_id": str, "rank": int})
    if recs[["user_id", "product_id"]].duplicated().any():
        raise ValueError(f"{path}: a product is listed twice for the same user")
    ranks = recs.groupby("user_id")["rank"].agg(["min", "max", "count"])
    if not ((ranks["min"] == 1) & (ranks["max"] == ranks["count"])).all():
        raise ValueError(f"{path}: ranks are not 1..n per user")
    return recs.sort_values(["user_id", "rank"], ignore_index=True)


def recs_as_candidates(recs: pd.DataFrame) -> pd.DataFrame:
    """A peer's lists as nightly candidates: ``user_id, product_id, score`` with score = −rank, so
    ``cap_and_rank`` (score descending) keeps the peer's own order, ties included."""
    need(recs, ("user_id", "rank", "product_id"), "recs")
    return pd.DataFrame(
        {
            "user_id": recs["user_id"].astype(str),
            "product_id": recs["product_id"].astype(str),
            "score": -recs["rank"].astype(float),
        }
    )


def json_safe(value: Any) -> Any:
    """NaN and infinities (a metric without users) as null, so the file is strict JSON."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
