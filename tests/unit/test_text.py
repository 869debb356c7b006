"""Text normalisation, tokenisation, vocabulary rule and encoding (pure Python, no Spark)."""

from __future__ import annotations

import pytest

from hybridrec.features.text import (
    PAD_ID,
    UNK_ID,
    encode,
    normalize_text,
    text_tokens,
    tokenize,
    vocab_from_counts,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # NFKC: full-width letters and digits, ligatures, composed accents, no-break space.
        ("ＡＢＣ１２３", "abc123"),
        ("ﬁne ﬂower", "fine flower"),
        ("Cafe\u0301", "café"),
        ("a\u00a0b", "a b"),
        # HTML tags, comments and entities; escaped markup too; comparisons are not tags.
        ("<p>Soft <b>cotton</b></p>", "soft cotton"),
        ("Tom &amp; Jerry&nbsp;tee", "tom & jerry tee"),
        ("&lt;li&gt;Slim fit&lt;/li&gt;", "slim fit"),
        ("<!-- sku 1 -->Navy", "navy"),
        ("size < 5 cm > 3 cm", "size < 5 cm > 3 cm"),
        # Lower case and white space.
        ("  Men's\tBLUE\n\nJeans  ", "men's blue jeans"),
        # Non-ASCII scripts and emoji are kept by normalisation.
        ("ÜBER Straße", "über straße"),
        ("Платье красное 👗", "платье красное 👗"),
        (None, ""),
        ("", ""),
    ],
)
def test_normalize_text(raw: str | None, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("t-shirt 2x32gb", ["t", "shirt", "2", "x", "32", "gb"]),
        ("men's jeans, size 32/34!", ["men", "s", "jeans", "size", "32", "34"]),
        ("red 👗 dress ❤️ 50% off", ["red", "dress", "50", "off"]),
        ("платье über 日本語", ["платье", "über", "日本語"]),
        ("under_score 3.5", ["under", "score", "3", "5"]),
        ("", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_text_tokens_joins_title_and_optional_description() -> None:
    assert text_tokens("Blue Shirt", None) == ["blue", "shirt"]
    assert text_tokens(None, "<i>Slim</i> fit") == ["slim", "fit"]
    assert text_tokens("Blue", "Shirt") == ["blue", "shirt"]
    assert text_tokens(None, None) == []


def test_vocab_rule_reserved_ids_min_count_order_and_size() -> None:
    counts = [("b", 3), ("a", 3), ("c", 5), ("rare", 1), ("d", 2)]
    assert vocab_from_counts(counts, min_count=2, max_size=100) == ["<pad>", "<unk>", "c", "a", "b", "d"]
    # max_size counts the reserved ids; ties broken by token, so the cut is deterministic.
    assert vocab_from_counts(counts, min_count=2, max_size=4) == ["<pad>", "<unk>", "c", "a"]
    # Input order does not matter.
    assert vocab_from_counts(list(reversed(counts)), 2, 4) == vocab_from_counts(counts, 2, 4)


def test_encode_pads_truncates_and_maps_unknown_words() -> None:
    index = {"<pad>": 0, "<unk>": 1, "blue": 2, "shirt": 3}
    assert encode(["blue", "shirt"], index, 5) == ([2, 3, PAD_ID, PAD_ID, PAD_ID], 2)
    assert encode(["blue", "denim", "shirt"], index, 3) == ([2, UNK_ID, 3], 3)
    assert encode(["blue", "shirt", "blue", "shirt"], index, 3) == ([2, 3, 2], 3)
    assert encode([], index, 2) == ([PAD_ID, PAD_ID], 0)
