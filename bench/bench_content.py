"""Benchmark of the content vectors on the real fashion catalog: do a new product's nearest
neighbours share its attributes, and how robust is the image classifier to photos framed
differently? (issue 24, deliverable 5: the baseline before any change to the content models.)

    .venv/bin/python bench/bench_content.py [--config conf/fashion.yaml] [--work data/bench/content]
                                            [--sample N] [--seed 42] [--no-pipeline]

Pipeline: the bench works in a folder of its own (``--work``, every ``paths.*`` of the config
pointed under it with ``--set`` overrides, interactions off), so it never touches the user's data/.
When that folder has no trained model (``<work>/models/current.json``) it runs ingest, preprocess
and train there with the demo's training settings (scripts/demo.sh, full profile: photos at 32 px,
3 epochs; several minutes on 2 cores); ``--no-pipeline`` stops with the commands instead.

Neighbours: the products of the test split (``hybridrec.splits``: no model trained on them) are the
queries, the "new products": all of them (4,180 on the fashion catalog), or a seeded sample of
``--sample``. Their top ``--k`` neighbours
by cosine are searched among all other products (train + val splits) with

- ``fused``: ``gold.product_embeddings.fused_emb`` (what the recommender compares products with)
- ``text``: ``text_emb`` alone; ``image``: ``image_emb`` alone (queries and catalog with a photo)
- ``tfidf``: the baseline, TF-IDF of the title (the project's tokenizer, smoothed idf, l2 rows),
  computed here in the same run with scipy
- ``tfidf_info``: the same with each term's idf times its informativeness about the labels of
  ``--lexical-attributes`` (``recommend.lexical_attributes``; hybrid.lexical), counted on the
  searched products only; ``fused+tfidf w`` / ``fused+tfidf_info w``: the blends the similar-items
  lists use at ``recommend.similar_lexical_weight = w``
- ``shared+tfidf_info w`` (the last lexical method): the same blend with ``recommend.
  similar_mixed_pairs: text``, what the night ships: a product with a photo and one without are
  compared by their text vectors instead of the fused ones (``similar.nearest_on_shared``);
  ``... doubt``: each query's own weight ``w + (1 - w) * (1 - p)``, ``p`` the probability of its
  predicted type (``recommend.similar_lexical_doubt``); ``... vote{k} +{b}``: the night's candidate
  lists (the query's ``similar_top_m`` best by the content side and by the lexical cosine), whose
  ``k`` best vote for their catalog type, the candidates of the winner gaining ``b``
  (``recommend.similar_type_vote`` / ``similar_type_bonus``, ``VotedShared``)

``--query-split val`` searches the validation-split products among the train products alone: the
place to choose a setting before the test split is looked at.

Figures per method: precision@k of the same articleType (the catalog's category), gender,
baseColour, masterCategory, subCategory, usage and season (``ceiling``: the best any method could
reach, min(k, searched products with the query's value) / k), overall and split by whether the query's
articleType is a class the classifier learned (``labels.json`` of the model; classes with too few
photos are "unknown"); chance = the share of catalog pairs with the same value; the share of
text-only products (no image vector) among the neighbours against their share of the searched
catalog, for queries with and without a photo.

The night's own lists: the same figures for the lists the nightly job's Spark code writes to
``gold.similar_items`` (``scoring.similar_products``, the config's settings), per variant of
``NIGHT_VARIANTS`` (``recommend.similar_exact_pairs``: a pair missing from one candidate list scored
with its exact cosine there, or with that list's lowest value; the type vote off), with the seconds
of the whole catalog's blend over the cached candidate lists. The numpy methods above score every
candidate with exact cosines; these say what the night's lists actually hold (neighbours among
every other product, as the night searches).

Image robustness: the image CNN's accuracy on the test split's photos of learned classes, decoded
by the project's own path (``features.images.load_image``, as preprocess and the nightly job do),
as they are and shifted: stretched to 3:4 (225x300, the source's frame), padded with a white border,
re-compressed as JPEG at low quality.

Writes ``bench/results/content.json`` (inputs, machine, tables, seconds per stage) and prints the
tables in markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from machine_info import host

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))

RESULTS = REPO_ROOT / "bench" / "results" / "content.json"
NOTE = (
    "The shipped content models (issue 24): classifier penultimate layers (CNN on photos, LSTM on "
    "titles, fused) with the catalog's attribute heads (features.label_heads), with the demo's "
    "training settings."
)
PROTOCOL = (
    "Queries are test-split products (never trained on); neighbours are searched among the train and "
    "val products (with inputs.query_split val: validation-split products among the train products). "
    "TF-IDF idf is counted on every title (no labels involved); 'tfidf_info' multiplies "
    "each term's idf by how well it predicts inputs.lexical_attributes, counted on the searched "
    "products' labels only (hybrid.lexical, informative terms); 'fused+tfidf w' ranks by (1 - w) * "
    "fused cosine + w * TF-IDF cosine (likewise fused+tfidf_info); 'shared+tfidf_info w' the same with "
    "the text-vector cosine in place of the fused one between a product with a photo and one without "
    "(recommend.similar_mixed_pairs: text, what the night ships); '_tail' methods count each of the "
    "title's last inputs.lexical_tail.tokens words inputs.lexical_tail.weight times in the term frequency "
    "(recommend.lexical_tail_weight); '... doubt' gives each query its own weight w + (1 - w) * (1 - p), "
    "p the probability of its predicted type (recommend.similar_lexical_doubt); '... vote{k} +{b}' "
    "takes the union of the query's similar_top_m best by the content side and by the lexical cosine, "
    "lets its k best by the blend vote (score-weighted) for their catalog articleType and adds b to the "
    "candidates of the winner (recommend.similar_type_vote / similar_type_bonus). "
    "never_learned_type_interval: 95 % bootstrap interval of the never-learned same-type precision. "
    "night_similar_items: the nightly job's own Spark code (scoring.similar_products, the config's recommend "
    "settings with each variant's over them) on the same warehouse and models, no interactions, neighbours "
    "among every other product (the night's catalog); the same query products, those with a full top k; "
    "seconds: the whole catalog's blend (exact pair cosines, type vote, top similar_top_m) over the content and "
    "lexical lists, both computed and cached before any clock. "
    "Chance = share of searched-catalog "
    "pairs with the same value. Image robustness 'as_decoded' should equal the image model's test accuracy in "
    "inputs.model_test_accuracy (the same photos through the same decode path)."
)
DEFAULT_CONFIG = REPO_ROOT / "conf" / "fashion.yaml"
DEFAULT_WORK = REPO_ROOT / "data" / "bench" / "content"
# The demo's training settings (scripts/demo.sh, PROFILE=full): what "default training" means here.
PREP_SET = ("features.image_size=32",)
TRAIN_SET = ("train.epochs=3",)
TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "image_model", "image_embedding_dim", "text_embedding_dim")
TRAINING_KEYS += ("lstm_units", "fusion_epochs", "seed")
PATH_KEYS = ("warehouse", "features", "models", "raw", "checkpoints", "report")
ATTRIBUTES = ("articleType", "gender", "baseColour", "masterCategory", "subCategory", "usage", "season")
TABLE_ATTRIBUTES = ("articleType", "gender", "baseColour")  # the printed summary's columns
METHODS = ("fused", "text", "image", "tfidf")
# Lexical blends: cosine (1 - w) * fused + w * tfidf, what recommend.similar_lexical_weight = w gives
# the similar-items lists (hybrid.lexical); measured side by side to choose that default.
BLEND_WEIGHTS = (0.25, 0.5, 0.75)
# (recommend.similar_type_vote, similar_type_bonus) pairs measured beside the shipped blend; the
# config's own pair is added when missing.
TYPE_VOTES = ((3, 0.1), (3, 0.5), (5, 0.5))
# The night's own similar-items lists (night_similar_lists): recommend settings over the config's.
NIGHT_VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("list fill", {"similar_exact_pairs": False}),
    ("exact pairs", {"similar_exact_pairs": True}),
    ("exact pairs, no vote", {"similar_exact_pairs": True, "similar_type_vote": 0}),
)
SHIFTS = ("as_decoded", "stretched_3x4", "squashed_4x3", "padded", "jpeg_q15")
JPEG_QUALITY = 15
PAD_SHARE = 0.25  # white border on each side, as a share of the photo's side


# ---- pure helpers --------------------------------------------------------------------------------


def work_overrides(work: Path) -> list[str]:
    """``--set`` overrides that put every output of the pipeline under ``work`` and ingest the
    catalog only (the content vectors need no interactions)."""
    return [f"paths.{key}={work / key}" for key in PATH_KEYS] + ["interactions.path=null"]


def l2_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so a dot product is the cosine."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def top_k(
    queries: np.ndarray | sparse.spmatrix,
    catalog: np.ndarray | sparse.spmatrix,
    k: int,
    batch: int = 256,
) -> np.ndarray:
    """Row indices into ``catalog`` of each query's ``k`` highest dot products, best first (ties:
    the lower index). Rows are expected l2-normalised (then it is the cosine); dense or sparse."""
    cat_t = catalog.T.tocsr() if sparse.issparse(catalog) else np.asarray(catalog).T

    def scores(rows: slice) -> np.ndarray:
        block = queries[rows] @ cat_t
        return block.toarray() if sparse.issparse(block) else np.asarray(block)

    return top_k_of(scores, queries.shape[0], catalog.shape[0], k, batch)


def top_k_of(
    scores: Callable[[slice], np.ndarray], n_queries: int, n_catalog: int, k: int, batch: int = 256
) -> np.ndarray:
    """``top_k`` over any score: ``scores(rows)`` gives the (queries in ``rows``) x catalog block."""
    k = min(k, n_catalog)
    out = np.empty((n_queries, k), dtype=np.int64)
    for lo in range(0, n_queries, batch):
        block = scores(slice(lo, lo + batch))
        part = (
            np.argpartition(-block, k - 1, axis=1)[:, :k]
            if k < block.shape[1]
            else np.tile(np.arange(block.shape[1]), (block.shape[0], 1))
        )
        picked = np.take_along_axis(block, part, axis=1)
        order = np.lexsort((part, -picked), axis=1)
        out[lo : lo + batch] = np.take_along_axis(part, order, axis=1)
    return out


@dataclass
class SharedBlend:
    """The night's similar-items score with ``recommend.similar_mixed_pairs: text``: ``(1 - w) *
    content + w * lexical`` cosine, where content is the fused cosine for two products on the same
    side (both with a photo or both without) and the text-vector cosine across the sides
    (``similar.nearest_on_shared``). ``weight``: one for every query, or one per row (the query's
    own, as ``recommend.similar_lexical_doubt`` gives: ``doubt_weights``)."""

    fused: np.ndarray  # l2 rows
    text: np.ndarray  # l2 rows, zero where no text vector
    photo: np.ndarray  # bool per row
    lexical: sparse.csr_matrix  # l2 rows
    weight: float | np.ndarray

    def top_k(self, queries: np.ndarray, catalog: np.ndarray, k: int) -> np.ndarray:
        """Positions in ``catalog`` (row indices) of each query's ``k`` best, as ``top_k``."""
        lex_t = self.lexical[catalog].T.tocsr()

        def scores(rows: slice) -> np.ndarray:
            q = queries[rows]
            mixed = self.photo[q][:, None] != self.photo[catalog][None, :]
            content = np.where(mixed, self.text[q] @ self.text[catalog].T, self.fused[q] @ self.fused[catalog].T)
            w = self.weight if np.isscalar(self.weight) else np.asarray(self.weight)[q][:, None]
            return self.mix(w, content, (self.lexical[q] @ lex_t).toarray())

        return top_k_of(scores, len(queries), len(catalog), k)

    def pair_scores(self, query: int, rows: np.ndarray) -> np.ndarray:
        """The blend of one ``query`` with each of ``rows`` (catalog row indices): what ``top_k``
        ranks by, for a given candidate set."""
        mixed = self.photo[query] != self.photo[rows]
        content = np.where(mixed, self.text[rows] @ self.text[query], self.fused[rows] @ self.fused[query])
        w = self.weight if np.isscalar(self.weight) else float(np.asarray(self.weight)[query])
        return self.mix(w, content, (self.lexical[rows] @ self.lexical[query].T).toarray().ravel())

    @staticmethod
    def mix(weight: Any, content: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        """``(1 - weight) * content + weight * lexical``: the content side of similar items."""
        return (1.0 - weight) * content + weight * lexical


def tfidf_vectors(
    titles: Sequence[str | None],
    labels: dict[str, np.ndarray] | None = None,
    labelled: np.ndarray | None = None,
    tail_weight: float = 1.0,
    tail_tokens: int = 0,
) -> sparse.csr_matrix:
    """TF-IDF rows of the titles: the project's tokenizer (``features.text``), raw counts, smoothed
    idf ``ln((1 + n) / (1 + df)) + 1``, l2-normalised rows (a title without tokens is a zero row).

    With ``labels`` ({attribute: value per title, None/NaN/"" = none}), each term's idf is
    multiplied by ``informative_term_weights`` counted on the rows where ``labelled`` is True (all
    rows when None): the nightly's ``recommend.lexical_attributes`` weighting (hybrid.lexical).
    ``tail_weight``: each of the title's last ``tail_tokens`` words counts that many times in the
    term frequency (``recommend.lexical_tail_weight``); the document frequency still counts titles."""
    from hybridrec.features.text import text_tokens

    index: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    for i, title in enumerate(titles):
        tokens = text_tokens(title, None)
        tail_from = len(tokens) - tail_tokens
        for position, token in enumerate(tokens):
            rows.append(i)
            cols.append(index.setdefault(token, len(index)))
            values.append(tail_weight if position >= tail_from else 1.0)
    counts = sparse.csr_matrix(
        (np.asarray(values, dtype=np.float64), (rows, cols)), shape=(len(titles), max(len(index), 1))
    )
    counts.sum_duplicates()
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log((1.0 + len(titles)) / (1.0 + df)) + 1.0
    if labels:
        mask = np.ones(len(titles), bool) if labelled is None else np.asarray(labelled, bool)
        idf = idf * informative_term_weights(counts, labels, mask)
    weighted = counts @ sparse.diags(idf)
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
    return sparse.csr_matrix(sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ weighted)


def informative_term_weights(
    counts: sparse.csr_matrix, labels: dict[str, np.ndarray], labelled: np.ndarray
) -> np.ndarray:
    """Per term (column of ``counts``): the largest over the attributes of ``1 - H(value | term) /
    ln K``, counted on the ``labelled`` rows holding the term, ``PSEUDO_PRODUCTS`` pseudo-products
    spread over the values; terms on no labelled row get the median of the others (all 1 when no attribute has two
    values). The numpy twin of ``hybrid.lexical.informative_term_weights``."""
    from hybridrec.hybrid import lexical

    present = (counts > 0).astype(np.float64).tocsc()
    info = np.full(counts.shape[1], -np.inf)
    for values in labels.values():
        have = labelled & np.array([not _missing(v) for v in values])
        codes, uniq = pd.factorize(pd.Series(values[have], dtype=object).astype(str))
        k = len(uniq)
        if k < 2:
            continue
        rows = np.flatnonzero(have)
        onehot = sparse.csr_matrix((np.ones(len(rows)), (rows, codes)), shape=(counts.shape[0], k))
        per_value = np.asarray((present.T @ onehot).todense())  # terms x values
        total = per_value.sum(axis=1, keepdims=True)
        p = (per_value + lexical.PSEUDO_PRODUCTS / k) / (total + lexical.PSEUDO_PRODUCTS)
        entropy = -(p * np.log(p)).sum(axis=1)
        seen = total.ravel() > 0
        info[seen] = np.maximum(info[seen], 1.0 - entropy[seen] / np.log(k))
    known = np.isfinite(info)
    if not known.any():
        return np.ones(counts.shape[1])
    ordered = np.sort(info[known])
    info[~known] = ordered[int(np.ceil(0.5 * len(ordered))) - 1]  # Spark's percentile_approx median
    return info


def precision_same(query_values: Sequence[Any], neighbour_values: np.ndarray) -> float | None:
    """Mean over queries of the share of their neighbours with the query's value; queries and
    neighbours without a value (None/NaN/"") count as not matching, queries without one are left out.
    ``neighbour_values``: (queries, k) object array. None when no query has a value."""
    shares = []
    for value, row in zip(query_values, neighbour_values, strict=True):
        if _missing(value):
            continue
        shares.append(float(np.mean([v == value for v in row])) if len(row) else 0.0)
    return float(np.mean(shares)) if shares else None


def precision_ceiling(query_values: Sequence[Any], catalog_values: Sequence[Any], k: int) -> float | None:
    """The best precision_same any method could reach: per query with a value, min(k, searched
    products with that value) / k, averaged. None when no query has a value."""
    counts = pd.Series([v for v in catalog_values if not _missing(v)], dtype=object).value_counts()
    shares = [min(k, int(counts.get(v, 0))) / k for v in query_values if not _missing(v)]
    return float(np.mean(shares)) if shares else None


def chance_same(values: Sequence[Any]) -> float | None:
    """Share of (unordered, distinct) pairs of products with the same value, over the products that
    have one: what a random neighbour would score."""
    present = pd.Series([v for v in values if not _missing(v)], dtype=object)
    n = len(present)
    if n < 2:
        return None
    counts = present.value_counts().to_numpy(dtype=np.float64)
    return float(((counts * (counts - 1)).sum()) / (n * (n - 1)))


def bench_column(attribute: str) -> str:
    """The catalog frame's column of a ``recommend.lexical_attributes`` name (category = articleType)."""
    return "articleType" if attribute == "category" else attribute


def type_vote(pool: np.ndarray, scores: np.ndarray, types: np.ndarray, k: int, bonus: float) -> np.ndarray:
    """``scores`` of one product's candidates ``pool`` (catalog rows) with ``bonus`` added to those
    whose type (``types[pool]``) the ``k`` best (score descending, ties by the lower row) vote for,
    each vote weighing its score (ties by the lower type name); candidates without a type (missing
    or blank) neither vote nor gain. The numpy twin of ``similar.type_vote`` (``recommend.similar_type_vote``)."""
    out = np.asarray(scores, dtype=np.float64).copy()
    if k < 1 or bonus <= 0 or len(pool) == 0:
        return out
    labels = [None if _missing(types[row]) or not str(types[row]).strip() else str(types[row]) for row in pool]
    best = np.lexsort((pool, -out))[:k]
    votes: dict[str, float] = {}
    for position in best:
        if labels[position] is not None:
            votes[labels[position]] = votes.get(labels[position], 0.0) + float(out[position])
    if not votes:
        return out
    winner = min(votes, key=lambda t: (-votes[t], t))
    return out + bonus * np.array([label == winner for label in labels])


@dataclass
class VotedShared:
    """What the night ships with ``recommend.similar_type_vote``: each query's candidates are the
    union of its ``depth`` best by the content side alone (``SharedBlend`` at weight 0: fused on the
    same side, text across) and its ``depth`` best by the lexical cosine (the night's two lists of
    ``similar_top_m``), scored by ``blend`` with exact cosines (as the night with
    ``recommend.similar_exact_pairs``; the lexical one uncapped, where the night leaves the terms of
    more than ``lexical_max_df`` products out), then ``type_vote`` over the catalog's types."""

    blend: SharedBlend
    types: np.ndarray  # the catalog's type per row (the query's own is never read)
    depth: int
    vote: int
    bonus: float

    def top_k(self, queries: np.ndarray, catalog: np.ndarray, k: int) -> np.ndarray:
        b = self.blend
        content = SharedBlend(b.fused, b.text, b.photo, b.lexical, 0.0).top_k(queries, catalog, self.depth)
        lexical = top_k(b.lexical[queries], b.lexical[catalog], self.depth)
        out = np.empty((len(queries), min(k, len(catalog))), dtype=np.int64)
        for j, q in enumerate(queries):
            pos = np.unique(np.concatenate([content[j], lexical[j]]))
            rows = catalog[pos]
            score = type_vote(rows, b.pair_scores(q, rows), self.types, self.vote, self.bonus)
            picked = pos[np.lexsort((pos, -score))][: out.shape[1]]
            if len(picked) < out.shape[1]:
                raise ValueError(f"type vote: {len(picked)} candidates for a top {k}; depth {self.depth} is too small")
            out[j] = picked
        return out


def bootstrap_interval(values: np.ndarray, seed: int, draws: int = 2000) -> list[float] | None:
    """The 95 % percentile interval of the mean of ``values`` over ``draws`` seeded resamples."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def blend_rows(dense: np.ndarray, lexical: sparse.spmatrix, weight: float) -> sparse.csr_matrix:
    """Rows whose dot products are ``(1 - weight) * dense·dense + weight * lexical·lexical``."""
    left = sparse.csr_matrix(np.sqrt(1.0 - weight) * np.asarray(dense, dtype=np.float64))
    return sparse.hstack([left, np.sqrt(weight) * lexical], format="csr")


def blend_name(weight: float, lexical: str = "tfidf") -> str:
    return f"fused+{lexical} {weight:g}"


def doubt_weights(weight: float, type_prob: np.ndarray) -> np.ndarray:
    """Per product: ``weight + (1 - weight) * (1 - p)``, ``p`` the probability of its predicted type
    clipped to [0, 1] (NaN = none: ``weight``); the numpy twin of ``recommend.similar_lexical_doubt``
    (``similar.similar_items``)."""
    p = np.clip(np.asarray(type_prob, dtype=np.float64), 0.0, 1.0)
    return weight + (1.0 - weight) * np.where(np.isnan(p), 0.0, 1.0 - p)


def text_only_share(has_photo: np.ndarray, neighbours: np.ndarray) -> float | None:
    """Share of the neighbours (all queries' lists together) that have no photo."""
    if neighbours.size == 0:
        return None
    return float(1.0 - has_photo[neighbours].mean())


def same_type_text_only_share(
    has_photo: np.ndarray, types: np.ndarray, queries: np.ndarray, catalog: np.ndarray
) -> float | None:
    """Mean over ``queries`` of the share of text-only products among the searched ``catalog``
    products of the query's own type: what a method blind to photos would show among same-type
    neighbours (the catalog-wide share mixes types that have photos with types that have none)."""
    cat_types = pd.Series(types[catalog], dtype=object)
    text_only = pd.Series(~has_photo[catalog]).groupby(cat_types.to_numpy()).mean()
    shares = [float(text_only[t]) for t in types[queries] if not _missing(t) and t in text_only.index]
    return float(np.mean(shares)) if shares else None


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and np.isnan(value))


def stretch(img: Any, width: int = 225, height: int = 300) -> Any:
    """The photo resized to ``width`` x ``height`` without keeping its aspect (a square → 3:4)."""
    from PIL import Image

    return img.resize((width, height), Image.Resampling.BILINEAR)


def pad(img: Any, share: float = PAD_SHARE) -> Any:
    """The photo centred on a white canvas ``1 + 2 * share`` times its size (the product smaller)."""
    from PIL import Image

    border = (round(img.width * share), round(img.height * share))
    canvas = Image.new("RGB", (img.width + 2 * border[0], img.height + 2 * border[1]), (255, 255, 255))
    canvas.paste(img.convert("RGB"), border)
    return canvas


def encoded(img: Any, fmt: str = "PNG", quality: int = 95) -> bytes:
    """The image as file bytes (PNG: lossless, so only the geometry of a shift changes)."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.getvalue()


def shifted_sources(path: str) -> dict[str, str | bytes]:
    """The photo at ``path`` as the decode path receives it, once per shift of ``SHIFTS``."""
    from PIL import Image

    with Image.open(path) as src:
        img = src.convert("RGB")
    return {
        "as_decoded": path,
        "stretched_3x4": encoded(stretch(img)),
        "squashed_4x3": encoded(stretch(img, 300, 225)),
        "padded": encoded(pad(img)),
        "jpeg_q15": encoded(img, "JPEG", JPEG_QUALITY),
    }


def model_accuracy(metrics: dict[str, Any]) -> dict[str, float | None]:
    """Test accuracy of the image, text and fusion classifiers from a model's metrics.json."""
    models = metrics.get("models") or {}
    fusion = ((metrics.get("fusion") or {}).get("test") or {}).get("fusion") or {}
    out = {name: ((models.get(name) or {}).get("test") or {}).get("accuracy") for name in ("image", "text")}
    out["fusion"] = fusion.get("accuracy")
    for name in ("image", "text"):
        for head, report in ((models.get(name) or {}).get("test_heads") or {}).items():
            out[f"{name}_head_{head}"] = report.get("accuracy")
    return out


def shown_path(path: Path) -> str:
    """``path`` relative to the repository when inside it (results never name this machine's folders)."""
    full = path.resolve()
    return str(full.relative_to(REPO_ROOT)) if full.is_relative_to(REPO_ROOT) else path.name


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def summary_tables(result: dict[str, Any]) -> str:
    """The printed summary: markdown tables like the issue's."""
    ns = result["neighbours"]
    k = result["inputs"]["k"]
    out = [
        f"Same attribute among the top {k} neighbours of {ns['n_queries']} new (test-split) products",
        "",
        "| method | queries | " + " | ".join(f"same {a}" for a in ATTRIBUTES) + " |",
        "|---" * (len(ATTRIBUTES) + 2) + "|",
    ]
    for method, row in ns["methods"].items():
        p = row["precision"]["all"]
        out.append(f"| {method} | {row['n_queries']} | " + " | ".join(fmt(p[a]) for a in ATTRIBUTES) + " |")
    out.append("| chance | - | " + " | ".join(fmt(ns["chance"][a]) for a in ATTRIBUTES) + " |")
    if "ceiling" in ns:
        out.append("| ceiling | - | " + " | ".join(fmt(ns["ceiling"]["all"][a]) for a in ATTRIBUTES) + " |")
    out += [
        "",
        "By whether the query's articleType is a class of the category label (counted on photos): "
        "known / unknown; never learned = a type no head learned "
        f"({ns.get('n_queries_never_learned', '-')} queries)",
        "",
        "| method | " + " | ".join(f"{a} known / unknown / never learned" for a in TABLE_ATTRIBUTES) + " |",
        "|---" * (len(TABLE_ATTRIBUTES) + 1) + "|",
    ]
    for method, row in ns["methods"].items():
        p = row["precision"]
        cells = [
            f"{fmt(p['known_class'][a])} / {fmt(p['unknown_class'][a])} / {fmt(p.get('never_learned', {}).get(a))}"
            for a in TABLE_ATTRIBUTES
        ]
        out.append(f"| {method} | " + " | ".join(cells) + " |")
    if "ceiling" in ns:
        c = ns["ceiling"]
        cells = [f"- / {fmt(c['unknown_class'][a])} / {fmt(c['never_learned'][a])}" for a in TABLE_ATTRIBUTES]
        out.append("| ceiling | " + " | ".join(cells) + " |")
    out += [
        "",
        "Text-only products (no photo) among the neighbours vs in the searched catalog",
        "",
        "| method | all queries | queries with photo | queries without photo | catalog | catalog, photo query's type |",
        "|---|---|---|---|---|---|",
    ]
    for method, row in ns["methods"].items():
        t = row["text_only_share"]
        out.append(
            f"| {method} | {fmt(t.get('all_queries'))} | {fmt(t['query_with_photo'])} | "
            f"{fmt(t['query_without_photo'])} | {fmt(t['catalog'])} | "
            f"{fmt(t.get('catalog_same_type_query_with_photo'))} |"
        )
    night = result.get("night_similar_items") or {}
    if night:
        out += [
            "",
            "The night's own similar items (scoring.similar_products in Spark, neighbours among every other "
            "product): the same queries",
            "",
            "| variant | queries | same type | never learned [95 %] | gender | colour | text-only (photo queries) "
            "| seconds |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in night.items():
            p, interval = row["precision"], row["never_learned_type_interval"]
            never = fmt(p["never_learned"]["articleType"])
            if interval:
                never += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
            out.append(
                f"| {name} | {row['n_queries']} | {fmt(p['all']['articleType'])} | {never} | "
                f"{fmt(p['all']['gender'])} | {fmt(p['all']['baseColour'])} | "
                f"{fmt(row['text_only_share']['query_with_photo'])} | {row['seconds']} |"
            )
    rob = result["image_robustness"]
    out += [
        "",
        f"Image classifier accuracy on {rob['n_photos']} test-split photos of learned classes",
        "",
        "| " + " | ".join(SHIFTS) + " |",
        "|---" * len(SHIFTS) + "|",
        "| " + " | ".join(fmt(rob["accuracy"][s]) for s in SHIFTS) + " |",
    ]
    return "\n".join(out)


# ---- pipeline, Spark and model side --------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Cores, memory and versions of the machine the figures come from, and the load now."""
    return host("pyspark", "numpy", "scipy", "pandas", load_avg=list(os.getloadavg()))


def pipeline_commands(config: Path, overrides: Sequence[str]) -> list[list[str]]:
    """spark-submit of ingest, preprocess and train with the bench's overrides and the demo's settings."""
    sets = [a for o in overrides for a in ("--set", o)]
    prep = [a for o in PREP_SET for a in ("--set", o)]
    train = [a for o in TRAIN_SET for a in ("--set", o)]
    job = ["spark-submit"]
    return [
        [*job, "jobs/ingest.py", "--config", str(config), *sets],
        [*job, "jobs/preprocess.py", "--config", str(config), *sets, *prep],
        [*job, "jobs/train.py", "--config", str(config), *sets, *prep, *train],
    ]


def ensure_pipeline(config: Path, overrides: Sequence[str], models: Path, run_it: bool) -> dict[str, float]:
    """Run ingest → preprocess → train into the work folder when it has no current model yet."""
    if (models / "current.json").is_file():
        return {}
    commands = pipeline_commands(config, overrides)
    if not run_it:
        shown = "\n".join("  " + " ".join(c) for c in commands)
        raise SystemExit(f"bench_content: no trained model under {models}; run (from the repository root):\n{shown}")
    py_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{py_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "lib"), os.environ.get("PYTHONPATH")])),
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        "HOROVOD_GLOO_IFACE": os.environ.get("HOROVOD_GLOO_IFACE", "lo"),
    }
    seconds = {}
    for cmd in commands:
        name = Path(cmd[1]).stem
        print(f"bench_content: {name}: {' '.join(cmd)}", flush=True)
        started = time.perf_counter()
        subprocess.run(cmd, cwd=REPO_ROOT, env=env, check=True)
        seconds[f"pipeline_{name}"] = round(time.perf_counter() - started, 1)
    return seconds


