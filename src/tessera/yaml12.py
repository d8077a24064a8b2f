"""YAML for Tessera's own files (catalog, quality registry), read with YAML 1.2's booleans.

PyYAML follows YAML 1.1, where ``yes``, ``no``, ``on``, ``off``, ``y`` and ``n`` are booleans: a
country list ``[DE, NO]`` would hold Norway as ``False`` and a trigger key ``on:`` would arrive as
``True``. Here only ``true`` and ``false`` (in any of YAML's three spellings) are booleans; the
rest stay text, so validation sees what the user wrote and names it.
"""

from __future__ import annotations

import re
from typing import IO, Any

import yaml

_BOOL = "tag:yaml.org,2002:bool"


class Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def safe_load(stream: str | IO[str]) -> Any:
    """``yaml.safe_load`` with YAML 1.2 booleans."""
    return yaml.load(stream, Loader=Loader)  # noqa: S506 - Loader is a SafeLoader
