"""The nightly hybrid step: ALS candidates + content candidates + cold start → top-N per user.

Modules: ``history`` (what each user did before the night), ``content`` (profile nearest
neighbours in blocks), ``cold`` (content → ALS-factor regression for cold items), ``popular``
(fallback lists), ``blend`` (normalise, weight, explain, filter, cap, rank), ``similar``
(similar items), ``freshness`` (embeddings of new products), ``nightly`` (the job itself).
"""
