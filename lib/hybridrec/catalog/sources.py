"""Catalog and interaction files → raw DataFrames, by config alone.

A reader only reads: every source column is kept as it was read (CSV and JSON as text, Parquet with
its types), plus ``_source_file`` (the file each row came from) and ``_corrupt_record`` (the original
line when a CSV/JSON line does not split into the file's columns; null otherwise). Mapping columns to
product or interaction fields and judging rows is ``hybridrec.catalog.validation``'s job, so that the
quarantine can keep each original row intact.

Named for what it reads, the raw input sources of ingest; ``hybridrec.reader`` is something else:
the Spark-free reader of the output tables for downstream consumers.

CSV follows RFC 4180: fields may be quoted with ``"`` and a quote inside a quoted field is doubled
(``"Tempo 3.5"" Short"``), which is how the fashion catalog and spreadsheet exports write them.
Catalog and interaction CSVs alike are read with multi-line fields allowed, so a quoted field
holding a line break is one record (counted once, accepted or quarantined whole) instead of two
half-records. The price: Spark reads each CSV file in one task, so a large log is best delivered
as several files.

Before Spark reads anything, the head of every file is checked on the driver (``input_files``):

- a file in UTF-16/UTF-32 (a BOM or NUL bytes) stops the job naming the file and its encoding;
  UTF-8 with a BOM is read (the BOM is not part of the first column's name);
- gzip data in a file not named ``.gz`` (Spark would read the compressed bytes as text), or a
  ``.gz`` file that is not gzip data, stops the job naming the file;
- each CSV file's own header is read: files of one folder whose headers differ (another column
  order, an extra column) are each read by their own header and combined by column name, never
  by position; a header naming a column twice stops the job.

Parquet files of one input are read with their schemas merged; files that disagree on a column's
type stop the job with the files and the column named (``ParquetTypeMismatch``).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce
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


class InputEncodingError(HybridrecError):
    """An input file is not UTF-8 text (UTF-16, gzip under a .csv name, ...); the message names the
    file, says "encoding" and how to convert it."""


# Bytes read from the start of each file: enough for any header line, cheap for thousands of files.
HEAD_BYTES = 256 * 1024
_HEAD_THREADS = 8
_GZIP_MAGIC = b"\x1f\x8b"
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 LE"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "UTF-32 BE"),
    (codecs.BOM_UTF16_LE, "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "UTF-16 BE"),
)


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
    mapped = {f"catalog.columns.{k}": v for k, v in dataclasses.asdict(cat.columns).items()}
    mapped.update({f"catalog.attributes[{i}]": a for i, a in enumerate(cat.attributes)})
    raw = read_source(
        spark,
        cat.path,
        cat.file_format,
        separator=cat.separator,
        header=cat.header,
        column_names=cat.column_names,
        multiline=True,
        key="catalog",
        mapped=mapped,
    )
    require_columns(raw, mapped, cat.path)
    return raw


def read_interactions(spark: SparkSession, inter: InteractionsConfig) -> RawInput:
    """Read the interaction file(s) of ``inter`` and check the mapping.

    Multi-line records are parsed as in the catalog: a quoted field with a line break must not turn
    one event into two half-events (one of them accepted with a mangled id).
    """
    if inter.path is None:
        raise ValueError("interactions.path is null: there is nothing to read")
    require_input(spark, inter.path, "interactions.path")
    mapped = {f"interactions.columns.{k}": v for k, v in dataclasses.asdict(inter.columns).items()}
    raw = read_source(
        spark,
        inter.path,
        inter.file_format,
        separator=inter.separator,
        header=inter.header,
        column_names=inter.column_names,
        multiline=True,
        key="interactions",
        mapped=mapped,
    )
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
    mapped: dict[str, str | None] | None = None,
) -> RawInput:
    """Read CSV, Parquet or JSON Lines into a ``RawInput`` (see the module docstring).

    ``mapped`` (config key → column) lets a folder of CSV files with differing headers be checked
    file by file: the file lacking a mapped column is named.
    """
    if file_format not in ("csv", "jsonl", "parquet"):
        raise ValueError(f"{key}.file_format {file_format!r} is not csv, parquet or jsonl")
    files = input_files(spark, path)
    if file_format == "csv":
        heads = read_heads(spark, files)
        for f, head in heads.items():
            check_text_head(f, head, key)
        df = _read_csv(spark, path, heads, separator, header, column_names, multiline, key, mapped)
    elif file_format == "jsonl":
        for f, head in read_heads(spark, files).items():
            check_text_head(f, head, key)
        df = spark.read.options(
            primitivesAsString="true", mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT_RECORD
        ).json(path)
        if CORRUPT_RECORD not in df.columns:
            df = df.withColumn(CORRUPT_RECORD, F.lit(None).cast("string"))
        df = with_source_file(df)
    else:
        df = with_source_file(_read_parquet(spark, path, files, key)).withColumn(
            CORRUPT_RECORD, F.lit(None).cast("string")
        )
    columns = tuple(c for c in df.columns if c not in INTERNAL_COLUMNS)
    df = df.select(*[F.col(quote(c)) for c in columns], F.col(CORRUPT_RECORD), F.col(SOURCE_FILE))
    files = tuple(sorted(normalise_source_file(f) for f in df.inputFiles()))
    log.info("%s: %s %s (%d file(s)), columns %s", key, file_format, redact(path), len(files), list(columns))
    return RawInput(df=df, columns=columns, files=files)


# --- what each file holds, checked on the driver before Spark reads it -------------------------


def input_files(spark: SparkSession, path: str) -> list[str]:
    """The files Spark reads for ``path`` (a file, folder or glob; hidden ``_``/``.`` files left
    out as Spark does), as URIs, sorted. Listing only: no data is read."""
    return sorted(spark.read.format("text").load(path).inputFiles())


def read_heads(spark: SparkSession, files: Sequence[str]) -> dict[str, tuple[bytes, bytes]]:
    """URI → (first bytes as stored, first ``HEAD_BYTES`` bytes as Spark will decode them).

    Read through Hadoop's FileSystem (any scheme Spark reads) with its compression codec chosen by
    file name, as Spark chooses it; a few files at a time, since object stores answer slowly.
    """
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - py4j is the only way to Hadoop's configuration
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # noqa: SLF001 - py4j is the only way to Hadoop's configuration
    factory = jvm.org.apache.hadoop.io.compress.CompressionCodecFactory(conf)

    def head(uri: str) -> tuple[bytes, bytes]:
        hpath = jvm.org.apache.hadoop.fs.Path(uri)
        fs = hpath.getFileSystem(conf)
        stored = _read_at_most(jvm, fs.open(hpath), 4)
        codec = factory.getCodec(hpath)
        if codec is None:
            return stored, _read_at_most(jvm, fs.open(hpath), HEAD_BYTES)
        if stored[:2] != _GZIP_MAGIC and codec.getDefaultExtension() == ".gz":
            return stored, b""  # not gzip data: check_text_head says so, nothing to decompress
        try:
            return stored, _read_at_most(jvm, codec.createInputStream(fs.open(hpath)), HEAD_BYTES)
        except Exception:  # a damaged archive: Spark's own read will say more
            log.warning("cannot decompress the head of %s", redact(uri), exc_info=True)
            return stored, b""

    with ThreadPoolExecutor(max_workers=_HEAD_THREADS) as pool:
        return dict(zip(files, pool.map(head, files)))


def _read_at_most(jvm: object, stream: object, n: int) -> bytes:
    """Up to ``n`` bytes of a Java InputStream (closed afterwards), as Python bytes."""
    try:
        bounded = jvm.org.apache.commons.io.input.BoundedInputStream(stream, n)  # type: ignore[attr-defined]
        return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(bounded))  # type: ignore[attr-defined]
    finally:
        stream.close()  # type: ignore[attr-defined]


def check_text_head(uri: str, head: tuple[bytes, bytes], key: str) -> None:
    """Raise ``InputEncodingError`` when a file is not text Spark can read as UTF-8.

    Without this, Spark reads UTF-16 as NUL-laden column names and gzip bytes as garbage, and the
    user sees a missing-column error (or a trace) that never says what is wrong with the file.
    """
    stored, text = head
    name = redact(normalise_source_file(uri))
    is_gz_name = uri.lower().endswith(".gz")
    if stored[:2] == _GZIP_MAGIC and not is_gz_name:
        raise InputEncodingError(
            f"{key}: {name} is gzip-compressed data but its name does not end in .gz, so its "
            "encoding cannot be read as text: rename it to end in .gz (Spark then decompresses "
            "it) or decompress it"
        )
    if is_gz_name and stored[:2] != _GZIP_MAGIC:
        what = "is empty (0 bytes)" if not stored else "is not gzip data"
        raise InputEncodingError(
            f"{key}: {name} is named .gz but {what}, so its encoding cannot be read: deliver the "
            "file again, or remove the .gz ending if it is plain UTF-8 text"
        )
    encoding = sniff_encoding(text)
    if encoding is not None:
        raise InputEncodingError(
            f"{key}: {name} is in the {encoding} encoding, not UTF-8: convert it to UTF-8 (for "
            f"example iconv -f {encoding.split(' ')[0]} -t UTF-8) or export it again as UTF-8"
        )


def sniff_encoding(head: bytes) -> str | None:
    """The name of a non-UTF-8 encoding ``head`` is evidently in (a BOM, or NUL bytes making up a
    quarter of it or more, as in UTF-16 text of mostly ASCII characters); None otherwise. A stray
    NUL inside one UTF-8 field is that row's problem (quarantined as invalid_encoding), not the
    file's."""
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    nul = head.find(b"\x00")
    if nul < 0 or head.count(b"\x00") * 4 < len(head):
        return None
    return "UTF-16 LE" if nul % 2 == 1 else "UTF-16 BE"


