"""Benchmark of the cold-item factor models: how well does a product's content predict where its ALS
item factors sit among warm products? (issue 21, item 4.)

    .venv/bin/python bench/bench_factors.py [--catalogs fashion retail] [--seed 42] [--no-keras]

A cold product is scored by users' ALS factors times factors predicted from its content
(``hybrid.cold``). The nightly job used to report the ridge's *in-sample* R²; here every figure is
*held out*: the warm products (ALS factors and a content vector) are split by a seeded 80/20
permutation, every model is fitted on the 80 % (its own choices, e.g. the ridge penalty or early
stopping, on a seeded share of those) and judged on the 20 % it never saw.

Catalogs:

- ``fashion``: the real fashion catalog's content vectors of the content bench
  (``--fashion-work``, default data/bench/content: ``gold.product_embeddings`` of its current
  model, the bench_content.py pipeline) and interactions of the seeded simulator
  (``demo.simulate`` with conf/fashion.yaml's demo settings, 10,000 users; written to
  ``--out-data``, default data/bench/factors, never the user's data/). THE INTERACTIONS ARE
  SIMULATED: an item's popularity is a random Zipf rank independent of its content, and users
  prefer categories and attribute values (lib/hybridrec/demo/simulator.py).
- ``retail``: Online Retail (conf/retail.yaml; real customers' purchases, titles only): its
  pipeline's warehouse (``--retail-data``: bronze.interactions, bronze.products and the text
  model's ``gold.product_embeddings``); ALS is fitted on the events before evaluate.cutoff, as the
  backtest does.

ALS: the project's own ``collab.als.fit_als`` with the catalog config's settings (holdout
evaluation off, as ``evaluation.systems.backtest``).

Inputs compared (all known for a product nobody has bought yet, except ``popularity``):
``fused`` (gold.product_embeddings.fused_emb, what the nightly job feeds the model);
``rich`` = fused + text_emb + image_emb (zeros and a flag when no photo) + the catalog's category
and attribute one-hots (fashion) + the content model's predicted category one-hot + the title's
TF-IDF reduced to 64 dimensions (truncated SVD, seeded); ``category`` one-hot alone (fashion:
articleType; retail: the predicted title-keyword class, the only category there is);
``popularity``: one-hot of the log2 bucket of the product's number of users (not content; the
sanity bound: how much of the factors is popularity).

Models: ``ridge`` (closed form; ``fused l2=1`` is what shipped, the others choose l2 from
0.1..1e5 on a validation share), ``mlp`` (``hybrid.factor_mlp.fit_mlp``, the head that ships:
one ReLU layer, MSE on the raw factors, early stopping), ``mlp dir`` (the same head on
unit-length factors: direction only), ``keras cos`` (a Keras MLP of the same shape with a cosine
loss, for reference), ``mlp >=5`` (trained only on products with at least 5 users), ``knn``
(similarity-weighted mean factors of the 20 most similar training products) and, on retail,
``finetuned text encoder`` ((d): the trained text LSTM with a linear factor head, every layer
trained on the factor objective; ``tfidf`` = the titles' TF-IDF on their 3,000 most common terms).

Figures on the held-out products: ``r2`` (raw factors, variance-weighted over dimensions, around
the held-out mean; left out for models that predict directions only), ``cosine`` (mean cosine of
predicted and true factors), ``score_corr``
(mean over ``--users`` seeded users of the Pearson correlation, across held-out products, of
user factors x predicted vs x true factors: what ranking cold products by predicted factors
recovers), and ``r2`` / ``cosine`` per bucket of the product's number of users.

Writes ``bench/results/factors.json`` (inputs, machine, figures, seconds) and prints the tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from bench_content import load_catalog, machine, tfidf_vectors, work_overrides  # noqa: E402 - after the path set-up

RESULTS = REPO_ROOT / "bench" / "results" / "factors.json"
DEFAULT_FASHION_WORK = REPO_ROOT / "data" / "bench" / "content"
DEFAULT_RETAIL_DATA = REPO_ROOT / "data" / "retail"
DEFAULT_OUT_DATA = REPO_ROOT / "data" / "bench" / "factors"
FASHION_CONFIG = REPO_ROOT / "conf" / "fashion.yaml"
RETAIL_CONFIG = REPO_ROOT / "conf" / "retail.yaml"
ATTRIBUTES = ("gender", "baseColour", "masterCategory", "subCategory", "usage", "season")
BUCKETS = ((1, 1), (2, 4), (5, 19), (20, 99), (100, None))
L2_GRID = (0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5)
SHIPPED_L2 = 1.0
SVD_DIM = 64
TEST_SHARE = 0.2
VAL_SHARE = 0.1


@dataclass
class Catalog:
    """Warm products of one catalog: ALS factors, support and content inputs, row-aligned."""

    name: str
    product_ids: np.ndarray
    factors: np.ndarray  # n x rank
    support: np.ndarray  # distinct users per product before the cutoff
    inputs: dict[str, np.ndarray]
    user_factors: np.ndarray  # a seeded sample of users' ALS factors
    info: dict[str, Any] = field(default_factory=dict)
    tokens: np.ndarray | None = None  # the text features' token ids (fine-tuning), row-aligned
    titles: list[str | None] = field(default_factory=list)  # row-aligned, for the shipped path
    night_categories: list[str | None] = field(default_factory=list)  # what the night's products hold
    model_dir: Path | None = None  # the content model's folder (its ``text`` SavedModel)


# ---- pure helpers --------------------------------------------------------------------------------


def r2(pred: np.ndarray, true: np.ndarray) -> float | None:
    """1 - SSE / SST over all dimensions (SST around ``true``'s mean per dimension)."""
    sst = float(((true - true.mean(axis=0)) ** 2).sum())
    return None if sst <= 0 or len(true) < 2 else 1.0 - float(((pred - true) ** 2).sum()) / sst


def unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def mean_cosine(pred: np.ndarray, true: np.ndarray) -> float | None:
    return float((unit(pred) * unit(true)).sum(axis=1).mean()) if len(true) else None


def score_corr(pred: np.ndarray, true: np.ndarray, users: np.ndarray) -> float | None:
    """Mean over users of the Pearson correlation of u·pred and u·true across products."""
    if len(true) < 3 or not len(users):
        return None
    a, b = users @ pred.T, users @ true.T
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    ok = den > 0
    return float(((a * b).sum(axis=1)[ok] / den[ok]).mean()) if ok.any() else None


def one_hot(values: Sequence[Any]) -> np.ndarray:
    """Columns for each distinct non-empty value (missing values are all-zero rows)."""
    keys = sorted({str(v) for v in values if v is not None and v == v and str(v) != ""})
    index = {k: i for i, k in enumerate(keys)}
    out = np.zeros((len(values), max(1, len(keys))), np.float32)
    for row, v in enumerate(values):
        if v is not None and v == v and str(v) in index:
            out[row, index[str(v)]] = 1.0
    return out


def support_buckets(support: np.ndarray) -> np.ndarray:
    """One-hot of floor(log2(users)) (the popularity baseline's input)."""
    return one_hot(np.floor(np.log2(np.maximum(support, 1))).astype(int).tolist())


def ridge_fit(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Weights of ``[x, 1] @ w ≈ y`` (the intercept unpenalised), as ``cold.fit_factor_regression``."""
    x1 = np.hstack([x, np.ones((len(x), 1), x.dtype)]).astype(np.float64)
    penalty = l2 * np.eye(x1.shape[1])
    penalty[-1, -1] = 0.0
    return np.linalg.solve(x1.T @ x1 + penalty, x1.T @ y.astype(np.float64))


def ridge_predict(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (np.hstack([x, np.ones((len(x), 1), x.dtype)]) @ w).astype(np.float32)


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0).astype(np.float32)
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def ridge_tuned(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
    """l2 from ``L2_GRID`` by validation R² on a seeded ``VAL_SHARE`` of the rows, then refit on all
    (the Gram matrices are summed once: a few thousand TF-IDF columns stay cheap)."""
    order = np.random.default_rng([seed, 3]).permutation(len(x))
    n_val = max(1, int(len(x) * VAL_SHARE))
    val, fit = order[:n_val], order[n_val:]

    def grams(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x1 = np.hstack([x[rows], np.ones((len(rows), 1), x.dtype)]).astype(np.float64)
        return x1.T @ x1, x1.T @ y[rows].astype(np.float64)

    (g_fit, c_fit), (g_val, c_val) = grams(fit), grams(val)

    def solve(g: np.ndarray, c: np.ndarray, l2: float) -> np.ndarray:
        penalty = l2 * np.eye(len(g))
        penalty[-1, -1] = 0.0
        return np.linalg.solve(g + penalty, c)

    scores = {l2: r2(ridge_predict(x[val], solve(g_fit, c_fit, l2)), y[val]) or -np.inf for l2 in L2_GRID}
    best = max(scores, key=lambda k: scores[k])
    return best, solve(g_fit + g_val, c_fit + c_val, best)


def keras_cosine_mlp(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, seed: int, hidden: int = 256) -> np.ndarray:
    """A Keras MLP (one ReLU layer, cosine loss, early stopping on a validation share): predicted
    directions for ``x_test`` (reference for the NumPy head; not shipped)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    xs, xt = standardise(x, x_test)
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(x.shape[1],)),
            tf.keras.layers.Dense(hidden, activation="relu", kernel_regularizer=tf.keras.regularizers.l2(1e-4)),
            tf.keras.layers.Dense(y.shape[1]),
        ]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=tf.keras.losses.CosineSimilarity())
    stop = tf.keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    model.fit(xs, y, batch_size=256, epochs=200, validation_split=VAL_SHARE, callbacks=[stop], verbose=0)
    return model.predict(xt, batch_size=1024, verbose=0)


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int) -> np.ndarray:
    """Mean factors of each query's ``k`` most similar training rows (rows l2-normalised: cosine),
    weighted by the (positive part of the) similarity; the training mean when none is positive."""
    out = np.empty((len(test_x), train_y.shape[1]), np.float32)
    fallback = train_y.mean(axis=0)
    for lo in range(0, len(test_x), 512):
        sims = test_x[lo : lo + 512] @ train_x.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0)
        total = w.sum(axis=1, keepdims=True)
        pred = np.einsum("qk,qkr->qr", w, train_y[top]) / np.where(total > 0, total, 1.0)
        out[lo : lo + 512] = np.where(total > 0, pred, fallback)
    return out


