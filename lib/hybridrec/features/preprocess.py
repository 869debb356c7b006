"""The preprocess job's work: bronze.products → Parquet features for Petastorm, plus their metadata.

Layout under ``paths.features`` (every path in the manifest is relative to it)::

    images/<split>-<nnnnn>.parquet   product_id string, split string, label int, image binary
    text/<split>-<nnnnn>.parquet     product_id string, split string, label int,
                                     token_ids array<int> (exactly max_len), length int
    (both, when features.label_heads is set: head_labels array<int>, one label per attribute head)
    image_errors/part-*.parquet      photos that failed to decode, with the reason
    vocab.json  labels.json  manifest.json

Why one flat folder of split-pure files named by split, rather than Hive folders (``split=train/``):
``split`` is then a real column in every file, so Spark, Petastorm and pyarrow see it without
partition discovery (Petastorm 0.13.1 resolves Hive partitions through pyarrow's deprecated legacy
dataset); the folder holds ``*.parquet`` directly, which ``training.check_features`` and plain globs
expect; and one split is still read alone, as a list of files (``split_files(...)`` or the glob
``images/train-*.parquet``; ``make_batch_reader`` takes a list of URLs), so a trainer shards only
that split's row groups across its Horovod ranks.

Reading with Petastorm 0.13.1: pass ``reader_pool_type="dummy"`` and ``shuffle_row_groups=False``
(shuffle in tf.data instead). With row-group shuffling on and the thread pool, ``ThreadPool.
get_results`` can decide that all work is done before the ventilator thread has handed out any (it
checks the per-worker counters one by one while the ventilator fills them); whenever a reader has at
most ``workers_count * 4`` row groups, a read can then yield no rows at all. Measured here on 6 row
groups: 3 to 25 of 100 reads returned nothing with shuffling on (more without a seed), 0 of 100
with it off; but one CI run with shuffling off and ``workers_count=2`` read 33 of 70 text rows, so
the tests read with ``reader_pool_type="dummy"`` (in-thread, no race) and training should too.

Row groups: Petastorm's unit of work is one row group (a reader thread decodes a whole group,
``make_petastorm_dataset`` yields it as one batch, ``cur_shard``/``shard_count`` deal out whole
groups). Each file is written as a single row group of at most ``features.image_rows_per_group`` /
``text_rows_per_group`` rows (``maxRecordsPerFile`` caps the rows, a Parquet block size larger than
the file keeps it one group). 512 images of 64x64x3 are ~6 MiB: big enough that per-group overhead is
noise, small enough that 10 reader threads x a queue of groups fit in memory, and a split of a few
thousand photos still has several groups per rank to shuffle (for 224 px photos, 512 rows are 75 MiB:
lower ``image_rows_per_group``). Text rows are ~150 bytes, so 8192 rows per group is ~1 MiB. The rows
are spread over at least as many tasks as Spark has cores, each writing its own files, so a split of
any real size has a group per rank (Petastorm refuses more shards than row groups; the manifest
lists the groups of each split).

Re-running replaces the output atomically enough: everything is written to a sibling staging folder,
then the old folder is renamed away, the staging folder renamed into place and the old one deleted.
A run that dies while writing leaves the previous features untouched (its staging folder is removed
by the next run; run one preprocess at a time).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.config import Config, FeaturesConfig
from hybridrec.errors import MissingInputError
from hybridrec.features import images as img
from hybridrec.features import text as txt
from hybridrec.features.labels import (
    HEAD_LABELS,
    UNLABELED,
    LabelMap,
    add_head_labels,
    add_labels,
    attribute_counts,
    build_head_maps,
    build_label_map,
    catalog_counts,
    check_label_heads,
    check_label_source,
    head_json,
    with_label_names,
)
from hybridrec.splits import SPLITS, add_split
from hybridrec.tables import PRODUCTS, TableRef, read_table_snapshot, table_exists, table_ref

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VOCAB = "vocab.json"
LABELS = "labels.json"
IMAGES = "images"
TEXT = "text"
IMAGE_ERRORS = "image_errors"
FORMAT_VERSION = 1
_MAX_ERROR_EXAMPLES = 20
_GROUPS_PER_TASK = 4


@dataclass
class PreprocessResult:
    """What one run wrote: the manifest (also on disk) and the counts for ``gold.runs``."""

    path: str
    manifest: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)


# ---- pure transformations ------------------------------------------------------------------------


def prepare_products(products: DataFrame, fc: FeaturesConfig) -> DataFrame:
    """bronze.products → the columns preprocess needs, plus ``split``."""
    cols = ["product_id", "title", "description", "category", "image_path", "attributes"]
    return add_split(products.select(*cols), fc.train_fraction, fc.val_fraction)


def text_features(labelled: DataFrame, vocab: list[str], max_len: int) -> DataFrame:
    """(product_id, split, label[, head_labels], tokens) → (..., token_ids, length)."""
    return txt.encode_text(labelled.select(*_label_columns(labelled), "tokens"), vocab, max_len)


def _label_columns(df: DataFrame) -> list[str]:
    """product_id, split, label and, when attribute heads are configured, head_labels."""
    return ["product_id", "split", "label"] + ([HEAD_LABELS] if HEAD_LABELS in df.columns else [])


def image_features(labelled: DataFrame, size: int, fit: str) -> DataFrame:
    """Rows with a photo → (product_id, split, label[, head_labels], image_path, image, error),
    squared by ``fit``."""
    with_photo = labelled.filter(F.col("image_path").isNotNull())
    return img.decode_images(with_photo.select(*_label_columns(labelled), "image_path"), size, fit=fit)


def partitions_for(rows: int, rows_per_group: int, parallelism: int) -> int:
    """Spark partitions for ``rows`` rows: a multiple of the cores, each task a few row groups' worth.

    Each task pays a fixed cost (a Python worker hand-off: ~0.2 s here), so tasks should be large;
    there must be at least one per core, and a multiple of the cores keeps the last wave full. A task
    writes files of at most ``rows_per_group`` rows, so every row group is full but the last one of
    each task and split.
    """
    parallelism = max(1, parallelism)
    wanted = max(parallelism, math.ceil(rows / (_GROUPS_PER_TASK * max(1, rows_per_group))))
    return math.ceil(wanted / parallelism) * parallelism


# ---- the job -------------------------------------------------------------------------------------


def preprocess(spark: SparkSession, cfg: Config, run_id: str | None = None) -> PreprocessResult:
    """Read bronze.products at its current Delta version, write the features, swap them in place."""
    fc = cfg.features
    check_label_source(cfg)
    check_label_heads(cfg)
    ref = table_ref(cfg, PRODUCTS)
    if not table_exists(spark, ref):
        raise MissingInputError(f"{PRODUCTS.logical_name} not found at {ref}: run jobs/ingest.py first")
    raw, version = read_table_snapshot(spark, ref)
    log.info("reading %s version %s from %s", PRODUCTS.logical_name, version, ref)

    fs = _Fs(spark, cfg.paths.features)
    fs.remove_stale_staging()
    staging = fs.new_staging()
    parallelism = spark.sparkContext.defaultParallelism
    persisted: list[DataFrame] = []
    try:
        products, label_column = with_label_names(prepare_products(raw, fc), fc.label_source)
        counts_by_category = catalog_counts(products, label_column)
        n_products = sum(counts_by_category.values())
        n_photos = sum(n for (_, photo), n in counts_by_category.items() if photo)
        log.info("%d products, %d with a photo", n_products, n_photos)
        label_map = build_label_map(counts_by_category, fc.min_examples_per_class, fc.label_source)
        log.info(
            "%d classes with >= %d examples (%s; label source %s)",
            len(label_map.classes),
            fc.min_examples_per_class,
            label_map.counted_on,
            fc.label_source,
        )
        labelled = add_labels(products, label_map, label_column)
        head_maps = build_head_maps(attribute_counts(products, fc.label_heads), fc.min_examples_per_class)
        if head_maps:
            log.info(
                "attribute heads: %s",
                ", ".join(f"{h} ({len(lm.classes)} classes)" for h, lm in head_maps.items()),
            )
            labelled = add_head_labels(labelled, head_maps)

        # Text: every product.
        tokenized = txt.add_tokens(
            labelled.repartition(
                partitions_for(n_products, fc.text_rows_per_group, parallelism),
                "product_id",
            )
        ).persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(tokenized)
        vocab = txt.build_vocab(tokenized.filter(F.col("split") == "train"), fc.vocab_min_count, fc.vocab_max_size)
        log.info("vocabulary: %d ids (min count %d, max size %d)", len(vocab), fc.vocab_min_count, fc.vocab_max_size)
        text_df = text_features(tokenized, [t for t, _ in vocab], fc.max_len)
        _write_features(fs, text_df, f"{staging}/{TEXT}", fc.text_rows_per_group, fc.max_len * 4 + 64)

        # Images: products with a photo; failures recorded, not written as features.
        if n_photos:
            parts = partitions_for(n_photos, fc.image_rows_per_group, parallelism)
            log.info("decoding %d photos at %dpx (%s) in %d partitions", n_photos, fc.image_size, fc.image_fit, parts)
            decoded = image_features(
                labelled.filter(F.col("image_path").isNotNull()).repartition(parts, "product_id"),
                fc.image_size,
                fc.image_fit,
            ).persist(StorageLevel.DISK_ONLY)  # decoded once, read by the two writes below
            persisted.append(decoded)
            _write_features(
                fs,
                decoded.filter(F.col("error").isNull()).select(*_label_columns(decoded), "image"),
                f"{staging}/{IMAGES}",
                fc.image_rows_per_group,
                fc.image_size * fc.image_size * img.CHANNELS + 64,
            )
            decoded.filter(F.col("error").isNotNull()).select(
                "product_id", "image_path", "split", "label", "error"
            ).coalesce(1).write.parquet(f"{staging}/{IMAGE_ERRORS}")
        manifest, counts = _describe(
            spark, fs, staging, cfg, ref, version, run_id, label_map, vocab, n_products, n_photos, list(head_maps)
        )
        image_errors = counts["image_errors"]
        if image_errors:
            log.warning(
                "%d of %d photos failed to decode; see %s/%s", image_errors, n_photos, cfg.paths.features, IMAGE_ERRORS
            )
        if counts["image_rows"] == 0:
            fs.delete(f"{staging}/{IMAGES}")
        fs.write_json(f"{staging}/{VOCAB}", _vocab_json(vocab, fc))
        labels_json = label_map.to_json()
        if head_maps:
            labels_json["heads"] = [head_json(h, lm) for h, lm in head_maps.items()]
        fs.write_json(f"{staging}/{LABELS}", labels_json)
        fs.write_json(f"{staging}/{MANIFEST}", manifest)
        fs.swap_in(staging)
    except BaseException:
        log.error("preprocess failed; previous features (if any) left in place at %s", cfg.paths.features)
        fs.delete(staging)
        raise
    finally:
        for df in persisted:
            df.unpersist()
    log.info("features written to %s: %s", cfg.paths.features, counts)
    return PreprocessResult(cfg.paths.features, manifest, counts)


def _write_features(fs: _Fs, df: DataFrame, path: str, rows_per_group: int, row_bytes: int) -> None:
    """Files of one split each and one row group each (at most ``rows_per_group`` rows), named
    ``<split>-<nnnnn>.parquet``, all directly in ``path``.

    One write: Spark partitions by a copy of ``split`` (so the column stays in the files) into a
    scratch folder, then the files are renamed into ``path`` in a stable order.
    """
    block = int(min(1 << 30, max(8 << 20, 2 * rows_per_group * row_bytes)))
    scratch = f"{path}._by_split"
    (
        df.withColumn("_split_dir", F.col("split"))
        .write.partitionBy("_split_dir")
        .option("maxRecordsPerFile", rows_per_group)
        .option("parquet.block.size", block)
        .option("parquet.enable.dictionary", "false")
        .option("compression", "snappy")
        .parquet(scratch)
    )
    fs.mkdirs(path)
    for split in SPLITS:
        for i, name in enumerate(fs.list_files(f"{scratch}/_split_dir={split}", "part-*.parquet")):
            fs.rename(f"{scratch}/_split_dir={split}/{name}", f"{path}/{split}-{i:05d}.parquet")
    fs.delete(scratch)


def split_files(features_dir: str | Path, feature_set: str, split: str) -> list[str]:
    """The ``file://`` URLs of one split's files (local paths), for ``make_batch_reader``."""
    folder = Path(features_dir) / feature_set
    return [f"file://{p}" for p in sorted(folder.glob(f"{split}-*.parquet"))]


