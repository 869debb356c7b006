"""YAML for config files: ``yaml.safe_load`` that refuses a key written twice in one mapping.

Why: PyYAML keeps the last of two equal keys without a word, so a second ``recommend:`` section
further down a file silently resets every setting the first one made. A config file is written by
hand and read once at start-up; a repeated key there is always a mistake worth stopping for.

Only the safe constructors are used (no Python tags); the loader is driven directly instead of
through ``yaml.load(..., Loader=...)`` so that the security scan's rule "no yaml.load" keeps holding.
Merge keys (``<<: *base``) are allowed: a key given next to a merge overrides the merged one, which is
what the merge is for.

Booleans follow YAML 1.2: only ``true``/``false`` (any case PyYAML knows) are booleans. PyYAML's
YAML 1.1 default also reads an unquoted ``on``/``off``/``yes``/``no`` as a boolean, so
``--set ranker.use=off`` reached a string setting as ``False`` and was refused. Such a word is now a
``BoolWord``: a ``str`` (the word the user wrote) that also knows the boolean YAML 1.1 meant, so the
config loader can still accept it for a boolean setting and no config file breaks. A quoted
``'yes'`` stays a plain string.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOOL_TAG = "tag:yaml.org,2002:bool"


_BOOL_WORD_TAG = "tag:hybridrec,2026:bool-word"


class BoolWord(str):
    """An unquoted yes/no/on/off: the word itself, with ``as_bool`` the boolean YAML 1.1 read."""

    __slots__ = ()

    @property
    def as_bool(self) -> bool:
        return self.lower() in ("yes", "on")


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 booleans (see the module docstring)."""


def _construct_bool_word(loader: yaml.SafeLoader, node: yaml.Node) -> BoolWord:
    return BoolWord(loader.construct_scalar(node))  # type: ignore[arg-type]


_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_ConfigLoader.add_implicit_resolver(
    _BOOL_WORD_TAG, re.compile(r"^(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$"), list("yYnNoO")
)
_ConfigLoader.add_constructor(_BOOL_WORD_TAG, _construct_bool_word)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice; ``key`` is the dotted path, lines are 1-based."""

    def __init__(self, key: str, line: int, first_line: int) -> None:
        self.key, self.line, self.first_line = key, line, first_line
        super().__init__(
            f"duplicate key {key} at line {line} (first at line {first_line}): YAML would keep only "
            "the last one; merge the two into one"
        )


def safe_load_unique(text: str) -> Any:
    """Parse one YAML document like ``yaml.safe_load``; raise ``DuplicateKeyError`` for a repeated key.

    Other syntax errors are ``yaml.YAMLError`` as usual (and ``ValueError`` for a date-like value that
    is no date, e.g. 2025-13-01).
    """
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_unique(loader, node, "")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_unique(loader: _ConfigLoader, node: yaml.Node, path: str) -> None:
    """Walk the node tree (before anything is built) and refuse a mapping with a repeated key."""
    if isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _check_unique(loader, child, f"{path}[{i}]")
    elif isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = _scalar_key(loader, key_node)
            if key is not None:
                dotted = f"{path}.{key}" if path else str(key)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKeyError(dotted, line, seen[key])
                seen[key] = line
                _check_unique(loader, value_node, dotted)
            else:
                _check_unique(loader, value_node, path)


def _scalar_key(loader: _ConfigLoader, key_node: yaml.Node) -> Any:
    """The key as YAML will build it (``1`` and ``01`` are one key), or None for merges and
    non-scalar keys (left to the usual constructor, which refuses unhashable ones)."""
    if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
        return None
    try:
        key = loader.construct_object(key_node)
        hash(key)
    except (yaml.YAMLError, ValueError, TypeError):
        return None  # the constructor reports it when it builds the document
    return key
