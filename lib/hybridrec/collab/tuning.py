"""Hyper-parameter search for ALS on the validation window: a grid, or a seeded random sample of it.

Why this small: each trial is a full ALS fit, and on one machine a fit of a million interactions
takes tens of seconds, so the search covers the few parameters that matter (rank, regParam,
alpha, iterations) over a handful of values from config, and ranks trials by NDCG@K against the
same validation users. The winner is refitted by the caller on all data; every trial is returned
so that it can be saved with the model and logged.
"""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass, field

from hybridrec.collab.estimator import AlsParams, fit_model
from hybridrec.collab.holdout_metrics import HoldoutData, score_model
from hybridrec.config import AlsConfig, Config
from hybridrec.metrics.ranking import metric_name

log = logging.getLogger(__name__)


@dataclass
class Trial:
    """One fitted candidate and its validation metrics."""

    params: AlsParams
    metrics: dict[str, float] = field(default_factory=dict)
    fit_seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"params": self.params.as_dict(), "metrics": self.metrics, "fit_seconds": round(self.fit_seconds, 2)}


def candidates(als: AlsConfig, default: AlsParams | None = None) -> list[AlsParams]:
    """Every grid point (``tune_search: grid``), or ``tune_max_trials`` of them drawn with ``seed``,
    with ``default`` (the configured settings) first when given, so tuning can only pick something
    that beat them on the validation users."""
    grid = [
        AlsParams(rank=r, reg_param=float(g), alpha=float(a), max_iter=i)
        for r, g, a, i in itertools.product(
            sorted(set(als.tune_rank)),
            sorted(set(als.tune_reg_param)),
            sorted(set(als.tune_alpha)),
            sorted(set(als.tune_max_iter)),
        )
    ]
    if als.tune_search == "random" and len(grid) > als.tune_max_trials:
        grid = random.Random(als.seed).sample(grid, als.tune_max_trials)
    if default is not None:
        grid = [default] + [p for p in grid if p != default]
    return grid


def tune(validation: HoldoutData, cfg: Config, default: AlsParams | None = None) -> tuple[AlsParams, list[Trial]]:
    """Fit every candidate on the validation training part; the best NDCG@K wins.

    Ties go to the earlier candidate (``default`` first, then smaller rank and regularisation in
    grid order).
    """
    als = cfg.als
    key = metric_name("ndcg", als.eval_k)
    trials: list[Trial] = []
    todo = candidates(als, default)
    for n, params in enumerate(todo, 1):
        model, seconds = fit_model(validation.train, params, cfg)
        metrics = score_model(model, validation, als.eval_k, als)
        trials.append(Trial(params=params, metrics=metrics, fit_seconds=seconds))
        log.info("tuning %d/%d %s: %s %.4f (fit %.1fs)", n, len(todo), params.as_dict(), key, metrics[key], seconds)
        del model  # its cached factors are released when the JVM object is collected
    best = max(trials, key=lambda t: t.metrics[key])  # max keeps the first of equal values
    log.info("tuning chose %s (%s %.4f)", best.params.as_dict(), key, best.metrics[key])
    return best.params, trials