def load_catalog(spark: Any, cfg: Any, version: str) -> pd.DataFrame:
    """One row per product: attributes, title, split, the three vectors of ``version`` and the
    probability of the product's predicted type (``predicted_prob``)."""
    from pyspark.sql import functions as F

    from hybridrec.splits import split_column
    from hybridrec.tables import PRODUCT_EMBEDDINGS, PRODUCTS, require_table

    products = require_table(spark, cfg, PRODUCTS, "bench_content").select(
        "product_id",
        "title",
        F.col("category").alias("articleType"),
        "image_path",
        *[F.col("attributes").getItem(a).alias(a) for a in ATTRIBUTES if a != "articleType"],
    )
    vectors = (
        require_table(spark, cfg, PRODUCT_EMBEDDINGS, "bench_content")
        .filter(F.col("model_version") == version)
        .select("product_id", "image_emb", "text_emb", "fused_emb", "predicted_prob")
    )
    frac = cfg.features
    joined = products.join(vectors, "product_id", "left").withColumn(
        "split", split_column(F.col("product_id"), frac.train_fraction, frac.val_fraction)
    )
    return joined.toPandas()


def stack(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(l2-normalised matrix, row has a vector) of a column of arrays or None."""
    present = values.map(lambda v: v is not None and len(v) > 0).to_numpy()
    dim = len(values[present].iloc[0]) if present.any() else 1
    out = np.zeros((len(values), dim), dtype=np.float32)
    if present.any():
        out[present] = np.stack([np.asarray(v, dtype=np.float32) for v in values[present]])
    return l2_rows(out), present


def neighbour_figures(
    df: pd.DataFrame,
    classes: set[str],
    sample: int | None,
    seed: int,
    k: int,
    clock: Callable[[str], None],
    learned: set[str] | None = None,
    lexical_attributes: Sequence[str] = (),
    tail: tuple[float, int] = (1.0, 0),
    query_split: str = "test",
    votes: Sequence[tuple[int, float]] = (),
    vote_weight: float = 0.25,
    vote_depth: int = 20,
) -> dict[str, Any]:
    """The neighbour tables (module docstring) over the catalog frame of ``load_catalog``.

    ``classes``: the category classes of the image/fusion label (counted on photos): "known" and
    "unknown" split on them, as in the baseline. ``learned``: every type any head learned (with a
    ``category`` head, also the types counted on all products); "never_learned" splits on it.
    ``lexical_attributes`` (``recommend.lexical_attributes`` names): adds ``tfidf_info``, the
    TF-IDF with informative term weights, and its blends with fused. ``tail`` (weight, tokens;
    ``recommend.lexical_tail_weight`` / ``lexical_tail_tokens``): with a weight other than 1, the
    same lexical methods once more with the title's last words weighted (``tfidf_tail``,
    ``tfidf_info_tail``), side by side. ``query_split``: ``test`` (queries searched among the train
    and val products) or ``val`` (queries searched among the train products alone: where settings
    are chosen before the test split is looked at). ``votes`` ((k, bonus) pairs,
    ``recommend.similar_type_vote`` / ``similar_type_bonus``): the shipped doubt blend at
    ``vote_weight`` once more per pair with the night's type vote over candidate lists of
    ``vote_depth`` (``similar_top_m``; ``VotedShared``).
    """
    has_photo = df["image_emb"].map(lambda v: v is not None and len(v) > 0).to_numpy()
    if query_split not in ("test", "val"):
        raise ValueError(f"query_split must be test or val, got {query_split!r}")
    test_idx = np.flatnonzero((df["split"] == query_split).to_numpy())
    searched = (df["split"] == "train") if query_split == "val" else (df["split"] != "test")
    catalog_idx = np.flatnonzero(searched.to_numpy())
    rng = np.random.default_rng(seed)
    size = len(test_idx) if sample is None else min(sample, len(test_idx))
    queries = np.sort(rng.choice(test_idx, size=size, replace=False))
    known = df["articleType"].iloc[queries].isin(classes).to_numpy()
    ever = df["articleType"].iloc[queries].isin(learned if learned is not None else classes).to_numpy()
    matrices: dict[str, tuple[Any, np.ndarray]] = {}
    for method, column in (("fused", "fused_emb"), ("text", "text_emb"), ("image", "image_emb")):
        matrices[method] = stack(df[column])
    clock("vectors")
    titles = df["title"].tolist()
    has_title = df["title"].notna().to_numpy()
    tails = [("", (1.0, 0))] + ([("_tail", tail)] if tail[0] != 1.0 and tail[1] > 0 else [])
    lexical_methods = []
    for suffix, (weight, tokens) in tails:
        matrices[f"tfidf{suffix}"] = (tfidf_vectors(titles, tail_weight=weight, tail_tokens=tokens), has_title)
        lexical_methods.append(f"tfidf{suffix}")
    info_methods = []
    if lexical_attributes:
        # Term weights from the labels of the searched catalog only: a query's own label never counts.
        labels = {a: df[bench_column(a)].to_numpy(dtype=object) for a in lexical_attributes}
        searched_rows = searched.to_numpy()
        for suffix, (weight, tokens) in tails:
            matrix = tfidf_vectors(titles, labels, searched_rows, tail_weight=weight, tail_tokens=tokens)
            matrices[f"tfidf_info{suffix}"] = (matrix, has_title)
            info_methods.append(f"tfidf_info{suffix}")
    lexical_methods += info_methods
    clock("tfidf")
    fused, fused_present = matrices["fused"]
    blends = [blend_name(w, lex) for lex in lexical_methods for w in BLEND_WEIGHTS]
    for lex in lexical_methods:
        for w in BLEND_WEIGHTS:
            matrices[blend_name(w, lex)] = (blend_rows(fused, matrices[lex][0], w), fused_present)
    # What the night ships (similar_mixed_pairs: text): across photo / no-photo, the text vectors;
    # beside each, every query's own weight from its type's probability (similar_lexical_doubt).
    type_prob = df["predicted_prob"].to_numpy(dtype=np.float64)
    for lex in info_methods or lexical_methods[-1:]:
        for w in BLEND_WEIGHTS:
            name = blend_name(w, lex).replace("fused+", "shared+")
            for label, weight in ((name, w), (f"{name} doubt", doubt_weights(w, type_prob))):
                blend = SharedBlend(fused, matrices["text"][0], has_photo, matrices[lex][0], weight)
                matrices[label] = (blend, fused_present)
                blends.append(label)
                if label.endswith("doubt") and w == vote_weight and lex == (info_methods or lexical_methods)[-1]:
                    catalog_types = df["articleType"].to_numpy(dtype=object).copy()
                    catalog_types[~searched.to_numpy()] = None  # a query's own type is never read
                    for vote, bonus in votes:
                        voted = VotedShared(blend, catalog_types, vote_depth, vote, bonus)
                        matrices[f"{label} vote{vote} +{bonus:g}"] = (voted, fused_present)
                        blends.append(f"{label} vote{vote} +{bonus:g}")
    clock("blends")
    attrs = {a: df[a].to_numpy(dtype=object) for a in ATTRIBUTES}
    ceiling = {
        part: {a: precision_ceiling(attrs[a][queries[mask]], attrs[a][catalog_idx], k) for a in ATTRIBUTES}
        for part, mask in (("all", np.ones(len(queries), bool)), ("unknown_class", ~known), ("never_learned", ~ever))
    }
    methods: dict[str, Any] = {}
    for method in [*METHODS, *lexical_methods[1:], *blends]:
        matrix, present = matrices[method]
        q = queries[present[queries]]
        cat = catalog_idx[present[catalog_idx]]
        if len(q) == 0 or len(cat) == 0:
            continue
        if isinstance(matrix, SharedBlend | VotedShared):
            found = cat[matrix.top_k(q, cat, k)]
        else:
            found = cat[top_k(matrix[q], matrix[cat], k)]
        methods[method] = list_figures(q, found, cat, QueryParts(queries[known], queries[ever]), attrs, has_photo, seed)
        clock(f"neighbours_{method}")
    return {
        "n_products": len(df),
        "n_with_vectors": int(df["fused_emb"].notna().sum()),
        "query_split": query_split,
        "n_test_products": len(test_idx),
        "n_searched": len(catalog_idx),
        "n_queries": len(queries),
        "n_queries_with_photo": int(has_photo[queries].sum()),
        "n_queries_known_class": int(known.sum()),
        "n_queries_never_learned": int((~ever).sum()),
        "chance": {a: chance_same(attrs[a][catalog_idx]) for a in ATTRIBUTES},
        "ceiling": ceiling,
        "methods": methods,
    }


@dataclass(frozen=True)
class QueryParts:
    """The query rows (catalog frame indices) whose articleType is a class of the category label
    (``known``) and those of a type some head learned (``learned``): the figures' splits."""

    known: np.ndarray
    learned: np.ndarray