def finetune_text_encoder(
    model_dir: Path,
    tokens: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
    max_epochs: int = 60,
) -> tuple[np.ndarray, int]:
    """(d): the trained text model (``<model_dir>/text``, token ids → its embedding layer) with a
    linear head to the factors, every layer trained on the factor objective (MSE on the raw
    factors scaled by one deviation, early stopping on a validation share of ``train``): predicted
    factors of ``test`` and the epochs kept. The category objective is not kept here: a measurement
    of how far the factor objective alone moves the encoder, not the shipped training."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from hybridrec.models.cnn import EMBEDDING_LAYER

    tf.keras.utils.set_random_seed(seed)
    base = tf.keras.models.load_model(str(model_dir / "text"), compile=False)
    emb = base.get_layer(EMBEDDING_LAYER).output
    out = tf.keras.layers.Dense(y.shape[1], name="factors")(emb)
    model = tf.keras.Model(base.input, out)
    mean, scale = y[train].mean(axis=0), float(y[train].std()) or 1.0
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-4), loss="mse")
    stop = tf.keras.callbacks.EarlyStopping(patience=6, restore_best_weights=True)
    hist = model.fit(
        tokens[train],
        (y[train] - mean) / scale,
        batch_size=64,
        epochs=max_epochs,
        validation_split=VAL_SHARE,
        callbacks=[stop],
        verbose=0,
    )
    best = int(np.argmin(hist.history["val_loss"])) + 1
    return model.predict(tokens[test], batch_size=512, verbose=0) * scale + mean, best


def figures(
    pred: np.ndarray, true: np.ndarray, support: np.ndarray, users: np.ndarray, direction: bool = False
) -> dict[str, Any]:
    """The held-out figures of one model (module docstring); ``direction``: the model predicts
    directions only (its R² on raw factors means nothing and is left out)."""
    raw = not direction
    out: dict[str, Any] = {
        "r2": r2(pred, true) if raw else None,
        "cosine": mean_cosine(pred, true),
        "score_corr": score_corr(pred, true, users),
        "buckets": {},
    }
    five = support >= 5
    out["r2_5plus"] = r2(pred[five], true[five]) if five.sum() > 1 and raw else None
    out["cosine_5plus"] = mean_cosine(pred[five], true[five]) if five.any() else None
    for lo, hi in BUCKETS:
        mask = (support >= lo) & (support <= (hi if hi is not None else np.inf))
        name = f"{lo}" if lo == hi else (f"{lo}+" if hi is None else f"{lo}-{hi}")
        out["buckets"][name] = {
            "n": int(mask.sum()),
            "r2": r2(pred[mask], true[mask]) if mask.sum() > 1 and raw else None,
            "cosine": mean_cosine(pred[mask], true[mask]) if mask.any() else None,
        }
    return out


def evaluate_catalog(
    cat: Catalog, seed: int, keras: bool, finetune: bool, clock: Callable[[str], None]
) -> dict[str, Any]:
    """Every (inputs, model) of the module docstring on one seeded 80/20 split of ``cat``."""
    from hybridrec.hybrid.factor_mlp import fit_mlp

    n = len(cat.product_ids)
    order = np.random.default_rng([seed, 21]).permutation(n)
    n_test = int(round(n * TEST_SHARE))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    y, s, users = cat.factors, cat.support, cat.user_factors
    results: dict[str, Any] = {}

    def record(name: str, pred: np.ndarray, direction: bool = False, **extra: Any) -> None:
        results[name] = {**figures(pred, y[test], s[test], users, direction), **extra}
        f = results[name]
        buckets = " ".join(f"{k}:{fmt(b['r2'])}/{fmt(b['cosine'])}" for k, b in f["buckets"].items())
        print(
            f"  [{cat.name}] {name:<28} r2 {fmt(f['r2'])}  cos {fmt(f['cosine'])}  "
            f"score_corr {fmt(f['score_corr'])}  r2/cos by users {buckets}",
            flush=True,
        )

    record("mean (train mean)", np.tile(y[train].mean(axis=0), (len(test), 1)))

    fused = cat.inputs["fused"]
    w = ridge_fit(fused[train], y[train], SHIPPED_L2)
    in_sample = r2(ridge_predict(fused[train], w), y[train])
    record("ridge fused (shipped, l2=1)", ridge_predict(fused[test], w), in_sample_r2=in_sample)
    for key in ("fused", "rich", "tfidf", "category", "popularity", "category+popularity"):
        x = cat.inputs[key] if key in cat.inputs else np.hstack([cat.inputs["category"], cat.inputs["popularity"]])
        xtr, xte = standardise(x[train], x[test])
        l2, w = ridge_tuned(xtr, y[train], seed)
        record(f"ridge {key}", ridge_predict(xte, w), l2=l2)
    clock(f"{cat.name}_ridge")
    tf_unit = unit(cat.inputs["tfidf"])
    record("knn tfidf (k=20)", knn_predict(tf_unit[train], y[train], tf_unit[test], 20))
    fu_unit = unit(cat.inputs["fused"])
    record("knn fused (k=20)", knn_predict(fu_unit[train], y[train], fu_unit[test], 20))
    clock(f"{cat.name}_knn")
    for key in ("fused", "rich"):
        x = cat.inputs[key]
        head = fit_mlp(x[train], y[train], seed=seed)
        record(f"mlp {key}", head.predict(x[test]), epochs=head.epochs)
        clock(f"{cat.name}_mlp_{key}")
    x = cat.inputs["rich"]
    head = fit_mlp(x[train], unit(y[train]), seed=seed)
    record("mlp dir rich", head.predict(x[test]), direction=True, epochs=head.epochs)
    keep = train[s[train] >= 5]
    head = fit_mlp(x[keep], y[keep], seed=seed)
    record("mlp >=5 rich", head.predict(x[test]), epochs=head.epochs, train_rows=len(keep))
    clock(f"{cat.name}_mlp_variants")
    if keras:
        record("keras cos rich", keras_cosine_mlp(x[train], y[train], x[test], seed), direction=True)
        clock(f"{cat.name}_keras")
    if finetune and cat.tokens is not None and cat.model_dir is not None:
        pred, epochs = finetune_text_encoder(cat.model_dir, cat.tokens, y, train, test, seed)
        record("finetuned text encoder", pred, epochs=epochs)
        clock(f"{cat.name}_finetune")
    return {
        "n_warm_products": n,
        "n_train": len(train),
        "n_test": len(test),
        "rank": int(y.shape[1]),
        "n_users_sampled": len(users),
        "input_dims": {k: int(v.shape[1]) for k, v in cat.inputs.items()},
        "support_quantiles": {str(q): float(np.quantile(s, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)},
        "info": cat.info,
        "models": results,
    }


SHIPPED_INPUTS = (("content",), ("content", "category"), ("content", "text"), ("content", "category", "text"))


def shipped_path(spark: Any, cat: Catalog, seed: int, clock: Callable[[str], None]) -> dict[str, Any]:
    """The nightly job's own cold model (``hybrid.cold_inputs`` + ``hybrid.cold.fit_cold_model_with``,
    Spark) on the catalog's warm products, per ``recommend.cold_inputs`` set: held-out R² and
    cosine on its own seeded 20 % hash split (``cold_model_holdout``; not the permutation above,
    the same share). Vocabularies come from the warm products here (the night: every product).
    Retail's products carry no category (the night's ``category`` column is empty there), so its
    ``category`` part has no columns."""
    from pyspark.sql import functions as F

    from hybridrec.config import RecommendConfig
    from hybridrec.hybrid.cold import RAW_PARTS, fit_cold_model_with, ridge_parts
    from hybridrec.hybrid.cold_inputs import cold_model_inputs

    defaults = RecommendConfig()
    fused = cat.inputs["fused"]
    rows = [
        (i, fused[i].tolist(), cat.factors[i].tolist(), cat.titles[i], cat.night_categories[i])
        for i in range(len(cat.product_ids))
    ]
    frame = spark.createDataFrame(
        rows, "item_idx int, vec array<float>, factors array<float>, title string, category string"
    ).persist()
    docs = frame.select("item_idx", "title", F.lit(None).cast("string").alias("description"), "category")
    out: dict[str, Any] = {}

    def run(
        name: str,
        parts: tuple[str, ...],
        kind: str,
        l2: float | None,
        text_terms: int = defaults.cold_text_terms,
        text_ngrams: int = defaults.cold_text_ngrams,
        text_scaled: bool = False,
    ) -> None:
        vectors, widths = cold_model_inputs(
            frame.select("item_idx", "vec"),
            docs,
            list(parts),
            text_terms=text_terms,
            categories=defaults.cold_categories,
            text_ngrams=text_ngrams,
        )
        groups, scaled = ridge_parts(widths, frozenset() if text_scaled else RAW_PARTS)
        warm = vectors.join(frame.select("item_idx", "factors"), "item_idx").persist()
        started = time.perf_counter()
        model = fit_cold_model_with(
            warm,
            kind,
            l2=l2,
            holdout=defaults.cold_model_holdout,
            max_rows=defaults.cold_model_max_rows,
            seed=seed,
            groups=groups,
            scaled=scaled,
        )
        out[name] = {
            "inputs": list(parts),
            "widths": widths,
            "text": (
                f"{text_terms} terms, {'words' if text_ngrams == 1 else 'words + word pairs'}, "
                f"{'standardised' if text_scaled else 'own scale'}"
                if "text" in parts
                else None
            ),
            "model": model.kind,
            "r2": model.r2,
            "cosine": model.cosine,
            "heldout_rows": model.heldout_rows,
            "fit_rows": model.fit_rows,
            "seconds": round(time.perf_counter() - started, 1),
        }
        warm.unpersist()
        print(
            f"  [{cat.name}] shipped {name:<40} r2 {fmt(model.r2)}  cos {fmt(model.cosine)}  ({model.kind})", flush=True
        )

    full = SHIPPED_INPUTS[-1]
    run("ridge content (l2=1, before)", ("content",), "ridge", 1.0)
    for parts in SHIPPED_INPUTS:
        run(f"ridge {'+'.join(parts)}", parts, "ridge", None)
    # the text part before word pairs, then each change alone
    before = {"text_terms": 1000, "text_ngrams": 1, "text_scaled": True}
    run("ridge content+category+text, 1000 words standardised (before)", full, "ridge", None, **before)
    run("ridge content+category+text, 1000 words", full, "ridge", None, text_terms=1000, text_ngrams=1)
    run("ridge content+category+text, 3000 words", full, "ridge", None, text_ngrams=1)
    run("ridge content+category+text, 1000 terms with pairs", full, "ridge", None, text_terms=1000)
    run("ridge content+category+text, standardised", full, "ridge", None, text_scaled=True)
    run("ridge content+category+text, 5000 terms", full, "ridge", None, text_terms=5000)
    run("mlp content+category+text", full, "mlp", None)
    frame.unpersist()
    clock(f"{cat.name}_shipped")
    return out


def fmt(x: float | None) -> str:
    return "  -  " if x is None else f"{x:.3f}"


# ---- data ----------------------------------------------------------------------------------------


def tfidf_dense(titles: Sequence[str | None], max_terms: int = 3000) -> np.ndarray:
    """Titles' TF-IDF rows (``bench_content.tfidf_vectors``) on the ``max_terms`` terms found in
    most products (at least 2), dense: the bag-of-words input a text encoder trained on the
    factors directly would start from."""
    m = tfidf_vectors(list(titles)).tocsc()
    df = np.diff(m.indptr)
    keep = np.argsort(-df, kind="stable")[:max_terms]
    keep = np.sort(keep[df[keep] >= 2])
    return np.asarray(m[:, keep].todense(), dtype=np.float32)


def tfidf_svd(titles: Sequence[str | None], seed: int) -> np.ndarray:
    """Titles' TF-IDF (``bench_content.tfidf_vectors``, the project's tokenizer) reduced by a seeded
    truncated SVD to ``SVD_DIM`` dimensions."""
    from sklearn.decomposition import TruncatedSVD

    m = tfidf_vectors(list(titles))
    k = min(SVD_DIM, m.shape[1] - 1)
    return TruncatedSVD(n_components=k, random_state=seed).fit_transform(m).astype(np.float32)


def matrix(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(rows, present) of a column of arrays or None (missing rows are zeros)."""
    present = values.map(lambda v: v is not None and len(v) > 0).to_numpy()
    dim = len(values[present].iloc[0]) if present.any() else 1
    out = np.zeros((len(values), dim), np.float32)
    if present.any():
        out[present] = np.stack([np.asarray(v, np.float32) for v in values[present]])
    return out, present


