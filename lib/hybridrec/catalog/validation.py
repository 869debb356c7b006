"""Raw catalog and interaction rows → accepted rows and quarantine rows (pure DataFrame transforms).

Every input row ends in exactly one of two places: accepted (``reason`` null) or quarantined with
one reason code from ``hybridrec.catalog.reasons`` and a detail. The checks run in a fixed order and
the first that fails names the row's reason, so counts per reason add up to the rows read.

Products, in order: malformed_row, missing_id, duplicate_id_conflict / duplicate_row,
invalid_encoding, unparseable_timestamp / timestamp_too_old / future_timestamp (listed_at),
empty_category, unknown_category,
image_path_escapes_root, unreadable_image, missing_image, empty_text_and_no_image.

- Duplicates are judged on the whole input (every file read in the run): copies of one id with
  different content make the input ambiguous, so all copies are quarantined (duplicate_id_conflict);
  exact copies collapse to one accepted row and the others are quarantined as duplicate_row, so
  read = accepted + quarantined still holds.
- Timestamps (listed_at, event times) are checked by one rule (``timestamp_range_rules``): after
  the run started is future_timestamp, before 1678 timestamp_too_old. Every timestamp written thus
  fits the nanoseconds-since-1970 range (1677-2262) that delta-rs/pyarrow readers convert through;
  one outside it would make the Spark-free reader fail on the whole table.
- A product without a category is accepted (category null) unless ``catalog.require_category``:
  it is still recommendable (content and collaborative scores do not need a category), and
  preprocess gives it no training label. With ``catalog.categories`` set, a category outside the
  list is unknown_category.
- A product without an image reference is text-only and accepted if it has a title or description.
  A referenced file that does not exist is missing_image, or (``catalog.missing_image: text_only``)
  the product is accepted without a photo. Unreadable photos and paths that leave the image root
  are always quarantined: they are broken or hostile data, not an absent photo.

Interactions, in order: malformed_row, missing_user, missing_product, invalid_encoding,
unparseable_timestamp, timestamp_too_old, future_timestamp, unknown_event, invalid_weight, below_min_rating,
unknown_product, then duplicates among the rows that passed (key user, product, ts, event):
duplicate_event_conflict when the copies disagree on the weight, duplicate_row for exact copies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hybridrec.catalog import image_check as ic
from hybridrec.catalog import reasons
from hybridrec.catalog.sources import CORRUPT_RECORD, SOURCE_FILE, quote
from hybridrec.config import CatalogConfig, InteractionsConfig
from hybridrec.tables import QUARANTINE_PRODUCTS

REASON = "reason"
DETAIL = "detail"
# Accepted product whose referenced photo is absent (catalog.missing_image: text_only).
PHOTO_MISSING = "_photo_missing"

_REPLACEMENT_CHAR = "\ufffd"
# Epoch seconds beyond this (year 5138) are not seconds: probably milliseconds or garbage.
_MAX_EPOCH_SECONDS = 1e11
# The earliest timestamp kept: nanoseconds since 1970 in an int64 reach back to 1677-09-21.
MIN_TIMESTAMP = dt.datetime(1678, 1, 1, tzinfo=dt.UTC)
_STRING_MAP = T.MapType(T.StringType(), T.StringType())

Rule = tuple[Column, str, Column]


# --- shared column helpers -------------------------------------------------------------------


def as_text(df: DataFrame, column: str) -> Column:
    """A source column as its text (CSV/JSON values are text already; Parquet values are cast)."""
    dtype = df.schema[column].dataType
    col = F.col(quote(column))
    if isinstance(dtype, T.StringType):
        return col
    if isinstance(dtype, (T.StructType, T.ArrayType, T.MapType)):
        return F.to_json(col)
    return col.cast("string")


def clean_text(col: Column) -> Column:
    """Leading/trailing whitespace dropped; empty → null (an empty cell is an absent value)."""
    trimmed = F.regexp_replace(col, r"^\s+|\s+$", "")
    return F.when(trimmed != "", trimmed)


def raw_map(df: DataFrame, columns: Sequence[str]) -> Column:
    """The original row as column name → text, with the unparsed line of a malformed row."""
    pairs: list[Column] = []
    for c in columns:
        pairs += [F.lit(c), as_text(df, c)]
    pairs += [F.lit(CORRUPT_RECORD), F.col(CORRUPT_RECORD)]
    m = F.create_map(*pairs).cast(_STRING_MAP)
    return F.map_filter(m, lambda k, v: (k != F.lit(CORRUPT_RECORD)) | v.isNotNull())


def parse_timestamp(df: DataFrame, column: str, timestamp_format: str | None) -> Column:
    """A source column as a timestamp; null when it cannot be parsed (never an error).

    Parquet timestamps and dates are taken as they are; numbers are epoch seconds; text is parsed
    with ``timestamp_format`` when given, else as epoch seconds when numeric, else as ISO-8601.
    """
    dtype = df.schema[column].dataType
    col = F.col(quote(column))
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        return col.cast("timestamp")
    if isinstance(dtype, T.NumericType):
        return _epoch_seconds(col.cast("double"))
    text = clean_text(as_text(df, column))
    if timestamp_format:
        return F.try_to_timestamp(text, F.lit(timestamp_format))
    return F.when(text.rlike(r"^-?[0-9]+(\.[0-9]+)?$"), _epoch_seconds(text.try_cast("double"))).otherwise(
        F.try_to_timestamp(text)
    )


def _epoch_seconds(seconds: Column) -> Column:
    return F.when(F.abs(seconds) < _MAX_EPOCH_SECONDS, F.timestamp_seconds(seconds))


def has_bad_encoding(*cols: Column) -> Column:
    """True when a text holds U+FFFD, what Spark decodes invalid UTF-8 bytes into, or NUL: never
    meaningful in a title or an id, it is what UTF-16 text read as UTF-8 looks like, and systems
    downstream refuse it (C strings, PostgreSQL text). Other control characters and bidi marks
    stay (right-to-left titles need U+200F); the terminal display escapes them."""
    checks = [F.coalesce((F.instr(c, _REPLACEMENT_CHAR) > 0) | (F.instr(c, "\u0000") > 0), F.lit(False)) for c in cols]
    out = checks[0]
    for c in checks[1:]:
        out = out | c
    return out


def first_failure(rules: Sequence[Rule]) -> Column:
    """struct(reason, detail) of the first rule whose condition holds; null when none does."""
    out: Column | None = None
    for cond, reason, detail in rules:
        value = F.struct(F.lit(reason).alias(REASON), detail.cast("string").alias(DETAIL))
        out = F.when(cond, value) if out is None else out.when(cond, value)
    assert out is not None
    return out


def timestamp_range_rules(ts: Column, what: str, now: dt.datetime) -> list[Rule]:
    """The rules every parsed timestamp passes: not before ``MIN_TIMESTAMP``, not after ``now``.

    One rule for event times and listed_at alike: a date after the run is an error in the data
    (a clock, a placeholder like 2999-01-01), and a date outside 1678..2262 cannot be read back by
    readers that hold timestamps as nanoseconds (delta-rs/pyarrow/pandas), so it must not reach a
    table. A null ``ts`` passes: unparseable and absent values are judged before.
    """
    shown = F.date_format(ts, "yyyy-MM-dd HH:mm:ss")
    return [
        (
            ts < F.lit(MIN_TIMESTAMP).cast("timestamp"),
            reasons.TIMESTAMP_TOO_OLD,
            F.format_string(
                "%s %s is before %s, the earliest timestamp kept (readers holding nanoseconds "
                "since 1970 cannot represent it)",
                F.lit(what),
                shown,
                F.lit(MIN_TIMESTAMP.strftime("%Y-%m-%d")),
            ),
        ),
        (
            ts > F.lit(_utc(now)).cast("timestamp"),
            reasons.FUTURE_TIMESTAMP,
            F.format_string(
                "%s %s is after the ingest run started (%s UTC)",
                F.lit(what),
                shown,
                F.lit(now.strftime("%Y-%m-%d %H:%M:%S")),
            ),
        ),
    ]


def _utc(moment: dt.datetime) -> dt.datetime:
    """A naive datetime is UTC (runs.utcnow); make it aware so Spark does not apply local time."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def quarantine_rows(validated: DataFrame, run_id: str, ingested_at: dt.datetime) -> DataFrame:
    """The quarantined rows of a validated DataFrame in the quarantine tables' schema."""
    schema = QUARANTINE_PRODUCTS.schema  # both quarantine tables share it
    return validated.filter(F.col(REASON).isNotNull()).select(
        F.col("raw").cast(schema["raw"].dataType).alias("raw"),
        F.col(REASON).alias("reason"),
        F.col(DETAIL).alias("detail"),
        F.col(SOURCE_FILE).alias("source_file"),
        F.lit(run_id).alias("run_id"),
        F.lit(_utc(ingested_at)).cast("timestamp").alias("ingested_at"),
    )


