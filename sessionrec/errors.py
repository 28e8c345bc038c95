"""The exception types users catch.

Every error raised on purpose by sessionrec derives from :class:`SessionrecError`, so a
service can catch one type. Messages name the file, the row or column, what was found
and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "SessionrecError",
    "SchemaError",
    "BadRowsError",
    "EmptyDataError",
    "UnsafePickleError",
    "ArtifactError",
    "ConfigError",
]


class SessionrecError(Exception):
    """Base class of every error sessionrec raises on purpose."""


class SchemaError(SessionrecError):
    """A file lacks a column, has a column of the wrong type, or cannot be parsed."""


class BadRowsError(SessionrecError):
    """Rows that break the data rules (null ids, unparsable timestamps, ...)."""


class EmptyDataError(SessionrecError):
    """Nothing is left to work with (an empty file, or every session filtered out)."""


class UnsafePickleError(SessionrecError):
    """A pickle holds something other than lists, tuples and ints; nothing was executed."""


class ArtifactError(SessionrecError):
    """A saved dataset or model is missing, tampered with, or of an incompatible format."""


class ConfigError(SessionrecError, ValueError):
    """A parameter has a value outside what is allowed."""
