"""The catalog loader bounds YAML alias expansion: an alias bomb fails fast with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.campaigns.catalog import MAX_EXPANDED_NODES, _expanded_size, _Loader, parse_catalog
from tessera.campaigns.errors import CatalogError

DEMO = Path(__file__).resolve().parents[3] / "src" / "tessera" / "campaigns" / "catalog.yml"

#: Nine levels of nine aliases each: 341 bytes that expand to 9**9 (387 million) scalars.
BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)


def test_alias_bomb_is_refused_with_a_clear_error_before_it_expands() -> None:
    # Unbounded, this took seconds and gigabytes and then failed on unknown fields.
    with pytest.raises(CatalogError, match="aliases expand to more than"):
        parse_catalog(BOMB, source="bomb.yml")


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(CatalogError, match="refers to its own anchor"):
        parse_catalog("a: &a [1, *a]\n", source="loop.yml")


def test_the_demo_catalog_is_far_below_the_bound() -> None:
    loader = _Loader(DEMO.read_text(encoding="utf-8"))
    try:
        assert _expanded_size(loader.get_single_node(), str(DEMO)) < MAX_EXPANDED_NODES / 10
    finally:
        loader.dispose()