def list_figures(
    q: np.ndarray,
    found: np.ndarray,
    cat: np.ndarray,
    parts: QueryParts,
    attrs: dict[str, np.ndarray],
    has_photo: np.ndarray,
    seed: int,
) -> dict[str, Any]:
    """One method's figures: ``found`` (len(q), k) frame rows of the queries ``q``'s neighbours,
    ``cat`` the searched rows: precision per attribute overall, for known / unknown classes and
    never-learned types (with its bootstrap interval), the text-only share of the neighbours."""
    q_known = np.isin(q, parts.known)
    q_never = ~np.isin(q, parts.learned)
    precision: dict[str, dict[str, float | None]] = {}
    splits = (
        ("all", np.ones(len(q), bool)),
        ("known_class", q_known),
        ("unknown_class", ~q_known),
        ("never_learned", q_never),
    )
    for part, mask in splits:
        precision[part] = {a: precision_same(attrs[a][q[mask]], attrs[a][found[mask]]) for a in ATTRIBUTES}
    with_photo = has_photo[q]
    types = attrs["articleType"]
    never_rows = q_never & np.array([not _missing(t) for t in types[q]], dtype=bool)
    never_same = (types[found[never_rows]] == types[q[never_rows]][:, None]).mean(axis=1)
    return {
        "n_queries": len(q),
        "n_queries_known_class": int(q_known.sum()),
        "n_queries_never_learned": int(q_never.sum()),
        "n_catalog": len(cat),
        "precision": precision,
        "never_learned_type_interval": bootstrap_interval(never_same, seed),
        "text_only_share": {
            "all_queries": text_only_share(has_photo, found),
            "query_with_photo": text_only_share(has_photo, found[with_photo]),
            "query_without_photo": text_only_share(has_photo, found[~with_photo]),
            "catalog": float(1.0 - has_photo[cat].mean()),
            "catalog_same_type_query_with_photo": same_type_text_only_share(
                has_photo, attrs["articleType"], q[with_photo], cat
            ),
        },
    }


