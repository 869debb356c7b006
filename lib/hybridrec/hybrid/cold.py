"""Cold items through the collaborative side: a ridge regression from content vectors to ALS item
factors, fitted on warm items, predicts factors for products nobody has interacted with yet; users'
ALS factors then score them like any item (blocked top-K).

The fit needs only X'X and X'Y (d x d and d x r): each partition sums its own rows in a pandas
UDF and the driver adds up a handful of small matrices, whatever the number of items.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hybridrec.collab.topk import blocked
from hybridrec.errors import HybridrecError


@dataclass
class FactorRegression:
    """``factors ≈ [content, 1] @ weights``; ``r2`` is the in-sample share of variance explained."""

    weights: np.ndarray  # (dim + 1) x rank
    rows: int
    r2: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)]) @ self.weights


def _sums(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    xtx = xty = ysum = None
    yty = 0.0
    n = 0
    for pdf in batches:
        if pdf.empty:
            continue
        x = np.stack(pdf["vec"].to_numpy()).astype(np.float64)
        x = np.hstack([x, np.ones((len(x), 1))])
        y = np.stack(pdf["factors"].to_numpy()).astype(np.float64)
        if xtx is None:
            xtx, xty, ysum = np.zeros((x.shape[1],) * 2), np.zeros((x.shape[1], y.shape[1])), np.zeros(y.shape[1])
        xtx += x.T @ x
        xty += x.T @ y
        ysum += y.sum(axis=0)
        yty += float((y * y).sum())
        n += len(x)
    if n:
        yield pd.DataFrame(
            {
                "n": [n],
                "xtx": [xtx.ravel()],
                "xty": [xty.ravel()],
                "ysum": [ysum],
                "yty": [yty],
                "p": [xtx.shape[0]],
                "r": [xty.shape[1]],
            }
        )


def fit_factor_regression(warm: DataFrame, l2: float) -> FactorRegression:
    """``warm``: (vec array<float>, factors array<float>) for items with both. Ridge on the sums."""
    parts = (
        warm.select("vec", "factors")
        .mapInPandas(
            _sums, "n long, xtx array<double>, xty array<double>, ysum array<double>, yty double, p int, r int"
        )
        .collect()
    )
    if not parts:
        raise HybridrecError("no product has both an embedding and ALS factors: cannot fit the cold-item regression")
    p, r = parts[0]["p"], parts[0]["r"]
    n = sum(int(row["n"]) for row in parts)
    xtx = sum(np.asarray(row["xtx"]).reshape(p, p) for row in parts)
    xty = sum(np.asarray(row["xty"]).reshape(p, r) for row in parts)
    ysum = sum(np.asarray(row["ysum"]) for row in parts)
    yty = sum(float(row["yty"]) for row in parts)
    penalty = l2 * np.eye(p)
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    weights = np.linalg.solve(xtx + penalty, xty)
    sse = yty - 2 * float((weights * xty).sum()) + float((weights * (xtx @ weights)).sum())
    sst = yty - float(ysum @ ysum) / n
    return FactorRegression(weights=weights.astype(np.float32), rows=n, r2=1.0 - sse / sst if sst > 0 else 0.0)


def predicted_factors(cold: DataFrame, model: FactorRegression) -> DataFrame:
    """(item_idx, vec) of cold items → (id, features): predicted ALS factors, blocked-top-K ready."""
    weights = model.weights

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            if pdf.empty:
                continue
            x = np.stack(pdf["vec"].to_numpy()).astype(np.float32)
            y = np.hstack([x, np.ones((len(x), 1), np.float32)]) @ weights
            yield pd.DataFrame({"id": pdf["item_idx"].to_numpy(np.int32), "features": list(y.astype(np.float32))})

    return cold.select("item_idx", "vec").mapInPandas(predict, "id int, features array<float>")


def cold_candidates(
    user_factors: DataFrame,
    cold_factors: DataFrame,
    k: int,
    sizes: tuple[int, int],
    user_block: int,
    item_block: int,
) -> DataFrame:
    """Top ``k`` cold items per user by ALS user factors x predicted factors:
    (user_idx, item_idx, cold_score)."""
    top = blocked(user_factors, cold_factors, k, user_block, item_block, sizes)
    return top.select("user_idx", "item_idx", F.col("score").alias("cold_score"))
