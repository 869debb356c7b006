"""Attribute heads: output naming, model outputs, masked losses, and the config check."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import make_config
from hybridrec.features.labels import LabelSourceError, build_head_maps, check_label_heads, head_label
from hybridrec.models.heads import MAIN_OUTPUT, head_output_name, output_names


def test_output_names_keep_probs_first_and_sanitise_attributes() -> None:
    assert head_output_name("baseColour") == "head_baseColour"
    assert head_output_name("sub category/x") == "head_sub_category_x"
    assert output_names([("gender", 3), ("baseColour", 5)]) == [MAIN_OUTPUT, "head_gender", "head_baseColour"]


def test_head_maps_keep_values_with_enough_products_and_need_two_classes() -> None:
    maps = build_head_maps({"gender": {"Men": 9, "Women": 7, "Unisex": 2}}, min_examples_per_class=5)
    assert maps["gender"].classes == ["Men", "Women"]
    assert head_label("Women", maps["gender"]) == 1
    assert head_label("Unisex", maps["gender"]) == -1 and head_label(None, maps["gender"]) == -1
    with pytest.raises(LabelSourceError, match="attribute season has 1 value"):
        build_head_maps({"season": {"Summer": 9, "Fall": 1}}, min_examples_per_class=5)


def test_a_head_the_catalog_does_not_keep_is_refused_before_spark(tmp_path) -> None:
    cfg = make_config(tmp_path, catalog={"attributes": ["colour"]}, features={"label_heads": ["colour", "gender"]})
    with pytest.raises(LabelSourceError, match="names gender but catalog.attributes does not keep it"):
        check_label_heads(cfg)
    check_label_heads(make_config(tmp_path, catalog={"attributes": ["colour"]}, features={"label_heads": ["colour"]}))


def test_multi_head_models_share_the_embedding_and_mask_missing_labels() -> None:
    import tensorflow as tf

    from hybridrec.models.cnn import EMBEDDING_LAYER
    from hybridrec.models.lstm import build_text_model

    tf.keras.utils.set_random_seed(0)
    heads = [("gender", 2), ("colour", 3)]
    model = build_text_model(4, vocab_size=20, max_len=6, token_dim=4, lstm_units=4, embedding_dim=8, heads=heads)
    names = output_names(heads)
    assert model.output_names == names
    assert [tuple(o.shape)[-1] for o in model.outputs] == [4, 2, 3]
    # Every head reads the one embedding layer (through its dropout).
    shared = model.get_layer("dropout_embedding")
    assert shared.input is model.get_layer(EMBEDDING_LAYER).output
    for name in names:
        assert model.get_layer(name).input is shared.output
    rng = np.random.default_rng(0)
    x = rng.integers(2, 20, size=(32, 6)).astype(np.int32)
    y = {n: rng.integers(0, k, size=32).astype(np.int32) for n, k in zip(names, [4, 2, 3])}
    # The colour head has no label anywhere: weight 0 everywhere means its loss is exactly 0.
    w = {n: np.ones(32, np.float32) for n in names} | {"head_colour": np.zeros(32, np.float32)}
    model.compile(
        optimizer="adam",
        loss=dict.fromkeys(names, "sparse_categorical_crossentropy"),
        weighted_metrics={MAIN_OUTPUT: ["accuracy"]},
    )
    logs = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    assert logs["head_colour_loss"] == 0.0
    assert logs["head_gender_loss"] > 0 and "probs_accuracy" in logs


def test_the_category_head_needs_no_attribute_but_a_category(tmp_path) -> None:
    check_label_heads(make_config(tmp_path, catalog={"attributes": []}, features={"label_heads": ["category"]}))
    with pytest.raises(LabelSourceError, match="the catalog has no category to learn"):
        check_label_heads(
            make_config(
                tmp_path,
                catalog={"attributes": [], "columns": {"category": None}},
                features={"label_heads": ["category"], "label_source": "title_keyword"},
            )
        )
