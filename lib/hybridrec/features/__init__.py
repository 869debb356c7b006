"""Preprocessing of product photos and text into Parquet features that Petastorm feeds to tf.data.

Modules: ``images`` (decode / resize), ``text`` (normalise, tokenise, vocabulary, ids), ``labels``
(category → label map), ``split`` (stable hash split), ``preprocess`` (the job: read, write, manifest).
"""
