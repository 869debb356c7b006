"""The preprocess output is what training consumes: Petastorm's make_batch_reader into tf.data gives
(image uint8 [B, H, W, 3], label) and (token_ids int32 [B, max_len], label), per split, sharded.

Every reader here passes ``shuffle_row_groups=False``: with it on, Petastorm 0.13.1's thread pool can
end a read with no rows when there are few row groups (a race between its ventilator and
``get_results``; see hybridrec.features.preprocess)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_config
from hybridrec.features import preprocess as pp
from hybridrec.features.images import load_image
from hybridrec.tables import PRODUCTS, table_ref, write_table

# Petastorm warns that TF turns the product_id strings into bytes; the test decodes them.
pytestmark = pytest.mark.filterwarnings("ignore:Tensorflow will convert all unicode strings")

SIZE = 12
MAX_LEN = 6
N_PHOTOS = 60
FEATURES = {
    "image_size": SIZE,
    "max_len": MAX_LEN,
    "vocab_min_count": 1,
    "min_examples_per_class": 10,
    "image_rows_per_group": 8,
    "text_rows_per_group": 8,
    "image_fit": "crop",  # not the default: the setting must reach the Spark decode
}


@pytest.fixture(scope="module")
def features(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("petastorm_features")
    cfg = make_config(base, features=FEATURES)
    rng = np.random.default_rng(3)
    now = dt.datetime(2026, 1, 1)
    rows, photos = [], {}
    for i in range(N_PHOTOS + 10):
        pid = f"q{i:03d}"
        category = ("dress", "boot", "hat")[i % 3] if i < N_PHOTOS else "dress"
        path = None
        if i < N_PHOTOS:
            path = str(base / f"{pid}.png")
            size = (int(rng.integers(8, 30)), int(rng.integers(8, 30)))
            Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
            photos[pid] = load_image(path, SIZE, fit=cfg.features.image_fit)
        title = f"{category} number {i} " + "long words " * (i % 4)
        rows.append((pid, title, None, category, path, {}, None, "h", "c.csv", now))
    write_table(spark.createDataFrame(rows, PRODUCTS.schema), table_ref(cfg, PRODUCTS), mode="overwrite")
    result = pp.preprocess(spark, cfg)
    return cfg, result.manifest, photos, len(rows)


def _url(cfg, *parts: str) -> str:
    return "file://" + str(Path(cfg.paths.features).joinpath(*parts))


def _split_urls(cfg, feature_set: str, split: str) -> list[str]:
    urls = pp.split_files(cfg.paths.features, feature_set, split)
    assert urls, f"no {split} files for {feature_set}"
    return urls


def _image_dataset(reader, size: int):
    """What a trainer writes: raw bytes → uint8 (B, H, W, 3), labelled rows only."""
    import tensorflow as tf
    from petastorm.tf_utils import make_petastorm_dataset

    def to_tensors(batch):
        image = tf.reshape(tf.io.decode_raw(batch.image, tf.uint8), (-1, size, size, 3))
        return image, batch.label, batch.product_id

    return (
        make_petastorm_dataset(reader).map(to_tensors).unbatch().filter(lambda image, label, pid: label >= 0).batch(16)
    )


def _read_images(url: str | list[str], **kwargs) -> dict[str, tuple[np.ndarray, int]]:
    import tensorflow as tf
    from petastorm import make_batch_reader

    out: dict[str, tuple[np.ndarray, int]] = {}
    kwargs.setdefault("shuffle_row_groups", False)
    with make_batch_reader(url, num_epochs=1, reader_pool_type="dummy", workers_count=2, **kwargs) as reader:
        for image, label, pid in _image_dataset(reader, SIZE):
            assert image.dtype == tf.uint8 and image.shape[1:] == (SIZE, SIZE, 3)
            assert label.dtype == tf.int32 and image.shape[0] == label.shape[0]
            for p, im, lb in zip(pid.numpy(), image.numpy(), label.numpy()):
                key = p.decode()
                assert key not in out, f"{key} read twice"
                out[key] = (im, int(lb))
    return out


def test_images_round_trip_through_petastorm_into_tf_data(features) -> None:
    cfg, manifest, photos, _ = features
    got = _read_images(_split_urls(cfg, "images", "train"))
    assert len(got) == manifest["images"]["labelled_rows_by_split"]["train"] > 0
    for pid, (image, label) in got.items():
        np.testing.assert_array_equal(image, photos[pid])
        assert 0 <= label < manifest["labels"]["num_classes"]


def test_text_round_trip_through_petastorm_into_tf_data(features) -> None:
    import tensorflow as tf
    from petastorm import make_batch_reader
    from petastorm.tf_utils import make_petastorm_dataset

    cfg, manifest, _, n_products = features
    seen = 0
    with make_batch_reader(
        _url(cfg, "text"),
        num_epochs=1,
        reader_pool_type="dummy",
        workers_count=2,
        shuffle_row_groups=False,
        schema_fields=["token_ids", "label", "split"],
    ) as reader:
        ds = make_petastorm_dataset(reader).map(lambda b: (b.token_ids, b.label, b.split))
        for ids, label, split in ds.unbatch().batch(7):
            assert ids.dtype == tf.int32 and ids.shape[1:] == (MAX_LEN,)
            assert label.dtype == tf.int32 and split.dtype == tf.string
            assert int(tf.reduce_min(ids)) >= 0
            assert int(tf.reduce_max(ids)) < manifest["text"]["vocab_size"]
            seen += int(ids.shape[0])
    assert seen == n_products == manifest["text"]["rows"]


def test_reading_the_whole_folder_gives_the_right_split_column(features) -> None:
    from petastorm import make_batch_reader
    from petastorm.predicates import in_lambda

    from hybridrec.splits import split_of

    cfg, manifest, photos, _ = features
    fc = cfg.features
    with make_batch_reader(
        _url(cfg, "images"),
        num_epochs=1,
        reader_pool_type="dummy",
        schema_fields=["product_id", "split"],
        shuffle_row_groups=False,
    ) as reader:
        rows = [(p, s) for batch in reader for p, s in zip(batch.product_id, batch.split)]
    assert sorted(p for p, _ in rows) == sorted(photos)
    assert all(s == split_of(p, fc.train_fraction, fc.val_fraction) for p, s in rows)
    with make_batch_reader(
        _url(cfg, "images"),
        num_epochs=1,
        reader_pool_type="dummy",
        schema_fields=["product_id", "split"],
        shuffle_row_groups=False,
        predicate=in_lambda(["split"], lambda split: split == "val"),
    ) as reader:
        val = [s for batch in reader for s in batch.split]
    assert set(val) == {"val"} and len(val) == manifest["images"]["rows_by_split"]["val"]


def test_two_shards_cover_every_row_exactly_once(features) -> None:
    cfg, manifest, _, _ = features
    url = _split_urls(cfg, "images", "train")
    assert len(url) >= 2, "the train split has a row group per rank"
    shards = [_read_images(url, cur_shard=s, shard_count=2) for s in (0, 1)]
    assert all(shards), "each rank gets rows"
    assert not set(shards[0]) & set(shards[1])
    everything = _read_images(url)
    assert set(shards[0]) | set(shards[1]) == set(everything)