def night_similar_lists(
    spark: Any, cfg: Any, version: str, variants: Sequence[tuple[str, dict[str, Any]]], k: int
) -> dict[str, tuple[pd.DataFrame, float]]:
    """The night's own similar items (``scoring.similar_products``, the code the nightly job runs)
    on the bench's warehouse, per variant (``recommend`` settings over the config's): (top ``k``
    rows (product_id, rank, similar_product_id) of every product, seconds of the whole lists).

    No interactions (the bench's pipeline has none): no co-interaction list, every product cold,
    as a new product is. The lexical postings and neighbours are computed before any clock, and
    the first variant's lists once untimed: that computes and caches the content neighbours
    (``similar.nearest_on_shared``, persisted as the night does), which every variant then reads.
    So a variant's seconds are its blend over the cached lists (the exact pair cosines, the type
    vote, the top ``similar_top_m``), the part the variants differ in. Neighbours are searched
    among every other product, as the night does.
    """
    from dataclasses import replace

    from pyspark.sql import functions as F

    from hybridrec.hybrid import scoring
    from hybridrec.hybrid.content import night_vectors
    from hybridrec.hybrid.indexing import dense_index
    from hybridrec.tables import PRODUCT_EMBEDDINGS, PRODUCTS, require_table

    products = require_table(spark, cfg, PRODUCTS, "bench_content").select(*scoring.NIGHT_PRODUCT_COLUMNS)
    vectors = night_vectors(require_table(spark, cfg, PRODUCT_EMBEDDINGS, "bench_content"), version).persist()
    item_index = dense_index(vectors, "product_id", "item_idx").persist()
    n_items = item_index.count()
    none = spark.createDataFrame([], "product_id string, factors array<float>")
    inputs = scoring.NightInputs(
        products=products,
        interactions=spark.createDataFrame([], "user_id string"),
        vectors=vectors,
        als_users=spark.createDataFrame([], "user_id string, factors array<float>"),
        als_items=none,
        als_candidates=spark.createDataFrame([], "user_id string, product_id string, score float, rank int"),
        user_index=spark.createDataFrame([], "user_id string, user_idx int"),
        content_version=version,
        als_version=None,
    )
    unused = spark.createDataFrame([], "user_id string")  # the night's user-side frames: not read here
    scores = scoring.NightScores(
        history=unused,
        user_stats=unused,
        item_stats=spark.createDataFrame([], "product_id string, n_users long"),
        warm_users=unused,
        usable_events=unused,
        reference=dt.datetime(2000, 1, 1),
        exclude="none",
        item_index=item_index,
        vec_idx=vectors.join(item_index, "product_id").select("item_idx", "vec"),
        als=unused,
        content=unused,
        cold=unused,
        n_items=n_items,
    )
    out: dict[str, tuple[pd.DataFrame, float]] = {}
    try:
        if cfg.recommend.similar_lexical_weight > 0:
            scoring.night_lexical(scores, inputs, cfg).count()
            scoring.night_lexical_postings(scores, inputs, cfg).count()
        # Untimed: the content searches run and stay cached (the same plan in every variant).
        scoring.similar_products(scores, inputs, replace(cfg, recommend=replace(cfg.recommend, **variants[0][1])))[
            0
        ].count()
        for name, settings in variants:
            night_cfg = replace(cfg, recommend=replace(cfg.recommend, **settings))
            started = time.perf_counter()
            sims, _ = scoring.similar_products(scores, inputs, night_cfg)
            lists = sims.persist()
            lists.count()
            seconds = round(time.perf_counter() - started, 1)
            top = lists.filter(F.col("rank") <= k).select("product_id", "rank", "similar_product_id").toPandas()
            lists.unpersist()
            out[name] = (top, seconds)
    finally:
        scores.release()
        item_index.unpersist()
        vectors.unpersist()
    return out


