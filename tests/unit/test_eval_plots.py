"""Report figures (evaluation.plots) are PNGs of a sensible size, and bad input says what is wrong."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hybridrec.evaluation import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(data: bytes) -> Image.Image:
    assert data.startswith(PNG_MAGIC)
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _not_blank(im: Image.Image) -> bool:
    lo, hi = im.convert("L").getextrema()
    return hi - lo > 50


def _table() -> pd.DataFrame:
    rows = []
    for i, system in enumerate(["popularity", "als", "hybrid"]):
        for segment in ["all users", "<=3 interactions", "cold items"]:
            for metric in ["recall@10", "ndcg@10", "novelty"]:
                m = 0.1 * (i + 1)
                rows.append(dict(segment=segment, system=system, metric=metric, mean=m, lo=m - 0.02, hi=m + 0.03))
    rows[0].update(lo=np.nan, hi=np.nan)  # no interval: drawn without error bar
    return pd.DataFrame(rows)


def test_metric_bars_is_a_png_with_a_panel_per_metric() -> None:
    im = _png(plots.metric_bars(_table()))
    assert _not_blank(im)
    assert im.width > 800 and im.height > 250


def test_metric_bars_tolerates_a_missing_cell_and_refuses_a_wrong_table() -> None:
    table = _table()
    table = table[~((table["system"] == "als") & (table["segment"] == "cold items"))]
    _png(plots.metric_bars(table, metrics=["ndcg@10"]))
    with pytest.raises(ValueError, match="columns"):
        plots.metric_bars(table.drop(columns=["lo"]))
    with pytest.raises(ValueError, match="empty"):
        plots.metric_bars(table.iloc[:0])


def test_confusion_heatmap_grows_with_the_classes() -> None:
    small = _png(plots.confusion_heatmap([[5, 1], [0, 4]], ["shirt", "shoe"], title="text"))
    rng = np.random.default_rng(0)
    names = [f"class {i}" for i in range(30)]
    big = _png(plots.confusion_heatmap(rng.integers(0, 9, (30, 30)), names))
    assert _not_blank(small) and _not_blank(big)
    assert big.width > small.width
    # a class with no test example (row of zeros) is drawn, not divided by zero
    _png(plots.confusion_heatmap([[0, 0], [1, 3]], ["a", "b"]))


def test_confusion_heatmap_wants_a_square_matrix_matching_the_names() -> None:
    with pytest.raises(ValueError, match="3 class names"):
        plots.confusion_heatmap([[1, 2], [3, 4]], ["a", "b", "c"])


def test_training_curves_from_a_train_job_history() -> None:
    history = [
        {
            "epoch": e,
            "loss": 1 / e,
            "val_loss": 1.1 / e,
            "accuracy": 1 - 1 / (e + 1),
            "val_accuracy": 0.9 - 1 / (e + 2),
            "samples_per_s": 100.0,
            "lr": 1e-3,
        }
        for e in range(1, 6)
    ]
    assert _not_blank(_png(plots.training_curves(history, title="image CNN")))
    # loss only (no accuracy recorded): the empty panel says so
    _png(plots.training_curves([{"loss": 0.5}, {"loss": 0.4}]))
    with pytest.raises(ValueError, match="empty"):
        plots.training_curves([])


def test_figures_are_reproducible() -> None:
    assert plots.confusion_heatmap([[5, 1], [0, 4]], ["a", "b"]) == plots.confusion_heatmap(
        [[5, 1], [0, 4]], ["a", "b"]
    )