# --- products --------------------------------------------------------------------------------


def standardize_products(raw: DataFrame, columns: Sequence[str], cat: CatalogConfig) -> DataFrame:
    """Source rows → product fields by the column mapping, plus ``raw`` and ``content_hash``.

    ``cat`` is the effective catalog config (``readers.catalog_settings``). Text is trimmed and an
    empty cell is null. ``image_ref`` is the image column's value, or ``image_pattern`` with the id.
    """
    m = cat.columns

    def field(column: str | None) -> Column:
        return clean_text(as_text(raw, column)) if column else F.lit(None).cast("string")

    product_id = field(m.id)
    if m.image:
        image_ref = field(m.image)
    elif cat.image_pattern:
        image_ref = F.replace(F.lit(cat.image_pattern), F.lit("{id}"), product_id)
    else:
        image_ref = F.lit(None).cast("string")
    if cat.attributes:
        pairs: list[Column] = []
        for a in cat.attributes:
            pairs += [F.lit(a), field(a)]
        attributes = F.map_filter(F.create_map(*pairs).cast(_STRING_MAP), lambda k, v: v.isNotNull())
    else:
        attributes = F.create_map().cast(_STRING_MAP)
    listed_at = parse_timestamp(raw, m.listed_at, None) if m.listed_at else F.lit(None).cast("timestamp")
    std = raw.select(
        raw_map(raw, columns).alias("raw"),
        product_id.alias("product_id"),
        field(m.title).alias("title"),
        field(m.description).alias("description"),
        field(m.category).alias("category"),
        image_ref.alias("image_ref"),
        attributes.alias("attributes"),
        listed_at.alias("listed_at"),
        field(m.listed_at).alias("listed_at_raw"),
        F.col(SOURCE_FILE),
        F.col(CORRUPT_RECORD),
    )
    # Attribute entries sorted, so reordering catalog.attributes does not "change" every product.
    content = F.to_json(
        F.struct(
            "title",
            "description",
            "category",
            "image_ref",
            "listed_at_raw",
            F.array_sort(F.map_entries("attributes")).alias("attributes"),
        )
    )
    return std.withColumn("content_hash", F.sha2(content, 256))


