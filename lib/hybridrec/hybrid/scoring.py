"""The scoring half of a night, as transforms: inputs as DataFrames in, candidates and lists out.

Why apart from the job (``nightly``): the nightly job reads its inputs from the tables and the
night's ALS fit, and writes the results; the offline evaluation (``hybridrec.evaluation``) runs
exactly the same scoring on a past cutoff with an in-memory ALS fit and writes nothing; the scale
benchmark feeds synthetic inputs. All three call ``score_users`` → ``hybrid_lists`` and
``similar_products``, so what is measured and evaluated is what runs at night.

Stages (each reports through ``progress`` with one line and its time):

- history: per (user, product) decayed weights, purchases; distinct items per user, users per item
- content: the nearest products to each user's content profile (``content.content_candidates``)
- cold: content → ALS-factor model (``recommend.cold_model``) fitted on warm products, cold products
  scored with the users' ALS factors (``cold``)
then ``hybrid_lists`` blends ALS, content and cold candidates, filters, caps, ranks, tops up short
lists with popular products and explains every row (``lists.final_lists``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.collab.als import AlsResult
from hybridrec.collab.confidence import count_reasons, data_end, flag_interactions, usable
from hybridrec.collab.exclusion import effective_rule
from hybridrec.config import Config
from hybridrec.errors import MissingInputError
from hybridrec.hybrid import blend, lexical, lists, popular, similar
from hybridrec.hybrid import content as CT
from hybridrec.hybrid.cold import cold_candidates, fit_cold_model, predicted_factors
from hybridrec.hybrid.cold_inputs import cold_model_inputs
from hybridrec.hybrid.history import item_counts, top_history, user_counts, user_item_history
from hybridrec.hybrid.indexing import dense_index
from hybridrec.hybrid.lists import Stage
from hybridrec.hybrid.pair_cosines import PairInputs
from hybridrec.models.product_embeddings import arrow_batch_rows

# The catalog columns a night scores with (``NightInputs.products``): the text of the lexical and
# cold-item inputs, the category of the caps and popularity, the attributes of the lexical labels.
NIGHT_PRODUCT_COLUMNS = ("product_id", "title", "description", "category", "image_path", "attributes")


@dataclass
class NightInputs:
    """What a night scores, as DataFrames (the job reads them from tables; evaluation fits ALS).

    ``products``: ``NIGHT_PRODUCT_COLUMNS`` of the current catalog;
    ``interactions``: bronze.interactions rows; ``vectors``: (product_id, vec[, text_vec, photo])
    fused content vectors of ``content_version`` (``content.night_vectors``: with the text vector
    and whether the product has a photo, for ``similar_mixed_pairs``); ``als_users`` (user_id,
    factors), ``als_items`` (product_id, factors), ``als_candidates`` (user_id, product_id, score,
    rank) and ``user_index`` (user_id, user_idx): the ALS fit of the night, ``als_version`` its
    model version.
    """

    products: DataFrame
    interactions: DataFrame
    vectors: DataFrame
    als_users: DataFrame
    als_items: DataFrame
    als_candidates: DataFrame
    user_index: DataFrame
    content_version: str
    als_version: str | None

    @classmethod
    def from_fit(
        cls, fit: AlsResult, products: DataFrame, interactions: DataFrame, vectors: DataFrame, content_version: str
    ) -> NightInputs:
        """The inputs of a night whose ALS was fitted in memory (the evaluation, the ranker's replay)."""
        return cls(
            products=products,
            interactions=interactions,
            vectors=vectors,
            als_users=fit.user_factors,
            als_items=fit.item_factors,
            als_candidates=fit.candidates,
            user_index=fit.user_ids.select("user_id", "user_idx"),
            content_version=content_version,
            als_version=fit.model_version,
        )


class Progress:
    """Runs a stage, records its seconds and prints ``[<job> <stage>] <line> (<s>s)``."""

    def __init__(self, seconds: dict[str, float], job: str = "recommend") -> None:
        self.seconds = seconds
        self.job = job

    def __call__(self, stage: str, fn: Callable[[], str]) -> None:
        t0 = time.perf_counter()
        line = fn()
        took = time.perf_counter() - t0
        self.seconds[stage] = round(took, 2)
        print(f"[{self.job} {stage}] {line} ({took:.1f}s)", flush=True)


@dataclass
class NightScores:
    """The night's users, products and candidate sources (persisted; ``release`` frees them).

    Candidates are keyed by ids: ``als`` (user_id, product_id, als_score), ``content`` (user_id,
    product_id, content_score, reason_product_id), ``cold`` (user_id, product_id, cold_score).
    """

    history: DataFrame  # user_item_history rows with h_rank (and ``excluded``)
    user_stats: DataFrame  # user_id, n_items: every active user
    item_stats: DataFrame  # product_id, n_users: every warm product
    warm_users: DataFrame  # user_stats of the users past cold_user_max_items
    usable_events: DataFrame  # the usable events before the cutoff (flagged)
    reference: dt.datetime  # where the data ends (``confidence.data_end``): decay and popularity windows end here
    exclude: str  # the effective ``recommend.exclude`` rule (``exclusion.effective_rule``)
    item_index: DataFrame  # product_id, item_idx: the products with a vector
    vec_idx: DataFrame  # item_idx, vec
    als: DataFrame
    content: DataFrame
    cold: DataFrame
    n_items: int
    counts: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    # The night's lexical neighbours once computed (``night_lexical``): similar items and the
    # ranker's lexical candidates share them; ``lexical_postings`` the postings they come from
    # (similar items' exact pair cosines, ``pair_cosines``).
    lexical: DataFrame | None = None
    lexical_postings: DataFrame | None = None
    _cached: list[DataFrame] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for frame in self._cached:
            frame.unpersist()
        self._cached.clear()


def parquet_stage(folder: Path) -> Stage:
    """Materialise a DataFrame as Parquet under ``folder`` and return it re-read (cuts lineage,
    and a re-run overwrites it)."""

    def stage(df: DataFrame, name: str) -> DataFrame:
        path = str(folder / name)
        df.write.mode("overwrite").parquet(path)
        return df.sparkSession.read.parquet(path)

    return stage


def score_users(
    spark: SparkSession,
    cfg: Config,
    inputs: NightInputs,
    cutoff: dt.datetime,
    stage: Stage,
    progress: Progress,
    content_users: str = "warm",
) -> NightScores:
    """History, content and cold-item candidates of every active user before ``cutoff``.

    ``content_users``: ``warm`` (the users the blend uses content for: past
    ``cold_user_max_items``) or ``all`` (evaluation scores a content-only system for everybody).
    """
    rc = cfg.recommend
    counts: dict[str, int] = {}
    metrics: dict[str, float] = {}
    products = inputs.products
    flagged = flag_interactions(inputs.interactions, cutoff, cfg.als.event_weights, products).persist()
    events = usable(flagged)
    reference = data_end(events, cutoff)
    rule = effective_rule(events, rc.exclude, rc.purchase_events)
    history = user_item_history(events, reference, cfg.als.half_life_days, rule, rc.purchase_events)
    history = top_history(history, 10**9).persist()  # h_rank on every pair
    user_stats = user_counts(history).persist()
    item_stats = item_counts(history).persist()
    cached = [flagged, history, user_stats, item_stats]

    def hist() -> str:
        reasons = count_reasons(flagged)
        counts.update({f"events_{k}": v for k, v in reasons.items()})
        counts["active_users"] = user_stats.count()
        counts["warm_items"] = item_stats.count()
        counts["cold_users"] = user_stats.filter(F.col("n_items") <= rc.cold_user_max_items).count()
        counts["excluded_pairs"] = history.filter(F.col("excluded")).count()
        return (
            f"{reasons['used']} events of {reasons['read']} before {cutoff:%Y-%m-%d} (data ends "
            f"{reference:%Y-%m-%d %H:%M}): "
            f"{counts['active_users']} active users ({counts['cold_users']} cold), {counts['warm_items']} "
            f"warm products; "
            f"exclude={rule}: {counts['excluded_pairs']} (user, product) pairs never recommended"
        )

    progress("history", hist)

    vectors = inputs.vectors.join(products.select("product_id"), "product_id", "left_semi")
    item_index = dense_index(vectors, "product_id", "item_idx").persist()
    vec_idx = vectors.join(item_index, "product_id").select("item_idx", "vec").persist()
    cached += [item_index, vec_idx]
    n_items = item_index.count()
    counts["products"] = products.count()
    counts["products_with_vector"] = n_items
    if n_items == 0:
        raise MissingInputError(
            f"gold.product_embeddings has no rows of model version {inputs.content_version} "
            "for current products: run jobs/train.py"
        )
    warm_users = user_stats.filter(F.col("n_items") > rc.cold_user_max_items)
    scored_users = warm_users if content_users == "warm" else user_stats
    user_index = inputs.user_index
    frames: dict[str, DataFrame] = {}

    def content() -> str:
        rows = (
            history.join(scored_users.select("user_id"), "user_id", "left_semi")
            .withColumn("in_profile", F.col("h_rank") <= rc.history_items)
            .filter(F.col("in_profile") | F.col("excluded"))
            .join(user_index, "user_id")
            .join(item_index, "product_id")
            .select("user_idx", "item_idx", "weight", "in_profile", "excluded")
        )
        cands = CT.content_candidates(
            rows,
            vec_idx,
            rc.content_candidates,
            int(counts["active_users"]),
            n_items,
            rc.user_block,
            rc.content_item_block,
            rc,
        )
        if CT.uses_ivf(n_items, rc):
            frames["content"] = stage(cands, "content")
        else:
            with arrow_batch_rows(spark, 1):
                frames["content"] = stage(cands, "content")
        counts["content_candidates"] = frames["content"].count()
        return (
            f"{counts['content_candidates']} content candidates "
            f"(top {rc.content_candidates} of {n_items} products per user)"
        )

    progress("content", content)

    def cold() -> str:
        docs = products.join(item_index, "product_id").select("item_idx", "title", "description", "category")
        model_vec, widths = cold_model_inputs(
            vec_idx,
            docs,
            rc.cold_inputs,
            text_terms=rc.cold_text_terms,
            categories=rc.cold_categories,
            text_ngrams=rc.cold_text_ngrams,
        )
        model_vec = stage(model_vec, "cold_inputs") if len(widths) > 1 or "content" not in widths else model_vec
        warm_vec = inputs.als_items.join(item_index, "product_id").join(model_vec, "item_idx").select("vec", "factors")
        model = fit_cold_model(warm_vec, rc, widths)
        metrics.update(model.metrics())
        cold_vec = (
            model_vec.join(item_index, "item_idx").join(item_stats, "product_id", "left_anti").select("item_idx", "vec")
        )
        n_cold = cold_vec.count()
        counts["cold_items"] = n_cold
        if n_cold == 0:
            frames["cold"] = stage(spark.createDataFrame([], "user_idx int, item_idx int, cold_score float"), "cold")
            return f"no cold products ({model.describe()})"
        uf = (
            inputs.als_users.join(warm_users.select("user_id"), "user_id", "left_semi")
            .join(user_index, "user_id")
            .select(F.col("user_idx").alias("id"), F.col("factors").alias("features"))
        )
        cands = cold_candidates(
            uf,
            predicted_factors(cold_vec, model),
            rc.cold_candidates,
            (int(counts["active_users"]), n_cold),
            cfg.als.topk_user_block,
            cfg.als.topk_item_block,
        )
        frames["cold"] = stage(cands, "cold")
        counts["cold_candidates"] = frames["cold"].count()
        inputs_note = " + ".join(f"{part} {width}" for part, width in widths.items())
        return (
            f"{counts['cold_candidates']} cold-item candidates over {n_cold} cold products "
            f"({model.describe()}; inputs {inputs_note})"
        )

    progress("cold", cold)

    def ids(df: DataFrame) -> DataFrame:
        return df.join(user_index, "user_idx").join(item_index, "item_idx")

    content_c = (
        ids(frames["content"])
        .join(
            item_index.select(
                F.col("item_idx").alias("reason_item_idx"), F.col("product_id").alias("reason_product_id")
            ),
            "reason_item_idx",
        )
        .select("user_id", "product_id", "content_score", "reason_product_id")
    )
    cold_c = ids(frames["cold"]).select("user_id", "product_id", "cold_score")
    als_c = (
        inputs.als_candidates.filter(F.col("rank") <= rc.als_candidates)
        .join(products.select("product_id"), "product_id", "left_semi")
        .select("user_id", "product_id", F.col("score").alias("als_score"))
    )
    return NightScores(
        history=history,
        user_stats=user_stats,
        item_stats=item_stats,
        warm_users=warm_users,
        usable_events=events,
        reference=reference,
        exclude=rule,
        item_index=item_index,
        vec_idx=vec_idx,
        als=als_c,
        content=content_c,
        cold=cold_c,
        n_items=n_items,
        counts=counts,
        metrics=metrics,
        _cached=cached,
    )


def hybrid_lists(
    scores: NightScores, inputs: NightInputs, cfg: Config, cutoff: dt.datetime, stage: Stage
) -> lists.Lists:
    """Every active user's final list: the blend of ALS (warm users), content and cold-item
    candidates, then ``lists.final_lists`` (filter, cap, rank, popular top-up, reasons)."""
    rc = cfg.recommend
    warm = scores.warm_users.select("user_id")
    blended = blend.blend_candidates(
        scores.als.join(warm, "user_id", "left_semi"),
        scores.content,
        scores.cold,
        scores.warm_users,
        scores.item_stats,
        rc,
    )
    pop = popular.popularity(scores.usable_events, scores.reference, rc.popular_days, inputs.products).persist()
    scores._cached.append(pop)  # noqa: SLF001 - the night's own cache list, released by NightScores
    return lists.final_lists(blended, scores.history, scores.user_stats, inputs.products, pop, rc, stage=stage)


def night_lexical_postings(scores: NightScores, inputs: NightInputs, cfg: Config) -> DataFrame:
    """(item_idx, term, weight): the lexical postings of the products with a vector
    (``lexical.lexical_postings`` of their title and description, informative terms per
    ``recommend.lexical_attributes``, the title's last words weighted per
    ``recommend.lexical_tail_weight``, terms of more than ``recommend.lexical_max_df`` products
    left out); computed once a night and persisted with the night's frames."""
    if scores.lexical_postings is None:
        rc = cfg.recommend
        products = inputs.products.join(scores.item_index, "product_id")
        docs = products.select("item_idx", "title", "description")
        weights = None
        if rc.lexical_attributes:
            lexical.check_lexical_attributes(cfg)
            weights = lexical.informative_term_weights(docs, lexical.product_labels(products, rc.lexical_attributes))
        postings = lexical.lexical_postings(
            docs, rc.lexical_max_df, weights, rc.lexical_tail_weight, rc.lexical_tail_tokens
        ).persist()
        scores._cached.append(postings)  # noqa: SLF001 - the night's own cache list, released by NightScores
        scores.lexical_postings = postings
    return scores.lexical_postings


def night_lexical(scores: NightScores, inputs: NightInputs, cfg: Config) -> DataFrame:
    """(item_idx, other_idx, sim, product_id, other_product_id): the title/description neighbours
    of the products with a vector (``lexical.neighbours_from_postings`` of
    ``night_lexical_postings``), as deep as similar items and the ranker's lexical source need;
    computed once a night and persisted with the night's frames."""
    if scores.lexical is None:
        depth = max(cfg.recommend.similar_top_m, cfg.ranker.lexical_neighbours)
        ids = F.broadcast(scores.item_index)
        nn = (
            lexical.neighbours_from_postings(night_lexical_postings(scores, inputs, cfg), depth)
            .join(ids, "item_idx")
            .join(
                ids.select(F.col("item_idx").alias("other_idx"), F.col("product_id").alias("other_product_id")),
                "other_idx",
            )
            .persist()
        )
        scores._cached.append(nn)  # noqa: SLF001 - the night's own cache list, released by NightScores
        scores.lexical = nn
    return scores.lexical


def type_doubt(vectors: DataFrame, item_index: DataFrame) -> DataFrame:
    """(item_idx, doubt) = 1 - the probability of the product's predicted type, clipped to [0, 1],
    for the products of ``vectors`` (``content.night_vectors``) that have one."""
    prob = F.least(F.greatest(F.col("type_prob"), F.lit(0.0)), F.lit(1.0))
    return (
        vectors.filter(F.col("type_prob").isNotNull())
        .join(item_index, "product_id")
        .select("item_idx", (F.lit(1.0) - prob).alias("doubt"))
    )


def similar_products(scores: NightScores, inputs: NightInputs, cfg: Config) -> tuple[DataFrame, bool]:
    """(product_id, rank, similar_product_id, score, source) for every product with a vector, and
    whether co-interaction (ALS item factors) took part (``similar.similar_items``).

    The lexical neighbours (``night_lexical``) are over the same products (those with a vector,
    by their title and description in ``inputs.products``) and only taken when
    ``similar_lexical_weight`` is above 0, each product's share raised by its type doubt
    (``type_doubt``) with ``similar_lexical_doubt``. The content neighbours compare a product with a photo
    and one without on their text vectors (``similar_mixed_pairs: text``, ``similar.
    nearest_on_shared``) when ``inputs.vectors`` carries them (``content.night_vectors``; a
    synthetic bench's vectors may not: then the fused vectors alone). With ``similar_type_vote``,
    each product's best neighbours vote for their catalog category (``inputs.products``) and the
    candidates of the winner gain ``similar_type_bonus`` (``similar.type_vote``). With
    ``similar_exact_pairs``, a pair missing from the content or the lexical list is scored with its
    exact cosine there (``pair_cosines``, from the same vectors and the night's lexical postings).
    """
    rc = cfg.recommend
    item_index, n_items = scores.item_index, scores.n_items
    search = (rc.similar_top_m, n_items, cfg.als.topk_user_block, rc.content_item_block, rc)
    if rc.similar_mixed_pairs == "text" and {"text_vec", "photo"} <= set(inputs.vectors.columns):
        content_vectors = inputs.vectors.join(item_index, "product_id").select(
            F.col("item_idx").alias("id"), F.col("vec").alias("features"), F.col("text_vec").alias("text"), "photo"
        )
        content_nn = similar.nearest_on_shared(content_vectors, *search)
    else:
        content_vectors = scores.vec_idx.select(F.col("item_idx").alias("id"), F.col("vec").alias("features"))
        content_nn = similar.nearest(content_vectors, *search)
    # The blend reads each list more than once (the exact pair cosines, the type vote): the
    # searches run once.
    content_nn = content_nn.persist()
    scores._cached.append(content_nn)  # noqa: SLF001 - the night's own cache list, released by NightScores
    warm_f = inputs.als_items.join(item_index, "product_id").select(F.col("item_idx").alias("id"), "factors")
    n_warm = warm_f.count()
    collab_nn = None
    if n_warm > 1:
        collab_nn = similar.nearest(
            similar.unit_rows(warm_f.withColumnRenamed("factors", "features")),
            rc.similar_top_m,
            n_warm,
            cfg.als.topk_user_block,
            rc.content_item_block,
            rc,
        ).persist()
        scores._cached.append(collab_nn)  # noqa: SLF001 - the night's own cache list, released by NightScores
    evidence = scores.item_stats.join(item_index, "product_id").select(
        "item_idx", (F.col("n_users") / (F.col("n_users") + F.lit(rc.item_shrinkage))).alias("b")
    )
    lexical_nn = doubt = None
    if rc.similar_lexical_weight > 0:
        nn = night_lexical(scores, inputs, cfg).select("item_idx", "other_idx", "sim")
        lexical_nn = lexical.top_k_pairs(nn, rc.similar_top_m)
        if rc.similar_lexical_doubt and "type_prob" in inputs.vectors.columns:
            doubt = type_doubt(inputs.vectors, item_index)
    categories = None
    if rc.similar_type_vote > 0:
        categories = inputs.products.join(item_index, "product_id").select("item_idx", "category")
    exact = None
    if rc.similar_exact_pairs:
        postings = night_lexical_postings(scores, inputs, cfg) if lexical_nn is not None else None
        exact = PairInputs(content_vectors, postings)
    sims = similar.similar_items(content_nn, collab_nn, evidence, rc, lexical_nn, doubt, categories, exact)
    named = sims.join(F.broadcast(item_index), "item_idx").join(
        F.broadcast(
            item_index.select(F.col("item_idx").alias("other_idx"), F.col("product_id").alias("similar_product_id"))
        ),
        "other_idx",
    )
    return named.select("product_id", "rank", "similar_product_id", "score", "source"), collab_nn is not None
