"""Quarantine reason codes: the one place they are spelt.

A quarantined row carries one code (machine-readable, stable: dashboards and tests match on it)
and a free-text detail. When a row has several problems the first check in the validation order
wins (see ``hybridrec.catalog.validation``), so every input row is counted exactly once.
"""

from __future__ import annotations

# Both tables
MALFORMED_ROW = "malformed_row"  # a CSV/JSON line that does not parse into the file's columns
INVALID_ENCODING = "invalid_encoding"  # text holding U+FFFD or NUL: the file was not valid UTF-8 text
DUPLICATE_ROW = "duplicate_row"  # an exact copy of an accepted row (collapsed to one, counted)
UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
FUTURE_TIMESTAMP = "future_timestamp"  # after the ingest run started (listed_at or event time)
# Before 1678: outside what readers holding nanoseconds since 1970 (pyarrow, pandas) can represent.
TIMESTAMP_TOO_OLD = "timestamp_too_old"

# Products
MISSING_ID = "missing_id"
DUPLICATE_ID_CONFLICT = "duplicate_id_conflict"  # same id, different content: all copies
IMAGE_PATH_ESCAPES_ROOT = "image_path_escapes_root"
MISSING_IMAGE = "missing_image"
UNREADABLE_IMAGE = "unreadable_image"
EMPTY_TEXT_AND_NO_IMAGE = "empty_text_and_no_image"
EMPTY_CATEGORY = "empty_category"
UNKNOWN_CATEGORY = "unknown_category"

# Interactions
MISSING_USER = "missing_user"
MISSING_PRODUCT = "missing_product"  # no item id at all (unknown_product: an id not in the catalog)
UNKNOWN_PRODUCT = "unknown_product"
UNKNOWN_EVENT = "unknown_event"
INVALID_WEIGHT = "invalid_weight"  # rating missing, not a number, NaN, infinite or negative
BELOW_MIN_RATING = "below_min_rating"
DUPLICATE_EVENT_CONFLICT = "duplicate_event_conflict"  # same (user, product, ts, event), other weight

PRODUCT_REASONS = (
    MALFORMED_ROW,
    MISSING_ID,
    DUPLICATE_ID_CONFLICT,
    DUPLICATE_ROW,
    INVALID_ENCODING,
    UNPARSEABLE_TIMESTAMP,
    TIMESTAMP_TOO_OLD,
    FUTURE_TIMESTAMP,
    EMPTY_CATEGORY,
    UNKNOWN_CATEGORY,
    IMAGE_PATH_ESCAPES_ROOT,
    MISSING_IMAGE,
    UNREADABLE_IMAGE,
    EMPTY_TEXT_AND_NO_IMAGE,
)

INTERACTION_REASONS = (
    MALFORMED_ROW,
    MISSING_USER,
    MISSING_PRODUCT,
    INVALID_ENCODING,
    UNPARSEABLE_TIMESTAMP,
    TIMESTAMP_TOO_OLD,
    FUTURE_TIMESTAMP,
    UNKNOWN_EVENT,
    INVALID_WEIGHT,
    BELOW_MIN_RATING,
    UNKNOWN_PRODUCT,
    DUPLICATE_EVENT_CONFLICT,
    DUPLICATE_ROW,
)