def als_frames(spark: Any, cfg: Any, interactions: Any, cutoff: dt.datetime, products: Any) -> dict[str, Any]:
    """The project's ALS fit before ``cutoff``: item factors, a user-factor sample, support."""
    import dataclasses

    from pyspark.sql import functions as F

    from hybridrec.collab.als import fit_als

    fit_cfg = dataclasses.replace(cfg, als=dataclasses.replace(cfg.als, evaluate=False))
    fit = fit_als(spark, fit_cfg, interactions, cutoff, products=products)
    try:
        items = fit.item_factors.select("product_id", "factors").toPandas()
        users = fit.user_factors.select("user_id", "factors").toPandas()
        support = (
            interactions.filter(F.col("ts") < F.lit(cutoff))
            .groupBy("product_id")
            .agg(F.countDistinct("user_id").alias("n_users"))
            .toPandas()
        )
        return {"items": items, "users": users, "support": support, "rank": fit.params.rank, "counts": fit.counts}
    finally:
        fit.release()


def assemble(
    name: str,
    content: pd.DataFrame,
    als: dict[str, Any],
    category: Sequence[Any],
    extra_onehots: list[np.ndarray],
    n_users: int,
    seed: int,
    night_category: bool = True,
) -> Catalog:
    """Row-align content (one row per product) with the ALS factors; build the input sets."""
    items = als["items"].merge(als["support"], on="product_id", how="left")
    df = content.merge(items, on="product_id", how="inner")
    df = df[df["fused_emb"].map(lambda v: v is not None and len(v) > 0)].reset_index(drop=True)
    keep = content["product_id"].isin(df["product_id"]).to_numpy()
    pos = pd.Series(np.arange(keep.sum()), index=content["product_id"][keep]).reindex(df["product_id"]).to_numpy()
    fused, _ = matrix(df["fused_emb"])
    text, _ = matrix(df["text_emb"])
    image, has_image = matrix(df["image_emb"])
    aligned = list(np.asarray(category, dtype=object)[keep][pos])
    cat_oh = one_hot(aligned)
    pred_oh = one_hot(df["predicted_category"].tolist())
    svd = tfidf_svd(df["title"].tolist(), seed)
    extras = [e[keep][pos] for e in extra_onehots]
    rich = np.hstack([fused, text, image, has_image[:, None].astype(np.float32), cat_oh, pred_oh, svd, *extras])
    support = df["n_users"].fillna(0).to_numpy(np.int64)
    rng = np.random.default_rng([seed, 5])
    users = np.stack(als["users"]["factors"].map(lambda v: np.asarray(v, np.float32)).to_numpy())
    users = users[np.sort(rng.choice(len(users), size=min(n_users, len(users)), replace=False))]
    return Catalog(
        name=name,
        product_ids=df["product_id"].to_numpy(),
        factors=np.stack(df["factors"].map(lambda v: np.asarray(v, np.float32)).to_numpy()),
        support=support,
        inputs={
            "fused": fused,
            "rich": rich,
            "tfidf": tfidf_dense(df["title"].tolist()),
            "category": cat_oh,
            "popularity": support_buckets(support),
        },
        user_factors=users,
        info={"als_rank": als["rank"], "als_counts": als["counts"], "with_image": int(has_image.sum())},
        titles=df["title"].tolist(),
        night_categories=aligned if night_category else [None] * len(df),
    )


