"""The house rules, checked: imports go one way (the contract in pyproject.toml, checked
by import-linter), rooms stay small, and library errors speak the API's language.

The map these rules keep true is docs/architecture.md.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sessionrec"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 120
# argparse declarations: a command group's parser, long by nature
ARGPARSE_DECLARATIONS = {"register", "add_prepare_arguments", "add_training_arguments"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_import_contract_holds():
    """import-linter's contracts (pyproject.toml, [tool.importlinter]): the floors of the
    map, no import cycle between the modules of any package, serving torch-free."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    run = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout, run.stdout


def test_no_module_over_600_lines_and_no_function_over_120():
    too_long = []
    for path in _modules():
        source = path.read_text(encoding="utf-8")
        lines = source.count("\n")
        name = path.relative_to(ROOT)
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES and node.name not in ARGPARSE_DECLARATIONS:
                    too_long.append(f"{name}:{node.lineno} {node.name}(): {length} lines")
    assert not too_long, "\n".join(too_long)


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")


def _raised_texts(tree: ast.AST) -> list[tuple[int, str]]:
    """The string parts of every ``raise X(...)`` message in ``tree``."""
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            for arg in node.exc.args:
                for part in ast.walk(arg):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        texts.append((node.lineno, part.value))
    return texts


def test_library_errors_name_api_options_not_command_line_flags():
    """Only the command line (sessionrec/cli/) speaks of flags; the library names the API
    option in its message and in ``SessionrecError.options``, which the CLI turns into
    flags (sessionrec/cli/flags.py, FLAGS)."""
    found = []
    for path in _modules():
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for line, text in _raised_texts(ast.parse(path.read_text(encoding="utf-8"))):
            if _FLAG.search(text):
                found.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert not found, "\n".join(found)


def test_every_option_an_error_names_has_a_flag_or_is_api_only():
    """The options library errors name map to flags (sessionrec/cli/flags.py), or are
    listed here as set by the Python API alone: a typo would print no flag."""
    from sessionrec.cli.flags import flag_for

    named = set()
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "options" and isinstance(kw.value, ast.Tuple):
                        named |= {e.value for e in kw.value.elts if isinstance(e, ast.Constant)}
    assert len(named) > 40  # the check reads what it should
    without_flag = {n for n in named if flag_for(n) is None}
    assert without_flag == API_ONLY_OPTIONS


# options with no command-line flag: the Python API is the only way to set them
API_ONLY_OPTIONS = {
    "CategoryPopularity.categories",
    "load_model.directory",
}


def test_the_command_line_prints_the_flag_of_a_library_error(tmp_path, capsys):
    """A library error (API terms, options) printed by the CLI with the flags."""
    from sessionrec.cli import main

    clicks = tmp_path / "c.csv"
    clicks.write_text("visit,sku,ts\n1,10,1700000000\n1,11,1700000060\n")
    assert main(["prepare", "--clicks", str(clicks), "--out", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert "no session id column found" in err and "ColumnMap.session" in err
    assert "on the command line: --session-col NAME, --format NAME" in err