def validate_products(
    std: DataFrame,
    cat: CatalogConfig,
    image_check: Callable[[Column], Column] | None,
    now: dt.datetime,
    image_partitions: int | None = None,
) -> DataFrame:
    """Standardized products → the same rows with ``image_path``, ``reason`` and ``detail``.

    ``now`` is the run's start (naive UTC): a listed_at after it is future_timestamp.

    ``image_check`` maps an image-reference column to ``image_check.IMAGE_CHECK_TYPE`` (the pandas
    UDF of ``image_check.image_check_column``); it runs only on rows that passed the checks before
    it, after a round-robin ``image_partitions`` repartition so photos are checked on every core.
    """
    images_configured = bool(cat.columns.image or cat.image_pattern)
    if images_configured and image_check is None:
        raise ValueError("the catalog references images: validate_products needs an image_check")
    ok = F.col(CORRUPT_RECORD).isNull() & F.col("product_id").isNotNull()
    w = Window.partitionBy("product_id", ok)
    df = std.withColumns(
        {
            "_copies": F.count(F.lit(1)).over(w),
            "_conflict": F.min("content_hash").over(w) != F.max("content_hash").over(w),
            "_copy": F.row_number().over(w.orderBy(SOURCE_FILE, "content_hash")),
        }
    )
    rules: list[Rule] = [
        (
            F.col(CORRUPT_RECORD).isNotNull(),
            reasons.MALFORMED_ROW,
            F.lit("the line does not split into the file's columns (see raw._corrupt_record)"),
        ),
        (F.col("product_id").isNull(), reasons.MISSING_ID, F.lit("empty product id")),
        (
            F.col("_conflict"),
            reasons.DUPLICATE_ID_CONFLICT,
            F.format_string(
                "product id %s appears %d times in the input with different content",
                "product_id",
                "_copies",
            ),
        ),
        (
            F.col("_copy") > 1,
            reasons.DUPLICATE_ROW,
            F.format_string("exact copy %d of %d of product %s", "_copy", "_copies", "product_id"),
        ),
        (
            has_bad_encoding(*(F.col(c) for c in ("product_id", "title", "description", "category"))),
            reasons.INVALID_ENCODING,
            F.lit("text holds U+FFFD or NUL: the file is not valid UTF-8 text"),
        ),
        (
            F.col("listed_at_raw").isNotNull() & F.col("listed_at").isNull(),
            reasons.UNPARSEABLE_TIMESTAMP,
            F.format_string("listed_at %s is not a timestamp", "listed_at_raw"),
        ),
        *timestamp_range_rules(F.col("listed_at"), "listed_at", now),
    ]
    if cat.require_category:
        rules.append((F.col("category").isNull(), reasons.EMPTY_CATEGORY, F.lit("no category (required)")))
    if cat.categories is not None:
        rules.append(
            (
                F.col("category").isNotNull() & ~F.col("category").isin(list(cat.categories)),
                reasons.UNKNOWN_CATEGORY,
                F.format_string("category %s is not in catalog.categories", "category"),
            )
        )
    df = df.withColumn("_pre", first_failure(rules))

    if images_configured and image_check is not None:
        if image_partitions:
            df = df.repartition(image_partitions)
        needs_check = F.col("_pre").isNull() & F.col("image_ref").isNotNull()
        df = df.withColumn("_img", image_check(F.when(needs_check, F.col("image_ref"))))
    else:
        df = df.withColumn("_img", F.lit(None).cast(ic.IMAGE_CHECK_TYPE))
    status = F.col("_img.status")
    no_text = F.col("title").isNull() & F.col("description").isNull()
    photo_missing = status == ic.MISSING
    image_rules: list[Rule] = [
        (status == ic.ESCAPES, reasons.IMAGE_PATH_ESCAPES_ROOT, F.col("_img.detail")),
        (status == ic.UNREADABLE, reasons.UNREADABLE_IMAGE, F.col("_img.detail")),
    ]
    if cat.missing_image == "quarantine":
        image_rules.append((photo_missing, reasons.MISSING_IMAGE, F.col("_img.detail")))
    else:
        no_photo_no_text = F.concat(F.col("_img.detail"), F.lit(" and no text"))
        image_rules.append((photo_missing & no_text, reasons.MISSING_IMAGE, no_photo_no_text))
    image_path = F.when(status == ic.OK, F.col("_img.path"))
    image_rules.append(
        (
            no_text & image_path.isNull(),
            reasons.EMPTY_TEXT_AND_NO_IMAGE,
            F.lit("no title, no description, no image"),
        )
    )
    failure = F.coalesce(F.col("_pre"), first_failure(image_rules))
    return (
        df.withColumns(
            {
                "image_path": image_path,
                REASON: failure[REASON],
                DETAIL: failure[DETAIL],
            }
        )
        .withColumn(PHOTO_MISSING, F.col(REASON).isNull() & F.coalesce(photo_missing, F.lit(False)))
        .drop("_pre", "_img", "_copies", "_conflict", "_copy")
    )


