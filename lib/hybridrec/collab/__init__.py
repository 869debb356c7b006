"""Collaborative filtering: Spark ALS on implicit feedback (see ``als`` for the public API).

Modules, one concern each: ``confidence`` (events → usable rows → confidence per pair), ``ids``
(persistent id → index mappings), ``estimator`` (Spark's ALS, checkpoints), ``topk`` (top-K per
user, two ways), ``holdout_metrics`` (ALS's ranking metrics on a temporal holdout against
popularity and random baselines; the holdouts themselves are ``hybridrec.splits``, the metric
definitions ``hybridrec.metrics``), ``tuning`` (grid / random search), ``blas`` (which BLAS runs), ``als``
(``fit_als``, the transform), ``store`` (tables and model folder; MLflow is ``hybridrec.tracking``),
``refit`` (``run_als``: the nightly step).
"""