def night_figures(
    df: pd.DataFrame,
    lists: dict[str, tuple[pd.DataFrame, float]],
    parts: QueryParts,
    query_split: str,
    k: int,
    seed: int,
) -> dict[str, Any]:
    """``list_figures`` of the night's lists (``night_similar_lists``) for the ``query_split``
    products with a vector and a full top ``k``."""
    row_of = pd.Series(np.arange(len(df)), index=df["product_id"].to_numpy())
    has_photo = df["image_emb"].map(lambda v: v is not None and len(v) > 0).to_numpy()
    attrs = {a: df[a].to_numpy(dtype=object) for a in ATTRIBUTES}
    is_query = (df["split"] == query_split).to_numpy()
    everyone = np.flatnonzero(df["fused_emb"].notna().to_numpy())
    out: dict[str, Any] = {}
    for name, (top, seconds) in lists.items():
        top = top.assign(q=row_of.loc[top["product_id"]].to_numpy(), o=row_of.loc[top["similar_product_id"]].to_numpy())
        top = top[is_query[top["q"].to_numpy()]].sort_values(["q", "rank"])
        sizes = top.groupby("q").size()
        full = sizes.index[sizes == k].to_numpy()
        top = top[top["q"].isin(full)]
        found = top["o"].to_numpy().reshape(len(full), k)
        figures = list_figures(full, found, everyone, parts, attrs, has_photo, seed)
        figures["seconds"] = seconds
        figures["n_queries_short_list"] = int((sizes < k).sum())
        out[name] = figures
    return out


