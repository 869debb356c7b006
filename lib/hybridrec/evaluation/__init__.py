"""Offline evaluation, the top floor: the backtest of every system on a temporal split, per-user
metrics, bootstrap intervals and the HTML report (the metric definitions live in ``hybridrec.metrics``)."""
