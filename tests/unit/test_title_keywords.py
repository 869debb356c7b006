"""The title-keyword label rule (features.label_source: title_keyword), pure Python part, and the
early error for a catalog that has neither categories nor a label source."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridrec.config import ConfigError, config_from_dict, load_config
from hybridrec.features.labels import (
    CATEGORY,
    TITLE_KEYWORD,
    LabelSourceError,
    build_label_map,
    check_label_source,
    head_keyword,
    is_candidate,
    modifiers_from_counts,
    title_keywords_python,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("holder", True),
        ("mug", True),
        ("cm", False),
        ("t", False),
        ("of", False),
        ("12", False),
        ("٣٤٥", False),
        ("box", True),
    ],
)
def test_candidates_are_words_of_three_characters_or_more(token: str, expected: bool) -> None:
    assert is_candidate(token) is expected


def test_modifiers_start_more_titles_than_they_end() -> None:
    first = {"pink": 5, "set": 3, "holder": 1, "large": 2}
    last = {"pink": 1, "holder": 4, "large": 2, "mug": 3}
    # Ties (large 2/2) are not modifiers: the word ends titles as often as it starts them.
    assert modifiers_from_counts(first, last) == {"pink", "set"}


def test_head_keyword_is_the_last_non_modifier_candidate() -> None:
    modifiers = {"blue", "large", "pink"}
    assert head_keyword(["kids", "rain", "mac", "blue"], modifiers) == "mac"
    assert head_keyword(["glass", "cloche", "large"], modifiers) == "cloche"
    assert head_keyword(["hanging", "heart", "t", "light", "holder"], modifiers) == "holder"
    assert head_keyword(["pink", "large", "12"], modifiers) is None
    assert head_keyword([], modifiers) is None


def test_title_rule_on_titles_like_online_retail() -> None:
    titles = [
        "PINK HEART T-LIGHT HOLDER",
        "PINK FLOWER MUG",
        "WHITE HANGING HEART T-LIGHT HOLDER",
        "KIDS RAIN MAC PINK",  # trailing colour: the noun before it is the keyword
        "SET OF 3 CAKE TINS",
        "SET OF 6 MUG",
        "12 PENCILS",  # digits are not keywords
        "PINK",  # only a modifier: no keyword
        None,  # no title: no keyword
    ]
    # pink starts 4 titles and ends 1; set starts 2 and ends 0: modifiers. holder, mug end titles.
    assert title_keywords_python(titles) == [
        "holder",
        "mug",
        "holder",
        "mac",
        "tins",
        "mug",
        "pencils",
        None,
        None,
    ]


def test_keyword_classes_follow_min_examples_like_categories() -> None:
    counts = {("holder", False): 3, ("mug", False): 2, ("tins", False): 1, (None, False): 4}
    label_map = build_label_map(counts, min_examples_per_class=2, source=TITLE_KEYWORD)
    assert label_map.classes == ["holder", "mug"]
    labels = label_map.to_json()
    assert labels["label_source"] == TITLE_KEYWORD and labels["source_column"] == "title"
    assert labels["excluded_classes"] == {"tins": 1}


def test_category_labels_json_keeps_its_keys() -> None:
    """The default source writes exactly the keys it wrote before label sources existed."""
    labels = build_label_map({("shirts", True): 3}, 1).to_json()
    assert "label_source" not in labels and labels["source_column"] == CATEGORY
    assert set(labels) == {
        "classes",
        "num_classes",
        "unlabeled",
        "source_column",
        "min_examples_per_class",
        "counted_on",
        "examples_per_class",
        "excluded_classes",
    }


def test_a_catalog_without_categories_needs_a_label_source(tmp_path: Path) -> None:
    cfg = config_from_dict({"catalog": {"columns": {"category": None}}}, base_dir=tmp_path)
    with pytest.raises(
        LabelSourceError, match="features.label_source is category but catalog.columns.category is null"
    ):
        check_label_source(cfg)
    keyword = config_from_dict(
        {"catalog": {"columns": {"category": None}}, "features": {"label_source": "title_keyword"}}, base_dir=tmp_path
    )
    check_label_source(keyword)  # titles are mapped: fine


def test_title_keyword_needs_a_title_column(tmp_path: Path) -> None:
    cfg = config_from_dict(
        {"catalog": {"columns": {"title": None}}, "features": {"label_source": "title_keyword"}}, base_dir=tmp_path
    )
    with pytest.raises(LabelSourceError, match="catalog.columns.title is null"):
        check_label_source(cfg)


def test_unknown_label_source_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="features.label_source must be one of category, title_keyword"):
        config_from_dict({"features": {"label_source": "brand"}}, base_dir=tmp_path)


def test_retail_config_loads_and_derives_labels_from_titles() -> None:
    cfg = load_config(REPO_ROOT / "conf" / "retail.yaml")
    assert cfg.features.label_source == TITLE_KEYWORD
    assert cfg.catalog.columns.category is None and cfg.catalog.columns.description is None
    assert cfg.catalog.missing_image == "text_only" and cfg.catalog.image_pattern is None
    assert cfg.train.models == ["text"]
    assert cfg.interactions.simulated is False
    assert cfg.evaluate.cutoff == "2011-10-18" and cfg.evaluate.test_days == 14
    assert cfg.interactions.path.endswith("online-retail/interactions.csv.gz")
    assert Path(cfg.paths.report).name == "retail" and Path(cfg.paths.warehouse).parts[-2:] == ("retail", "warehouse")
    check_label_source(cfg)


@pytest.mark.parametrize(("name", "simulated"), [("local.yaml", True), ("fashion.yaml", True)])
def test_simulator_configs_say_their_interactions_are_simulated(name: str, simulated: bool) -> None:
    assert load_config(REPO_ROOT / "conf" / name).interactions.simulated is simulated
