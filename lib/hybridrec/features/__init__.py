"""Preprocessing of product photos and text into Parquet features that Petastorm feeds to tf.data.

Modules: ``images`` (decode / resize), ``text`` (normalise, tokenise, vocabulary, ids), ``labels``
(category → label map), ``preprocess`` (the job: read, write, manifest; the train / val / test
column comes from ``hybridrec.splits``, the one home of every split).
"""
