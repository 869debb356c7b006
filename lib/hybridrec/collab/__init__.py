"""Collaborative filtering: Spark ALS on implicit feedback (see ``als`` for the public API).

Modules, one concern each: ``confidence`` (events → usable rows → confidence per pair), ``ids``
(persistent id → index mappings), ``holdout`` (temporal splits), ``estimator`` (Spark's ALS,
checkpoints), ``topk`` (top-K per user, two ways), ``evaluate`` (ranking metrics against a
popularity baseline), ``tuning`` (grid / random search), ``blas`` (which BLAS runs), ``als``
(``fit_als``, the transform), ``store`` (tables and model folder), ``tracking`` (MLflow),
``refit`` (``run_als``: the nightly step).
"""
