"""Table names, locations and Delta reads/writes: the one place a job learns where a table lives.

Locally a table is a Delta folder ``<paths.warehouse>/<schema>/<name>``; with ``tables.uc_catalog`` set
(Unity Catalog on Databricks) it is the managed table ``<uc_catalog>.<schema>.<name>``. Jobs name tables
by their logical name (``gold.runs``) and never spell a path.

Schemas are declared next to the names as they are added by the issues that own each table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hybridrec.config import Config
from hybridrec.delta_log import broken_commit_in_text, local_path, repair_advice
from hybridrec.errors import ConcurrentRunError, CorruptTableError, HybridrecError, MissingInputError

if TYPE_CHECKING:  # delta.tables is imported where a handle is built (it needs the JVM)
    from delta.tables import DeltaTable

LAYERS = ("bronze", "quarantine", "gold")


@dataclass(frozen=True)
class TableSpec:
    """A logical table: its layer (schema), name, partition columns and Spark schema."""

    layer: str
    name: str
    schema: T.StructType
    partition_by: tuple[str, ...] = ()
    comment: str = ""
    # Delta table properties set when the table is created (e.g. retention of removed files).
    properties: tuple[tuple[str, str], ...] = ()

    @property
    def logical_name(self) -> str:
        return f"{self.layer}.{self.name}"


RUNS = TableSpec(
    layer="gold",
    name="runs",
    comment="One row per job run: what ran, for which night, how it ended, with counts and timings.",
    schema=T.StructType(
        [
            T.StructField("run_id", T.StringType(), False),
            T.StructField("job", T.StringType(), False),
            T.StructField("run_date", T.DateType(), True),
            T.StructField("status", T.StringType(), False),
            T.StructField("started_at", T.TimestampType(), False),
            T.StructField("ended_at", T.TimestampType(), True),
            T.StructField("duration_s", T.DoubleType(), True),
            T.StructField("counts", T.MapType(T.StringType(), T.LongType()), True),
            T.StructField("metrics", T.MapType(T.StringType(), T.DoubleType()), True),
            T.StructField("message", T.StringType(), True),
            # Where the run ran: a `running` row whose process is gone is a killed run. Added after
            # the first release, so older gold.runs tables get them by ALTER TABLE (runs.py).
            T.StructField("host", T.StringType(), True),
            T.StructField("pid", T.LongType(), True),
        ]
    ),
)

PRODUCTS = TableSpec(
    layer="bronze",
    name="products",
    comment="Validated catalog: one row per product_id; text, category, image path and attributes.",
    schema=T.StructType(
        [
            T.StructField("product_id", T.StringType(), False),
            T.StructField("title", T.StringType(), True),
            T.StructField("description", T.StringType(), True),
            T.StructField("category", T.StringType(), True),
            # Resolved path of the product photo under catalog.image_root; null = no photo.
            T.StructField("image_path", T.StringType(), True),
            T.StructField("attributes", T.MapType(T.StringType(), T.StringType()), True),
            T.StructField("listed_at", T.TimestampType(), True),
            # Hash of the content fields: tells a re-ingested duplicate from a conflicting one.
            T.StructField("content_hash", T.StringType(), False),
            T.StructField("source_file", T.StringType(), False),
            T.StructField("ingested_at", T.TimestampType(), False),
        ]
    ),
)

INTERACTIONS = TableSpec(
    layer="bronze",
    name="interactions",
    comment="Validated user-product events (implicit feedback) with their configured weight.",
    schema=T.StructType(
        [
            T.StructField("user_id", T.StringType(), False),
            T.StructField("product_id", T.StringType(), False),
            T.StructField("ts", T.TimestampType(), False),
            T.StructField("event", T.StringType(), False),
            T.StructField("weight", T.DoubleType(), False),
            T.StructField("source_file", T.StringType(), False),
            T.StructField("ingested_at", T.TimestampType(), False),
        ]
    ),
)

_QUARANTINE_SCHEMA = T.StructType(
    [
        # The original row as read, column name -> raw text value.
        T.StructField("raw", T.MapType(T.StringType(), T.StringType()), False),
        # Machine-readable reason code (e.g. missing_image) and a human detail.
        T.StructField("reason", T.StringType(), False),
        T.StructField("detail", T.StringType(), True),
        T.StructField("source_file", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("ingested_at", T.TimestampType(), False),
    ]
)

QUARANTINE_PRODUCTS = TableSpec(
    layer="quarantine",
    name="products",
    comment="Catalog rows rejected at ingest, with the reason; accepted + quarantined = read.",
    schema=_QUARANTINE_SCHEMA,
)

QUARANTINE_INTERACTIONS = TableSpec(
    layer="quarantine",
    name="interactions",
    comment="Interaction rows rejected at ingest, with the reason; accepted + quarantined = read.",
    schema=_QUARANTINE_SCHEMA,
)

_VECTOR = T.ArrayType(T.FloatType(), False)

PRODUCT_EMBEDDINGS = TableSpec(
    layer="gold",
    name="product_embeddings",
    partition_by=("model_version",),
    comment=(
        "Content vectors per product and model version: image and text embeddings, their fused "
        "L2-normalised vector and the predicted category. Re-running a version replaces its rows."
    ),
    schema=T.StructType(
        [
            T.StructField("product_id", T.StringType(), False),
            T.StructField("model_version", T.StringType(), False),
            # Penultimate-layer embedding of the image CNN; null = the product has no photo.
            T.StructField("image_emb", _VECTOR, True),
            # Penultimate-layer embedding of the text LSTM (every product has a title).
            T.StructField("text_emb", _VECTOR, True),
            # [image_emb/|image_emb|, text_emb/|text_emb|] / sqrt(2), unit length; a missing half is
            # predicted from the other modality (models.imputation), or zero for versions without maps.
            # Only here: image_emb / text_emb stay null where the modality is missing.
            T.StructField("fused_emb", _VECTOR, False),
            # Category predicted by the fusion classifier (or the one model a product has input for).
            T.StructField("predicted_category", T.StringType(), True),
            T.StructField("predicted_prob", T.DoubleType(), True),
            # Which classifier predicted: fusion | image | text.
            T.StructField("predicted_by", T.StringType(), True),
            T.StructField("created_at", T.TimestampType(), False),
        ]
    ),
)

# (ALS tables are declared below this line.)

_ID_MAP_COMMENT = (
    "Persistent {what} id -> integer index for Spark ALS. Append-only: an id keeps its index "
    "forever and new ids get the next free indices, so refits never reshuffle earlier ids."
)

ALS_USER_IDS = TableSpec(
    layer="gold",
    name="als_user_ids",
    comment=_ID_MAP_COMMENT.format(what="user"),
    schema=T.StructType(
        [
            T.StructField("user_id", T.StringType(), False),
            T.StructField("user_idx", T.IntegerType(), False),
            # Cutoff of the fit that first saw the id.
            T.StructField("first_seen_at", T.TimestampType(), False),
        ]
    ),
)

ALS_ITEM_IDS = TableSpec(
    layer="gold",
    name="als_item_ids",
    comment=_ID_MAP_COMMENT.format(what="product"),
    schema=T.StructType(
        [
            T.StructField("product_id", T.StringType(), False),
            T.StructField("item_idx", T.IntegerType(), False),
            T.StructField("first_seen_at", T.TimestampType(), False),
        ]
    ),
)

_FACTORS = T.ArrayType(T.FloatType(), False)

ALS_USER_FACTORS = TableSpec(
    layer="gold",
    name="als_user_factors",
    partition_by=("run_date",),
    comment="ALS user factors of each night's model, keyed by the original user id.",
    schema=T.StructType(
        [
            T.StructField("run_date", T.DateType(), False),
            T.StructField("user_id", T.StringType(), False),
            T.StructField("factors", _FACTORS, False),
            T.StructField("model_version", T.StringType(), False),
        ]
    ),
)

ALS_ITEM_FACTORS = TableSpec(
    layer="gold",
    name="als_item_factors",
    partition_by=("run_date",),
    comment="ALS item factors of each night's model, keyed by the original product id.",
    schema=T.StructType(
        [
            T.StructField("run_date", T.DateType(), False),
            T.StructField("product_id", T.StringType(), False),
            T.StructField("factors", _FACTORS, False),
            T.StructField("model_version", T.StringType(), False),
        ]
    ),
)

ALS_CANDIDATES = TableSpec(
    layer="gold",
    name="als_candidates",
    partition_by=("run_date",),
    comment=(
        "Top-K ALS candidates per user for the hybrid step (rank 1 = highest score; already seen "
        "items are not removed: the hybrid step filters)."
    ),
    schema=T.StructType(
        [
            T.StructField("run_date", T.DateType(), False),
            T.StructField("user_id", T.StringType(), False),
            T.StructField("rank", T.IntegerType(), False),
            T.StructField("product_id", T.StringType(), False),
            T.StructField("score", T.FloatType(), False),
            T.StructField("model_version", T.StringType(), False),
        ]
    ),
)

ALS_TABLES = (ALS_USER_IDS, ALS_ITEM_IDS, ALS_USER_FACTORS, ALS_ITEM_FACTORS, ALS_CANDIDATES)

# (Nightly output tables.)


def _col(name: str, dtype: T.DataType, nullable: bool, comment: str) -> T.StructField:
    """A column with its comment (shown by DESCRIBE TABLE and in Unity Catalog)."""
    return T.StructField(name, dtype, nullable, metadata={"comment": comment})


_NIGHTLY_PROPERTIES = (
    ("delta.logRetentionDuration", "interval 30 days"),
    ("delta.deletedFileRetentionDuration", "interval 7 days"),
)

RECOMMENDATIONS = TableSpec(
    layer="gold",
    name="recommendations",
    partition_by=("run_date",),
    properties=_NIGHTLY_PROPERTIES,
    comment=(
        "Hybrid top-N recommendations per user and night (ALS + content embeddings + popularity). "
        "Read the latest run_date; a re-run of a night replaces exactly its partition."
    ),
    schema=T.StructType(
        [
            _col(
                "run_date",
                T.DateType(),
                False,
                "Night the list was computed for (events before 00:00 UTC of that day).",
            ),
            _col("user_id", T.StringType(), False, "User the list is for."),
            _col("rank", T.IntegerType(), False, "Position in the list, 1 = show first."),
            _col("product_id", T.StringType(), False, "Recommended product."),
            _col("score", T.DoubleType(), False, "Blended score; only comparable within one user's list of one night."),
            _col(
                "source", T.StringType(), False, "Where the item came from: als | content | blend | repeat | popular."
            ),
            _col("reason", T.StringType(), False, "Short human explanation, e.g. 'similar to <title> you viewed'."),
            _col(
                "reason_product_id",
                T.StringType(),
                True,
                "The product the reason refers to (from the user's history), if any.",
            ),
            _col("category", T.StringType(), True, "Catalog category of the recommended product."),
            _col(
                "als_model_version", T.StringType(), True, "ALS model of the night (null when no ALS signal was used)."
            ),
            _col("content_model_version", T.StringType(), True, "Image/text model version of the embeddings used."),
            _col("run_id", T.StringType(), False, "Run of jobs/recommend.py that wrote the row (see gold.runs)."),
            _col("created_at", T.TimestampType(), False, "When the row was written (UTC)."),
        ]
    ),
)

SIMILAR_ITEMS = TableSpec(
    layer="gold",
    name="similar_items",
    partition_by=("run_date",),
    properties=_NIGHTLY_PROPERTIES,
    comment=(
        "Top-M similar products per product and night from the fused image+text embeddings and "
        "title/description TF-IDF, blended with ALS item factors (co-interaction) where both products "
        "have interactions; "
        "cold products are included."
    ),
    schema=T.StructType(
        [
            _col("run_date", T.DateType(), False, "Night the list was computed for."),
            _col("product_id", T.StringType(), False, "Product the list is for."),
            _col("rank", T.IntegerType(), False, "Position, 1 = most similar."),
            _col("similar_product_id", T.StringType(), False, "A similar product (never the product itself)."),
            _col(
                "score",
                T.DoubleType(),
                False,
                "Blended similarity (plus recommend.similar_type_bonus for the category the product's best "
                "neighbours vote for, when similar_type_vote is on); comparable within one product's list.",
            ),
            _col(
                "source",
                T.StringType(),
                False,
                "content (fused-vector list, lexical too or not) | lexical (title/description TF-IDF list "
                "only) | co_interaction (ALS list only) | both (ALS and a content-side list).",
            ),
            _col("content_model_version", T.StringType(), True, "Embedding model version used."),
            _col("als_model_version", T.StringType(), True, "ALS model used for co-interaction (null = none)."),
            _col("run_id", T.StringType(), False, "Run of jobs/recommend.py that wrote the row."),
            _col("created_at", T.TimestampType(), False, "When the row was written (UTC)."),
        ]
    ),
)

NIGHTLY_TABLES = (RECOMMENDATIONS, SIMILAR_ITEMS)

TABLES: dict[str, TableSpec] = {
    t.logical_name: t
    for t in (
        RUNS,
        PRODUCTS,
        INTERACTIONS,
        QUARANTINE_PRODUCTS,
        QUARANTINE_INTERACTIONS,
        PRODUCT_EMBEDDINGS,
        *ALS_TABLES,
        *NIGHTLY_TABLES,
    )
}


@dataclass(frozen=True)
class TableRef:
    """Where one table lives for a given config: a metastore name or a folder path."""

    spec: TableSpec
    qualified_name: str | None
    path: str | None

    def __str__(self) -> str:
        return self.qualified_name or str(self.path)


def table_ref(cfg: Config, spec: TableSpec) -> TableRef:
    """Resolve a logical table to its location under ``cfg``."""
    schema = f"{cfg.tables.schema_prefix}{spec.layer}"
    if cfg.tables.uc_catalog:
        return TableRef(spec, f"{cfg.tables.uc_catalog}.{schema}.{spec.name}", None)
    return TableRef(spec, None, str(Path(cfg.paths.warehouse) / schema / spec.name))


def table_exists(spark: SparkSession, ref: TableRef) -> bool:
    """True when the table exists as a Delta table."""
    if ref.qualified_name:
        return bool(spark.catalog.tableExists(ref.qualified_name))
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, ref.path))


def read_table(spark: SparkSession, ref: TableRef) -> DataFrame:
    """Read the current version of a Delta table."""
    if ref.qualified_name:
        return spark.read.table(ref.qualified_name)
    return spark.read.format("delta").load(ref.path)


def ensure_table(spark: SparkSession, ref: TableRef) -> None:
    """Create the table from its spec if it does not exist yet.

    Creating it from the declared schema (rather than from the first DataFrame written) keeps the
    NOT NULL constraints, partitioning and comment, which Delta then enforces on every write.
    """
    from delta.tables import DeltaTable

    builder = DeltaTable.createIfNotExists(spark)
    builder = builder.tableName(ref.qualified_name) if ref.qualified_name else builder.location(ref.path)
    builder = builder.addColumns(ref.spec.schema)
    if ref.spec.partition_by:
        builder = builder.partitionedBy(*ref.spec.partition_by)
    if ref.spec.comment:
        builder = builder.comment(ref.spec.comment)
    for key, value in ref.spec.properties:
        builder = builder.property(key, value)
    builder.execute()


def delta_table(spark: SparkSession, ref: TableRef) -> DeltaTable:
    """The ``DeltaTable`` handle of an existing table (for MERGE, history, vacuum)."""
    from delta.tables import DeltaTable

    if ref.qualified_name:
        return DeltaTable.forName(spark, ref.qualified_name)
    return DeltaTable.forPath(spark, ref.path)


def read_table_snapshot(spark: SparkSession, ref: TableRef) -> tuple[DataFrame, int]:
    """The table pinned at its latest version, and that version.

    Every pass of a job over the result sees the same rows even if another job commits meanwhile.
    """
    version = int(delta_table(spark, ref).history(1).select("version").collect()[0][0])
    if ref.qualified_name:
        return spark.sql(f"SELECT * FROM {ref.qualified_name} VERSION AS OF {version}"), version
    return spark.read.format("delta").option("versionAsOf", version).load(ref.path), version


def require_table(spark: SparkSession, cfg: Config, spec: TableSpec, job: str) -> DataFrame:
    """``spec``'s table pinned to its current version; ``MissingInputError`` naming ``job`` (the job
    that writes it) when it does not exist yet."""
    ref = table_ref(cfg, spec)
    if not table_exists(spark, ref):
        raise MissingInputError(f"{spec.logical_name} not found at {ref}: run {job} first")
    return read_table_snapshot(spark, ref)[0]


def write_table(
    df: DataFrame,
    ref: TableRef,
    mode: str = "append",
    replace_where: str | None = None,
) -> None:
    """Write ``df`` to a Delta table (created from its spec first if needed), atomically.

    ``replace_where`` (with mode ``overwrite``) replaces exactly the rows matching the predicate, the
    idempotent way to rewrite one night's partition; a killed write leaves the previous version.
    """
    if replace_where is not None and mode != "overwrite":
        raise ValueError("replace_where needs mode='overwrite'")
    with delta_conflicts(ref):
        ensure_table(df.sparkSession, ref)
        writer = df.write.format("delta").mode(mode)
        if ref.spec.partition_by:
            writer = writer.partitionBy(*ref.spec.partition_by)
        if replace_where is not None:
            writer = writer.option("replaceWhere", replace_where)
        if ref.qualified_name:
            writer.saveAsTable(ref.qualified_name)
        else:
            writer.save(ref.path)


def merge_table(
    df: DataFrame,
    ref: TableRef,
    keys: Sequence[str],
    compare: Sequence[str] = (),
) -> dict[str, int]:
    """Upsert ``df`` into the table on ``keys`` (Delta MERGE); return its row counts.

    Rows of ``df`` equal to the table's row of the same key on every ``compare`` column (null-safe)
    are left out, so re-merging the same rows writes nothing (no commit, no rewritten files, the
    table stays identical); new keys are inserted and changed rows replaced, in one commit.
    ``df`` must hold each key at most once and no null key. Returns ``inserted``, ``updated`` and
    ``unchanged`` (counted in one aggregation before the MERGE).
    """
    spark = df.sparkSession
    if not table_exists(spark, ref):
        # First write: nothing to match against, and an append costs a fraction of a MERGE.
        write_table(df, ref, mode="append")
        return {"inserted": df.count(), "updated": 0, "unchanged": 0}
    current = read_table(spark, ref).select(
        *keys, *[F.col(c).alias(f"_t_{c}") for c in compare], F.lit(True).alias("_t_exists")
    )
    joined = df.join(current, on=list(keys), how="left")
    same = F.lit(True)
    for c in compare:
        same = same & joined[c].eqNullSafe(joined[f"_t_{c}"])
    action = F.when(F.col("_t_exists").isNull(), "inserted").when(same, "unchanged").otherwise("updated")
    joined = joined.withColumn("_action", action)
    counts = {"inserted": 0, "updated": 0, "unchanged": 0}
    counts.update({r["_action"]: int(r["count"]) for r in joined.groupBy("_action").count().collect()})
    if counts["inserted"] + counts["updated"] == 0:
        return counts
    changed = joined.filter(F.col("_action") != "unchanged").select(*df.columns)
    target = delta_table(spark, ref)
    on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    with delta_conflicts(ref):
        (target.alias("t").merge(changed.alias("s"), on).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute())
    return counts


# ---- Delta failures a user can act on ------------------------------------------------------------


def _from_jvm(exc: BaseException) -> bool:
    """Raised by py4j or PySpark's wrappers of a JVM exception (so its text names the Java class)."""
    return type(exc).__module__.split(".")[0] in ("py4j", "pyspark", "delta")


