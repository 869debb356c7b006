"""Product text → fixed-length token id sequences: normalisation, tokenisation, vocabulary, encoding.

Normalisation (``normalize_text``), in this order:
1. HTML comments and tags removed (a tag must start with a letter, ``/`` or ``!`` so that
   "size < 5 cm" survives; a comment that is never closed runs to the end of the text, as in
   HTML), then HTML entities decoded (``&amp;`` → ``&``, ``&nbsp;`` → no-break space), then tags
   removed once more (catalog feeds often escape their markup: ``&lt;b&gt;``);
2. Unicode NFKC: compatibility forms folded (full-width ``Ａ１`` → ``A1``, ligature ``ﬁ`` → ``fi``,
   no-break space → space) and accents composed, so the same word always has one spelling;
3. lower case; 4. every run of white space → one space, trimmed.

Tokenisation (``tokenize``): a token is a maximal run of letters (any script) or a maximal run of
digits. Everything else separates tokens and is dropped: punctuation, symbols, emoji. So
``"T-Shirt 2x32GB"`` → ``t, shirt, 2, x, 32, gb``. Scripts written without spaces (Chinese, Japanese)
come out as one token per run; a language-aware segmenter is out of scope for catalog titles.

Vocabulary (``build_vocab``): token counts over the *train split only* (val/test words the model
never saw in training map to UNK, as new products' words will), tokens seen at least ``min_count``
times, at most ``max_size`` ids in total including the reserved ``0 = PAD`` and ``1 = UNK``, in a
deterministic order: count descending, then token (code point order). Ids follow that order.

Encoding (``encode_text``): ids of the first ``max_len`` tokens, then PAD up to ``max_len`` (padding
and truncation at the end, so the start of the title, the most informative part, is always kept),
plus ``length`` = number of real tokens (0 for a product with no text), for masking.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

PAD_ID = 0
UNK_ID = 1
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
RESERVED = (PAD_TOKEN, UNK_TOKEN)

# Linear time on any input (descriptions can be 100 kB of someone's markup): an unclosed comment
# runs to the end of the text, as in HTML, instead of being searched for again from every later
# "<!--" (quadratic); possessive quantifiers keep "<" + many spaces from backtracking.
_COMMENT_OR_TAG = re.compile(r"<!--(?:.*?-->|.*)|<\s*+(?:[/!]\s*+)?[A-Za-z][^<>]*+>", re.DOTALL)
_SPACES = re.compile(r"\s+")
_TOKEN = re.compile(r"[^\W\d_]+|\d+")


def normalize_text(text: str | None) -> str:
    """Normalise one text as described in the module docstring; None → ''."""
    if not text:
        return ""
    text = _COMMENT_OR_TAG.sub(" ", text)
    text = html.unescape(text)
    text = _COMMENT_OR_TAG.sub(" ", text)
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACES.sub(" ", text).strip()


def tokenize(normalized: str) -> list[str]:
    """Runs of letters and runs of digits of an already normalised text."""
    return _TOKEN.findall(normalized)


def text_tokens(title: str | None, description: str | None) -> list[str]:
    """Tokens of a product's text: title then description (either may be missing)."""
    return tokenize(normalize_text(" ".join(t for t in (title, description) if t)))


def encode(tokens: Sequence[str], index: Mapping[str, int], max_len: int) -> tuple[list[int], int]:
    """(ids padded/truncated to ``max_len``, number of real tokens kept)."""
    ids = [index.get(t, UNK_ID) for t in tokens[:max_len]]
    return ids + [PAD_ID] * (max_len - len(ids)), len(ids)


def vocab_from_counts(counts: Iterable[tuple[str, int]], min_count: int, max_size: int) -> list[str]:
    """The vocabulary (index = id) from (token, count) pairs: the same rule ``build_vocab`` runs in
    Spark, for tests and for small inputs."""
    kept = sorted(((t, c) for t, c in counts if c >= min_count), key=lambda tc: (-tc[1], tc[0]))
    return [*RESERVED, *(t for t, _ in kept[: max(0, max_size - len(RESERVED))])]


# ---- Spark ---------------------------------------------------------------------------------------


@F.pandas_udf(T.ArrayType(T.StringType()))
def _tokens_udf(title: pd.Series, description: pd.Series) -> pd.Series:
    return pd.Series([text_tokens(t, d) for t, d in zip(title, description)], index=title.index, dtype=object)


def tokens_column(title: Column | str, description: Column | str) -> Column:
    """array<string> of the product's tokens (title + description), computed in a pandas UDF.

    A UDF because NFKC and HTML entity decoding have no Spark SQL equivalent, and one Python
    function keeps training-time and serving-time text handling identical.
    """

    def col(c: Column | str) -> Column:
        return F.col(c) if isinstance(c, str) else c

    return _tokens_udf(col(title), col(description))


def add_tokens(products: DataFrame) -> DataFrame:
    """``products`` (with title, description) plus ``tokens``."""
    return products.withColumn("tokens", tokens_column("title", "description"))


def token_counts(tokenized: DataFrame) -> DataFrame:
    """(token, count) over all rows of ``tokenized`` (a DataFrame with ``tokens``)."""
    return tokenized.select(F.explode("tokens").alias("token")).groupBy("token").agg(F.count(F.lit(1)).alias("count"))


def build_vocab(tokenized_train: DataFrame, min_count: int, max_size: int) -> list[tuple[str, int]]:
    """The vocabulary as [(token, count)] with index = id; ids 0 and 1 are PAD and UNK (count 0).

    Counting is a Spark aggregation; only the kept tokens (at most ``max_size``) reach the driver.
    """
    limit = max(0, max_size - len(RESERVED))
    rows = (
        (
            token_counts(tokenized_train)
            .filter(F.col("count") >= min_count)
            .orderBy(F.col("count").desc(), F.col("token").asc())
            .limit(limit)
            .collect()
        )
        if limit
        else []
    )
    return [(PAD_TOKEN, 0), (UNK_TOKEN, 0), *((r["token"], int(r["count"])) for r in rows)]


def encode_text(tokenized: DataFrame, vocab: Sequence[str], max_len: int) -> DataFrame:
    """Replace ``tokens`` by ``token_ids`` (array<int>, exactly ``max_len``) and ``length`` (int).

    The vocabulary is broadcast once (it is bounded by ``vocab_max_size``), not joined per token.
    """
    index = {token: i for i, token in enumerate(vocab)}
    bc = tokenized.sparkSession.sparkContext.broadcast(index)
    schema = T.StructType(
        [
            T.StructField("token_ids", T.ArrayType(T.IntegerType(), False), True),
            T.StructField("length", T.IntegerType(), True),
        ]
    )

    @F.pandas_udf(schema)
    def encode_udf(tokens: pd.Series) -> pd.DataFrame:
        lookup = bc.value
        encoded = [encode(list(t) if t is not None else [], lookup, max_len) for t in tokens]
        return pd.DataFrame(
            {"token_ids": [ids for ids, _ in encoded], "length": [n for _, n in encoded]},
            index=tokens.index,
        )

    cols = [c for c in tokenized.columns if c != "tokens"]
    return tokenized.withColumn("_enc", encode_udf("tokens")).select(
        *cols, F.col("_enc.token_ids").alias("token_ids"), F.col("_enc.length").alias("length")
    )