def simulated_fashion_events(cfg: Any, out: Path) -> tuple[pd.DataFrame, str, pd.DataFrame, Path, dt.datetime]:
    """The fashion styles (and their id column), the seeded simulator's events with ``cfg.demo``'s
    settings (kept in ``out`` and read back on the next run: the same settings give the same
    events), that file, and the cutoff right after the simulated window."""
    from hybridrec.demo.catalog import window
    from hybridrec.demo.raw_files import read_fashion_styles
    from hybridrec.demo.simulator import simulate

    styles, id_col, cat_col = read_fashion_styles(Path(cfg.demo.fashion_path), cfg)
    events_file = out / f"fashion_events_seed{cfg.demo.seed}_users{cfg.demo.n_users}.parquet"
    if events_file.is_file():
        events = pd.read_parquet(events_file)
    else:
        attributes = list(cfg.demo.preference_attributes)
        sim = simulate(styles, cfg.demo, attributes, id_col=id_col, category_col=cat_col, listed_at_col=None)
        events = sim.events
        out.mkdir(parents=True, exist_ok=True)
        events.to_parquet(events_file, index=False)
    _, end = window(cfg.demo)
    cutoff = dt.datetime.fromtimestamp(end + 1, dt.UTC).replace(tzinfo=None)
    return styles, id_col, events, events_file, cutoff