def is_delta_conflict(exc: BaseException) -> bool:
    """True for Delta's commit conflicts (ConcurrentAppendException and its siblings).

    They reach Python as ``delta.exceptions`` classes only when that module was imported (it patches
    PySpark's converter); otherwise as a ``Py4JJavaError`` whose Java class is
    ``io.delta.exceptions.*``. Both are recognised, by class name and by the Java class in the text.
    """
    names = {k.__name__ for k in type(exc).__mro__}
    if names & {
        "DeltaConcurrentModificationException",
        "ConcurrentAppendException",
        "ConcurrentDeleteReadException",
        "ConcurrentDeleteDeleteException",
        "ConcurrentWriteException",
        "MetadataChangedException",
        "ProtocolChangedException",
        "ConcurrentTransactionException",
    }:
        return True
    if not _from_jvm(exc):
        return False
    text = str(exc)[:2000]
    return "io.delta.exceptions.Concurrent" in text or "DELTA_CONCURRENT" in text


@contextmanager
def delta_conflicts(ref: TableRef) -> Iterator[None]:
    """Turn a Delta commit conflict on ``ref`` into ``ConcurrentRunError`` naming the table.

    Delta's message never names the table, and only the write knows which one it was; the job's top
    level (``run_job``) adds which run and night lost.
    """
    try:
        yield
    except Exception as exc:  # the conflict classes come through py4j
        if not is_delta_conflict(exc):
            raise
        name = ref.spec.logical_name
        raise ConcurrentRunError(
            f"another run committed to {name} at {ref} at the same time and won (Delta refused this "
            "run's commit); the table holds the winner's complete version",
            table=name,
        ) from exc


