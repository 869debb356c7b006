"""Classification metrics and the fused vector, checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hybridrec.metrics.classification import classification_report, confusion_matrix
from hybridrec.models.embeddings import fuse, fusion_input


def test_report_matches_a_hand_computed_example() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 2, 2])
    report = classification_report(labels, predicted, ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    # a: tp 2, fn 1, fp 0 -> 4/5; b: tp 1, fn 1, fp 1 -> 1/2; c: tp 1, fn 0, fp 1 -> 2/3
    assert report["per_class"]["a"] == {"f1": pytest.approx(0.8), "support": 3}
    assert report["per_class"]["b"]["f1"] == pytest.approx(0.5)
    assert report["per_class"]["c"]["f1"] == pytest.approx(2 / 3)
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["confusion_matrix"]["rows_true_cols_predicted"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_a_class_absent_from_labels_and_predictions_does_not_count_in_macro_f1() -> None:
    report = classification_report(np.array([0, 1]), np.array([0, 1]), ["a", "b", "never"])
    assert report["macro_f1"] == 1.0 and report["per_class"]["never"]["f1"] is None
    # Predicted but never true: F1 0, and it does count.
    report = classification_report(np.array([0, 0]), np.array([0, 2]), ["a", "b", "c"])
    assert report["per_class"]["c"]["f1"] == 0.0
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)


def test_confusion_matrix_counts_pairs() -> None:
    cm = confusion_matrix(np.array([1, 1, 0]), np.array([1, 0, 0]), 2)
    assert cm.tolist() == [[1, 0], [1, 1]]


def test_fused_vector_is_unit_length_and_averages_the_two_cosines() -> None:
    rng = np.random.default_rng(0)
    img, txt = rng.normal(size=(2, 5)), rng.normal(size=(2, 3))
    fused = fuse(img, txt)
    assert fused.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, rtol=1e-6)

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    expected = (cos(img[0], img[1]) + cos(txt[0], txt[1])) / 2
    assert float(fused[0] @ fused[1]) == pytest.approx(expected, rel=1e-5)


def test_a_missing_photo_leaves_a_unit_text_only_vector() -> None:
    img = np.array([[0.0, 0.0], [3.0, 4.0]])
    txt = np.array([[0.0, 2.0], [1.0, 0.0]])
    fused = fuse(img, txt)
    np.testing.assert_allclose(fused[0], [0.0, 0.0, 0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(fused[1], np.array([0.6, 0.8, 1.0, 0.0]) / math.sqrt(2), rtol=1e-6)
    assert not np.isnan(fuse(np.zeros((1, 0)), txt[:1])).any()
    assert fusion_input(img[1:], txt[1:]).shape == (1, 4)