def fashion_catalog(spark: Any, args: argparse.Namespace, clock: Callable[[str], None]) -> Catalog:
    """Fashion content vectors (content bench) + seeded simulated shoppers (module docstring)."""
    from hybridrec.config import load_config
    from hybridrec.demo.interactions import interactions_frame
    from hybridrec.models.training import current_version

    work = args.fashion_work.resolve()
    cfg = load_config(FASHION_CONFIG, [*work_overrides(work), "spark.ui_enabled=false", *args.overrides])
    version = current_version(cfg)
    content = load_catalog(spark, cfg, version)
    preds = (
        spark.read.format("delta")
        .load(str(Path(cfg.paths.warehouse) / "gold" / "product_embeddings"))
        .filter(f"model_version = '{version}'")
        .select("product_id", "predicted_category")
        .toPandas()
    )
    content = content.merge(preds, on="product_id", how="left")
    clock("fashion_content")
    styles, id_col, events, events_file, cutoff = simulated_fashion_events(cfg, args.out_data.resolve())
    clock("fashion_simulate")
    interactions = interactions_frame(spark, events, cfg.interactions.event_weights)
    products = spark.createDataFrame(styles[[id_col]].rename(columns={id_col: "product_id"}).astype(str))
    als = als_frames(spark, cfg, interactions, cutoff, products)
    clock("fashion_als")
    attrs = [one_hot(content[a].tolist()) for a in ATTRIBUTES]
    cat = assemble("fashion", content, als, content["articleType"].tolist(), attrs, args.users, args.seed)
    cat.info.update(
        {
            "content_work": str(work),
            "content_model_version": version,
            "events": len(events),
            "simulated_users": cfg.demo.n_users,
            "demo_seed": cfg.demo.seed,
            "events_file": str(events_file),
            "cutoff": cutoff.isoformat(),
        }
    )
    clock("fashion_assemble")
    return cat


