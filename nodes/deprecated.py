"""The one home for what the compatibility contract keeps alive after a change (CONTRIBUTING.md "Deprecation").

Saved workflows store widget values by position and combo choices by value, so nothing is renamed in place:
- a replaced node stays registered with `is_deprecated=True` in its schema; its class moves here and is listed
  in `NODES`, and its description names the replacement;
- a renamed combo choice is listed in `RENAMED_CHOICES` (node id -> input -> {old value: new value}); the node's
  `execute` reads its value through `current_choice`, so an old save keeps its meaning;
- an input whose default was a sentinel (e.g. -1 for "largest") keeps accepting the sentinel; its translation
  lives here beside the rename it came with.
"""

from __future__ import annotations

import logging

RENAMED_CHOICES: dict[str, dict[str, dict[str, str]]] = {}
NODES: list = []  # deprecated node classes, still registered


def current_choice(node_id: str, input_name: str, value: str) -> str:
    """The combo value a saved workflow holds, in today's spelling (logged once per old value met)."""
    renamed = RENAMED_CHOICES.get(node_id, {}).get(input_name, {})
    if value not in renamed:
        return value
    logging.warning("%s: input '%s': choice %r is now called %r; re-save the workflow to update it",
                    node_id, input_name, value, renamed[value])
    return renamed[value]
