"""Cold items through the collaborative side: a model from a product's content (its content vector,
category and title words: ``cold_inputs``) to ALS item factors, fitted on warm items, predicts
factors for products nobody has interacted with yet; users' ALS factors then score them like any
item (blocked top-K).

Two models (``recommend.cold_model``, chosen by ``fit_cold_model``):

- ``ridge``: the fit needs only X'X and X'Y (d x d and d x r): each partition sums its own rows in
  a pandas UDF and the driver adds up a handful of matrices, whatever the number of items. One
  pass sums every side of the fit at once (fitted, validation, held out: ``_fit_ridge_measured``),
  and rows as sparse as the default inputs' (the text's TF-IDF, ~10 of 3,000 columns set) are
  summed sparse.
  The penalty is on standardised inputs (column j: l2 x its variance, from the same sums), one per
  input part, except the text's TF-IDF (``RAW_PARTS``): its rows are unit length, so a column's
  scale already says how much the term weighs, and standardising it would shrink a term seen on
  three products far less than a common one (held-out R² on Online Retail, 1,000 words: 0.278 on
  their own scale against 0.244 standardised, docs/results.md). ``regression_l2: null`` chooses the
  penalties on a validation share (``_choose_l2``).
- ``mlp``: one ReLU layer (``factor_mlp.fit_mlp``), trained on the driver on a seeded sample of at
  most ``recommend.cold_model_max_rows`` warm products (the only rows collected), applied on the
  executors with NumPy.

Either way a seeded share of the warm products (``recommend.cold_model_holdout``, by a hash of the
model's input vector, so the same input always falls on the same side) is kept out of the fit and the
night reports the model's R² and mean cosine on them: the in-sample R² the night used to report
flattered the ridge (0.11 in-sample against 0.06 held out on Online Retail, bench/bench_factors.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy import sparse

from hybridrec.collab.topk import blocked
from hybridrec.config.sections import COLD_MODELS, RecommendConfig
from hybridrec.errors import HybridrecError
from hybridrec.hybrid.factor_mlp import MlpHead, fit_mlp

# Below this many warm products to fit on, the head is not trained (the ridge is: a validation
# share of a handful of rows says nothing) and no figures are held out.
MIN_HEAD_ROWS = 50


# Ridge penalties tried when ``recommend.regression_l2`` is null, one per input part
# (``cold_inputs``: content, category, text), chosen on a validation share. Column j of a
# standardised part is penalised l2 * var_j; a part of ``RAW_PARTS`` l2 alone.
L2_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
RAW_PARTS = frozenset({"text"})
# Each partition sends one X'X per side of the fit, up to (d + 1)² / 2 entries (d = the input's
# width: 3,129 on the default inputs; ``_upper_triangle`` sends the set ones); at most this many
# partitions (and no more than the session's default parallelism) reach the driver: the rows are
# coalesced, never shuffled.
SUM_PARTITIONS = 8
# A batch whose share of non-zero inputs is at most this is summed as a sparse matrix (the default
# inputs: ~4 %, a 3,000-term TF-IDF beside a dense content vector).
SPARSE_SUM_DENSITY = 0.25
VALIDATION_SHARE = 0.2  # of the fit rows, to choose the penalty (seeded hash, like the held-out share)
MIN_VALIDATION_ROWS = 20  # below this many validation rows the penalty is not chosen: DEFAULT_L2
DEFAULT_L2 = 10.0
VAR_FLOOR = 1e-12  # a standardised column with at most this variance is penalised unscaled


@dataclass
class FactorRegression:
    """``factors ≈ [content, 1] @ weights``; ``r2`` is the in-sample share of variance explained,
    ``l2`` the penalty of each input part (chosen on a validation share when the setting is null)."""

    weights: np.ndarray  # (dim + 1) x rank
    rows: int
    r2: float
    l2: tuple[float, ...] = (DEFAULT_L2,)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)]) @ self.weights


@dataclass
class _Sums:
    """X'X, X'Y (X with a column of ones last), the sum of Y and of Y² over ``n`` rows."""

    n: int
    xtx: np.ndarray
    xty: np.ndarray
    ysum: np.ndarray
    yty: float

    def __add__(self, other: _Sums) -> _Sums:
        return _Sums(
            self.n + other.n, self.xtx + other.xtx, self.xty + other.xty, self.ysum + other.ysum, self.yty + other.yty
        )

    def solve(
        self, l2: Sequence[float], groups: Sequence[int] | None = None, scaled: Sequence[bool] | None = None
    ) -> np.ndarray:
        """Ridge weights with the penalty of standardised inputs: l2[g] * var_j for column j of
        part g (``groups``: the parts' widths, in column order; None = one part), or l2[g] alone
        where ``scaled[g]`` is False (None = every part standardised); intercept free."""
        mean = self.xtx[-1, :-1] / self.n
        var = np.diag(self.xtx)[:-1] / self.n - mean * mean
        widths = [len(var)] if groups is None else list(groups)
        flags = [True] * len(widths) if scaled is None else list(scaled)
        per_column = np.repeat(np.asarray(l2, np.float64), widths)
        # A column without variance on these rows (a category or term none of them has) has nothing
        # to standardise: penalised l2 alone, which keeps its weight 0 and the system well conditioned.
        standardised = np.repeat(np.asarray(flags, bool), widths) & (var > VAR_FLOOR)
        scale = np.where(standardised, var, 1.0)
        return _solve_symmetric(self.xtx + np.diag(np.append(per_column * scale, 0.0)), self.xty)

    def r2(self, weights: np.ndarray) -> float | None:
        """Share of these rows' factor variance that ``weights`` explain (None: no variance)."""
        sse = self.yty - 2 * float((weights * self.xty).sum()) + float((weights * (self.xtx @ weights)).sum())
        sst = self.yty - float(self.ysum @ self.ysum) / self.n
        return 1.0 - sse / sst if sst > 0 else None


def _solve_symmetric(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a⁻¹ b`` for the penalised X'X: by Cholesky (a third of LU's time at the default inputs'
    3,129 columns, and ``_choose_l2`` solves up to 6 + 12 x parts times), by LU where rounding leaves
    ``a`` not positive definite."""
    try:
        return scipy.linalg.solve(a, b, assume_a="pos", check_finite=False)
    except np.linalg.LinAlgError:
        return np.linalg.solve(a, b)


def _gram(x: np.ndarray, y: np.ndarray) -> tuple[sparse.csr_matrix | np.ndarray, np.ndarray]:
    """(X'X, X'Y) of ``x`` with a column of ones appended, in float64. When few of ``x``'s entries
    are set X'X is a sparse matrix (the same sums, far fewer multiplications)."""
    ones = np.ones((len(x), 1))
    if np.count_nonzero(x) <= SPARSE_SUM_DENSITY * x.size:
        xs = sparse.hstack([sparse.csr_matrix(x, dtype=np.float64), ones], format="csr")
        xt = xs.T.tocsr()
        return (xt @ xs).tocsr(), np.asarray(xt @ y)
    dense = np.hstack([x.astype(np.float64), ones])
    return dense.T @ dense, dense.T @ y


def _upper_triangle(xtx: sparse.csr_matrix | np.ndarray) -> tuple[bytes, bytes, bytes]:
    """The set entries of the upper triangle of the symmetric ``xtx`` as (row int32, column int32,
    value float64) bytes: what travels to the driver. On the default inputs the text's terms
    rarely share a product, so this is a tenth of the dense matrix (under the dense bytes always)."""
    upper = sparse.triu(sparse.coo_matrix(xtx)).tocoo()
    return upper.row.astype(np.int32).tobytes(), upper.col.astype(np.int32).tobytes(), upper.data.tobytes()


def _sums(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Per partition, one row of sums for each ``side`` label present (see ``_collect_sums``)."""
    acc: dict[int, list] = {}
    for pdf in batches:
        if pdf.empty:
            continue
        for side, part in pdf.groupby("side", sort=True):
            x = np.stack(part["vec"].to_numpy())
            y = np.stack(part["factors"].to_numpy()).astype(np.float64)
            xtx, xty = _gram(x, y)
            got = acc.get(int(side))
            if got is None:
                acc[int(side)] = [len(x), xtx, xty, y.sum(axis=0), float((y * y).sum())]
            else:
                got[0] += len(x)
                same = sparse.issparse(got[1]) == sparse.issparse(xtx)
                got[1] = got[1] + xtx if same else np.asarray(got[1] + xtx)  # a dense batch beside sparse ones
                got[2] += xty
                got[3] += y.sum(axis=0)
                got[4] += float((y * y).sum())
    for side, (n, xtx, xty, ysum, yty) in sorted(acc.items()):
        rows, cols, values = _upper_triangle(xtx)
        yield pd.DataFrame(
            {
                "side": [side],
                "n": [n],
                "rows": [rows],
                "cols": [cols],
                "values": [values],
                "xty": [xty.tobytes()],
                "ysum": [ysum.tobytes()],
                "yty": [yty],
                "p": [xtx.shape[0]],
                "r": [xty.shape[1]],
            }
        )


def _collect_sums(rows: DataFrame, side: Column | None = None) -> dict[int, _Sums]:
    """The ``_Sums`` of (vec, factors) ``rows`` for each value of the int ``side`` column (None:
    every row on side 0), in one pass: each partition sums its own, the driver adds them.

    The matrices travel as raw bytes (X'X as its upper triangle's set entries, ``_upper_triangle``):
    as ``array<double>`` a 3,129-column X'X became 9.8 million Python floats per partition on the
    driver, 73 of the 91 s the fit took on Online Retail's 3,000-term inputs, and four sides of
    dense 3,390-column matrices per partition filled the driver's 4 GB heap on the fashion catalog."""
    partitions = max(1, min(SUM_PARTITIONS, rows.sparkSession.sparkContext.defaultParallelism))
    labelled = rows.select("vec", "factors", (side if side is not None else F.lit(0)).cast("int").alias("side"))
    schema = (
        "side int, n long, rows binary, cols binary, values binary, xty binary, ysum binary, yty double, p int, r int"
    )
    parts = labelled.coalesce(partitions).mapInPandas(_sums, schema).collect()
    return {
        side_no: _side_sums([row.asDict() for row in parts if row["side"] == side_no])
        for side_no in sorted({int(row["side"]) for row in parts})
    }


def _side_sums(rows: Sequence[Mapping[str, Any]]) -> _Sums:
    """One side's ``_Sums`` from the rows ``_sums`` yielded for it (one per partition holding it)."""

    def array(raw: bytes, dtype: type, shape: tuple[int, ...] = (-1,)) -> np.ndarray:
        return np.frombuffer(raw, dtype=dtype).reshape(shape)

    p, r = rows[0]["p"], rows[0]["r"]
    upper = sparse.coo_matrix(
        (
            np.concatenate([array(row["values"], np.float64) for row in rows]),
            (
                np.concatenate([array(row["rows"], np.int32) for row in rows]),
                np.concatenate([array(row["cols"], np.int32) for row in rows]),
            ),
        ),
        shape=(p, p),
    ).toarray()  # duplicates (the partitions' shares of one entry) are added
    return _Sums(
        n=sum(int(row["n"]) for row in rows),
        xtx=upper + upper.T - np.diag(np.diag(upper)),
        xty=sum(array(row["xty"], np.float64, (p, r)) for row in rows),
        ysum=sum(array(row["ysum"], np.float64, (r,)) for row in rows),
        yty=sum(float(row["yty"]) for row in rows),
    )


def _total(*sums: _Sums | None) -> _Sums | None:
    """The sum of the given sides' sums (None: none of them has rows)."""
    present = [s for s in sums if s is not None]
    if not present:
        return None
    total = present[0]
    for other in present[1:]:
        total = total + other
    return total


def _choose_l2(fit: _Sums, val: _Sums, groups: Sequence[int], scaled: Sequence[bool] | None) -> tuple[float, ...]:
    """Per-part penalties from ``L2_GRID`` by validation R²: the best common one, then two rounds
    of trying each grid value for one part at a time (at most 6 + 12 x parts solves of a d x d
    system, each distinct set of penalties solved once)."""

    seen: dict[tuple[float, ...], float] = {}

    def score(l2: Sequence[float]) -> float:
        key = tuple(l2)
        if key not in seen:  # the rounds revisit penalties already scored: each is solved once
            got = val.r2(fit.solve(l2, groups, scaled))
            seen[key] = -np.inf if got is None else got
        return seen[key]

    common = max(L2_GRID, key=lambda g: score([g] * len(groups)))
    best, best_score = [common] * len(groups), score([common] * len(groups))
    for _ in range(2 if len(groups) > 1 else 0):
        for part in range(len(groups)):
            for g in L2_GRID:
                trial = [*best[:part], g, *best[part + 1 :]]
                trial_score = score(trial)
                if trial_score > best_score:
                    best, best_score = trial, trial_score
    return tuple(best)


def _ridge(
    fit: _Sums | None,
    val: _Sums | None,
    l2: float | Sequence[float] | None,
    groups: Sequence[int] | None,
    scaled: Sequence[bool] | None,
) -> FactorRegression:
    """The ridge on the rows of ``fit`` and ``val`` together; ``l2`` None: each part's penalty
    chosen by fitting on ``fit`` and scoring on ``val`` (``DEFAULT_L2`` when ``val`` has fewer than
    ``MIN_VALIDATION_ROWS`` rows; every row in ``val``: nothing to choose on, fitted on them)."""
    if fit is None:
        fit, val = val, None
    if fit is None:
        raise HybridrecError("no product has both an embedding and ALS factors: cannot fit the cold-item regression")
    sums = _total(fit, val)
    assert sums is not None
    parts = [sums.xtx.shape[0] - 1] if groups is None else list(groups)
    if sum(parts) != sums.xtx.shape[0] - 1:
        raise HybridrecError(
            f"cold-item regression: input parts {parts} do not add up to {sums.xtx.shape[0] - 1} columns"
        )
    if l2 is None:
        usable = val is not None and val.n >= MIN_VALIDATION_ROWS
        chosen = _choose_l2(fit, val, parts, scaled) if usable and val is not None else (DEFAULT_L2,) * len(parts)
    elif isinstance(l2, (int, float)):
        chosen = (float(l2),) * len(parts)
    else:
        chosen = tuple(float(v) for v in l2)
    weights = sums.solve(chosen, parts, scaled)
    return FactorRegression(weights=weights.astype(np.float32), rows=sums.n, r2=sums.r2(weights) or 0.0, l2=chosen)


def fit_factor_regression(
    warm: DataFrame,
    l2: float | Sequence[float] | None,
    seed: int = 21,
    groups: Sequence[int] | None = None,
    scaled: Sequence[bool] | None = None,
) -> FactorRegression:
    """``warm``: (vec array<float>, factors array<float>) for items with both. Ridge on the sums.

    ``groups``: the widths of the input's parts in column order (``cold_inputs``; None = one
    part); ``scaled``: per part, whether its penalty is on standardised columns (None = all).
    ``l2`` None: each part's penalty from ``L2_GRID`` by R² on a seeded ``VALIDATION_SHARE`` of
    the rows (fitted on the rest; both from sums, ``_choose_l2``), then refitted on every row with
    them; a number: that penalty for every part; a sequence: one per part.
    """
    side = _below(seed + 1, VALIDATION_SHARE).cast("int") if l2 is None else None
    by_side = _collect_sums(warm, side)
    return _ridge(by_side.get(0), by_side.get(1), l2, groups, scaled)


def predicted_factors(cold: DataFrame, model: FactorRegression | MlpHead | ColdModel) -> DataFrame:
    """(item_idx, vec) of cold items → (id, features): predicted ALS factors, blocked-top-K ready."""
    predictor = model.model if isinstance(model, ColdModel) else model

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            if pdf.empty:
                continue
            y = predictor.predict(np.stack(pdf["vec"].to_numpy()).astype(np.float32))
            yield pd.DataFrame({"id": pdf["item_idx"].to_numpy(np.int32), "features": list(y.astype(np.float32))})

    return cold.select("item_idx", "vec").mapInPandas(predict, "id int, features array<float>")


@dataclass
class ColdModel:
    """The night's cold-item model and what it achieved on warm products kept out of its fit.

    ``r2``: share of the held-out factors' variance explained (around their own mean); ``cosine``:
    mean cosine of predicted and true factors there (None when nothing was held out).
    ``fit_rows``: warm products the model was fitted on (the ridge is refitted on every warm product
    once measured; the head keeps its fit on the sample); ``heldout_rows``: products measured on.
    """

    kind: str
    model: FactorRegression | MlpHead
    fit_rows: int
    heldout_rows: int
    r2: float | None
    cosine: float | None

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)

    def metrics(self) -> dict[str, float]:
        """The night's metrics: ``cold_factor_r2`` and ``cold_factor_cosine`` (held out), if any."""
        if self.r2 is None or self.cosine is None:
            return {}
        return {"cold_factor_r2": self.r2, "cold_factor_cosine": self.cosine}

    def describe(self) -> str:
        """One line for the night's progress output."""
        if self.r2 is None or self.cosine is None:
            return f"content→ALS {self.kind} fitted on {self.fit_rows} warm products, none held out"
        return (
            f"content→ALS {self.kind}: held-out R2 {self.r2:.3f}, cosine {self.cosine:.3f} on "
            f"{self.heldout_rows} warm products; fitted on {self.fit_rows}"
        )


def _below(seed: int, share: float) -> Column:
    """True for a seeded ``share`` of the rows, by a hash of the content vector (identical vectors
    always on the same side, so a duplicate never grades itself)."""
    bucket = F.abs(F.xxhash64(F.col("vec"), F.lit(seed))) % F.lit(10_000)
    return bucket < F.lit(int(round(share * 10_000)))


def heldout_split(warm: DataFrame, share: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """(fit rows, held-out rows) of ``warm``: ``share`` of them held out by ``_below``."""
    held = _below(seed, share)
    return warm.filter(~held), warm.filter(held)


def heldout_figures(rows: DataFrame, model: FactorRegression | MlpHead) -> tuple[int, float | None, float | None]:
    """(rows, R², mean cosine) of ``model`` on (vec, factors) ``rows``, summed per partition."""

    def sums(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        n, sse, yty, cos = 0, 0.0, 0.0, 0.0
        ysum = None
        for pdf in batches:
            if pdf.empty:
                continue
            x = np.stack(pdf["vec"].to_numpy()).astype(np.float32)
            y = np.stack(pdf["factors"].to_numpy()).astype(np.float64)
            p = model.predict(x).astype(np.float64)
            ysum = y.sum(axis=0) if ysum is None else ysum + y.sum(axis=0)
            n += len(y)
            sse += float(((p - y) ** 2).sum())
            yty += float((y * y).sum())
            norms = np.linalg.norm(p, axis=1) * np.linalg.norm(y, axis=1)
            cos += float(((p * y).sum(axis=1) / np.where(norms > 0, norms, 1.0)).sum())
        if n:
            yield pd.DataFrame({"n": [n], "sse": [sse], "yty": [yty], "cos": [cos], "ysum": [ysum]})

    parts = (
        rows.select("vec", "factors")
        .mapInPandas(sums, "n long, sse double, yty double, cos double, ysum array<double>")
        .collect()
    )
    n = sum(int(p["n"]) for p in parts)
    if n < 2:
        return n, None, None
    ysum = sum(np.asarray(p["ysum"]) for p in parts)
    sst = sum(float(p["yty"]) for p in parts) - float(ysum @ ysum) / n
    sse = sum(float(p["sse"]) for p in parts)
    return n, (1.0 - sse / sst if sst > 0 else None), sum(float(p["cos"]) for p in parts) / n


def ridge_parts(widths: Mapping[str, int], raw: frozenset[str] = RAW_PARTS) -> tuple[list[int], list[bool]]:
    """(groups, scaled) of the ridge for the input parts ``widths`` (``cold_inputs.
    cold_model_inputs``): the widths of the parts with columns, in order, and whether each part's
    penalty is on standardised columns (every part but those of ``raw``)."""
    used = {name: w for name, w in widths.items() if w > 0}
    return list(used.values()), [name not in raw for name in used]


def fit_cold_model(warm: DataFrame, rc: RecommendConfig, widths: Mapping[str, int] | None = None) -> ColdModel:
    """The ``recommend.cold_model`` model on ``warm`` (vec, factors), measured on the held-out
    ``cold_model_holdout`` share (0 = none: no figures). ``widths``: each input part's column
    count (``cold_inputs.cold_model_inputs``), each part with its own ridge penalty, the parts of
    ``RAW_PARTS`` not standardised. See the module docstring."""
    groups, scaled = ridge_parts(widths) if widths is not None else (None, None)
    return fit_cold_model_with(
        warm,
        rc.cold_model,
        l2=rc.regression_l2,
        holdout=rc.cold_model_holdout,
        max_rows=rc.cold_model_max_rows,
        seed=rc.cold_model_seed,
        groups=groups,
        scaled=scaled,
    )


def _fit_ridge_measured(
    warm: DataFrame,
    l2: float | None,
    holdout: float,
    seed: int,
    groups: Sequence[int] | None,
    scaled: Sequence[bool] | None,
) -> ColdModel:
    """The ridge of ``fit_cold_model_with`` from one pass of sums over ``warm``: each row's side is
    held out or not (``holdout``, ``seed``) and, when the penalty is chosen, in the validation
    share or not (``seed + 1``). Penalties are chosen on the fitted side, the model fitted there is
    measured on the held-out rows, and the night's model is the one on every row (the sides' sums
    added: no second pass)."""
    held = _below(seed, holdout).cast("int") * F.lit(2) if holdout > 0 else F.lit(0)
    side = held + (_below(seed + 1, VALIDATION_SHARE).cast("int") if l2 is None else F.lit(0))
    by_side = _collect_sums(warm, side)
    fitted = _total(by_side.get(0), by_side.get(1))
    if holdout <= 0 or fitted is None or fitted.n < MIN_HEAD_ROWS:  # too few to spare any: all rows, no figures
        model = _ridge(
            _total(by_side.get(0), by_side.get(2)), _total(by_side.get(1), by_side.get(3)), l2, groups, scaled
        )
        return ColdModel(
            kind=_ridge_kind(model, l2), model=model, fit_rows=model.rows, heldout_rows=0, r2=None, cosine=None
        )
    measured = _ridge(by_side.get(0), by_side.get(1), l2, groups, scaled)
    n_held, r2, cosine = heldout_figures(warm.filter(_below(seed, holdout)), measured)
    everything = _total(*by_side.values())
    assert everything is not None
    shipped = _ridge(everything, None, measured.l2, groups, scaled)
    return ColdModel(
        kind=_ridge_kind(measured, l2), model=shipped, fit_rows=shipped.rows, heldout_rows=n_held, r2=r2, cosine=cosine
    )


def _ridge_kind(model: FactorRegression, l2: float | None) -> str:
    penalties = "/".join(f"{v:g}" for v in model.l2)
    return f"ridge (l2 {penalties}{'' if l2 is not None else ', chosen on a validation share'})"


def fit_cold_model_with(
    warm: DataFrame,
    kind: str,
    *,
    l2: float | None,
    holdout: float,
    max_rows: int,
    seed: int,
    groups: Sequence[int] | None = None,
    scaled: Sequence[bool] | None = None,
) -> ColdModel:
    """Fit the ``kind`` (``COLD_MODELS``) cold-item model (``fit_cold_model`` with explicit settings).

    ``max_rows`` bounds what the driver collects for the ``mlp`` head (a seeded sample of the fit
    rows, the rest stay on the executors); the ridge never collects rows.
    """
    if kind not in COLD_MODELS:
        raise HybridrecError(f"recommend.cold_model must be one of {', '.join(COLD_MODELS)}, got {kind!r}")
    warm = warm.select("vec", "factors")
    if kind == "ridge":
        return _fit_ridge_measured(warm, l2, holdout, seed, groups, scaled)
    fit_rows, held_rows = heldout_split(warm, holdout, seed) if holdout > 0 else (warm, None)
    n_avail = fit_rows.count()
    if held_rows is not None and n_avail < MIN_HEAD_ROWS:  # too few to spare any: fit on all, no figures
        fit_rows, held_rows, n_avail = warm, None, warm.count()
    if n_avail == 0:
        raise HybridrecError("no product has both an embedding and ALS factors: cannot fit the cold-item model")
    if n_avail < MIN_HEAD_ROWS:
        ridge = _fit_ridge_measured(warm, l2, 0.0, seed, groups, scaled)
        ridge.kind += f" (mlp needs {MIN_HEAD_ROWS} warm products, {n_avail} here)"
        return ridge
    sample = (
        fit_rows if n_avail <= max_rows else fit_rows.sample(fraction=min(1.0, 1.1 * max_rows / n_avail), seed=seed)
    )
    pdf = sample.limit(max_rows).toPandas()  # at most max_rows rows reach the driver
    x = np.stack(pdf["vec"].to_numpy()).astype(np.float32)
    y = np.stack(pdf["factors"].to_numpy()).astype(np.float32)
    head = fit_mlp(x, y, seed=seed)
    n_held, r2, cosine = heldout_figures(held_rows, head) if held_rows is not None else (0, None, None)
    return ColdModel(kind="mlp", model=head, fit_rows=len(pdf), heldout_rows=n_held, r2=r2, cosine=cosine)


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
