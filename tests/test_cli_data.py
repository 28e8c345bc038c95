"""``sessionrec prepare`` and ``sessionrec stats``: one JSON object on stdout, errors as
``sessionrec: error: ...`` with exit code 1, the exact counts on the real data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sessionrec.cli import main
from sessionrec.data.dataset import SessionDataset

DAY = 86_400
CLICKS = str(Path(__file__).resolve().parents[1] / "data" / "synthetic" / "clicks.csv")
KEYS = {"train_sessions", "test_sessions", "items", "train_samples", "test_samples"}


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object
    return json.loads(out)


def clicks_csv(tmp_path: Path) -> Path:
    """Session 1..4 train (days 0-2), session 9 test (day 9): items 10, 11, 12."""
    lines = ["sid,iid,ts"]
    for s in range(1, 5):
        lines += [f"{s},10,{s * DAY}", f"{s},11,{s * DAY + 1}", f"{s},12,{s * DAY + 2}"]
    lines += [f"9,10,{9 * DAY}", f"9,12,{9 * DAY + 5}"]
    path = tmp_path / "clicks.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_prepare_json_and_stats(tmp_path, capsys):
    out = tmp_path / "prepared"
    argv = ["prepare", "--clicks", str(clicks_csv(tmp_path)), "--session-col", "sid",
            "--item-col", "iid", "--time-col", "ts", "--time-unit", "s",
            "--min-item-support", "2", "--test-days", "1", "--out", str(out), "--json"]  # fmt: skip
    result = run_json(capsys, argv)
    assert KEYS <= set(result)
    assert (result["train_sessions"], result["test_sessions"], result["items"]) == (4, 1, 3)
    assert (result["train_samples"], result["test_samples"]) == (8, 1)
    ingest = result["report"]["ingest"]
    assert ingest["rows_read"] == 14 and ingest["rows_skipped"] == 0
    assert result["report"]["protocol"]["test_sessions_in_split"] == 1
    assert SessionDataset.load(out).fingerprint() == result["fingerprint"]

    stats = run_json(capsys, ["stats", str(out), "--json"])
    assert {k: stats[k] for k in KEYS} == {k: result[k] for k in KEYS}
    assert stats["protocol"]["min_item_support"] == 2


def test_prepare_human_output(tmp_path, capsys):
    argv = ["prepare", "--clicks", str(clicks_csv(tmp_path)), "--session-col", "sid",
            "--item-col", "iid", "--time-col", "ts", "--min-item-support", "2",
            "--test-days", "1", "--out", str(tmp_path / "p")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "14 rows read" in out and "train_sessions" in out and "written to" in out


def test_bad_rows_error_then_skip(tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text(
        "session_id,item_id,timestamp\n"
        + "".join(f"{s},{i},{s * DAY + i}\n" for s in (1, 2, 3) for i in (1, 2))
        + "3,2,not-a-time\n"
        + f"8,1,{8 * DAY}\n8,2,{8 * DAY + 1}\n"
    )
    argv = ["prepare", "--clicks", str(path), "--min-item-support", "1", "--test-days", "1",
            "--out", str(tmp_path / "p"), "--json"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "sessionrec: error: BadRowsError:" in err and "data row 7 (line 8)" in err
    assert "'not-a-time'" in err and "--on-bad-rows skip" in err
    result = run_json(capsys, [*argv, "--on-bad-rows", "skip"])
    assert result["report"]["ingest"]["rows_skipped"] == 1
    assert result["report"]["ingest"]["bad_rows"] == {"missing or unparsable timestamp": 1}


def test_missing_column_and_missing_file(tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("user,item_id,timestamp\n1,2,3\n")
    assert main(["prepare", "--clicks", str(path), "--out", str(tmp_path / "p")]) == 1
    assert "no session id column found" in capsys.readouterr().err
    argv = [
        "prepare",
        "--clicks",
        str(path),
        "--session-col",
        "session",
        "--out",
        str(tmp_path / "p"),
    ]
    assert main(argv) == 1
    assert "no column 'session' for the session" in capsys.readouterr().err
    assert (
        main(["prepare", "--clicks", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "p")]) == 1
    )
    assert "no such file" in capsys.readouterr().err


def test_stats_argument_errors(tmp_path, capsys):
    assert main(["stats"]) == 1
    assert "either a prepared dataset folder" in capsys.readouterr().err
    assert main(["stats", "--benchmark", "srgnn-pickle"]) == 1
    assert "--path" in capsys.readouterr().err
    assert main(["stats", str(tmp_path)]) == 1
    assert "not a prepared dataset" in capsys.readouterr().err


def test_prepare_srgnn_on_the_diginetica_sample(tmp_path, capsys):
    from conftest import shared_dataset

    path = shared_dataset("diginetica-sample") / "sample_train-item-views.csv"
    out = tmp_path / "sample"
    result = run_json(capsys, ["prepare", "--clicks", str(path), "--format", "diginetica",
                               "--protocol", "srgnn", "--out", str(out), "--json"])  # fmt: skip
    assert result["train_sessions"] == 469
    assert result["test_sessions_in_split"] == 47  # the script's len(tes_sess)
    assert result["test_sessions"] == 47
    assert result["test_sessions_with_samples"] == 39  # with 2 items seen in training
    assert result["items"] == 309
    assert result["train_samples"] == 1205 and result["test_samples"] == 99
    stats = run_json(capsys, ["stats", str(out), "--json"])
    assert (stats["train_sessions"], stats["test_sessions_in_split"]) == (469, 47)


def test_stats_on_the_diginetica_pickles(capsys):
    from conftest import shared_dataset

    path = shared_dataset("diginetica")
    stats = run_json(
        capsys, ["stats", "--benchmark", "srgnn-pickle", "--path", str(path), "--json"]
    )
    assert stats["train_sessions"] == 186_670
    assert stats["test_samples"] == 60_858
    assert stats["items"] == 43_097
    assert stats["train_samples"] == 719_470


def test_the_console_command_prints_one_json_object(tmp_path):
    """Through a real process: stdout holds the JSON, progress and logs go to stderr."""
    env = dict(os.environ, POLARS_MAX_THREADS="1", OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "sessionrec", "prepare", "--clicks", str(clicks_csv(tmp_path)),
            "--session-col", "sid", "--item-col", "iid", "--time-col", "ts",
            "--min-item-support", "2", "--test-days", "1", "--out", str(tmp_path / "p"), "--json"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["train_sessions"] == 4


@pytest.mark.parametrize("flag", ["--help"])
def test_help_lists_the_options(capsys, flag):
    with pytest.raises(SystemExit):
        main(["prepare", flag])
    text = capsys.readouterr().out
    for option in ("--clicks", "--format", "--protocol", "--test-days", "--min-item-support",
                   "--max-session-length", "--on-bad-rows", "--session-col", "--out", "--json"):  # fmt: skip
        assert option in text


def test_prepare_never_deletes_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    """Writing a dataset into the dump's own folder used to delete the dump: a folder that
    holds other files is refused before any work (``--force`` writes anyway); a prepared
    dataset is replaced."""
    import shutil

    folder = tmp_path / "dumps"
    folder.mkdir()
    shutil.copy(CLICKS, folder / "clicks.csv")
    assert main(["prepare", "--clicks", str(folder / "clicks.csv"), "--out", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "is not a prepared dataset and holds clicks.csv" in err and "--force" in err
    assert (folder / "clicks.csv").is_file()
    out = tmp_path / "prepared"
    assert main(["prepare", "--clicks", CLICKS, "--out", str(out)]) == 0
    assert main(["prepare", "--clicks", CLICKS, "--out", str(out)]) == 0  # a dataset: replaced
    forced = tmp_path / "forced"
    forced.mkdir()
    (forced / "notes.txt").write_text("x")
    assert main(["prepare", "--clicks", CLICKS, "--out", str(forced), "--force"]) == 0
    assert not (forced / "notes.txt").exists() and (forced / "dataset.json").is_file()
