"""The public surface: every advertised name imports, and serving stays torch-free."""

import subprocess
import sys

import sessionrec
from sessionrec.artifacts import read_manifest


def test_every_public_name_resolves():
    for name in sessionrec.__all__:
        assert getattr(sessionrec, name) is not None, name


def test_top_level_import_is_torch_free():
    code = (
        "import sys, sessionrec\n"
        "from sessionrec import SessionRecommender, SessionrecError, ItemVocab\n"
        "assert 'torch' not in sys.modules and 'polars' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_help_lists_the_commands():
    out = subprocess.run(
        [sys.executable, "-m", "sessionrec", "--help"], check=True, capture_output=True, text=True
    ).stdout
    for command in ("prepare", "stats", "baseline", "train", "evaluate", "export", "recommend",
                    "bench", "demo"):  # fmt: skip
        assert command in out, command


def test_demo_runs_end_to_end(tmp_path, capsys):
    """The README's main job, shortened to one epoch: prepare, baselines, train, export,
    recommend."""
    import json

    from sessionrec.cli import main

    code = main(
        ["demo", "--out", str(tmp_path / "demo"), "--epochs", "1", "--json", "--threads", "1"]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["results"]) == {"pop", "spop", "vsknn", "sr-gnn (default)"}
    # one epoch already beats popularity by far on the synthetic data
    assert result["results"]["sr-gnn (default)"]["hr@20"] > 2 * result["results"]["pop"]["hr@20"]
    assert len(result["next_items"]["items"]) == 5
    assert result["next_items"]["fallback"] is False
    assert (tmp_path / "demo" / "model" / "model.onnx").is_file()
    assert "model.onnx" in read_manifest(tmp_path / "demo" / "model")["files"]
