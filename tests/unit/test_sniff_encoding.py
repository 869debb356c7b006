"""The file-head encoding check: UTF-16 without a BOM is told by its many NUL bytes; one NUL inside
a UTF-8 field is a bad row (quarantined), not a UTF-16 file."""

from __future__ import annotations

import pytest

from hybridrec.catalog.sources import sniff_encoding

pytestmark = pytest.mark.unit

TEXT = "id,title\np1,Mug\np2,Shoe red\n"


def test_utf16_without_bom_is_named_by_byte_order() -> None:
    assert sniff_encoding(TEXT.encode("utf-16-le")) == "UTF-16 LE"
    assert sniff_encoding(TEXT.encode("utf-16-be")) == "UTF-16 BE"


def test_a_stray_nul_in_utf8_text_is_not_an_encoding() -> None:
    assert sniff_encoding(TEXT.replace("Shoe", "Sh\x00oe").encode("utf-8")) is None
    assert sniff_encoding(TEXT.encode("utf-8")) is None
