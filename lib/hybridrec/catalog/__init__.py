"""The product catalog and user interactions: from raw files into validated Delta tables.

Modules: ``sources`` (raw input files → raw DataFrames, by config), ``reasons`` (quarantine reason
codes), ``image_check`` (is a referenced photo inside the image root, present and decodable; pandas
UDF), ``validation`` (pure DataFrame transformations: raw rows → accepted rows + quarantine rows),
``ingest`` (the ingest job's work: read, validate, MERGE into bronze, replace quarantine, counts).
Only real input lives here; the demo's generated catalog and simulated interactions are
``hybridrec.demo``.
"""