def _describe(
    spark: SparkSession,
    fs: _Fs,
    staging: str,
    cfg: Config,
    ref: TableRef,
    version: int | None,
    run_id: str | None,
    label_map: LabelMap,
    vocab: list[tuple[str, int]],
    n_products: int,
    n_photos: int,
    heads: list[str],
) -> tuple[dict[str, Any], dict[str, int]]:
    """Count what was written (read back from the staging folder) into the manifest and run counts."""
    fc = cfg.features
    text_counts = _folder_counts(spark, f"{staging}/{TEXT}", bool(heads))
    image_counts = _folder_counts(spark, f"{staging}/{IMAGES}", bool(heads)) if n_photos else {}
    text_rows = sum(text_counts.values())
    image_rows = sum(image_counts.values())
    if n_photos:
        errors_df = spark.read.schema("product_id string, image_path string, error string").parquet(
            f"{staging}/{IMAGE_ERRORS}"
        )
        image_errors = errors_df.count()
        examples = (
            [
                {"product_id": r["product_id"], "image_path": r["image_path"], "error": r["error"]}
                for r in errors_df.orderBy("product_id").limit(_MAX_ERROR_EXAMPLES).collect()
            ]
            if image_errors
            else []
        )
    else:
        image_errors, examples = 0, []
    # Never lose a row silently: every product has a text row, every photo an image or an error row.
    if text_rows != n_products or image_rows + image_errors != n_photos:
        raise RuntimeError(
            f"counts do not reconcile: {n_products} products vs {text_rows} text rows, "
            f"{n_photos} photos vs {image_rows} image rows + {image_errors} decode errors"
        )

    def section(folder_counts: dict[tuple[str, int, bool], int], rel: str) -> dict[str, Any]:
        counts: dict[tuple[str, int], int] = {}
        for (split, label, _), n in folder_counts.items():
            counts[(split, label)] = counts.get((split, label), 0) + n
        out = {
            "path": rel,
            "rows": sum(counts.values()),
            "rows_by_split": {s: sum(n for (sp, _), n in counts.items() if sp == s) for s in SPLITS},
            "labelled_rows_by_split": {
                s: sum(n for (sp, lb), n in counts.items() if sp == s and lb != UNLABELED) for s in SPLITS
            },
            "rows_by_class": {
                name: {s: counts.get((s, i), 0) for s in SPLITS} for i, name in enumerate(label_map.classes)
            },
            "unlabeled_by_split": {s: counts.get((s, UNLABELED), 0) for s in SPLITS},
            "split_files": {s: f"{rel}/{s}-*.parquet" for s in SPLITS},
            "row_groups_by_split": fs.row_groups_by_split(f"{staging}/{rel}"),
        }
        if heads:
            # Rows with the category or any head labelled: what multi-task training steps over.
            out["trainable_rows_by_split"] = {
                s: sum(n for (sp, _, ok), n in folder_counts.items() if sp == s and ok) for s in SPLITS
            }
        return out

    head_column = {HEAD_LABELS: f"array<int32> of {len(heads)} (one per head)"} if heads else {}
    text_section = section(text_counts, TEXT)
    text_section.update(
        columns={
            "product_id": "string",
            "split": "string",
            "label": "int32",
            "token_ids": "array<int32>",
            "length": "int32",
        }
        | head_column,
        feature={
            "column": "token_ids",
            "shape": [fc.max_len],
            "dtype": "int32",
            "storage": "Parquet list<int32> of exactly max_len ids, PAD-padded at the end",
        },
        vocab_size=len(vocab),
        vocab_path=VOCAB,
        pad_id=txt.PAD_ID,
        unk_id=txt.UNK_ID,
        rows_per_group=fc.text_rows_per_group,
    )
    if image_rows:
        image_section = section(image_counts, IMAGES)
    else:
        image_section = {
            "path": None,
            "rows": 0,
            "note": "no products with a photo" if not n_photos else "no photo decoded",
        }
    image_section.update(
        columns={"product_id": "string", "split": "string", "label": "int32", "image": "binary"} | head_column,
        feature={
            "column": "image",
            "shape": list(img.image_shape(fc.image_size)),
            "fit": fc.image_fit,
            "dtype": "uint8",
            "storage": "Parquet binary of the raw pixels, row-major (H, W, C), RGB; in TensorFlow "
            "tf.reshape(tf.io.decode_raw(image, tf.uint8), (-1, H, W, 3))",
        },
        products_with_photo=n_photos,
        decode_errors=image_errors,
        errors_path=IMAGE_ERRORS if n_photos else None,
        error_examples=examples,
        rows_per_group=fc.image_rows_per_group,
        preprocessing=f"EXIF orientation applied, RGB (alpha composited on white), {img.FIT_RULES[fc.image_fit]}",
    )
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "source": {
            "table": PRODUCTS.logical_name,
            "location": str(ref),
            "delta_version": version,
            "products": n_products,
        },
        "split": {
            "column": "split",
            "values": list(SPLITS),
            "rule": "u = int(sha1(product_id).hexdigest()[:8], 16) / 2**32; train if u < train_fraction, "
            "val if u < train_fraction + val_fraction, else test",
            "train_fraction": fc.train_fraction,
            "val_fraction": fc.val_fraction,
        },
        "labels": {
            "path": LABELS,
            "column": "label",
            "source": label_map.source,
            "num_classes": len(label_map.classes),
            "unlabeled": UNLABELED,
            "train_on": "label >= 0" if not heads else "label >= 0 or any head_labels >= 0 (each head masked)",
            "heads": heads,
            "head_column": HEAD_LABELS if heads else None,
            "counted_on": label_map.counted_on,
            "min_examples_per_class": fc.min_examples_per_class,
        },
        "images": image_section,
        "text": text_section,
    }
    counts = {
        "products": n_products,
        "text_rows": text_rows,
        "text_labelled": sum(n for (_, lb, _), n in text_counts.items() if lb != UNLABELED),
        "photos": n_photos,
        "image_rows": image_rows,
        "image_labelled": sum(n for (_, lb, _), n in image_counts.items() if lb != UNLABELED),
        "image_errors": image_errors,
        "classes": len(label_map.classes),
        "vocab_size": len(vocab),
    }
    for s in SPLITS:
        counts[f"text_{s}"] = text_section["rows_by_split"][s]
        counts[f"image_{s}"] = image_section.get("rows_by_split", {}).get(s, 0)
    return manifest, counts


