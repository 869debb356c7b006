"""Config loader: defaults, overrides, path resolution and clear errors on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridrec.config import Config, ConfigError, config_from_dict, load_config, parse_override, to_dict

REPO_ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_configs_load() -> None:
    for name in ("local.yaml", "databricks.yaml"):
        cfg = load_config(REPO_ROOT / "conf" / name)
        assert isinstance(cfg, Config)
    local = load_config(REPO_ROOT / "conf" / "local.yaml")
    assert local.spark.local_ip == "127.0.0.1"
    assert Path(local.paths.warehouse) == REPO_ROOT / "data" / "warehouse"


def test_defaults_and_partial_file(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "train:\n  epochs: 9\n"))
    assert cfg.train.epochs == 9
    assert cfg.train.batch_size == Config().train.batch_size
    assert cfg.source.endswith("c.yaml")


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, ""))
    assert to_dict(cfg)["spark"] == to_dict(Config())["spark"]


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    cfg = load_config(_write(sub, "paths:\n  warehouse: ../wh\n  features: s3://bucket/f\n"))
    assert cfg.paths.warehouse == str(tmp_path / "wh")
    assert cfg.paths.features == "s3://bucket/f"
    assert cfg.catalog.path == str(tmp_path / "data/raw/catalog/products.csv")


def test_overrides_parse_yaml_values(tmp_path: Path) -> None:
    cfg = load_config(
        _write(tmp_path, "{}"),
        [
            "train.epochs=3",
            "spark.master=local[2]",
            "train.nics=[lo, eth9]",
            "train.num_proc=null",
            "spark.conf.spark.sql.adaptive.enabled=false",
            "train.learning_rate=1",
        ],
    )
    assert cfg.train.epochs == 3
    assert cfg.spark.master == "local[2]"
    assert cfg.train.nics == ["lo", "eth9"]
    assert cfg.train.num_proc is None
    assert cfg.spark.conf == {"spark.sql.adaptive.enabled": "false"}
    assert cfg.train.learning_rate == 1.0 and isinstance(cfg.train.learning_rate, float)


def test_words_like_off_stay_words_and_boolean_settings_still_take_them(tmp_path: Path) -> None:
    """YAML 1.2 booleans: ``off`` is the word for a string setting (YAML 1.1 made it False and the
    ranker.use=off override was refused); a boolean setting still takes an unquoted yes/no/on/off."""
    cfg = load_config(
        _write(tmp_path, "spark:\n  ui_enabled: off\n  require_delta: Yes\n"),
        ["ranker.use=off", "spark.conf.spark.some.flag=on"],
    )
    assert cfg.ranker.use == "off"
    assert cfg.spark.ui_enabled is False and cfg.spark.require_delta is True
    assert cfg.spark.conf["spark.some.flag"] == "true"  # Spark's word, as before
    assert parse_override("a.b=TRUE") == (["a", "b"], True)
    with pytest.raises(ConfigError, match="spark.ui_enabled must be true or false"):
        load_config(_write(tmp_path, "spark:\n  ui_enabled: maybe\n"))


def test_spark_conf_passthrough_keeps_dotted_keys(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, 'spark:\n  conf:\n    "spark.sql.adaptive.enabled": false\n'))
    assert cfg.spark.conf == {"spark.sql.adaptive.enabled": "false"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("trian:\n  epochs: 3\n", "unknown config key trian; valid keys in <top level>:"),
        ("train:\n  epoch: 3\n", "unknown config key train.epoch; valid keys in train:"),
        ("train:\n  epochs: three\n", "train.epochs must be an integer, got str 'three'"),
        ("train:\n  epochs: true\n", "train.epochs must be an integer, got bool True"),
        ("spark:\n  ui_enabled: 'yes'\n", "spark.ui_enabled must be true or false"),
        ("train:\n  nics: lo\n", "train.nics must be a list"),
        ("train: 5\n", "train must be a mapping of keys, got int 5"),
        ("- a\n- b\n", "must hold a mapping of sections"),
        ("train: {epochs: [\n", "is not valid YAML"),
        ("spark:\n  conf:\n    a: [1]\n", "spark.conf.a must be a string, number or boolean"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(_write(tmp_path, text))
    assert message in str(exc.value)


def test_missing_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file .*nope.yaml not found: check the path"):
        load_config(tmp_path / "nope.yaml")


def test_missing_default_file_says_where_to_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="run from the repository root or pass --config"):
        load_config()


@pytest.mark.parametrize(
    "item, message",
    [
        ("train.epochs", "must look like section.key=value"),
        ("=3", "must look like section.key=value"),
        ("train..epochs=3", "empty part"),
        ("train.epochs.x=3", "train.epochs is a value, not a section"),
        ("train.nics=[lo", "not valid YAML"),
        ("train.bogus=1", "unknown config key train.bogus"),
    ],
)
def test_bad_overrides(tmp_path: Path, item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_config(_write(tmp_path, "train:\n  epochs: 2\n"), [item])


def test_parse_override_keeps_strings_with_equals() -> None:
    assert parse_override("spark.conf.x=a=b") == (["spark", "conf", "x"], "a=b")


def test_config_from_dict_validates() -> None:
    with pytest.raises(ConfigError, match="unknown config key spark.masterr"):
        config_from_dict({"spark": {"masterr": "local"}})


@pytest.mark.parametrize(
    "train, message",
    [
        ({"image_model": "resnet"}, "train.image_model"),
        ({"epochs": 0}, "train.epochs must be at least 1"),
        ({"num_proc": 0}, "train.num_proc must be at least 1"),
        ({"learning_rate": 0}, "train.learning_rate must be > 0"),
        ({"models": ["audio"]}, "train.models must list image and/or text"),
        ({"model_version": "v 1/x"}, "train.model_version may hold"),
        ({"image_zoom_out": 0.8}, r"train.image_zoom_out must be at most 0.75"),
        ({"image_zoom_out": -0.1}, r"train.image_zoom_out must be a number >= 0"),
        ({"image_aspect_jitter": 0.6}, r"train.image_aspect_jitter must be at most 0.5"),
    ],
)
def test_bad_training_settings_are_refused_at_load(train: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"train": train})


def test_image_fit_defaults_to_stretch_and_takes_only_the_three_rules(tmp_path: Path) -> None:
    assert Config().features.image_fit == "stretch"
    for fit in ("stretch", "pad", "crop"):
        assert load_config(_write(tmp_path, ""), [f"features.image_fit={fit}"]).features.image_fit == fit
    with pytest.raises(ConfigError, match="features.image_fit must be one of stretch, pad, crop; got 'squash'"):
        load_config(_write(tmp_path, ""), ["features.image_fit=squash"])


def test_image_augmentation_is_on_by_default_and_zero_switches_it_off() -> None:
    from hybridrec.config import TrainConfig

    assert TrainConfig().image_zoom_out == 0.5 and TrainConfig().image_aspect_jitter == 0.25
    off = config_from_dict({"train": {"image_zoom_out": 0, "image_aspect_jitter": 0}}).train
    assert off.image_zoom_out == 0 and off.image_aspect_jitter == 0
    # direct construction (tests, notebooks) is held to the same range as the loader
    with pytest.raises(ConfigError, match=r"train.image_zoom_out must be in \[0, 0.75\]"):
        TrainConfig(image_zoom_out=0.9)


def test_the_old_unity_catalog_key_names_its_new_name(tmp_path: Path) -> None:
    """``tables.catalog`` (Unity Catalog) became ``tables.uc_catalog``, apart from the product catalog."""
    renamed = "config key tables.catalog was renamed to tables.uc_catalog"
    with pytest.raises(ConfigError, match=renamed):
        load_config(_write(tmp_path, "tables:\n  catalog: main\n"))
    with pytest.raises(ConfigError, match=renamed):
        load_config(_write(tmp_path, ""), ["tables.catalog=main"])
    assert load_config(_write(tmp_path, ""), ["tables.uc_catalog=main"]).tables.uc_catalog == "main"


def test_mlflow_keys_keep_each_sections_experiment() -> None:
    cfg = config_from_dict({"train": {"mlflow_tracking_uri": "databricks"}})
    assert (cfg.train.mlflow_experiment, cfg.als.mlflow_experiment) == ("hybridrec-train", "hybridrec-als")
    assert cfg.train.mlflow_tracking_uri == "databricks" and cfg.als.mlflow_tracking_uri is None
    assert to_dict(cfg)["als"]["mlflow_experiment"] == "hybridrec-als"
