"""Settings of the exclusion rule, the per-category cap and the popularity window, the seen-item
mask of the ALS top-K, and tuning that always weighs the configured settings."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pytest

from hybridrec.collab.estimator import AlsParams
from hybridrec.collab.topk import mask_seen
from hybridrec.collab.tuning import candidates
from hybridrec.config import AlsConfig, ConfigError, RecommendConfig, config_from_dict

pytestmark = pytest.mark.unit


def test_max_per_category_and_popular_days_can_be_switched_off() -> None:
    cfg = config_from_dict({"recommend": {"max_per_category": None, "popular_days": None}})
    assert cfg.recommend.max_per_category is None and cfg.recommend.popular_days is None
    with pytest.raises(ConfigError, match="max_per_category must be at least 1"):
        RecommendConfig(max_per_category=0)
    with pytest.raises(ConfigError, match="popular_days must be > 0"):
        RecommendConfig(popular_days=0.0)


def test_exclude_is_one_of_three_rules_and_defaults_to_interacted() -> None:
    assert RecommendConfig().exclude == "interacted"
    for rule in ("interacted", "purchased", "none"):
        assert RecommendConfig(exclude=rule).exclude == rule
    with pytest.raises(ConfigError, match="recommend.exclude"):
        config_from_dict({"recommend": {"exclude": "bought"}})


def test_mask_seen_sets_only_each_users_own_items_to_minus_infinity() -> None:
    items = np.array([2, 5, 9, 14], dtype=np.int32)
    scores = np.ones((3, 4), dtype=np.float32)
    mask_seen(scores, [[5, 14, 99], None, [2]], items)  # 99 is in another item block
    assert np.isneginf(scores).tolist() == [[False, True, False, True], [False] * 4, [True, False, False, False]]


def test_tuning_candidates_start_with_the_configured_settings() -> None:
    als = AlsConfig(tune_rank=[8, 16], tune_reg_param=[0.1], tune_alpha=[1.0], tune_max_iter=[5])
    default = AlsParams(rank=64, reg_param=0.3, alpha=3.0, max_iter=10)
    got = candidates(als, default)
    assert got[0] == default and len(got) == 3
    inside = AlsParams(rank=8, reg_param=0.1, alpha=1.0, max_iter=5)
    assert candidates(als, inside) == [inside, AlsParams(rank=16, reg_param=0.1, alpha=1.0, max_iter=5)]


def test_report_protocol_names_the_exclusion_rule_and_the_cap() -> None:
    from hybridrec.evaluation.backtest_report import protocol_text

    split = SimpleNamespace(cutoff=dt.datetime(2011, 10, 18))
    shipped = protocol_text(config_from_dict({}), split)
    assert "products the user had interacted with before excluded" in shipped and "at most 4 per category" in shipped
    repeats = protocol_text(
        config_from_dict({"recommend": {"exclude": "none", "max_per_category": None}, "evaluate": {"relevant": "all"}}),
        split,
    )
    assert "repeats included" in repeats and "no category cap" in repeats and "exclude=none" in repeats
