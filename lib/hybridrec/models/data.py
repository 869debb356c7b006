"""Feature Parquet → ``tf.data`` through Petastorm, one shard per Horovod rank.

What each rank does: it opens a Petastorm ``make_batch_reader`` on one split's files with
``cur_shard=rank, shard_count=size``, so it reads only its share of the row groups, decodes each
row group into numpy arrays (raw ``uint8`` pixels or token ids), drops unlabelled rows when training
and yields the batch; ``tf.data`` then un-batches, shuffles within a buffer, re-batches and prefetches.
Nothing holds more than the shuffle buffer and a few row groups in memory.

Why a generator over a fresh reader per pass (``tf.data.Dataset.from_generator``) rather than one
reader with ``num_epochs=None``: Keras iterates the validation and test sets once per epoch, and a
generator re-opened per iteration gives an exact, finite pass over the shard every time (an endless
reader would make batches straddle passes). Training instead repeats that pass forever and every
rank runs the same ``steps_per_epoch`` (from the manifest's labelled row count), since Horovod's
allreduce needs every rank to take the same number of steps although shards differ by a row group.

Reads use ``reader_pool_type="dummy"`` and ``shuffle_row_groups=False`` (see the preprocess module:
Petastorm 0.13.1's thread pool can end a read early); shuffling happens in ``tf.data``.

When a split has fewer row groups than ranks (a tiny catalog), Petastorm cannot shard it: every rank
then reads all groups and keeps every ``size``-th row, so the shards still partition the rows.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridrec.features.labels import HEAD_LABELS, UNLABELED

IMAGE = "image"
TEXT = "text"
FEATURE_DIRS = {IMAGE: "images", TEXT: "text"}


@dataclass(frozen=True)
class ShardSpec:
    """Which rows one reader sees: a split's files, and this rank's share of them."""

    urls: tuple[str, ...]
    rank: int = 0
    size: int = 1
    # Row groups in the split (from the manifest); None = unknown (shard by row groups if size > 1).
    row_groups: int | None = None

    @property
    def shard_by_groups(self) -> bool:
        return self.size > 1 and (self.row_groups is None or self.row_groups >= self.size)


def split_urls(features_dir: str | Path, model: str, split: str) -> tuple[str, ...]:
    """``file://`` URLs of one split's Parquet files of a model's feature set (sorted, stable)."""
    folder = Path(features_dir) / FEATURE_DIRS[model]
    return tuple(f"file://{p.resolve()}" for p in sorted(folder.glob(f"{split}-*.parquet")))


def _columns(model: str, heads: int = 0) -> list[str]:
    cols = ["product_id", "label", "image"] if model == IMAGE else ["product_id", "label", "token_ids"]
    return cols + ([HEAD_LABELS] if heads else [])


def labelled_rows(labels: np.ndarray) -> np.ndarray:
    """Rows with something to learn: the category, or (multi-head labels) any head labelled."""
    return labels != UNLABELED if labels.ndim == 1 else (labels != UNLABELED).any(axis=1)