def _folder_counts(spark: SparkSession, path: str, heads: bool) -> dict[tuple[str, int, bool], int]:
    """{(split, label, trainable): rows} of a written feature folder, in one read (a handful of
    rows reach the driver). ``trainable``: the category is labelled, or with ``heads`` any head
    label is (what multi-task training steps over).

    The schema is given so that a folder with no rows (every photo failed) reads as empty.
    """
    trainable = F.col("label") != UNLABELED
    schema = "label int, split string"
    if heads:
        schema += f", {HEAD_LABELS} array<int>"
        trainable = trainable | F.coalesce(F.exists(HEAD_LABELS, lambda x: x != UNLABELED), F.lit(False))
    df = spark.read.schema(schema).parquet(path)
    rows = df.groupBy("split", "label", trainable.alias("trainable")).count().collect()
    return {(r["split"], int(r["label"]), bool(r["trainable"])): int(r["count"]) for r in rows}


def _vocab_json(vocab: list[tuple[str, int]], fc: FeaturesConfig) -> dict[str, Any]:
    return {
        "tokens": [t for t, _ in vocab],
        "counts": [c for _, c in vocab],
        "size": len(vocab),
        "pad_id": txt.PAD_ID,
        "unk_id": txt.UNK_ID,
        "min_count": fc.vocab_min_count,
        "max_size": fc.vocab_max_size,
        "max_len": fc.max_len,
        "built_on": "train split",
        "normalization": "strip HTML tags, unescape entities, NFKC, lower case, collapse spaces",
        "tokenization": "runs of letters or runs of digits (regex [^\\W\\d_]+|\\d+)",
    }


