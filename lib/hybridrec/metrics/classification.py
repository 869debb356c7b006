"""Classification metrics for the content models: accuracy, macro-F1, per-class F1, confusion matrix.

Plain numpy so that the Horovod rank, the driver and the tests compute them the same way. Macro-F1 is
the unweighted mean of per-class F1 over the classes that occur in the labels or the predictions (a
class absent from both says nothing about the model); a class with no true and no predicted example
is left out, one predicted but never true scores F1 = 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[true, predicted]`` counts."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return cm


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """F1 of each class from a confusion matrix; NaN where the class has no true and no predicted row."""
    tp = np.diag(cm).astype(float)
    true = cm.sum(axis=1).astype(float)
    pred = cm.sum(axis=0).astype(float)
    denom = true + pred
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denom > 0, 2 * tp / denom, np.nan)
    return f1


def classification_report(labels: np.ndarray, predicted: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class F1 and support, and the confusion matrix, JSON-ready."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    n = len(labels)
    cm = confusion_matrix(labels, predicted, len(class_names))
    f1 = f1_per_class(cm)
    present = ~np.isnan(f1)
    return {
        "examples": int(n),
        "accuracy": float((labels == predicted).mean()) if n else float("nan"),
        "macro_f1": float(f1[present].mean()) if present.any() else float("nan"),
        "per_class": {
            name: {"f1": None if np.isnan(f1[i]) else float(f1[i]), "support": int(cm[i].sum())}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": {"classes": list(class_names), "rows_true_cols_predicted": cm.tolist()},
    }