def accepted_rows(validated: DataFrame, schema: T.StructType, ingested_at: dt.datetime) -> DataFrame:
    """The accepted rows of ``validate_products`` / ``validate_interactions`` in the bronze ``schema``."""
    return validated.filter(F.col(REASON).isNull()).select(
        *[
            (
                F.lit(_utc(ingested_at)).cast("timestamp")
                if f.name == "ingested_at"
                else F.col(SOURCE_FILE)
                if f.name == "source_file"
                else F.col(f.name)
            )
            .cast(f.dataType)
            .alias(f.name)
            for f in schema.fields
        ]
    )


# --- interactions ----------------------------------------------------------------------------


def standardize_interactions(raw: DataFrame, columns: Sequence[str], inter: InteractionsConfig) -> DataFrame:
    """Source rows → (user_id, product_id, ts, event, rating) by the column mapping, plus ``raw``.

    ``event`` is lower-cased; with only a rating column it is ``rating``. ``rating`` is a double
    (null when not a number); ``ts_raw``/``rating_raw`` keep the text for the quarantine detail.
    """
    m = inter.columns

    def field(column: str) -> Column:
        return clean_text(as_text(raw, column))

    if m.event:
        event = F.lower(field(m.event))
    else:
        event = F.lit("rating")
    if m.rating:
        rating_raw = field(m.rating)
        rating = (
            F.col(quote(m.rating)).cast("double")
            if isinstance(raw.schema[m.rating].dataType, T.NumericType)
            else rating_raw.try_cast("double")
        )
    else:
        rating_raw = F.lit(None).cast("string")
        rating = F.lit(None).cast("double")
    return raw.select(
        raw_map(raw, columns).alias("raw"),
        field(m.user).alias("user_id"),
        field(m.item).alias("product_id"),
        parse_timestamp(raw, m.timestamp, inter.timestamp_format).alias("ts"),
        field(m.timestamp).alias("ts_raw"),
        event.alias("event"),
        rating.alias("rating"),
        rating_raw.alias("rating_raw"),
        F.col(SOURCE_FILE),
        F.col(CORRUPT_RECORD),
    )


