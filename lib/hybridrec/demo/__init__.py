"""Demo and test data: a generated catalog and simulated interactions (a SIMULATION, not real data).

Why a package of its own: a fresh clone must run the whole pipeline without real data, and tests and
benchmarks need seeded inputs whose generating process is known; none of it is ingest of real input
(``hybridrec.catalog``). A low layer beside ``catalog`` and ``features``: it imports only config and
tables, never collab, models, hybrid or evaluation.

Modules: ``catalog`` (the generated product catalog with photos), ``simulator`` (seeded user
interactions over a catalog, the documented generating process), ``raw_files`` (the raw input files
of a config's demo, as ingest reads them), ``interactions`` (simulated events as a
bronze.interactions-shaped DataFrame, past ingest, for ALS tests and benchmarks).
"""
