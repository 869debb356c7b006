"""recommend.lexical_attributes: the config refuses a repeated name, and an attribute the catalog
does not keep is refused before any Spark work (the informative term weights of hybrid.lexical)."""

from __future__ import annotations

import pytest

from conftest import make_config
from hybridrec.config import ConfigError
from hybridrec.hybrid.lexical import LexicalInputError, check_lexical_attributes


def test_a_repeated_attribute_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="lexical_attributes lists an attribute twice"):
        make_config(tmp_path, recommend={"lexical_attributes": ["category", "category"]})


def test_an_attribute_the_catalog_does_not_keep_is_refused(tmp_path) -> None:
    cfg = make_config(
        tmp_path, catalog={"attributes": ["colour"]}, recommend={"lexical_attributes": ["category", "gender"]}
    )
    with pytest.raises(LexicalInputError, match="names gender but catalog.attributes does not keep it"):
        check_lexical_attributes(cfg)
    check_lexical_attributes(
        make_config(
            tmp_path, catalog={"attributes": ["colour"]}, recommend={"lexical_attributes": ["category", "colour"]}
        )
    )
