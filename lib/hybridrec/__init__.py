"""hybridrec: a distributed Spark batch recommender (content from CNN/LSTM embeddings + Spark ALS)."""

__version__ = "0.1.0"