def retail_catalog(spark: Any, args: argparse.Namespace, clock: Callable[[str], None]) -> Catalog:
    """Online Retail: the pipeline's warehouse, ALS before evaluate.cutoff (module docstring)."""
    from hybridrec.config import load_config
    from hybridrec.models.training import current_version
    from hybridrec.tables import INTERACTIONS, PRODUCT_EMBEDDINGS, PRODUCTS, require_table

    data = args.retail_data.resolve()
    paths = [f"paths.{k}={data / k}" for k in ("warehouse", "features", "models", "checkpoints")]
    cfg = load_config(RETAIL_CONFIG, [*paths, "spark.ui_enabled=false", *args.overrides])
    version = current_version(cfg)
    products = require_table(spark, cfg, PRODUCTS, "bench_factors")
    vectors = (
        require_table(spark, cfg, PRODUCT_EMBEDDINGS, "bench_factors")
        .filter(f"model_version = '{version}'")
        .select("product_id", "image_emb", "text_emb", "fused_emb", "predicted_category")
    )
    content = products.select("product_id", "title").join(vectors, "product_id", "left").toPandas()
    clock("retail_content")
    interactions = require_table(spark, cfg, INTERACTIONS, "bench_factors")
    cutoff = dt.datetime.fromisoformat(cfg.evaluate.cutoff)
    als = als_frames(spark, cfg, interactions, cutoff, products.select("product_id"))
    clock("retail_als")
    cat = assemble(
        "retail", content, als, content["predicted_category"].tolist(), [], args.users, args.seed, night_category=False
    )
    text = pd.read_parquet(Path(cfg.paths.features) / "text", columns=["product_id", "token_ids"])
    by_id = dict(zip(text["product_id"], text["token_ids"], strict=True))
    if all(p in by_id for p in cat.product_ids):
        cat.tokens = np.stack([np.asarray(by_id[p], np.int32) for p in cat.product_ids])
        cat.model_dir = Path(cfg.paths.models) / version
    cat.info.update({"data": str(data), "content_model_version": version, "cutoff": cutoff.isoformat()})
    clock("retail_assemble")
    return cat