def decode_batch(model: str, batch: Any, image_size: int, heads: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Petastorm batch (namedtuple of columns) → (ids, inputs, labels) numpy arrays.

    ``heads`` > 0 (attribute heads): labels are (n, 1 + heads), the category then ``head_labels``.
    """
    ids = np.asarray(batch.product_id).astype(str)
    labels = np.asarray(batch.label, dtype=np.int32)
    if heads:
        extra = (
            np.stack([np.asarray(h, dtype=np.int32) for h in getattr(batch, HEAD_LABELS)])
            if len(ids)
            else np.zeros((0, heads), dtype=np.int32)
        )
        if extra.shape[1] != heads:
            raise ValueError(
                f"{HEAD_LABELS} of product {ids[0]} holds {extra.shape[1]} labels, expected {heads}: "
                "features and labels.json come from different preprocess runs"
            )
        labels = np.column_stack([labels, extra]).astype(np.int32)
    if model == IMAGE:
        raw = list(batch.image)
        expected = image_size * image_size * 3
        bad = [i for i, b in enumerate(raw) if len(b) != expected]
        if bad:
            raise ValueError(
                f"image features of product {ids[bad[0]]} hold {len(raw[bad[0]])} bytes, expected "
                f"{expected} ({image_size}x{image_size}x3): features and features.image_size disagree"
            )
        x = np.frombuffer(b"".join(raw), dtype=np.uint8).reshape(len(raw), image_size, image_size, 3)
    else:
        x = (
            np.stack([np.asarray(t, dtype=np.int32) for t in batch.token_ids])
            if len(ids)
            else (np.zeros((0, 0), dtype=np.int32))
        )
    return ids, x, labels


def iter_shard(
    model: str,
    shard: ShardSpec,
    image_size: int,
    labelled_only: bool,
    heads: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One pass over this rank's rows: (ids, inputs, labels) per row group, in file order."""
    from petastorm import make_batch_reader

    if not shard.urls:
        return
    sharded = shard.shard_by_groups
    reader = make_batch_reader(
        list(shard.urls),
        schema_fields=_columns(model, heads),
        num_epochs=1,
        reader_pool_type="dummy",
        shuffle_row_groups=False,
        cur_shard=shard.rank if sharded else None,
        shard_count=shard.size if sharded else None,
    )
    try:
        offset = 0
        for batch in reader:
            ids, x, y = decode_batch(model, batch, image_size, heads)
            keep = np.ones(len(ids), dtype=bool)
            if shard.size > 1 and not sharded:
                keep &= (np.arange(offset, offset + len(ids)) % shard.size) == shard.rank
            offset += len(ids)
            if labelled_only:
                keep &= labelled_rows(y)
            if keep.any():
                yield ids[keep], x[keep], y[keep]
    finally:
        with contextlib.redirect_stdout(io.StringIO()):  # petastorm prints "Cache cleanup complete."
            reader.stop()
            reader.join()


def input_signature(model: str, image_size: int, max_len: int, heads: int = 0) -> Any:
    import tensorflow as tf

    if model == IMAGE:
        x = tf.TensorSpec(shape=(None, image_size, image_size, 3), dtype=tf.uint8)
    else:
        x = tf.TensorSpec(shape=(None, max_len), dtype=tf.int32)
    y = tf.TensorSpec(shape=(None, 1 + heads) if heads else (None,), dtype=tf.int32)
    return (x, y)


def make_dataset(
    model: str,
    shard: ShardSpec,
    image_size: int,
    max_len: int,
    batch_size: int,
    training: bool,
    shuffle_buffer: int = 2048,
    seed: int = 0,
    outputs: Sequence[str] = (),
) -> Any:
    """A ``tf.data.Dataset`` of (inputs, label) batches over this rank's labelled rows.

    ``training``: endless (repeat), shuffled, for ``fit(steps_per_epoch=...)``; otherwise one exact
    pass in file order, re-read on every iteration (validation each epoch, test once).

    ``outputs``: the model's output names when it has attribute heads (``heads.output_names``);
    batches are then (inputs, {output: label}, {output: weight}) where a missing label is given as
    0 with weight 0, so each head's loss skips the products it has no label for.
    """
    import tensorflow as tf

    heads = max(0, len(outputs) - 1)

    def generate() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for _, x, y in iter_shard(model, shard, image_size, labelled_only=True, heads=heads):
            yield x, y

    signature = input_signature(model, image_size, max_len, heads)
    ds = tf.data.Dataset.from_generator(generate, output_signature=signature)
    ds = ds.unbatch()
    if training:
        ds = ds.repeat().shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if heads:
        names = list(outputs)

        def split_heads(x: Any, y: Any) -> Any:
            labels = {n: tf.maximum(y[:, i], 0) for i, n in enumerate(names)}
            weights = {n: tf.cast(y[:, i] != UNLABELED, tf.float32) for i, n in enumerate(names)}
            return x, labels, weights

        ds = ds.map(split_heads, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def count_rows(model: str, shard: ShardSpec, image_size: int, labelled_only: bool = True, heads: int = 0) -> int:
    """Rows this shard yields (reads the label column only for text; images decode cheaply)."""
    return sum(len(y) for _, _, y in iter_shard(model, shard, image_size, labelled_only, heads))


def predict_shard(
    model: str,
    shard: ShardSpec,
    image_size: int,
    predict: Callable[[np.ndarray], np.ndarray],
    labelled_only: bool,
    heads: int = 0,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Run ``predict`` over one pass of the shard: (ids, outputs stacked, labels)."""
    ids: list[str] = []
    outs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for batch_ids, x, y in iter_shard(model, shard, image_size, labelled_only, heads):
        ids.extend(batch_ids.tolist())
        outs.append(predict(x))
        labels.append(y)
    if not outs:
        return [], np.zeros((0, 0), dtype=np.float32), np.zeros((0,), dtype=np.int32)
    return ids, np.concatenate(outs), np.concatenate(labels)