def image_robustness(
    df: pd.DataFrame, model_dir: str, classes: list[str], image_size: int, image_fit: str
) -> dict[str, Any]:
    """Accuracy of the image CNN on the test split's photos of learned classes, per shift."""
    from hybridrec.features.images import load_image
    from hybridrec.models.embeddings import load_model_once

    index = {c: i for i, c in enumerate(classes)}
    rows = df[(df["split"] == "test") & df["image_path"].notna() & df["articleType"].isin(index)]
    # (embedding, category probabilities): the category head by name, also with attribute heads.
    model = load_model_once(model_dir)
    arrays: dict[str, list[np.ndarray]] = {s: [] for s in SHIFTS}
    labels, failed = [], 0
    for path, category in zip(rows["image_path"], rows["articleType"], strict=True):
        try:
            decoded = {s: load_image(src, image_size, fit=image_fit) for s, src in shifted_sources(path).items()}
        except (OSError, ValueError):
            failed += 1
            continue
        for s in SHIFTS:
            arrays[s].append(decoded[s])
        labels.append(index[category])
    y = np.asarray(labels)
    accuracy = {}
    for s in SHIFTS:
        probs = model.predict(np.stack(arrays[s]), batch_size=256, verbose=0)[1] if labels else np.zeros((0, 1))
        accuracy[s] = float((probs.argmax(axis=1) == y).mean()) if labels else None
    return {
        "n_photos": len(labels),
        "n_failed_to_decode": failed,
        "image_size": image_size,
        "image_fit": image_fit,
        "shifts": {
            "as_decoded": "the file as preprocess decodes it (features.images.load_image, the model's image_fit)",
            "squashed_4x3": "resized to 300x225 without keeping the aspect (PNG), then decoded",
            "stretched_3x4": "resized to 225x300 without keeping the aspect (PNG), then decoded",
            "padded": f"a white border of {PAD_SHARE:.0%} of the side on each side (PNG), then decoded",
            "jpeg_q15": f"re-compressed as JPEG at quality {JPEG_QUALITY}, then decoded",
        },
        "accuracy": accuracy,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="the bench's own pipeline folder")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--sample", type=int, default=None, help="a seeded sample of the test-split products as queries; default: all"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--no-pipeline", action="store_true", help="stop instead of training when no model exists")
    parser.add_argument(
        "--lexical-attributes",
        default=None,
        help="comma-separated labels for the informative TF-IDF (tfidf_info); default: the config's "
        "recommend.lexical_attributes, else category",
    )
    parser.add_argument(
        "--lexical-tail-weight",
        type=float,
        default=None,
        help="weight of the title's last words in the tail methods (tfidf_tail, tfidf_info_tail); default: the "
        "config's recommend.lexical_tail_weight, else 2; 1 = no tail methods",
    )
    parser.add_argument("--lexical-tail-tokens", type=int, default=None, help="default: recommend.lexical_tail_tokens")
    parser.add_argument(
        "--query-split",
        choices=("test", "val"),
        default="test",
        help="test: test-split queries among the train and val products (the benchmark); val: validation-split "
        "queries among the train products alone (where settings are chosen before the test split)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default=NOTE, help="what this run measures (kept in the result's notes)")
    args = parser.parse_args(argv)

    from hybridrec.config import load_config
    from hybridrec.hybrid.freshness import model_files
    from hybridrec.models.training import current_version
    from hybridrec.spark import build_spark

    work = args.work.resolve()
    overrides = [*work_overrides(work), "spark.ui_enabled=false", *args.overrides]
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    last = [started]

    def clock(stage: str) -> None:
        now = time.perf_counter()
        seconds[stage] = round(now - last[0], 1)
        last[0] = now

    cfg = load_config(args.config, [*overrides, *PREP_SET])
    seconds.update(ensure_pipeline(args.config, overrides, Path(cfg.paths.models), not args.no_pipeline))
    last[0] = time.perf_counter()
    version = current_version(cfg)
    mf = model_files(cfg, version)
    metrics = json.loads((Path(cfg.paths.models) / version / "metrics.json").read_text(encoding="utf-8"))
    labels = json.loads((Path(cfg.paths.models) / version / "labels.json").read_text(encoding="utf-8"))
    learned = set(mf.classes)
    for head in labels.get("heads") or []:
        if head["attribute"] == "category":
            learned |= set(head["classes"])
    spark = build_spark(cfg.spark)
    try:
        df = load_catalog(spark, cfg, version)
        clock("load")
        night_lists = night_similar_lists(spark, cfg, version, NIGHT_VARIANTS, args.k)
        clock("night_similar_items")
    finally:
        spark.stop()
    types = df["articleType"]
    parts = QueryParts(np.flatnonzero(types.isin(set(mf.classes))), np.flatnonzero(types.isin(learned)))
    night = night_figures(df, night_lists, parts, args.query_split, args.k, args.seed)
    lexical_attributes = (
        [a for a in args.lexical_attributes.split(",") if a]
        if args.lexical_attributes is not None
        else (cfg.recommend.lexical_attributes or ["category"])
    )
    tail_weight = args.lexical_tail_weight
    if tail_weight is None:  # the config's setting, or, where it keeps raw counts, the weight to compare
        tail_weight = cfg.recommend.lexical_tail_weight if cfg.recommend.lexical_tail_weight != 1.0 else 2.0
    tail = (tail_weight, args.lexical_tail_tokens or cfg.recommend.lexical_tail_tokens)
    rc = cfg.recommend
    votes = list(TYPE_VOTES)
    if rc.similar_type_vote > 0 and (rc.similar_type_vote, rc.similar_type_bonus) not in votes:
        votes.append((rc.similar_type_vote, rc.similar_type_bonus))
    neighbours = neighbour_figures(
        df,
        set(mf.classes),
        args.sample,
        args.seed,
        args.k,
        clock,
        learned,
        lexical_attributes,
        tail,
        query_split=args.query_split,
        votes=votes,
        vote_weight=rc.similar_lexical_weight,
        vote_depth=rc.similar_top_m,
    )
    robustness = (
        image_robustness(df, mf.dirs["image"], mf.classes, mf.image_size, mf.image_fit)
        if "image" in mf.dirs
        else {"n_photos": 0, "accuracy": dict.fromkeys(SHIFTS)}
    )
    clock("image_robustness")
    seconds["total_after_pipeline"] = round(sum(v for key, v in seconds.items() if not key.startswith("pipeline_")), 1)
    tc = metrics.get("train_config", {})
    result = {
        "benchmark": "content",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notes": f"{args.note} {PROTOCOL}",
        "inputs": {
            "config": shown_path(args.config),
            "work": shown_path(work),
            "overrides": [*PREP_SET, *TRAIN_SET, "interactions.path=null", *args.overrides],
            "sample": args.sample,
            "seed": args.seed,
            "k": args.k,
            "lexical_attributes": lexical_attributes,
            "lexical_tail": {"weight": tail[0], "tokens": tail[1]},
            "query_split": args.query_split,
            "type_votes": votes,
            "model_version": version,
            "n_classes": len(mf.classes),
            "classes": mf.classes,
            "image_size": mf.image_size,
            "training": {key: tc.get(key) for key in TRAINING_KEYS if key in tc},
            "model_test_accuracy": model_accuracy(metrics),
        },
        "machine": machine(),
        "neighbours": neighbours,
        "night_similar_items": night,
        "image_robustness": robustness,
        "seconds": seconds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(summary_tables(result))
    print(f"\nbench_content: wrote {args.out} in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