def summary_tables(result: dict[str, Any]) -> str:
    lines = []
    for name, res in result["catalogs"].items():
        lines += [
            f"\n### {name}: {res['n_warm_products']} warm products ({res['n_test']} held out), "
            f"ALS rank {res['rank']}\n",
            "| model | inputs | R² | cosine | score corr | R² (5+ users) | cosine (5+ users) |",
            "|---|---|---|---|---|---|---|",
        ]
        for model, f in res.get("models", {}).items():
            kind, _, inputs = model.partition(" ")
            lines.append(
                f"| {kind} | {inputs} | {fmt(f['r2'])} | {fmt(f['cosine'])} | "
                f"{fmt(f['score_corr'])} | {fmt(f['r2_5plus'])} | {fmt(f['cosine_5plus'])} |"
            )
        lines += [
            f"\n{name}, the nightly job's own cold model (Spark, its 20 % hash hold-out):\n",
            "| model | inputs (columns) | R² | cosine |",
            "|---|---|---|---|",
        ]
        for model, f in res.get("shipped", {}).items():
            widths = " + ".join(f"{k} {v}" for k, v in f["widths"].items())
            lines.append(f"| {model} | {widths} | {fmt(f['r2'])} | {fmt(f['cosine'])} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalogs", nargs="+", default=["fashion", "retail"], choices=["fashion", "retail"])
    parser.add_argument("--fashion-work", type=Path, default=DEFAULT_FASHION_WORK)
    parser.add_argument("--retail-data", type=Path, default=DEFAULT_RETAIL_DATA)
    parser.add_argument("--out-data", type=Path, default=DEFAULT_OUT_DATA, help="where the simulated events go")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--users", type=int, default=2000, help="users sampled for score_corr")
    parser.add_argument("--no-keras", dest="keras", action="store_false")
    parser.add_argument("--no-finetune", dest="finetune", action="store_false", help="skip (d) (retail only)")
    parser.add_argument("--shipped-only", action="store_true", help="only the nightly job's own cold model")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from hybridrec.config import load_config
    from hybridrec.spark import build_spark

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    last = [started]

    def clock(stage: str) -> None:
        now = time.perf_counter()
        seconds[stage] = round(now - last[0], 1)
        last[0] = now
        print(f"bench_factors: [{stage}] {seconds[stage]}s", flush=True)

    spark = build_spark(load_config(RETAIL_CONFIG, ["spark.ui_enabled=false", "spark.driver_memory=6g"]).spark)
    catalogs: dict[str, Any] = {}
    try:
        loaded = []
        shipped: dict[str, Any] = {}
        for name in args.catalogs:
            cat = (fashion_catalog if name == "fashion" else retail_catalog)(spark, args, clock)
            loaded.append(cat)
            shipped[cat.name] = shipped_path(spark, cat, args.seed, clock)
    finally:
        spark.stop()
    earlier = json.loads(args.out.read_text(encoding="utf-8")) if args.shipped_only and args.out.is_file() else {}
    for cat in loaded:
        if args.shipped_only:  # keep the last full run's figures of every other model
            catalogs[cat.name] = earlier.get("catalogs", {}).get(cat.name, {"n_warm_products": len(cat.product_ids)})
        else:
            catalogs[cat.name] = evaluate_catalog(cat, args.seed, args.keras, args.finetune, clock)
        catalogs[cat.name]["shipped"] = shipped[cat.name]
        catalogs[cat.name]["shipped_date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = {
        "benchmark": "factors",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notes": (
            "Held-out prediction of ALS item factors from content (issue 21 item 4). Fashion interactions are "
            "SIMULATED (seeded simulator: item popularity independent of content); retail are real purchases."
        ),
        "inputs": {
            "catalogs": args.catalogs,
            "seed": args.seed,
            "test_share": TEST_SHARE,
            "val_share": VAL_SHARE,
            "l2_grid": list(L2_GRID),
            "svd_dim": SVD_DIM,
            "users_for_score_corr": args.users,
            "overrides": args.overrides,
        },
        "machine": machine(),
        "catalogs": catalogs,
        "seconds": {**seconds, "total": round(time.perf_counter() - started, 1)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(summary_tables(result))
    print(f"\nbench_factors: wrote {args.out} in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