def validate_interactions(
    std: DataFrame,
    inter: InteractionsConfig,
    product_ids: DataFrame,
    now: dt.datetime,
) -> DataFrame:
    """Standardized interactions → the same rows with ``weight``, ``reason`` and ``detail``.

    ``product_ids`` (one column ``product_id``) is the catalog an interaction must refer to
    (bronze.products after this run's products were merged); ``now`` is the run's start: events
    after it are future_timestamp.
    """
    m = inter.columns
    known = product_ids.select("product_id").distinct().withColumn("_known", F.lit(True))
    df = std.join(known, on="product_id", how="left")
    weights = F.create_map(*[x for e, w in sorted(inter.event_weights.items()) for x in (F.lit(e), F.lit(float(w)))])
    event_weight = F.try_element_at(weights, F.col("event")) if m.event else F.lit(1.0)
    rating = F.col("rating")
    if m.rating:
        weight = event_weight * rating
        bad_rating = rating.isNull() | F.isnan(rating) | (rating < 0) | (F.abs(rating) == float("inf"))
    else:
        weight = event_weight
        bad_rating = F.lit(False)
    rules: list[Rule] = [
        (
            F.col(CORRUPT_RECORD).isNotNull(),
            reasons.MALFORMED_ROW,
            F.lit("the line does not split into the file's columns (see raw._corrupt_record)"),
        ),
        (F.col("user_id").isNull(), reasons.MISSING_USER, F.lit("empty user id")),
        (F.col("product_id").isNull(), reasons.MISSING_PRODUCT, F.lit("empty product id")),
        (
            has_bad_encoding(F.col("user_id"), F.col("product_id"), F.col("event")),
            reasons.INVALID_ENCODING,
            F.lit("text holds U+FFFD or NUL: the file is not valid UTF-8 text"),
        ),
        (
            F.col("ts").isNull(),
            reasons.UNPARSEABLE_TIMESTAMP,
            F.format_string(
                "timestamp %s is not %s",
                F.coalesce(F.col("ts_raw"), F.lit("(empty)")),
                F.lit(
                    f"in the format {inter.timestamp_format}" if inter.timestamp_format else "ISO-8601 or epoch seconds"
                ),
            ),
        ),
        *timestamp_range_rules(F.col("ts"), "timestamp", now),
    ]
    if m.event:
        rules.append(
            (
                event_weight.isNull(),
                reasons.UNKNOWN_EVENT,
                F.format_string(
                    "event %s is not in interactions.event_weights (%s)",
                    F.coalesce(F.col("event"), F.lit("(empty)")),
                    F.lit(", ".join(sorted(inter.event_weights))),
                ),
            )
        )
    if m.rating:
        rules += [
            (
                bad_rating,
                reasons.INVALID_WEIGHT,
                F.format_string(
                    "rating %s is not a finite number >= 0",
                    F.coalesce(F.col("rating_raw"), F.lit("(empty)")),
                ),
            ),
            (
                rating < F.lit(inter.min_rating),
                reasons.BELOW_MIN_RATING,
                F.format_string(
                    "rating %s is below interactions.min_rating %s",
                    "rating_raw",
                    F.lit(str(inter.min_rating)),
                ),
            ),
        ]
    rules.append(
        (
            F.col("_known").isNull(),
            reasons.UNKNOWN_PRODUCT,
            F.format_string("product %s is not in bronze.products", "product_id"),
        )
    )
    df = df.withColumns({"_pre": first_failure(rules), "weight": weight.cast("double")})
    key = ["user_id", "product_id", "ts", "event"]
    w = Window.partitionBy(*key, F.col("_pre").isNull())
    df = df.withColumns(
        {
            "_copies": F.count(F.lit(1)).over(w),
            "_conflict": F.min("weight").over(w) != F.max("weight").over(w),
            "_copy": F.row_number().over(w.orderBy(SOURCE_FILE, "weight")),
        }
    )
    dup_rules: list[Rule] = [
        (
            F.col("_conflict"),
            reasons.DUPLICATE_EVENT_CONFLICT,
            F.format_string(
                "%d copies of (user %s, product %s, %s, %s) with different weights",
                "_copies",
                "user_id",
                "product_id",
                "ts",
                "event",
            ),
        ),
        (
            F.col("_copy") > 1,
            reasons.DUPLICATE_ROW,
            F.format_string("exact copy %d of %d of this event", "_copy", "_copies"),
        ),
    ]
    failure = F.coalesce(F.col("_pre"), F.when(F.col("_pre").isNull(), first_failure(dup_rules)))
    return df.withColumns({REASON: failure[REASON], DETAIL: failure[DETAIL]}).drop(
        "_pre", "_known", "_copies", "_conflict", "_copy"
    )