def parse_header(text: bytes, separator: str) -> list[str]:
    """The first CSV record of a file head (a UTF-8 BOM dropped), as Spark would read it."""
    decoded = text.decode("utf-8", errors="replace").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(decoded), delimiter=separator, quotechar='"', doublequote=True)
    return next(reader, [])


def _read_csv(
    spark: SparkSession,
    path: str,
    heads: dict[str, tuple[bytes, bytes]],
    separator: str,
    header: bool,
    column_names: list[str] | None,
    multiline: bool,
    key: str,
    mapped: dict[str, str | None] | None,
) -> DataFrame:
    """Read CSV files each by its own header; files sharing a header are read together.

    Spark alone would take the first file's header and map every other file by position: a file
    with another column order would land with ids and titles swapped.
    """
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
    if not heads:  # an empty folder: Spark's own (empty) read
        return _read_csv_files(spark, [path], [], options)
    groups: dict[tuple[str, ...], list[str]] = {}
    for uri, (_, text) in heads.items():
        columns = tuple(file_columns(uri, text, separator, header, column_names, key))
        groups.setdefault(columns, []).append(uri)
    if len(groups) > 1:
        log.warning(
            "%s: %d different headers in %d files; each file is read by its own header: %s",
            key,
            len(groups),
            len(heads),
            "; ".join(f"{_names(fs)}: {', '.join(c)}" for c, fs in groups.items()),
        )
        if mapped:
            for columns, fs in groups.items():
                _require_in_files(columns, fs, mapped, key)
    frames = [_read_csv_files(spark, fs, list(c), options) for c, fs in groups.items()]
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def file_columns(
    uri: str, text: bytes, separator: str, header: bool, column_names: list[str] | None, key: str
) -> list[str]:
    """The column names a CSV file is read with: its header, ``column_names``, or Spark's ``_c<i>``.

    Raises ``InputSchemaError`` for a header naming a column twice (Spark would rename both to
    ``id0``/``id1`` and the mapping would fail far from the cause) or a column count that does not
    match ``column_names``.
    """
    first = parse_header(text, separator)
    name = redact(normalise_source_file(uri))
    if column_names is not None:
        if first and len(column_names) != len(first):
            raise InputSchemaError(
                f"{key}.column_names names {len(column_names)} columns but the first line of "
                f"{name} has {len(first)} (separator {separator!r}): fix {key}.column_names or "
                f"{key}.separator"
            )
        return list(column_names)
    if not header:
        return [f"_c{i}" for i in range(len(first))]
    seen: dict[str, str] = {}
    for column in first:
        folded = column.lower()  # Spark resolves column names case-insensitively
        if folded in seen:
            raise InputSchemaError(
                f"{key}: the header of {name} names the column {column!r} twice (as "
                f"{seen[folded]!r} and {column!r}): fix the file's header so every column has "
                "its own name"
            )
        seen[folded] = column
    return first


