"""The ``sessionrec`` command line.

Each command group lives in its own module with a ``register(subparsers)`` function and
imports heavy modules inside its command functions, so ``sessionrec --help`` stays fast
and a torch-free command never imports torch. Options several commands share live in
:mod:`sessionrec.cli.options`. ``--json`` prints exactly one JSON object on stdout;
progress bars and logs go to stderr. A library error is printed with the command-line
flags of the options that fix it (``SessionrecError.options``). The conventions every
command follows are :mod:`sessionrec.cli.conventions` (the epilog of ``sessionrec --help``,
docs/cli.md).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

from sessionrec.cli.conventions import CONVENTIONS, apply_threads
from sessionrec.cli.flags import flag_hint
from sessionrec.errors import SessionrecError
from sessionrec.version import __version__

# module -> commands it registers (the modules are imported to build the parser)
_GROUPS = (
    "sessionrec.cli.data_commands",  # prepare, stats
    "sessionrec.cli.baseline_commands",  # baseline
    "sessionrec.cli.model_commands",  # train, evaluate
    "sessionrec.cli.bench_commands",  # bench ...
    "sessionrec.cli.export_commands",  # export, recommend
    "sessionrec.cli.fit_commands",  # fit
    "sessionrec.cli.demo_commands",  # demo
    "sessionrec.cli.serve_commands",  # serve
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionrec",
        description="Session-based next-item recommendation (SR-GNN), from clicks to ONNX.",
        epilog=CONVENTIONS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sessionrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _GROUPS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # group not built yet
                continue
            raise
        module.register(sub)
    return parser


def _show_warning(message: Any, category: type[Warning], *_: Any, **__: Any) -> None:
    """Warnings as one line on stderr, ``sessionrec: warning: ...`` (not Python's source
    line and path)."""
    print(f"sessionrec: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    started_at = time.monotonic()  # a --max-minutes budget counts from here
    parser = build_parser()
    warnings.showwarning = _show_warning  # renamed flags warn while parsing
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    args.started_at = started_at
    apply_threads(args)  # before the command imports polars, numpy, torch
    try:
        result = args.func(args)
    except SessionrecError as exc:
        hint = flag_hint(exc.options)
        print(
            f"sessionrec: error: {type(exc).__name__}: {exc}" + (f"\n  ({hint})" if hint else ""),
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("sessionrec: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
