"""Metric definitions shared by every step that scores something: ``ranking`` (Precision, Recall,
NDCG, MAP, coverage at K), ``beyond_accuracy`` (novelty, diversity) and ``classification``
(accuracy, macro-F1, confusion matrix of the content models).

Why a package of its own at the bottom floor: the ALS step (``collab``), the content models
(``models``) and the offline report (``evaluation``) must compute a metric the same way, so its
definition has one home that imports nothing of hybridrec and that any layer may import.
"""