def _read_csv_files(spark: SparkSession, paths: list[str], columns: list[str], options: dict[str, str]) -> DataFrame:
    """Read ``paths`` with every column as text (``columns``, or what Spark finds when empty)."""
    if not columns:  # no first line at all (an empty file)
        columns = spark.read.options(**options).csv(paths).columns
    schema = T.StructType(
        [T.StructField(c, T.StringType(), True) for c in columns]
        + [T.StructField(CORRUPT_RECORD, T.StringType(), True)]
    )
    return with_source_file(spark.read.options(**options).schema(schema).csv(paths))


def with_source_file(df: DataFrame) -> DataFrame:
    """``df`` plus ``_source_file``, taken before any union (a union has no ``_metadata``)."""
    return df.withColumn(SOURCE_FILE, source_file_column(F.col("_metadata.file_path")))


def _require_in_files(columns: Sequence[str], files: Sequence[str], mapped: dict[str, str | None], key: str) -> None:
    """Raise ``InputSchemaError`` naming the file(s) whose header lacks a mapped column."""
    present = set(columns)
    for config_key, column in mapped.items():
        if column is not None and column not in present:
            raise InputSchemaError(
                f"{config_key} is {column!r} but {_names(files)} of the {key} files has no such "
                f"column (its columns: {', '.join(columns) or 'none'}): fix that file's header, or "
                "move it out of the folder"
            )


