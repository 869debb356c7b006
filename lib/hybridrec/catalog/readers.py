"""Catalog and interaction files → raw DataFrames, by config alone.

A reader only reads: every source column is kept as it was read (CSV and JSON as text, Parquet with
its types), plus ``_source_file`` (the file each row came from) and ``_corrupt_record`` (the original
line when a CSV/JSON line does not split into the file's columns; null otherwise). Mapping columns to
product or interaction fields and judging rows is ``hybridrec.catalog.validation``'s job, so that the
quarantine can keep each original row intact.

CSV follows RFC 4180: fields may be quoted with ``"`` and a quote inside a quoted field is doubled
(``"Tempo 3.5"" Short"``), which is how the fashion catalog and spreadsheet exports write them.
Catalog CSVs are read with multi-line fields allowed (descriptions contain line breaks); interaction
logs, which are large and one event per line, are read line by line so Spark can split them.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hybridrec.config import CatalogColumns, CatalogConfig, InteractionsConfig
from hybridrec.errors import HybridrecError, MissingInputError
from hybridrec.runs import redact

log = logging.getLogger(__name__)

SOURCE_FILE = "_source_file"
CORRUPT_RECORD = "_corrupt_record"
INTERNAL_COLUMNS = (SOURCE_FILE, CORRUPT_RECORD)

# Kaggle "retail-products-classification": train.csv + <ImgId>.jpg photos.
RETAIL_PRODUCTS_COLUMNS = CatalogColumns(
    id="ImgId", title="title", description="description", category="categories", image=None
)
RETAIL_PRODUCTS_IMAGE_PATTERN = "{id}.jpg"


class InputSchemaError(HybridrecError):
    """An input file lacks a column the config maps; the message names the key and the columns."""


@dataclass(frozen=True)
class RawInput:
    """Rows as read: ``df`` has ``columns`` (the source's own) plus ``_source_file`` and
    ``_corrupt_record``; ``files`` are the files read (normalised like ``_source_file``)."""

    df: DataFrame
    columns: tuple[str, ...]
    files: tuple[str, ...]


def catalog_settings(cat: CatalogConfig) -> CatalogConfig:
    """The catalog config with its layout applied: ``retail_products`` fixes format and columns.

    Kept separate (and pure) so the effective mapping can be logged and tested.
    """
    if cat.layout == "retail_products":
        return dataclasses.replace(
            cat,
            file_format="csv",
            separator=",",
            header=True,
            column_names=None,
            columns=dataclasses.replace(RETAIL_PRODUCTS_COLUMNS),
            image_pattern=RETAIL_PRODUCTS_IMAGE_PATTERN,
        )
    return cat


def read_catalog(spark: SparkSession, cat: CatalogConfig) -> RawInput:
    """Read the catalog file(s) of ``cat`` (after ``catalog_settings``) and check the mapping."""
    require_input(spark, cat.path, "catalog.path")
    raw = read_source(
        spark,
        cat.path,
        cat.file_format,
        separator=cat.separator,
        header=cat.header,
        column_names=cat.column_names,
        multiline=True,
        key="catalog",
    )
    mapped = {f"catalog.columns.{k}": v for k, v in dataclasses.asdict(cat.columns).items()}
    mapped.update({f"catalog.attributes[{i}]": a for i, a in enumerate(cat.attributes)})
    require_columns(raw, mapped, cat.path)
    return raw


def read_interactions(spark: SparkSession, inter: InteractionsConfig) -> RawInput:
    """Read the interaction file(s) of ``inter`` and check the mapping."""
    if inter.path is None:
        raise ValueError("interactions.path is null: there is nothing to read")
    require_input(spark, inter.path, "interactions.path")
    raw = read_source(
        spark,
        inter.path,
        inter.file_format,
        separator=inter.separator,
        header=inter.header,
        column_names=inter.column_names,
        multiline=False,
        key="interactions",
    )
    mapped = {f"interactions.columns.{k}": v for k, v in dataclasses.asdict(inter.columns).items()}
    require_columns(raw, mapped, inter.path)
    return raw


def read_source(
    spark: SparkSession,
    path: str,
    file_format: str,
    *,
    separator: str = ",",
    header: bool = True,
    column_names: list[str] | None = None,
    multiline: bool = False,
    key: str = "input",
) -> RawInput:
    """Read CSV, Parquet or JSON Lines into a ``RawInput`` (see the module docstring)."""
    if file_format == "csv":
        df = _read_csv(spark, path, separator, header, column_names, multiline, key)
    elif file_format == "jsonl":
        df = (
            spark.read.options(
                primitivesAsString="true", mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT_RECORD
            ).json(path)
        )
        if CORRUPT_RECORD not in df.columns:
            df = df.withColumn(CORRUPT_RECORD, F.lit(None).cast("string"))
    elif file_format == "parquet":
        df = spark.read.parquet(path).withColumn(CORRUPT_RECORD, F.lit(None).cast("string"))
    else:
        raise ValueError(f"{key}.file_format {file_format!r} is not csv, parquet or jsonl")
    columns = tuple(c for c in df.columns if c not in INTERNAL_COLUMNS)
    df = df.select(
        *[F.col(quote(c)) for c in columns],
        F.col(CORRUPT_RECORD),
        source_file_column(F.col("_metadata.file_path")).alias(SOURCE_FILE),
    )
    files = tuple(sorted(normalise_source_file(f) for f in df.inputFiles()))
    log.info(
        "%s: %s %s (%d file(s)), columns %s", key, file_format, redact(path), len(files), list(columns)
    )
    return RawInput(df=df, columns=columns, files=files)


def _read_csv(
    spark: SparkSession,
    path: str,
    separator: str,
    header: bool,
    column_names: list[str] | None,
    multiline: bool,
    key: str,
) -> DataFrame:
    options = {
        "header": "true" if header else "false",
        "sep": separator,
        "quote": '"',
        "escape": '"',
        "multiLine": "true" if multiline else "false",
        "encoding": "UTF-8",
        "mode": "PERMISSIVE",
        "columnNameOfCorruptRecord": CORRUPT_RECORD,
        "enforceSchema": "true",
    }
    # Spark reads the header (or first line) to learn the columns; every value then stays text.
    probed = spark.read.options(**options).csv(path).columns
    if column_names is not None:
        if len(column_names) != len(probed):
            raise InputSchemaError(
                f"{key}.column_names names {len(column_names)} columns but the first line of "
                f"{redact(path)} has {len(probed)} (separator {separator!r}): fix "
                f"{key}.column_names or {key}.separator"
            )
        probed = list(column_names)
    schema = T.StructType(
        [T.StructField(c, T.StringType(), True) for c in probed]
        + [T.StructField(CORRUPT_RECORD, T.StringType(), True)]
    )
    return spark.read.options(**options).schema(schema).csv(path)


def require_input(spark: SparkSession, path: str, key: str) -> None:
    """Raise ``MissingInputError`` naming the config key when ``path`` does not exist.

    Messages quote paths through ``runs.redact``: a URI may carry credentials (``s3a://KEY:SECRET@``).
    """
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - Hadoop's FileSystem knows every scheme Spark reads
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # noqa: SLF001
    if not fs.exists(hpath):
        raise MissingInputError(
            f"{key}: {redact(path)} does not exist: point {key} at the file or folder to ingest "
            f"(in the config file or with --set {key}=PATH)"
        )


def require_columns(raw: RawInput, mapped: dict[str, str | None], path: str) -> None:
    """Raise ``InputSchemaError`` when a column named in config is not in the source."""
    present = set(raw.columns)
    for key, column in mapped.items():
        if column is not None and column not in present:
            raise InputSchemaError(
                f"{key} is {column!r} but {redact(path)} has no such column (columns: "
                f"{', '.join(raw.columns) or 'none'}): fix {key} in the config, or the file's "
                "header/separator options"
            )


def source_file_column(uri: Column) -> Column:
    """A file URI from ``_metadata.file_path`` as a plain path (``file:`` dropped, %-escapes decoded).

    Must agree with ``normalise_source_file``: the quarantine is replaced per source file.
    """
    stripped = F.regexp_replace(uri, r"^file:(//)?", "")
    # URIs never hold a literal '+' for a space, but url_decode would read it as one.
    return F.url_decode(F.replace(stripped, F.lit("+"), F.lit("%2B")))


def normalise_source_file(uri: str) -> str:
    """Python twin of ``source_file_column`` for the paths ``DataFrame.inputFiles()`` lists."""
    return unquote(re.sub(r"^file:(//)?", "", uri))


def quote(column: str) -> str:
    """A source column name as a Spark column reference (names may hold dots or spaces)."""
    return "`" + column.replace("`", "``") + "`"
