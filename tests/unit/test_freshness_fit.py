"""Serving decodes new products' photos with the rule the model was trained with (issue 24).

``model_files`` reads the fit from the features manifest copied next to the models; the config's
``features.image_fit`` only matters for the next preprocess run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from hybridrec.config import config_from_dict
from hybridrec.errors import HybridrecError
from hybridrec.hybrid.freshness import model_files

pytestmark = pytest.mark.unit

VERSION = "2026-01-01-abcdef12"


def _model(root: Path, feature: dict[str, Any] | None) -> None:
    """The files ``model_files`` reads, for a version with an image model."""
    d = root / VERSION
    (d / "image").mkdir(parents=True)
    (d / "image" / "saved_model.pb").write_bytes(b"")
    files = {
        "metrics.json": {"train_config": {"image_embedding_dim": 8, "text_embedding_dim": 8}},
        "labels.json": {"classes": ["a", "b"]},
        "vocab.json": {"tokens": ["<pad>", "<unk>"], "max_len": 4},
        "manifest.json": {"images": {} if feature is None else {"feature": feature}},
    }
    for name, body in files.items():
        (d / name).write_text(json.dumps(body), encoding="utf-8")


def _cfg(root: Path, fit: str = "stretch") -> Any:
    return config_from_dict({"paths": {"models": str(root)}, "features": {"image_fit": fit, "image_size": 64}})


def test_the_models_fit_and_size_win_over_the_config(tmp_path: Path, caplog) -> None:
    _model(tmp_path, {"shape": [32, 32, 3], "fit": "crop"})
    with caplog.at_level(logging.WARNING, logger="hybridrec.hybrid.freshness"):
        mf = model_files(_cfg(tmp_path, "stretch"), VERSION)
    assert (mf.image_size, mf.image_fit) == (32, "crop")
    assert "trained on photos decoded with image fit 'crop'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hybridrec.hybrid.freshness"):
        assert model_files(_cfg(tmp_path, "crop"), VERSION).image_fit == "crop"
    assert not caplog.text, "no warning when the config agrees"


def test_a_manifest_from_before_the_fit_was_recorded_means_pad(tmp_path: Path) -> None:
    _model(tmp_path, {"shape": [32, 32, 3]})
    assert model_files(_cfg(tmp_path, "stretch"), VERSION).image_fit == "pad"


def test_no_image_feature_falls_back_to_the_config(tmp_path: Path) -> None:
    _model(tmp_path, None)
    mf = model_files(_cfg(tmp_path, "crop"), VERSION)
    assert (mf.image_size, mf.image_fit) == (64, "crop")


def test_an_unknown_fit_in_the_manifest_stops_with_the_fix(tmp_path: Path) -> None:
    _model(tmp_path, {"shape": [32, 32, 3], "fit": "squash"})
    with pytest.raises(HybridrecError, match="image fit 'squash'.*retrain"):
        model_files(_cfg(tmp_path), VERSION)