def _names(files: Sequence[str], limit: int = 3) -> str:
    """Files for a message: the first ``limit`` by path, then how many more."""
    shown = [redact(normalise_source_file(f)) for f in list(files)[:limit]]
    more = len(files) - len(shown)
    return ", ".join(shown) + (f" (and {more} more)" if more else "")


def _read_parquet(spark: SparkSession, path: str, files: Sequence[str], key: str) -> DataFrame:
    """Parquet with the files' schemas merged (a file with an extra column adds it).

    Files that disagree on a column's type cannot be merged; Spark's error (or, unmerged, a
    FAILED_READ_FILE trace at the first action) is replaced by one naming the column and files.
    """
    try:
        return spark.read.option("mergeSchema", "true").parquet(path)
    except Exception as exc:  # diagnosed below, re-raised when not a type clash
        mismatch = parquet_type_mismatch(spark, files)
        if mismatch is None:
            raise
        raise InputSchemaError(f"{key}: {mismatch}") from exc


def parquet_type_mismatch(spark: SparkSession, files: Sequence[str]) -> str | None:
    """The first column whose type differs between Parquet files, as a sentence; None when the
    files agree. Reads each file's footer (the error path only)."""
    first_seen: dict[str, tuple[str, str]] = {}
    for uri in files:
        for field in spark.read.parquet(uri).schema.fields:
            dtype = field.dataType.simpleString()
            seen = first_seen.setdefault(field.name.lower(), (dtype, uri))
            if seen[0] != dtype:
                return (
                    f"column {field.name!r} is {seen[0]} in {_names([seen[1]])} but {dtype} in "
                    f"{_names([uri])}: Parquet files of one input must agree on each column's "
                    "type; write them again with one type (or move the odd file out of the folder)"
                )
    return None


def require_input(spark: SparkSession, path: str, key: str) -> None:
    """Raise ``MissingInputError`` naming the config key when ``path`` does not exist.

    Messages quote paths through ``runs.redact``: a URI may carry credentials (``s3a://KEY:SECRET@``).
    """
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - Hadoop's FileSystem knows every scheme Spark reads
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # noqa: SLF001 - py4j is the only way to Hadoop's configuration
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
            near = [c for c in raw.columns if c.strip().lower() == column.strip().lower()]
            hint = f" ({near[0]!r} differs only in case or spaces)" if near else ""
            raise InputSchemaError(
                f"{key} is {column!r} but {redact(path)} has no such column{hint} (columns: "
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