def _name_of(cfg: Config | None, table_path: str) -> str:
    """The logical name of the table stored at ``table_path`` under ``cfg``, or its folder name."""
    if cfg is not None and not cfg.tables.uc_catalog:
        target = local_path(table_path)
        for spec in TABLES.values():
            path = table_ref(cfg, spec).path
            if path is not None and target is not None and local_path(path) == target:
                return spec.logical_name
    return Path(table_path).name


def explain_delta_error(exc: BaseException, cfg: Config | None) -> HybridrecError | None:
    """A user-facing error for a Delta failure the user can act on, or None (a bug keeps its trace).

    Recognised: a commit conflict (another run won) and an unreadable commit file of a table's log.
    Spark reads the log lazily, so a corrupt log surfaces at the first action, anywhere in a job:
    that is why this is applied at the top (``run_job``, the ``hybridrec`` command) and not in
    ``read_table``. The error message names the file; its folder tells which table it is.
    """
    if isinstance(exc, HybridrecError):
        return exc
    if is_delta_conflict(exc):
        return ConcurrentRunError(
            "another run committed to the same Delta table at the same time and won (Delta refused "
            "this run's commit); the table holds the winner's complete version",
            table="a table",
        )
    if not _from_jvm(exc):
        return None
    text = str(exc)[:4000]
    broken = broken_commit_in_text(text)
    if broken is None:
        return None
    return CorruptTableError(repair_advice(_name_of(cfg, broken.table_path), broken))


FEATURE_SETS = ("images", "text")


def features_path(cfg: Config, feature_set: str) -> str:
    """Folder of one Parquet feature set written by preprocess and read by Petastorm."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    return str(Path(cfg.paths.features) / feature_set)
