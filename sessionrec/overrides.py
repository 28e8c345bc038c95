"""Configuration overrides as text: ``NAME=VALUE`` pairs, parsed into Python values.

The command line sets config fields by name (``sessionrec train --set dropout=0.2``,
``sessionrec baseline --param k=100``); scripts do the same. One parser serves them all:

==================  ====================================================
text                value
==================  ====================================================
``none``, ``null``  ``None``
``true``/``false``  ``True`` / ``False`` (any case)
``12``, ``-3``      ``int``
``0.5``, ``1e-3``   ``float``
``a,b,c``           a tuple of the parsed parts (a grid)
``()`` or ``[]``    the empty tuple
anything else       the text itself
==================  ====================================================

This module imports the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sessionrec.errors import ConfigError

__all__ = ["parse_value", "parse_assignments"]


def parse_value(text: str) -> Any:
    """The Python value of one override's text (see the module docstring)."""
    text = text.strip()
    if text in ("()", "[]"):
        return ()
    if "," in text:
        return tuple(parse_value(part) for part in text.split(",") if part.strip())
    low = text.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_assignments(items: Iterable[str], what: str = "an override") -> dict[str, Any]:
    """``["k=100", "weighting=div"]`` -> ``{"k": 100, "weighting": "div"}``; a later
    assignment of the same name wins.

    Raises:
        ConfigError: an item that is not ``NAME=VALUE``.
    """
    values: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"{what} is NAME=VALUE, got {item!r}")
        values[name] = parse_value(text)
    return values
