"""Typed configuration: YAML files in conf/ loaded into dataclasses, with command-line overrides.

``sections`` declares the settings (one dataclass per YAML section, ``Config`` the whole);
``loader`` is the generic engine (strict YAML, ``--set a.b=value``, types, limits, paths). This
module binds the two into the API every job, test and notebook uses, so callers import from
``hybridrec.config`` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hybridrec.config import loader
from hybridrec.config.loader import INT32_MAX, INT32_MIN, ConfigError, Limit, parse_override, path_field
from hybridrec.config.sections import (
    ANN_MODES,
    CATALOG_FORMATS,
    CATALOG_LAYOUTS,
    EXCLUDE_RULES,
    IMAGE_FITS,
    INTERACTION_FORMATS,
    LABEL_SOURCES,
    MISSING_IMAGE_POLICIES,
    RANKER_MODES,
    AlsConfig,
    CatalogColumns,
    CatalogConfig,
    Config,
    DemoConfig,
    EvaluateConfig,
    FeaturesConfig,
    InteractionColumns,
    InteractionsConfig,
    MlflowSettings,
    PathsConfig,
    RankerConfig,
    RecommendConfig,
    SparkConfig,
    TablesConfig,
    TrainConfig,
)

DEFAULT_CONFIG = Path("conf") / "local.yaml"

__all__ = [
    "CATALOG_FORMATS",
    "CATALOG_LAYOUTS",
    "DEFAULT_CONFIG",
    "ANN_MODES",
    "EXCLUDE_RULES",
    "IMAGE_FITS",
    "INT32_MAX",
    "INT32_MIN",
    "INTERACTION_FORMATS",
    "LABEL_SOURCES",
    "MISSING_IMAGE_POLICIES",
    "RANKER_MODES",
    "AlsConfig",
    "CatalogColumns",
    "CatalogConfig",
    "Config",
    "ConfigError",
    "DemoConfig",
    "EvaluateConfig",
    "FeaturesConfig",
    "InteractionColumns",
    "InteractionsConfig",
    "Limit",
    "MlflowSettings",
    "PathsConfig",
    "RankerConfig",
    "RecommendConfig",
    "SparkConfig",
    "TablesConfig",
    "TrainConfig",
    "config_from_dict",
    "load_config",
    "parse_override",
    "path_field",
    "to_dict",
]


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config file (default ``conf/local.yaml``), apply ``key=value`` overrides, validate.

    Raises ``ConfigError`` for a missing file, bad YAML, unknown keys, wrong types or bad overrides.
    """
    cfg = loader.load_file(Config, path, overrides, DEFAULT_CONFIG)
    cfg.source = str(Path(path) if path is not None else DEFAULT_CONFIG)
    return cfg


def config_from_dict(data: Mapping[str, Any], base_dir: str | Path = ".") -> Config:
    """Build a validated Config from a mapping (tests, notebooks); paths resolve against base_dir."""
    return loader.from_mapping(Config, data, base_dir)


def to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain data (for logging and for saving next to models)."""
    return loader.as_dict(cfg)
