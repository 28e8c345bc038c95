"""The exception types users catch.

Every error raised on purpose by sessionrec derives from :class:`SessionrecError`, so a
service can catch one type. Messages name the file, the row or column, what was found
and what to do about it, in the terms of the Python API (``ColumnMap.session``,
``ProtocolConfig.test_days``, ``TrainConfig.device``); the options that fix the problem
are also listed in :attr:`SessionrecError.options`, which the command line turns into
its flags (``--session-col``, ``--test-days``, ``--device``): one message, right for
both audiences.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "SessionrecError",
    "SchemaError",
    "BadRowsError",
    "EmptyDataError",
    "UnsafePickleError",
    "ArtifactError",
    "ConfigError",
    "NonFiniteError",
]


class SessionrecError(Exception):
    """Base class of every error sessionrec raises on purpose.

    Args:
        *args: the message (as for :class:`Exception`).
        options: the API options that fix the problem, as ``Class.field`` or
            ``function.parameter`` (for example ``("ColumnMap.session", "read_clicks.format")``).
            The command line prints the flag of each (``sessionrec.cli.flags.FLAGS``).

    Attributes:
        options: the same, as a tuple (empty when no option is the fix).
    """

    def __init__(self, *args: object, options: Sequence[str] = ()) -> None:
        super().__init__(*args)
        self.options: tuple[str, ...] = tuple(options)


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


class NonFiniteError(SessionrecError):
    """Training or a model produced numbers that are not finite (NaN or infinity): a loss
    or gradient during training, the weights of a model, or its scores."""
