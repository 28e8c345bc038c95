"""The conventions every ``sessionrec`` command follows, and the helpers that apply them.

The text of :data:`CONVENTIONS` is the epilog of ``sessionrec --help`` and the body of
``docs/cli.md``; ``tests/test_cli_conventions.py`` walks the parser and checks it holds for
every command, present and future:

- every command has a description and every option a help text; an option with a closed
  set of values lists it (``choices=``);
- a command that does heavy work takes ``--threads N`` (:func:`add_threads`); one that
  does not says why (:func:`light_command`);
- one flag per concept; a renamed flag keeps working for a while, hidden, with a warning
  (:func:`add_deprecated_alias`);
- results on stdout, logs on stderr; progress bars only when stderr is a terminal
  (:func:`show_bars`), otherwise plain lines; ``--quiet`` hides bars and chatter, never
  the one line per epoch of training;
- metrics in human output as ``HR@20  55.03`` (percent, two decimals:
  :func:`metric_lines`).

This module imports nothing heavy: it is read to build the parser.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import warnings
from typing import Any

CONVENTIONS = """\
command-line conventions (docs/cli.md):
  --threads N   compute threads (torch, onnxruntime, polars, BLAS) of every command that
                does heavy work; default: all cores (recommend and the latency and load
                benchmarks: 1, as a service runs)
  --json        exactly one JSON object on stdout, nothing else there
  --quiet       hides progress bars and chatter; training still logs one line per epoch
                (loss, validation HR@20 / MRR@20)
  output        results on stdout; logs, progress and warnings on stderr; progress bars
                only when stderr is a terminal (log files get one plain line per epoch)
  metrics       HR@K, MRR@K, NDCG@K in percent with two decimals: "HR@20  55.03"
  names         one flag per concept: --clicks FILE is a clickstream dump, --session IDS
                the item ids of one session, --seed N the models' seed, --category-col
                NAME a category column, --config NAME a model preset
  renamed flags keep working for a while, hidden from --help, with a warning
  errors        "sessionrec: error: TYPE: message" on stderr, then the flags that fix it
  exit status   0 done, 1 error, 2 usage, 3 fit kept the published model, 130 interrupted
"""

#: Attribute set on a command's parser by :func:`add_threads` (what the threads run) or
#: :func:`light_command` (why the command has no ``--threads``).
THREADS_ATTR = "sessionrec_threads"
LIGHT_ATTR = "sessionrec_light"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_threads(
    parser: argparse.ArgumentParser, what: str, default: int | None = None
) -> argparse.Action:
    """``--threads N``, the command's compute threads: ``what`` says which (``"torch"``,
    ``"onnxruntime per call"``, ...). :func:`apply_threads` sets them before any heavy
    import."""
    setattr(parser, THREADS_ATTR, what)
    shown = "all cores" if default is None else str(default)
    return parser.add_argument(
        "--threads",
        type=_positive_int,
        default=default,
        metavar="N",
        help=f"compute threads: {what} (default: {shown})",
    )


def light_command(parser: argparse.ArgumentParser, why: str) -> None:
    """Mark a command that takes no ``--threads``, and say why (the conventions' test
    reads it)."""
    setattr(parser, LIGHT_ATTR, why)


def apply_threads(args: argparse.Namespace) -> None:
    """``--threads`` for the pools that read their size from the environment once, at
    import (polars has no other setting; numpy's BLAS): called before the command imports
    them."""
    threads = getattr(args, "threads", None)
    if threads is None:
        return
    for name in (
        "POLARS_MAX_THREADS",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
    ):
        os.environ[name] = str(threads)
    # under a Python that imported polars before main() (a test, a notebook), polars
    # keeps its pool: it has no setter; torch's is set again by set_threads


# -- output -------------------------------------------------------------------------------
def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the result as one JSON object on stdout"
    )


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars and no chatter; training still logs one line per epoch",
    )


def show_bars(quiet: bool) -> bool:
    """Progress bars only for a person watching: not ``--quiet``, stderr a terminal (a
    log file would fill with carriage-return redraws)."""
    return not quiet and sys.stderr.isatty()


def training_progress(quiet: bool) -> bool | str:
    """The :class:`~sessionrec.train.Trainer`'s ``progress``: bars and lines on a
    terminal, else the lines alone (one per epoch)."""
    return True if show_bars(quiet) else "lines"


_METRIC = re.compile(r"^(hr|mrr|ndcg)@(\d+)$")


def metric_name(key: str) -> str:
    """``"hr@20"`` -> ``"HR@20"``; other keys unchanged."""
    return key.upper() if _METRIC.match(key) else key


def metric_lines(result: dict[str, Any], width: int = 22) -> list[str]:
    """A result as aligned ``NAME  VALUE`` lines: metrics as ``HR@20  55.03`` (percent,
    two decimals), other floats with two decimals too, the rest as they are."""
    lines = []
    for key, value in result.items():
        shown = f"{value:.2f}" if isinstance(value, float) else value
        lines.append(f"{metric_name(key):>{width}}  {shown}")
    return lines


def print_metrics(result: dict[str, Any], width: int = 22) -> None:
    """:func:`metric_lines` on stdout (a result, not a log)."""
    for line in metric_lines(result, width):
        print(line)


# -- renamed flags ------------------------------------------------------------------------
class _DeprecatedAlias(argparse.Action):
    """An old flag name: sets the new option's value and warns."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kw: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        warnings.warn(f"{option} is deprecated, use {self.new}", FutureWarning, stacklevel=2)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(
    parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kw: Any
) -> None:
    """``old`` as a hidden alias of the option ``new`` (stored in ``dest``), with a
    warning when used."""
    parser.add_argument(
        old, dest=dest, action=_DeprecatedAlias, new=new, help=argparse.SUPPRESS, **kw
    )