class _Fs:
    """Folder operations on the features root through Hadoop's FileSystem, so the same code works
    on local disk, DBFS and object stores (where rename is a copy, hence "atomically enough")."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        jvm = spark.sparkContext._jvm  # noqa: SLF001 - Hadoop FS is only reachable through py4j
        self._jvm = jvm
        self._root = root.rstrip("/")
        self._fs = jvm.org.apache.hadoop.fs.Path(self._root).getFileSystem(
            spark.sparkContext._jsc.hadoopConfiguration()  # noqa: SLF001 - Hadoop FS is only reachable through py4j
        )
        self._fs.setWriteChecksum(False)
        self._local = not _has_scheme(self._root) or self._root.startswith("file:")

    def _path(self, p: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(p)

    def exists(self, p: str) -> bool:
        return bool(self._fs.exists(self._path(p)))

    def delete(self, p: str) -> None:
        if self.exists(p):
            self._fs.delete(self._path(p), True)

    def mkdirs(self, p: str) -> None:
        self._fs.mkdirs(self._path(p))

    def rename(self, src: str, dst: str) -> None:
        if not self._fs.rename(self._path(src), self._path(dst)):
            raise RuntimeError(f"could not rename {src} to {dst}")

    def list_files(self, folder: str, pattern: str) -> list[str]:
        """Names of the files in ``folder`` matching the glob ``pattern``, sorted."""
        found = self._fs.globStatus(self._path(f"{folder}/{pattern}")) or []
        return sorted(str(st.getPath().getName()) for st in found)

    def new_staging(self) -> str:
        staging = f"{self._root}.staging-{uuid.uuid4().hex[:12]}"
        self._fs.mkdirs(self._path(staging))
        return staging

    def remove_stale_staging(self) -> None:
        """Clean up after a run that died: its staging folder goes; an output it had moved aside but
        not yet replaced (death between the two renames of ``swap_in``) is put back."""
        for status in self._fs.globStatus(self._path(f"{self._root}.staging-*")) or []:
            log.warning("removing %s left by an earlier run that did not finish", status.getPath())
            self._fs.delete(status.getPath(), True)
        previous = sorted(
            self._fs.globStatus(self._path(f"{self._root}.previous-*")) or [], key=lambda st: st.getModificationTime()
        )
        if previous and not self.exists(self._root):
            log.warning("restoring %s to %s (an earlier run died while swapping)", previous[-1].getPath(), self._root)
            self._fs.rename(previous.pop().getPath(), self._path(self._root))
        for status in previous:
            self._fs.delete(status.getPath(), True)

    def write_json(self, p: str, data: Any) -> None:
        out = self._fs.create(self._path(p), True)
        try:
            out.write(bytearray(json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")))
        finally:
            out.close()

    def swap_in(self, staging: str) -> None:
        """Replace the root folder by ``staging``: two renames, the old output deleted last."""
        self._fs.mkdirs(self._path(self._root).getParent())
        previous = f"{self._root}.previous-{uuid.uuid4().hex[:12]}"
        had_previous = self.exists(self._root)
        if had_previous and not self._fs.rename(self._path(self._root), self._path(previous)):
            raise RuntimeError(f"could not move {self._root} aside to {previous}")
        if not self._fs.rename(self._path(staging), self._path(self._root)):
            if had_previous:
                self._fs.rename(self._path(previous), self._path(self._root))
            raise RuntimeError(f"could not move {staging} to {self._root}")
        if had_previous:
            self.delete(previous)

    def row_groups_by_split(self, folder: str) -> dict[str, int] | None:
        """Parquet row groups per split (read from the footers), for trainers choosing a shard count
        (Petastorm needs at least one group per shard); None off local disk."""
        if not self._local:
            return None
        import pyarrow.parquet as pq

        base = Path(folder.removeprefix("file://").removeprefix("file:"))
        return {
            s: sum(pq.ParquetFile(f).metadata.num_row_groups for f in sorted(base.glob(f"{s}-*.parquet")))
            for s in SPLITS
        }


def _has_scheme(path: str) -> bool:
    head, sep, _ = path.partition(":")
    return bool(sep) and len(head) > 1 and "/" not in head


def read_manifest(cfg: Config) -> dict[str, Any]:
    """The manifest of the current features (local paths), for trainers and tests."""
    path = Path(cfg.paths.features) / MANIFEST
    if not path.is_file():
        raise MissingInputError(f"no features manifest at {path}: run jobs/preprocess.py first")
    return json.loads(path.read_text(encoding="utf-8"))
